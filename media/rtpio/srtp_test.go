//go:build linux

package rtpio

import (
	"bytes"
	"crypto/rand"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"

	"github.com/groupbridge/groupbridge/media/g711"
	"github.com/groupbridge/groupbridge/media/pcm"
)

// srtpProfiles are the profiles the SRTP tests run under.
var srtpProfiles = []SRTPProfile{SRTPAES128CMSHA80, SRTPAEADAES128GCM}

// srtpKey is a fresh 30-byte AES_CM_128_HMAC_SHA1_80 master key and salt.
func srtpKey(t testing.TB) []byte { return srtpKeyOf(t, SRTPAES128CMSHA80) }

// srtpKeyOf is a fresh master key and salt of profile p.
func srtpKeyOf(t testing.TB, p SRTPProfile) []byte {
	t.Helper()
	k := make([]byte, p.KeyLen())
	if _, err := rand.Read(k); err != nil {
		t.Fatal(err)
	}
	return k
}

// peerContext is the far end's AES_CM_128_HMAC_SHA1_80 context for key.
func peerContext(t testing.TB, key []byte) *srtp.Context {
	return peerContextOf(t, SRTPAES128CMSHA80, key)
}

// peerContextOf is the far end's SRTP context for key of profile p, built
// by pion directly rather than by rtpio.
func peerContextOf(t testing.TB, p SRTPProfile, key []byte) *srtp.Context {
	t.Helper()
	pp := srtp.ProtectionProfileAes128CmHmacSha1_80
	if p == SRTPAEADAES128GCM {
		pp = srtp.ProtectionProfileAeadAes128Gcm
	}
	c, err := srtp.CreateContext(key[:16], key[16:], pp)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// withSRTP is pcmu(remote) protected by AES_CM_128_HMAC_SHA1_80 keys.
func withSRTP(remote netip.AddrPort, local, rem []byte) Params {
	return withSRTPOf(SRTPAES128CMSHA80, remote, local, rem)
}

// withSRTPOf is pcmu(remote) protected by keys of profile p.
func withSRTPOf(p SRTPProfile, remote netip.AddrPort, local, rem []byte) Params {
	pp := pcmu(remote)
	pp.SRTP = &SRTPKeys{Local: local, Remote: rem, Profile: p}
	return pp
}

// TestSRTPRoundTrip runs audio between two streams whose keys are crossed,
// as the two ends of an SDES call or an internal leg: it must arrive and
// play unharmed, and RTCP must pass too, under each profile.
func TestSRTPRoundTrip(t *testing.T) {
	for _, prof := range srtpProfiles {
		t.Run(prof.String(), func(t *testing.T) { srtpRoundTrip(t, prof) })
	}
}

func srtpRoundTrip(t *testing.T, prof SRTPProfile) {
	e := rtcpEngine(t, 2)
	e.cfg.JitterMin = 60 * time.Millisecond
	ka, kb := srtpKeyOf(t, prof), srtpKeyOf(t, prof)
	a, err := e.Open(withSRTPOf(prof, netip.AddrPort{}, ka, kb))
	if err != nil {
		t.Fatal(err)
	}
	b, err := e.Open(withSRTPOf(prof, a.LocalAddr(), kb, ka))
	if err != nil {
		t.Fatal(err)
	}
	a.Update(withSRTPOf(prof, b.LocalAddr(), ka, kb))

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
	// Both ends must have run this profile: a peer of the other one
	// cannot read what a sends.
	if a.tx.srtp == nil || a.rx.keys.Profile != prof || b.rx.keys.Profile != prof {
		t.Errorf("streams keyed %v and %v, want %v", a.rx.keys.Profile, b.rx.keys.Profile, prof)
	}
}

// TestSRTPOnTheWire checks that what leaves is SRTP of the keys' profile
// that a peer with our key can authenticate and decrypt (and a peer of
// the other profile cannot), with the profile's tag, and not the plain
// payload.
func TestSRTPOnTheWire(t *testing.T) {
	for _, prof := range srtpProfiles {
		t.Run(prof.String(), func(t *testing.T) { srtpOnTheWire(t, prof) })
	}
}

func srtpOnTheWire(t *testing.T, prof SRTPProfile) {
	e := testEngine(t, 1)
	p := newPeer(t, loop4)
	local := srtpKeyOf(t, prof)
	s, err := e.Open(withSRTPOf(prof, p.addr(), local, srtpKeyOf(t, prof)))
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
	if want := rtpHeaderLen + pcm.FrameSamples + prof.tagLen(); n != want {
		t.Fatalf("datagram of %d bytes, want %d", n, want)
	}
	if bytes.Equal(buf[rtpHeaderLen:rtpHeaderLen+pcm.FrameSamples], plain) {
		t.Fatal("the payload went out in the clear")
	}
	other := SRTPAEADAES128GCM
	if prof == other {
		other = SRTPAES128CMSHA80
	}
	otherKey := make([]byte, other.KeyLen()) // the same bytes as far as they go
	copy(otherKey, local)
	if _, err := peerContextOf(t, other, otherKey).DecryptRTP(nil, buf[:n], nil); err == nil {
		t.Errorf("a %v peer with the same key bytes decrypted a %v packet", other, prof)
	}
	dec, err := peerContextOf(t, prof, local).DecryptRTP(nil, buf[:n], nil)
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

// TestSRTPRejects sends SRTP from a peer, under each profile: good packets
// are accepted, and a tampered packet, a packet under another key or of
// the other profile, plain RTP and a replay are each dropped and counted
// as SRTPAuth.
func TestSRTPRejects(t *testing.T) {
	for _, prof := range srtpProfiles {
		t.Run(prof.String(), func(t *testing.T) { srtpRejects(t, prof) })
	}
}

func srtpRejects(t *testing.T, prof SRTPProfile) {
	e := testEngine(t, 1)
	p := newPeer(t, loop4)
	remote := srtpKeyOf(t, prof)
	s, err := e.Open(withSRTPOf(prof, p.addr(), srtpKeyOf(t, prof), remote))
	if err != nil {
		t.Fatal(err)
	}
	other := SRTPAEADAES128GCM
	if prof == other {
		other = SRTPAES128CMSHA80
	}
	// The other profile's peer, with the same key and salt as far as
	// they go (AES-CM's salt is 2 bytes longer).
	otherKey := make([]byte, other.KeyLen())
	copy(otherKey, remote)
	good, wrong := peerContextOf(t, prof, remote), peerContextOf(t, prof, srtpKeyOf(t, prof))
	otherProfile := peerContextOf(t, other, otherKey)
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
		{"other profile", packet(otherProfile), 5},
		{"tag cut short", packet(good)[:rtpHeaderLen+pcm.FrameSamples+prof.tagLen()-1], 6},
		{"good last", packet(good), 6},
	}
	for i, tt := range tests {
		p.sendRaw(s.LocalAddr(), tt.pkt)
		waitIn(t, s, uint64(i+1))
		if got := s.Stats().Dropped.SRTPAuth; got != tt.auth {
			t.Errorf("%s: SRTPAuth %d, want %d", tt.name, got, tt.auth)
		}
	}
	st := s.Stats()
	if st.Dropped.Malformed != 0 || st.Playout.Accepted != 5 {
		t.Errorf("stats %+v, playout %+v; want 5 accepted", st.Dropped, st.Playout)
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

// TestSRTPKeysValidate: each profile takes keys of its own length only;
// Open refuses what Validate refuses.
func TestSRTPKeysValidate(t *testing.T) {
	cm, gcm := bytes.Repeat([]byte{1}, 30), bytes.Repeat([]byte{2}, 28)
	tests := []struct {
		name string
		keys SRTPKeys
		ok   bool
	}{
		{"AES-CM, 30 bytes", SRTPKeys{Local: cm, Remote: cm}, true},
		{"GCM, 28 bytes", SRTPKeys{Local: gcm, Remote: gcm, Profile: SRTPAEADAES128GCM}, true},
		{"AES-CM, 28 bytes", SRTPKeys{Local: gcm, Remote: gcm}, false},
		{"GCM, 30 bytes", SRTPKeys{Local: cm, Remote: cm, Profile: SRTPAEADAES128GCM}, false},
		{"GCM, remote short", SRTPKeys{Local: gcm, Remote: gcm[:27], Profile: SRTPAEADAES128GCM}, false},
		{"GCM, local long", SRTPKeys{Local: append(bytes.Clone(gcm), 0), Remote: gcm, Profile: SRTPAEADAES128GCM}, false},
		{"GCM, none", SRTPKeys{Profile: SRTPAEADAES128GCM}, false},
		{"unknown profile", SRTPKeys{Local: gcm, Remote: gcm, Profile: 2}, false},
	}
	e := testEngine(t, 1)
	for _, tt := range tests {
		err := tt.keys.Validate()
		if (err == nil) != tt.ok {
			t.Errorf("%s: Validate = %v, want ok %v", tt.name, err, tt.ok)
		}
		if err != nil && !strings.Contains(err.Error(), "SRTP") {
			t.Errorf("%s: error %q does not say SRTP", tt.name, err)
		}
		p := pcmu(netip.AddrPort{})
		k := tt.keys
		p.SRTP = &k
		s, err := e.Open(p)
		if (err == nil) != tt.ok {
			t.Errorf("%s: Open error %v, want ok %v", tt.name, err, tt.ok)
		}
		if s != nil {
			s.Close()
		}
	}
	if got := SRTPAEADAES128GCM.String(); got != "AEAD_AES_128_GCM" {
		t.Errorf("GCM profile named %q", got)
	}
}

// TestSRTPUpdateProfile: keys of another profile rebuild the contexts,
// and the stream then speaks that profile.
func TestSRTPUpdateProfile(t *testing.T) {
	e := testEngine(t, 1)
	p := newPeer(t, loop4)
	s, err := e.Open(withSRTP(p.addr(), srtpKey(t), srtpKey(t)))
	if err != nil {
		t.Fatal(err)
	}
	c1 := s.rx.srtp
	local := srtpKeyOf(t, SRTPAEADAES128GCM)
	s.Update(withSRTPOf(SRTPAEADAES128GCM, p.addr(), local, srtpKeyOf(t, SRTPAEADAES128GCM)))
	if s.rx.srtp == c1 || s.rx.keys.Profile != SRTPAEADAES128GCM {
		t.Fatal("keys of another profile kept the old context")
	}
	s.WriteFrame(frameOf(1))
	buf := make([]byte, 2048)
	_ = p.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, _, err := p.conn.ReadFromUDPAddrPort(buf)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := peerContextOf(t, SRTPAEADAES128GCM, local).DecryptRTP(nil, buf[:n], nil); err != nil {
		t.Errorf("after the update a GCM peer cannot decrypt: %v", err)
	}
}

// srtpRecvRig is one stream's receive path under prof, without sockets,
// and a far end encrypting to it: one() has a packet encrypted by the
// far end and handled (decrypted, checked, buffered, played) by the
// stream, as BenchmarkReceivePath does.
type srtpRecvRig struct {
	s      *Stream
	p      Params
	peer   *srtp.Context
	plain  [rtpHeaderLen + pcm.FrameSamples]byte
	enc    [rtpHeaderLen + pcm.FrameSamples + srtpTagLen]byte
	encHdr rtp.Header
	h      rtp.Header
	now    time.Time
	f      pcm.Frame
}

func newSRTPRecvRig(tb testing.TB, prof SRTPProfile) *srtpRecvRig {
	remote := srtpKeyOf(tb, prof)
	r := &srtpRecvRig{p: withSRTPOf(prof, netip.MustParseAddrPort("127.0.0.1:5000"), srtpKeyOf(tb, prof), remote)}
	r.s = bareStream(r.p)
	out, in, err := srtpContexts(r.p.SRTP)
	if err != nil {
		tb.Fatal(err)
	}
	r.s.tx.srtp, r.s.rx.srtp = out, in
	r.peer = peerContextOf(tb, prof, remote)
	r.h = rtpHeader(0, 0, 0, 0x1234)
	copy(r.plain[rtpHeaderLen:], tone(g711.PCMU, 160, 0))
	r.now = time.Now()
	return r
}

func (r *srtpRecvRig) one(tb testing.TB) {
	r.h.SequenceNumber++
	r.h.Timestamp += pcm.FrameSamples
	r.now = r.now.Add(pcm.FrameDuration)
	if _, err := r.h.MarshalTo(r.plain[:]); err != nil {
		tb.Fatal(err)
	}
	pkt, err := r.peer.EncryptRTP(r.enc[:], r.plain[:], &r.encHdr)
	if err != nil {
		tb.Fatal(err)
	}
	r.s.rx.mu.Lock()
	r.s.handle(r.s.p, pkt, r.p.Remote, r.now)
	r.s.rx.mu.Unlock()
	r.s.readFrame(&r.f, r.now.Add(pcm.FrameDuration/2))
}

func (r *srtpRecvRig) check(tb testing.TB) {
	if st := r.s.Stats(); st.Dropped != (Drops{}) || st.Playout.Accepted == 0 {
		tb.Fatalf("drops %+v, playout %+v", st.Dropped, st.Playout)
	}
}

// TestSRTPAllocs: under each profile, receiving (decryption into the
// poller's buffer) and sending (encryption into the stream's) allocate
// nothing per packet.
func TestSRTPAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts do not hold under the race detector")
	}
	for _, prof := range srtpProfiles {
		t.Run(prof.String(), func(t *testing.T) {
			r := newSRTPRecvRig(t, prof)
			r.one(t)
			if n := testing.AllocsPerRun(200, func() { r.one(t) }); n != 0 {
				t.Errorf("%v allocations per received packet", n)
			}
			r.check(t)

			e := testEngine(t, 1)
			p := newPeer(t, loop4)
			s, err := e.Open(withSRTPOf(prof, p.addr(), srtpKeyOf(t, prof), srtpKeyOf(t, prof)))
			if err != nil {
				t.Fatal(err)
			}
			f := frameOf(1)
			s.WriteFrame(f)
			if n := testing.AllocsPerRun(200, func() { s.WriteFrame(f) }); n != 0 {
				t.Errorf("%v allocations per sent packet", n)
			}
			if st := s.Stats(); st.BytesOut == 0 {
				t.Error("nothing was sent")
			}
		})
	}
}

// BenchmarkSRTPReceivePath is BenchmarkReceivePath with SRTP
// (AES_CM_128_HMAC_SHA1_80): decryption into the poller's buffer must not
// allocate.
func BenchmarkSRTPReceivePath(b *testing.B) { benchSRTPReceivePath(b, SRTPAES128CMSHA80) }

// BenchmarkSRTPReceivePathGCM is BenchmarkSRTPReceivePath under
// AEAD_AES_128_GCM, the internal legs' profile.
func BenchmarkSRTPReceivePathGCM(b *testing.B) { benchSRTPReceivePath(b, SRTPAEADAES128GCM) }

func benchSRTPReceivePath(b *testing.B, prof SRTPProfile) {
	r := newSRTPRecvRig(b, prof)
	b.ReportAllocs()
	for b.Loop() {
		r.one(b)
	}
	r.check(b)
}

// BenchmarkSRTPPair is one packet's SRTP alone under each profile: a
// 20 ms PCMU packet encrypted by one context and authenticated and
// decrypted (replay window included) by another, as a relayed packet
// costs the two ends of a leg.
func BenchmarkSRTPPair(b *testing.B) {
	for _, prof := range srtpProfiles {
		b.Run(prof.String(), func(b *testing.B) {
			k := srtpKeyOf(b, prof)
			out, err := newSRTPContext(prof, k)
			if err != nil {
				b.Fatal(err)
			}
			in, err := newSRTPContext(prof, k)
			if err != nil {
				b.Fatal(err)
			}
			var plain [rtpHeaderLen + pcm.FrameSamples]byte
			var enc [rtpHeaderLen + pcm.FrameSamples + srtpTagLen]byte
			var dec [rtpHeaderLen + pcm.FrameSamples + srtpTagLen]byte
			var eh, dh rtp.Header
			h := rtpHeader(0, 0, 0, 0x1234)
			copy(plain[rtpHeaderLen:], tone(g711.PCMU, 160, 0))
			b.SetBytes(pcm.FrameSamples)
			b.ReportAllocs()
			for b.Loop() {
				h.SequenceNumber++
				h.Timestamp += pcm.FrameSamples
				if _, err := h.MarshalTo(plain[:]); err != nil {
					b.Fatal(err)
				}
				pkt, err := out.EncryptRTP(enc[:], plain[:], &eh)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := in.DecryptRTP(dec[:], pkt, &dh); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkSRTPWriteFrame is BenchmarkWriteFrame with SRTP
// (AES_CM_128_HMAC_SHA1_80): encryption into the stream's buffer must not
// allocate.
func BenchmarkSRTPWriteFrame(b *testing.B) { benchSRTPWriteFrame(b, SRTPAES128CMSHA80) }

// BenchmarkSRTPWriteFrameGCM is BenchmarkSRTPWriteFrame under
// AEAD_AES_128_GCM.
func BenchmarkSRTPWriteFrameGCM(b *testing.B) { benchSRTPWriteFrame(b, SRTPAEADAES128GCM) }

func benchSRTPWriteFrame(b *testing.B, prof SRTPProfile) {
	e := testEngine(b, 1)
	p := newPeer(b, loop4)
	s, err := e.Open(withSRTPOf(prof, p.addr(), srtpKeyOf(b, prof), srtpKeyOf(b, prof)))
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
