package softphone

import (
	"fmt"
	"math"
	"math/rand/v2"
	"net/netip"
	"sync"
	"time"

	"github.com/groupbridge/groupbridge/media/pcm"
)

// Limits of an Impairment: beyond them the model stops describing a phone
// network and the delay queue would hold an unbounded share of a call.
const (
	maxImpairJitter = 5 * time.Second
	maxBurstLoss    = 1000
	// maxReorder is the highest Reorder possible: a held packet needs a
	// successor that overtakes it, and that successor is not held itself.
	maxReorder = 0.5
)

// Impairment is a seeded model of a bad network between the phone and the
// bridge: loss (single or in bursts), delay variation, reordering and
// duplication of the RTP the phone sends. It lets end-to-end tests judge
// the bridge's jitter buffer and concealment by the signal a listener gets.
//
// It acts after packetizing, so sequence numbers and timestamps stay those
// of a perfect sender (a lost packet still used its number) and a receiver
// can measure loss and lateness against them. Everything the phone sends
// by RTP passes through it, RFC 4733 digit events included: a test that
// wants clean digits over an impaired call must send them by SIP INFO.
//
// The fate of each packet depends only on the settings and on its place in
// the call's packet sequence, never on timing: the same Seed gives the same
// losses, duplicates, holds and delays in every run. Each kind of
// impairment draws from its own random stream (PCG, math/rand/v2), so the
// packets a Seed loses do not change when, say, Jitter does.
//
// Fractions are of the packets the layer acts on: Loss of all packets the
// phone sends, Reorder and Duplicate of those that survive the loss.
type Impairment struct {
	// Seed selects the random sequence; 0 is a seed like any other.
	Seed uint64
	// Loss is the long-run fraction of packets lost, 0 to 1, whatever
	// BurstLoss is: with bursts, fewer losses start, each taking more.
	Loss float64
	// BurstLoss is how many packets in a row each loss takes (0 and 1 both
	// mean single losses). Bursts may follow each other directly, so a run
	// of lost packets is a multiple of BurstLoss long.
	BurstLoss int
	// Jitter delays each packet (each copy of a duplicate on its own) by a
	// uniform draw in [0, Jitter] after its scheduled send time, up to 5 s.
	// The delays are independent, so above 20 ms they reorder packets too,
	// as a multi-path network does; a receiver's RFC 3550 jitter estimate
	// settles near Jitter/3, the mean gap between two such delays.
	Jitter time.Duration
	// Reorder is the fraction of packets held back behind the next packet
	// sent (arriving just after it), 0 to 0.5.
	Reorder float64
	// Duplicate is the fraction of packets delivered twice.
	Duplicate float64
}

// validate rejects settings the model cannot honour, naming the value.
func (im Impairment) validate() error {
	for _, f := range []struct {
		name string
		v    float64
		max  float64
	}{{"Loss", im.Loss, 1}, {"Reorder", im.Reorder, maxReorder}, {"Duplicate", im.Duplicate, 1}} {
		if math.IsNaN(f.v) || f.v < 0 || f.v > f.max {
			return fmt.Errorf("softphone: Impairment.%s %v: want 0 to %v", f.name, f.v, f.max)
		}
	}
	if im.BurstLoss < 0 || im.BurstLoss > maxBurstLoss {
		return fmt.Errorf("softphone: Impairment.BurstLoss %d: want 0 to %d", im.BurstLoss, maxBurstLoss)
	}
	if im.Jitter < 0 || im.Jitter > maxImpairJitter {
		return fmt.Errorf("softphone: Impairment.Jitter %v: want 0 to %v", im.Jitter, maxImpairJitter)
	}
	return nil
}

// maxPacketLen is the longest RTP packet the sender builds.
const maxPacketLen = rtpHeaderLen + 2*pcm.FrameSamples

// impSlot is one packet (or one copy of a duplicated one) in flight.
type impSlot struct {
	release int64  // when it leaves, ns on the sender's schedule
	order   uint64 // tie-break: among equal release times, first in first out
	dst     netip.AddrPort
	n       int
	buf     [maxPacketLen]byte
}

// impairer is the delay queue and the dice of an Impairment. It is served
// by the phone's sender goroutine: push hands it each packet at its
// scheduled time, pop gives back what is due, next tells the sender when to
// wake. Packets wait in a min-heap of slot indices ordered by release time,
// in slots reused through a free list, so a call in its steady state
// allocates nothing and starts no goroutine per packet.
//
// Times are nanoseconds on the sender's schedule (frame n is due at
// n·20 ms); the impairer never reads a clock, which keeps it deterministic
// and testable without a network.
type impairer struct {
	cfg       Impairment
	burst     int     // packets per loss, at least 1
	startLoss float64 // probability that a packet starts a loss burst
	hold      float64 // probability that an eligible packet is held

	lossRNG, dupRNG, reorderRNG, jitterRNG *rand.Rand
	burstLeft                              int // packets still to lose in this burst

	slots []impSlot
	free  []int32 // indices of unused slots
	heap  []int32 // slots waiting, min-heap by (release, order)
	held  [2]int32
	nHeld int // copies of the packet held back for its successor
	order uint64

	mu                                   sync.Mutex // guards the counters, read by other goroutines
	sent, dropped, duplicated, reordered int
}

// Stream selectors: one PCG stream per kind of impairment (see Impairment).
const (
	rngLoss uint64 = iota + 0x6772_6f75_7062_7200 // "groupbr\x00" + kind
	rngDup
	rngReorder
	rngJitter
)

// newImpairer prepares the model and a queue sized for its delay, so that
// growing it is rare (a sender catching up after a stall).
func newImpairer(cfg Impairment) *impairer {
	im := &impairer{
		cfg:        cfg,
		burst:      max(1, cfg.BurstLoss),
		lossRNG:    rand.New(rand.NewPCG(cfg.Seed, rngLoss)),
		dupRNG:     rand.New(rand.NewPCG(cfg.Seed, rngDup)),
		reorderRNG: rand.New(rand.NewPCG(cfg.Seed, rngReorder)),
		jitterRNG:  rand.New(rand.NewPCG(cfg.Seed, rngJitter)),
	}
	// A loss starts on a packet outside a burst with probability q, and
	// takes B packets: the lost fraction is qB/(1+q(B-1)), solved for q so
	// that Loss is what a receiver measures.
	b := float64(im.burst)
	im.startLoss = cfg.Loss / (b - cfg.Loss*(b-1))
	// A packet right after a held one overtakes it and cannot be held, so
	// holds are drawn among the other packets with r/(1-r) to make Reorder
	// the fraction of all packets.
	if cfg.Reorder > 0 {
		im.hold = min(1, cfg.Reorder/(1-cfg.Reorder))
	}
	// In flight at once: one packet per 20 ms of delay, doubled for
	// duplicates, plus the held packet and a sender's catch-up burst.
	n := 2*(int(cfg.Jitter/pcm.FrameDuration)+2) + maxLagFrames + 2
	im.slots = make([]impSlot, 0, n)
	im.free = make([]int32, 0, n)
	im.heap = make([]int32, 0, n)
	return im
}

// push takes the packet b, due at time at (ns), and decides its fate. b is
// copied; the caller may reuse it at once.
func (im *impairer) push(b []byte, dst netip.AddrPort, at int64) {
	im.mu.Lock()
	defer im.mu.Unlock()
	im.sent++
	if im.burstLeft > 0 {
		im.burstLeft--
		im.dropped++
		return
	}
	if im.startLoss > 0 && im.lossRNG.Float64() < im.startLoss {
		im.burstLeft = im.burst - 1
		im.dropped++
		return
	}
	copies := 1
	if im.cfg.Duplicate > 0 && im.dupRNG.Float64() < im.cfg.Duplicate {
		copies = 2
		im.duplicated++
	}
	var idx [2]int32
	latest := int64(math.MinInt64)
	for c := range copies {
		i := im.alloc()
		sl := &im.slots[i]
		sl.n = copy(sl.buf[:], b)
		sl.dst = dst
		sl.release = at + im.delay()
		latest = max(latest, sl.release)
		idx[c] = i
	}
	if im.nHeld == 0 {
		if im.hold > 0 && im.reorderRNG.Float64() < im.hold {
			im.held, im.nHeld = idx, copies
			im.reordered++
			return
		}
		for _, i := range idx[:copies] {
			im.enqueue(i)
		}
		return
	}
	// This packet overtakes the held one, which follows it out: no earlier
	// than its own release, and after this packet's copies on a tie.
	for _, i := range idx[:copies] {
		im.enqueue(i)
	}
	for _, i := range im.held[:im.nHeld] {
		im.slots[i].release = max(im.slots[i].release, latest)
		im.enqueue(i)
	}
	im.nHeld = 0
}

// idle tells the impairer that a frame passed with nothing to send (no
// address, on hold): a held packet then leaves at its own time rather than
// wait, perhaps for minutes, for a successor.
func (im *impairer) idle() {
	for _, i := range im.held[:im.nHeld] {
		im.enqueue(i)
	}
	im.nHeld = 0
}

// delay draws one packet's extra delay in ns.
func (im *impairer) delay() int64 {
	if im.cfg.Jitter <= 0 {
		return 0
	}
	return im.jitterRNG.Int64N(int64(im.cfg.Jitter) + 1)
}

// next returns the release time of the first packet waiting, if any.
func (im *impairer) next() (int64, bool) {
	if len(im.heap) == 0 {
		return 0, false
	}
	return im.slots[im.heap[0]].release, true
}

// pop removes and returns the first packet due at now (ns). The bytes stay
// valid until the next push.
func (im *impairer) pop(now int64) ([]byte, netip.AddrPort, bool) {
	if len(im.heap) == 0 || im.slots[im.heap[0]].release > now {
		return nil, netip.AddrPort{}, false
	}
	i := im.heap[0]
	last := len(im.heap) - 1
	im.heap[0] = im.heap[last]
	im.heap = im.heap[:last]
	im.down(0)
	im.free = append(im.free, i)
	sl := &im.slots[i]
	return sl.buf[:sl.n], sl.dst, true
}

// counters returns what push has counted so far.
func (im *impairer) counters() (sent, dropped, duplicated, reordered int) {
	im.mu.Lock()
	defer im.mu.Unlock()
	return im.sent, im.dropped, im.duplicated, im.reordered
}

func (im *impairer) alloc() int32 {
	if n := len(im.free); n > 0 {
		i := im.free[n-1]
		im.free = im.free[:n-1]
		return i
	}
	im.slots = append(im.slots, impSlot{})
	return int32(len(im.slots) - 1)
}

func (im *impairer) enqueue(i int32) {
	im.slots[i].order = im.order
	im.order++
	im.heap = append(im.heap, i)
	im.up(len(im.heap) - 1)
}

func (im *impairer) less(a, b int32) bool {
	x, y := &im.slots[a], &im.slots[b]
	return x.release < y.release || x.release == y.release && x.order < y.order
}

// up and down are the binary heap's sift operations; container/heap would
// box every index in an interface.
func (im *impairer) up(j int) {
	h := im.heap
	for j > 0 {
		p := (j - 1) / 2
		if !im.less(h[j], h[p]) {
			return
		}
		h[j], h[p] = h[p], h[j]
		j = p
	}
}

func (im *impairer) down(j int) {
	h := im.heap
	for {
		c := 2*j + 1
		if c >= len(h) {
			return
		}
		if r := c + 1; r < len(h) && im.less(h[r], h[c]) {
			c = r
		}
		if !im.less(h[c], h[j]) {
			return
		}
		h[j], h[c] = h[c], h[j]
		j = c
	}
}
