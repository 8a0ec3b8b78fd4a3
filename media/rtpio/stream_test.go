//go:build linux

package rtpio

import (
	"bytes"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtp"

	"github.com/groupbridge/groupbridge/media/dtmf"
	"github.com/groupbridge/groupbridge/media/g711"
	"github.com/groupbridge/groupbridge/media/pcm"
	sig "github.com/groupbridge/groupbridge/media/tone"
)

var codecs = []struct {
	name  string
	codec g711.Codec
	pt    uint8
}{
	{"PCMU", g711.PCMU, 0},
	{"PCMA", g711.PCMA, 8},
}

func TestWriteFrameOnTheWire(t *testing.T) {
	for _, c := range codecs {
		t.Run(c.name, func(t *testing.T) {
			e := testEngine(t, 1)
			p := newPeer(t, loop4)
			s, err := e.Open(Params{Remote: p.addr(), Codec: c.codec, AudioPT: c.pt, DTMFPT: -1})
			if err != nil {
				t.Fatal(err)
			}
			// Back to back, so no pause separates them.
			for k := range 3 {
				s.WriteFrame(frameOf(k))
			}
			var first rtp.Packet
			for k := range 3 {
				pkt, from := p.recv()
				if from != s.LocalAddr() {
					t.Errorf("packet %d from %s, want %s", k, from, s.LocalAddr())
				}
				want := make([]byte, pcm.FrameSamples)
				c.codec.Encode(want, frameOf(k)[:])
				if pkt.Version != 2 || pkt.PayloadType != c.pt || string(pkt.Payload) != string(want) || pkt.Padding || pkt.Extension || len(pkt.CSRC) != 0 {
					t.Fatalf("packet %d: V%d PT %d, %d payload bytes (match %v)", k, pkt.Version, pkt.PayloadType, len(pkt.Payload), string(pkt.Payload) == string(want))
				}
				if k == 0 {
					first = pkt
					if !pkt.Marker {
						t.Error("first packet without marker bit")
					}
					continue
				}
				if pkt.Marker || pkt.SSRC != first.SSRC ||
					pkt.SequenceNumber != first.SequenceNumber+uint16(k) ||
					pkt.Timestamp != first.Timestamp+uint32(160*k) {
					t.Errorf("packet %d: marker %v ssrc %#x seq %d ts %d; want no marker, ssrc %#x, seq %d, ts %d",
						k, pkt.Marker, pkt.SSRC, pkt.SequenceNumber, pkt.Timestamp,
						first.SSRC, first.SequenceNumber+uint16(k), first.Timestamp+uint32(160*k))
				}
			}
			// A pause of more than 60 ms: marker, and the timestamp follows
			// the wall clock (at least the 100 ms slept).
			time.Sleep(100 * time.Millisecond)
			s.WriteFrame(frameOf(3))
			pkt, _ := p.recv()
			if !pkt.Marker || pkt.SequenceNumber != first.SequenceNumber+3 {
				t.Errorf("after a pause: marker %v seq %d, want marker and seq %d", pkt.Marker, pkt.SequenceNumber, first.SequenceNumber+3)
			}
			if jump := pkt.Timestamp - (first.Timestamp + 320); jump < 800 {
				t.Errorf("timestamp advanced %d samples over a pause of 100 ms, want at least 800", jump)
			}
			st := s.Stats()
			if st.PacketsOut != 4 || st.BytesOut != 4*172 || st.Dropped.SendError != 0 {
				t.Errorf("stats %+v", st.Stats)
			}
			if es := e.Stats(); es.PacketsOut != 4 || es.BytesOut != 4*172 {
				t.Errorf("engine stats %+v", es)
			}
		})
	}
}

func TestWriteFrameWithoutRemote(t *testing.T) {
	e := testEngine(t, 1)
	s, err := e.Open(pcmu(netip.AddrPort{}))
	if err != nil {
		t.Fatal(err)
	}
	s.WriteFrame(frameOf(0))
	if st := s.Stats(); st.PacketsOut != 0 || st.Dropped.SendError != 0 {
		t.Errorf("late offer, no remote yet: %+v", st.Stats)
	}
	// The remote arrives in the ACK's SDP.
	p := newPeer(t, loop4)
	s.Update(pcmu(p.addr()))
	s.WriteFrame(frameOf(0))
	if pkt, _ := p.recv(); !pkt.Marker {
		t.Error("first packet after the remote became known has no marker")
	}
}

// otherLoopback returns a peer on another loopback address when the
// system has one, else another port of 127.0.0.1: either is a different
// source.
func otherLoopback(t *testing.T) *peer {
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 2)})
	if err != nil {
		return newPeer(t, loop4)
	}
	_ = c.Close()
	return newPeer(t, netip.MustParseAddr("127.0.0.2"))
}

// Another port of an allowed address (here the SDP address's) is latched
// once the current source has been silent for a second.
func TestRelatchAfterSilence(t *testing.T) {
	e := testEngine(t, 1)
	caller := newPeer(t, loop4)
	other := newPeer(t, loop4) // e.g. the same phone after a NAT rebinding that restarted its stream
	s, err := e.Open(pcmu(caller.addr()))
	if err != nil {
		t.Fatal(err)
	}
	payload := tone(g711.PCMU, 160, 0)
	caller.send(s.LocalAddr(), 0, payload)
	for range probationPackets {
		other.send(s.LocalAddr(), 0, payload)
	}
	waitIn(t, s, 1+probationPackets)
	if st := s.Stats(); st.Latched != caller.addr() || st.Dropped.ForeignSource != probationPackets {
		t.Fatalf("caller active: latched %s drops %+v", st.Latched, st.Dropped)
	}
	time.Sleep(relatchSilence + 100*time.Millisecond)
	for range probationPackets {
		other.send(s.LocalAddr(), 0, payload)
	}
	waitIn(t, s, 1+2*probationPackets)
	if st := s.Stats(); st.Latched != other.addr() || st.Dropped.Probation != probationPackets-1 {
		t.Fatalf("after a second of silence: latched %s, drops %+v; want %s", st.Latched, st.Dropped, other.addr())
	}
	s.WriteFrame(frameOf(0))
	other.recv()
	caller.expectSilence(50 * time.Millisecond)
	caller.send(s.LocalAddr(), 0, payload) // the old source is now foreign
	waitIn(t, s, 2+2*probationPackets)
	if st := s.Stats(); st.Dropped.ForeignSource != probationPackets+1 {
		t.Errorf("old source after re-latch: drops %+v", st.Dropped)
	}
}

// strangerPeer is a peer on 127.0.0.2, an address no call names; the test
// is skipped where the loopback has no such address.
func strangerPeer(t *testing.T) *peer {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 2)})
	if err != nil {
		t.Skipf("no 127.0.0.2 on this loopback: %v", err)
	}
	_ = c.Close()
	return newPeer(t, netip.MustParseAddr("127.0.0.2"))
}

// logEngine is testEngine with its log in a buffer.
func logEngine(t *testing.T, pairs int) (*Engine, *lockedBuffer) {
	t.Helper()
	lo, hi := freeRange(t, loop4, pairs)
	var buf lockedBuffer
	e, err := NewEngine(Config{Address: loop4, PortMin: lo, PortMax: hi, Logger: slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{ReplaceAttr: dropTime}))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Close() })
	return e, &buf
}

// dropTime leaves the time out of test logs: tests look for digits of a
// caller's number in them, and a timestamp's milliseconds can hold any three.
func dropTime(groups []string, a slog.Attr) slog.Attr {
	if len(groups) == 0 && a.Key == slog.TimeKey {
		return slog.Attr{}
	}
	return a
}

// lockedBuffer is a log sink written from the pollers.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// A stranger, an address neither the SDP nor the allowed networks name,
// is never latched: not before the caller's first packet, not while it
// talks, not after it has been silent for longer than relatchSilence. Its
// packets are counted, and logged once with the call's id.
func TestStrangerNeverLatchedEvenAfterSilence(t *testing.T) {
	e, logs := logEngine(t, 1)
	caller := newPeer(t, loop4)
	stranger := strangerPeer(t)
	p := pcmu(caller.addr())
	p.Allowed = []netip.Prefix{netip.PrefixFrom(loop4, 32)} // where its SIP came from
	p.CallID = "c4ll1d"
	s, err := e.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	payload := tone(g711.PCMU, 160, 0)
	spray := func(n int) {
		for range n { // in sequence, one SSRC: it would pass probation
			stranger.send(s.LocalAddr(), 0, payload)
		}
	}
	spray(10) // before the caller's first packet
	caller.send(s.LocalAddr(), 0, payload)
	spray(10) // while it talks
	waitIn(t, s, 21)
	time.Sleep(relatchSilence + 200*time.Millisecond)
	spray(10) // after 1.2 s of silence
	waitIn(t, s, 31)
	// RTCP from the stranger is refused too.
	stranger.sendRaw(netip.AddrPortFrom(loop4, s.LocalAddr().Port()+1), []byte{0x80, 201, 0, 1, 0, 0, 0, 1})
	deadline := time.Now().Add(2 * time.Second)
	for s.Stats().RTCP.Foreign == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	s.WriteFrame(frameOf(0))
	if _, from := caller.recv(); from != s.LocalAddr() {
		t.Fatalf("caller got a packet from %s", from)
	}
	stranger.expectSilence(200 * time.Millisecond)
	st := s.Stats()
	if st.Latched != caller.addr() || st.Dropped.ForeignSource != 30 || st.Dropped.Probation != 0 || st.RTCP.Foreign != 1 {
		t.Errorf("latched %s, drops %+v, RTCP %+v; want the caller, 30 foreign RTP and 1 foreign RTCP", st.Latched, st.Dropped, st.RTCP)
	}
	if got := st.Playout.Accepted; got != 1 {
		t.Errorf("buffered %d packets, want the caller's 1", got)
	}
	out := logs.String()
	if n := strings.Count(out, "rtpio: dropped media from an address the call did not name"); n != 1 {
		t.Errorf("%d log lines about the stranger, want 1 a minute:\n%s", n, out)
	}
	if !strings.Contains(out, "call=c4ll1d") || !strings.Contains(out, "source=127.0.0.2:") {
		t.Errorf("the stranger's log line lacks the call id or its source:\n%s", out)
	}
}

// A caller whose NAT maps it to a new port mid-call, its stream going on
// with the same SSRC and sequence, is followed at once both ways.
func TestNATRebindingFollowed(t *testing.T) {
	e, logs := logEngine(t, 1)
	caller := newPeer(t, loop4)
	p := pcmu(caller.addr())
	p.CallID = "n4t"
	s, err := e.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	payload := tone(g711.PCMU, 160, 0)
	for range 3 {
		caller.send(s.LocalAddr(), 0, payload)
	}
	waitIn(t, s, 3)
	rebound := newPeer(t, loop4)
	rebound.ssrc, rebound.seq, rebound.ts = caller.ssrc, caller.seq+2, caller.ts+320 // two lost in the NAT
	rebound.send(s.LocalAddr(), 0, payload)
	waitIn(t, s, 4)
	if st := s.Stats(); st.Latched != rebound.addr() || st.Dropped != (Drops{}) || st.Playout.Accepted != 4 {
		t.Fatalf("after the rebinding: latched %s, drops %+v, %d buffered; want %s, none dropped, 4", st.Latched, st.Dropped, st.Playout.Accepted, rebound.addr())
	}
	s.WriteFrame(frameOf(0))
	if _, from := rebound.recv(); from != s.LocalAddr() {
		t.Fatalf("rebound caller got a packet from %s", from)
	}
	caller.expectSilence(50 * time.Millisecond)
	if !strings.Contains(logs.String(), "call=n4t") {
		t.Errorf("the latching log line lacks the call id:\n%s", logs.String())
	}
}

// A re-INVITE's new allowed set takes effect: a source latched from a
// network no longer allowed is dropped, and sending goes back to the SDP
// address.
func TestUpdateReplacesAllowed(t *testing.T) {
	e := testEngine(t, 1)
	sdp := newPeer(t, loop4)
	third := strangerPeer(t)
	p := pcmu(sdp.addr())
	p.Allowed = []netip.Prefix{netip.MustParsePrefix("127.0.0.2/32")}
	s, err := e.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	payload := tone(g711.PCMU, 160, 0)
	for range probationPackets {
		third.send(s.LocalAddr(), 0, payload)
	}
	waitIn(t, s, probationPackets)
	if st := s.Stats(); st.Latched != third.addr() {
		t.Fatalf("allowed source not latched: %s", st.Latched)
	}
	p.Allowed = nil
	s.Update(p)
	if st := s.Stats(); st.Latched != sdp.addr() {
		t.Fatalf("after the update: latched %s, want the SDP address %s", st.Latched, sdp.addr())
	}
	s.WriteFrame(frameOf(0))
	sdp.recv()
	third.expectSilence(50 * time.Millisecond)
	third.send(s.LocalAddr(), 0, payload)
	waitIn(t, s, probationPackets+1)
	if st := s.Stats(); st.Dropped.ForeignSource != 1 {
		t.Errorf("drops %+v, want the no longer allowed source's packet foreign", st.Dropped)
	}
}

// sendPress sends one key press as RFC 4733 packets with payload type pt,
// returning the datagrams so a test can replay them.
func sendPress(t *testing.T, p *peer, dst netip.AddrPort, pt uint8, digit byte) [][]byte {
	t.Helper()
	code, ok := dtmf.EventCode(digit)
	if !ok {
		t.Fatalf("no event for %q", digit)
	}
	var sent [][]byte
	p.ts += 2000
	for i, ev := range dtmf.Press(code, 800, 0) {
		var b [dtmf.EventLen]byte
		if _, err := ev.MarshalTo(b[:]); err != nil {
			t.Fatal(err)
		}
		h := rtpHeader(pt, p.seq, p.ts, p.ssrc)
		h.Marker = i == 0
		pkt := marshal(t, h, b[:])
		p.sendRaw(dst, pkt)
		sent = append(sent, pkt)
		p.seq++
	}
	return sent
}

func expectDigits(t *testing.T, got <-chan byte, want string) {
	t.Helper()
	for i := range len(want) {
		select {
		case d := <-got:
			if d != want[i] {
				t.Fatalf("digit %d = %q, want %q", i, d, want[i])
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("digit %d (%q) never came", i, want[i])
		}
	}
	select {
	case d := <-got:
		t.Fatalf("unexpected extra digit %q", d)
	case <-time.After(50 * time.Millisecond):
	}
}

func TestDTMF(t *testing.T) {
	for _, pt := range []int{101, 96} {
		t.Run(fmt.Sprintf("PT%d", pt), func(t *testing.T) {
			e := testEngine(t, 1)
			p := newPeer(t, loop4)
			digits := make(chan byte, 16)
			s, err := e.Open(Params{Remote: p.addr(), Codec: g711.PCMU, DTMFPT: pt, OnDigit: func(d byte) { digits <- d }})
			if err != nil {
				t.Fatal(err)
			}
			dst := s.LocalAddr()
			sendPress(t, p, dst, uint8(pt), '5')
			sendPress(t, p, dst, uint8(pt), '#')
			expectDigits(t, digits, "5#")

			// Receiving off (hold): digits still count.
			s.SetDirection(true, false)
			sendPress(t, p, dst, uint8(pt), '1')
			expectDigits(t, digits, "1")
			s.SetDirection(true, true)

			// A replayed capture repeats sequence numbers and timestamps
			// exactly; it is still a new press, not a duplicate.
			first := sendPress(t, p, dst, uint8(pt), '7')
			expectDigits(t, digits, "7")
			time.Sleep(dtmf.RepressGap + 50*time.Millisecond)
			for _, pkt := range first {
				p.sendRaw(dst, pkt)
			}
			expectDigits(t, digits, "7")

			// The payload type not negotiated for telephone-event.
			other := uint8(101 + 96 - pt)
			before := s.Stats().Dropped.UnknownPayloadType
			sendPress(t, p, dst, other, '9')
			waitFor(t, "wrong-PT digit packets", func() bool {
				return s.Stats().Dropped.UnknownPayloadType > before+3
			})
			expectDigits(t, digits, "")
			if st := s.Stats(); st.Dropped.Duplicate != 0 || st.Dropped.Direction != 0 {
				t.Errorf("DTMF went through the audio rules: %+v", st.Dropped)
			}
		})
	}
}

// TestOnDigitMayCloseStream: OnDigit runs without the stream's locks, so
// a keypad handler that hangs up does not deadlock the poller.
func TestOnDigitMayCloseStream(t *testing.T) {
	e := testEngine(t, 2)
	p := newPeer(t, loop4)
	closed := make(chan error, 1)
	var s *Stream
	ready := make(chan struct{})
	s, err := e.Open(Params{Remote: p.addr(), Codec: g711.PCMU, DTMFPT: 101, OnDigit: func(byte) {
		<-ready
		closed <- s.Close()
	}})
	if err != nil {
		t.Fatal(err)
	}
	close(ready)
	sendPress(t, p, s.LocalAddr(), 101, '0')
	select {
	case err := <-closed:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("OnDigit never ran or Close deadlocked")
	}
	// The poller still serves other streams.
	s2, err := e.Open(pcmu(p.addr()))
	if err != nil {
		t.Fatal(err)
	}
	p.send(s2.LocalAddr(), 0, tone(g711.PCMU, 160, 0))
	waitIn(t, s2, 1)
}

func TestOtherPacketsCounted(t *testing.T) {
	e := testEngine(t, 1)
	p := newPeer(t, loop4)
	s, err := e.Open(pcmu(p.addr()))
	if err != nil {
		t.Fatal(err)
	}
	dst := s.LocalAddr()
	rtcpDst := netip.AddrPortFrom(dst.Addr(), dst.Port()+1)
	cases := []struct {
		name     string
		send     func()
		want     Drops
		wantRTCP RTCPStats
		alive    bool // proves the caller alive
	}{
		{"comfort noise", func() { p.send(dst, 13, []byte{40}) }, Drops{UnknownPayloadType: 1}, RTCPStats{}, true},
		{"not rtp", func() { p.sendRaw(dst, []byte("hello")) }, Drops{Malformed: 1}, RTCPStats{}, false},
		{"version 1", func() { b := marshal(t, rtpHeader(0, 1, 1, 1), make([]byte, 160)); b[0] = 0x40; p.sendRaw(dst, b) }, Drops{Malformed: 1}, RTCPStats{}, false},
		{"empty audio", func() { p.send(dst, 0, nil) }, Drops{Malformed: 1}, RTCPStats{}, true},
		{"empty rtcp receiver report", func() { p.sendRaw(rtcpDst, []byte{0x80, 201, 0, 1, 0, 0, 0, 1}) }, Drops{}, RTCPStats{Received: 1}, true},
		{"rtcp report count beyond the packet", func() { p.sendRaw(rtcpDst, []byte{0x81, 201, 0, 1, 0, 0, 0, 1}) }, Drops{}, RTCPStats{Malformed: 1}, false},
		{"not rtcp", func() { p.sendRaw(rtcpDst, []byte("hello")) }, Drops{}, RTCPStats{Malformed: 1}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := s.Stats()
			activity := s.LastActivity()
			c.send()
			waitIn(t, s, before.PacketsIn+1)
			after := s.Stats()
			d := after.Dropped
			d.UnknownPayloadType -= before.Dropped.UnknownPayloadType
			d.Malformed -= before.Dropped.Malformed
			if d != c.want {
				t.Errorf("drops %+v, want %+v", d, c.want)
			}
			r := after.RTCP
			r.Received -= before.RTCP.Received
			r.Malformed -= before.RTCP.Malformed
			if r != c.wantRTCP {
				t.Errorf("rtcp %+v, want %+v", r, c.wantRTCP)
			}
			// Any RTP or RTCP from the caller proves it alive.
			if alive := s.LastActivity().After(activity); alive != c.alive {
				t.Errorf("LastActivity advanced = %v", alive)
			}
		})
	}
	if es, st := e.Stats(), s.Stats(); es != st.Stats {
		t.Errorf("engine stats %+v differ from its only stream's %+v", es, st.Stats)
	}

	// RTCP from a third is counted but proves nothing.
	third := otherLoopback(t)
	if third.addr().Addr() == p.addr().Addr() {
		return // no second loopback address: RTCP is matched by address only
	}
	activity := s.LastActivity()
	before := s.Stats()
	third.sendRaw(rtcpDst, []byte{0x80, 201, 0, 1, 0, 0, 0, 1})
	waitIn(t, s, before.PacketsIn+1)
	if !s.LastActivity().Equal(activity) {
		t.Error("RTCP from a third counted as activity")
	}
	if after := s.Stats().RTCP; after.Foreign != before.RTCP.Foreign+1 || after.Received != before.RTCP.Received {
		t.Errorf("RTCP from a third: %+v before, %+v after; want one more Foreign", before.RTCP, after)
	}
}

func TestReceiveAudio(t *testing.T) {
	for _, c := range codecs {
		t.Run(c.name, func(t *testing.T) {
			e := socketEngine(t, 1)
			p := newPeer(t, loop4)
			s, err := e.Open(Params{Remote: p.addr(), Codec: c.codec, AudioPT: c.pt, DTMFPT: 101})
			if err != nil {
				t.Fatal(err)
			}
			opened := s.LastActivity()
			const n = 10 // 8 checked, 2 to play while the 8th is
			sends := idStream(t, p, c.codec, c.pt, n, pcm.FrameDuration, func(i int) time.Duration { return time.Duration(i) * pcm.FrameDuration })
			frames := paced(t, s, p, s.LocalAddr(), sends, n+20)
			checkOrder(t, idsPlayed(c.codec, receivedOf(frames)), n-2)
			if last := frames[len(frames)-1]; last.ok || last.f != (pcm.Frame{}) {
				t.Error("ReadFrame long after the last packet must return false and silence")
			}
			st := s.Stats()
			if st.PacketsIn != n || st.BytesIn != n*172 || st.Dropped != (Drops{}) || st.Latched != p.addr() || st.Playout.Accepted != n {
				t.Errorf("stats %+v", st)
			}
			if !s.LastActivity().After(opened) {
				t.Errorf("LastActivity %v not after open %v", s.LastActivity(), opened)
			}
		})
	}
}

func TestReceivePtimes(t *testing.T) {
	for _, ms := range []int{10, 20, 30, 40} {
		ptime := time.Duration(ms) * time.Millisecond
		t.Run(ptime.String(), func(t *testing.T) {
			e := socketEngine(t, 1)
			p := newPeer(t, loop4)
			s, err := e.Open(pcmu(p.addr()))
			if err != nil {
				t.Fatal(err)
			}
			n := int(200 * time.Millisecond / ptime)
			sends := idStream(t, p, g711.PCMU, 0, n+3, ptime, func(i int) time.Duration { return time.Duration(i) * ptime })
			frames := paced(t, s, p, s.LocalAddr(), sends, 25)
			checkOrder(t, idsPlayed(g711.PCMU, receivedOf(frames)), n)
			if st := s.Stats(); st.Dropped != (Drops{}) {
				t.Errorf("drops %+v", st.Dropped)
			}
		})
	}
}

// TestReorderedPlayedInOrder: packets swapped in pairs on the way play in
// their order, none dropped as old.
func TestReorderedPlayedInOrder(t *testing.T) {
	e := socketEngine(t, 1)
	p := newPeer(t, loop4)
	s, err := e.Open(pcmu(p.addr()))
	if err != nil {
		t.Fatal(err)
	}
	const n = 12 // and two more
	sends := idStream(t, p, g711.PCMU, 0, n+2, pcm.FrameDuration, func(i int) time.Duration { return time.Duration(i^1) * pcm.FrameDuration })
	frames := paced(t, s, p, s.LocalAddr(), sends, n+20)
	checkOrder(t, idsPlayed(g711.PCMU, receivedOf(frames)), n)
	if st := s.Stats(); st.Dropped != (Drops{}) || st.Playout.Accepted != n+2 {
		t.Errorf("drops %+v, playout %+v", st.Dropped, st.Playout)
	}
}

// TestInbandDigitThroughReadFrame: a caller without telephone-event
// presses a key in the audio; OnDigit is called from ReadFrame and what
// ReadFrame returns carries no trace of the tone.
func TestInbandDigitThroughReadFrame(t *testing.T) {
	e := socketEngine(t, 1)
	p := newPeer(t, loop4)
	digits := make(chan byte, 4)
	s, err := e.Open(Params{Remote: p.addr(), Codec: g711.PCMU, DTMFPT: -1, OnDigit: func(d byte) { digits <- d }})
	if err != nil {
		t.Fatal(err)
	}
	var in []int16
	var sends []sendAt
	frames := append(append(make([]pcm.Frame, 5), dtmfTone('#', 4)...), make([]pcm.Frame, 5)...)
	for i, f := range frames {
		payload := make([]byte, pcm.FrameSamples)
		g711.PCMU.Encode(payload, f[:])
		in = append(in, decoded(g711.PCMU, payload)...)
		sends = append(sends, sendAt{time.Duration(i) * pcm.FrameDuration, marshal(t, rtpHeader(0, p.seq+uint16(i), p.ts+uint32(160*i), p.ssrc), payload)})
	}
	played := paced(t, s, p, s.LocalAddr(), sends, len(frames)+20)
	expectDigits(t, digits, "#")
	out := audioOf(played)
	in = append(in, make([]int16, len(out)-len(in))...) // equal windows
	for _, hz := range []float64{941, 1477} {
		if before, after := sig.LevelDBFS(in, hz), sig.LevelDBFS(out, hz); before-after < 30 {
			t.Errorf("%v Hz: %.1f dBFS sent, %.1f dBFS returned by ReadFrame: want at least 30 dB down", hz, before, after)
		}
	}
}

func TestLongPackets(t *testing.T) {
	e := testEngine(t, 1)
	p := newPeer(t, loop4)
	s, err := e.Open(pcmu(p.addr()))
	if err != nil {
		t.Fatal(err)
	}
	p.send(s.LocalAddr(), 0, tone(g711.PCMU, maxPayload, 0)) // ptime 1 s: the most accepted
	p.send(s.LocalAddr(), 0, make([]byte, maxPayload+1))     // too long to be audio
	big := make([]byte, recvBufSize+100)                     // longer than the receive buffer
	big[0] = 0x80
	p.sendRaw(s.LocalAddr(), big)
	waitIn(t, s, 3)
	if st := s.Stats(); st.Dropped != (Drops{Malformed: 2}) || st.Playout.Accepted != 1 {
		t.Errorf("drops %+v, playout %+v; want 2 malformed and the 1 s packet buffered", st.Dropped, st.Playout)
	}
}

func TestDuplicatesDropped(t *testing.T) {
	e := testEngine(t, 1)
	p := newPeer(t, loop4)
	s, err := e.Open(pcmu(p.addr()))
	if err != nil {
		t.Fatal(err)
	}
	payload := tone(g711.PCMU, 160, 0)
	base := p.ts
	for _, seq := range []uint16{65534, 65534, 65535, 65533, 0, 65535} {
		p.ts = base + 160*uint32(seq-65533)
		p.sendSeq(s.LocalAddr(), 0, seq, payload)
	}
	waitIn(t, s, 6)
	// 65533 arrives after newer packets but before its time to play: it
	// is reordered, not old.
	if st := s.Stats(); st.Dropped != (Drops{Duplicate: 2}) || st.Playout.Accepted != 4 {
		t.Errorf("drops %+v, playout %+v; want 2 duplicates (across the wrap) and 4 packets buffered", st.Dropped, st.Playout)
	}
}

func TestStrangerIsNeverLatched(t *testing.T) {
	e := testEngine(t, 1)
	caller := newPeer(t, loop4)
	third := otherLoopback(t)
	s, err := e.Open(pcmu(caller.addr()))
	if err != nil {
		t.Fatal(err)
	}
	payload := tone(g711.PCMU, 160, 0)
	for range 10 {
		caller.send(s.LocalAddr(), 0, payload)
		for range 3 { // in sequence, one SSRC: it would pass probation
			third.send(s.LocalAddr(), 0, payload)
		}
	}
	waitIn(t, s, 40)
	for k := range 5 {
		s.WriteFrame(frameOf(k))
	}
	for range 5 {
		if _, from := caller.recv(); from != s.LocalAddr() {
			t.Fatalf("caller got a packet from %s", from)
		}
	}
	third.expectSilence(200 * time.Millisecond)
	st := s.Stats()
	if st.Latched != caller.addr() || st.Dropped.ForeignSource != 30 || st.Dropped.Probation != 0 {
		t.Errorf("latched %s, drops %+v; want the caller and 30 foreign", st.Latched, st.Dropped)
	}
	if got := st.Playout.Accepted; got != 10 {
		t.Errorf("buffered %d packets, want the caller's 10", got)
	}
}

func TestLatchBehindNAT(t *testing.T) {
	e := testEngine(t, 1)
	sdp := netip.MustParseAddrPort("127.0.0.1:9") // what the phone wrote; NAT changed it
	caller := newPeer(t, loop4)
	s, err := e.Open(pcmu(sdp))
	if err != nil {
		t.Fatal(err)
	}
	payload := tone(g711.PCMU, 160, 0)
	for range probationPackets - 1 {
		caller.send(s.LocalAddr(), 0, payload)
	}
	waitIn(t, s, probationPackets-1)
	if st := s.Stats(); st.Latched != sdp || st.Dropped.Probation != probationPackets-1 {
		t.Fatalf("during probation: latched %s, drops %+v", st.Latched, st.Dropped)
	}
	s.WriteFrame(frameOf(0)) // goes to the SDP address, not to the caller
	caller.send(s.LocalAddr(), 0, payload)
	waitIn(t, s, probationPackets)
	if st := s.Stats(); st.Latched != caller.addr() {
		t.Fatalf("after %d in-sequence packets: latched %s, want %s", probationPackets, st.Latched, caller.addr())
	}
	if got := s.Stats().Playout.Accepted; got != 1 {
		t.Errorf("buffered %d packets, want the latching packet", got)
	}
	s.WriteFrame(frameOf(1))
	if _, from := caller.recv(); from != s.LocalAddr() {
		t.Errorf("latched caller got a packet from %s", from)
	}
	caller.expectSilence(50 * time.Millisecond) // the frame sent before latching went to :9
}

func TestDirection(t *testing.T) {
	e := testEngine(t, 1)
	p := newPeer(t, loop4)
	s, err := e.Open(pcmu(p.addr()))
	if err != nil {
		t.Fatal(err)
	}
	s.WriteFrame(frameOf(0))
	first, _ := p.recv()

	s.SetDirection(false, false) // inactive
	for k := range 5 {
		s.WriteFrame(frameOf(k))
	}
	p.expectSilence(100 * time.Millisecond)
	before := s.LastActivity()
	p.send(s.LocalAddr(), 0, tone(g711.PCMU, 320, 0))
	waitIn(t, s, 1)
	if st := s.Stats(); st.Dropped.Direction != 1 || st.Playout.Accepted != 0 {
		t.Errorf("audio while not receiving: drops %+v, playout %+v", st.Dropped, st.Playout)
	}
	if !s.LastActivity().After(before) {
		t.Error("audio while not receiving must still count as activity")
	}

	s.SetDirection(true, true)
	s.WriteFrame(frameOf(9))
	pkt, _ := p.recv()
	if !pkt.Marker || pkt.SequenceNumber != first.SequenceNumber+1 {
		t.Errorf("resumed sending: marker %v seq %d, want marker and seq %d (no gap for unsent frames)",
			pkt.Marker, pkt.SequenceNumber, first.SequenceNumber+1)
	}
	if pkt.Timestamp-first.Timestamp < 800 {
		t.Errorf("timestamp advanced %d over a pause of more than 100 ms", pkt.Timestamp-first.Timestamp)
	}
	if st := s.Stats(); st.PacketsOut != 2 {
		t.Errorf("PacketsOut = %d, want 2", st.PacketsOut)
	}
}

func TestUpdate(t *testing.T) {
	e := testEngine(t, 1)
	sdp := netip.MustParseAddrPort("127.0.0.1:9")
	natted := newPeer(t, loop4)
	moved := newPeer(t, loop4)
	s, err := e.Open(pcmu(sdp))
	if err != nil {
		t.Fatal(err)
	}
	payload := tone(g711.PCMU, 160, 0)
	for range probationPackets {
		natted.send(s.LocalAddr(), 0, payload)
	}
	waitIn(t, s, probationPackets)

	// Same remote, new codec: latching is kept, the codec changes.
	s.Update(Params{Remote: sdp, Codec: g711.PCMA, AudioPT: 8, DTMFPT: 101})
	if st := s.Stats(); st.Latched != natted.addr() {
		t.Fatalf("re-INVITE with the same address un-latched: %s", st.Latched)
	}
	s.WriteFrame(frameOf(0))
	if pkt, _ := natted.recv(); pkt.PayloadType != 8 {
		t.Errorf("after Update to PCMA: PT %d", pkt.PayloadType)
	}

	// A new remote is trusted at once and resets latching.
	s.Update(Params{Remote: moved.addr(), Codec: g711.PCMA, AudioPT: 8, DTMFPT: 101})
	if st := s.Stats(); st.Latched != moved.addr() {
		t.Fatalf("after Update with a new remote: latched %s, want %s", st.Latched, moved.addr())
	}
	s.WriteFrame(frameOf(1))
	moved.recv()
	natted.expectSilence(50 * time.Millisecond)
	natted.send(s.LocalAddr(), 8, payload) // no longer trusted: probation again
	alaw := tone(g711.PCMA, 320, 5)
	moved.send(s.LocalAddr(), 8, alaw)
	waitIn(t, s, probationPackets+2)
	// The latching packet and the new remote's (TestPlayoutExact checks
	// that a codec change decodes right).
	if st := s.Stats(); st.Dropped.Probation != probationPackets || st.Playout.Accepted != 2 {
		t.Errorf("old source after Update: drops %+v, want one more probation drop; playout %+v", st.Dropped, st.Playout)
	}

	// Invalid parameters are ignored.
	s.Update(Params{Remote: natted.addr(), Codec: 3, DTMFPT: -1})
	if st := s.Stats(); st.Latched != moved.addr() {
		t.Errorf("an invalid Update changed the remote to %s", st.Latched)
	}
}

// TestKeyPressesAreNotLost: RFC 4733 packets share the audio's sequence
// numbers and go to the key decoder, not the jitter buffer; the loss figure
// counts them as received (RFC 3550 A.3), so a clean call with key presses
// loses nothing, while a real gap still counts.
func TestKeyPressesAreNotLost(t *testing.T) {
	tests := []struct {
		name string
		skip int // index into the datagrams of one never sent; -1: none
		want uint64
	}{
		{"clean", -1, 0},
		{"one audio packet missing", 25, 1},
		{"one key packet missing", 12, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := socketEngine(t, 1)
			p := newPeer(t, loop4)
			digits := make(chan byte, 4)
			prm := pcmu(p.addr())
			prm.OnDigit = func(d byte) { digits <- d }
			s, err := e.Open(prm)
			if err != nil {
				t.Fatal(err)
			}
			dst := s.LocalAddr()

			// Audio, a press of 5, audio, a press of #, audio: one
			// sequence, every packet in its 20 ms slot, the audio's
			// timestamps going on after each press.
			var sends []sendAt
			slot := 0
			audio := func(n int) {
				sends = append(sends, idStream(t, p, g711.PCMU, 0, n, pcm.FrameDuration, func(i int) time.Duration {
					return time.Duration(slot+i) * pcm.FrameDuration
				})...)
				slot += n
			}
			press := func(digit byte) {
				code, _ := dtmf.EventCode(digit)
				evs := dtmf.Press(code, 800, 0)
				for i, ev := range evs {
					var b [dtmf.EventLen]byte
					if _, err := ev.MarshalTo(b[:]); err != nil {
						t.Fatal(err)
					}
					h := rtpHeader(101, p.seq, p.ts, p.ssrc)
					h.Marker = i == 0
					sends = append(sends, sendAt{time.Duration(slot+min(i, len(evs)-3)) * pcm.FrameDuration, marshal(t, h, b[:])})
					p.seq++
				}
				n := len(evs) - 2 // the three end packets share a slot
				slot += n
				p.ts += uint32(n * pcm.FrameSamples)
			}
			audio(10)
			press('5')
			audio(10)
			press('#')
			audio(10)
			if tc.skip >= 0 {
				sends = slices.Delete(sends, tc.skip, tc.skip+1)
			}

			paced(t, s, p, dst, sends, slot+5)
			waitIn(t, s, uint64(len(sends)))
			expectDigits(t, digits, "5#")
			if got := e.Stats().Lost; got != tc.want {
				t.Errorf("engine lost %d, want %d", got, tc.want)
			}
			if in := s.Quality().Inbound; in.Lost != int64(tc.want) || in.Received != uint64(len(sends)) {
				t.Errorf("inbound %+v, want %d lost of %d received", in, tc.want, len(sends))
			}
			// A closed stream's losses stay in the total, counted once.
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			if got := e.Stats().Lost; got != tc.want {
				t.Errorf("after close: engine lost %d, want %d", got, tc.want)
			}
		})
	}
}
