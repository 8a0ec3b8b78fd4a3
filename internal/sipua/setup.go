package sipua

import (
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"
)

// Calls in setup. An INVITE that is never ACKed holds an RTP port for
// AckTimeout, and a call at the PIN prompt holds one until the IVR gives
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
func (c *Call) Admitted() { c.setup.Load().release() }

// reserveSetup takes a setup place for an INVITE from src authenticated as
// user, or refuses it (503) and reports false.
func (s *Server) reserveSetup(req *sip.Request, tx sip.ServerTransaction, src netip.Addr, user string) (*setupHold, bool) {
	if s.gate.trustedSource(src) {
		src = netip.Addr{}
	}
	l := s.limits.Load()
	h, reason := s.setup.reserve(src, user, l.SetupPerSource, l.SetupPerUser)
	if reason == "" {
		return h, true
	}
	s.rejected(reason)
	s.setupRefused.Add(1)
	now := time.Now().UnixNano()
	if last := s.setupLog.Load(); now-last > int64(time.Minute) && s.setupLog.CompareAndSwap(last, now) {
		key := "limits.setup_per_source"
		if reason == RejectSetupPerUser {
			key = "limits.setup_per_user"
		}
		// The account name is the operator's own; the source is no caller's number.
		s.log.Warn("call rejected: too many calls in setup", "reason", reason, "limit", key,
			"source", src.String(), "user", user, "refused", s.setupRefused.Swap(0))
	}
	s.respond(req, tx, 503, "Service Unavailable", sip.NewHeader("Retry-After", strconv.Itoa(retryAfterFull)))
	return nil, false
}
