package softphone

import (
	"log/slog"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/pion/rtp"

	"github.com/groupbridge/groupbridge/media/dtmf"
	"github.com/groupbridge/groupbridge/media/g711"
	"github.com/groupbridge/groupbridge/media/pcm"
	"github.com/groupbridge/groupbridge/media/tone"
)

var discard = slog.New(slog.DiscardHandler)

// pkt is one packet to inject: every sample of its payload is val.
type pkt struct {
	ssrc    uint32
	seq     uint16
	ts      uint32
	pt      uint8
	val     int16
	samples int   // payload length; 0 means 160
	at      int64 // arrival, ms after the epoch
}

func (p pkt) marshal(t testing.TB) []byte {
	n := p.samples
	if n == 0 {
		n = pcm.FrameSamples
	}
	lin := make([]int16, n)
	for i := range lin {
		lin[i] = p.val
	}
	payload := make([]byte, n)
	g711.Codec(p.pt).Encode(payload, lin)
	b, err := (&rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: p.pt, SequenceNumber: p.seq, Timestamp: p.ts, SSRC: p.ssrc}, Payload: payload}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// g711Round is what val becomes after a trip through codec.
func g711Round(c g711.Codec, val int16) int16 {
	var b [1]byte
	var out [1]int16
	c.Encode(b[:], []int16{val})
	c.Decode(out[:], b[:])
	return out[0]
}

// run is an expected stretch of the layout: n samples of val (before G.711).
type run struct {
	n   int
	val int16
	pt  uint8
}

func TestReceivedLayout(t *testing.T) {
	const F = pcm.FrameSamples
	cases := []struct {
		name      string
		pkts      []pkt
		since     int64 // ms after the epoch; -1 means the zero time
		want      []run
		recv, los int
	}{
		{
			name:  "in order",
			pkts:  []pkt{{seq: 1, ts: 0, val: 100}, {seq: 2, ts: F, val: 200}, {seq: 3, ts: 2 * F, val: 300}},
			since: -1,
			want:  []run{{F, 100, 0}, {F, 200, 0}, {F, 300, 0}},
			recv:  3,
		},
		{
			name: "reordered and lost: laid out by timestamp, gap zero-filled",
			pkts: []pkt{
				{seq: 2, ts: 1000 + F, val: 200}, {seq: 3, ts: 1000 + 2*F, val: 300}, {seq: 1, ts: 1000, val: 100},
				{seq: 6, ts: 1000 + 5*F, val: 600}, {seq: 5, ts: 1000 + 4*F, val: 500},
			},
			since: -1,
			want:  []run{{F, 100, 0}, {F, 200, 0}, {F, 300, 0}, {F, 0, 0}, {F, 500, 0}, {F, 600, 0}},
			recv:  5, los: 1,
		},
		{
			name:  "duplicate lands on the same place",
			pkts:  []pkt{{seq: 1, ts: 0, val: 100}, {seq: 2, ts: F, val: 200}, {seq: 2, ts: F, val: 200}},
			since: -1,
			want:  []run{{F, 100, 0}, {F, 200, 0}},
			recv:  3,
		},
		{
			name:  "sequence and timestamp wrap-around",
			pkts:  []pkt{{seq: 65535, ts: 1<<32 - F, val: 100}, {seq: 1, ts: F, val: 300}, {seq: 0, ts: 0, val: 200}},
			since: -1,
			want:  []run{{F, 100, 0}, {F, 200, 0}, {F, 300, 0}},
			recv:  3,
		},
		{
			name: "only packets that arrived after since",
			pkts: []pkt{
				{seq: 1, ts: 0, val: 100, at: 10}, {seq: 2, ts: F, val: 200, at: 20},
				{seq: 4, ts: 3 * F, val: 400, at: 30}, {seq: 3, ts: 2 * F, val: 300, at: 40},
			},
			since: 20,
			want:  []run{{F, 300, 0}, {F, 400, 0}},
			recv:  4,
		},
		{
			name: "new SSRC is a new run, joined in arrival order",
			pkts: []pkt{
				{ssrc: 1, seq: 10, ts: 5000, val: 100}, {ssrc: 1, seq: 11, ts: 5000 + F, val: 200},
				{ssrc: 2, seq: 900, ts: 7, val: 300}, {ssrc: 2, seq: 902, ts: 7 + 2*F, val: 500},
			},
			since: -1,
			want:  []run{{F, 100, 0}, {F, 200, 0}, {F, 300, 0}, {F, 0, 0}, {F, 500, 0}},
			recv:  4, los: 1,
		},
		{
			name:  "a jump over 10 s is not filled",
			pkts:  []pkt{{seq: 1, ts: 0, val: 100}, {seq: 2, ts: 20 * pcm.SampleRate, val: 200}},
			since: -1,
			want:  []run{{F, 100, 0}, {F, 200, 0}},
			recv:  2,
		},
		{
			name:  "40 ms packets and A-law",
			pkts:  []pkt{{seq: 1, ts: 0, val: 100, pt: 8, samples: 2 * F}, {seq: 2, ts: 2 * F, val: -300, pt: 8, samples: 2 * F}},
			since: -1,
			want:  []run{{2 * F, 100, 8}, {2 * F, -300, 8}},
			recv:  2,
		},
		{
			name:  "telephone-events and unknown types are not audio",
			pkts:  []pkt{{seq: 1, ts: 0, val: 100}, {seq: 2, ts: F, pt: 101, samples: 4}, {seq: 3, ts: F, pt: 18}, {seq: 4, ts: 2 * F, val: 300}},
			since: -1,
			want:  []run{{F, 100, 0}, {F, 0, 0}, {F, 300, 0}},
			recv:  4,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := newStreamState(time.Minute, discard)
			s.rxEventPT = 101
			for _, p := range tc.pkts {
				s.store(p.marshal(t), p.at*int64(time.Millisecond))
			}
			since := time.Time{}
			if tc.since >= 0 {
				since = s.epoch.Add(time.Duration(tc.since) * time.Millisecond)
			}
			got := s.received(since)
			var want []int16
			for _, r := range tc.want {
				v := int16(0)
				if r.val != 0 {
					v = g711Round(g711.Codec(r.pt), r.val)
				}
				for range r.n {
					want = append(want, v)
				}
			}
			if len(got) != len(want) {
				t.Fatalf("got %d samples, want %d", len(got), len(want))
			}
			for i := range got {
				if got[i] != want[i] {
					t.Fatalf("sample %d = %d, want %d", i, got[i], want[i])
				}
			}
			recv, lost, _ := s.rtpStats()
			if recv != tc.recv || lost != tc.los {
				t.Errorf("stats = %d received, %d lost; want %d, %d", recv, lost, tc.recv, tc.los)
			}
		})
	}
}

func TestReceivedKeepsOnlyTheWindow(t *testing.T) {
	s := newStreamState(100*time.Millisecond, discard) // 5 slots
	for i := range 8 {
		s.store(pkt{seq: uint16(i), ts: uint32(i * pcm.FrameSamples), val: int16(100 * (i + 1))}.marshal(t), int64(i))
	}
	got := s.received(time.Time{})
	if len(got) != 5*pcm.FrameSamples {
		t.Fatalf("got %d samples, want the last 5 frames", len(got))
	}
	if want := g711Round(g711.PCMU, 400); got[0] != want {
		t.Errorf("oldest kept sample = %d, want frame 4's %d", got[0], want)
	}
	none := newStreamState(-1, discard)
	none.store(pkt{seq: 1}.marshal(t), 0)
	if got := none.received(time.Time{}); len(got) != 0 {
		t.Errorf("Keep < 0 stored %d samples", len(got))
	}
	if recv, _, _ := none.rtpStats(); recv != 1 {
		t.Errorf("Keep < 0 counted %d packets, want 1", recv)
	}
}

// rtpPeer is a UDP socket standing in for the bridge's RTP port.
func rtpPeer(t *testing.T) (*net.UDPConn, netip.AddrPort) {
	t.Helper()
	c, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.1:0")))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, c.LocalAddr().(*net.UDPAddr).AddrPort()
}

// readPackets reads packets from c until n have arrived.
func readPackets(t *testing.T, c *net.UDPConn, n int) []rtp.Packet {
	t.Helper()
	var out []rtp.Packet
	buf := make([]byte, 1500)
	for len(out) < n {
		if err := c.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
			t.Fatal(err)
		}
		m, _, err := c.ReadFromUDPAddrPort(buf)
		if err != nil {
			t.Fatalf("after %d packets: %v", len(out), err)
		}
		var p rtp.Packet
		if err := p.Unmarshal(append([]byte(nil), buf[:m]...)); err != nil {
			t.Fatal(err)
		}
		out = append(out, p)
	}
	return out
}

func startTestStream(t *testing.T, remote netip.AddrPort, codec g711.Codec) *stream {
	t.Helper()
	s, err := newStream(netip.MustParseAddr("127.0.0.1"), time.Second, discard)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.close)
	s.start(mediaParams{remote: remote, codec: codec, eventPT: 101, send: true})
	return s
}

// TestRFC4733Packets checks every packet of two key presses against RFC
// 4733 and the sipp-like shape the bridge must handle.
func TestRFC4733Packets(t *testing.T) {
	peer, addr := rtpPeer(t)
	s := startTestStream(t, addr, g711.PCMU)
	codes := []uint8{1, 11} // "1#"
	plan := newDigitPlan(codes, DigitRFC4733, 5, 5)
	done, err := s.play(plan)
	if err != nil {
		t.Fatal(err)
	}
	<-done
	// Whatever audio came first, then 8 + 5 + 8 packets of the digits.
	pkts := readPackets(t, peer, 60)
	first := -1
	for i, p := range pkts {
		if p.PayloadType == 101 {
			first = i
			break
		}
	}
	if first < 0 || first+21 > len(pkts) {
		t.Fatalf("no complete digit run in %d packets (first event at %d)", len(pkts), first)
	}
	for i := 1; i < len(pkts); i++ {
		if pkts[i].SequenceNumber != pkts[i-1].SequenceNumber+1 {
			t.Fatalf("sequence jumps from %d to %d at packet %d", pkts[i-1].SequenceNumber, pkts[i].SequenceNumber, i)
		}
		if pkts[i].SSRC != pkts[0].SSRC {
			t.Fatal("SSRC changed")
		}
	}
	if !pkts[0].Marker {
		t.Error("first audio packet has no marker")
	}
	wantDur := []uint16{0, 160, 320, 480, 640, 800, 800, 800}
	var pressTS []uint32
	at := first
	for d, code := range codes {
		press := pkts[at : at+8]
		pressTS = append(pressTS, press[0].Timestamp)
		for j, p := range press {
			ev, err := dtmf.ParseEvent(p.Payload)
			if err != nil || p.PayloadType != 101 {
				t.Fatalf("digit %d packet %d: PT %d, %v", d, j, p.PayloadType, err)
			}
			if ev.Code != code || ev.Duration != wantDur[j] || ev.End != (j >= 5) {
				t.Errorf("digit %d packet %d = %+v, want code %d duration %d end %v", d, j, ev, code, wantDur[j], j >= 5)
			}
			if p.Marker != (j == 0) {
				t.Errorf("digit %d packet %d marker = %v", d, j, p.Marker)
			}
			if p.Timestamp != press[0].Timestamp {
				t.Errorf("digit %d packet %d timestamp %d, want the press's %d", d, j, p.Timestamp, press[0].Timestamp)
			}
		}
		at += 8
		if d == 0 {
			// The gap: audio resumes on the media clock, past the press.
			for j, p := range pkts[at : at+5] {
				if p.PayloadType != 0 {
					t.Fatalf("gap packet %d has PT %d, want audio", j, p.PayloadType)
				}
				if int32(p.Timestamp-press[0].Timestamp) < int32((8+j)*pcm.FrameSamples) {
					t.Errorf("gap packet %d timestamp %d overlaps the press at %d", j, p.Timestamp, press[0].Timestamp)
				}
			}
			at += 5
		}
	}
	if d := int32(pressTS[1] - pressTS[0]); d < 13*pcm.FrameSamples || d%pcm.FrameSamples != 0 {
		t.Errorf("second press starts %d timestamp units after the first, want >= %d on the 20 ms grid", d, 13*pcm.FrameSamples)
	}
	if p := pkts[at]; p.PayloadType != 0 {
		t.Errorf("after the last press PT %d, want audio again", p.PayloadType)
	}
}

// TestDigitCancel ends a long press early: the end packets still go out,
// with the duration reached plus one step, and the next key never starts.
// It drives the packet builder directly, so nothing depends on timing.
func TestDigitCancel(t *testing.T) {
	cases := []struct {
		name      string
		before    int // packets sent before the cancel
		wantDurs  []uint16
		wantAudio bool // the plan was over at once
	}{
		{"mid-press", 3, []uint16{0, 160, 320, 480, 480, 480}, false},
		{"before the first packet", 0, nil, true},
		{"during the end packets", 102, []uint16{15840, 16000, 16000, 16000}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := newStreamState(0, discard)
			s.params = mediaParams{remote: netip.MustParseAddrPort("127.0.0.1:9"), codec: g711.PCMU, eventPT: 101, send: true}
			plan := newDigitPlan([]uint8{5, 6}, DigitRFC4733, 100, 5)
			if _, err := s.play(plan); err != nil {
				t.Fatal(err)
			}
			var events []dtmf.Event
			var n int64
			next := func() bool {
				b, _, ok := s.nextPacket(n)
				n++
				if !ok {
					t.Fatal("nothing sent")
				}
				var p rtp.Packet
				if err := p.Unmarshal(b); err != nil {
					t.Fatal(err)
				}
				if p.PayloadType != 101 {
					return false
				}
				ev, err := dtmf.ParseEvent(p.Payload)
				if err != nil {
					t.Fatal(err)
				}
				events = append(events, ev)
				return true
			}
			for range tc.before {
				next()
			}
			s.cancelPlan(plan)
			select {
			case <-plan.done:
				if !tc.wantAudio {
					t.Fatal("plan ended before its end packets")
				}
			default:
			}
			for next() {
			}
			select {
			case <-plan.done:
			default:
				t.Fatal("plan not done after audio resumed")
			}
			events = events[max(0, len(events)-len(tc.wantDurs)):]
			if len(events) != len(tc.wantDurs) {
				t.Fatalf("got %d events, want %d", len(events), len(tc.wantDurs))
			}
			for i, ev := range events {
				end := i >= len(events)-3
				if ev.Code != 5 || ev.Duration != tc.wantDurs[i] || ev.End != end {
					t.Errorf("event %d = %+v, want code 5 duration %d end %v", i, ev, tc.wantDurs[i], end)
				}
			}
		})
	}
}

// TestInbandDigit checks that an in-band press carries the key's two
// Q.23 frequencies and replaces the audio.
func TestInbandDigit(t *testing.T) {
	peer, addr := rtpPeer(t)
	s := startTestStream(t, addr, g711.PCMA)
	s.setSource(audioSource{sine: tone.NewSine(440, -10)})
	done, err := s.play(newDigitPlan([]uint8{9}, DigitInband, 5, 5)) // 852 + 1477 Hz
	if err != nil {
		t.Fatal(err)
	}
	<-done
	pkts := readPackets(t, peer, 40)
	var press []int16
	frame := make([]int16, pcm.FrameSamples)
	for _, p := range pkts {
		if p.PayloadType != 8 {
			t.Fatalf("PT %d, want PCMA", p.PayloadType)
		}
		g711.PCMA.Decode(frame, p.Payload)
		if tone.LevelDBFS(frame, 852) > -20 {
			press = append(press, frame...)
		}
	}
	if len(press) != 5*pcm.FrameSamples {
		t.Fatalf("%d samples carry 852 Hz, want 5 frames", len(press))
	}
	for _, f := range []float64{852, 1477} {
		if got := tone.LevelDBFS(press, f); got < inbandDBFS-2 || got > inbandDBFS+2 {
			t.Errorf("%v Hz at %.1f dBFS, want %d±2", f, got, inbandDBFS)
		}
	}
	if got := tone.LevelDBFS(press, 440); got > -40 {
		t.Errorf("the 440 Hz audio is still there during the press: %.1f dBFS", got)
	}
}

func TestSendSamplesOnce(t *testing.T) {
	s := newStreamState(0, discard)
	s.params = mediaParams{remote: netip.MustParseAddrPort("127.0.0.1:9"), codec: g711.PCMU, eventPT: -1, send: true}
	src := make([]int16, 250)
	for i := range src {
		src[i] = 1000
	}
	s.setSource(audioSource{samples: src})
	var got []int16
	frame := make([]int16, pcm.FrameSamples)
	for n := range int64(3) {
		b, _, ok := s.nextPacket(n)
		if !ok {
			t.Fatal("nothing to send")
		}
		g711.PCMU.Decode(frame, b[rtpHeaderLen:])
		got = append(got, frame...)
	}
	for i, v := range got {
		want := int16(0)
		if i < len(src) {
			want = g711Round(g711.PCMU, 1000)
		}
		if v != want {
			t.Fatalf("sample %d = %d, want %d", i, v, want)
		}
	}
}

func TestNextPacketHeader(t *testing.T) {
	s := newStreamState(0, discard)
	cases := []struct {
		name   string
		params mediaParams
		send   bool
	}{
		{"sending", mediaParams{remote: netip.MustParseAddrPort("127.0.0.1:9"), codec: g711.PCMA, send: true}, true},
		{"not sending (inactive)", mediaParams{remote: netip.MustParseAddrPort("127.0.0.1:9"), codec: g711.PCMA}, false},
		{"port 0", mediaParams{remote: netip.MustParseAddrPort("127.0.0.1:0"), codec: g711.PCMA, send: true}, false},
		{"c=0.0.0.0", mediaParams{remote: netip.MustParseAddrPort("0.0.0.0:9"), codec: g711.PCMA, send: true}, false},
	}
	var lastSeq uint16
	var sent int
	for _, tc := range cases {
		s.params = tc.params
		b, _, ok := s.nextPacket(int64(sent + 10))
		if ok != tc.send {
			t.Errorf("%s: send = %v", tc.name, ok)
			continue
		}
		if !ok {
			continue
		}
		var p rtp.Packet
		if err := p.Unmarshal(b); err != nil {
			t.Fatal(err)
		}
		if p.SSRC != s.ssrc || p.PayloadType != 8 || p.Timestamp != s.tsBase+uint32(sent+10)*pcm.FrameSamples || len(p.Payload) != pcm.FrameSamples {
			t.Errorf("%s: header %+v", tc.name, p.Header)
		}
		if sent > 0 && p.SequenceNumber != lastSeq+1 {
			t.Errorf("%s: seq %d after %d", tc.name, p.SequenceNumber, lastSeq)
		}
		lastSeq = p.SequenceNumber
		sent++
	}
}

func FuzzStore(f *testing.F) {
	f.Add(pkt{seq: 1, ts: 0, val: 100}.marshal(f), int64(5))
	f.Add(pkt{seq: 7, ts: 9, pt: 8, samples: 400}.marshal(f), int64(-3))
	f.Add([]byte{0x90, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 1, 0, 0, 0}, int64(0)) // extension header
	f.Add([]byte{0xa0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 9}, int64(0))             // padding
	f.Fuzz(func(t *testing.T, b []byte, at int64) {
		s := newStreamState(200*time.Millisecond, discard)
		s.rxEventPT = 101
		s.store(b, at)
		s.store(b, at+1)
		out := s.received(time.Time{})
		if len(out) > 2*(1<<16) {
			t.Fatalf("%d samples from two packets", len(out))
		}
		recv, lost, _ := s.rtpStats()
		if recv > 2 || lost < 0 {
			t.Fatalf("stats %d, %d", recv, lost)
		}
	})
}

func BenchmarkNextPacket(b *testing.B) {
	s := newStreamState(0, discard)
	s.params = mediaParams{remote: netip.MustParseAddrPort("127.0.0.1:9"), codec: g711.PCMU, eventPT: 101, send: true}
	s.setSource(audioSource{sine: tone.NewSine(1000, -10)})
	b.ReportAllocs()
	var n int64
	for b.Loop() {
		if _, _, ok := s.nextPacket(n); !ok {
			b.Fatal("nothing sent")
		}
		n++
	}
}

func BenchmarkNextPacketDigits(b *testing.B) {
	s := newStreamState(0, discard)
	s.params = mediaParams{remote: netip.MustParseAddrPort("127.0.0.1:9"), codec: g711.PCMU, eventPT: 101, send: true}
	b.ReportAllocs()
	var n int64
	for b.Loop() {
		if s.plan == nil {
			b.StopTimer()
			s.plan = newDigitPlan([]uint8{1, 2, 3, 4, 5, 6, 7, 8, 9}, DigitRFC4733, 5, 5)
			b.StartTimer()
		}
		s.nextPacket(n)
		n++
	}
}

func BenchmarkStore(b *testing.B) {
	s := newStreamState(time.Minute, discard)
	pk := pkt{seq: 1, val: 100}.marshal(b)
	b.ReportAllocs()
	var n uint16
	for b.Loop() {
		pk[2], pk[3] = byte(n>>8), byte(n)
		s.store(pk, int64(n))
		n++
	}
}

// After rebind the stream sends from a new port of the same address with
// the same SSRC and the next sequence numbers, receives there, and no
// longer on the old port.
func TestStreamRebind(t *testing.T) {
	peer, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	s, err := newStream(netip.MustParseAddr("127.0.0.1"), time.Second, discard)
	if err != nil {
		t.Fatal(err)
	}
	defer s.close()
	s.start(mediaParams{remote: peer.LocalAddr().(*net.UDPAddr).AddrPort(), codec: g711.PCMU, eventPT: -1, send: true})
	read := func() (rtp.Header, netip.AddrPort) {
		t.Helper()
		buf := make([]byte, 2048)
		_ = peer.SetReadDeadline(time.Now().Add(2 * time.Second))
		n, from, err := peer.ReadFromUDPAddrPort(buf)
		if err != nil {
			t.Fatal(err)
		}
		var h rtp.Header
		if _, err := h.Unmarshal(buf[:n]); err != nil {
			t.Fatal(err)
		}
		return h, from
	}
	before, from := read()
	if from != s.local {
		t.Fatalf("first packet from %s, want %s", from, s.local)
	}
	old := s.local
	moved, err := s.rebind()
	if err != nil {
		t.Fatal(err)
	}
	if moved.Addr() != old.Addr() || moved.Port() == old.Port() {
		t.Fatalf("rebound to %s from %s, want another port of the same address", moved, old)
	}
	var after rtp.Header
	for from != moved {
		after, from = read()
	}
	if after.SSRC != before.SSRC || after.SequenceNumber-before.SequenceNumber > 20 {
		t.Errorf("after the rebind: SSRC %x seq %d, before: SSRC %x seq %d; want the same stream going on", after.SSRC, after.SequenceNumber, before.SSRC, before.SequenceNumber)
	}
	audio := pkt{ssrc: 9, seq: 1, ts: 0, val: 1000}.marshal(t)
	if _, err := peer.WriteToUDPAddrPort(audio, old); err != nil {
		t.Fatal(err)
	}
	if _, err := peer.WriteToUDPAddrPort(pkt{ssrc: 9, seq: 2, ts: 160, val: 1000}.marshal(t), moved); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(2 * time.Second)
	for {
		if got, _, _ := s.rtpStats(); got > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("nothing received on the new port")
		}
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond)
	if got, _, _ := s.rtpStats(); got != 1 {
		t.Errorf("received %d packets, want only the one sent to the new port", got)
	}
}

// A sender held up (here: its next frame waits for the stream's lock, as
// when the process is starved of CPU) counts the frames it then sends
// late, and past 100 ms those it skips: a test can tell that its own
// process, not the peer, fell behind.
func TestSendStalls(t *testing.T) {
	peer, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	s := startTestStream(t, peer.LocalAddr().(*net.UDPAddr).AddrPort(), g711.PCMU)
	time.Sleep(100 * time.Millisecond)
	stalls := func() int64 { return s.lateFrames.Load() + s.skippedFrames.Load() }
	tests := []struct {
		hold       time.Duration
		minStalls  int64 // late or skipped
		minSkipped int64
	}{
		{60 * time.Millisecond, 1, 0},
		{400 * time.Millisecond, 15, 15},
	}
	for _, tc := range tests {
		stalls0, skipped0 := stalls(), s.skippedFrames.Load()
		s.txMu.Lock()
		time.Sleep(tc.hold)
		s.txMu.Unlock()
		time.Sleep(100 * time.Millisecond)
		if n := stalls() - stalls0; n < tc.minStalls {
			t.Errorf("held %v: %d frames late or skipped, want at least %d", tc.hold, n, tc.minStalls)
		}
		if n := s.skippedFrames.Load() - skipped0; n < tc.minSkipped {
			t.Errorf("held %v: %d frames skipped, want at least %d", tc.hold, n, tc.minSkipped)
		}
	}
}
