package jitter

import (
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/groupbridge/groupbridge/media/pcm"
)

// spurts is a sender that talks in spurts: talk of every cycle is sent,
// the rest is a pause with no packets (timestamps run on, as with DTX).
// Its clock runs ppm parts per million slow (negative: fast) against the
// receiver's; late delays the packets of talkspurt lateSpurt (0: none).
type spurts struct {
	ptime       int // ms
	talk, cycle time.Duration
	total       time.Duration
	ppm         float64
	lateSpurt   int
	late        time.Duration
	quiet       bool // the pauses are sent, as quiet noise (no DTX)
}

// gen returns the packets in arrival order and the index of each
// talkspurt's first packet.
func (s spurts) gen() (pkts []pkt, starts []int) {
	n := s.ptime * pcm.SampleRate / 1000
	pt := time.Duration(s.ptime) * time.Millisecond
	for i := 0; time.Duration(i)*pt < s.total; i++ {
		at := time.Duration(i) * pt
		talking := at%s.cycle < s.talk
		if !talking && !s.quiet {
			continue
		}
		first := at%s.cycle < pt
		spurt := int(at / s.cycle)
		sm := make([]int16, n)
		noiseSignal(i, n, 0, sm)
		if !talking {
			for j := range sm {
				sm[j] /= 100 // about -50 dBFS
			}
		}
		arr := t0.Add(time.Duration(float64(at) * (1 + s.ppm*1e-6)))
		if s.lateSpurt > 0 && spurt == s.lateSpurt && at%s.cycle >= 5*pt && at%s.cycle < 6*pt {
			arr = arr.Add(s.late)
		}
		if first {
			starts = append(starts, len(pkts))
		}
		pkts = append(pkts, pkt{ssrc: 0x4242, seq: uint16(7 + len(pkts)), ts: uint32(3000 + i*n),
			marker: first, samples: sm, arrival: arr, index: i})
	}
	slices.SortStableFunc(pkts, func(a, b pkt) int { return a.arrival.Compare(b.arrival) })
	return pkts, starts
}

// playDelay is how long after its arrival packet p's first sample played,
// or -1 if its audio is not found intact in out. The first 5 ms are left
// out of the match: a talkspurt is crossfaded in over 4 ms.
func playDelay(res result, p pkt, phase time.Duration) time.Duration {
	const skip = 40
	want := p.samples[skip:]
	for j := 0; j+len(want) <= len(res.out); j++ {
		if res.out[j] == want[0] && slices.Equal(res.out[j:j+len(want)], want) {
			i := j - skip
			tick := t0.Add(phase + time.Duration(i/frame)*pcm.FrameDuration)
			return tick.Add(time.Duration(i%frame) * time.Second / pcm.SampleRate).Sub(p.arrival)
		}
	}
	return -1
}

// heard is one talkspurt: when its first packet arrived (since t0) and
// how long after that its first sample played.
type heard struct{ at, delay time.Duration }

// play runs s through a new buffer with the clock at phase and returns
// the buffer, what it played, the packets and each talkspurt's delay.
func (s spurts) play(phase time.Duration) (*Buffer, result, []pkt, []heard) {
	pkts, starts := s.gen()
	b := New(Config{})
	res := run(b, pkts, phase, 300*time.Millisecond)
	var hs []heard
	for _, i := range starts {
		hs = append(hs, heard{pkts[i].arrival.Sub(t0), playDelay(res, pkts[i], phase)})
	}
	return b, res, pkts, hs
}

// TestLeadAfterCalm: on a clean path a talkspurt's packet plays at the
// first tick at least the target after it arrived (issue 11.8), not a
// whole frame later, once the stream has been calm for growHold; the frame
// of margin is taken back in the pauses, so no sample is time-scaled,
// concealed or lost, at any packet size and tick phase.
func TestLeadAfterCalm(t *testing.T) {
	const ms = time.Millisecond
	for _, tc := range []struct {
		ptime int
		phase time.Duration
	}{
		{20, 0}, {20, 7 * ms}, {20, 13 * ms}, {20, 19 * ms},
		{10, 3 * ms}, {30, 11 * ms}, {40, 5 * ms}, {60, 17 * ms},
	} {
		t.Run(time.Duration(tc.ptime*int(ms)).String()+"/phase="+tc.phase.String(), func(t *testing.T) {
			b, res, pkts, hs := spurts{ptime: tc.ptime, talk: 960 * ms, cycle: 1440 * ms, total: 12 * time.Second}.play(tc.phase)
			g := time.Duration(gcd(int64(tc.ptime*8), frame)) * time.Second / pcm.SampleRate
			for k, h := range hs {
				d := h.delay
				calm := h.at > time.Duration(growHold)+time.Second
				lo, hi := DefaultMinDelay+pcm.FrameDuration, DefaultMinDelay+2*pcm.FrameDuration+time.Duration(tc.ptime)*ms
				switch {
				case calm && g == pcm.FrameDuration:
					// Packets arrive on the 20 ms grid, and each plays at
					// the first tick a target after it came.
					lo, hi = DefaultMinDelay+tc.phase, DefaultMinDelay+tc.phase+1
				case calm:
					// The frame's newest packet waited the target, its
					// first less than a frame more.
					lo, hi = DefaultMinDelay, DefaultMinDelay+pcm.FrameDuration
				}
				t.Logf("talkspurt %d at %v: delay %v", k, h.at, d)
				if d < lo || d >= hi {
					t.Errorf("talkspurt %d at %v: arrival to playout %v, want in [%v, %v)", k, h.at, d, lo, hi)
				}
			}
			for _, p := range pkts {
				if playDelay(res, p, tc.phase) < 0 {
					t.Fatalf("packet %d not played intact", p.index)
				}
			}
			if st := b.Stats(); st.Lost != 0 || st.Late != 0 || st.Resyncs != 0 {
				t.Errorf("clean stream: %+v", st)
			}
		})
	}
}

// TestLeadTakenBackWhenLate: a packet that comes late takes the margin
// back at once (with the target's own rise), and it is given back only
// after the stream has been calm again.
func TestLeadTakenBackWhenLate(t *testing.T) {
	const ms = time.Millisecond
	b, _, _, hs := spurts{ptime: 20, talk: 960 * ms, cycle: 1440 * ms, total: 24 * time.Second,
		lateSpurt: 4, late: 30 * ms}.play(9 * ms)
	if st := b.Stats(); st.Late != 1 {
		t.Errorf("late %d, want the one late packet", st.Late)
	}
	for k, h := range hs {
		d := h.delay
		t.Logf("talkspurt %d at %v: delay %v", k, h.at, d)
		switch {
		case k == 3 && (d < DefaultMinDelay || d >= DefaultMinDelay+pcm.FrameDuration):
			t.Errorf("talkspurt 3 (calm): delay %v, want under %v", d, DefaultMinDelay+pcm.FrameDuration)
		case k == 5 && d < 40*ms+pcm.FrameDuration:
			// The late packet (30 ms) raised the target to 40 ms and
			// took the lead.
			t.Errorf("talkspurt 5 (after the late packet): delay %v, want at least %v", d, 40*ms+pcm.FrameDuration)
		case k == len(hs)-1 && (d < DefaultMinDelay || d >= DefaultMinDelay+pcm.FrameDuration):
			t.Errorf("last talkspurt (calm again): delay %v, want under %v", d, DefaultMinDelay+pcm.FrameDuration)
		}
	}
}

// TestLeadClockDrift: with the sender's clock fast or slow by up to
// 0.1%, so that its packets slide through more than a whole frame of tick
// phase, the lead follows the phase: nothing is lost or concealed, and
// each talkspurt plays within the target plus a frame of arriving.
func TestLeadClockDrift(t *testing.T) {
	const ms = time.Millisecond
	for _, ppm := range []float64{-1000, -300, 300, 1000} {
		t.Run(strconv.FormatFloat(ppm, 'f', 0, 64)+"ppm", func(t *testing.T) {
			phase := 4 * ms
			b, res, pkts, hs := spurts{ptime: 20, talk: 960 * ms, cycle: 1440 * ms, total: 40 * time.Second, ppm: ppm}.play(phase)
			for k, h := range hs {
				d := h.delay
				if h.at < 5*time.Second {
					continue
				}
				// The base trails a slow sender by up to its 4 s window.
				if d < DefaultMinDelay-3*ms || d > DefaultMinDelay+pcm.FrameDuration+6*ms {
					t.Errorf("talkspurt %d at %v: delay %v, want within [%v, %v]", k, h.at, d,
						DefaultMinDelay-3*ms, DefaultMinDelay+pcm.FrameDuration+6*ms)
				}
			}
			for _, p := range pkts {
				if playDelay(res, p, phase) < 0 {
					t.Fatalf("packet %d not played intact", p.index)
				}
			}
			if st := b.Stats(); st.Late != 0 || st.Resyncs != 0 {
				t.Errorf("drifting clean stream: %+v", st)
			}
		})
	}
}

// TestLeadTakenInQuietAudio: a phone that sends its pauses as quiet audio
// (no DTX) gets the frame of margin back too, squeezed out of quiet
// frames; its talk still plays intact, a target after it arrived.
func TestLeadTakenInQuietAudio(t *testing.T) {
	const ms = time.Millisecond
	s := spurts{ptime: 20, talk: 600 * ms, cycle: 1400 * ms, total: 10 * time.Second, quiet: true}
	phase := 6 * ms
	b, res, pkts, hs := s.play(phase)
	for k, h := range hs {
		t.Logf("talkspurt %d at %v: delay %v", k, h.at, h.delay)
		if h.at > 5*time.Second && h.delay != DefaultMinDelay+phase {
			t.Errorf("talkspurt %d at %v: delay %v, want %v", k, h.at, h.delay, DefaultMinDelay+phase)
		}
	}
	for _, p := range pkts {
		if at := p.arrival.Sub(t0) % s.cycle; at >= 40*ms && at < s.talk && playDelay(res, p, phase) < 0 {
			t.Fatalf("talk packet %d not played intact", p.index)
		}
	}
	if st := b.Stats(); st.Late != 0 || st.Lost != 0 || st.Resyncs != 0 {
		t.Errorf("clean stream: %+v", st)
	}
}
