//go:build linux

package rtpio

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"
	"golang.org/x/sys/unix"

	"github.com/groupbridge/groupbridge/media/dtmf"
	"github.com/groupbridge/groupbridge/media/g711"
	"github.com/groupbridge/groupbridge/media/pcm"
)

// farEnd is a peer playing the other end of a relayed stream: the caller's
// phone or the owner node, with the SRTP contexts of its side when the
// stream uses SRTP.
type farEnd struct {
	*peer
	enc, dec *srtp.Context // nil: plain RTP
}

// newFarEnd makes a far end on addr; with srtpOn it also returns the keys
// the stream facing it must use.
func newFarEnd(t *testing.T, addr netip.Addr, srtpOn bool) (*farEnd, *SRTPKeys) {
	t.Helper()
	f := &farEnd{peer: newPeer(t, addr)}
	if !srtpOn {
		return f, nil
	}
	k := &SRTPKeys{Local: srtpKey(t), Remote: srtpKey(t)}
	f.dec, f.enc = peerContext(t, k.Local), peerContext(t, k.Remote)
	return f, k
}

// sendPkt sends payload under h, encrypted when the far end uses SRTP.
func (f *farEnd) sendPkt(dst netip.AddrPort, h rtp.Header, payload []byte) {
	f.t.Helper()
	b := marshal(f.t, h, payload)
	if f.enc != nil {
		var err error
		if b, err = f.enc.EncryptRTP(nil, b, nil); err != nil {
			f.t.Fatal(err)
		}
	}
	f.sendRaw(dst, b)
}

// sendNext sends payload with the far end's next sequence number and
// timestamp, and returns the header it used.
func (f *farEnd) sendNext(dst netip.AddrPort, pt uint8, payload []byte) rtp.Header {
	f.t.Helper()
	h := rtpHeader(pt, f.seq, f.ts, f.ssrc)
	f.seq++
	f.ts += uint32(len(payload))
	f.sendPkt(dst, h, payload)
	return h
}

// recvRaw reads one datagram within d.
func (f *farEnd) recvRaw(d time.Duration) ([]byte, error) {
	buf := make([]byte, 2048)
	_ = f.conn.SetReadDeadline(time.Now().Add(d))
	n, _, err := f.conn.ReadFromUDPAddrPort(buf)
	if err != nil {
		return nil, err
	}
	return buf[:n], nil
}

// recvPkt reads, decrypts and parses one RTP packet.
func (f *farEnd) recvPkt() rtp.Packet {
	f.t.Helper()
	b, err := f.recvRaw(5 * time.Second)
	if err != nil {
		f.t.Fatalf("far end %s: %v", f.addr(), err)
	}
	if f.dec != nil {
		if b, err = f.dec.DecryptRTP(nil, b, nil); err != nil {
			f.t.Fatalf("far end %s: SRTP: %v", f.addr(), err)
		}
	}
	var p rtp.Packet
	if err := p.Unmarshal(b); err != nil {
		f.t.Fatal(err)
	}
	return p
}

// relayRig is an engine with a caller stream and a leg stream, each facing
// its far end.
type relayRig struct {
	e           *Engine
	caller, leg *Stream
	cp, lp      *farEnd
}

// rigParams are what the rig's streams negotiate.
type rigParams struct {
	callerSRTP, legSRTP bool
	callerDTMF, legDTMF int // telephone-event payload types; -1 none
}

var plainRig = rigParams{callerDTMF: 101, legDTMF: 96}

func newRelayRig(t *testing.T, rp rigParams) *relayRig {
	t.Helper()
	e := testEngine(t, 6)
	e.cfg.JitterMin = 60 * time.Millisecond // ride out a busy machine where audio plays
	r := &relayRig{e: e}
	r.caller, r.cp = openFacing(t, e, rp.callerSRTP, rp.callerDTMF)
	r.leg, r.lp = openFacing(t, e, rp.legSRTP, rp.legDTMF)
	return r
}

// openFacing opens a PCMU stream and the far end it faces.
func openFacing(t *testing.T, e *Engine, srtpOn bool, dtmfPT int) (*Stream, *farEnd) {
	t.Helper()
	f, keys := newFarEnd(t, loop4, srtpOn)
	p := pcmu(f.addr())
	p.DTMFPT, p.SRTP = dtmfPT, keys
	p.OnDigit = func(byte) { t.Errorf("OnDigit called on a relayed stream") }
	s, err := e.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	return s, f
}

// sendStream sends n audio packets from f to dst, each with a payload
// told apart by its first byte, and returns their headers and payloads.
func sendStream(f *farEnd, dst netip.AddrPort, n int) ([]rtp.Header, [][]byte) {
	var hs []rtp.Header
	var ps [][]byte
	for i := range n {
		pl := tone(g711.PCMU, pcm.FrameSamples, i)
		pl[0] = byte(i)
		hs = append(hs, f.sendNext(dst, 0, pl))
		ps = append(ps, pl)
		time.Sleep(time.Millisecond)
	}
	return hs, ps
}

// checkRelayed reads len(ps) packets at f and checks that they carry ps
// unchanged, with s's SSRC and audio payload type, sequence numbers that
// go up by one and timestamps that follow the source's (hs).
func checkRelayed(t *testing.T, f *farEnd, s *Stream, hs []rtp.Header, ps [][]byte) []rtp.Packet {
	t.Helper()
	var got []rtp.Packet
	for i := range ps {
		p := f.recvPkt()
		if !bytes.Equal(p.Payload, ps[i]) {
			t.Fatalf("packet %d: payload differs", i)
		}
		if p.SSRC != s.ssrc || p.PayloadType != 0 {
			t.Errorf("packet %d: SSRC %#x PT %d, want the stream's %#x and 0", i, p.SSRC, p.PayloadType, s.ssrc)
		}
		if i > 0 {
			prev := got[i-1]
			if p.SequenceNumber != prev.SequenceNumber+1 {
				t.Errorf("packet %d: seq %d after %d", i, p.SequenceNumber, prev.SequenceNumber)
			}
			if d, want := p.Timestamp-prev.Timestamp, hs[i].Timestamp-hs[i-1].Timestamp; d != want {
				t.Errorf("packet %d: timestamp advanced %d, the source's %d", i, d, want)
			}
		}
		got = append(got, p)
	}
	return got
}

// TestRelayBothWays relays audio both ways, with SRTP on neither, one or
// both legs: each far end gets the other's payloads unchanged in the
// stream's own RTP session, only a far end with the right key can read
// them, strangers' packets go nowhere, and neither stream plays.
func TestRelayBothWays(t *testing.T) {
	tests := []struct {
		name string
		rp   rigParams
	}{
		{"plain", plainRig},
		{"srtp-leg", rigParams{legSRTP: true, callerDTMF: 101, legDTMF: 96}},
		{"srtp-caller", rigParams{callerSRTP: true, callerDTMF: 101, legDTMF: 96}},
		{"srtp-both", rigParams{callerSRTP: true, legSRTP: true, callerDTMF: 101, legDTMF: 96}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := newRelayRig(t, tt.rp)
			r, err := g.e.Relay(g.caller, g.leg, 1)
			if err != nil {
				t.Fatal(err)
			}
			const n = 12
			hs, ps := sendStream(g.cp, g.caller.LocalAddr(), n)
			checkRelayed(t, g.lp, g.leg, hs, ps)
			hs, ps = sendStream(g.lp, g.leg.LocalAddr(), n)
			checkRelayed(t, g.cp, g.caller, hs, ps)
			// The far end may read a packet before its sender counts it.
			waitFor(t, "the relay's counts", func() bool { return r.Stats() == RelayStats{ToLeg: n, ToCaller: n} })
			for _, s := range []*Stream{g.caller, g.leg} {
				var f pcm.Frame
				if s.ReadFrame(&f) {
					t.Errorf("stream %d played a frame while relayed", s.port)
				}
			}

			// A far end with the wrong key cannot read what the SRTP
			// leg sends.
			if tt.rp.legSRTP {
				sendStream(g.cp, g.caller.LocalAddr(), 1)
				b, err := g.lp.recvRaw(5 * time.Second)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := peerContext(t, srtpKey(t)).DecryptRTP(nil, b, nil); err == nil {
					t.Error("a wrong key decrypted the leg's packet")
				}
				if len(b) != rtpHeaderLen+pcm.FrameSamples+SRTPAES128CMSHA80.tagLen() {
					t.Errorf("SRTP datagram of %d bytes", len(b))
				}
			}

			// Strangers: another address, and for SRTP the right
			// address with the wrong key. Nothing reaches the far ends.
			// (An SRTP stream authenticates before it looks at the
			// source.)
			stranger := &farEnd{peer: newPeer(t, netip.MustParseAddr("127.0.0.2"))}
			sendStream(stranger, g.caller.LocalAddr(), 3)
			sendStream(stranger, g.leg.LocalAddr(), 3)
			var wantAuth, wantForeign uint64
			for _, on := range []bool{tt.rp.callerSRTP, tt.rp.legSRTP} {
				if on {
					wantAuth += 3
				} else {
					wantForeign += 3
				}
			}
			if tt.rp.callerSRTP || tt.rp.legSRTP {
				bad, _ := newFarEnd(t, loop4, true)
				if tt.rp.callerSRTP {
					bad.sendNext(g.caller.LocalAddr(), 0, tone(g711.PCMU, 160, 0))
					wantAuth++
				}
				if tt.rp.legSRTP {
					bad.sendNext(g.leg.LocalAddr(), 0, tone(g711.PCMU, 160, 0))
					wantAuth++
				}
			}
			waitFor(t, "the strangers' packets", func() bool {
				st := g.e.Stats().Dropped
				return st.ForeignSource == wantForeign && st.SRTPAuth == wantAuth
			})
			g.cp.expectSilence(100 * time.Millisecond)
			g.lp.expectSilence(100 * time.Millisecond)
		})
	}
}

// TestRelayMapping relays a source with a lost packet, a reordered one
// and a duplicate: the loss stays a gap in the sequence, the reordered
// packet keeps its place by timestamp, the duplicate is dropped.
func TestRelayMapping(t *testing.T) {
	g := newRelayRig(t, plainRig)
	if _, err := g.e.Relay(g.caller, g.leg, 1); err != nil {
		t.Fatal(err)
	}
	src := g.cp
	send := func(i int) {
		pl := tone(g711.PCMU, 160, i)
		pl[0] = byte(i)
		src.sendPkt(g.caller.LocalAddr(), rtpHeader(0, src.seq+uint16(i), src.ts+uint32(160*i), src.ssrc), pl)
		time.Sleep(2 * time.Millisecond)
	}
	for _, i := range []int{0, 1, 3, 2, 2, 4} { // 2 late, then again
		send(i)
	}
	var got []rtp.Packet
	for range 5 {
		got = append(got, g.lp.recvPkt())
	}
	g.lp.expectSilence(100 * time.Millisecond)
	base := got[0]
	for k, i := range []int{0, 1, 3, 2, 4} {
		p := got[k]
		if int(p.Payload[0]) != i || p.SequenceNumber-base.SequenceNumber != uint16(i) || p.Timestamp-base.Timestamp != uint32(160*i) {
			t.Errorf("packet %d: id %d seq +%d ts +%d, want id %d at +%d, +%d", k, p.Payload[0],
				p.SequenceNumber-base.SequenceNumber, p.Timestamp-base.Timestamp, i, i, 160*i)
		}
	}
	if d := g.caller.Stats().Dropped.Duplicate; d != 1 {
		t.Errorf("%d duplicates counted, want 1", d)
	}
}

// TestRelayEvents forwards telephone-events under the other stream's
// payload type, or drops and counts them when it has none; OnDigit is
// never called (openFacing fails the test if it is).
func TestRelayEvents(t *testing.T) {
	tests := []struct {
		name        string
		legDTMF     int
		wantPT      uint8
		wantDropped uint64
	}{
		{"101 to 96", 96, 96, 0},
		{"101 to 101", 101, 101, 0},
		{"leg has none", -1, 0, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := newRelayRig(t, rigParams{callerDTMF: 101, legDTMF: tt.legDTMF})
			r, err := g.e.Relay(g.caller, g.leg, 1)
			if err != nil {
				t.Fatal(err)
			}
			var ev [dtmf.EventLen]byte
			for _, end := range []bool{false, true} {
				if _, err := (dtmf.Event{Code: 5, End: end, Volume: 10, Duration: 800}).MarshalTo(ev[:]); err != nil {
					t.Fatal(err)
				}
				h := rtpHeader(101, g.cp.seq, g.cp.ts, g.cp.ssrc)
				h.Marker = !end
				g.cp.seq++
				g.cp.sendPkt(g.caller.LocalAddr(), h, ev[:])
				if tt.wantDropped > 0 {
					continue
				}
				p := g.lp.recvPkt()
				if p.PayloadType != tt.wantPT || !bytes.Equal(p.Payload, ev[:]) || p.Marker != !end || p.SSRC != g.leg.ssrc {
					t.Errorf("event at the leg: PT %d marker %v payload %x SSRC %#x, want PT %d", p.PayloadType, p.Marker, p.Payload, p.SSRC, tt.wantPT)
				}
			}
			if tt.wantDropped > 0 {
				waitFor(t, "the events", func() bool { return r.Stats().EventsDropped == tt.wantDropped })
				g.lp.expectSilence(100 * time.Millisecond)
				return
			}
			// And back: the owner's event reaches the caller as 101.
			g.lp.sendNext(g.leg.LocalAddr(), tt.wantPT, ev[:])
			if p := g.cp.recvPkt(); p.PayloadType != 101 || !bytes.Equal(p.Payload, ev[:]) {
				t.Errorf("event at the caller: PT %d payload %x", p.PayloadType, p.Payload)
			}
		})
	}
}

// TestRelayRepoint moves the relay to a new leg: the caller keeps its
// SSRC, its sequence goes on by one and its timestamps by the time that
// passed; the caller's audio goes to the new leg only, and the old leg
// plays again.
func TestRelayRepoint(t *testing.T) {
	g := newRelayRig(t, rigParams{callerDTMF: 101, legDTMF: 96, legSRTP: true})
	r, err := g.e.Relay(g.caller, g.leg, 3)
	if err != nil {
		t.Fatal(err)
	}
	hs, ps := sendStream(g.lp, g.leg.LocalAddr(), 5)
	before := checkRelayed(t, g.cp, g.caller, hs, ps)
	last := before[len(before)-1]

	leg2, lp2 := openFacing(t, g.e, true, 96)
	if err := r.Repoint(leg2, 4); err != nil {
		t.Fatal(err)
	}
	if r.Epoch() != 4 {
		t.Errorf("epoch %d after Repoint at 4", r.Epoch())
	}
	gap := 200 * time.Millisecond
	switched := time.Now()
	time.Sleep(gap)
	hs, ps = sendStream(lp2, leg2.LocalAddr(), 5)
	elapsed := time.Since(switched)
	after := checkRelayed(t, g.cp, g.caller, hs, ps)
	first := after[0]
	if first.SSRC != last.SSRC || first.SequenceNumber != last.SequenceNumber+1 {
		t.Errorf("after Repoint: SSRC %#x seq %d; before: SSRC %#x seq %d", first.SSRC, first.SequenceNumber, last.SSRC, last.SequenceNumber)
	}
	adv := time.Duration(first.Timestamp-last.Timestamp) * time.Second / pcm.SampleRate
	if adv < gap || adv > elapsed+100*time.Millisecond {
		t.Errorf("timestamp advanced %v across a switch of %v (at most %v passed)", adv, gap, elapsed)
	}
	if !first.Marker {
		t.Error("no marker bit after the switch")
	}

	// The caller's audio now reaches the new leg only.
	hs, ps = sendStream(g.cp, g.caller.LocalAddr(), 3)
	checkRelayed(t, lp2, leg2, hs, ps)
	g.lp.expectSilence(100 * time.Millisecond)

	// The old leg plays its own audio again.
	played := paced(t, g.leg, g.lp.peer, g.leg.LocalAddr(), idStreamSRTP(t, g.lp, 10), 20)
	n := 0
	for _, f := range played {
		if f.ok && !f.concealed {
			n++
		}
	}
	if n == 0 {
		t.Error("the old leg played nothing after Repoint")
	}
	if err := r.Repoint(leg2, 5); err == nil {
		t.Error("Repoint to the current leg succeeded")
	}
	if err := r.Repoint(g.leg, 2); err == nil {
		t.Error("Repoint to an epoch below the relay's succeeded")
	}
}

// idStreamSRTP is n packets of 20 ms audio from f, encrypted when f uses
// SRTP, sent 20 ms apart.
func idStreamSRTP(t *testing.T, f *farEnd, n int) []sendAt {
	var out []sendAt
	for i := range n {
		b := marshal(t, rtpHeader(0, f.seq, f.ts, f.ssrc), idPayload(g711.PCMU, i, 160))
		f.seq++
		f.ts += 160
		if f.enc != nil {
			var err error
			if b, err = f.enc.EncryptRTP(nil, b, nil); err != nil {
				t.Fatal(err)
			}
		}
		out = append(out, sendAt{time.Duration(i) * pcm.FrameDuration, b})
	}
	return out
}

// TestRelayStaleEpoch: once the relay knows a newer epoch, the old leg's
// packets are dropped and counted, either way, and the new leg's pass.
func TestRelayStaleEpoch(t *testing.T) {
	g := newRelayRig(t, plainRig)
	r, err := g.e.Relay(g.caller, g.leg, 4)
	if err != nil {
		t.Fatal(err)
	}
	hs, ps := sendStream(g.lp, g.leg.LocalAddr(), 2)
	checkRelayed(t, g.cp, g.caller, hs, ps)

	r.SetEpoch(5)
	r.SetEpoch(3) // never backwards
	if r.Epoch() != 5 {
		t.Fatalf("epoch %d, want 5", r.Epoch())
	}
	sendStream(g.lp, g.leg.LocalAddr(), 4)
	sendStream(g.cp, g.caller.LocalAddr(), 2)
	waitFor(t, "the stale packets", func() bool { return r.Stats().StaleEpoch == 6 })
	g.cp.expectSilence(100 * time.Millisecond)
	g.lp.expectSilence(10 * time.Millisecond)
	if d := g.leg.Stats().Dropped.StaleEpoch; d != 4 {
		t.Errorf("leg counted %d stale packets, want 4", d)
	}
	if d := g.e.Stats().Dropped.StaleEpoch; d != 6 {
		t.Errorf("engine counted %d stale packets, want 6", d)
	}

	leg2, lp2 := openFacing(t, g.e, false, 96)
	if err := r.Repoint(leg2, 5); err != nil {
		t.Fatal(err)
	}
	hs, ps = sendStream(lp2, leg2.LocalAddr(), 3)
	checkRelayed(t, g.cp, g.caller, hs, ps)
	hs, ps = sendStream(g.cp, g.caller.LocalAddr(), 3)
	checkRelayed(t, lp2, leg2, hs, ps)
	waitFor(t, "the relay's counts", func() bool { return r.Stats() == RelayStats{StaleEpoch: 6, ToCaller: 5, ToLeg: 3} })
}

// TestRelayWriteFrameInterleaves: a prompt the relay node plays to the
// caller between the leg's packets continues the caller's sequence and
// timestamps, and the leg's packets go on after it.
func TestRelayWriteFrameInterleaves(t *testing.T) {
	g := newRelayRig(t, plainRig)
	if _, err := g.e.Relay(g.caller, g.leg, 1); err != nil {
		t.Fatal(err)
	}
	var seen []rtp.Packet
	hs, ps := sendStream(g.lp, g.leg.LocalAddr(), 3)
	seen = append(seen, checkRelayed(t, g.cp, g.caller, hs, ps)...)
	for range 3 {
		g.caller.WriteFrame(frameOf(1))
		seen = append(seen, g.cp.recvPkt())
		time.Sleep(pcm.FrameDuration)
	}
	time.Sleep(100 * time.Millisecond)
	hs, ps = sendStream(g.lp, g.leg.LocalAddr(), 3)
	seen = append(seen, checkRelayed(t, g.cp, g.caller, hs, ps)...)
	for i := 1; i < len(seen); i++ {
		p, q := seen[i-1], seen[i]
		if q.SSRC != p.SSRC || q.SequenceNumber != p.SequenceNumber+1 || int32(q.Timestamp-p.Timestamp) < pcm.FrameSamples {
			t.Errorf("packet %d: SSRC %#x seq %d ts %d after SSRC %#x seq %d ts %d",
				i, q.SSRC, q.SequenceNumber, q.Timestamp, p.SSRC, p.SequenceNumber, p.Timestamp)
		}
	}
}

// TestRelayStop returns both streams to frame mode: the caller's audio
// plays again and no longer reaches the leg.
func TestRelayStop(t *testing.T) {
	g := newRelayRig(t, plainRig)
	r, err := g.e.Relay(g.caller, g.leg, 1)
	if err != nil {
		t.Fatal(err)
	}
	hs, ps := sendStream(g.cp, g.caller.LocalAddr(), 3)
	checkRelayed(t, g.lp, g.leg, hs, ps)
	r.Stop()
	r.Stop()
	if err := r.Repoint(g.leg, 2); err != ErrRelayStopped {
		t.Errorf("Repoint after Stop: %v", err)
	}
	played := paced(t, g.caller, g.cp.peer, g.caller.LocalAddr(), idStreamSRTP(t, g.cp, 10), 20)
	n := 0
	for _, f := range played {
		if f.ok && !f.concealed {
			n++
		}
	}
	if n < 5 {
		t.Errorf("the caller played %d frames after Stop", n)
	}
	g.lp.expectSilence(50 * time.Millisecond)
	// Both may be relayed again.
	r2, err := g.e.Relay(g.caller, g.leg, 2)
	if err != nil {
		t.Fatal(err)
	}
	r2.Stop()
}

// TestRelayFlushesBacklog: what waited in the caller's socket while the
// pollers were held up (a paused node resuming) is not relayed when a
// link is made, at Relay or at Repoint: the leg gets only what came after,
// so the owner gets no burst of stale audio; the backlog counts as Late.
func TestRelayFlushesBacklog(t *testing.T) {
	for _, repoint := range []bool{false, true} {
		t.Run(map[bool]string{false: "relay", true: "repoint"}[repoint], func(t *testing.T) {
			g := newRelayRig(t, plainRig)
			leg, lp := g.leg, g.lp
			var r *Relay
			if repoint {
				var err error
				if r, err = g.e.Relay(g.caller, g.leg, 1); err != nil {
					t.Fatal(err)
				}
				leg, lp = openFacing(t, g.e, false, 96)
			}
			sendStream(g.cp, g.caller.LocalAddr(), 2)
			waitFor(t, "the first packets", func() bool { return g.caller.Stats().PacketsIn == 2 })
			if repoint {
				g.lp.recvPkt() // relayed to the first leg
				g.lp.recvPkt()
			}

			const backlog = 25
			for _, p := range g.e.pollers {
				p.mu.Lock()
			}
			sendStream(g.cp, g.caller.LocalAddr(), backlog)
			var err error
			if repoint {
				err = r.Repoint(leg, 2)
			} else {
				r, err = g.e.Relay(g.caller, leg, 1)
			}
			for _, p := range g.e.pollers {
				p.mu.Unlock()
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := g.caller.Stats().Dropped.Late; got != backlog {
				t.Errorf("%d packets dropped as Late at the link, want the backlog's %d", got, backlog)
			}
			hs, ps := sendStream(g.cp, g.caller.LocalAddr(), 4)
			checkRelayed(t, lp, leg, hs, ps)
			lp.expectSilence(50 * time.Millisecond)
			if got := r.Stats().ToLeg; repoint && got != 6 || !repoint && got != 4 {
				t.Errorf("ToLeg %d", got)
			}
		})
	}
}

// TestRelayRefuses checks what Relay will not link.
func TestRelayRefuses(t *testing.T) {
	e := testEngine(t, 6)
	other := testEngine(t, 1)
	open := func(e *Engine, p Params) *Stream {
		s, err := e.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	a := open(e, pcmu(netip.AddrPort{}))
	b := open(e, pcmu(netip.AddrPort{}))
	alaw := open(e, Params{Codec: g711.PCMA, AudioPT: 8, DTMFPT: 101})
	closed := open(e, pcmu(netip.AddrPort{}))
	_ = closed.Close()
	foreign := open(other, pcmu(netip.AddrPort{}))
	c := open(e, pcmu(netip.AddrPort{}))
	d := open(e, pcmu(netip.AddrPort{}))
	if _, err := e.Relay(c, d, 1); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name        string
		caller, leg *Stream
	}{
		{"no leg", a, nil},
		{"no caller", nil, b},
		{"same stream", a, a},
		{"another codec", a, alaw},
		{"closed", a, closed},
		{"another engine", a, foreign},
		{"already relayed", a, d},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if r, err := e.Relay(tt.caller, tt.leg, 1); err == nil {
				r.Stop()
				t.Fatal("linked")
			}
		})
	}
	if r, err := e.Relay(a, b, 1); err != nil {
		t.Errorf("after the refusals: %v", err)
	} else if err := r.Repoint(alaw, 1); err == nil {
		t.Error("Repoint to another codec succeeded")
	}
}

// TestRelayAdmit checks the duplicate window on its own.
func TestRelayAdmit(t *testing.T) {
	tests := []struct {
		name string
		seqs []uint16
		want []drop
	}{
		{"in order", []uint16{10, 11, 12}, []drop{dropNone, dropNone, dropNone}},
		{"duplicate", []uint16{10, 11, 11, 10}, []drop{dropNone, dropNone, dropDuplicate, dropDuplicate}},
		{"reordered", []uint16{10, 12, 11, 11}, []drop{dropNone, dropNone, dropNone, dropDuplicate}},
		{"wrap", []uint16{65535, 0, 65535, 1}, []drop{dropNone, dropNone, dropDuplicate, dropNone}},
		{"too late", []uint16{10, 80, 16, 17}, []drop{dropNone, dropNone, dropLate, dropNone}},
		{"restart", []uint16{1000, 1001, 5, 6, 5}, []drop{dropNone, dropNone, dropNone, dropNone, dropDuplicate}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var l relayLink
			for i, s := range tt.seqs {
				if got := l.admit(7, s); got != tt.want[i] {
					t.Errorf("seq %d (#%d): %d, want %d", s, i, got, tt.want[i])
				}
			}
			if l.admit(8, tt.seqs[0]) != dropNone {
				t.Error("a new SSRC's first packet was dropped")
			}
		})
	}
}

// TestRelayCloseRace closes and stops relays while both far ends send as
// fast as they can, with the streams on two pollers: nothing deadlocks or
// races (run with -race), and a closed stream sends nothing.
func TestRelayCloseRace(t *testing.T) {
	for i := range 8 {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			g := newRelayRig(t, rigParams{callerSRTP: i%2 == 1, legSRTP: true, callerDTMF: 101, legDTMF: 96})
			r, err := g.e.Relay(g.caller, g.leg, 1)
			if err != nil {
				t.Fatal(err)
			}
			var stop atomic.Bool
			var wg sync.WaitGroup
			for _, x := range []struct {
				f   *farEnd
				dst netip.AddrPort
			}{{g.cp, g.caller.LocalAddr()}, {g.lp, g.leg.LocalAddr()}} {
				pkts := idStreamSRTP(t, x.f, 400)
				wg.Add(1)
				go func() {
					defer wg.Done()
					for _, p := range pkts {
						if stop.Load() {
							return
						}
						_, _ = x.f.conn.WriteToUDPAddrPort(p.pkt, x.dst)
						time.Sleep(100 * time.Microsecond)
					}
				}()
			}
			time.Sleep(time.Duration(i+1) * 3 * time.Millisecond)
			var cw sync.WaitGroup
			cw.Add(3)
			go func() { defer cw.Done(); r.Stop() }()
			go func() { defer cw.Done(); _ = g.leg.Close() }()
			go func() { defer cw.Done(); r.SetEpoch(int64(i)); _ = r.Stats() }()
			cw.Wait()
			stop.Store(true)
			wg.Wait()
			// The leg is closed: whatever the caller sends goes nowhere.
			_ = g.caller.Close()
			for {
				if _, err := g.lp.recvRaw(50 * time.Millisecond); err != nil {
					break
				}
			}
			g.lp.expectSilence(50 * time.Millisecond)
		})
	}
}

// benchRelay is a relay between two streams of a real engine whose far
// ends drain their sockets, and the datagrams each far end sends: the
// packets are handed to the receive path directly (as a poller does after
// recvfrom), and each relayed packet is really sent.
type benchRelay struct {
	g   *relayRig
	ctx [2]*srtp.Context // the far ends' encrypting contexts
	hdr [2]rtp.Header
	pl  []byte
	enc [rtpHeaderLen + pcm.FrameSamples + srtpTagLen]byte
	raw [rtpHeaderLen + pcm.FrameSamples]byte
	eh  rtp.Header
	now time.Time
}

func newBenchRelay(b testing.TB, rp rigParams) *benchRelay {
	e := testEngine(b, 2)
	x := &benchRelay{now: time.Now(), pl: tone(g711.PCMU, pcm.FrameSamples, 0)}
	g := &relayRig{e: e}
	var err error
	open := func(srtpOn bool, dtmfPT int) (*Stream, *farEnd) {
		f := &farEnd{peer: newPeer(b, loop4)}
		p := pcmu(f.addr())
		p.DTMFPT = dtmfPT
		if srtpOn {
			k := &SRTPKeys{Local: srtpKey(b), Remote: srtpKey(b)}
			f.dec, f.enc = peerContext(b, k.Local), peerContext(b, k.Remote)
			p.SRTP = k
		}
		s, err := e.Open(p)
		if err != nil {
			b.Fatal(err)
		}
		go func() {
			buf := make([]byte, 2048)
			for {
				if _, err := f.conn.Read(buf); err != nil {
					return
				}
			}
		}()
		return s, f
	}
	g.caller, g.cp = open(rp.callerSRTP, rp.callerDTMF)
	g.leg, g.lp = open(rp.legSRTP, rp.legDTMF)
	if _, err = e.Relay(g.caller, g.leg, 1); err != nil {
		b.Fatal(err)
	}
	x.g = g
	x.ctx = [2]*srtp.Context{g.cp.enc, g.lp.enc}
	x.hdr = [2]rtp.Header{rtpHeader(0, 1, 0, 0x1111), rtpHeader(0, 1, 0, 0x2222)}
	return x
}

// relayOne relays the next packet of side i (0: from the caller's far end,
// 1: from the leg's) under the locks a poller holds.
func (x *benchRelay) relayOne(b testing.TB, i int) {
	s, from := x.g.caller, x.g.cp.addr()
	if i == 1 {
		s, from = x.g.leg, x.g.lp.addr()
	}
	h := &x.hdr[i]
	h.SequenceNumber++
	h.Timestamp += pcm.FrameSamples
	if i == 0 {
		x.now = x.now.Add(pcm.FrameDuration)
	}
	n, err := h.MarshalTo(x.raw[:])
	if err != nil {
		b.Fatal(err)
	}
	copy(x.raw[n:], x.pl)
	pkt := x.raw[:]
	if c := x.ctx[i]; c != nil {
		if pkt, err = c.EncryptRTP(x.enc[:], pkt, &x.eh); err != nil {
			b.Fatal(err)
		}
	}
	p := s.p
	p.mu.Lock()
	s.rx.mu.Lock()
	s.handle(p, pkt, from, x.now)
	s.rx.mu.Unlock()
	p.mu.Unlock()
}

// BenchmarkRelay is the relay node's work per relayed packet after
// recvfrom: the receive path's checks (SRTP, latching, statistics,
// duplicates) and the send of the packet under the other stream's SSRC,
// sequence and timestamp (sendto included, SRTP encryption where the
// leaving stream has it), alternating the direction. Compare it with
// BenchmarkReceivePath plus BenchmarkWriteFrame: a local caller costs
// one of each per 20 ms, a relayed caller two relayed packets (and each
// one recvfrom more). The SRTP cases include the far end's encryption of
// what it sends, as BenchmarkSRTPReceivePath does.
func BenchmarkRelay(b *testing.B) {
	for _, c := range []struct {
		name string
		rp   rigParams
	}{
		{"plain", plainRig},
		{"srtp-leg", rigParams{legSRTP: true, callerDTMF: 101, legDTMF: 96}},
		{"srtp-both", rigParams{callerSRTP: true, legSRTP: true, callerDTMF: 101, legDTMF: 96}},
	} {
		b.Run(c.name, func(b *testing.B) {
			x := newBenchRelay(b, c.rp)
			i := 0
			b.ReportAllocs()
			for b.Loop() {
				x.relayOne(b, i&1)
				i++
			}
			if st := x.g.caller.Stats(); st.Dropped != (Drops{}) {
				b.Fatalf("caller drops %+v", st.Dropped)
			}
			if st := x.g.leg.Stats(); st.Dropped != (Drops{}) {
				b.Fatalf("leg drops %+v", st.Dropped)
			}
		})
	}
}

// TestRelayAllocs: relaying a packet, either way, plain or SRTP, allocates
// nothing.
func TestRelayAllocs(t *testing.T) {
	for _, rp := range []rigParams{plainRig, {callerSRTP: true, legSRTP: true, callerDTMF: 101, legDTMF: 96}} {
		x := newBenchRelay(t, rp)
		for i := range 4 { // latch and set up the mapping first
			x.relayOne(t, i&1)
		}
		i := 0
		if n := testing.AllocsPerRun(200, func() { x.relayOne(t, i&1); i++ }); n != 0 && !(raceEnabled && rp.callerSRTP) {
			t.Errorf("SRTP %v/%v: %v allocations per relayed packet", rp.callerSRTP, rp.legSRTP, n)
		}
		st := x.g.leg.Stats()
		if st.PacketsOut < 100 || st.Dropped != (Drops{}) {
			t.Errorf("leg stats %+v", st.Stats)
		}
	}
}

// FuzzRelay feeds arbitrary datagrams to a relayed stream's receive path,
// from the latched source and from others: it must not panic, must count
// each datagram under at most one drop reason, and must send (here: try
// to send, on a socketless stream) only packets that carry the payload
// unchanged.
func FuzzRelay(f *testing.F) {
	var ev [dtmf.EventLen]byte
	_, _ = dtmf.Event{Code: 1, End: true, Volume: 10, Duration: 800}.MarshalTo(ev[:])
	seed := func(h rtp.Header, payload []byte) []byte {
		b, err := (&rtp.Packet{Header: h, Payload: payload}).Marshal()
		if err != nil {
			f.Fatal(err)
		}
		return b
	}
	f.Add(seed(rtpHeader(0, 1, 160, 3), make([]byte, 160)), uint8(0), int64(1))
	f.Add(seed(rtpHeader(101, 2, 320, 3), ev[:]), uint8(0), int64(1))
	f.Add(seed(rtpHeader(101, 3, 320, 3), ev[:2]), uint8(0), int64(1))
	f.Add(seed(rtpHeader(13, 4, 480, 3), []byte{40}), uint8(0), int64(0))
	f.Add(seed(rtpHeader(0, 5, 640, 4), make([]byte, maxPayload+1)), uint8(1), int64(2))
	f.Add([]byte("not rtp at all"), uint8(2), int64(1))
	caller := netip.MustParseAddrPort("127.0.0.1:5000")
	sources := []netip.AddrPort{caller, netip.MustParseAddrPort("127.0.0.2:5000"), netip.MustParseAddrPort("127.0.0.1:5002")}
	f.Fuzz(func(t *testing.T, pkt []byte, src uint8, epoch int64) {
		s := bareStream(Params{Remote: caller, Codec: g711.PCMU, DTMFPT: 101})
		leg := bareStream(Params{Remote: netip.MustParseAddrPort("127.0.0.1:6000"), Codec: g711.PCMU, DTMFPT: 96})
		leg.e = s.e // one engine, as Relay requires
		r := &Relay{e: s.e, caller: s, leg: leg}
		r.epoch.Store(1)
		s.relay, leg.relay = r, r
		r.attach(s, leg, 1, true)
		r.SetEpoch(epoch)
		from := sources[int(src)%len(sources)]
		now := time.Now()
		for _, at := range []time.Duration{0, 0, time.Second} {
			before := dropsOf(&s.c.own)
			s.rx.mu.Lock()
			s.handle(s.p, pkt, from, now.Add(at))
			s.rx.mu.Unlock()
			after := dropsOf(&s.c.own)
			n := 0
			for k := range after {
				n += int(after[k] - before[k])
			}
			if n > 1 {
				t.Fatalf("one datagram counted under %d drop reasons: %v -> %v", n, before, after)
			}
		}
		// Every attempt to send failed on the socketless leg: counted
		// there, and as unsent by the relay.
		st := r.Stats()
		if st.ToLeg != 0 || st.Unsent != leg.c.own.drops[dropSendError].Load() {
			t.Fatalf("relay stats %+v, leg send errors %d", st, leg.c.own.drops[dropSendError].Load())
		}
		if st.Unsent > 0 {
			var p rtp.Packet
			if err := p.Unmarshal(pkt); err != nil {
				t.Fatalf("a packet pion cannot parse was relayed: %v", err)
			}
			out := s.p.out[rtpHeaderLen : rtpHeaderLen+len(p.Payload)]
			if !bytes.Equal(out, p.Payload) || binary.BigEndian.Uint32(s.p.out[8:]) != leg.ssrc {
				t.Fatal("the relayed packet's payload or SSRC differs")
			}
		}
		var fr pcm.Frame
		if s.ReadFrame(&fr) {
			t.Fatal("a relayed stream played")
		}
	})
}

// BenchmarkRelayCaller is what one caller costs the node it called per
// 20 ms, local or relayed, with 300 callers (the figure) on real
// sockets and pollers. A local caller's far end sends one packet, which a
// poller reads and buffers; then the clock reads a frame from every
// stream and writes one to it. A relayed caller's far end and the owner's
// leg each send one packet, which the pollers relay. One operation is one
// caller's 20 ms; cpu-ns/op is the process's CPU for it without the far
// ends' sending (measured on the benchmark's own thread and taken off),
// so the ratio of the two is the relay node's cost of a relayed caller
// against a local one's before mixing (which a local caller adds). What
// the node sends goes to sockets nobody reads, as a NIC would take it.
func BenchmarkRelayCaller(b *testing.B) {
	const callers = 300
	for _, relayed := range []bool{false, true} {
		name := "local"
		if relayed {
			name = "relayed"
		}
		b.Run(name, func(b *testing.B) {
			e := testEngine(b, 2*callers+callers/5)
			cp, lp := newPeer(b, loop4), newPeer(b, loop4)
			var ss []*Stream
			var dst []netip.AddrPort // caller i's port, then leg i's when relayed
			for range callers {
				c, err := e.Open(pcmu(cp.addr()))
				if err != nil {
					b.Fatal(err)
				}
				ss = append(ss, c)
				dst = append(dst, c.LocalAddr())
				if !relayed {
					continue
				}
				l, err := e.Open(pcmu(lp.addr()))
				if err != nil {
					b.Fatal(err)
				}
				if _, err := e.Relay(c, l, 1); err != nil {
					b.Fatal(err)
				}
				dst = append(dst, l.LocalAddr())
			}
			fromCaller := marshal(b, rtpHeader(0, 0, 0, 0x4321), tone(g711.PCMU, 160, 0))
			fromLeg := marshal(b, rtpHeader(0, 0, 0, 0x8765), tone(g711.PCMU, 160, 1))
			perCaller := uint64(len(dst) / callers)
			f := frameOf(1)
			var out pcm.Frame

			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			var farEnds time.Duration // this thread's CPU while sending as the far ends
			var sent uint64
			b.ReportAllocs()
			cpu := processCPU(b)
			for b.Loop() {
				i := int(sent % callers)
				if i == 0 {
					round := sent / callers
					for _, pkt := range [][]byte{fromCaller, fromLeg} {
						binary.BigEndian.PutUint16(pkt[2:], uint16(round))
						binary.BigEndian.PutUint32(pkt[4:], uint32(round*pcm.FrameSamples))
					}
				}
				t0 := threadCPU(b)
				if _, err := cp.conn.WriteToUDPAddrPort(fromCaller, dst[i*int(perCaller)]); err != nil {
					b.Fatal(err)
				}
				if relayed {
					if _, err := lp.conn.WriteToUDPAddrPort(fromLeg, dst[i*2+1]); err != nil {
						b.Fatal(err)
					}
				}
				sent++
				if sent%callers == 0 {
					// The round is sent: wait for the pollers (asleep,
					// not spinning), then the clock's tick for local
					// callers.
					for pollersIn(e) < sent*perCaller {
						time.Sleep(50 * time.Microsecond)
					}
					farEnds += threadCPU(b) - t0
					if !relayed {
						for _, s := range ss {
							s.ReadFrame(&out)
							s.WriteFrame(f)
						}
					}
					continue
				}
				farEnds += threadCPU(b) - t0
			}
			b.ReportMetric(float64(processCPU(b)-cpu-farEnds)/float64(b.N), "cpu-ns/op")
			if st := e.Stats(); st.Dropped != (Drops{}) {
				b.Fatalf("drops %+v", st.Dropped)
			}
		})
	}
}

// pollersIn is the datagrams e's pollers have read: cheaper than
// Engine.Stats for a benchmark that waits on it.
func pollersIn(e *Engine) uint64 {
	var n uint64
	for _, p := range e.pollers {
		n += p.counters.packetsIn.Load()
	}
	return n
}

// threadCPU is the CPU time the calling thread has used.
func threadCPU(b testing.TB) time.Duration {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_THREAD, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// processCPU is the CPU time the process has used, user and system.
func processCPU(b testing.TB) time.Duration {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkRelayHop is the delay a relay adds: one operation is one packet
// from the caller's far end through the relay to the leg's far end, timed
// from the send to its arrival there, sent at a random moment of the
// pollers' batch window as a caller's packets are. The window (a look
// every 2 ms, so a packet waits up to 2 ms, 1 on average) dominates it;
// p50-µs and p99-µs are its median and 99th percentile; ns/op includes
// the random pause.
func BenchmarkRelayHop(b *testing.B) {
	for _, c := range []struct {
		name string
		rp   rigParams
	}{
		{"plain", plainRig},
		{"srtp-leg", rigParams{legSRTP: true, callerDTMF: 101, legDTMF: 96}},
	} {
		b.Run(c.name, func(b *testing.B) {
			e := testEngine(b, 2)
			open := func(srtpOn bool, dtmfPT int) (*Stream, *farEnd) {
				f := &farEnd{peer: newPeer(b, loop4)}
				p := pcmu(f.addr())
				p.DTMFPT = dtmfPT
				if srtpOn {
					k := &SRTPKeys{Local: srtpKey(b), Remote: srtpKey(b)}
					f.dec, f.enc = peerContext(b, k.Local), peerContext(b, k.Remote)
					p.SRTP = k
				}
				s, err := e.Open(p)
				if err != nil {
					b.Fatal(err)
				}
				return s, f
			}
			caller, cp := open(c.rp.callerSRTP, c.rp.callerDTMF)
			leg, lp := open(c.rp.legSRTP, c.rp.legDTMF)
			if _, err := e.Relay(caller, leg, 1); err != nil {
				b.Fatal(err)
			}
			pl := tone(g711.PCMU, pcm.FrameSamples, 0)
			buf := make([]byte, 2048)
			lat := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for range b.N {
				h := rtpHeader(0, cp.seq, cp.ts, cp.ssrc)
				cp.seq++
				cp.ts += pcm.FrameSamples
				pkt := marshal(b, h, pl)
				time.Sleep(rand.N(2 * batchWindow))
				sent := time.Now()
				cp.sendRaw(caller.LocalAddr(), pkt)
				_ = lp.conn.SetReadDeadline(sent.Add(5 * time.Second))
				if _, _, err := lp.conn.ReadFromUDPAddrPort(buf); err != nil {
					b.Fatal(err)
				}
				lat = append(lat, time.Since(sent))
			}
			b.StopTimer()
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
		})
	}
}

// TestRelaySenderReports: a relayed stream sends its sender reports with
// the packets it relays, with no WriteFrame from the clock, counting them.
func TestRelaySenderReports(t *testing.T) {
	e := rtcpEngine(t, 4)
	caller, cp := openFacing(t, e, false, 101)
	rtpConn, rtcpConn := listenPair(t)
	leg, err := e.Open(pcmu(rtpConn.LocalAddr().(*net.UDPAddr).AddrPort()))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Relay(caller, leg, 1); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	defer close(done)
	go func() {
		for {
			select {
			case <-done:
				return
			case <-time.After(5 * time.Millisecond):
				h := rtpHeader(0, cp.seq, cp.ts, cp.ssrc)
				cp.seq++
				cp.ts += 160
				b, _ := (&rtp.Packet{Header: h, Payload: tone(g711.PCMU, 160, 0)}).Marshal()
				_, _ = cp.conn.WriteToUDPAddrPort(b, caller.LocalAddr())
			}
		}
	}()
	buf := make([]byte, 2048)
	_ = rtcpConn.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		n, err := rtcpConn.Read(buf)
		if err != nil {
			t.Fatalf("no sender report from the relayed leg: %v", err)
		}
		pkts, err := rtcp.Unmarshal(buf[:n])
		if err != nil || len(pkts) == 0 {
			continue
		}
		if sr, ok := pkts[0].(*rtcp.SenderReport); ok && sr.SSRC == leg.ssrc {
			if sr.PacketCount == 0 || sr.OctetCount != 160*sr.PacketCount {
				t.Errorf("sender report counts %d packets, %d octets", sr.PacketCount, sr.OctetCount)
			}
			return
		}
	}
}
