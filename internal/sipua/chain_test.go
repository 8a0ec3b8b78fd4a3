package sipua

import (
	"log/slog"
	"net/netip"
	"os"
	"regexp"
	"slices"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/groupbridge/groupbridge/internal/testkit"
)

// chainReq is a request to send through the chain in TestChain.
type chainReq struct {
	method    sip.RequestMethod
	src       string // ip:port
	transport string // "" is UDP
	toTag     string // "" outside a dialog
	noFromTag bool
	version   string // "" is SIP/2.0
	password  string // alice's digest answer; "" sends none
	origin    string // an X-Groupbridge-Source value; "" sends none
	extra     []sip.Header
}

// build makes the request, the n-th of its test, with the digest answer
// from s's gate on a nonce of its own.
func (c chainReq) build(t testing.TB, s *Server, n int) *sip.Request {
	t.Helper()
	var uri sip.Uri
	if err := sip.ParseUri(testURI, &uri); err != nil {
		t.Fatal(err)
	}
	req := sip.NewRequest(c.method, uri)
	if c.version != "" {
		req.SipVersion = c.version
	}
	callID := sip.CallIDHeader("chain")
	req.AppendHeader(&callID)
	from := &sip.FromHeader{Address: sip.Uri{Scheme: "sip", User: "caller", Host: "192.0.2.10"}, Params: sip.NewParams()}
	if !c.noFromTag {
		from.Params.Add("tag", "theirs")
	}
	to := &sip.ToHeader{Address: sip.Uri{Scheme: "sip", Host: "127.0.0.1"}, Params: sip.NewParams()}
	if c.toTag != "" {
		to.Params.Add("tag", c.toTag)
	}
	req.AppendHeader(from)
	req.AppendHeader(to)
	req.AppendHeader(&sip.CSeqHeader{SeqNo: uint32(n + 1), MethodName: c.method})
	for _, h := range c.extra {
		req.AppendHeader(h)
	}
	if c.origin != "" {
		req.AppendHeader(sip.NewHeader(SourceHeader, c.origin))
	}
	if c.password != "" {
		// The nonce is bound to the source the digest unit sees: behind
		// a proxy, the caller's own.
		nonceFor := c.src
		if src, err := netip.ParseAddrPort(c.src); err == nil && c.origin != "" && inPrefixes(s.cfg.Proxies, src.Addr()) {
			nonceFor = c.origin
		}
		ap, err := netip.ParseAddrPort(nonceFor)
		if err != nil {
			t.Fatal(err)
		}
		req.AppendHeader(sip.NewHeader("Authorization", credOpts{realm: "groupbridge", user: "alice", password: c.password,
			method: string(c.method), alg: "MD5", qop: "auth", nonce: s.gate.nonce(ap.Addr(), s.clock.Now().Add(-time.Duration(n)))}.header(t)))
	}
	req.SetSource(c.src)
	tp := "UDP"
	if c.transport != "" {
		tp = c.transport
	}
	req.SetTransport(tp)
	return req
}

// TestChain sends requests through a server's whole screening chain and
// checks which unit stopped each one (or none) and what it answered: the
// trust decision comes before the rate limits and the setup caps, the
// dialog's peer is not challenged, and each kind of refusal comes from
// its own unit. Every case but the last request of it is a lead-in: each
// of those must pass or be stopped as its own want says too.
func TestChain(t *testing.T) {
	const (
		trusted  = "10.0.0.1:5060"
		stranger = "198.51.100.7:5060"
		peer     = "192.0.2.10:5060"
		// Proxies: one trusted (Kamailio in sip.trusted), one not.
		proxy          = "10.0.0.2:5060"
		untrustedProxy = "198.51.100.99:5060"
		callerA        = "203.0.113.5:5060"
		callerB        = "203.0.113.6:5060"
	)
	type step struct {
		req  chainReq
		stop string // the unit that stopped it; "" for none
		code int    // its answer; 0 for none (dropped or passed)
	}
	invite := func(src string) chainReq { return chainReq{method: sip.INVITE, src: src} }
	tests := []struct {
		name     string
		limits   Limits
		drain    bool
		calls    int // calls in the table before the steps, from peer
		steps    []step
		wantUser string // the account of the last request when it passes
		wantHold bool   // the last request holds a place in setup
		wantCall bool   // the last request found its dialog
	}{
		{name: "trusted new call", limits: Limits{SetupPerSource: 1},
			steps: []step{{invite(trusted), "", 0}}},
		{name: "untrusted without credentials",
			steps: []step{{invite(stranger), "digest", 401}}},
		{name: "untrusted with a wrong password",
			steps: []step{{chainReq{method: sip.INVITE, src: stranger, password: "wrong"}, "digest", 403}}},
		{name: "untrusted with the right password", limits: Limits{SetupPerSource: 2},
			steps:    []step{{chainReq{method: sip.INVITE, src: stranger, password: alice.Password}, "", 0}},
			wantUser: "alice", wantHold: true},
		{name: "setup cap per source", limits: Limits{SetupPerSource: 1}, steps: []step{
			{chainReq{method: sip.INVITE, src: stranger, password: alice.Password}, "", 0},
			{chainReq{method: sip.INVITE, src: stranger, password: alice.Password}, "setup-caps", 503},
		}},
		{name: "untrusted over the flood bucket, TCP", limits: Limits{SourceRate: 1, SourceBurst: 1}, steps: []step{
			{chainReq{method: sip.OPTIONS, src: stranger, transport: "TCP"}, "", 0},
			{chainReq{method: sip.OPTIONS, src: stranger, transport: "TCP"}, "flood", 0},
		}},
		{name: "trusted is never rate limited", limits: Limits{SourceRate: 1, SourceBurst: 1}, steps: []step{
			{chainReq{method: sip.OPTIONS, src: trusted, transport: "TCP"}, "", 0},
			{chainReq{method: sip.OPTIONS, src: trusted, transport: "TCP"}, "", 0},
		}},
		{name: "UDP is screened as a datagram, not here", limits: Limits{SourceRate: 1, SourceBurst: 1}, steps: []step{
			{chainReq{method: sip.OPTIONS, src: stranger}, "", 0},
			{chainReq{method: sip.OPTIONS, src: stranger}, "", 0},
		}},
		{name: "scanner over TCP", limits: Limits{DropScanners: true}, steps: []step{
			{chainReq{method: sip.OPTIONS, src: stranger, transport: "TCP",
				extra: []sip.Header{sip.NewHeader("User-Agent", "friendly-scanner")}}, "flood", 0},
		}},
		{name: "foreign version", steps: []step{{chainReq{method: sip.INVITE, src: trusted, version: "SIP/3.0"}, "well-formed", 505}}},
		{name: "two Call-IDs", steps: []step{{chainReq{method: sip.INVITE, src: stranger,
			extra: []sip.Header{ptr(sip.CallIDHeader("second"))}}, "well-formed", 400}}},
		{name: "malformed before the digest", steps: []step{{chainReq{method: sip.BYE, src: stranger,
			extra: []sip.Header{&sip.CSeqHeader{SeqNo: 1, MethodName: sip.BYE}}}, "well-formed", 400}}},
		{name: "dialog's peer is not challenged", calls: 1,
			steps:    []step{{chainReq{method: sip.BYE, src: peer, toTag: "ours"}, "", 0}},
			wantCall: true},
		{name: "stranger inside a trusted call", calls: 1,
			steps: []step{{chainReq{method: sip.BYE, src: stranger, toTag: "ours"}, "dialog-peer", 0}}},
		{name: "in no dialog we know", steps: []step{{chainReq{method: sip.BYE, src: stranger, toTag: "ours"}, "digest", 401}}},
		{name: "untrusted ACK, CANCEL and OPTIONS are not challenged", steps: []step{
			{chainReq{method: sip.ACK, src: stranger}, "", 0},
			{chainReq{method: sip.CANCEL, src: stranger}, "", 0},
			{chainReq{method: sip.OPTIONS, src: stranger}, "", 0},
		}},
		{name: "unsupported extension", steps: []step{{chainReq{method: sip.INVITE, src: trusted,
			extra: []sip.Header{sip.NewHeader("Require", "100rel")}}, "inspect", 420}}},
		{name: "unserved method left to its 405", steps: []step{{chainReq{method: sip.SUBSCRIBE, src: trusted,
			extra: []sip.Header{sip.NewHeader("Require", "100rel")}}, "", 0}}},
		{name: "draining", drain: true, steps: []step{{invite(trusted), "capacity", 503}}},
		{name: "re-INVITE while draining", drain: true, calls: 1,
			steps:    []step{{chainReq{method: sip.INVITE, src: peer, toTag: "ours"}, "", 0}},
			wantCall: true},
		{name: "max calls, trusted too", limits: Limits{MaxCalls: 1}, calls: 1,
			steps: []step{{invite(trusted), "capacity", 503}}},
		{name: "no From tag", steps: []step{{chainReq{method: sip.INVITE, src: trusted, noFromTag: true}, "new-dialog", 400}}},

		// Behind a proxy the per-source units screen the caller's own
		// address; trust stays the proxy's.
		{name: "proxied: setup cap per caller", limits: Limits{SetupPerSource: 1}, steps: []step{
			{chainReq{method: sip.INVITE, src: proxy, origin: callerA}, "", 0},
			{chainReq{method: sip.INVITE, src: proxy, origin: callerB}, "", 0},
			{chainReq{method: sip.INVITE, src: proxy, origin: "203.0.113.5:6000"}, "setup-caps", 503},
		}},
		{name: "proxied: a trusted PBX behind the proxy is not capped", limits: Limits{SetupPerSource: 1}, steps: []step{
			{chainReq{method: sip.INVITE, src: proxy, origin: "10.0.0.9:5060"}, "", 0},
			{chainReq{method: sip.INVITE, src: proxy, origin: "10.0.0.9:5060"}, "", 0},
		}},
		{name: "proxied: the proxy's own requests are trusted", limits: Limits{SetupPerSource: 1}, steps: []step{
			{invite(proxy), "", 0},
			{invite(proxy), "", 0},
		}},
		{name: "proxied: flood bucket per caller, TCP", limits: Limits{SourceRate: 1, SourceBurst: 1}, steps: []step{
			{chainReq{method: sip.OPTIONS, src: proxy, origin: callerA, transport: "TCP"}, "", 0},
			{chainReq{method: sip.OPTIONS, src: proxy, origin: callerB, transport: "TCP"}, "", 0},
			{chainReq{method: sip.OPTIONS, src: proxy, origin: callerA, transport: "TCP"}, "flood", 0},
		}},
		{name: "proxied: no password needed through a trusted proxy", steps: []step{
			{chainReq{method: sip.INVITE, src: proxy, origin: callerA}, "", 0},
		}},
		{name: "proxied: a trusted address named does not skip the digest", steps: []step{
			{chainReq{method: sip.INVITE, src: untrustedProxy, origin: "10.0.0.9:5060"}, "digest", 401},
		}},
		{name: "proxied: digest blocks the caller, not the proxy", steps: []step{
			{chainReq{method: sip.INVITE, src: untrustedProxy, origin: callerA, password: "wrong"}, "digest", 403},
			{chainReq{method: sip.INVITE, src: untrustedProxy, origin: callerA, password: "wrong"}, "digest", 403},
			{chainReq{method: sip.INVITE, src: untrustedProxy, origin: callerA, password: "wrong"}, "digest", 403},
			{chainReq{method: sip.INVITE, src: untrustedProxy, origin: callerA, password: "wrong"}, "digest", 403},
			{chainReq{method: sip.INVITE, src: untrustedProxy, origin: callerA, password: "wrong"}, "digest", 403},
			{chainReq{method: sip.INVITE, src: untrustedProxy, origin: callerA, password: alice.Password}, "digest", 403},
			{chainReq{method: sip.INVITE, src: untrustedProxy, origin: callerB, password: alice.Password}, "", 0},
		}, wantUser: "alice"},
		{name: "forged header from a stranger is ignored", limits: Limits{SetupPerSource: 1}, steps: []step{
			{chainReq{method: sip.INVITE, src: stranger, origin: "10.0.0.9:5060", password: alice.Password}, "", 0},
			{chainReq{method: sip.INVITE, src: stranger, origin: callerA, password: alice.Password}, "setup-caps", 503},
		}},
		{name: "forged header from a trusted PBX is ignored", limits: Limits{SetupPerSource: 1}, steps: []step{
			{chainReq{method: sip.INVITE, src: trusted, origin: callerA}, "", 0},
		}},
		{name: "proxied: malformed header", steps: []step{
			{chainReq{method: sip.INVITE, src: proxy, origin: "203.0.113"}, "origin", 400},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newTestServer(t, func(c *Config) {
				c.Trusted = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
				c.Proxies = []netip.Prefix{netip.MustParsePrefix("10.0.0.2/32"), netip.MustParsePrefix("198.51.100.99/32")}
				c.Users = []User{alice}
				c.Clock = testkit.NewManualClock()
				c.Limits = tc.limits
			})
			if tc.drain {
				s.Drain()
			}
			var call *Call
			if tc.calls > 0 {
				// A call from peer, trusted: requests with the To tag
				// "ours" name its dialog.
				call = dialogFrom(t, s.dlg, "chain", peer, "")
			}
			var r facts
			for i, st := range tc.steps {
				tx := &answers{}
				var stop screen
				req := st.req
				if req.toTag == "ours" && call != nil {
					req.toTag = call.LocalTag()
				}
				r, stop = pass(s.chain, req.build(t, s, i), tx)
				name := ""
				if stop != nil {
					name = stop.name()
				}
				code := 0
				if len(tx.got) > 1 {
					t.Fatalf("step %d: %d answers", i, len(tx.got))
				} else if len(tx.got) == 1 {
					code = tx.got[0].StatusCode
				}
				if name != st.stop || code != st.code {
					t.Errorf("step %d: stopped by %q with %d; want %q with %d", i, name, code, st.stop, st.code)
				}
			}
			if last := tc.steps[len(tc.steps)-1]; last.stop == "" {
				if r.user != tc.wantUser || (r.hold != nil) != tc.wantHold || (r.call != nil) != tc.wantCall {
					t.Errorf("passed with user %q, hold %v, call %v; want %q, %v, %v",
						r.user, r.hold != nil, r.call != nil, tc.wantUser, tc.wantHold, tc.wantCall)
				}
			}
		})
	}
}

// TestChainOrder holds the chain to the order screen.go's doc comment
// gives: the numbered steps, less those it says are not units of the
// chain.
func TestChainOrder(t *testing.T) {
	src, err := os.ReadFile("screen.go")
	if err != nil {
		t.Fatal(err)
	}
	var documented []string
	for _, m := range regexp.MustCompile(`(?m)^//  ?\d+\. ([a-z-]+)[ :]`).FindAllSubmatch(src, -1) {
		documented = append(documented, string(m[1]))
	}
	outside := []string{"accept", "gate", "pin"} // "not a unit of the chain"
	var want []string
	for _, n := range documented {
		if !slices.Contains(outside, n) {
			want = append(want, n)
		}
	}
	s := newTestServer(t, nil)
	var got []string
	for _, u := range s.chain {
		got = append(got, u.name())
	}
	if !slices.Equal(got, want) {
		t.Errorf("chain is %v; screen.go documents %v", got, want)
	}
	// Trust is decided before anything that depends on it.
	if i, j := slices.Index(got, "trust"), slices.Index(got, "flood"); i < 0 || j < 0 || i > j {
		t.Errorf("trust (%d) must come before flood (%d)", i, j)
	}
	for _, n := range outside {
		if !slices.Contains(documented, n) {
			t.Errorf("screen.go no longer documents the %q stage", n)
		}
	}
}

func ptr[T any](v T) *T { return &v }

// BenchmarkChain is what the chain costs a request that passes it: a
// trusted one, and an untrusted one over TCP, which the flood unit
// screens. The chain allocates nothing; the untrusted request's one
// allocation is sipgo's GetHeader in the scanner check, as before the
// chain.
func BenchmarkChain(b *testing.B) {
	for _, bc := range []struct {
		name string
		req  chainReq
	}{
		{"trusted-udp", chainReq{method: sip.OPTIONS, src: "10.0.0.1:5060"}},
		{"untrusted-tcp", chainReq{method: sip.OPTIONS, src: "198.51.100.7:5060", transport: "TCP"}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			s := newTestServer(b, func(c *Config) {
				c.Trusted = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
				c.Limits = Limits{SourceRate: 1e12, SourceBurst: 1 << 30, DropScanners: true}
			})
			req := bc.req.build(b, s, 0)
			tx := &answers{}
			b.ReportAllocs()
			for b.Loop() {
				if _, stop := pass(s.chain, req, tx); stop != nil {
					b.Fatalf("stopped by %s", stop.name())
				}
			}
		})
	}
}

// TestNewDialogScreen: a new INVITE without the headers a dialog is made
// of, or without a From tag, gets 400; anything else passes untouched,
// as do requests inside a dialog.
func TestNewDialogScreen(t *testing.T) {
	u := newDialogScreen{validator{resp: responder{userAgent: "test", log: slog.New(slog.DiscardHandler)}}}
	tests := []struct {
		name   string
		req    chainReq
		drop   func(*sip.Request)
		code   int
		reason string
	}{
		{"sound INVITE", chainReq{method: sip.INVITE}, nil, 0, ""},
		{"no From tag", chainReq{method: sip.INVITE, noFromTag: true}, nil, 400, "Bad Request: Missing Tag"},
		{"no Call-ID", chainReq{method: sip.INVITE}, func(r *sip.Request) { r.RemoveHeader("Call-ID") }, 400, "Bad Request: Missing Header"},
		{"no CSeq", chainReq{method: sip.INVITE}, func(r *sip.Request) { r.RemoveHeader("CSeq") }, 400, "Bad Request: Missing Header"},
		{"re-INVITE without From tag", chainReq{method: sip.INVITE, toTag: "ours", noFromTag: true}, nil, 0, ""},
		{"BYE without From tag", chainReq{method: sip.BYE, noFromTag: true}, nil, 0, ""},
	}
	for _, tc := range tests {
		tc.req.src = "10.0.0.1:5060"
		req := tc.req.build(t, nil, 0)
		if tc.drop != nil {
			tc.drop(req)
		}
		tx := &answers{}
		_, ok := u.screen(req, tx, facts{})
		code, reason := 0, ""
		if len(tx.got) == 1 {
			code, reason = tx.got[0].StatusCode, tx.got[0].Reason
		}
		if ok != (tc.code == 0) || code != tc.code || reason != tc.reason || len(tx.got) > 1 {
			t.Errorf("%s: ok %v, answers %d, %d %q; want %d %q", tc.name, ok, len(tx.got), code, reason, tc.code, tc.reason)
		}
	}
}
