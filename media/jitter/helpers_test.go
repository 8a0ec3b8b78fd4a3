package jitter

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/groupbridge/groupbridge/media/pcm"
)

// t0 is the simulated wall clock's origin; nothing in the tests sleeps.
var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// pkt is one simulated RTP packet.
type pkt struct {
	ssrc    uint32
	seq     uint16
	ts      uint32
	marker  bool
	samples []int16
	arrival time.Time
	index   int // position in the sent stream (tag number)
	dup     bool
}

// stream describes a synthetic sender and network.
type stream struct {
	ptime    int // ms per packet
	packets  int
	seed     uint64
	seq0     uint16
	ts0      uint32
	loss     float64       // random loss probability
	burst    int           // drop 3 consecutive packets every burst packets (0: never)
	jitter   time.Duration // extra delay uniform in [0, jitter)
	swap     int           // swap the arrival of packets i, i+1 every swap packets
	dup      int           // send a second copy of every dup-th packet
	ssrcAt   int           // new SSRC, sequence and timestamp from this packet (0: never)
	signal   func(index, n int, ts0 uint32, out []int16)
	dropped  []int // indexes dropped by the network (filled by gen)
	keepLast int   // never drop the last keepLast packets (so Lost is exact)
	// The first packet of each SSRC is never dropped either: loss before
	// a stream's first packet cannot be counted.
}

// tag is the constant value of packet i in the tagged signal: distinct
// per packet, at least 16 apart and at least 2000 in magnitude, so a run
// of equal samples names one packet and concealment or crossfades (which
// change by more than a few units per sample, or stay within a few units
// of a played value) never forge another one.
func tag(i int) int16 {
	const slots = 1800
	v := 2000 + 16*((i*7919)%slots)
	if i/slots%2 == 1 {
		return int16(-v)
	}
	return int16(v)
}

// tagged fills a packet with its tag.
func tagged(index, n int, _ uint32, out []int16) {
	for i := range out[:n] {
		out[i] = tag(index)
	}
}

// voiced is a vowel-like test signal: a 125 Hz fundamental with falling
// harmonics, peak about 12,000. Its value depends only on the sample's
// place in the stream, so a lost packet's audio is known.
func voiced(pos int) int16 {
	t := float64(pos) / pcm.SampleRate
	v := 0.0
	for h, a := range []float64{6000, 3500, 2000, 900, 400} {
		v += a * math.Sin(2*math.Pi*125*float64(h+1)*t+float64(h))
	}
	return int16(v)
}

func voicedSignal(index, n int, _ uint32, out []int16) {
	for i := range out[:n] {
		out[i] = voiced(index*n + i)
	}
}

// noiseSignal is seeded white noise, distinct everywhere, for exact
// comparisons.
func noiseSignal(index, n int, _ uint32, out []int16) {
	r := rand.New(rand.NewPCG(uint64(index), 99))
	for i := range out[:n] {
		out[i] = int16(r.IntN(20001) - 10000)
	}
}

// gen builds the packets of s in arrival order.
func (s *stream) gen() []pkt {
	r := rand.New(rand.NewPCG(s.seed, 1))
	n := s.ptime * pcm.SampleRate / 1000
	ssrc, seq, ts := uint32(0x1234), s.seq0, s.ts0
	var out []pkt
	burstLeft := 0
	for i := range s.packets {
		if s.ssrcAt > 0 && i == s.ssrcAt {
			ssrc, seq, ts = 0xbeef, uint16(r.Uint32()), r.Uint32()
		}
		sm := make([]int16, n)
		s.signal(i, n, ts, sm)
		p := pkt{ssrc: ssrc, seq: seq, ts: ts, samples: sm, index: i,
			arrival: t0.Add(time.Duration(i*s.ptime) * time.Millisecond)}
		if s.jitter > 0 {
			p.arrival = p.arrival.Add(time.Duration(r.Int64N(int64(s.jitter))))
		}
		seq++
		ts += uint32(n)
		if s.burst > 0 && i > 0 && i%s.burst == 0 {
			burstLeft = 3
		}
		keep := i == 0 || i == s.ssrcAt || i >= s.packets-s.keepLast
		if !keep && (burstLeft > 0 || s.loss > 0 && r.Float64() < s.loss) {
			burstLeft = max(0, burstLeft-1)
			s.dropped = append(s.dropped, i)
			continue
		}
		out = append(out, p)
		if s.dup > 0 && i%s.dup == 0 {
			d := p
			d.dup = true
			d.arrival = d.arrival.Add(time.Duration(r.IntN(30)) * time.Millisecond)
			out = append(out, d)
		}
	}
	if s.swap > 0 {
		// Swap the arrival times of consecutive packets (both received,
		// neither a copy): the later one overtakes by one packet time.
		for i := 0; i+1 < len(out); i++ {
			a, b := &out[i], &out[i+1]
			if a.index%s.swap == 0 && b.index == a.index+1 && !a.dup && !b.dup {
				a.arrival, b.arrival = b.arrival, a.arrival
			}
		}
	}
	slices.SortStableFunc(out, func(a, b pkt) int { return a.arrival.Compare(b.arrival) })
	return out
}

// result is what a simulated run produced.
type result struct {
	out     []int16 // every popped sample
	kinds   []Kind  // per frame
	stats   []Stats // after each pop
	pushed  []PushResult
	packets []pkt
}

// run feeds pkts to b and pops frames every 20 ms from t0+phase until
// after the last arrival plus tail.
func run(b *Buffer, pkts []pkt, phase, tail time.Duration) result {
	res := result{packets: pkts, pushed: make([]PushResult, len(pkts))}
	end := pkts[len(pkts)-1].arrival.Add(tail)
	var f pcm.Frame
	next := 0
	for now := t0.Add(phase); now.Before(end); now = now.Add(pcm.FrameDuration) {
		for next < len(pkts) && !pkts[next].arrival.After(now) {
			p := pkts[next]
			res.pushed[next] = b.Push(p.ssrc, p.seq, p.ts, p.marker, p.samples, p.arrival)
			next++
		}
		k := b.Pop(&f, now)
		res.out = append(res.out, f[:]...)
		res.kinds = append(res.kinds, k)
		res.stats = append(res.stats, b.Stats())
	}
	return res
}

// decodeTags returns the packet indexes found in out, in order of first
// appearance: runs of at least 4 equal samples whose value is a tag.
// Values that reappear (concealment repeats played audio) are skipped.
func decodeTags(out []int16, packets int) []int {
	byTag := make(map[int16]int, packets)
	for i := range packets {
		byTag[tag(i)] = i
	}
	seen := map[int]bool{}
	var got []int
	for i := 0; i+4 <= len(out); {
		j := i + 1
		for j < len(out) && out[j] == out[i] {
			j++
		}
		if idx, ok := byTag[out[i]]; ok && j-i >= 4 && !seen[idx] {
			seen[idx] = true
			got = append(got, idx)
		}
		i = j
	}
	return got
}

// checkPlayed verifies that every packet Push buffered played, in order.
func checkPlayed(t *testing.T, res result, packets int) {
	t.Helper()
	got := decodeTags(res.out, packets)
	if !slices.IsSorted(got) {
		for i := 1; i < len(got); i++ {
			if got[i] < got[i-1] {
				t.Errorf("packet %d played after packet %d", got[i], got[i-1])
				break
			}
		}
	}
	played := map[int]bool{}
	for _, i := range got {
		played[i] = true
	}
	missing := 0
	for i, p := range res.packets {
		if r := res.pushed[i]; (r == Accepted || r == Resync) && !played[p.index] {
			if missing < 5 {
				t.Errorf("packet %d (seq %d) was %v but never played", p.index, p.seq, r)
			}
			missing++
		}
	}
	if missing > 0 {
		t.Errorf("%d buffered packets never played", missing)
	}
}

// frameEnergy is the mean square of frame i of out.
func frameEnergy(out []int16, i int) float64 {
	var f pcm.Frame
	copy(f[:], out[i*frame:])
	return float64(f.Energy())
}

// maxStep is the largest sample-to-sample change in s.
func maxStep(s []int16) int {
	m := 0
	for i := 1; i < len(s); i++ {
		d := int(s[i]) - int(s[i-1])
		m = max(m, d, -d)
	}
	return m
}

// maxBend is the largest second difference in s: a smooth waveform bends
// little from one sample to the next, a click bends by its whole size.
func maxBend(s []int16) int {
	m := 0
	for i := 2; i < len(s); i++ {
		d := int(s[i]) - 2*int(s[i-1]) + int(s[i-2])
		m = max(m, d, -d)
	}
	return m
}
