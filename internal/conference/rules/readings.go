package rules

// Readings is the session's part that keeps the group's readings: which
// keys it has, the one that plays, and whether the opening reading was
// started. The engine plays what the Reading and StopReading effects say
// and tells it, through Ended, when a reading has played to its end.
// Reach it with Session.Readings.
type Readings struct {
	s       *Session
	has     [10]bool // Config.Readings
	opening int      // Config.OpeningReading
	playing int      // the key of the reading that plays; 0 for none
	opened  bool     // the opening reading was started
}

// Readings returns the session's readings.
func (s *Session) Readings() *Readings { return &s.readings }

// Playing returns the key of the reading that plays, 0 for none.
func (r *Readings) Playing() int { return r.playing }

// Ended tells the session the reading it started has played to its end,
// so **0 is *0 again.
func (r *Readings) Ended() { r.playing = 0 }

// hasAny reports whether the group has any reading (**K).
func (r *Readings) hasAny() bool {
	for _, h := range r.has {
		if h {
			return true
		}
	}
	return false
}

// start plays reading key to the room, replacing one that plays, after
// what seat after is being told (0: at once).
func (r *Readings) start(out []Effect, key, after int) []Effect {
	r.playing = key
	return append(out, Effect{Kind: Reading, Key: key, Seat: after})
}

// stop stops the reading that plays (**0).
func (r *Readings) stop(out []Effect) []Effect {
	r.playing = 0
	return append(out, Effect{Kind: StopReading})
}

// open starts the opening reading, once per session, as soon as the
// session has begun: someone is there, a facilitator-led session's lobby is
// over, and a scheduled meeting's start has come (Hours.Tick). It plays
// after what seat (the caller whose arrival opened it) is being told.
func (r *Readings) open(out []Effect, seat int) []Effect {
	s := r.s
	if r.opened || r.opening == 0 || !s.started || s.presence.lobby || !s.hours.begun() {
		return out
	}
	r.opened = true
	return r.start(out, r.opening, seat)
}
