package rules

import "time"

// alarm is the session's next deadline: a lower bound of every pending
// timer, made exact by a scan (Session.earliest). A part that starts a
// timer schedules it; a part that drops one invalidates the bound, so an
// idle Tick stays O(1) and NextDeadline rescans only after a cancel.
type alarm struct {
	next  time.Time
	has   bool // a timer is pending (next is meaningful)
	dirty bool // a timer may have gone since the last scan
}

// schedule lowers the bound to t.
func (a *alarm) schedule(t time.Time) {
	if !a.has || t.Before(a.next) {
		a.next, a.has = t, true
	}
}

// invalidate says a timer may have been dropped: the next NextDeadline
// rescans.
func (a *alarm) invalidate() { a.dirty = true }

// set is the result of a scan: the exact earliest deadline, if any.
func (a *alarm) set(t time.Time, ok bool) {
	a.next, a.has, a.dirty = t, ok, false
}

// due reports whether a timer may be due at now.
func (a *alarm) due(now time.Time) bool { return a.has && !now.Before(a.next) }
