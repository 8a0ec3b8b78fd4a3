//go:build linux

package rtpio

import (
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/groupbridge/groupbridge/media/g711"
	"github.com/groupbridge/groupbridge/media/jitter"
	"github.com/groupbridge/groupbridge/media/pcm"
	sig "github.com/groupbridge/groupbridge/media/tone"
)

// Packets in these tests carry identifiable audio: packet i is a constant
// level of (i+1)*idStep, so the order of what plays can be read back even
// where the jitter buffer stretched, squeezed or crossfaded it.
const (
	idStep = 1500
	maxIDs = 21 // the levels stay below full scale
)

// idPayload is packet id's audio, n samples, encoded with c.
func idPayload(c g711.Codec, id, n int) []byte {
	lin := make([]int16, n)
	for i := range lin {
		lin[i] = int16((id + 1) * idStep)
	}
	b := make([]byte, n)
	c.Encode(b, lin)
	return b
}

// idsPlayed reads the packet ids back from played audio: a run of at
// least 8 equal samples at an id's decoded level is that packet (a ramp of
// a crossfade or a fade never holds one level that long). Consecutive
// repeats are merged.
func idsPlayed(c g711.Codec, samples []int16) []int {
	level := map[int16]int{}
	for id := range maxIDs {
		level[decoded(c, idPayload(c, id, 1))[0]] = id
	}
	var ids []int
	for i := 0; i < len(samples); {
		j := i
		for j < len(samples) && samples[j] == samples[i] {
			j++
		}
		if id, ok := level[samples[i]]; ok && j-i >= 8 && (len(ids) == 0 || ids[len(ids)-1] != id) {
			ids = append(ids, id)
		}
		i = j
	}
	return ids
}

// arrival is a datagram reaching the stream at a time since the start.
type arrival struct {
	at  time.Duration
	pkt []byte
}

// playedFrame is what one clock tick read.
type playedFrame struct {
	f         pcm.Frame
	ok        bool
	concealed bool
}

// timeline drives a stream without sockets as the network and the clock
// would, on a made-up time line: datagrams arrive from caller at their
// times, and the clock reads a frame every 20 ms, 10 ms off the packets'
// grid, for the given number of ticks.
func timeline(s *Stream, caller netip.AddrPort, arrivals []arrival, ticks int) []playedFrame {
	start := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	slices.SortStableFunc(arrivals, func(a, b arrival) int { return int(a.at - b.at) })
	var out []playedFrame
	next := 0
	for k := range ticks {
		tick := time.Duration(k)*pcm.FrameDuration + 10*time.Millisecond
		for ; next < len(arrivals) && arrivals[next].at <= tick; next++ {
			s.rx.mu.Lock()
			s.p.nDigits = 0
			s.handle(s.p, arrivals[next].pkt, caller, start.Add(arrivals[next].at))
			s.rx.mu.Unlock()
		}
		var p playedFrame
		before := s.c.own.concealed.Load()
		p.ok = s.readFrame(&p.f, start.Add(tick))
		p.concealed = s.c.own.concealed.Load() != before
		out = append(out, p)
	}
	return out
}

// audioOf concatenates the frames played.
func audioOf(frames []playedFrame) []int16 {
	var out []int16
	for _, p := range frames {
		out = append(out, p.f[:]...)
	}
	return out
}

// receivedOf concatenates the frames played without concealment: a
// concealed frame repeats a pitch period of the audio before the loss,
// which may hold an earlier packet's level.
func receivedOf(frames []playedFrame) []int16 {
	var out []int16
	for _, p := range frames {
		if !p.concealed {
			out = append(out, p.f[:]...)
		}
	}
	return out
}

// checkOrder fails unless the ids played start with 0..n-1 and keep
// increasing (later ids may be missing: the stream's tail may be cut by
// the end of the test or hidden in a concealed frame).
func checkOrder(t *testing.T, got []int, n int, skip ...int) {
	t.Helper()
	var want []int
	for i := range n {
		if !slices.Contains(skip, i) {
			want = append(want, i)
		}
	}
	ok := len(got) >= len(want) && slices.Equal(got[:len(want)], want)
	for i := 1; ok && i < len(got); i++ {
		ok = got[i] > got[i-1]
	}
	if !ok {
		t.Errorf("played packets %v, want %v first and in order", got, want)
	}
}

// rtpPacket marshals one RTP packet.
func rtpPacket(t testing.TB, pt uint8, seq uint16, ts uint32, payload []byte) []byte {
	return marshal(t, rtpHeader(pt, seq, ts, 0x77), payload)
}

func TestPlayoutOrder(t *testing.T) {
	const n = 12
	caller := netip.MustParseAddrPort("127.0.0.1:5000")
	ms := time.Millisecond
	// stream builds n packets of ptime p, and three more to play while the
	// last of them are checked, each arriving at when(i).
	stream := func(p time.Duration, when func(i int) time.Duration) []arrival {
		samples := int(p / (time.Second / pcm.SampleRate))
		var out []arrival
		for i := range n + 3 {
			out = append(out, arrival{when(i), rtpPacket(t, 0, uint16(65530+i), uint32(1000+i*samples), idPayload(g711.PCMU, i, samples))})
		}
		return out
	}
	onTime := func(p time.Duration) func(int) time.Duration {
		return func(i int) time.Duration { return time.Duration(i) * p }
	}
	tests := []struct {
		name     string
		arrivals []arrival
		missing  []int // ids not played
		drops    Drops
	}{
		{"in order", stream(20*ms, onTime(20*ms)), nil, Drops{}},
		{"pairs swapped", stream(20*ms, func(i int) time.Duration { return time.Duration(i^1) * 20 * ms }), nil, Drops{}},
		{"one packet 30 ms late", stream(20*ms, func(i int) time.Duration {
			if i == 4 {
				return 110 * ms // after packets 5 and 6
			}
			return time.Duration(i) * 20 * ms
		}), nil, Drops{}},
		{"every packet twice", append(stream(20*ms, onTime(20*ms)), stream(20*ms, func(i int) time.Duration { return time.Duration(i)*20*ms + 5*ms })...), nil, Drops{Duplicate: n + 3}},
		{"a packet far too late", stream(20*ms, func(i int) time.Duration {
			if i == 5 {
				return 400 * ms
			}
			return time.Duration(i) * 20 * ms
		}), []int{5}, Drops{Late: 1}},
		{"10 ms packets", stream(10*ms, onTime(10*ms)), nil, Drops{}},
		{"30 ms packets", stream(30*ms, onTime(30*ms)), nil, Drops{}},
		{"40 ms packets", stream(40*ms, onTime(40*ms)), nil, Drops{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := bareStream(pcmu(caller))
			frames := timeline(s, caller, tt.arrivals, 50)
			checkOrder(t, idsPlayed(g711.PCMU, receivedOf(frames)), n, tt.missing...)
			if st := s.Stats(); st.Dropped != tt.drops {
				t.Errorf("drops %+v, want %+v (playout %+v)", st.Dropped, tt.drops, st.Playout)
			}
		})
	}
}

// TestPlayoutExact: audio arriving on time plays unaltered, in either
// codec, after a Update that switches codecs too.
func TestPlayoutExact(t *testing.T) {
	caller := netip.MustParseAddrPort("127.0.0.1:5000")
	for _, c := range codecs {
		t.Run(c.name, func(t *testing.T) {
			s := bareStream(pcmu(caller))
			s.Update(Params{Remote: caller, Codec: c.codec, AudioPT: c.pt, DTMFPT: 101})
			var arrivals []arrival
			var want []int16
			for i := range 10 {
				payload := tone(c.codec, 160, 7*i)
				arrivals = append(arrivals, arrival{time.Duration(i) * pcm.FrameDuration, rtpPacket(t, c.pt, uint16(i), uint32(160*i), payload)})
				want = append(want, decoded(c.codec, payload)...)
			}
			frames := timeline(s, caller, arrivals, 20)
			got := audioOf(frames)
			// Leading silence until the first packet's time has come.
			for len(got) > 0 && got[0] == 0 {
				got = got[1:]
			}
			if len(got) < len(want) || !equalSamples(got[:len(want)], want) {
				t.Fatalf("played audio differs from what was sent (%d samples played, %d sent)", len(got), len(want))
			}
			if frames[0].ok {
				t.Error("the first tick, before any audio was due, returned true")
			}
			if last := frames[len(frames)-1]; last.ok || last.f != (pcm.Frame{}) {
				t.Error("long after the last packet ReadFrame still returns audio")
			}
			if st := s.Stats(); st.Playout.Accepted != 10 || st.Concealed == 0 {
				t.Errorf("stats %+v: want 10 accepted and the end concealed", st)
			}
		})
	}
}

// dtmfFrames returns a key tone (both frequencies at -10 dBFS) cut into
// frames, continuing phase.
func dtmfTone(digit byte, frames int) []pcm.Frame {
	rows := map[byte][2]float64{'1': {697, 1209}, '5': {770, 1336}, '9': {852, 1477}, '#': {941, 1477}}
	fr := rows[digit]
	lo, hi := sig.NewSine(fr[0], -10), sig.NewSine(fr[1], -10)
	out := make([]pcm.Frame, frames)
	for i := range out {
		lo.Fill(&out[i])
		hi.Mix(out[i][:])
	}
	return out
}

// TestInbandDigit: a caller without telephone-event presses 5 in the
// audio: OnDigit hears it once, the room hears no trace of the tone, and
// the audio around it comes through unchanged, 60 ms later.
func TestInbandDigit(t *testing.T) {
	caller := netip.MustParseAddrPort("127.0.0.1:5000")
	var frames []pcm.Frame
	voice := sig.NewSine(440, -20) // not a key tone
	for range 10 {
		var f pcm.Frame
		voice.Fill(&f)
		frames = append(frames, f)
	}
	frames = append(frames, dtmfTone('5', 5)...) // 100 ms press
	for range 15 {
		var f pcm.Frame
		voice.Fill(&f)
		frames = append(frames, f)
	}
	var arrivals []arrival
	for i, f := range frames {
		payload := make([]byte, pcm.FrameSamples)
		g711.PCMU.Encode(payload, f[:])
		arrivals = append(arrivals, arrival{time.Duration(i) * pcm.FrameDuration, rtpPacket(t, 0, uint16(i), uint32(160*i), payload)})
	}
	var digits []byte
	inband := bareStream(Params{Remote: caller, Codec: g711.PCMU, DTMFPT: -1, OnDigit: func(d byte) { digits = append(digits, d) }})
	plain := bareStream(Params{Remote: caller, Codec: g711.PCMU, DTMFPT: 101, OnDigit: func(d byte) { digits = append(digits, d) }})
	const ticks = 40
	got := timeline(inband, caller, slices.Clone(arrivals), ticks)
	ref := timeline(plain, caller, slices.Clone(arrivals), ticks)

	if string(digits) != "5" {
		t.Fatalf("digits %q, want \"5\"", digits)
	}
	var in, out []int16
	for _, p := range ref {
		in = append(in, p.f[:]...)
	}
	for _, p := range got {
		out = append(out, p.f[:]...)
	}
	for _, hz := range []float64{770, 1336} {
		before, after := sig.LevelDBFS(in, hz), sig.LevelDBFS(out, hz)
		t.Logf("%v Hz: %.1f dBFS in, %.1f dBFS out", hz, before, after)
		if before-after < 30 {
			t.Errorf("%v Hz: only %.1f dB down after the filter", hz, before-after)
		}
	}
	// Every frame the filter did not cut is the unfiltered frame of three
	// ticks before, and says so; cut frames are silence and say false.
	cut := 0
	for k := range ticks {
		g := got[k]
		if k < inbandDelay {
			if g.ok || g.f != (pcm.Frame{}) {
				t.Errorf("tick %d: the delay line's start is not silence", k)
			}
			continue
		}
		r := ref[k-inbandDelay]
		switch {
		case g.f == (pcm.Frame{}) && r.f != (pcm.Frame{}):
			cut++
			if g.ok {
				t.Errorf("tick %d: a cut frame returned true", k)
			}
		case g.f != r.f || g.ok != r.ok:
			t.Errorf("tick %d: differs from the unfiltered frame of tick %d", k, k-inbandDelay)
		}
	}
	if cut < 5 || cut > 7 {
		t.Errorf("%d frames cut for a 100 ms tone, want 5 to 7", cut)
	}
	if before, after := sig.LevelDBFS(in, 440), sig.LevelDBFS(out, 440); after < before-1 {
		t.Errorf("the voice around the tone came out at %.1f dBFS, went in at %.1f", after, before)
	}
}

// TestInbandFilterFollowsNegotiation: the filter (and its delay) exists
// only while telephone-event is not negotiated.
func TestInbandFilterFollowsNegotiation(t *testing.T) {
	caller := netip.MustParseAddrPort("127.0.0.1:5000")
	s := bareStream(Params{Remote: caller, Codec: g711.PCMU, DTMFPT: -1})
	if s.play.filter == nil {
		t.Fatal("no filter without telephone-event")
	}
	first := s.play.filter
	s.Update(Params{Remote: caller, Codec: g711.PCMA, AudioPT: 8, DTMFPT: -1})
	if s.play.filter != first {
		t.Error("a re-INVITE without telephone-event replaced the filter (and cut its delay line)")
	}
	s.Update(Params{Remote: caller, Codec: g711.PCMU, DTMFPT: 101})
	if s.play.filter != nil {
		t.Error("filter still runs with telephone-event negotiated")
	}
	var f pcm.Frame
	if s.readFrame(&f, time.Now()) {
		t.Error("ReadFrame with nothing received returned true")
	}
	if kind := s.play.buf.Pop(&f, time.Now()); kind != jitter.Silence {
		t.Errorf("empty buffer gave %v", kind)
	}
}
