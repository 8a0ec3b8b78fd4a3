package sipua

import (
	"log/slog"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/emiago/sipgo/sip"
	"github.com/groupbridge/groupbridge/internal/wallclock"
)

// Calls in setup. An INVITE that is never ACKed holds an RTP port for
// the ACK wait (64*T1), and a call at the PIN prompt holds one until the IVR gives
// up: one source could take every port of the range. So the calls of one
// untrusted source (IPv6: its /64) and of one sip.users account that have
// not yet been admitted (Call.Admitted: the handler let them into a room)
// are capped by Limits.SetupPerSource and Limits.SetupPerUser. Trusted
// sources carry everyone's calls and are bounded by Limits.MaxCalls only.

// Reasons an INVITE is refused at the setup caps, as Events.CallRejected
// tells them.
const (
	RejectSetupPerSource = "setup-per-source" // Limits.SetupPerSource reached: 503
	RejectSetupPerUser   = "setup-per-user"   // Limits.SetupPerUser reached: 503
)

// setupTable counts the calls in setup by source and by account.
type setupTable struct {
	mu       sync.Mutex
	bySource map[netip.Prefix]int
	byUser   map[string]int
}

func newSetupTable() *setupTable {
	return &setupTable{bySource: map[netip.Prefix]int{}, byUser: map[string]int{}}
}

// setupHold is one call's place in the table; release gives it back once.
type setupHold struct {
	t      *setupTable
	source netip.Prefix // invalid: not counted by source
	user   string       // "": not counted by account
	once   sync.Once
}

// reserve takes a place for a call from the untrusted source src (an
// invalid src for a trusted one) authenticated as user ("" for none). It
// returns nil and the reason when a cap is reached; a nil hold with an
// empty reason means nothing is counted.
func (t *setupTable) reserve(src netip.Addr, user string, perSource, perUser int) (*setupHold, string) {
	h := &setupHold{t: t}
	if src.IsValid() && perSource > 0 {
		h.source = sourceKey(src)
	}
	if user != "" && perUser > 0 {
		h.user = user
	}
	if !h.source.IsValid() && h.user == "" {
		return nil, ""
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if h.source.IsValid() && t.bySource[h.source] >= perSource {
		return nil, RejectSetupPerSource
	}
	if h.user != "" && t.byUser[h.user] >= perUser {
		return nil, RejectSetupPerUser
	}
	if h.source.IsValid() {
		t.bySource[h.source]++
	}
	if h.user != "" {
		t.byUser[h.user]++
	}
	return h, ""
}

// release gives the place back; later calls do nothing. Nil is a no-op.
func (h *setupHold) release() {
	if h == nil {
		return
	}
	h.once.Do(func() {
		t := h.t
		t.mu.Lock()
		defer t.mu.Unlock()
		if h.source.IsValid() {
			if t.bySource[h.source]--; t.bySource[h.source] <= 0 {
				delete(t.bySource, h.source)
			}
		}
		if h.user != "" {
			if t.byUser[h.user]--; t.byUser[h.user] <= 0 {
				delete(t.byUser, h.user)
			}
		}
	})
}

// size returns how many sources and accounts have calls in setup.
func (t *setupTable) size() (sources, users int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.bySource), len(t.byUser)
}

// Admitted tells the server that the handler has let the call in (into a
// room): it no longer counts against Limits.SetupPerSource and
// Limits.SetupPerUser. Calls never admitted count until they end.
func (c *Call) Admitted() { c.setup.release() }

// setupScreen caps the calls of a new INVITE (screen.go): draining and
// limits.max_calls in step 9 (capacityScreen), the caps on calls in setup
// per untrusted source and per account in step 11 (setupScreen itself).
type setupScreen struct {
	trusted  func(netip.Addr) bool
	table    *setupTable // calls not yet admitted, by source and account
	limits   atomic.Pointer[setupLimits]
	calls    func() int  // calls up or being set up
	draining atomic.Bool // Server.Drain was called: new calls get 503
	events   Events
	resp     responder
	log      *slog.Logger
	clock    wallclock.Clock
	// Refusals since the last log line, per kind.
	fullLog, setupLog countedLog
}

// setupLimits are the unit's part of Limits.
type setupLimits struct{ maxCalls, perSource, perUser int }

// configure takes the unit's part of l.
func (u *setupScreen) configure(l Limits) {
	u.limits.Store(&setupLimits{maxCalls: l.MaxCalls, perSource: l.SetupPerSource, perUser: l.SetupPerUser})
}

func (*setupScreen) name() string { return "setup-caps" }

// screen takes a new INVITE's place among the calls in setup, or refuses
// it; the place goes on in r.hold, for the handler to release.
func (u *setupScreen) screen(req *sip.Request, tx sip.ServerTransaction, r facts) (facts, bool) {
	if !newInvite(req) {
		return r, true
	}
	hold, ok := u.reserve(req, tx, r.origin, r.user)
	r.hold = hold
	return r, ok
}

// capacityScreen refuses a new INVITE while the server drains or at
// limits.max_calls (screen.go, step 9).
type capacityScreen struct{ u *setupScreen }

func (capacityScreen) name() string { return "capacity" }

func (c capacityScreen) screen(req *sip.Request, tx sip.ServerTransaction, r facts) (facts, bool) {
	if !newInvite(req) {
		return r, true
	}
	if c.u.draining.Load() {
		c.u.rejected(RejectDraining)
		c.u.resp.respond(req, tx, 503, "Service Unavailable", sip.NewHeader("Retry-After", "60"))
		return r, false
	}
	if full, max := c.u.full(); full {
		c.u.refuseFull(req, tx, max)
		return r, false
	}
	return r, true
}

// full reports whether Limits.MaxCalls calls are up or being set up.
func (u *setupScreen) full() (bool, int) {
	max := u.limits.Load().maxCalls
	if max <= 0 {
		return false, 0
	}
	return u.calls() >= max, max
}

// refuseFull answers an INVITE 503 at Limits.MaxCalls, counts it and logs
// it at most once a minute.
func (u *setupScreen) refuseFull(req *sip.Request, tx sip.ServerTransaction, max int) {
	u.rejected(RejectMaxCalls)
	if ok, n := u.fullLog.note(u.clock.Now()); ok {
		u.log.Warn("call rejected: limits.max_calls reached", "reason", RejectMaxCalls, "max_calls", max, "refused", n)
	}
	u.resp.respond(req, tx, 503, "Service Unavailable", sip.NewHeader("Retry-After", strconv.Itoa(retryAfterFull)))
}

// reserve takes a setup place for an INVITE from src authenticated as
// user, or refuses it (503) and reports false.
func (u *setupScreen) reserve(req *sip.Request, tx sip.ServerTransaction, src netip.Addr, user string) (*setupHold, bool) {
	if u.trusted(src) {
		src = netip.Addr{}
	}
	l := u.limits.Load()
	h, reason := u.table.reserve(src, user, l.perSource, l.perUser)
	if reason == "" {
		return h, true
	}
	u.rejected(reason)
	if ok, n := u.setupLog.note(u.clock.Now()); ok {
		key := "limits.setup_per_source"
		if reason == RejectSetupPerUser {
			key = "limits.setup_per_user"
		}
		// The account name is the operator's own; the source is no caller's number.
		u.log.Warn("call rejected: too many calls in setup", "reason", reason, "limit", key,
			"source", src.String(), "user", user, "refused", n)
	}
	u.resp.respond(req, tx, 503, "Service Unavailable", sip.NewHeader("Retry-After", strconv.Itoa(retryAfterFull)))
	return nil, false
}

// rejected tells Events.CallRejected of an INVITE refused before answer.
func (u *setupScreen) rejected(reason string) {
	if h := u.events.CallRejected; h != nil {
		h(reason)
	}
}
