// Package guard limits PIN guessing across calls. Three tries per call are
// the IVR's business; this package remembers failures per caller (by the
// caller's HMAC identities, never the number) so that a caller who keeps
// guessing is refused for a while, and it measures the failure rate of the
// whole bridge (and per group) so that a distributed attack is noticed: a
// rate that crosses Config.AlarmRate raises an Alarm.
//
// Per-caller limits are reset by changing the caller number, so Budget
// (budget.go) adds limits per dialled number and bridge-wide that no caller
// identity can escape, and TimeToHit says what they are worth. Pure and safe
// for concurrent use; time is passed in. In a cluster both count through a
// Shared (shared.go) as well, so that nodes add up to one set of limits.
package guard

import (
	"sync"
	"time"
)

// Config sets the limits; zero fields take the defaults.
type Config struct {
	// Failures within Window from one caller block that caller (10).
	Failures int
	// AnonFailures is the same for all callers without a number together,
	// who share one bucket (30).
	AnonFailures int
	// SourceFailures is the same for one untrusted source address, whatever
	// numbers its calls claim (30: a NAT may hide several honest phones).
	SourceFailures int
	// Window is the span failures are counted over (15 minutes).
	Window time.Duration
	// Lockout is how long a blocked caller is refused (15 minutes).
	Lockout time.Duration
	// MaxCallers bounds the memory kept (100,000 callers); the oldest
	// records are dropped first.
	MaxCallers int
	// AlarmRate is the failures per minute, bridge-wide or for one group,
	// above which Fail raises an Alarm (60).
	AlarmRate int
	// Shared, when set, is the counting this node shares with the other
	// nodes of a cluster; nil counts in memory only.
	Shared Shared
}

func (c *Config) defaults() {
	if c.Failures <= 0 {
		c.Failures = 10
	}
	if c.AnonFailures <= 0 {
		c.AnonFailures = 30
	}
	if c.SourceFailures <= 0 {
		c.SourceFailures = 30
	}
	if c.Window <= 0 {
		c.Window = 15 * time.Minute
	}
	if c.Lockout <= 0 {
		c.Lockout = 15 * time.Minute
	}
	if c.MaxCallers <= 0 {
		c.MaxCallers = 100_000
	}
	if c.AlarmRate <= 0 {
		c.AlarmRate = 60
	}
}

// Caller is who places a call, as the keyed hashes (never the clear values)
// of what identifies it. Each non-empty field is limited on its own, so a
// digest user or a source address that rotates caller numbers is still
// blocked.
type Caller struct {
	// Number is the caller number's hash; "" for a withheld number (all of
	// which share one bucket).
	Number string
	// User is the authenticated SIP user's hash; "" when not authenticated.
	User string
	// Source is the hash of an untrusted source address (its /64 for IPv6);
	// "" for a trusted PBX, which carries everyone's calls.
	Source string
	// PerCall marks a caller known for this call only (a source that names
	// nobody, sip.no_identity): no number record, withheld numbers' shared
	// one included, so one guesser never blocks that PBX's other callers.
	// Budget's limits per dialled number still hold.
	PerCall bool
}

// keys are the records a caller's failures go to, with their limits.
func (g *PINGuard) keys(c Caller) (keys [3]string, limits [3]int, n int) {
	add := func(k string, limit int) {
		keys[n], limits[n] = k, limit
		n++
	}
	switch {
	case c.PerCall:
	case c.Number == "":
		add("", g.cfg.AnonFailures)
	default:
		add("n:"+c.Number, g.cfg.Failures)
	}
	if c.User != "" {
		add("u:"+c.User, g.cfg.Failures)
	}
	if c.Source != "" {
		add("s:"+c.Source, g.cfg.SourceFailures)
	}
	return keys, limits, n
}

// Memory is how long a failure can matter to a caller: Window, then a
// Lockout that may start at its end.
func (g *PINGuard) Memory() time.Duration { return g.cfg.Window + g.cfg.Lockout }

// record is one caller's recent failures.
type record struct {
	fails   []time.Time // within Window, oldest first
	blocked time.Time   // refused until then
	seen    time.Time
}

// PINGuard remembers PIN failures.
type PINGuard struct {
	cfg Config

	mu      sync.Mutex
	callers map[string]*record
	anon    record
	rate    map[string]*window // "" = the whole bridge, else a group
}

// New returns a guard with cfg's limits.
func New(cfg Config) *PINGuard {
	cfg.defaults()
	return &PINGuard{cfg: cfg, callers: map[string]*record{}, rate: map[string]*window{}}
}

func (g *PINGuard) recordFor(identity string, create bool) *record {
	if identity == "" {
		return &g.anon
	}
	r := g.callers[identity]
	if r == nil && create {
		if len(g.callers) >= g.cfg.MaxCallers {
			g.evictOldest()
		}
		r = &record{}
		g.callers[identity] = r
	}
	return r
}

// evictOldest drops the least recently seen record. Linear, but it only
// runs when the table is full, which an attack with many numbers causes;
// each eviction then frees room for one more.
func (g *PINGuard) evictOldest() {
	var oldest string
	var t time.Time
	for id, r := range g.callers {
		if oldest == "" || r.seen.Before(t) {
			oldest, t = id, r.seen
		}
	}
	delete(g.callers, oldest)
}

// Blocked reports whether the caller is refused now (any of its identities
// is), and until when.
func (g *PINGuard) Blocked(c Caller, now time.Time) (bool, time.Time) {
	g.mu.Lock()
	keys, _, n := g.keys(c)
	var until time.Time
	for _, k := range keys[:n] {
		if r := g.recordFor(k, false); r != nil && now.Before(r.blocked) && r.blocked.After(until) {
			until = r.blocked
		}
	}
	sh := g.cfg.Shared
	g.mu.Unlock()
	if sh != nil {
		for _, k := range keys[:n] {
			if u, err := sh.Locked(sharedCaller+k, now); err == nil && now.Before(u) && u.After(until) {
				until = u
			}
		}
	}
	return !until.IsZero(), until
}

// Alarm tells which failure rates a failure took above Config.AlarmRate.
// Each rate raises it once as it crosses the level, and again only after
// it has fallen to half the level, so that a rate hovering at the level
// does not raise one alarm per failure.
type Alarm struct {
	// Bridge is set when the whole bridge's rate crossed the level.
	Bridge bool
	// Group is set when the rate of calls to the failed call's group
	// number crossed it.
	Group bool
	// BridgeRate and GroupRate are the failures in the last minute,
	// this one included (GroupRate is 0 without a group).
	BridgeRate, GroupRate int
}

// Raised reports whether any rate crossed the level.
func (a Alarm) Raised() bool { return a.Bridge || a.Group }

// SetAlarmRate changes Config.AlarmRate (a reload); n <= 0 restores the
// default. Rates already above the new level raise an alarm at their next
// failure.
func (g *PINGuard) SetAlarmRate(n int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.cfg.AlarmRate = n
	g.cfg.defaults()
}

// Fail records a wrong PIN from the caller (and in group's rate, "" when
// the call did not dial a group's number). It reports whether the caller
// is now blocked (any of its identities), and any rate that this failure
// took above the alarm level.
func (g *PINGuard) Fail(c Caller, group string, now time.Time) (blocked bool, alarm Alarm) {
	g.mu.Lock()
	keys, limits, n := g.keys(c)
	cfg := g.cfg
	g.mu.Unlock()
	// The shared counts first, outside the lock: they are a round trip.
	bridgeRate, groupRate := -1, -1 // -1: not known
	if sh := cfg.Shared; sh != nil {
		for i, k := range keys[:n] {
			if u, err := sh.Fail(sharedCaller+k, now, cfg.Window, limits[i], cfg.Lockout); err == nil && now.Before(u) {
				blocked = true
			}
		}
		if r, err := sh.Rate(rateKey(""), now, 1); err == nil {
			bridgeRate = r
		}
		if group != "" {
			if r, err := sh.Rate(rateKey(group), now, 1); err == nil {
				groupRate = r
			}
		}
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	alarm.Bridge, alarm.BridgeRate = g.count("", now, bridgeRate)
	if group != "" {
		alarm.Group, alarm.GroupRate = g.count(group, now, groupRate)
	}
	for i, k := range keys[:n] {
		r := g.recordFor(k, true)
		r.seen = now
		keep := r.fails[:0]
		for _, t := range r.fails {
			if now.Sub(t) < g.cfg.Window {
				keep = append(keep, t)
			}
		}
		r.fails = append(keep, now)
		if len(r.fails) >= limits[i] {
			r.blocked = now.Add(g.cfg.Lockout)
			r.fails = r.fails[:0]
		}
		blocked = blocked || now.Before(r.blocked)
	}
	return blocked, alarm
}

// Rate returns the failures per minute over the last minute, for the whole
// bridge (group "") or one group, as this node counted them.
func (g *PINGuard) Rate(group string, now time.Time) float64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	w := g.rate[group]
	if w == nil {
		return 0
	}
	return float64(w.sum(now))
}

// Callers returns how many callers are remembered (for tests and metrics).
func (g *PINGuard) Callers() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.callers)
}

// count adds a failure to key's rate and returns whether that took the
// rate above the alarm level, and the rate: the shared rate when known
// (>= 0), which holds this node's failures too unless Redis lost them.
func (g *PINGuard) count(key string, now time.Time, shared int) (crossed bool, rate int) {
	w := g.rate[key]
	if w == nil {
		w = &window{}
		g.rate[key] = w
	}
	w.add(now)
	rate = max(w.sum(now), shared)
	if w.alarmed && rate-1 <= g.cfg.AlarmRate/2 {
		w.alarmed = false // quiet again before this failure: this crossing is news
	}
	if rate > g.cfg.AlarmRate && !w.alarmed {
		w.alarmed = true
		return true, rate
	}
	return false, rate
}

// window counts events over the last 60 buckets of width (one second when
// zero: the last minute).
type window struct {
	width   time.Duration
	buckets [60]int
	stamps  [60]int64 // the bucket number each bucket belongs to
	alarmed bool      // above the alarm level, and not yet back to half of it
}

func (w *window) slot(now time.Time) int64 {
	width := w.width
	if width <= 0 {
		width = time.Second
	}
	return now.UnixNano() / int64(width)
}

func (w *window) add(now time.Time) {
	s := w.slot(now)
	i := int(s % 60)
	if w.stamps[i] != s {
		w.stamps[i], w.buckets[i] = s, 0
	}
	w.buckets[i]++
}

func (w *window) sum(now time.Time) int {
	s := w.slot(now)
	n := 0
	for i := range w.buckets {
		if s-w.stamps[i] < 60 {
			n += w.buckets[i]
		}
	}
	return n
}
