package rules

import "time"

// presence is what a session does while no facilitator is there: the lobby
// of a facilitator-led session before its first one, the grace after its
// last one left (EndGrace), and a peer-led session's wait before it
// returns to open talk (OpenTalkAfter). It keeps the timers; Session
// carries out what they mean.
type presence struct {
	facLed    bool
	lobby     bool      // facilitator-led and no facilitator has joined yet
	graceAt   time.Time // facilitator-led: end then unless one returns
	openAt    time.Time // peer-led: back to open talk then unless one returns
	endGrace  time.Duration
	openAfter time.Duration
	alarm     *alarm
	// quiet: the grace runs because a restored session's facilitators
	// have not come back yet (Session.Restore); nobody heard them leave,
	// so nobody hears them return.
	quiet bool
}

// arrived is a facilitator counted present. It cancels a pending return to
// open talk and reports what else it ended: the lobby, or the grace.
func (p *presence) arrived() (lobbyOver, graceOver bool) {
	if !p.openAt.IsZero() {
		p.openAt = time.Time{}
		p.alarm.invalidate()
	}
	switch {
	case p.lobby:
		p.lobby = false
		p.alarm.invalidate() // lobby announcements are gone
		return true, false
	case !p.graceAt.IsZero():
		p.graceAt = time.Time{}
		p.alarm.invalidate()
		quiet := p.quiet
		p.quiet = false
		return false, !quiet
	}
	return false, false
}

// lastLeft is the last facilitator gone at now (not in the lobby, where
// none has come yet). A peer-led session starts its wait for open talk; a
// facilitator-led one ends now when EndGrace is 0, else starts the grace,
// which the room is told of (announce).
func (p *presence) lastLeft(now time.Time) (endNow, announce bool) {
	switch {
	case !p.facLed:
		p.openAt = now.Add(p.openAfter)
		p.alarm.schedule(p.openAt)
	case !p.lobby:
		if p.endGrace <= 0 {
			return true, false
		}
		p.graceAt, p.quiet = now.Add(p.endGrace), false
		p.alarm.schedule(p.graceAt)
		return false, true
	}
	return false, false
}

// graceOver reports whether the grace ran out by now.
func (p *presence) graceOver(now time.Time) bool {
	return !p.graceAt.IsZero() && !now.Before(p.graceAt)
}

// openTalkDue reports (once) that a peer-led session's wait ran out by now.
func (p *presence) openTalkDue(now time.Time) bool {
	if p.openAt.IsZero() || now.Before(p.openAt) {
		return false
	}
	p.openAt = time.Time{}
	p.alarm.invalidate()
	return true
}

// deadline is the earliest pending presence timer.
func (p *presence) deadline() (time.Time, bool) { return earlier(p.graceAt, p.openAt) }

// clear drops the timers when the session ends.
func (p *presence) clear() { p.graceAt, p.openAt, p.quiet = time.Time{}, time.Time{}, false }
