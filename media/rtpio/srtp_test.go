//go:build linux

package rtpio

import (
	"bytes"
	"crypto/rand"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"

	"github.com/groupbridge/groupbridge/media/g711"
	"github.com/groupbridge/groupbridge/media/pcm"
)

// srtpKey is a fresh 30-byte master key and salt.
func srtpKey(t testing.TB) []byte {
	t.Helper()
	k := make([]byte, SRTPKeyLen)
	if _, err := rand.Read(k); err != nil {
		t.Fatal(err)
	}
	return k
}

// peerContext is the far end's SRTP context for key.
func peerContext(t testing.TB, key []byte) *srtp.Context {
	t.Helper()
	c, err := srtp.CreateContext(key[:16], key[16:], srtp.ProtectionProfileAes128CmHmacSha1_80)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// withSRTP is pcmu(remote) protected by keys.
func withSRTP(remote netip.AddrPort, local, rem []byte) Params {
	p := pcmu(remote)
	p.SRTP = &SRTPKeys{Local: local, Remote: rem}
	return p
}

// TestSRTPRoundTrip runs audio between two streams whose keys are crossed,
// as the two ends of an SDES call: it must arrive and play unharmed, and
// RTCP must pass too.
func TestSRTPRoundTrip(t *testing.T) {
	e := rtcpEngine(t, 2)
	e.cfg.JitterMin = 60 * time.Millisecond
	ka, kb := srtpKey(t), srtpKey(t)
	a, err := e.Open(withSRTP(netip.AddrPort{}, ka, kb))
	if err != nil {
		t.Fatal(err)
	}
	b, err := e.Open(withSRTP(a.LocalAddr(), kb, ka))
	if err != nil {
		t.Fatal(err)
	}
	a.Update(withSRTP(b.LocalAddr(), ka, kb))

	// A steady level, as idPayload uses: the jitter buffer may stretch or
	// crossfade audio, but a played frame holds runs of exactly this level.
	var sent pcm.Frame
	for i := range sent {
		sent[i] = 3 * idStep
	}
	level := decoded(g711.PCMU, idPayload(g711.PCMU, 2, 1))[0]

	tick := time.NewTicker(pcm.FrameDuration)
	defer tick.Stop()
	heard := false
	deadline := time.Now().Add(5 * time.Second)
	for !heard || b.Stats().RTCP.Received == 0 || a.Stats().RTCP.Received == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("heard %v; stats a %+v b %+v", heard, a.Stats(), b.Stats())
		}
		<-tick.C
		a.WriteFrame(&sent)
		b.WriteFrame(&pcm.Frame{})
		var f pcm.Frame
		if b.ReadFrame(&f) && slices.Index(f[:], level) >= 0 {
			heard = true
		}
	}
	for _, s := range []*Stream{a, b} {
		if st := s.Stats(); st.Dropped != (Drops{}) || st.RTCP.Malformed != 0 {
			t.Errorf("stream %s: drops %+v rtcp %+v", s.LocalAddr(), st.Dropped, st.RTCP)
		}
	}
}

// TestSRTPOnTheWire checks that what leaves is SRTP a peer with our key
// can authenticate and decrypt, and not the plain payload.
func TestSRTPOnTheWire(t *testing.T) {
	e := testEngine(t, 1)
	p := newPeer(t, loop4)
	local := srtpKey(t)
	s, err := e.Open(withSRTP(p.addr(), local, srtpKey(t)))
	if err != nil {
		t.Fatal(err)
	}
	f := frameOf(1)
	plain := make([]byte, pcm.FrameSamples)
	g711.PCMU.Encode(plain, f[:])
	s.WriteFrame(f)

	buf := make([]byte, 2048)
	_ = p.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, _, err := p.conn.ReadFromUDPAddrPort(buf)
	if err != nil {
		t.Fatal(err)
	}
	if n != rtpHeaderLen+pcm.FrameSamples+srtpTagLen {
		t.Fatalf("datagram of %d bytes, want %d", n, rtpHeaderLen+pcm.FrameSamples+srtpTagLen)
	}
	if bytes.Equal(buf[rtpHeaderLen:rtpHeaderLen+pcm.FrameSamples], plain) {
		t.Fatal("the payload went out in the clear")
	}
	dec, err := peerContext(t, local).DecryptRTP(nil, buf[:n], nil)
	if err != nil {
		t.Fatalf("peer cannot decrypt: %v", err)
	}
	var pkt rtp.Packet
	if err := pkt.Unmarshal(dec); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(pkt.Payload, plain) {
		t.Error("decrypted payload differs from the frame sent")
	}
	if st := s.Stats(); st.BytesOut != uint64(n) {
		t.Errorf("BytesOut %d, want the %d bytes on the wire", st.BytesOut, n)
	}
}

// TestSRTPRejects sends SRTP from a peer: good packets are accepted, and a
// tampered packet, a packet under another key, plain RTP and a replay are
// each dropped and counted as SRTPAuth.
func TestSRTPRejects(t *testing.T) {
	e := testEngine(t, 1)
	p := newPeer(t, loop4)
	remote := srtpKey(t)
	s, err := e.Open(withSRTP(p.addr(), srtpKey(t), remote))
	if err != nil {
		t.Fatal(err)
	}
	good, wrong := peerContext(t, remote), peerContext(t, srtpKey(t))
	packet := func(c *srtp.Context) []byte {
		plain := marshal(t, rtpHeader(0, p.seq, p.ts, p.ssrc), tone(g711.PCMU, 160, 0))
		p.seq++
		p.ts += 160
		out, err := c.EncryptRTP(nil, plain, nil)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	tampered := packet(good)
	tampered[rtpHeaderLen+5] ^= 0x40
	replayed := packet(good)
	tests := []struct {
		name string
		pkt  []byte
		auth uint64 // SRTPAuth after it
	}{
		{"good", packet(good), 0},
		{"tampered payload", tampered, 1},
		{"good after tampering", packet(good), 1},
		{"other key", packet(wrong), 2},
		{"plain RTP", marshal(t, rtpHeader(0, p.seq+100, p.ts, p.ssrc), tone(g711.PCMU, 160, 0)), 3},
		{"first send", replayed, 3},
		{"replay", replayed, 4},
		{"good again", packet(good), 4},
	}
	for i, tt := range tests {
		p.sendRaw(s.LocalAddr(), tt.pkt)
		waitIn(t, s, uint64(i+1))
		if got := s.Stats().Dropped.SRTPAuth; got != tt.auth {
			t.Errorf("%s: SRTPAuth %d, want %d", tt.name, got, tt.auth)
		}
	}
	st := s.Stats()
	if st.Dropped.Malformed != 0 || st.Playout.Accepted != 4 {
		t.Errorf("stats %+v, playout %+v; want 4 accepted", st.Dropped, st.Playout)
	}
}

// TestSRTPUpdate turns SRTP on, rekeys and turns it off with Update, as a
// re-INVITE may.
func TestSRTPUpdate(t *testing.T) {
	e := testEngine(t, 1)
	p := newPeer(t, loop4)
	s, err := e.Open(pcmu(p.addr()))
	if err != nil {
		t.Fatal(err)
	}
	k1 := srtpKey(t)
	s.Update(withSRTP(p.addr(), srtpKey(t), k1))
	c1 := s.rx.srtp
	if c1 == nil || s.tx.srtp == nil {
		t.Fatal("Update did not turn SRTP on")
	}
	s.Update(withSRTP(p.addr(), bytes.Clone(s.rx.keys.Local), bytes.Clone(k1)))
	if s.rx.srtp != c1 {
		t.Error("the same keys rebuilt the contexts, losing their state")
	}
	s.Update(withSRTP(p.addr(), srtpKey(t), srtpKey(t)))
	if s.rx.srtp == c1 {
		t.Error("new keys kept the old context")
	}
	s.Update(pcmu(p.addr()))
	if s.rx.srtp != nil || s.tx.srtp != nil {
		t.Error("Update without keys left SRTP on")
	}
	bad := withSRTP(p.addr(), []byte("short"), srtpKey(t))
	if _, err := e.Open(bad); err == nil {
		t.Error("Open accepted a 5-byte key")
	}
}

// BenchmarkSRTPReceivePath is BenchmarkReceivePath with SRTP: decryption
// into the poller's buffer must not allocate.
func BenchmarkSRTPReceivePath(b *testing.B) {
	remote := srtpKey(b)
	p := withSRTP(netip.MustParseAddrPort("127.0.0.1:5000"), srtpKey(b), remote)
	s := bareStream(p)
	out, in, err := srtpContexts(p.SRTP)
	if err != nil {
		b.Fatal(err)
	}
	s.tx.srtp, s.rx.srtp = out, in
	peer := peerContext(b, remote)
	var plain [rtpHeaderLen + pcm.FrameSamples]byte
	h := rtpHeader(0, 0, 0, 0x1234)
	copy(plain[rtpHeaderLen:], tone(g711.PCMU, 160, 0))
	var enc [rtpHeaderLen + pcm.FrameSamples + srtpTagLen]byte
	var encHdr rtp.Header
	now := time.Now()
	var f pcm.Frame
	b.ReportAllocs()
	for b.Loop() {
		h.SequenceNumber++
		h.Timestamp += pcm.FrameSamples
		now = now.Add(pcm.FrameDuration)
		if _, err := h.MarshalTo(plain[:]); err != nil {
			b.Fatal(err)
		}
		pkt, err := peer.EncryptRTP(enc[:], plain[:], &encHdr)
		if err != nil {
			b.Fatal(err)
		}
		s.rx.mu.Lock()
		s.handle(s.p, pkt, p.Remote, now)
		s.rx.mu.Unlock()
		s.readFrame(&f, now.Add(pcm.FrameDuration/2))
	}
	if st := s.Stats(); st.Dropped != (Drops{}) || st.Playout.Accepted == 0 {
		b.Fatalf("drops %+v, playout %+v", st.Dropped, st.Playout)
	}
}

// BenchmarkSRTPWriteFrame is BenchmarkWriteFrame with SRTP: encryption
// into the stream's buffer must not allocate.
func BenchmarkSRTPWriteFrame(b *testing.B) {
	e := testEngine(b, 1)
	p := newPeer(b, loop4)
	s, err := e.Open(withSRTP(p.addr(), srtpKey(b), srtpKey(b)))
	if err != nil {
		b.Fatal(err)
	}
	go func() {
		buf := make([]byte, 2048)
		for {
			if _, err := p.conn.Read(buf); err != nil {
				return
			}
		}
	}()
	f := frameOf(1)
	b.ReportAllocs()
	for b.Loop() {
		s.WriteFrame(f)
	}
}
