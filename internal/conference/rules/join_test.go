package rules

import (
	"testing"

	"github.com/groupbridge/groupbridge/internal/group"
	pr "github.com/groupbridge/groupbridge/media/prompt"
)

type scenario struct {
	name string
	cfg  Config
	evs  []ev
}

func runAll(t *testing.T, rows []scenario) {
	t.Helper()
	for _, row := range rows {
		t.Run(row.name, func(t *testing.T) { run(t, row.cfg, row.evs) })
	}
}

func placed(p Placement) func(SeatView) string {
	return func(v SeatView) string {
		if v.Placement != p {
			return "placement " + v.Placement.String() + ", want " + p.String()
		}
		return ""
	}
}

func TestJoin(t *testing.T) {
	runAll(t, []scenario{
		{"peer: member first, then member, then facilitator", peer, script(
			join(0, "a", group.Member, JoinResult{Seat: 1}, greet(1, pr.FirstHere)),
			join(sec, "b", group.Member, JoinResult{Seat: 2}, greet(2), chimeJ(2)),
			join(2*sec, "c", group.Facilitator, JoinResult{Seat: 3}, greet(3), chimeJ(3)),
			heard(map[int]bool{1: true, 2: true, 3: true}),
			view(3, func(v SeatView) string {
				if v.Role != group.Facilitator || !v.JoinedAt.Equal(t0.Add(2*sec)) {
					return "not a facilitator joined at 2s"
				}
				return ""
			}),
			state(func(s *Session) string {
				if s.Seats().Present() != 3 || s.Ended() || s.Door().Locked() || s.Lecture() || s.ShareTimer() {
					return "unexpected session state"
				}
				return ""
			}),
		)},
		{"peer: facilitator first, then member", peer, script(
			join(0, "f", group.Facilitator, JoinResult{Seat: 1}, greet(1, pr.FirstHere)),
			join(sec, "m", group.Member, JoinResult{Seat: 2}, greet(2), chimeJ(2)),
			heard(map[int]bool{1: true, 2: true}),
		)},
		{"facilitator-led: members first wait in the lobby, the facilitator brings them in", facLed, script(
			join(0, "a", group.Member, JoinResult{Seat: 1},
				greet(1, pr.FirstHere), music(1, true), sayQ(1, pr.FacilitatorNotJoined)),
			// Not mixed with each other: no chime, nobody heard.
			join(5*sec, "b", group.Member, JoinResult{Seat: 2},
				greet(2), music(2, true), sayQ(2, pr.FacilitatorNotJoined)),
			heard(map[int]bool{1: false, 2: false}),
			view(1, placed(Lobby)), view(2, placed(Lobby)),
			tick(29*sec),
			tick(30*sec, sayQ(1, pr.FacilitatorNotJoined)),
			tick(35*sec, sayQ(2, pr.FacilitatorNotJoined)),
			tick(59*sec),
			tick(60*sec, sayQ(1, pr.FacilitatorNotJoined)),
			// Lobby callers' keys: *6, *2, *0 work; *9 does nothing; a
			// facilitator key is refused.
			keys(61*sec, 1, "*6", sayI(1, pr.Muted)),
			keys(61*sec, 1, "*6", sayI(1, pr.Unmuted, pr.FacilitatorNotJoined)),
			keys(61*sec, 1, "*9"),
			keys(61*sec, 1, "*5", sayI(1, pr.FacilitatorOnly)),
			keys(61*sec, 1, "*2", sayI(1, pr.ThereAre, "2", pr.PeopleOnCall)),
			keys(61*sec, 1, "*0", sayI(1, pr.HelpMember)),
			// Talking in the lobby is no reason for a reminder.
			talk(61*sec, 2, true),
			join(62*sec, "f", group.Facilitator, JoinResult{Seat: 3},
				greet(3),
				music(1, false), sayQ(1, pr.FacilitatorJoined),
				music(2, false), sayQ(2, pr.FacilitatorJoined),
				chimeJ(3)),
			heard(map[int]bool{1: true, 2: true, 3: true}),
			view(1, placed(InRoom)), view(2, placed(InRoom)),
			tick(65*sec), // seat 2's announcement is gone
			tick(10*mn),
			join(11*mn, "d", group.Member, JoinResult{Seat: 4}, greet(4), chimeJ(4)),
			heard(map[int]bool{4: true}),
		)},
		{"a late tick announces once and keeps the rhythm", facLed, script(
			seats("M"),
			tick(95*sec, sayQ(1, pr.FacilitatorNotJoined)),
			tick(124*sec),
			tick(125*sec, sayQ(1, pr.FacilitatorNotJoined)),
		)},
		{"facilitator-led: facilitator first", facLed, script(
			join(0, "f", group.Facilitator, JoinResult{Seat: 1}, greet(1, pr.FirstHere)),
			join(sec, "m", group.Member, JoinResult{Seat: 2}, greet(2), chimeJ(2)),
			heard(map[int]bool{1: true, 2: true}),
			view(2, placed(InRoom)),
		)},
		{"facilitator-led: a member arriving during the grace comes into the room", facLed, script(
			seats("FM"),
			leave(10*sec, 1, chimeL(1), room(0, pr.FacilitatorLeft)),
			join(20*sec, "n", group.Member, JoinResult{Seat: 3}, greet(3), chimeJ(3)),
			view(3, placed(InRoom)),
			heard(map[int]bool{2: true, 3: true}),
		)},
		{"joining in lecture mode", peer, script(
			seats("FM"),
			keys(10*sec, 1, "*5", room(0, pr.EveryoneMuted)),
			join(20*sec, "m3", group.Member, JoinResult{Seat: 3}, greet(3, pr.LectureRaiseHand), chimeJ(3)),
			join(30*sec, "f4", group.Facilitator, JoinResult{Seat: 4}, greet(4), chimeJ(4)),
			heard(map[int]bool{1: true, 2: false, 3: false, 4: true}),
		)},
		{"seats are never reused", peer, script(
			seats("MMM"),
			leave(10*sec, 3, chimeL(3)),
			leave(10*sec, 2, chimeL(2)),
			join(11*sec, "", group.Member, JoinResult{Seat: 4}, greet(4), chimeJ(4)),
		)},
	})
}

func TestRefusals(t *testing.T) {
	runAll(t, []scenario{
		{"removed identity refused; anonymous removal blocks only that call", peer, script(
			pre(join(0, "f1", group.Facilitator, JoinResult{Seat: 1}),
				join(sec, "m2", group.Member, JoinResult{Seat: 2}),
				join(2*sec, "", group.Member, JoinResult{Seat: 3})),
			keys(10*sec, 1, "*3", sayI(1, pr.Caller, "3", pr.ConfirmPress1)),
			keys(11*sec, 1, "1", sayI(3, pr.RemovedYou), hang(3, ReasonRemoved), chimeL(3), sayI(1, pr.CallerRemoved)),
			heard(map[int]bool{3: false}),
			leave(12*sec, 3),
			join(13*sec, "", group.Member, JoinResult{Seat: 4}, greet(4), chimeJ(4)),
			keys(20*sec, 1, "*12#", sayI(1, pr.Caller, "2", pr.SeatMenu)),
			keys(21*sec, 1, "4", sayI(1, pr.Caller, "2", pr.ConfirmPress1)),
			keys(22*sec, 1, "1", sayI(2, pr.RemovedYou), hang(2, ReasonRemoved), chimeL(2), sayI(1, pr.CallerRemoved)),
			leave(23*sec, 2),
			join(24*sec, "m2", group.Member, JoinResult{Refused: RefuseRemoved}),
			join(24*mn, "m2", group.Member, JoinResult{Refused: RefuseRemoved}),
			// The facilitator PIN is the operator's trust: a facilitator
			// sharing the number still gets in.
			join(25*mn, "m2", group.Facilitator, JoinResult{Seat: 5}, greet(5), chimeJ(5)),
		)},
		{"locked: member refused, facilitator admitted", peer, script(
			seats("FM"),
			keys(10*sec, 1, "*7", sayI(1, pr.Locked)),
			state(func(s *Session) string {
				if !s.Door().Locked() {
					return "not locked"
				}
				return ""
			}),
			join(11*sec, "x", group.Member, JoinResult{Refused: RefuseLocked}),
			join(11*sec, "", group.Member, JoinResult{Refused: RefuseLocked}),
			join(12*sec, "y", group.Facilitator, JoinResult{Seat: 3}, greet(3), chimeJ(3)),
			keys(13*sec, 1, "*7", sayI(1, pr.Unlocked)),
			join(14*sec, "x", group.Member, JoinResult{Seat: 4}, greet(4), chimeJ(4)),
		)},
		{"full: members capped, facilitators always in", Config{LedBy: group.LedByPeer, MaxMembers: 2}, script(
			seats("MM"),
			join(10*sec, "x", group.Member, JoinResult{Refused: RefuseFull}),
			join(11*sec, "f", group.Facilitator, JoinResult{Seat: 3}, greet(3), chimeJ(3)),
			leave(12*sec, 2, chimeL(2)),
			join(13*sec, "x", group.Member, JoinResult{Seat: 4}, greet(4), chimeJ(4)),
		)},
		{"full counts lobby members", Config{LedBy: group.LedByFacilitator, MaxMembers: 1}, script(
			seats("M"),
			join(10*sec, "x", group.Member, JoinResult{Refused: RefuseFull}),
		)},
		{"full counts waiting members; a member made facilitator frees a place", Config{LedBy: group.LedByPeer, MaxMembers: 2}, script(
			seats("FMM"),
			pre(keys(10*sec, 1, "*13#3")),
			view(3, placed(Waiting)),
			join(11*sec, "x", group.Member, JoinResult{Refused: RefuseFull}),
			pre(keys(12*sec, 1, "*12#5")),
			join(13*sec, "x", group.Member, JoinResult{Seat: 4}, greet(4), chimeJ(4)),
		)},
		{"ended session refuses everyone", peer, script(
			seats("FM"),
			keys(10*sec, 1, "*#1", sayI(1, pr.EndConfirm), room(0, pr.SessionEnded), endE(ReasonEndedByFacilitator),
				hang(1, ReasonEndedByFacilitator), hang(2, ReasonEndedByFacilitator)),
			join(11*sec, "x", group.Member, JoinResult{Refused: RefuseEnded}),
			join(11*sec, "y", group.Facilitator, JoinResult{Refused: RefuseEnded}),
		)},
	})
}

func TestFacilitatorPresence(t *testing.T) {
	ended := state(func(s *Session) string {
		if !s.Ended() {
			return "not ended"
		}
		return ""
	})
	notEnded := state(func(s *Session) string {
		if s.Ended() {
			return "ended"
		}
		return ""
	})
	runAll(t, []scenario{
		{"facilitator-led: the last facilitator leaves and the grace expires", facLed, script(
			seats("FMM"),
			leave(10*sec, 1, chimeL(1), room(0, pr.FacilitatorLeft)),
			heard(map[int]bool{2: true, 3: true}),
			tick(10*sec+2*mn-1),
			notEnded,
			tick(10*sec+2*mn, endAll(ReasonGraceExpired, 2, 3)...),
			ended,
			heard(map[int]bool{2: false, 3: false}),
			// Nothing more from an ended session.
			keys(10*sec+2*mn, 2, "*6"),
			talk(10*sec+2*mn, 2, true),
			tick(time10m),
			leave(time10m, 2),
			leave(time10m, 3),
			state(func(s *Session) string {
				if s.Seats().Present() != 0 || !s.Ended() {
					return "callers left"
				}
				return ""
			}),
		)},
		{"facilitator-led: the facilitator returns inside the grace", facLed, script(
			seats("FMM"),
			leave(10*sec, 1, chimeL(1), room(0, pr.FacilitatorLeft)),
			join(60*sec, "s1", group.Facilitator, JoinResult{Seat: 1, Restored: true},
				greet(1), room(1, pr.FacilitatorJoined), chimeJ(1)),
			tick(time10m),
			notEnded,
		)},
		{"facilitator-led: another facilitator arrives inside the grace", facLed, script(
			seats("FM"),
			leave(10*sec, 1, chimeL(1), room(0, pr.FacilitatorLeft)),
			join(20*sec, "x", group.Facilitator, JoinResult{Seat: 3}, greet(3), room(3, pr.FacilitatorJoined), chimeJ(3)),
			tick(time10m),
			notEnded,
		)},
		{"facilitator-led: a member rejoining does not cancel the grace", facLed, script(
			seats("FMM"),
			leave(5*sec, 3, chimeL(3)),
			leave(10*sec, 1, chimeL(1), room(0, pr.FacilitatorLeft)),
			join(20*sec, "s3", group.Member, JoinResult{Seat: 3, Restored: true}, greet(3), chimeJ(3)),
			tick(10*sec+2*mn, endAll(ReasonGraceExpired, 2, 3)...),
		)},
		{"facilitator-led: the facilitator comes back after the grace", facLed, script(
			seats("FM"),
			leave(10*sec, 1, chimeL(1), room(0, pr.FacilitatorLeft)),
			// No Tick came in time: the join runs the grace first.
			join(10*sec+2*mn, "s1", group.Facilitator, JoinResult{Refused: RefuseEnded}, endAll(ReasonGraceExpired, 2)...),
			ended,
		)},
		{"facilitator-led: one of two facilitators leaves", facLed, script(
			seats("FFM"),
			leave(10*sec, 1, chimeL(1)),
			tick(time10m),
			notEnded,
			leave(time10m, 2, chimeL(2), room(0, pr.FacilitatorLeft)),
		)},
		{"facilitator-led with no grace ends at once", Config{LedBy: group.LedByFacilitator}, script(
			seats("FMM"),
			leave(10*sec, 1, cat(chimeL(1), endAll(ReasonGraceExpired, 2, 3))...),
			ended,
		)},
		{"facilitator-led: a member made facilitator keeps the session", facLed, script(
			seats("FM"),
			keys(5*sec, 1, "*12#", sayI(1, pr.Caller, "2", pr.SeatMenu)),
			keys(6*sec, 1, "5", sayQ(2, pr.YouAreFacilitator), sayI(1, pr.Caller, "2", pr.IsFacilitator)),
			leave(10*sec, 1, chimeL(1)),
			tick(time10m),
			notEnded,
		)},
		{"peer-led: the last facilitator leaves and the room goes on", peer, script(
			seats("FMM"),
			leave(10*sec, 1, chimeL(1)),
			tick(time10m),
			notEnded,
			heard(map[int]bool{2: true, 3: true}),
		)},
		{"peer-led: a member made facilitator runs the room", peer, script(
			seats("FM"),
			keys(5*sec, 1, "*12#", sayI(1, pr.Caller, "2", pr.SeatMenu)),
			keys(6*sec, 1, "5", sayQ(2, pr.YouAreFacilitator), sayI(1, pr.Caller, "2", pr.IsFacilitator)),
			leave(10*sec, 1, chimeL(1)),
			keys(11*sec, 2, "*7", sayI(2, pr.Locked)),
			keys(12*sec, 2, "*0", sayI(2, pr.HelpFacilitator)),
		)},
		{"everyone leaves: the session is over without a word", peer, script(
			seats("FM"),
			leave(10*sec, 1, chimeL(1)),
			leave(11*sec, 2),
			ended,
			join(12*sec, "s1", group.Facilitator, JoinResult{Refused: RefuseEnded}),
		)},
		{"facilitator-led: everyone leaves the lobby", facLed, script(
			seats("MM"),
			leave(10*sec, 1),
			leave(11*sec, 2),
			ended,
		)},
	})
}

// time10m is a moment well after every timer of the scenarios above.
const time10m = 10 * mn

func TestNewSessionStartsOver(t *testing.T) {
	// A session that ended carries nothing to the next one: the engine
	// starts a new Session, seat 1, unlocked, lecture off, no removals.
	s := run(t, peer, script(
		seats("FM"),
		pre(keys(5*sec, 1, "*7*5*4"),
			keys(6*sec, 1, "*3"), keys(6*sec, 1, "1")),
		leave(10*sec, 1),
		leave(10*sec, 2),
	))
	if !s.Ended() {
		t.Fatal("not ended")
	}
	run(t, peer, script(
		join(time10m, "s2", group.Member, JoinResult{Seat: 1}, greet(1, pr.FirstHere)),
		state(func(s *Session) string {
			if s.Door().Locked() || s.Lecture() || s.ShareTimer() {
				return "state carried over"
			}
			return ""
		}),
		heard(map[int]bool{1: true}),
	))
}
