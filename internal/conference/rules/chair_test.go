package rules

import (
	"testing"

	"github.com/groupbridge/groupbridge/internal/group"
	pr "github.com/groupbridge/groupbridge/media/prompt"
)

// noneMissed checks that no timer of a facilitator's absence is pending.
func noneMissed(s *Session) string {
	if !s.presence.graceAt.IsZero() || !s.presence.openAt.IsZero() {
		return "a facilitator's absence is being timed"
	}
	return ""
}

func TestPassChair(t *testing.T) {
	// passed is what passing the chair from seat 1 to member seat 2 says.
	passed := []Effect{sayI(1, pr.Caller, "2", pr.SeatMenu), sayQ(2, pr.YouAreFacilitator),
		sayI(1, pr.YouAreMember), room(2, pr.Caller, "2", pr.HasTheChair)}
	runAll(t, []scenario{
		{"peer-led: the keys move to the new chair", peer, script(
			seats("FMM"),
			keys(10*sec, 1, "*12#6", passed...),
			view(1, role(group.Member)), view(2, role(group.Facilitator)),
			state(noneMissed),
			keys(11*sec, 1, "*5", sayI(1, pr.FacilitatorOnly)),
			keys(11*sec, 1, "*0", sayI(1, pr.HelpMember)),
			keys(12*sec, 2, "*5", room(0, pr.EveryoneMuted)),
			heard(map[int]bool{1: false, 2: true, 3: false}),
			// The old chair asks for the floor like any member.
			keys(13*sec, 1, "*9", sayI(1, pr.HandRaised), facs(0, pr.Caller, "1", pr.RaisedAHand)),
			tick(10*mn),
			state(noneMissed),
		)},
		{"facilitator-led: no grace, and the new chair leaving starts it", facLed, script(
			seats("FM"),
			keys(10*sec, 1, "*12#6", passed[0], passed[1], passed[2], room(2, pr.Caller, "2", pr.HasTheChair)),
			state(noneMissed),
			tick(10*mn), // far past EndGrace: the session goes on
			state(func(s *Session) string {
				if s.Ended() {
					return "ended"
				}
				return ""
			}),
			leave(11*mn, 2, chimeL(2), room(0, pr.FacilitatorLeft)),
			tick(13*mn, endAll(ReasonGraceExpired, 1)...),
		)},
		{"in lecture mode the old chair is told how to ask for the floor", peer, script(
			seats("FMM"),
			pre(keys(5*sec, 1, "*5"), keys(6*sec, 2, "*9"), keys(7*sec, 1, "*8")),
			heard(map[int]bool{2: true, 3: false}),
			keys(10*sec, 1, "*13#6", sayI(1, pr.Caller, "3", pr.SeatMenu), sayQ(3, pr.YouAreFacilitator),
				sayI(1, pr.YouAreMember, pr.LectureRaiseHand), room(3, pr.Caller, "3", pr.HasTheChair)),
			heard(map[int]bool{1: false, 2: true, 3: true}),
			keys(12*sec, 1, "*6", sayI(1, pr.Muted)),
			keys(13*sec, 1, "*6", sayI(1, pr.Unmuted, pr.LectureRaiseHand)),
		)},
		{"to a facilitator: the presser steps down, the room hears it", peer, script(
			seats("FFM"),
			keys(10*sec, 1, "*12#6", sayI(1, pr.Caller, "2", pr.SeatMenu),
				sayI(1, pr.YouAreMember), room(0, pr.Caller, "2", pr.HasTheChair)),
			view(1, role(group.Member)), view(2, role(group.Facilitator)),
			state(noneMissed),
		)},
		{"refused: own seat, waiting, absent", facLed, script(
			seats("FMM"),
			keys(10*sec, 1, "*11#6", sayI(1, pr.Caller, "1", pr.SeatMenu), sayI(1, pr.Cancelled)),
			pre(keys(11*sec, 1, "*13#3")),
			keys(12*sec, 1, "*13#6", sayI(1, pr.Caller, "3", pr.SeatMenu), sayI(1, pr.Cancelled)),
			keys(13*sec, 1, "*19#", sayI(1, pr.NoSuchSeat)),
			keys(14*sec, 1, "*12#", sayI(1, pr.Caller, "2", pr.SeatMenu)),
			leave(15*sec, 2, chimeL(2)),
			keys(16*sec, 1, "6", sayI(1, pr.NoSuchSeat)),
			view(1, role(group.Facilitator)), view(3, role(group.Member)),
		)},
		{"passed back and forth", peer, script(
			seats("FM"),
			keys(10*sec, 1, "*12#6", passed...),
			keys(11*sec, 2, "*11#6", sayI(2, pr.Caller, "1", pr.SeatMenu), sayQ(1, pr.YouAreFacilitator),
				sayI(2, pr.YouAreMember), room(1, pr.Caller, "1", pr.HasTheChair)),
			view(1, role(group.Facilitator)), view(2, role(group.Member)),
			keys(12*sec, 2, "*7", sayI(2, pr.FacilitatorOnly)),
		)},
		{"the new chair keeps it on rejoin; the old one is a member", peer, script(
			seats("FMM"),
			pre(keys(10*sec, 1, "*12#6")),
			pre(leave(11*sec, 2), leave(11*sec, 1)),
			pre(join(12*sec, "s1", group.Member, JoinResult{Seat: 1}), join(12*sec, "s2", group.Member, JoinResult{Seat: 2})),
			view(1, role(group.Member)), view(2, role(group.Facilitator)),
		)},
	})
}
