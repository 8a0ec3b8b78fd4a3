package jitter

import "math/bits"

const (
	// ringSize is the sample ring's capacity: 16,384 samples, about 2 s.
	// It must hold the largest delay (MaxDelay is capped at 1 s) plus the
	// largest packet (1 s), so that a packet that fits the playout window
	// never overwrites audio still waiting to be played. A power of two
	// turns the position-to-index mapping into a mask.
	ringSize = 1 << 14
	ringMask = ringSize - 1
)

// ring holds received samples indexed by their position on the playout
// timeline (position & ringMask), with one presence bit per sample.
// Per-sample presence makes every packet size fill it the same way:
// 10, 20, 30 or 40 ms packets, odd sizes, and overlapping or partial
// packets. Positions may be negative; the mask maps them like any other.
type ring struct {
	s    [ringSize]int16
	have [ringSize / 64]uint64
}

// span splits the n positions from pos (n <= ringSize) into at most two
// index ranges [a0,b0) and [a1,b1) that do not wrap.
func span(pos int64, n int) (a0, b0, a1, b1 int) {
	a0 = int(pos & ringMask)
	b0 = a0 + n
	if b0 > ringSize {
		b1 = b0 - ringSize
		b0 = ringSize
	}
	return a0, b0, 0, b1
}

// wordMask returns the bits lo..hi-1 of a word (0 <= lo < hi <= 64).
func wordMask(lo, hi int) uint64 {
	m := ^uint64(0) << uint(lo)
	if hi < 64 {
		m &= (uint64(1) << uint(hi)) - 1
	}
	return m
}

// setRange marks indexes [a,b) present (set) or absent (!set).
func (r *ring) setRange(a, b int, set bool) {
	for a < b {
		w, lo := a>>6, a&63
		hi := min(64, lo+b-a)
		if set {
			r.have[w] |= wordMask(lo, hi)
		} else {
			r.have[w] &^= wordMask(lo, hi)
		}
		a += hi - lo
	}
}

// countRange returns how many of indexes [a,b) are present.
func (r *ring) countRange(a, b int) int {
	c := 0
	for a < b {
		w, lo := a>>6, a&63
		hi := min(64, lo+b-a)
		c += bits.OnesCount64(r.have[w] & wordMask(lo, hi))
		a += hi - lo
	}
	return c
}

// firstRange returns the first present index in [a,b), or -1.
func (r *ring) firstRange(a, b int) int {
	for a < b {
		w, lo := a>>6, a&63
		hi := min(64, lo+b-a)
		if m := r.have[w] & wordMask(lo, hi); m != 0 {
			return w<<6 + bits.TrailingZeros64(m)
		}
		a += hi - lo
	}
	return -1
}

// mark sets (set) or clears the presence of n positions from pos.
func (r *ring) mark(pos int64, n int, set bool) {
	a0, b0, a1, b1 := span(pos, n)
	r.setRange(a0, b0, set)
	r.setRange(a1, b1, set)
}

// count returns how many of the n positions from pos are present.
func (r *ring) count(pos int64, n int) int {
	a0, b0, a1, b1 := span(pos, n)
	return r.countRange(a0, b0) + r.countRange(a1, b1)
}

// first returns the offset from pos of the first present position among
// the n from pos, or -1 if none is present.
func (r *ring) first(pos int64, n int) int {
	a0, b0, a1, b1 := span(pos, n)
	if i := r.firstRange(a0, b0); i >= 0 {
		return i - a0
	}
	if i := r.firstRange(a1, b1); i >= 0 {
		return b0 - a0 + i
	}
	return -1
}

// has reports whether position pos is present.
func (r *ring) has(pos int64) bool {
	i := pos & ringMask
	return r.have[i>>6]&(1<<uint(i&63)) != 0
}

// at returns the sample stored for position pos.
func (r *ring) at(pos int64) int16 { return r.s[pos&ringMask] }

// write stores src at positions from pos and marks them present
// (len(src) <= ringSize).
func (r *ring) write(pos int64, src []int16) {
	a0, b0, a1, b1 := span(pos, len(src))
	n := copy(r.s[a0:b0], src)
	copy(r.s[a1:b1], src[n:])
	r.setRange(a0, b0, true)
	r.setRange(a1, b1, true)
}

// read copies the samples of positions from pos into dst (len(dst) <=
// ringSize), whether present or not.
func (r *ring) read(dst []int16, pos int64) {
	a0, b0, a1, b1 := span(pos, len(dst))
	n := copy(dst, r.s[a0:b0])
	copy(dst[n:], r.s[a1:b1])
}

// clear forgets every sample.
func (r *ring) clear() { r.have = [ringSize / 64]uint64{} }
