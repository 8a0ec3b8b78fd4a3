package sipua

import (
	"io"
	"log/slog"
	"net/netip"
	"testing"

	"github.com/emiago/sipgo/sip"
	"github.com/groupbridge/groupbridge/internal/testkit"
)

// answers is a server transaction that keeps what it is answered.
type answers struct {
	sip.ServerTransaction // unused methods panic
	got                   []*sip.Response
}

func (a *answers) Respond(res *sip.Response) error {
	a.got = append(a.got, res)
	return nil
}

// TestSetupScreen drives the capacity and setup-caps units on their own:
// draining, max_calls and the setup caps refuse with 503 and Retry-After
// and tell Events.CallRejected why; a trusted source is capped by
// max_calls only.
func TestSetupScreen(t *testing.T) {
	trusted := netip.MustParseAddr("10.0.0.1")
	stranger := netip.MustParseAddr("192.0.2.9")
	tests := []struct {
		name      string
		limits    Limits
		draining  bool
		active    int // calls up or in setup
		src       netip.Addr
		user      string
		invites   int
		admitted  int
		rejection string // Events.CallRejected for the refused ones
	}{
		{"no limits", Limits{}, false, 0, stranger, "", 5, 5, ""},
		{"per source", Limits{SetupPerSource: 2}, false, 0, stranger, "", 5, 2, RejectSetupPerSource},
		{"per user", Limits{SetupPerUser: 3}, false, 0, stranger, "alice", 5, 3, RejectSetupPerUser},
		{"trusted not capped", Limits{SetupPerSource: 1}, false, 0, trusted, "", 5, 5, ""},
		{"max calls", Limits{MaxCalls: 4}, false, 4, trusted, "", 2, 0, RejectMaxCalls},
		{"draining", Limits{}, true, 0, trusted, "", 2, 0, RejectDraining},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var reasons []string
			u := &setupScreen{
				trusted: func(a netip.Addr) bool { return a == trusted },
				table:   newSetupTable(),
				calls:   func() int { return tc.active },
				events:  Events{CallRejected: func(r string) { reasons = append(reasons, r) }},
				resp:    responder{userAgent: "test", log: slog.New(slog.NewTextHandler(io.Discard, nil))},
				log:     slog.New(slog.NewTextHandler(io.Discard, nil)),
				clock:   testkit.NewManualClock(),
			}
			u.configure(tc.limits)
			u.draining.Store(tc.draining)
			req := sip.NewRequest(sip.INVITE, sip.Uri{Scheme: "sip", User: "room", Host: "example.org"})
			admitted := 0
			tx := &answers{}
			for range tc.invites {
				r := facts{src: tc.src, trusted: tc.src == trusted, origin: tc.src, originTrusted: tc.src == trusted, user: tc.user}
				if _, ok := (capacityScreen{u}).screen(req, tx, r); !ok {
					continue
				}
				if r, ok := u.screen(req, tx, r); ok {
					if (r.hold != nil) != (tc.limits.SetupPerSource > 0 && tc.src != trusted || tc.limits.SetupPerUser > 0) {
						t.Errorf("hold %v with %+v", r.hold, tc.limits)
					}
					admitted++
				}
			}
			if admitted != tc.admitted {
				t.Errorf("admitted %d of %d; want %d", admitted, tc.invites, tc.admitted)
			}
			refused := tc.invites - tc.admitted
			if len(tx.got) != refused || len(reasons) != refused {
				t.Fatalf("%d answers and %d rejections; want %d of each", len(tx.got), len(reasons), refused)
			}
			for i, res := range tx.got {
				if res.StatusCode != 503 || res.GetHeader("Retry-After") == nil || reasons[i] != tc.rejection {
					t.Errorf("refusal %d: %d, Retry-After %v, reason %q; want 503 with Retry-After, %q",
						i, res.StatusCode, res.GetHeader("Retry-After"), reasons[i], tc.rejection)
				}
			}
		})
	}
}
