package callflow

import (
	"crypto/subtle"
	"sync"
	"sync/atomic"
	"time"

	"github.com/groupbridge/groupbridge/internal/conference/rules"
	"github.com/groupbridge/groupbridge/internal/group"
	"github.com/groupbridge/groupbridge/internal/guard"
)

// facilitatorPIN is the check of the facilitator PIN a member types in the
// room after *# (conference.JoinRequest.FacilitatorPIN). It compares in
// constant time with the PIN of g as the call found it, and counts each
// wrong PIN as a wrong PIN at the door counts: the log line (never the
// digits), the metric, the caller's guard record (which may block them)
// and the PIN-rate alarm, and the dialled number's budget, which also
// forgets the caller as known to the group. Answers are not paced under
// attack: the room cannot wait, and the rules allow three tries a call,
// each call having paid a (paced) door PIN first. It runs on the room's
// tick, so it only takes the guard's and budget's short locks.
func (f *Flow) facilitatorPIN(c Call, st *Settings, g group.Group, id string, who guard.Caller) func([]byte) rules.PINVerdict {
	if g.FacilitatorPIN == "" {
		return nil // the rules do not ask: the group has no facilitator PIN
	}
	want := []byte(g.FacilitatorPIN)
	dialed := dialedGroup(st, c)
	var (
		mu      sync.Mutex // the counting may run off the tick (GuardOffTick)
		tries   int
		gate    *guard.Gate
		blocked atomic.Bool
	)
	count := func(now time.Time) bool {
		mu.Lock()
		defer mu.Unlock()
		if gate == nil {
			gate = f.cfg.Budget.Gate(dialed, now, f.KnownKey(id, g.Name))
		}
		if !f.countWrongPIN(who, dialed, gate, now) {
			return false
		}
		blocked.Store(true)
		f.cfg.Log.Warn("caller blocked for guessing PINs; stays a member in the room", "call", c.ID(),
			"caller", c.Label(), "group", g.Name)
		return true
	}
	return func(digits []byte) rules.PINVerdict {
		if subtle.ConstantTimeCompare(digits, want) == 1 {
			return rules.PINRight
		}
		mu.Lock()
		tries++
		try := tries
		mu.Unlock()
		now := f.cfg.Clock.Now()
		f.cfg.Log.Info("wrong facilitator PIN in the room", "call", c.ID(), "caller", c.Label(),
			"group", g.Name, "try", try)
		if f.cfg.GuardOffTick {
			// The limits ask Redis: the room's tick must not wait for it.
			// A block found now answers the caller's next wrong PIN.
			if blocked.Load() {
				return rules.PINBlocked
			}
			go count(now)
			return rules.PINWrong
		}
		if count(now) {
			return rules.PINBlocked
		}
		return rules.PINWrong
	}
}

// countWrongPIN counts one wrong PIN, at the door or in the room, the same
// way: the metric, the number's count of the day in attendance, the
// caller's guessing record (and its alarm) and the dialled number's budget
// (dialed "" is the shared access number). It reports whether the caller
// is now blocked for guessing.
func (f *Flow) countWrongPIN(who guard.Caller, dialed string, gate *guard.Gate, now time.Time) (blocked bool) {
	f.cfg.Metrics.PINFailure(dialed != "")
	f.cfg.Attendance.WrongPIN(dialed, now)
	blocked, alarm := f.cfg.Guard.Fail(who, dialed, now)
	if alarm.Raised() {
		f.pinAlarm(alarm, dialed)
	}
	if gate.Fail(now) {
		f.underAttack(dialed)
	}
	return blocked
}
