package rules

import (
	"testing"
	"time"

	"github.com/groupbridge/groupbridge/internal/group"
)

// TestDoorAdmit walks Join's checks in their order: removed, locked (a
// rejoin passes), full (a rejoin does not), and a facilitator, or a rejoin
// that left as one, always gets in.
func TestDoorAdmit(t *testing.T) {
	memoM := memo{seat: 3, role: group.Member, until: t0.Add(mn)}
	memoF := memo{seat: 4, role: group.Facilitator, until: t0.Add(mn)}
	tests := []struct {
		name     string
		locked   bool
		max      int
		members  int
		removed  string
		rejoin   map[string]memo
		identity string
		role     group.Role
		at       int // seconds after t0

		wantRole     group.Role
		wantRestored bool
		wantRefused  RefuseReason
		wantMemoLeft bool // the identity's memo is still kept
	}{
		{name: "open", identity: "a", role: group.Member, wantRole: group.Member},
		{name: "anonymous never barred", removed: "a", identity: "", role: group.Member, wantRole: group.Member},
		{name: "removed", removed: "a", identity: "a", role: group.Member, wantRole: group.Member, wantRefused: RefuseRemoved},
		{name: "removed facilitator", removed: "a", identity: "a", role: group.Facilitator, wantRole: group.Facilitator},
		{name: "locked", locked: true, identity: "a", role: group.Member, wantRole: group.Member, wantRefused: RefuseLocked},
		{name: "locked rejoin", locked: true, rejoin: map[string]memo{"a": memoM}, identity: "a", role: group.Member,
			wantRole: group.Member, wantRestored: true},
		{name: "expired rejoin", locked: true, rejoin: map[string]memo{"a": memoM}, identity: "a", role: group.Member, at: 60,
			wantRole: group.Member, wantRefused: RefuseLocked},
		{name: "full", max: 2, members: 2, identity: "a", role: group.Member, wantRole: group.Member, wantRefused: RefuseFull},
		{name: "full rejoin keeps its memo", max: 2, members: 2, rejoin: map[string]memo{"a": memoM}, identity: "a", role: group.Member,
			wantRole: group.Member, wantRefused: RefuseFull, wantMemoLeft: true},
		{name: "full facilitator", max: 2, members: 2, identity: "a", role: group.Facilitator, wantRole: group.Facilitator},
		{name: "rejoin left as facilitator", locked: true, max: 1, members: 1, rejoin: map[string]memo{"a": memoF}, identity: "a", role: group.Member,
			wantRole: group.Facilitator, wantRestored: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := newDoor(Config{MaxMembers: tt.max, RejoinWindow: mn})
			d.locked = tt.locked
			if tt.removed != "" {
				d.bar(tt.removed)
			}
			for id, m := range tt.rejoin {
				d.rejoin[id] = m
			}
			role, m, restored, refused := d.admit(tt.identity, tt.role, tt.members, t0.Add(sec*time.Duration(tt.at)))
			if role != tt.wantRole || restored != tt.wantRestored || refused != tt.wantRefused {
				t.Fatalf("admit = %v, restored %v, %v; want %v, %v, %v", role, restored, refused, tt.wantRole, tt.wantRestored, tt.wantRefused)
			}
			if restored && m != tt.rejoin[tt.identity] {
				t.Errorf("memo %+v, want %+v", m, tt.rejoin[tt.identity])
			}
			if _, left := d.rejoin[tt.identity]; left != tt.wantMemoLeft {
				t.Errorf("memo kept %v, want %v", left, tt.wantMemoLeft)
			}
		})
	}
}

// TestDoorMemos: a memo lasts the window, an anonymous caller leaves none,
// a bar forgets it, and open talk turns its facilitator mute into a
// self-mute.
func TestDoorMemos(t *testing.T) {
	d := newDoor(Config{RejoinWindow: 2 * mn})
	d.remember(&caller{seat: 1, identity: "a", voice: voice{facMuted: true}}, t0)
	d.remember(&caller{seat: 2, identity: "b"}, t0)
	d.remember(&caller{seat: 3}, t0)
	if len(d.rejoin) != 2 || d.rejoin["a"].until != t0.Add(2*mn) {
		t.Fatalf("memos %+v", d.rejoin)
	}
	d.liftFacilitatorMutes()
	if m := d.rejoin["a"]; m.facMuted || !m.selfMuted {
		t.Errorf("after open talk: %+v", m)
	}
	d.bar("b")
	if _, ok := d.rejoin["b"]; ok {
		t.Error("barred identity still remembered")
	}
	d.forget(t0.Add(2*mn - 1))
	if len(d.rejoin) != 1 {
		t.Errorf("forgot early: %+v", d.rejoin)
	}
	d.forget(t0.Add(2 * mn))
	if len(d.rejoin) != 0 {
		t.Errorf("kept past the window: %+v", d.rejoin)
	}
}
