package softphone

import (
	"bytes"
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/pion/rtp"

	"github.com/groupbridge/groupbridge/media/g711"
	"github.com/groupbridge/groupbridge/media/tone"
)

// otherKey is a second SDES key, the peer's.
var otherKey = func() (k [srtpKeyLen]byte) {
	for i := range k {
		k[i] = byte(100 + i)
	}
	return k
}()

// What the sender puts on the wire under SRTP is the plain packet's header,
// an encrypted payload and a 10-byte tag that only our key opens.
func TestNextPacketSRTP(t *testing.T) {
	plain := newStreamState(0, discard)
	enc := newStreamState(0, discard)
	for _, s := range []*stream{plain, enc} {
		s.ssrc, s.seq, s.tsBase = 7, 100, 1000
		s.params = mediaParams{remote: netip.MustParseAddrPort("127.0.0.1:9"), codec: g711.PCMU, eventPT: 101, send: true}
		s.setSource(audioSource{sine: tone.NewSine(1000, -10)})
	}
	if err := enc.setSRTP(testKey, otherKey); err != nil {
		t.Fatal(err)
	}
	for n := range int64(3) {
		want, _, _ := plain.nextPacket(n)
		got, _, ok := enc.nextPacket(n)
		if !ok {
			t.Fatal("nothing sent")
		}
		if len(got) != len(want)+10 {
			t.Fatalf("packet %d: %d bytes, want %d + 10-byte tag", n, len(got), len(want))
		}
		if !bytes.Equal(got[:rtpHeaderLen], want[:rtpHeaderLen]) || bytes.Equal(got[rtpHeaderLen:len(want)], want[rtpHeaderLen:]) {
			t.Fatalf("packet %d: header changed or payload left plain", n)
		}
		// The bridge decrypts with the key we announced.
		rx, err := newSRTPContext(testKey)
		if err != nil {
			t.Fatal(err)
		}
		dec, err := rx.DecryptRTP(nil, got, nil)
		if err != nil {
			t.Fatalf("packet %d: our key does not open it: %v", n, err)
		}
		if !bytes.Equal(dec, want) {
			t.Fatalf("packet %d decrypts to something else", n)
		}
		wrong, _ := newSRTPContext(otherKey)
		if _, err := wrong.DecryptRTP(nil, got, nil); err == nil {
			t.Fatalf("packet %d opens with the wrong key", n)
		}
	}
}

// Two SRTP streams with crossed keys hear each other over real sockets; a
// third with the wrong key hears nothing and counts the failures; an SRTP
// stream drops what arrives before its keys are set.
func TestStreamSRTPOverSockets(t *testing.T) {
	ip := netip.MustParseAddr("127.0.0.1")
	newS := func() *stream {
		s, err := newStream(ip, 10*time.Second, discard)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(s.close)
		return s
	}
	a, b, eve := newS(), newS(), newS()
	b.srtpPending.Store(true)
	// Plain RTP before b has its keys must not end up in its audio.
	pk := pkt{seq: 1, val: 1000}.marshal(t)
	if _, err := a.conn.WriteToUDPAddrPort(pk, b.local); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	if r, _, _ := b.rtpStats(); r != 0 {
		t.Fatalf("b kept %d packets before it had keys", r)
	}
	if err := a.setSRTP(testKey, otherKey); err != nil {
		t.Fatal(err)
	}
	if err := b.setSRTP(otherKey, testKey); err != nil {
		t.Fatal(err)
	}
	if err := eve.setSRTP(otherKey, otherKey); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	a.setSource(audioSource{sine: tone.NewSine(1000, -10)})
	a.start(mediaParams{remote: b.local, codec: g711.PCMU, eventPT: -1, send: true})
	// eve gets a copy of a's packets by sending them from a second stream
	// with a's keys.
	a2 := newS()
	if err := a2.setSRTP(testKey, otherKey); err != nil {
		t.Fatal(err)
	}
	a2.setSource(audioSource{sine: tone.NewSine(1000, -10)})
	a2.start(mediaParams{remote: eve.local, codec: g711.PCMU, eventPT: -1, send: true})

	deadline := time.Now().Add(10 * time.Second)
	for {
		got := b.received(start)
		if len(got) >= 8000 && tone.LevelDBFS(got, 1000) > -13 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("b heard %d samples, 1000 Hz at %.1f dBFS", len(got), tone.LevelDBFS(got, 1000))
		}
		time.Sleep(50 * time.Millisecond)
	}
	if n := b.srtpFailed.Load(); n != 0 {
		t.Errorf("b: %d packets failed SRTP", n)
	}
	for eve.srtpFailed.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("eve counted no failures")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if r, _, _ := eve.rtpStats(); r != 0 {
		t.Errorf("eve kept %d packets under the wrong key", r)
	}
}

func TestCheckSecurity(t *testing.T) {
	key := &cryptoAttr{tag: 1, key: otherKey}
	cases := []struct {
		name  string
		srtp  bool
		rm    remoteMedia
		offer bool
		ok    bool
	}{
		{"plain", false, remoteMedia{}, false, true},
		{"savp unasked", false, remoteMedia{savp: true, crypto: key}, false, false},
		{"srtp answered", true, remoteMedia{savp: true, crypto: key}, false, true},
		{"srtp answered plain", true, remoteMedia{}, false, false},
		{"srtp without key", true, remoteMedia{savp: true}, false, false},
		{"answer with another tag", true, remoteMedia{savp: true, crypto: &cryptoAttr{tag: 2, key: otherKey}}, false, false},
		{"offer with another tag", true, remoteMedia{savp: true, crypto: &cryptoAttr{tag: 2, key: otherKey}}, true, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := &Phone{cfg: Config{SRTP: tc.srtp}, srtpKey: cryptoAttr{tag: 1, key: testKey}}
			err := p.checkSecurity(tc.rm, tc.offer)
			if (err == nil) != tc.ok || (err != nil && !errors.Is(err, ErrSDP)) {
				t.Errorf("checkSecurity = %v, want ok %v", err, tc.ok)
			}
		})
	}
}

func BenchmarkNextPacketSRTP(b *testing.B) {
	s := newStreamState(0, discard)
	s.params = mediaParams{remote: netip.MustParseAddrPort("127.0.0.1:9"), codec: g711.PCMU, eventPT: 101, send: true}
	s.setSource(audioSource{sine: tone.NewSine(1000, -10)})
	if err := s.setSRTP(testKey, otherKey); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	var n int64
	for b.Loop() {
		if _, _, ok := s.nextPacket(n); !ok {
			b.Fatal("nothing sent")
		}
		n++
	}
}

// BenchmarkDecryptSRTP is the receiver's per-packet SRTP step, into a
// reused buffer as receiveLoop does it.
func BenchmarkDecryptSRTP(b *testing.B) {
	s := newStreamState(0, discard)
	s.params = mediaParams{remote: netip.MustParseAddrPort("127.0.0.1:9"), codec: g711.PCMU, eventPT: 101, send: true}
	if err := s.setSRTP(testKey, otherKey); err != nil {
		b.Fatal(err)
	}
	// Encrypt a run of packets up front; decrypting them in order keeps the
	// replay window happy.
	const count = 1 << 12
	pkts := make([][]byte, count)
	for i := range pkts {
		p, _, _ := s.nextPacket(int64(i))
		pkts[i] = append([]byte(nil), p...)
	}
	dec := make([]byte, 2048)
	var hdr rtp.Header
	newRx := func() {
		rx, err := newSRTPContext(testKey)
		if err != nil {
			b.Fatal(err)
		}
		s.rxSRTP.Store(rx)
	}
	newRx()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if i == count {
			// A new context, or the replay window would refuse the rerun.
			b.StopTimer()
			newRx()
			i = 0
			b.StartTimer()
		}
		if _, err := s.rxSRTP.Load().DecryptRTP(dec[:0], pkts[i], &hdr); err != nil {
			b.Fatal(err)
		}
		i++
	}
}
