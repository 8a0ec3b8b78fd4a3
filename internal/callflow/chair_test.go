package callflow

import (
	"strings"
	"testing"
	"time"

	"github.com/groupbridge/groupbridge/internal/conference/rules"
	"github.com/groupbridge/groupbridge/internal/group"
	"github.com/groupbridge/groupbridge/internal/guard"
)

// The facilitator PIN a member types in the room is checked against the
// call's group, and each wrong one counts as a wrong PIN at the door does:
// log line (without the digits), metric, the caller's guard record up to a
// block, and the number's budget, which forgets the caller as known.
func TestFacilitatorPINInTheRoom(t *testing.T) {
	r := newRig(t, guard.Config{Failures: 3}, nil)
	c := newCall("+15550001234")
	c.dialed = circle.Number
	st := r.flow.cfg.Settings()
	id := r.flow.Identity(c)
	who := r.flow.caller(c, id)
	known := r.flow.KnownKey(id, circle.Name)
	r.budget.Remember(known, time.Now())

	check := r.flow.facilitatorPIN(c, st, circle, id, who)
	if v := check([]byte(circle.FacilitatorPIN)); v != rules.PINRight {
		t.Fatalf("the facilitator PIN: %v", v)
	}
	for _, pin := range []string{circle.MemberPIN, "987"} { // the member PIN is no facilitator PIN; nor a prefix
		if v := check([]byte(pin)); v != rules.PINWrong {
			t.Fatalf("%q: %v, want wrong", pin, v)
		}
	}
	if r.budget.Known(time.Now(), known) {
		t.Error("a wrong facilitator PIN left the caller known to the group (unpaced at the door)")
	}
	if blocked, _ := r.guard.Blocked(who, time.Now()); blocked {
		t.Fatal("blocked after two wrong PINs with a limit of three")
	}
	if v := check([]byte("50378")); v != rules.PINBlocked {
		t.Fatalf("the third wrong PIN with guard limit 3: %v, want blocked", v)
	}
	if blocked, _ := r.guard.Blocked(who, time.Now()); !blocked {
		t.Fatal("the guard does not block the caller after three wrong facilitator PINs")
	}
	r.metrics.mu.Lock()
	failures := r.metrics.pin["failure-true"]
	r.metrics.mu.Unlock()
	if failures != 3 {
		t.Errorf("%d PIN failures counted for the group's number, want 3", failures)
	}
	lines := r.lines(t, "wrong facilitator PIN in the room")
	if len(lines) != 3 || lines[2]["try"] != 3.0 || lines[0]["group"] != circle.Name || lines[0]["caller"] != "tag-1" {
		t.Errorf("wrong PIN log lines: %v", lines)
	}
	for _, digits := range []string{circle.MemberPIN, "50378", circle.FacilitatorPIN, "+15550001234", "0001234"} {
		if strings.Contains(r.log.String(), digits) {
			t.Errorf("the log holds %q:\n%s", digits, r.log.String())
		}
	}

	// A group without a facilitator PIN has no check: the rules never ask.
	if r.flow.facilitatorPIN(c, st, group.Group{Name: "Peer", MemberPIN: "4321"}, id, who) != nil {
		t.Error("a check for a group without a facilitator PIN")
	}
}

// With GuardOffTick (a cluster's limits ask Redis) a wrong facilitator PIN
// is counted off the room's tick: the check answers at once, and a block
// it led to answers the next wrong PIN.
func TestFacilitatorPINCountedOffTheTick(t *testing.T) {
	r := newRig(t, guard.Config{Failures: 3}, func(c *Config) { c.GuardOffTick = true })
	c := newCall("+15550001235")
	st := r.flow.cfg.Settings()
	id := r.flow.Identity(c)
	who := r.flow.caller(c, id)
	check := r.flow.facilitatorPIN(c, st, circle, id, who)
	for i := range 3 {
		if v := check([]byte("50378")); v != rules.PINWrong {
			t.Fatalf("wrong PIN %d: %v, want wrong", i+1, v)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(r.lines(t, "caller blocked for guessing PINs; stays a member in the room")) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("three wrong PINs counted off the tick did not block the caller")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if blocked, _ := r.guard.Blocked(who, time.Now()); !blocked {
		t.Fatal("the guard does not block the caller")
	}
	if v := check([]byte("50379")); v != rules.PINBlocked {
		t.Fatalf("the wrong PIN after the block: %v, want blocked", v)
	}
}
