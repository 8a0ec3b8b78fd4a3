package sipua

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/icholy/digest"
)

func testGate(t testing.TB) *gate {
	t.Helper()
	g, err := newGate("groupbridge", nil, []User{alice})
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// credOpts describe one Authorization header for gate tests.
type credOpts struct {
	realm, user, password, method, alg, qop string
	nonce                                   string
	uri                                     string // "" is testURI
	mangle                                  func(*digest.Credentials)
}

const testURI = "sip:groupbridge@127.0.0.1:5060"

func (o credOpts) header(t testing.TB) string {
	t.Helper()
	chal := &digest.Challenge{Realm: o.realm, Nonce: o.nonce, Algorithm: o.alg}
	if o.qop != "" {
		chal.QOP = []string{o.qop}
	}
	uri := o.uri
	if uri == "" {
		uri = testURI
	}
	cred, err := digest.Digest(chal, digest.Options{Method: o.method, URI: uri, Username: o.user, Password: o.password})
	if err != nil {
		t.Fatal(err)
	}
	if o.mangle != nil {
		o.mangle(cred)
	}
	return cred.String()
}

func inviteWith(headers ...string) *sip.Request {
	var uri sip.Uri
	_ = sip.ParseUri(testURI, &uri)
	req := sip.NewRequest(sip.INVITE, uri)
	for _, h := range headers {
		req.AppendHeader(sip.NewHeader("Authorization", h))
	}
	return req
}

func TestGateVerify(t *testing.T) {
	g := testGate(t)
	now := time.Now()
	src := netip.MustParseAddr("192.0.2.10")
	fresh := g.nonce(src, now)
	good := credOpts{realm: "groupbridge", user: "alice", password: "correct horse", method: "INVITE", alg: "MD5", qop: "auth", nonce: fresh}
	with := func(f func(*credOpts)) credOpts { o := good; f(&o); return o }
	tampered := []byte(fresh)
	tampered[3] ^= 1

	tests := []struct {
		name    string
		headers []string
		want    authResult
	}{
		{"MD5", []string{good.header(t)}, authOK},
		{"SHA-256", []string{with(func(o *credOpts) { o.alg = "SHA-256" }).header(t)}, authOK},
		{"no algorithm is MD5", []string{with(func(o *credOpts) { o.alg = "" }).header(t)}, authOK},
		{"RFC 2069 without qop", []string{with(func(o *credOpts) { o.qop = "" }).header(t)}, authOK},
		{"upper-case response", []string{with(func(o *credOpts) {
			o.mangle = func(c *digest.Credentials) { c.Response = strings.ToUpper(c.Response) }
		}).header(t)}, authOK},
		{"ours after another realm's", []string{with(func(o *credOpts) { o.realm = "pbx" }).header(t), good.header(t)}, authOK},
		{"no header", nil, authNone},
		{"another realm only", []string{with(func(o *credOpts) { o.realm = "pbx" }).header(t)}, authNone},
		{"Basic", []string{"Basic YWxpY2U6eA=="}, authNone},
		{"garbage", []string{"Digest ,,,=\"\\"}, authNone},
		{"tampered nonce", []string{with(func(o *credOpts) { o.nonce = string(tampered) }).header(t)}, authNone},
		{"nonce of another source", []string{with(func(o *credOpts) { o.nonce = g.nonce(netip.MustParseAddr("192.0.2.11"), now) }).header(t)}, authNone},
		{"short nonce", []string{with(func(o *credOpts) { o.nonce = "abc" }).header(t)}, authNone},
		{"old nonce", []string{with(func(o *credOpts) { o.nonce = g.nonce(src, now.Add(-2*g.nonceTTL)) }).header(t)}, authStale},
		{"nonce from the future", []string{with(func(o *credOpts) { o.nonce = g.nonce(src, now.Add(time.Minute)) }).header(t)}, authStale},
		{"old nonce, wrong password", []string{with(func(o *credOpts) {
			o.nonce, o.password = g.nonce(src, now.Add(-2*g.nonceTTL)), "wrong"
		}).header(t)}, authFailed},
		{"wrong password", []string{with(func(o *credOpts) { o.password = "wrong" }).header(t)}, authFailed},
		{"unknown user", []string{with(func(o *credOpts) { o.user = "mallory" }).header(t)}, authFailed},
		{"computed for BYE", []string{with(func(o *credOpts) { o.method = "BYE" }).header(t)}, authFailed},
		{"SHA-512", []string{with(func(o *credOpts) { o.alg = "SHA-512" }).header(t)}, authFailed},
		{"MD5-sess", []string{with(func(o *credOpts) {
			o.mangle = func(c *digest.Credentials) { c.Algorithm = "MD5-sess" }
		}).header(t)}, authFailed},
		{"auth-int", []string{with(func(o *credOpts) { o.qop = "auth-int" }).header(t)}, authFailed},
		{"qop without cnonce", []string{with(func(o *credOpts) {
			o.mangle = func(c *digest.Credentials) { c.Cnonce = "" }
		}).header(t)}, authFailed},
		{"userhash", []string{with(func(o *credOpts) {
			o.mangle = func(c *digest.Credentials) { c.Userhash = true }
		}).header(t)}, authFailed},
		{"empty response", []string{with(func(o *credOpts) {
			o.mangle = func(c *digest.Credentials) { c.Response = "" }
		}).header(t)}, authFailed},
		{"computed for another number", []string{with(func(o *credOpts) { o.uri = "sip:4001@127.0.0.1:5060" }).header(t)}, authFailed},
		{"computed for another host", []string{with(func(o *credOpts) { o.uri = "sip:groupbridge@127.0.0.2:5060" }).header(t)}, authFailed},
		{"computed for another port", []string{with(func(o *credOpts) { o.uri = "sip:groupbridge@127.0.0.1" }).header(t)}, authFailed},
		{"same URI written otherwise", []string{with(func(o *credOpts) { o.uri = "SIP:groupbridge@127.0.0.1:5060;transport=udp" }).header(t)}, authOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clear(g.nonces) // each case answers the same nonce once
			got, user := g.verify(inviteWith(tt.headers...), src, now)
			if got != tt.want {
				t.Errorf("verify = %d, want %d", got, tt.want)
			}
			if (got == authOK) != (user == "alice") {
				t.Errorf("verify user = %q for result %d", user, got)
			}
		})
	}
}

func TestGateBlocking(t *testing.T) {
	g := testGate(t)
	src := netip.MustParseAddr("192.0.2.10")
	t0 := time.Now()
	// Failures more than a window apart never add up.
	for i := range 3 * g.maxFailures {
		if g.fail(src, t0.Add(time.Duration(i)*g.window/2)) {
			t.Fatalf("failure %d, half a window after the last, blocked the source", i)
		}
	}
	t1 := t0.Add(10 * g.window)
	for i := range g.maxFailures {
		blocked := g.fail(src, t1.Add(time.Duration(i)*time.Second))
		if want := i == g.maxFailures-1; blocked != want {
			t.Fatalf("failure %d within a window: blocked %v, want %v", i, blocked, want)
		}
	}
	end := t1.Add(time.Duration(g.maxFailures-1)*time.Second + g.blockFor)
	if !g.isBlocked(src, end.Add(-time.Second)) || g.isBlocked(src, end) {
		t.Error("the block does not last blockFor")
	}
	if g.isBlocked(netip.MustParseAddr("192.0.2.11"), t1) {
		t.Error("another source is blocked")
	}
	// check counts a blocked request and does not challenge it.
	if v, _, _ := g.check(inviteWith(), src, end.Add(-time.Second)); v != vBlocked || g.blocked.Load() != 1 {
		t.Errorf("check on a blocked source = %d (blocked %d)", v, g.blocked.Load())
	}
	g.sweep(end.Add(g.window))
	if len(g.sources) != 0 {
		t.Errorf("sweep kept %d records", len(g.sources))
	}
}

// TestGateNonceReplay checks that a correct answer is good once: a
// captured Authorization header replayed (same nonce count) is told stale,
// a higher count on the same nonce is taken, and an RFC 2069 answer (no
// count) is single-use.
func TestGateNonceReplay(t *testing.T) {
	g := testGate(t)
	now := time.Now()
	src := netip.MustParseAddr("192.0.2.10")
	good := credOpts{realm: "groupbridge", user: "alice", password: "correct horse", method: "INVITE", alg: "MD5", qop: "auth", nonce: g.nonce(src, now)}
	withNC := func(nc int) string {
		o := good
		o.mangle = func(c *digest.Credentials) {
			// Recompute the response for this count, as a client would.
			d, err := digest.Digest(&digest.Challenge{Realm: c.Realm, Nonce: c.Nonce, Algorithm: c.Algorithm, QOP: []string{"auth"}},
				digest.Options{Method: "INVITE", URI: testURI, Username: "alice", Password: "correct horse", Cnonce: c.Cnonce, Count: nc})
			if err != nil {
				t.Fatal(err)
			}
			*c = *d
		}
		return o.header(t)
	}
	h1 := withNC(1)
	steps := []struct {
		name   string
		header string
		want   authResult
	}{
		{"first answer", h1, authOK},
		{"the same header again", h1, authStale},
		{"a higher count", withNC(2), authOK},
		{"a lower count", withNC(1), authStale},
		{"the same higher count again", withNC(2), authStale},
	}
	for _, st := range steps {
		if got, _ := g.verify(inviteWith(st.header), src, now); got != st.want {
			t.Errorf("%s: verify = %d, want %d", st.name, got, st.want)
		}
	}
	// RFC 2069: no count, so the nonce is single-use.
	old := good
	old.qop, old.nonce = "", g.nonce(src, now.Add(time.Nanosecond))
	h := old.header(t)
	if got, _ := g.verify(inviteWith(h), src, now); got != authOK {
		t.Fatalf("RFC 2069 answer = %d, want OK", got)
	}
	if got, _ := g.verify(inviteWith(h), src, now); got != authStale {
		t.Errorf("RFC 2069 answer replayed = %d, want stale", got)
	}
	// Remembered nonces go once they could only be stale.
	g.sweep(now.Add(g.nonceTTL + nonceSkew + time.Second))
	if len(g.nonces) != 0 {
		t.Errorf("sweep kept %d nonces", len(g.nonces))
	}
}

func TestSourceKeys(t *testing.T) {
	for _, tt := range []struct{ addr, key, agg string }{
		{"192.0.2.10", "192.0.2.10/32", "192.0.2.0/24"},
		{"::ffff:192.0.2.10", "192.0.2.10/32", "192.0.2.0/24"},
		{"2001:db8:1:2:aaaa:bbbb:cccc:dddd", "2001:db8:1:2::/64", "2001:db8:1::/48"},
		{"2001:db8:1:2::1", "2001:db8:1:2::/64", "2001:db8:1::/48"},
	} {
		a := netip.MustParseAddr(tt.addr)
		if k := sourceKey(a).String(); k != tt.key {
			t.Errorf("sourceKey(%s) = %s, want %s", tt.addr, k, tt.key)
		}
		if k := aggregateKey(a).String(); k != tt.agg {
			t.Errorf("aggregateKey(%s) = %s, want %s", tt.addr, k, tt.agg)
		}
	}
}

// TestGateIPv6ByPrefix checks that an IPv6 host cannot escape blocking by
// changing addresses within its /64.
func TestGateIPv6ByPrefix(t *testing.T) {
	g := testGate(t)
	now := time.Now()
	blocked := false
	for i := range g.maxFailures {
		a := netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 2, 0, 0, 0, 0, 0, 0, 0, byte(i + 1)})
		blocked = g.fail(a, now)
	}
	if !blocked {
		t.Fatal("failures from one /64's addresses did not block it")
	}
	if !g.isBlocked(netip.MustParseAddr("2001:db8:1:2::ffff"), now) {
		t.Error("another address of the /64 is not blocked")
	}
	if g.isBlocked(netip.MustParseAddr("2001:db8:1:3::1"), now) {
		t.Error("the next /64 is blocked")
	}
}

// TestGateFullTable checks the bounded failure table: the oldest records
// make room for new sources, an active block is never evicted, and when
// every record is an active block new sources are counted by their /24.
func TestGateFullTable(t *testing.T) {
	addr := func(i int) netip.Addr { return netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}) }
	t.Run("evicts the oldest", func(t *testing.T) {
		g := testGate(t)
		t0 := time.Now()
		for i := range maxSources {
			g.fail(addr(i), t0.Add(time.Duration(i)*time.Millisecond))
		}
		late := netip.MustParseAddr("192.0.2.1")
		now := t0.Add(maxSources * time.Millisecond)
		for i := range g.maxFailures {
			if blocked := g.fail(late, now); blocked != (i == g.maxFailures-1) {
				t.Fatalf("failure %d of a new source in a full table: blocked %v", i, blocked)
			}
		}
		if !g.isBlocked(late, now) {
			t.Error("a new source in a full table was never blocked")
		}
		if len(g.sources) != maxSources {
			t.Errorf("%d records, want the bound %d", len(g.sources), maxSources)
		}
		if _, ok := g.sources[sourceKey(addr(0))]; ok {
			t.Error("the oldest record was kept")
		}
		if _, ok := g.sources[sourceKey(addr(maxSources-1))]; !ok {
			t.Error("the newest record was evicted")
		}
	})
	t.Run("keeps active blocks and aggregates", func(t *testing.T) {
		g := testGate(t)
		now := time.Now()
		// Every record an active block: a many-address attacker's.
		for i := range maxSources {
			for range g.maxFailures {
				g.fail(addr(i), now)
			}
		}
		for i := range maxSources {
			if !g.isBlocked(addr(i), now) {
				t.Fatalf("source %d is not blocked", i)
			}
		}
		// New sources from one /24 share a record: blocked together.
		blockedNow := false
		for i := range g.maxFailures {
			blockedNow = g.fail(netip.AddrFrom4([4]byte{192, 0, 2, byte(10 + i)}), now)
		}
		if !blockedNow {
			t.Fatal("failures of a /24's addresses in a full table did not block it")
		}
		if !g.isBlocked(netip.MustParseAddr("192.0.2.200"), now) || g.isBlocked(netip.MustParseAddr("192.0.3.1"), now) {
			t.Error("the aggregate block is not the /24")
		}
		for i := range maxSources {
			if !g.isBlocked(addr(i), now) {
				t.Fatalf("source %d lost its block", i)
			}
		}
		if len(g.sources) != maxSources || len(g.aggregates) != 1 {
			t.Errorf("%d records and %d aggregates, want %d and 1", len(g.sources), len(g.aggregates), maxSources)
		}
		// Once the blocks expire, records are swept and sources counted
		// by themselves again.
		later := now.Add(g.blockFor + g.window)
		g.fail(netip.MustParseAddr("192.0.2.1"), later)
		if _, ok := g.sources[sourceKey(netip.MustParseAddr("192.0.2.1"))]; !ok || len(g.sources) != 1 || len(g.aggregates) != 0 {
			t.Errorf("after expiry: %d records and %d aggregates, source recorded by itself %v", len(g.sources), len(g.aggregates), ok)
		}
	})
}

func TestNewGateRefusesBadUsers(t *testing.T) {
	for _, users := range [][]User{
		{{Name: "", Password: "x"}},
		{{Name: "a", Password: ""}},
		{{Name: "a", Password: "x"}, {Name: "a", Password: "y"}},
	} {
		if _, err := newGate("r", nil, users); err == nil {
			t.Errorf("newGate accepted %d users with a problem", len(users))
		} else if strings.Contains(err.Error(), "x") || strings.Contains(err.Error(), "y") {
			t.Errorf("error %q shows a password", err)
		}
	}
}

func TestTrustedSource(t *testing.T) {
	g, err := newGate("r", []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("2001:db8::/32")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	g.registrar.Store(&[]netip.Addr{netip.MustParseAddr("192.0.2.5")})
	for a, want := range map[string]bool{
		"10.1.2.3":        true,
		"::ffff:10.1.2.3": true, // IPv4 on a dual-stack socket
		"2001:db8::7":     true,
		"192.0.2.5":       true, // the registrar
		"192.0.2.6":       false,
		"127.0.0.1":       false, // loopback is only the default
		"::1":             false,
		"2001:db9::1":     false,
	} {
		if got := g.trustedSource(netip.MustParseAddr(a)); got != want {
			t.Errorf("trustedSource(%s) = %v, want %v", a, got, want)
		}
	}
	def, _ := newGate("r", nil, nil)
	if !def.trustedSource(netip.MustParseAddr("127.0.0.5")) || !def.trustedSource(netip.MustParseAddr("::1")) || def.trustedSource(netip.MustParseAddr("10.0.0.1")) {
		t.Error("nil Trusted is not loopback only")
	}
	none, _ := newGate("r", []netip.Prefix{}, nil)
	if none.trustedSource(netip.MustParseAddr("127.0.0.1")) {
		t.Error("an empty Trusted trusts loopback")
	}
}

// FuzzGateVerify feeds arbitrary Authorization values: verify must never
// panic, and must admit nothing whose nonce we did not make.
func FuzzGateVerify(f *testing.F) {
	g := testGate(f)
	now := time.Unix(1_800_000_000, 0)
	src := netip.MustParseAddr("192.0.2.10")
	good := credOpts{realm: "groupbridge", user: "alice", password: "correct horse", method: "INVITE", alg: "MD5", qop: "auth", nonce: g.nonce(src, now)}
	f.Add(good.header(f))
	good.alg = "SHA-256"
	f.Add(good.header(f))
	good.qop = ""
	f.Add(good.header(f))
	f.Add(`Digest username="alice", realm="groupbridge", nonce="", uri="", response=""`)
	f.Add(`Digest username="a\"b", realm="groupbridge", nc=zz`)
	f.Add("Digest ")
	f.Add("")
	f.Fuzz(func(t *testing.T, header string) {
		res, user := g.verify(inviteWith(header), src, now)
		if res == authOK || res == authStale {
			cred, err := digest.ParseCredentials(header)
			if err != nil {
				t.Fatalf("admitted an unparsable header %q", header)
			}
			if _, ok := g.nonceTime(cred.Nonce, src); !ok {
				t.Fatalf("admitted a nonce we did not make: %q", header)
			}
		}
		if (res == authOK) != (user != "") {
			t.Fatalf("result %d with user %q", res, user)
		}
	})
}
