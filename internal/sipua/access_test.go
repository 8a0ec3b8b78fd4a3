package sipua

import (
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/icholy/digest"
)

// untrusted makes 127.0.0.1 an untrusted source: only 10.0.0.0/8 is trusted.
func untrusted(users ...User) func(*Config) {
	return func(c *Config) {
		c.Trusted = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
		c.Users = users
	}
}

var alice = User{Name: "alice", Password: "correct horse"}

// answer computes the Authorization header for a challenge in res, choosing
// the challenge with algorithm alg ("" for the first one).
func answer(t *testing.T, res *sip.Response, alg, user, password, method, uri string) string {
	t.Helper()
	for _, h := range res.GetHeaders("WWW-Authenticate") {
		chal, err := digest.ParseChallenge(h.Value())
		if err != nil {
			t.Fatalf("challenge %q: %v", h.Value(), err)
		}
		if alg != "" && chal.Algorithm != alg {
			continue
		}
		cred, err := digest.Digest(chal, digest.Options{Method: method, URI: uri, Username: user, Password: password})
		if err != nil {
			t.Fatal(err)
		}
		return "Authorization: " + cred.String() + "\r\n"
	}
	t.Fatalf("no %s challenge in %v", alg, res)
	return ""
}

func TestTrustedSourcesNeedNoAuth(t *testing.T) {
	tests := []struct {
		name string
		mod  func(*Config)
	}{
		{"default is loopback", nil},
		{"listed network", func(c *Config) { c.Trusted = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/30")} }},
		{"single host", func(c *Config) { c.Trusted = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")} }},
		{"trusted even with users", func(c *Config) { c.Users = []User{alice} }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := testServer(t, tt.mod)
			p := newPeer(t, loopback, sipAddr(t, s, "udp"))
			id := callID()
			res := p.request(invite(id, 1))
			if res == nil || res.StatusCode != 200 {
				t.Fatalf("INVITE from a trusted source answered %v", res)
			}
			p.send(p.fill(ack(id, 1, res)))
			if c, f, b := s.AuthStats(); c+f+b != 0 {
				t.Errorf("AuthStats() = %d, %d, %d; want zeros", c, f, b)
			}
		})
	}
}

func TestUntrustedWithoutUsersForbidden(t *testing.T) {
	s := testServer(t, untrusted())
	dst := sipAddr(t, s, "udp")
	p := newPeer(t, loopback, dst)
	if res := p.request(invite(callID(), 1)); res == nil || res.StatusCode != 403 {
		t.Fatalf("INVITE from an untrusted source without users answered %v, want 403", res)
	}
	// Other out-of-dialog requests are refused too, but OPTIONS (a PBX's
	// keep-alive) is answered.
	other := func(method string) string {
		return method + " sip:groupbridge@{dst} SIP/2.0\r\n" +
			"Via: SIP/2.0/UDP {src};branch=z9hG4bK-{rand};rport\r\n" +
			"From: <sip:alice@{srcip}>;tag=f{rand}\r\nTo: <sip:groupbridge@{dst}>\r\n" +
			"Call-ID: {rand}@test\r\nCSeq: 1 " + method + "\r\nMax-Forwards: 70\r\n\r\n"
	}
	for method, want := range map[string]int{"OPTIONS": 200, "MESSAGE": 403, "BYE": 403, "INFO": 403, "REGISTER": 403} {
		if res := p.request(other(method)); res == nil || res.StatusCode != want {
			t.Errorf("%s from an untrusted source answered %v, want %d", method, res, want)
		}
	}
	if s.ActiveCalls() != 0 {
		t.Errorf("ActiveCalls() = %d after refused INVITEs", s.ActiveCalls())
	}
}

func TestDigestAuthentication(t *testing.T) {
	for _, alg := range []string{"SHA-256", "MD5"} {
		t.Run(alg, func(t *testing.T) {
			users := make(chan string, 1)
			s := testServer(t, func(c *Config) {
				untrusted(alice, User{Name: "bob", Password: "battery staple"})(c)
				c.Handler = HandlerFunc(func(c *Call) {
					users <- c.User()
					<-c.Context().Done()
				})
			})
			dst := sipAddr(t, s, "udp")
			p := newPeer(t, loopback, dst)
			id := callID()
			res := p.request(invite(id, 1))
			if res == nil || res.StatusCode != 401 {
				t.Fatalf("INVITE answered %v, want 401", res)
			}
			// MD5 first for the clients that read only the first
			// challenge, then SHA-256 (RFC 8760); one realm, qop=auth.
			var algs []string
			for _, h := range res.GetHeaders("WWW-Authenticate") {
				chal, err := digest.ParseChallenge(h.Value())
				if err != nil {
					t.Fatal(err)
				}
				algs = append(algs, chal.Algorithm)
				if chal.Realm != "groupbridge" || !chal.SupportsQOP("auth") || chal.Stale || chal.Nonce == "" {
					t.Errorf("challenge %q", h.Value())
				}
			}
			if strings.Join(algs, ",") != "MD5,SHA-256" {
				t.Errorf("challenge algorithms %v, want MD5 then SHA-256", algs)
			}
			uri := "sip:groupbridge@" + dst.String()
			res = p.request(invite(id, 2, answer(t, res, alg, "alice", "correct horse", "INVITE", uri)))
			if res == nil || res.StatusCode != 200 {
				t.Fatalf("INVITE with good credentials answered %v, want 200", res)
			}
			p.send(p.fill(ack(id, 2, res)))
			select {
			case u := <-users:
				if u != "alice" {
					t.Errorf("Call.User() = %q, want alice", u)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("handler never ran")
			}
			// In-dialog requests of the authenticated call are not challenged.
			info := "INFO " + uri + " SIP/2.0\r\n" +
				"Via: SIP/2.0/UDP {src};branch=z9hG4bK-{rand};rport\r\n" +
				"From: <sip:alice@{srcip}>;tag=f" + id + "\r\n" + res.To().String() + "\r\n" +
				"Call-ID: " + id + "\r\nCSeq: 3 INFO\r\nMax-Forwards: 70\r\n" +
				"Content-Type: application/dtmf-relay\r\n\r\nSignal=5\r\nDuration=160\r\n"
			if res := p.request(info); res == nil || res.StatusCode != 200 {
				t.Errorf("in-dialog INFO answered %v, want 200", res)
			}
			bye := strings.Replace(strings.Replace(info, "INFO "+uri, "BYE "+uri, 1), "CSeq: 3 INFO", "CSeq: 4 BYE", 1)
			if res := p.request(bye); res == nil || res.StatusCode != 200 {
				t.Errorf("in-dialog BYE answered %v, want 200", res)
			}
			if c, f, b := s.AuthStats(); c != 1 || f != 0 || b != 0 {
				t.Errorf("AuthStats() = %d, %d, %d; want 1, 0, 0", c, f, b)
			}
		})
	}
}

func TestDigestFailuresBlockTheSource(t *testing.T) {
	s := testServer(t, untrusted(alice))
	dst := sipAddr(t, s, "udp")
	p := newPeer(t, loopback, dst)
	uri := "sip:groupbridge@" + dst.String()
	try := func(password string) *sip.Response {
		t.Helper()
		id := callID()
		res := p.request(invite(id, 1))
		if res == nil || res.StatusCode != 401 {
			t.Fatalf("INVITE answered %v, want 401", res)
		}
		return p.request(invite(id, 2, answer(t, res, "", "alice", password, "INVITE", uri)))
	}
	for i := range defaultMaxFailures {
		if res := try("wrong password"); res == nil || res.StatusCode != 403 {
			t.Fatalf("attempt %d with a wrong password answered %v, want 403", i, res)
		}
	}
	if _, f, _ := s.AuthStats(); f != defaultMaxFailures {
		t.Errorf("failures = %d, want %d", f, defaultMaxFailures)
	}
	// Blocked now: even a bare INVITE gets no challenge, and the right
	// password does not help.
	for range 2 {
		if res := p.request(invite(callID(), 1)); res == nil || res.StatusCode != 403 {
			t.Fatalf("INVITE from a blocked source answered %v, want 403", res)
		}
	}
	if _, _, b := s.AuthStats(); b != 2 {
		t.Errorf("blocked = %d, want 2", b)
	}
	// Another address is not blocked.
	q := newPeer(t, netip.MustParseAddr("127.0.0.2"), dst)
	if res := q.request(invite(callID(), 1)); res == nil || res.StatusCode != 401 {
		t.Errorf("INVITE from another address answered %v, want 401", res)
	}
	// Once the block expires, the source may try again.
	s.gate.mu.Lock()
	s.gate.sources[sourceKey(loopback)].blockedUntil = time.Now()
	s.gate.mu.Unlock()
	if res := try("correct horse"); res == nil || res.StatusCode != 200 {
		t.Errorf("INVITE after the block answered %v, want 200", res)
	}
}

func TestDigestUnknownUserAndForeignNonce(t *testing.T) {
	s := testServer(t, untrusted(alice))
	dst := sipAddr(t, s, "udp")
	p := newPeer(t, loopback, dst)
	uri := "sip:groupbridge@" + dst.String()
	id := callID()
	res := p.request(invite(id, 1))
	if res == nil || res.StatusCode != 401 {
		t.Fatalf("INVITE answered %v, want 401", res)
	}
	if r := p.request(invite(id, 2, answer(t, res, "MD5", "mallory", "correct horse", "INVITE", uri))); r == nil || r.StatusCode != 403 {
		t.Errorf("unknown user answered %v, want 403", r)
	}
	// A nonce made for 127.0.0.1, replayed from 127.0.0.2, with the right
	// password: challenged afresh, not admitted and not a failure.
	q := newPeer(t, netip.MustParseAddr("127.0.0.2"), dst)
	r := q.request(invite(callID(), 2, answer(t, res, "MD5", "alice", "correct horse", "INVITE", uri)))
	if r == nil || r.StatusCode != 401 {
		t.Errorf("a nonce from another address answered %v, want 401", r)
	}
	if c, f, _ := s.AuthStats(); c != 2 || f != 1 {
		t.Errorf("AuthStats() challenges %d failures %d, want 2 and 1", c, f)
	}
}

func TestDigestStaleNonce(t *testing.T) {
	s := newTestServer(t, untrusted(alice))
	s.gate.nonceTTL = time.Millisecond
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	dst := sipAddr(t, s, "udp")
	p := newPeer(t, loopback, dst)
	uri := "sip:groupbridge@" + dst.String()
	id := callID()
	res := p.request(invite(id, 1))
	if res == nil || res.StatusCode != 401 {
		t.Fatalf("INVITE answered %v, want 401", res)
	}
	time.Sleep(5 * time.Millisecond)
	res = p.request(invite(id, 2, answer(t, res, "", "alice", "correct horse", "INVITE", uri)))
	if res == nil || res.StatusCode != 401 {
		t.Fatalf("right password on an old nonce answered %v, want 401", res)
	}
	chal, err := digest.ParseChallenge(res.GetHeader("WWW-Authenticate").Value())
	if err != nil || !chal.Stale {
		t.Errorf("challenge after an old nonce = %+v, %v; want stale=true", chal, err)
	}
	if _, f, _ := s.AuthStats(); f != 0 {
		t.Errorf("a stale nonce counted as %d failures", f)
	}
}

// TestViaReceivedRport checks that responses carry received and rport when
// the request asked for rport (RFC 3581), so that a caller behind NAT gets
// its answers, and that they go to the port the request came from.
func TestViaReceivedRport(t *testing.T) {
	s := testServer(t, nil)
	p := newPeer(t, loopback, sipAddr(t, s, "udp"))
	// The Via names a port nobody listens on, as a phone behind NAT would.
	res := p.request("OPTIONS sip:groupbridge@{dst} SIP/2.0\r\n" +
		"Via: SIP/2.0/UDP 192.0.2.1:5999;branch=z9hG4bK-{rand};rport\r\n" +
		"From: <sip:alice@192.0.2.1>;tag=f{rand}\r\nTo: <sip:groupbridge@{dst}>\r\n" +
		"Call-ID: {rand}@test\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\n\r\n")
	if res == nil || res.StatusCode != 200 {
		t.Fatalf("OPTIONS answered %v", res)
	}
	via := res.Via()
	received, _ := via.Params.Get("received")
	rport, _ := via.Params.Get("rport")
	if received != "127.0.0.1" || rport != strconv.Itoa(int(p.addr().Port())) {
		t.Errorf("Via %s: want received=127.0.0.1;rport=%d", via.Value(), p.addr().Port())
	}
}

// TestDigestReplayAndURI checks that a captured Authorization header
// cannot place another call: replayed on a new call it gets a fresh
// challenge, and one computed for one Request-URI is refused on another.
func TestDigestReplayAndURI(t *testing.T) {
	s := testServer(t, untrusted(alice))
	dst := sipAddr(t, s, "udp")
	p := newPeer(t, loopback, dst)
	uri := "sip:groupbridge@" + dst.String()
	id := callID()
	res := p.request(invite(id, 1))
	if res == nil || res.StatusCode != 401 {
		t.Fatalf("INVITE answered %v, want 401", res)
	}
	auth := answer(t, res, "MD5", "alice", "correct horse", "INVITE", uri)
	if res := p.request(invite(id, 2, auth)); res == nil || res.StatusCode != 200 {
		t.Fatalf("INVITE with good credentials answered %v, want 200", res)
	} else {
		p.send(p.fill(ack(id, 2, res)))
	}
	// The same header on a new call, as an attacker who saw it would send.
	replay := p.request(invite(callID(), 1, auth))
	if replay == nil || replay.StatusCode != 401 {
		t.Fatalf("replayed Authorization answered %v, want 401", replay)
	}
	// A header computed for the bridge's URI, on another number's.
	res = p.request(invite(callID(), 1))
	if res == nil || res.StatusCode != 401 {
		t.Fatalf("INVITE answered %v, want 401", res)
	}
	other := strings.Replace(invite(callID(), 2, answer(t, res, "MD5", "alice", "correct horse", "INVITE", uri)),
		"INVITE sip:groupbridge@", "INVITE sip:4001@", 1)
	if res := p.request(other); res == nil || res.StatusCode != 403 {
		t.Errorf("credentials for another Request-URI answered %v, want 403", res)
	}
	if n := s.ActiveCalls(); n != 1 {
		t.Errorf("ActiveCalls() = %d, want only the first call", n)
	}
}
