package jitter

import (
	"testing"
	"time"

	"github.com/groupbridge/groupbridge/media/pcm"
)

// sender builds a scripted stream of tagged 20 ms packets.
type sender struct {
	ssrc  uint32
	seq   uint16
	ts    uint32
	at    time.Time
	index int
	pkts  []pkt
}

func newSender() *sender {
	return &sender{ssrc: 0x5151, seq: 1000, ts: 90000, at: t0}
}

// send sends n packets 20 ms apart, the first one marked if marker.
func (s *sender) send(n int, marker bool) {
	for i := range n {
		sm := make([]int16, frame)
		tagged(s.index, frame, s.ts, sm)
		s.pkts = append(s.pkts, pkt{ssrc: s.ssrc, seq: s.seq, ts: s.ts, marker: marker && i == 0,
			samples: sm, arrival: s.at, index: s.index})
		s.seq++
		s.ts += frame
		s.at = s.at.Add(pcm.FrameDuration)
		s.index++
	}
}

// tagSpan returns the first and last output positions where packet index
// plays, or -1, -1.
func tagSpan(out []int16, index int) (first, last int) {
	first, last = -1, -1
	for i, v := range out {
		if v == tag(index) {
			if first < 0 {
				first = i
			}
			last = i
		}
	}
	return first, last
}

// TestResync: jumps, restarts and source changes restart the stream
// without a gap of garbage, and ordinary pauses do not restart it.
func TestResync(t *testing.T) {
	const ms = time.Millisecond
	tests := []struct {
		name    string
		change  func(s *sender)
		resyncs uint64
		late    uint64
		plain   bool             // the new audio's first packet has no marker bit
		gap     [2]time.Duration // allowed output gap between the old and the new audio
	}{
		{name: "pause-with-timestamps (DTX)", change: func(s *sender) {
			s.at = s.at.Add(2 * time.Second)
			s.ts += 2 * pcm.SampleRate
		}, gap: [2]time.Duration{1960 * ms, 2020 * ms}}, // a pause may give back the frame of margin (lead)
		{name: "timestamp-jump-forward", change: func(s *sender) { s.ts += 5 * pcm.SampleRate },
			resyncs: 1, gap: [2]time.Duration{0, 20 * ms}},
		{name: "timestamp-jump-back", change: func(s *sender) { s.ts -= 3 * pcm.SampleRate },
			resyncs: 1, gap: [2]time.Duration{0, 20 * ms}},
		{name: "small-jump-forward", change: func(s *sender) { s.ts += 150 * 8 },
			gap: [2]time.Duration{0, 80 * ms}},
		{name: "marked-talkspurt-behind", change: func(s *sender) { s.ts -= 500 * 8 },
			resyncs: 1, gap: [2]time.Duration{0, 20 * ms}},
		{name: "timestamps-fall-behind", change: func(s *sender) { s.ts -= 500 * 8 },
			resyncs: 1, late: lateRunResync - 1, plain: true, gap: [2]time.Duration{0, 120 * ms}},
		{name: "talkspurt-with-stale-timestamps", change: func(s *sender) {
			s.at = s.at.Add(time.Second)
			s.ts += 200 * 8 // the sender counted 200 ms of a 1 s pause
		}, resyncs: 1, gap: [2]time.Duration{990 * ms, 1100 * ms}},
		{name: "sequence-jump", change: func(s *sender) { s.seq += 10000 },
			resyncs: 1, gap: [2]time.Duration{0, 20 * ms}},
		{name: "ssrc-change", change: func(s *sender) {
			s.ssrc, s.seq, s.ts = 0x7777, 4, 123
		}, resyncs: 1, gap: [2]time.Duration{0, 20 * ms}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newSender()
			s.send(100, true)
			tc.change(s)
			s.send(100, !tc.plain)
			b := New(Config{})
			res := run(b, s.pkts, 5*ms, 300*ms)
			checkPlayed(t, res, 200)
			st := b.Stats()
			if st.Resyncs != tc.resyncs || st.Late != tc.late {
				t.Errorf("resyncs %d late %d, want %d and %d", st.Resyncs, st.Late, tc.resyncs, tc.late)
			}
			// The gap between the last old and the first new audio played.
			_, oldEnd := tagSpan(res.out, 99)
			newStart := -1
			for i := 100; i < 200 && newStart < 0; i++ {
				newStart, _ = tagSpan(res.out, i)
			}
			if oldEnd < 0 || newStart < 0 {
				t.Fatalf("old audio ends at %d, new starts at %d", oldEnd, newStart)
			}
			gap := time.Duration(newStart-oldEnd-1) * time.Second / pcm.SampleRate
			t.Logf("gap %v; %+v", gap, st)
			if gap < tc.gap[0] || gap > tc.gap[1] {
				t.Errorf("gap %v, want within %v", gap, tc.gap)
			}
		})
	}
}

// TestSSRCStragglers: after a source change, a late packet of the old
// source is dropped, not switched back to; a second later the old source
// is a new stream again.
func TestSSRCStragglers(t *testing.T) {
	b := New(Config{})
	sm := make([]int16, frame)
	at := t0
	var f pcm.Frame
	push := func(ssrc uint32, seq uint16, ts uint32) PushResult {
		r := b.Push(ssrc, seq, ts, false, sm, at)
		at = at.Add(pcm.FrameDuration)
		b.Pop(&f, at)
		return r
	}
	for i := range 10 {
		if r := push(1, uint16(i), uint32(i*frame)); r != Accepted {
			t.Fatalf("packet %d: %v", i, r)
		}
	}
	if r := push(2, 500, 7777); r != Resync {
		t.Fatalf("new SSRC: %v, want resync", r)
	}
	if r := push(1, 10, 10*frame); r != Late {
		t.Fatalf("straggler: %v, want late", r)
	}
	if r := push(2, 501, 7777+frame); r != Accepted {
		t.Fatalf("new source continues: %v", r)
	}
	at = at.Add(2 * time.Second)
	if r := push(1, 11, 11*frame); r != Resync {
		t.Fatalf("old source back after 2 s: %v, want resync", r)
	}
	if st := b.Stats(); st.Resyncs != 2 || st.Late != 1 {
		t.Errorf("stats %+v", st)
	}
}
