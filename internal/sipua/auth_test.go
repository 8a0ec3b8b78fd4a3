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
	mangle                                  func(*digest.Credentials)
}

const testURI = "sip:groupbridge@127.0.0.1:5060"

func (o credOpts) header(t testing.TB) string {
	t.Helper()
	chal := &digest.Challenge{Realm: o.realm, Nonce: o.nonce, Algorithm: o.alg}
	if o.qop != "" {
		chal.QOP = []string{o.qop}
	}
	cred, err := digest.Digest(chal, digest.Options{Method: o.method, URI: testURI, Username: o.user, Password: o.password})
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
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
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

// TestGateBounded checks that spoofed sources cannot grow the failure
// records without end.
func TestGateBounded(t *testing.T) {
	g := testGate(t)
	now := time.Now()
	for i := range maxSources + 100 {
		a := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		g.fail(a, now)
	}
	if len(g.sources) != maxSources {
		t.Errorf("%d records, want the bound %d", len(g.sources), maxSources)
	}
	// Once they expire, new sources are recorded again.
	g.fail(netip.MustParseAddr("192.0.2.1"), now.Add(2*g.window))
	if _, ok := g.sources[netip.MustParseAddr("192.0.2.1")]; !ok || len(g.sources) != 1 {
		t.Errorf("after expiry: %d records, new source recorded %v", len(g.sources), ok)
	}
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
