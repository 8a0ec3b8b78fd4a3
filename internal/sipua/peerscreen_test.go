package sipua

import (
	"io"
	"log/slog"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/groupbridge/groupbridge/internal/testkit"
)

// screenRequest is a request of method from src (ip:port), with an
// Authorization header when auth is set.
func screenRequest(method sip.RequestMethod, src, auth string) *sip.Request {
	var uri sip.Uri
	_ = sip.ParseUri(testURI, &uri)
	req := sip.NewRequest(method, uri)
	if auth != "" {
		req.AppendHeader(sip.NewHeader("Authorization", auth))
	}
	req.SetSource(src)
	return req
}

// TestPeerScreen drives the in-dialog screen on its own: the dialog's
// peer passes; a stranger to a trusted call is dropped unless it is
// trusted itself; a stranger to an authenticated call is challenged, and
// passes (and is remembered) only with the call's own account.
func TestPeerScreen(t *testing.T) {
	discard := slog.New(slog.NewTextHandler(io.Discard, nil))
	const (
		peer     = "192.0.2.10:5060"
		stranger = "198.51.100.7:5060"
		trusted  = "10.0.0.1:5060"
	)
	strangerIP := netip.MustParseAddr("198.51.100.7")
	bob := User{Name: "bob", Password: "battery staple"}
	type cred struct{ user, password, alg string }
	tests := []struct {
		name      string
		callUser  string // the call's account; "" for a trusted call
		route     string // a Record-Route host of the call
		method    sip.RequestMethod
		src       string
		cred      *cred
		oldNonce  bool // answer a nonce past its life
		blocked   bool // the source failed too often before
		ok        bool
		user      string
		code      int // 0: nothing answered
		dropped   int // Events.RequestDropped(DropNotDialogPeer)
		remembers bool
	}{
		{name: "peer of a trusted call", method: sip.BYE, src: peer, ok: true},
		{name: "peer of an authenticated call", callUser: "alice", method: sip.BYE, src: peer, ok: true, user: "alice"},
		{name: "Record-Route hop", callUser: "alice", route: "198.51.100.7", method: sip.BYE, src: stranger, ok: true, user: "alice"},
		{name: "trusted stranger, trusted call", method: sip.BYE, src: trusted, ok: true},
		{name: "stranger, trusted call", method: sip.BYE, src: stranger, dropped: 1},
		{name: "stranger's ACK, authenticated call", callUser: "alice", method: sip.ACK, src: stranger, dropped: 1},
		{name: "stranger without credentials", callUser: "alice", method: sip.BYE, src: stranger, code: 401},
		{name: "stranger as the call's account", callUser: "alice", method: sip.BYE, src: stranger,
			cred: &cred{"alice", alice.Password, "MD5"}, ok: true, user: "alice", remembers: true},
		{name: "stale nonce", callUser: "alice", method: sip.BYE, src: stranger,
			cred: &cred{"alice", alice.Password, "MD5"}, oldNonce: true, code: 401},
		{name: "another account", callUser: "alice", method: sip.BYE, src: stranger,
			cred: &cred{"bob", bob.Password, "MD5"}, code: 403},
		{name: "wrong password", callUser: "alice", method: sip.BYE, src: stranger,
			cred: &cred{"alice", "wrong", "MD5"}, code: 403},
		{name: "blocked source", callUser: "alice", method: sip.BYE, src: stranger,
			cred: &cred{"alice", alice.Password, "MD5"}, blocked: true, code: 403},
		{name: "no source address", callUser: "alice", method: sip.BYE, src: "", code: 400},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g, err := newGate("groupbridge", []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}, []User{alice, bob})
			if err != nil {
				t.Fatal(err)
			}
			clk := testkit.NewManualClock()
			dropped := 0
			p := &peerScreen{gate: g, resp: responder{userAgent: "test", log: discard},
				events: Events{RequestDropped: func(r string) {
					if r == DropNotDialogPeer {
						dropped++
					}
				}},
				log: discard, clock: clk}
			var routes []string
			if tc.route != "" {
				routes = append(routes, tc.route)
			}
			c := dialogFrom(t, testLayer(t, clk), "call-1", peer, tc.callUser, routes...)
			now := clk.Now()
			if tc.blocked {
				for range g.maxFailures {
					g.fail(strangerIP, now)
				}
			}
			auth := ""
			if tc.cred != nil {
				issued := now
				if tc.oldNonce {
					issued = now.Add(-2 * g.nonceTTL)
				}
				auth = credOpts{realm: "groupbridge", user: tc.cred.user, password: tc.cred.password, method: string(tc.method),
					alg: tc.cred.alg, qop: "auth", nonce: g.nonce(strangerIP, issued)}.header(t)
			}
			tx := &answers{}
			user, ok := p.admit(c, screenRequest(tc.method, tc.src, auth), tx)
			if ok != tc.ok || user != tc.user {
				t.Errorf("admit = %q, %v; want %q, %v", user, ok, tc.user, tc.ok)
			}
			code := 0
			if len(tx.got) > 1 {
				t.Fatalf("%d answers", len(tx.got))
			}
			if len(tx.got) == 1 {
				code = tx.got[0].StatusCode
			}
			if code != tc.code {
				t.Errorf("answered %d; want %d", code, tc.code)
			}
			if code == 401 {
				h := tx.got[0].GetHeader("WWW-Authenticate")
				if h == nil || strings.Contains(h.Value(), "stale=true") != tc.oldNonce {
					t.Errorf("401 challenge %v; want stale=%v", h, tc.oldNonce)
				}
			}
			if dropped != tc.dropped {
				t.Errorf("%d drops counted; want %d", dropped, tc.dropped)
			}
			// The next request from the same source, without credentials,
			// passes only if the account's answer made the source a peer.
			if tc.src == "" {
				return
			}
			clk.Advance(time.Second)
			_, again := p.admit(c, screenRequest(sip.BYE, tc.src, ""), &answers{})
			if want := tc.remembers || (tc.ok && tc.cred == nil); again != want {
				t.Errorf("a later request from %s passes: %v; want %v", tc.src, again, want)
			}
		})
	}
}

// TestTrustScreen: the trust unit reads the packet's source and whether
// it is trusted, and stops nothing.
func TestTrustScreen(t *testing.T) {
	u := trustScreen{trusted: func(a netip.Addr) bool { return a == netip.MustParseAddr("10.0.0.1") }}
	tests := []struct {
		src     string
		valid   bool
		trusted bool
	}{
		{"10.0.0.1:5060", true, true},
		{"[::ffff:10.0.0.1]:5060", true, true},
		{"198.51.100.7:5060", true, false},
		{"", false, false},
	}
	for _, tc := range tests {
		r, ok := u.screen(screenRequest(sip.OPTIONS, tc.src, ""), &answers{}, facts{})
		if !ok || r.src.IsValid() != tc.valid || r.trusted != tc.trusted {
			t.Errorf("%q: ok %v, source %v, trusted %v; want true, valid %v, trusted %v",
				tc.src, ok, r.src, r.trusted, tc.valid, tc.trusted)
		}
	}
}
