package conference

import (
	"fmt"

	"github.com/groupbridge/groupbridge/internal/logging"
)

// Faults makes a conference panic on purpose. It exists only for the fault
// tests (internal/app faults_e2e_test.go), which show that a panic in one
// call's handling ends only that call and a panic in one room's tick
// resets only that room; production code never sets it. Unset, it costs
// one atomic load per room tick and per key press.
//
// Each hook is called with the call's log id or the group's name and may
// panic; a hook that returns does nothing.
type Faults struct {
	// Member runs in a member's own part of its room's tick, just before
	// the room reads the caller's audio (on the clock goroutine).
	Member func(callID string)
	// Room runs at the start of a room's tick (on the clock goroutine).
	Room func(group string)
	// Key runs on the caller's goroutine when a key press is handed to the
	// room (Participant.Key), outside any room.
	Key func(callID string, digit byte)
}

// InjectFaults installs f for every room (nil removes it); see Faults.
func (c *Conference) InjectFaults(f *Faults) { c.faults.Store(f) }

// memberFailed is the reason given to a caller whose own part of a tick
// panicked: their call ends, the room goes on.
const memberFailed = "internal-error"

// roomReset is the reason given to the callers of a room whose tick
// panicked: the room is reset, so their calls end.
const roomReset = "room-reset"

// panicText is a recovered value as it may be logged: digit runs (a PIN, a
// caller number) masked and the length bounded.
func panicText(recovered any) string {
	return logging.RedactDigits(fmt.Sprint(recovered))
}
