package cluster

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/groupbridge/groupbridge/internal/group"
	"github.com/groupbridge/groupbridge/internal/testkit"
	"github.com/groupbridge/groupbridge/internal/wallclock"
)

const testSecret = "0123456789abcdef0123456789abcdef-test"

func signer(t testing.TB, secret string, rdb redis.Cmdable, clk wallclock.Clock) *Signer {
	t.Helper()
	s, err := NewSigner(secret, rdb, clk)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

var testLeg = Leg{
	From: "node-a", Room: "tuesday", Role: group.Member, Language: "en",
	Identity: "3f9a0c1d2e", Epoch: 7, Reconnect: false,
}

const testCallID = "a84b4c76e66710@127.0.0.2"

var testSDP = []byte("v=0\r\no=- 1 1 IN IP4 127.0.0.2\r\ns=-\r\nc=IN IP4 127.0.0.2\r\nt=0 0\r\nm=audio 40000 RTP/SAVP 0\r\n")

func TestNewSignerRefuses(t *testing.T) {
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	defer c.Close()
	if _, err := NewSigner(strings.Repeat("x", 31), c, nil); err == nil || !strings.Contains(err.Error(), "cluster.secret") {
		t.Errorf("a 31-character secret: %v", err)
	}
	if _, err := NewSigner(testSecret, nil, nil); err == nil {
		t.Error("no Redis client accepted")
	}
}

func TestSignRefuses(t *testing.T) {
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	defer c.Close()
	s := signer(t, testSecret, c, nil)
	mod := func(f func(*Leg)) Leg { l := testLeg; f(&l); return l }
	for name, l := range map[string]Leg{
		"no room":     mod(func(l *Leg) { l.Room = "" }),
		"no node":     mod(func(l *Leg) { l.From = "" }),
		"bad role":    mod(func(l *Leg) { l.Role = 2 }),
		"long string": mod(func(l *Leg) { l.Identity = strings.Repeat("a", maxLegString+1) }),
	} {
		if _, _, err := s.Sign(l, testCallID, testSDP); err == nil {
			t.Errorf("%s: signed", name)
		}
	}
	if _, _, err := s.Sign(testLeg, "", testSDP); err == nil {
		t.Error("no Call-ID: signed")
	}
}

var headerSafe = regexp.MustCompile(`^v2\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{43}$`)

func TestLegRoundTrip(t *testing.T) {
	srv := testkit.StartRedis(t)
	ctx := context.Background()
	a, b := signer(t, testSecret, client(t, srv), nil), signer(t, testSecret, client(t, srv), nil)
	for _, l := range []Leg{
		testLeg,
		{From: "b", Room: "x", Role: group.Facilitator, Epoch: 1 << 40, Reconnect: true, Downlink: 40002},
		{From: "c", Room: "ünïcode room; \"quoted\"\r\n", Identity: strings.Repeat("z", maxLegString)},
	} {
		h, nonce, err := a.Sign(l, testCallID, testSDP)
		if err != nil {
			t.Fatal(err)
		}
		if !headerSafe.MatchString(h) || len(h) > 2*maxLegString+200 {
			t.Errorf("header %q is not a compact base64url token", h)
		}
		got, gn, err := b.Verify(ctx, h, testCallID, testSDP)
		if err != nil {
			t.Fatalf("verify %+v: %v", l, err)
		}
		if got != l || gn != nonce {
			t.Errorf("verified %+v %x, signed %+v %x", got, gn, l, nonce)
		}
	}
	if n := b.LocalOnly(); n != 0 {
		t.Errorf("LocalOnly = %d with Redis up", n)
	}
}

// retoken re-encodes a token's body after f changed it, keeping its
// signature: what an attacker who edits a captured header sends.
func retoken(t *testing.T, h string, f func(l *Leg, ts *int64, nonce *[16]byte)) string {
	t.Helper()
	body, mac, err := splitLeg(h)
	if err != nil {
		t.Fatal(err)
	}
	l, ts, nonce, err := decodeLeg(body)
	if err != nil {
		t.Fatal(err)
	}
	f(&l, &ts, &nonce)
	return legVersion + base64.RawURLEncoding.EncodeToString(encodeLeg(l, ts, nonce)) + "." +
		base64.RawURLEncoding.EncodeToString(mac)
}

func TestLegTampered(t *testing.T) {
	srv := testkit.StartRedis(t)
	ctx := context.Background()
	s := signer(t, testSecret, client(t, srv), nil)
	rows := []struct {
		name   string
		edit   func(l *Leg, ts *int64, nonce *[16]byte)
		callID string
		sdp    []byte
		raw    func(h string) string
	}{
		{name: "role member to facilitator", edit: func(l *Leg, _ *int64, _ *[16]byte) { l.Role = group.Facilitator }},
		{name: "room", edit: func(l *Leg, _ *int64, _ *[16]byte) { l.Room = "wednesday" }},
		{name: "from", edit: func(l *Leg, _ *int64, _ *[16]byte) { l.From = "node-b" }},
		{name: "identity", edit: func(l *Leg, _ *int64, _ *[16]byte) { l.Identity = "3f9a0c1d2f" }},
		{name: "epoch", edit: func(l *Leg, _ *int64, _ *[16]byte) { l.Epoch++ }},
		{name: "language", edit: func(l *Leg, _ *int64, _ *[16]byte) { l.Language = "es" }},
		{name: "reconnect", edit: func(l *Leg, _ *int64, _ *[16]byte) { l.Reconnect = true }},
		{name: "downlink", edit: func(l *Leg, _ *int64, _ *[16]byte) { l.Downlink = 9 }},
		{name: "timestamp", edit: func(_ *Leg, ts *int64, _ *[16]byte) { *ts++ }},
		{name: "nonce", edit: func(_ *Leg, _ *int64, n *[16]byte) { n[15] ^= 1 }},
		{name: "sdp byte", sdp: append(append([]byte{}, testSDP[:len(testSDP)-2]...), '8', '\n')},
		{name: "sdp empty", sdp: []byte{}},
		{name: "call-id", callID: testCallID + "x"},
		{name: "signature", raw: func(h string) string {
			b := []byte(h)
			i := len(b) - 5
			if b[i] == 'A' {
				b[i] = 'B'
			} else {
				b[i] = 'A'
			}
			return string(b)
		}},
		{name: "signature of another token", raw: func(h string) string {
			other, _, err := s.Sign(testLeg, testCallID, testSDP)
			if err != nil {
				t.Fatal(err)
			}
			return h[:strings.LastIndexByte(h, '.')] + other[strings.LastIndexByte(other, '.'):]
		}},
	}
	for _, row := range rows {
		t.Run(row.name, func(t *testing.T) {
			h, _, err := s.Sign(testLeg, testCallID, testSDP)
			if err != nil {
				t.Fatal(err)
			}
			callID, sdp := testCallID, testSDP
			if row.edit != nil {
				h = retoken(t, h, row.edit)
			}
			if row.raw != nil {
				h = row.raw(h)
			}
			if row.callID != "" {
				callID = row.callID
			}
			if row.sdp != nil {
				sdp = row.sdp
			}
			if _, _, err := s.Verify(ctx, h, callID, sdp); !errors.Is(err, ErrLegSignature) {
				t.Errorf("tampered %s: %v, want ErrLegSignature", row.name, err)
			}
		})
	}
}

func TestLegMalformed(t *testing.T) {
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	defer c.Close()
	s := signer(t, testSecret, c, nil)
	h, _, err := s.Sign(testLeg, testCallID, testSDP)
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{
		"", "v2", "v2.", "v1" + h[2:], "v3" + h[2:], strings.TrimPrefix(h, "v2."),
		h[:strings.LastIndexByte(h, '.')], h + "=", h + "A", h + ".x",
		strings.Replace(h, "v2.", "v2.!", 1), "v2." + strings.Repeat("A", maxHeaderLen),
	} {
		if _, _, err := s.Verify(context.Background(), bad, testCallID, testSDP); !errors.Is(err, ErrLegMalformed) {
			t.Errorf("Verify(%.40q) = %v, want ErrLegMalformed", bad, err)
		}
	}
}

func TestLegOtherSecret(t *testing.T) {
	srv := testkit.StartRedis(t)
	a := signer(t, testSecret, client(t, srv), nil)
	b := signer(t, testSecret+"!", client(t, srv), nil)
	h, _, err := a.Sign(testLeg, testCallID, testSDP)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := b.Verify(context.Background(), h, testCallID, testSDP); !errors.Is(err, ErrLegSignature) {
		t.Fatalf("another secret: %v, want ErrLegSignature", err)
	}
	// Refused without spending the nonce: the right node still takes it.
	if _, _, err := a.Verify(context.Background(), h, testCallID, testSDP); err != nil {
		t.Fatalf("after a refusal elsewhere: %v", err)
	}
}

// Another node with the same secret and Redis refuses a token this node
// accepted, and so does this node.
func TestLegReplayRedis(t *testing.T) {
	srv := testkit.StartRedis(t)
	ctx := context.Background()
	c := client(t, srv)
	a, b := signer(t, testSecret, c, nil), signer(t, testSecret, client(t, srv), nil)
	h, nonce, err := a.Sign(testLeg, testCallID, testSDP)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := a.Verify(ctx, h, testCallID, testSDP); err != nil {
		t.Fatal(err)
	}
	for name, s := range map[string]*Signer{"other node": b, "same node": a} {
		if _, _, err := s.Verify(ctx, h, testCallID, testSDP); !errors.Is(err, ErrLegReplay) {
			t.Errorf("replay to the %s: %v, want ErrLegReplay", name, err)
		}
	}
	ttl, err := c.PTTL(ctx, noncePrefix+hex.EncodeToString(nonce[:])).Result()
	if err != nil || ttl <= 100*time.Second || ttl > nonceTTL {
		t.Errorf("nonce key TTL %v, %v; want about %v", ttl, err, nonceTTL)
	}
}

// With Redis stopped a fresh token is accepted once, on memory alone and
// counted; its replay to the same node is refused.
func TestLegReplayLocalRedisDown(t *testing.T) {
	srv := testkit.StartRedis(t)
	ctx := context.Background()
	a := signer(t, testSecret, client(t, srv), nil)
	seenUp, _, err := a.Sign(testLeg, testCallID, testSDP)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := a.Verify(ctx, seenUp, testCallID, testSDP); err != nil {
		t.Fatal(err)
	}
	srv.Stop()
	h, _, err := a.Sign(testLeg, testCallID, testSDP)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := a.Verify(ctx, h, testCallID, testSDP); err != nil {
		t.Fatalf("fresh token with Redis down: %v", err)
	}
	if n := a.LocalOnly(); n != 1 {
		t.Errorf("LocalOnly = %d, want 1", n)
	}
	for _, r := range []string{h, seenUp} {
		if _, _, err := a.Verify(ctx, r, testCallID, testSDP); !errors.Is(err, ErrLegReplay) {
			t.Errorf("replay with Redis down: %v, want ErrLegReplay", err)
		}
	}
}

func TestLegExpired(t *testing.T) {
	srv := testkit.StartRedis(t)
	ctx := context.Background()
	sclk, vclk := testkit.NewManualClock(), testkit.NewManualClock()
	a := signer(t, testSecret, client(t, srv), sclk)
	v := signer(t, testSecret, client(t, srv), vclk)
	rows := []struct {
		name string
		skew time.Duration // verifier's clock minus the signer's
		ok   bool
	}{
		{"same time", 0, true},
		{"30 s late", LegWindow, true},
		{"30 s early", -LegWindow, true},
		{"31 s late", LegWindow + time.Second, false},
		{"31 s early", -LegWindow - time.Second, false},
		{"an hour late", time.Hour, false},
	}
	for _, row := range rows {
		h, _, err := a.Sign(testLeg, testCallID, testSDP)
		if err != nil {
			t.Fatal(err)
		}
		vclk.Advance(row.skew)
		_, _, err = v.Verify(ctx, h, testCallID, testSDP)
		vclk.Advance(-row.skew)
		if row.ok && err != nil || !row.ok && !errors.Is(err, ErrLegExpired) {
			t.Errorf("%s: %v", row.name, err)
		}
	}
}

// The memory keeps a nonce as long as a token of it may be fresh, then
// forgets it.
func TestLegNonceMemory(t *testing.T) {
	srv := testkit.StartRedis(t)
	ctx := context.Background()
	clk := testkit.NewManualClock()
	s := signer(t, testSecret, client(t, srv), clk)
	for range 3 {
		h, _, err := s.Sign(testLeg, testCallID, testSDP)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := s.Verify(ctx, h, testCallID, testSDP); err != nil {
			t.Fatal(err)
		}
	}
	count := func() int {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.forget(clk.Now())
		return len(s.seen)
	}
	clk.Advance(2*LegWindow + time.Second)
	if n := count(); n != 3 {
		t.Errorf("after %v: %d nonces remembered, want 3", 2*LegWindow, n)
	}
	clk.Advance(nonceTTL)
	if n := count(); n != 0 {
		t.Errorf("after %v: %d nonces remembered, want 0", nonceTTL, n)
	}
}

func TestLegConcurrentReplay(t *testing.T) {
	srv := testkit.StartRedis(t)
	s := signer(t, testSecret, client(t, srv), nil)
	h, _, err := s.Sign(testLeg, testCallID, testSDP)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok := 0
	for range 8 {
		wg.Go(func() {
			if _, _, err := s.Verify(context.Background(), h, testCallID, testSDP); err == nil {
				mu.Lock()
				ok++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if ok != 1 {
		t.Fatalf("%d of 8 concurrent verifications accepted, want 1", ok)
	}
}

func TestLegKeys(t *testing.T) {
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	defer c.Close()
	a, b := signer(t, testSecret, c, nil), signer(t, testSecret, c, nil)
	other := signer(t, testSecret+"!", c, nil)
	n1, n2 := [16]byte{1}, [16]byte{2}
	d1, a1 := a.LegKeys(n1)
	d2, a2 := a.LegKeys(n2)
	bd1, ba1 := b.LegKeys(n1)
	od1, oa1 := other.LegKeys(n1)
	for _, k := range [][]byte{d1, a1, d2, a2} {
		if len(k) != SRTPKeyLen {
			t.Fatalf("key of %d bytes, want %d", len(k), SRTPKeyLen)
		}
	}
	if !bytes.Equal(d1, bd1) || !bytes.Equal(a1, ba1) {
		t.Error("two signers with one secret derive different keys")
	}
	distinct := [][]byte{d1, a1, d2, a2, od1, oa1}
	for i := range distinct {
		for j := i + 1; j < len(distinct); j++ {
			if bytes.Equal(distinct[i], distinct[j]) {
				t.Errorf("keys %d and %d are equal", i, j)
			}
		}
	}
}

// FuzzVerify: no input panics, and nothing is accepted that Sign did not
// make: an accepted header is the one encoding of a leg signed for that
// Call-ID and SDP. (Fuzzing runs the seeds in worker processes whose
// Signs drew other nonces, so the check is on content, not on a list.)
func FuzzVerify(f *testing.F) {
	srv := testkit.StartRedis(f)
	opt, err := redis.ParseURL(srv.URL())
	if err != nil {
		f.Fatal(err)
	}
	opt.MaxRetries = -1
	c := redis.NewClient(opt)
	defer c.Close()
	clk := testkit.NewManualClock()
	s := signer(f, testSecret, c, clk)
	legs := []Leg{testLeg, {From: "b", Room: "r", Role: group.Facilitator, Reconnect: true}}
	sdpOf := func(i int) []byte { return append(append([]byte{}, testSDP...), byte(i)) }
	for i, l := range legs {
		h, _, err := s.Sign(l, testCallID, sdpOf(i))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(h, testCallID, sdpOf(i))
	}
	f.Add("v2..", "", []byte(nil))
	f.Add("v2.AAAA.AAAA", "x", []byte("y"))
	f.Fuzz(func(t *testing.T, h, callID string, sdp []byte) {
		l, nonce, err := s.Verify(context.Background(), h, callID, sdp)
		if err != nil {
			if !errors.Is(err, ErrLegMalformed) && !errors.Is(err, ErrLegSignature) &&
				!errors.Is(err, ErrLegExpired) && !errors.Is(err, ErrLegReplay) {
				t.Fatalf("error of no kind: %v", err)
			}
			return
		}
		i := slices.Index(legs, l)
		if i < 0 || callID != testCallID || !bytes.Equal(sdp, sdpOf(i)) {
			t.Fatalf("accepted a leg Sign did not make: %q %q %q", h, callID, sdp)
		}
		body := encodeLeg(l, clk.Now().Unix(), nonce)
		canon := legVersion + base64.RawURLEncoding.EncodeToString(body) + "." +
			base64.RawURLEncoding.EncodeToString(s.mac(body, callID, sdp))
		if h != canon {
			t.Fatalf("accepted %q, another encoding of %q", h, canon)
		}
	})
}
