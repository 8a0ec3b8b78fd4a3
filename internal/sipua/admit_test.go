package sipua

import (
	"log/slog"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/groupbridge/groupbridge/internal/testkit"
)

// admitServer is the part of a Server that decides who may ask: the
// trust unit, the peer screen over a dialog table and the digest unit,
// chained in their order (Server.chain holds them), with the gate with
// users (or none).
func admitServer(t *testing.T, users []User) (*Server, *testkit.ManualClock, *testkit.LogBuffer, *[]string) {
	t.Helper()
	g, err := newGate("groupbridge", []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}, users)
	if err != nil {
		t.Fatal(err)
	}
	var events []string
	g.events = Events{
		AuthFailure:   func() { events = append(events, "auth-failure") },
		SourceBlocked: func() { events = append(events, "source-blocked") },
	}
	clk := testkit.NewManualClock()
	logs := &testkit.LogBuffer{}
	log := slog.New(slog.NewTextHandler(logs, nil))
	resp := responder{userAgent: "test", log: log}
	s := &Server{gate: g, resp: resp, clock: clk, log: log,
		dlg:    testLayer(t, clk),
		digest: &digestScreen{gate: g, resp: resp, log: log, clock: clk}}
	s.peers = &peerScreen{gate: g, lookup: s.lookup, resp: resp, log: log, clock: clk}
	s.chain = []screen{trustScreen{trusted: g.trustedSource}, s.peers, s.digest}
	return s, clk, logs, &events
}

// admit runs a request through s's chain.
func (s *Server) admit(req *sip.Request, tx sip.ServerTransaction) (string, bool) {
	r, stop := pass(s.chain, req, tx)
	return r.user, stop == nil
}

// TestAdmitOutsideDialog drives the digest unit of the screening chain,
// after the trust unit, request by request: trusted sources pass;
// others are challenged, admitted with a right answer, refused with a
// wrong one and blocked after sip's failure limit; without sip.users they
// are refused and the log says so at most once a minute.
func TestAdmitOutsideDialog(t *testing.T) {
	const (
		stranger = "198.51.100.7:5060"
		trusted  = "10.0.0.1:5060"
	)
	strangerIP := netip.MustParseAddr("198.51.100.7")
	type step struct {
		src      string
		password string // "" sends no credentials
		oldNonce bool
		advance  time.Duration // the clock moves this much first
		ok       bool
		user     string
		code     int // 0: nothing answered
		stale    bool
		events   string // Events called, comma-separated
		log      string // a line the log gains ("" : none)
	}
	right, wrong := alice.Password, "wrong"
	tests := []struct {
		name  string
		users []User
		steps []step
	}{
		{"trusted source", []User{alice}, []step{{src: trusted, ok: true}}},
		{"no source address", []User{alice}, []step{{src: "", code: 400}}},
		{"challenge, then the right answer", []User{alice}, []step{
			{src: stranger, code: 401},
			{src: stranger, password: right, ok: true, user: "alice"},
		}},
		{"stale nonce", []User{alice}, []step{{src: stranger, password: right, oldNonce: true, code: 401, stale: true}}},
		{"wrong password, then blocked", []User{alice}, []step{
			{src: stranger, password: wrong, code: 403, events: "auth-failure", log: "SIP authentication failed"},
			{src: stranger, password: wrong, code: 403, events: "auth-failure", log: "SIP authentication failed"},
			{src: stranger, password: wrong, code: 403, events: "auth-failure", log: "SIP authentication failed"},
			{src: stranger, password: wrong, code: 403, events: "auth-failure", log: "SIP authentication failed"},
			{src: stranger, password: wrong, code: 403, events: "auth-failure", log: "SIP source blocked"},
			{src: stranger, password: right, code: 403, events: "source-blocked"},
			{src: trusted, ok: true},
			{src: stranger, password: right, advance: defaultBlockFor, ok: true, user: "alice"},
		}},
		{"no users", nil, []step{
			{src: stranger, password: right, code: 403, log: "source not in sip.trusted and no sip.users"},
			{src: stranger, code: 403},
			{src: stranger, advance: 61 * time.Second, code: 403, log: "source not in sip.trusted and no sip.users"},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, clk, logs, events := admitServer(t, tc.users)
			for i, st := range tc.steps {
				clk.Advance(st.advance)
				now := clk.Now()
				auth := ""
				if st.password != "" {
					issued := now
					if st.oldNonce {
						issued = now.Add(-2 * s.gate.nonceTTL)
					}
					auth = credOpts{realm: "groupbridge", user: "alice", password: st.password, method: "INVITE",
						alg: "MD5", qop: "auth", nonce: s.gate.nonce(strangerIP, issued)}.header(t)
				}
				before, logBefore := len(*events), len(logs.String())
				tx := &answers{}
				user, ok := s.admit(screenRequest(sip.INVITE, st.src, auth), tx)
				if ok != st.ok || user != st.user {
					t.Errorf("step %d: admit = %q, %v; want %q, %v", i, user, ok, st.user, st.ok)
				}
				code := 0
				if len(tx.got) == 1 {
					code = tx.got[0].StatusCode
				} else if len(tx.got) > 1 {
					t.Fatalf("step %d: %d answers", i, len(tx.got))
				}
				if code != st.code {
					t.Errorf("step %d: answered %d; want %d", i, code, st.code)
				}
				if code == 401 {
					h := tx.got[0].GetHeader("WWW-Authenticate")
					if h == nil || strings.Contains(h.Value(), "stale=true") != st.stale {
						t.Errorf("step %d: challenge %v; want stale=%v", i, h, st.stale)
					}
				}
				if got := strings.Join((*events)[before:], ","); got != st.events {
					t.Errorf("step %d: events %q; want %q", i, got, st.events)
				}
				added := logs.String()[logBefore:]
				if (added != "") != (st.log != "") || !strings.Contains(added, st.log) {
					t.Errorf("step %d: log gained %q; want a line with %q", i, added, st.log)
				}
			}
		})
	}
}

// TestAdmitInsideDialog: a request with a To tag goes to the peer screen
// when it names a dialog we know, and through the digest gate when not.
func TestAdmitInsideDialog(t *testing.T) {
	s, _, _, _ := admitServer(t, []User{alice})
	const peer = "192.0.2.10:5060"
	bye := func(toTag string) *sip.Request {
		req := screenRequest(sip.BYE, peer, "")
		callID := sip.CallIDHeader("call-1")
		req.AppendHeader(&callID)
		from := &sip.FromHeader{Address: sip.Uri{Scheme: "sip", Host: "192.0.2.10"}, Params: sip.NewParams()}
		from.Params.Add("tag", "theirs")
		to := &sip.ToHeader{Address: sip.Uri{Scheme: "sip", Host: "127.0.0.1"}, Params: sip.NewParams()}
		to.Params.Add("tag", toTag)
		req.AppendHeader(from)
		req.AppendHeader(to)
		return req
	}

	tx := &answers{}
	if _, ok := s.admit(bye("ours"), tx); ok || len(tx.got) != 1 || tx.got[0].StatusCode != 401 {
		t.Fatalf("in no dialog we know: passed %v, answers %v; want a 401", ok, tx.got)
	}
	c := dialogFrom(t, s.dlg, "call-1", peer, "alice")
	req := bye(c.LocalTag())
	tx = &answers{}
	if user, ok := s.admit(req, tx); !ok || user != "alice" || len(tx.got) != 0 {
		t.Fatalf("from the dialog's peer: %q, %v, answers %v; want alice, true, none", user, ok, tx.got)
	}
}
