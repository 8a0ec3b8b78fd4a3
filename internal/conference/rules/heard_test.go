package rules

import (
	"testing"

	"github.com/groupbridge/groupbridge/internal/group"
)

// TestWhoIsHeard walks docs/ARCHITECTURE.md, "Who is heard", row by row: each
// condition set by its owner and cleared by its owner, for both roles.
func TestWhoIsHeard(t *testing.T) {
	// Seats: 1 facilitator, 2 member, 3 facilitator, 4 member.
	base := seats("FMFM")
	rows := []struct {
		name  string
		cfg   Config
		steps []ev
		seat  int
		want  bool
	}{
		{"member, nothing set", peer, nil, 2, true},
		{"facilitator, nothing set", peer, nil, 1, true},

		{"member self-muted (*6)", peer, pre(keys(10*sec, 2, "*6")), 2, false},
		{"member self-unmuted (*6 *6)", peer, pre(keys(10*sec, 2, "*6*6")), 2, true},
		{"facilitator self-muted", peer, pre(keys(10*sec, 1, "*6")), 1, false},
		{"facilitator self-unmuted", peer, pre(keys(10*sec, 1, "*6*6")), 1, true},

		{"member muted by facilitator (seat action 1)", peer, pre(keys(10*sec, 1, "*12#1")), 2, false},
		{"member unmuted by facilitator (seat action 2)", peer, pre(keys(10*sec, 1, "*12#1"), keys(11*sec, 1, "*12#2")), 2, true},
		{"facilitator muted by another facilitator", peer, pre(keys(10*sec, 1, "*13#1")), 3, false},
		{"facilitator unmuted by another facilitator", peer, pre(keys(10*sec, 1, "*13#1"), keys(11*sec, 1, "*13#2")), 3, true},
		{"nobody else opens a self-muted microphone", peer, pre(keys(10*sec, 2, "*6"), keys(11*sec, 1, "*12#1"), keys(12*sec, 1, "*12#2")), 2, false},
		{"the caller's own *6 does not lift the facilitator's mute", peer, pre(keys(10*sec, 1, "*12#1"), keys(11*sec, 2, "*6*6")), 2, false},

		{"lecture mode: member", peer, pre(keys(10*sec, 1, "*5")), 2, false},
		{"lecture mode: facilitator", peer, pre(keys(10*sec, 1, "*5")), 3, true},
		{"lecture mode: facilitator self-muted", peer, pre(keys(10*sec, 1, "*5"), keys(10*sec, 3, "*6")), 3, false},
		{"lecture mode: member with the floor (*8)", peer, pre(keys(10*sec, 1, "*5"), keys(10*sec, 2, "*9"), keys(11*sec, 1, "*8")), 2, true},
		{"lecture mode: member with the floor (seat action 2)", peer, pre(keys(10*sec, 1, "*5"), keys(11*sec, 1, "*12#2")), 2, true},
		{"lecture mode: the other member while one has the floor", peer, pre(keys(10*sec, 1, "*5"), keys(10*sec, 2, "*9"), keys(11*sec, 1, "*8")), 4, false},
		{"lecture mode: floor holder self-muted", peer, pre(keys(10*sec, 1, "*5"), keys(10*sec, 2, "*9*6"), keys(11*sec, 1, "*8")), 2, false},
		{"lecture mode: floor holder muted by facilitator", peer, pre(keys(10*sec, 1, "*5"), keys(10*sec, 2, "*9"), keys(10*sec, 1, "*12#1"), keys(11*sec, 1, "*8")), 2, false},
		{"lecture mode: floor taken by the next grant", peer, pre(keys(10*sec, 1, "*5"), keys(10*sec, 2, "*9"), keys(10*sec, 4, "*9"), keys(11*sec, 1, "*8"), keys(12*sec, 1, "*8")), 2, false},
		{"lecture mode: floor taken by the share timer", peer, pre(keys(10*sec, 1, "*5*4"), keys(10*sec, 2, "*9"), keys(11*sec, 1, "*8"), tick(11*sec+3*mn+30*sec)), 2, false},
		{"lecture mode off again (*5 *5)", peer, pre(keys(10*sec, 1, "*5*5")), 2, true},
		{"lecture mode off keeps a self-mute", peer, pre(keys(10*sec, 2, "*6"), keys(10*sec, 1, "*5*5")), 2, false},
		{"member joining in lecture mode", peer, pre(keys(10*sec, 1, "*5"), join(11*sec, "x", group.Member, JoinResult{Seat: 5})), 5, false},

		{"member in waiting (seat action 3)", peer, pre(keys(10*sec, 1, "*12#3")), 2, false},
		{"member back from waiting (seat action 3 again)", peer, pre(keys(10*sec, 1, "*12#3"), keys(11*sec, 1, "*12#3")), 2, true},
		{"member in waiting, lecture mode, given seat action 2: still waiting", peer, pre(keys(10*sec, 1, "*5*12#3"), keys(11*sec, 1, "*12#2")), 2, false},

		{"member in the lobby", facLed, pre(join(20*sec, "x", group.Member, JoinResult{})), 0, false},
		{"member removed, still hanging up", peer, pre(keys(10*sec, 1, "*3"), keys(10*sec, 1, "1")), 4, false},
		{"after the session ended", peer, pre(keys(10*sec, 1, "*#1")), 1, false},
		{"absent seat", peer, nil, 9, false},
	}
	for _, row := range rows {
		t.Run(row.name, func(t *testing.T) {
			steps := append([]ev{}, base...)
			seat := row.seat
			if row.cfg.LedBy == group.LedByFacilitator {
				// A lobby needs members before any facilitator.
				steps = pre(join(0, "a", group.Member, JoinResult{Seat: 1}))
				seat = 1
			}
			steps = append(steps, row.steps...)
			s := run(t, row.cfg, steps)
			if got := s.Heard(seat); got != row.want {
				t.Errorf("Heard(%d) = %v, want %v; view %+v", seat, got, row.want, s.View())
			}
		})
	}
}
