package jitter

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/groupbridge/groupbridge/media/pcm"
)

// stallRun plays a 20 s voiced call of 20 ms packets, sent on time from
// t0, through a buffer. arrive maps a packet's send time to its arrival;
// pops happen every 20 ms from t0+13 ms, a tick due in [pauseFrom,
// pauseTo) running at pauseTo instead (a clock that resynchronises after
// the machine stalled, as media/clock does).
func stallRun(arrive func(i int, sent time.Time) time.Time, pauseFrom, pauseTo time.Time) (times []time.Time, stats []Stats) {
	const packets = 1000
	pkts := make([]pkt, packets)
	for i := range pkts {
		sm := make([]int16, frame)
		voicedSignal(i, frame, 0, sm)
		sent := t0.Add(time.Duration(i) * pcm.FrameDuration)
		pkts[i] = pkt{ssrc: 9, seq: uint16(i), ts: uint32(i * frame), samples: sm, index: i, arrival: arrive(i, sent)}
	}
	b := New(Config{})
	var f pcm.Frame
	next := 0
	for now := t0.Add(13 * time.Millisecond); now.Before(t0.Add(20 * time.Second)); now = now.Add(pcm.FrameDuration) {
		if !now.Before(pauseFrom) && now.Before(pauseTo) {
			now = pauseTo
		}
		for next < len(pkts) && !pkts[next].arrival.After(now) {
			p := pkts[next]
			b.Push(p.ssrc, p.seq, p.ts, p.marker, p.samples, p.arrival)
			next++
		}
		b.Pop(&f, now)
		times = append(times, now)
		stats = append(stats, b.Stats())
	}
	return times, stats
}

// TestStallForgotten: after one 65 ms stall (of the whole machine, of the
// sender, or of both: the packets sent meanwhile arrive in a burst after
// it) the delay is back at its minimum within 10 s of a clean network.
// Speech is played throughout, so the delay can only shrink by
// time-scaling.
func TestStallForgotten(t *testing.T) {
	const ms = time.Millisecond
	stallAt := t0.Add(2*time.Second + 7*ms)
	stallEnd := stallAt.Add(65 * ms)
	read := stallEnd.Add(ms) // the poller reads the burst just after the tick
	never := time.Time{}
	burst := func(step time.Duration) func(int, time.Time) time.Time {
		return func(_ int, sent time.Time) time.Time {
			switch {
			case sent.Before(stallAt):
				return sent
			case sent.Before(stallEnd):
				return read
			}
			return sent.Add(step)
		}
	}
	tests := []struct {
		name             string
		arrive           func(int, time.Time) time.Time
		pauseFrom, pause time.Time
	}{
		// The bridge's machine stalled: packets waited in the socket and
		// the mixing clock skipped the ticks.
		{"bridge", burst(0), stallAt, stallEnd},
		// The sender stalled and went on 65 ms later than before.
		{"sender", burst(65 * ms), never, never},
		// Both (one machine for the talker and the bridge).
		{"both", burst(65 * ms), stallAt, stallEnd},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			times, stats := stallRun(tc.arrive, tc.pauseFrom, tc.pause)
			peak := time.Duration(0)
			for i, st := range stats {
				peak = max(peak, st.TargetDelay, st.CurrentDelay)
				if times[i].Before(read.Add(10 * time.Second)) {
					continue
				}
				if st.TargetDelay != DefaultMinDelay || st.CurrentDelay < DefaultMinDelay-2*ms || st.CurrentDelay > DefaultMinDelay+2*ms {
					t.Fatalf("%v after the stall: target %v current %v, want back at %v (peak %v)",
						times[i].Sub(read), st.TargetDelay, st.CurrentDelay, DefaultMinDelay, peak)
				}
			}
			if peak < 50*ms {
				t.Errorf("delay peaked at %v: the stall never reached the buffer", peak)
			}
		})
	}
}

// TestRecurringLatenessKeepsDelay: a path that stalls for 65 ms every 4 s
// is no clean network: the delay stays large enough that the stalls after
// the first lose nothing.
func TestRecurringLatenessKeepsDelay(t *testing.T) {
	const ms = time.Millisecond
	const every = 4 * time.Second
	spike := func(_ int, sent time.Time) time.Time {
		at := sent.Sub(t0) % every
		if from := every/2 - 65*ms; at >= from && at < every/2 {
			return sent.Add(every/2 - at)
		}
		return sent
	}
	times, stats := stallRun(spike, time.Time{}, time.Time{})
	var lateBefore uint64
	for i, st := range stats {
		switch since := times[i].Sub(t0); {
		case since < every/2+every:
			lateBefore = st.Late
		case st.TargetDelay < 60*ms:
			t.Fatalf("%v: target %v between recurring stalls", since, st.TargetDelay)
		}
	}
	if late := stats[len(stats)-1].Late - lateBefore; late != 0 {
		t.Errorf("%d packets late after the second stall", late)
	}

	// Sustained jitter after a stall keeps the delay up too.
	r := rand.New(rand.NewPCG(5, 5))
	times, stats = stallRun(func(i int, sent time.Time) time.Time {
		if i < 100 {
			return sent
		}
		return sent.Add(time.Duration(r.Int64N(int64(50 * ms))))
	}, time.Time{}, time.Time{})
	for i, st := range stats {
		if times[i].Sub(t0) > 3*time.Second && st.TargetDelay < 50*ms {
			t.Fatalf("%v: target %v under 50 ms of jitter", times[i].Sub(t0), st.TargetDelay)
		}
	}
}
