package softphone

import (
	"bytes"
	"encoding/binary"
	"math"
	"net/netip"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/pion/rtp"

	"github.com/groupbridge/groupbridge/media/dtmf"
	"github.com/groupbridge/groupbridge/media/g711"
	"github.com/groupbridge/groupbridge/media/pcm"
)

const frameNS = int64(pcm.FrameDuration)

var impDst = netip.MustParseAddrPort("127.0.0.1:9")

// perfectPacket is packet k of a perfect sender: sequence k, timestamp
// k·160, a payload that names k, so that a delivered packet can be checked
// byte for byte.
func perfectPacket(k int) []byte {
	b := make([]byte, rtpHeaderLen+pcm.FrameSamples)
	h := rtp.Header{Version: 2, SequenceNumber: uint16(k), Timestamp: uint32(k * pcm.FrameSamples), SSRC: 7}
	if _, err := h.MarshalTo(b); err != nil {
		panic(err)
	}
	for i := rtpHeaderLen; i < len(b); i++ {
		b[i] = byte(k + i)
	}
	return b
}

// delivery is one packet out of the impairer: which one, and when.
type delivery struct {
	k  int   // index in the perfect sequence
	at int64 // ns on the sender's schedule
}

// simulate runs n packets through im the way the sender goroutine does:
// packet k is pushed at k·20 ms, and everything else leaves exactly at its
// release time. It fails the test if a delivered packet differs from the
// one sent.
func simulate(t testing.TB, im *impairer, n int) []delivery {
	t.Helper()
	var out []delivery
	drain := func(before int64) {
		for {
			r, ok := im.next()
			if !ok || r >= before {
				return
			}
			b, dst, ok := im.pop(r)
			if !ok || dst != impDst {
				t.Fatalf("pop(%d) after next = %d: ok %v, dst %v", r, r, ok, dst)
			}
			k := int(binary.BigEndian.Uint16(b[2:4]))
			if !bytes.Equal(b, perfectPacket(k)) {
				t.Fatalf("packet %d changed on its way", k)
			}
			out = append(out, delivery{k: k, at: r})
		}
	}
	for k := range n {
		im.push(perfectPacket(k), impDst, int64(k)*frameNS)
		drain(int64(k+1) * frameNS)
	}
	drain(math.MaxInt64)
	return out
}

// measured is what a receiver could tell from the deliveries.
type measured struct {
	lost, dups, late int     // late: delivered after a later packet
	lossRuns         []int   // lengths of the complete runs of lost packets
	delays           []int64 // of first copies, ns after the packet was due
	delayOf          []int64 // the same by packet index, -1 for a lost one
	lateRightAfter   bool    // every late packet came right after its successor
}

func measure(d []delivery, n int) measured {
	var m measured
	count := make([]int, n)
	m.delayOf = make([]int64, n)
	for k := range m.delayOf {
		m.delayOf[k] = -1
	}
	m.lateRightAfter = true
	highest := -1
	for i, x := range d {
		count[x.k]++
		if count[x.k] == 2 {
			m.dups++
			continue
		}
		m.delays = append(m.delays, x.at-int64(x.k)*frameNS)
		m.delayOf[x.k] = x.at - int64(x.k)*frameNS
		if x.k < highest {
			m.late++
			// Its successor is the next packet that was not lost.
			if i == 0 || d[i-1].k <= x.k {
				m.lateRightAfter = false
			}
		}
		highest = max(highest, x.k)
	}
	run := 0
	for _, c := range count {
		if c == 0 {
			m.lost++
			run++
			continue
		}
		if run > 0 {
			m.lossRuns = append(m.lossRuns, run)
		}
		run = 0
	}
	// A run still going at the end was cut short by the test, not the model.
	return m
}

func TestImpairmentDeterministic(t *testing.T) {
	cfg := Impairment{Seed: 42, Loss: 0.05, BurstLoss: 2, Jitter: 40 * time.Millisecond, Reorder: 0.05, Duplicate: 0.03}
	a := simulate(t, newImpairer(cfg), 2000)
	b := simulate(t, newImpairer(cfg), 2000)
	if !slices.Equal(a, b) {
		t.Fatal("the same seed gave two different runs")
	}
	cfg.Seed = 43
	if c := simulate(t, newImpairer(cfg), 2000); slices.Equal(a, c) {
		t.Fatal("seeds 42 and 43 gave the same run")
	}
}

// TestImpairmentLossIndependentOfOtherSettings: changing the delay or the
// duplicates must not change which packets a seed loses, so a test can
// compare runs that differ in one setting.
func TestImpairmentLossIndependentOfOtherSettings(t *testing.T) {
	lostSet := func(cfg Impairment) []int {
		d := simulate(t, newImpairer(cfg), 1000)
		got := make([]bool, 1000)
		for _, x := range d {
			got[x.k] = true
		}
		var lost []int
		for k, ok := range got {
			if !ok {
				lost = append(lost, k)
			}
		}
		return lost
	}
	base := lostSet(Impairment{Seed: 9, Loss: 0.1, BurstLoss: 3})
	other := lostSet(Impairment{Seed: 9, Loss: 0.1, BurstLoss: 3, Jitter: 60 * time.Millisecond, Duplicate: 0.2, Reorder: 0.2})
	if len(base) == 0 || !slices.Equal(base, other) {
		t.Errorf("lost %v alone, %v with jitter, duplicates and reordering", base, other)
	}
}

// TestImpairmentRates measures, like a receiver would, what a few thousand
// packets went through and compares it with the settings. The tolerances
// are about four standard deviations of each estimate; the runs are
// deterministic, so a pass is not luck that could turn.
func TestImpairmentRates(t *testing.T) {
	const n = 5000
	cases := []struct {
		name string
		cfg  Impairment
	}{
		{"none", Impairment{Seed: 1}},
		{"5% loss", Impairment{Seed: 1, Loss: 0.05}},
		{"5% loss in bursts of 3", Impairment{Seed: 2, Loss: 0.05, BurstLoss: 3}},
		{"20% loss in bursts of 5", Impairment{Seed: 3, Loss: 0.2, BurstLoss: 5}},
		{"all lost", Impairment{Seed: 4, Loss: 1, BurstLoss: 3}},
		{"40 ms jitter", Impairment{Seed: 5, Jitter: 40 * time.Millisecond}},
		{"10% reordered", Impairment{Seed: 6, Reorder: 0.1}},
		{"most reordering", Impairment{Seed: 7, Reorder: 0.5}},
		{"5% duplicated", Impairment{Seed: 8, Duplicate: 0.05}},
		{"everything", Impairment{Seed: 9, Loss: 0.05, BurstLoss: 2, Jitter: 40 * time.Millisecond, Reorder: 0.05, Duplicate: 0.05}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			im := newImpairer(tc.cfg)
			d := simulate(t, im, n)
			m := measure(d, n)
			c := tc.cfg

			// The counters tell exactly what a receiver sees.
			sent, dropped, duplicated, reordered := im.counters()
			if sent != n || dropped != m.lost || duplicated != m.dups {
				t.Errorf("counters sent %d dropped %d duplicated %d; measured %d sent, %d lost, %d duplicates",
					sent, dropped, duplicated, n, m.lost, m.dups)
			}
			if c.Jitter == 0 && reordered != m.late {
				t.Errorf("counted %d reordered, measured %d late", reordered, m.late)
			}
			if len(d) != n-m.lost+m.dups {
				t.Errorf("%d deliveries, want %d", len(d), n-m.lost+m.dups)
			}

			t.Logf("measured: lost %d, dups %d, late %d, held %d", m.lost, m.dups, m.late, reordered)
			survivors := float64(n - m.lost)
			rate := func(what string, got, want float64, count float64, burst int) {
				t.Helper()
				tol := 4*math.Sqrt(want*(1-want)*float64(max(1, burst))/count) + 1e-9
				if math.Abs(got-want) > tol {
					t.Errorf("%s %.4f, want %.4f ± %.4f", what, got, want, tol)
				}
			}
			rate("loss", float64(m.lost)/n, c.Loss, n, c.BurstLoss)
			rate("duplicates", float64(m.dups)/max(1, survivors), c.Duplicate, max(1, survivors), 1)
			rate("holds", float64(reordered)/max(1, survivors), c.Reorder, max(1, survivors), 2)
			if c.Jitter == 0 {
				rate("late packets", float64(m.late)/max(1, survivors), c.Reorder, max(1, survivors), 2)
				if !m.lateRightAfter {
					t.Error("a held packet did not follow its successor directly")
				}
			}
			for _, r := range m.lossRuns {
				if r%max(1, c.BurstLoss) != 0 {
					t.Fatalf("a run of %d lost packets with bursts of %d", r, c.BurstLoss)
				}
			}

			// Delays: uniform over [0, Jitter] (plus a frame for a held
			// packet): check the range and the four quarters.
			if c.Loss == 1 {
				return
			}
			maxDelay := int64(c.Jitter)
			if c.Reorder > 0 {
				maxDelay += frameNS + int64(c.Jitter)
			}
			var quarters [4]int
			for _, dl := range m.delays {
				if dl < 0 || dl > maxDelay {
					t.Fatalf("delay %v outside [0, %v]", time.Duration(dl), time.Duration(maxDelay))
				}
				if c.Jitter > 0 && dl <= int64(c.Jitter) {
					quarters[min(3, dl*4/int64(c.Jitter+1))]++
				}
			}
			if c.Jitter > 0 && c.Reorder == 0 {
				for q, got := range quarters {
					rate("delays in quarter "+string(rune('1'+q)), float64(got)/float64(len(m.delays)), 0.25, float64(len(m.delays)), 1)
				}
				// The RFC 3550 estimate (J += (|D|-J)/16), taken over packets
				// in sequence order and averaged once settled, is Jitter/3
				// as documented: the mean gap between two uniform delays.
				var est, sum float64
				var cnt int
				for k := 1; k < n; k++ {
					est += (math.Abs(float64(m.delayOf[k]-m.delayOf[k-1])) - est) / 16
					if k >= n/4 {
						sum += est
						cnt++
					}
				}
				t.Logf("RFC 3550 jitter %v", time.Duration(sum/float64(cnt)))
				if got, want := sum/float64(cnt), float64(c.Jitter)/3; math.Abs(got-want) > 0.1*want {
					t.Errorf("RFC 3550 jitter %v, want %v ± 10%%", time.Duration(got), time.Duration(want))
				}
			}
			if c.Jitter == 0 && c.Reorder == 0 {
				for _, dl := range m.delays {
					if dl != 0 {
						t.Fatalf("delay %v without jitter or reordering", time.Duration(dl))
					}
				}
			}
		})
	}
}

// TestImpairmentIdleReleasesHeld: a packet held for a successor that does
// not come (the phone stopped sending) leaves at its own time.
func TestImpairmentIdleReleasesHeld(t *testing.T) {
	im := newImpairer(Impairment{Seed: 1, Reorder: 0.5}) // every packet not overtaking is held
	im.push(perfectPacket(0), impDst, 0)
	if _, ok := im.next(); ok {
		t.Fatal("the first packet was not held")
	}
	im.idle()
	r, ok := im.next()
	if !ok || r != 0 {
		t.Fatalf("after idle next = %d, %v; want 0, true", r, ok)
	}
	if b, _, ok := im.pop(0); !ok || !bytes.Equal(b, perfectPacket(0)) {
		t.Fatal("the held packet did not come out")
	}
}

func TestImpairmentPopWaitsForRelease(t *testing.T) {
	im := newImpairer(Impairment{Seed: 3, Jitter: 100 * time.Millisecond})
	im.push(perfectPacket(0), impDst, 0)
	r, ok := im.next()
	if !ok {
		t.Fatal("nothing queued")
	}
	if r > 0 {
		if _, _, ok := im.pop(r - 1); ok {
			t.Fatal("popped before its release")
		}
	}
	if _, _, ok := im.pop(r); !ok {
		t.Fatal("not popped at its release")
	}
	if _, _, ok := im.pop(math.MaxInt64); ok {
		t.Fatal("popped from an empty queue")
	}
}

func TestImpairmentValidate(t *testing.T) {
	cases := []struct {
		name string
		im   Impairment
		ok   bool
	}{
		{"zero", Impairment{}, true},
		{"typical", Impairment{Loss: 0.05, BurstLoss: 3, Jitter: 40 * time.Millisecond, Reorder: 0.05, Duplicate: 0.01}, true},
		{"limits", Impairment{Loss: 1, BurstLoss: maxBurstLoss, Jitter: maxImpairJitter, Reorder: 0.5, Duplicate: 1}, true},
		{"negative loss", Impairment{Loss: -0.1}, false},
		{"loss over 1", Impairment{Loss: 1.5}, false},
		{"NaN loss", Impairment{Loss: math.NaN()}, false},
		{"negative burst", Impairment{BurstLoss: -1}, false},
		{"huge burst", Impairment{BurstLoss: maxBurstLoss + 1}, false},
		{"negative jitter", Impairment{Jitter: -time.Millisecond}, false},
		{"jitter over the limit", Impairment{Jitter: maxImpairJitter + 1}, false},
		{"reorder over 0.5", Impairment{Reorder: 0.6}, false},
		{"infinite duplicate", Impairment{Duplicate: math.Inf(1)}, false},
	}
	for _, tc := range cases {
		if err := tc.im.validate(); (err == nil) != tc.ok {
			t.Errorf("%s: validate = %v, want ok %v", tc.name, err, tc.ok)
		}
	}
}

// TestImpairedStreamLoopback runs the layer inside a real sender over
// loopback, with a key press among the first packets: what arrives, RFC
// 4733 events included, is exactly what the layer alone decides for the
// same seed, because a packet's fate depends on its place in the sequence,
// not on timing.
func TestImpairedStreamLoopback(t *testing.T) {
	const k = 40 // packets compared
	cfg := Impairment{Seed: 11, Loss: 0.15, BurstLoss: 2, Jitter: 30 * time.Millisecond, Reorder: 0.2, Duplicate: 0.15}

	// What the layer decides for the first k packets.
	want := make([]int, k)
	for _, x := range simulate(t, newImpairer(cfg), k+10) {
		if x.k < k {
			want[x.k]++
		}
	}
	var lost, dup int
	for _, c := range want {
		lost += b2i(c == 0)
		dup += b2i(c == 2)
	}
	if lost == 0 || dup == 0 {
		t.Fatalf("seed %d loses %d and duplicates %d of the first %d packets: pick a seed that does both", cfg.Seed, lost, dup, k)
	}

	peer, addr := rtpPeer(t)
	s, err := newStream(netip.MustParseAddr("127.0.0.1"), time.Second, discard)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.close)
	s.impair = newImpairer(cfg)
	seq0 := s.seq // the sender has not started yet
	s.setSource(audioSource{})
	if _, err := s.play(newDigitPlan([]uint8{5}, DigitRFC4733, 5, 5)); err != nil {
		t.Fatal(err)
	}
	s.start(mediaParams{remote: addr, codec: g711.PCMU, eventPT: 101, send: true})

	// Packets leave in release order and a packet is never released before
	// it is due, so once one from past k+10 arrives, all of the first k
	// that survive have arrived (a held one leaves with its successor).
	got := make([]int, k)
	events := 0
	for done := false; !done; {
		for _, p := range readPackets(t, peer, 1) {
			off := int(p.SequenceNumber - seq0)
			switch {
			case off < k:
				got[off]++
				if p.PayloadType == 101 {
					if _, err := dtmf.ParseEvent(p.Payload); err != nil {
						t.Fatalf("event packet %d: %v", off, err)
					}
					events++
				}
			case off >= k+10:
				done = true
			}
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("copies received per packet\n got %v\nwant %v", got, want)
	}
	if events == 0 {
		t.Error("no RFC 4733 event came through")
	}

	s.close()
	sent, dropped, duplicated, reordered := s.impairStats()
	sim := newImpairer(cfg)
	for i := range sent {
		sim.push(perfectPacket(i), impDst, int64(i)*frameNS)
	}
	ws, wd, wu, wr := sim.counters()
	if sent < k+10 || sent != ws || dropped != wd || duplicated != wu || reordered != wr {
		t.Errorf("stream counted %d/%d/%d/%d (sent/dropped/duplicated/reordered), the layer alone %d/%d/%d/%d",
			sent, dropped, duplicated, reordered, ws, wd, wu, wr)
	}
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// BenchmarkImpair is the layer's cost per packet in a call's steady state:
// one push, the pops that fall due, no allocations.
func BenchmarkImpair(b *testing.B) {
	im := newImpairer(Impairment{Seed: 1, Loss: 0.05, BurstLoss: 2, Jitter: 40 * time.Millisecond, Reorder: 0.05, Duplicate: 0.05})
	pk := perfectPacket(1)
	var at int64
	for range 100 { // warm up: the queue reaches its working size
		im.push(pk, impDst, at)
		for _, _, ok := im.pop(at); ok; _, _, ok = im.pop(at) {
		}
		at += frameNS
	}
	b.ReportAllocs()
	for b.Loop() {
		im.push(pk, impDst, at)
		for _, _, ok := im.pop(at); ok; _, _, ok = im.pop(at) {
		}
		at += frameNS
	}
}

// TestSippImpairedEcho makes a real call through the layer: sipp echoes
// what the impaired phone sends, and the tone laid out by timestamp
// (Received) shows the losses as 20 ms holes and nothing else, whatever
// jitter, reordering and duplicates did to the arrival order.
func TestSippImpairedEcho(t *testing.T) {
	cfg := Impairment{Seed: 8, Loss: 0.2, BurstLoss: 2, Jitter: 40 * time.Millisecond, Reorder: 0.1, Duplicate: 0.1}
	// Which packets suffer depends only on their place in the call, so the
	// seed's first 200 packets tell what any stretch of the call will show.
	sim := newImpairer(cfg)
	firstDup, firstHold := -1, -1
	var lostAt []bool
	for i := range 200 {
		_, before, _, _ := sim.counters()
		sim.push(perfectPacket(i), impDst, int64(i)*frameNS)
		_, d, u, r := sim.counters()
		lostAt = append(lostAt, d > before)
		if u > 0 && firstDup < 0 {
			firstDup = i
		}
		if r > 0 && firstHold < 0 {
			firstHold = i
		}
	}
	for i := 0; i+40 <= len(lostAt); i++ {
		if n := countTrue(lostAt[i : i+40]); n < 4 {
			t.Fatalf("seed %d loses only %d of packets %d-%d: pick a seed whose losses are spread", cfg.Seed, n, i, i+39)
		}
	}
	if firstDup < 0 || firstDup > 60 || firstHold < 0 || firstHold > 60 {
		t.Fatalf("seed %d: first duplicate at %d, first hold at %d; pick one with both early", cfg.Seed, firstDup, firstHold)
	}

	s := startSipp(t, "udp", "uas")
	ctx := testCtx(t)
	before := runtime.NumGoroutine()
	p, err := Dial(ctx, Config{Server: s.addr, Caller: "+15551234567", Impair: &cfg})
	if err != nil {
		t.Fatalf("Dial: %v\nsipp:\n%s", err, s.out.String())
	}
	p.Media().SendTone(1000, -10)
	time.Sleep(100 * time.Millisecond) // let frames made before the switch drain
	since := time.Now()
	// 100 frames; the first and last 200 ms are left out, where packets that
	// arrived before since or are still in flight leave holes of their own.
	got := waitAudio(t, p, since, 100*pcm.FrameSamples)
	trim := 10 * pcm.FrameSamples
	frac, gap := ToneBlocks(got[trim:len(got)-trim], 1000, pcm.FrameDuration, -20)
	t.Logf("tone in %.2f of blocks, longest gap %v", frac, gap)
	if frac <= 0.5 || frac >= 1 || gap < 2*pcm.FrameDuration {
		t.Errorf("tone in %.2f of 20 ms blocks, longest gap %v; want the 20%% loss as holes, in bursts of 40 ms", frac, gap)
	}
	if _, lost := p.Media().RTPStats(); lost == 0 {
		t.Error("the echo lost nothing by sequence number")
	}
	if err := p.Hangup(ctx); err != nil {
		t.Fatal(err)
	}
	sent, dropped, duplicated, reordered := p.Media().ImpairStats()
	if sent < 100 || dropped == 0 || duplicated == 0 || reordered == 0 {
		t.Errorf("ImpairStats = %d sent, %d dropped, %d duplicated, %d reordered; want all > 0", sent, dropped, duplicated, reordered)
	}
	deadline := time.Now().Add(3 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines before the call, %d after", before, runtime.NumGoroutine())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func countTrue(bs []bool) int {
	n := 0
	for _, b := range bs {
		n += b2i(b)
	}
	return n
}
