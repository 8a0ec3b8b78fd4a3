package rules

import (
	"testing"

	"github.com/groupbridge/groupbridge/internal/group"
	pr "github.com/groupbridge/groupbridge/media/prompt"
)

func noFloor(s *Session) string {
	if s.floor.seat != 0 {
		return "someone has the floor"
	}
	return ""
}

func hasFloor(want bool) func(SeatView) string {
	return func(v SeatView) string {
		if v.Floor != want {
			return "floor wrong"
		}
		return ""
	}
}

func TestKeypadEveryone(t *testing.T) {
	runAll(t, []scenario{
		{"*6 member: mute and unmute", peer, script(
			seats("FM"),
			keys(10*sec, 2, "*6", sayI(2, pr.Muted)),
			heard(map[int]bool{2: false}),
			keys(11*sec, 2, "*6", sayI(2, pr.Unmuted)),
			heard(map[int]bool{2: true}),
		)},
		{"*6 facilitator: mute and unmute", peer, script(
			seats("FM"),
			keys(10*sec, 1, "*6", sayI(1, pr.Muted)),
			heard(map[int]bool{1: false}),
			keys(11*sec, 1, "*6", sayI(1, pr.Unmuted)),
			heard(map[int]bool{1: true}),
		)},
		{"a digit without star does nothing", peer, script(
			seats("FM"),
			keys(10*sec, 2, "6"), keys(10*sec, 2, "9"), keys(10*sec, 1, "5"), keys(10*sec, 1, "#1"),
			heard(map[int]bool{2: true}),
			state(func(s *Session) string {
				if s.Lecture() || s.Ended() {
					return "a lone digit acted"
				}
				return ""
			}),
		)},
		{"star star restarts the star", peer, script(
			seats("FM"),
			keys(10*sec, 2, "**6", sayI(2, pr.Muted)),
			keys(20*sec, 2, "*"),
			keys(22*sec, 2, "*"),
			keys(24*sec, 2, "6", sayI(2, pr.Unmuted)), // 2 s after the second star
		)},
		{"star timeout drops the star", peer, script(
			seats("FM"),
			keys(10*sec, 2, "*"),
			tick(13*sec-1),
			keys(13*sec-1, 2, "6", sayI(2, pr.Muted)), // just in time
			keys(20*sec, 2, "*"),
			tick(23*sec), // silently dropped
			keys(23*sec, 2, "6"),
			keys(30*sec, 2, "*"),
			keys(33*sec, 2, "6"), // no Tick in between: dropped all the same
			heard(map[int]bool{2: false}),
		)},
		{"*6 unmute while muted by the facilitator says why", peer, script(
			seats("FM"),
			keys(10*sec, 1, "*12#", sayI(1, pr.Caller, "2", pr.SeatMenu)),
			keys(11*sec, 1, "1", sayQ(2, pr.MutedByFacilitator), sayI(1, pr.Caller, "2", pr.IsMuted)),
			keys(12*sec, 2, "*6", sayI(2, pr.Muted)),
			keys(13*sec, 2, "*6", sayI(2, pr.Unmuted, pr.MutedByFacilitator)),
			heard(map[int]bool{2: false}),
		)},
		{"*6 unmute in lecture mode says why", peer, script(
			seats("FM"),
			keys(10*sec, 1, "*5", room(0, pr.EveryoneMuted)),
			keys(11*sec, 2, "*6", sayI(2, pr.Muted)),
			keys(12*sec, 2, "*6", sayI(2, pr.Unmuted, pr.LectureRaiseHand)),
			keys(13*sec, 2, "*9", sayI(2, pr.HandRaised), facs(0, pr.Caller, "2", pr.RaisedAHand)),
			keys(14*sec, 2, "*6*6", sayI(2, pr.Muted), sayI(2, pr.Unmuted, pr.HandRaised)),
			heard(map[int]bool{2: false}),
			// A facilitator is heard in lecture mode.
			keys(15*sec, 1, "*6*6", sayI(1, pr.Muted), sayI(1, pr.Unmuted)),
			heard(map[int]bool{1: true}),
		)},
		{"*2 head count; facilitators hear who is talking", peer, script(
			seats("FMM"),
			keys(10*sec, 2, "*2", sayI(2, pr.ThereAre, "3", pr.PeopleOnCall)),
			keys(10*sec, 1, "*2", sayI(1, pr.ThereAre, "3", pr.PeopleOnCall, pr.NobodyTalking)),
			talk(11*sec, 2, true), talk(11*sec, 3, true), talk(11*sec, 1, true),
			keys(12*sec, 1, "*2", sayI(1, pr.ThereAre, "3", pr.PeopleOnCall,
				pr.Caller, "2", pr.IsTalking, pr.Caller, "3", pr.IsTalking)),
			// A muted talker is not in the facilitator's ear.
			keys(12*sec, 3, "*6", sayI(3, pr.Muted)),
			keys(12*sec, 1, "*2", sayI(1, pr.ThereAre, "3", pr.PeopleOnCall, pr.Caller, "2", pr.IsTalking)),
			keys(12*sec, 2, "*2", sayI(2, pr.ThereAre, "3", pr.PeopleOnCall)),
		)},
		{"*2 alone", peer, script(
			seats("F"),
			keys(10*sec, 1, "*2", sayI(1, pr.OnlyOneHere, pr.NobodyTalking)),
		)},
		{"*2 alone, member", peer, script(
			seats("M"),
			keys(10*sec, 1, "*2", sayI(1, pr.OnlyOneHere)),
		)},
		{"*0 help for each role", peer, script(
			seats("FM"),
			keys(10*sec, 1, "*0", sayI(1, pr.HelpFacilitator)),
			keys(10*sec, 2, "*0", sayI(2, pr.HelpMember)),
		)},
		{"unassigned keys do nothing", peer, script(
			seats("FM"),
			keys(10*sec, 1, "*A*B*C*D"),
			keys(10*sec, 2, "*A*D"),
			keys(10*sec, 1, "*9"), // facilitators are always heard: no hand
			view(1, func(v SeatView) string {
				if v.Hand {
					return "facilitator raised a hand"
				}
				return ""
			}),
		)},
	})
}

func TestKeypadMemberKeys(t *testing.T) {
	evs := seats("FM")
	for _, k := range []string{"5", "8", "7", "3", "1", "4", "#"} {
		evs = append(evs, keys(10*sec, 2, "*"+k, sayI(2, pr.FacilitatorOnly)))
	}
	evs = append(evs, state(func(s *Session) string {
		if s.Lecture() || s.Door().Locked() || s.ShareTimer() || s.Ended() || s.Seats().Present() != 2 {
			return "a member's facilitator key acted"
		}
		return ""
	}), keys(11*sec, 2, "1#", nil...)) // not in a menu: nothing
	runAll(t, []scenario{
		{"member pressing facilitator keys", peer, evs},
		{"*9 raise and lower; facilitators hear raised hands", peer, script(
			seats("FFM"),
			keys(10*sec, 3, "*9", sayI(3, pr.HandRaised), facs(0, pr.Caller, "3", pr.RaisedAHand)),
			view(3, func(v SeatView) string {
				if !v.Hand {
					return "hand not raised"
				}
				return ""
			}),
			keys(11*sec, 3, "*9", sayI(3, pr.HandLowered)),
			view(3, func(v SeatView) string {
				if v.Hand {
					return "hand not lowered"
				}
				return ""
			}),
		)},
		{"*9 with no facilitator present", peer, script(
			seats("MM"),
			keys(10*sec, 1, "*9", sayI(1, pr.HandRaised)),
		)},
	})
}

func TestLectureAndFloor(t *testing.T) {
	runAll(t, []scenario{
		{"lecture on and off keeps self-mutes and clears the floor", peer, script(
			seats("FMM"),
			keys(10*sec, 3, "*6", sayI(3, pr.Muted)),
			keys(11*sec, 1, "*5", room(0, pr.EveryoneMuted)),
			heard(map[int]bool{1: true, 2: false, 3: false}),
			keys(12*sec, 2, "*9", sayI(2, pr.HandRaised), facs(0, pr.Caller, "2", pr.RaisedAHand)),
			keys(13*sec, 1, "*8", room(0, pr.Caller, "2", pr.YouHaveTheFloor)),
			heard(map[int]bool{2: true, 3: false}),
			keys(14*sec, 1, "*5", room(0, pr.EveryoneMaySpeak)),
			state(noFloor),
			heard(map[int]bool{1: true, 2: true, 3: false}),
			view(3, func(v SeatView) string {
				if !v.SelfMuted {
					return "self-mute changed"
				}
				return ""
			}),
		)},
		{"hand queue order and floor hand-over", peer, script(
			seats("FMMM"),
			keys(10*sec, 1, "*5", room(0, pr.EveryoneMuted)),
			keys(11*sec, 4, "*9", sayI(4, pr.HandRaised), facs(0, pr.Caller, "4", pr.RaisedAHand)),
			keys(12*sec, 2, "*9", sayI(2, pr.HandRaised), facs(0, pr.Caller, "2", pr.RaisedAHand)),
			keys(13*sec, 3, "*9", sayI(3, pr.HandRaised), facs(0, pr.Caller, "3", pr.RaisedAHand)),
			keys(20*sec, 1, "*8", room(0, pr.Caller, "4", pr.YouHaveTheFloor)),
			heard(map[int]bool{2: false, 3: false, 4: true}),
			view(4, func(v SeatView) string {
				if v.Hand || !v.Floor {
					return "floor grant did not lower the hand"
				}
				return ""
			}),
			keys(30*sec, 1, "*8", room(0, pr.Caller, "2", pr.YouHaveTheFloor)),
			heard(map[int]bool{2: true, 3: false, 4: false}),
			keys(40*sec, 1, "*8", room(0, pr.Caller, "3", pr.YouHaveTheFloor)),
			heard(map[int]bool{2: false, 3: true, 4: false}),
			keys(50*sec, 1, "*8", sayI(1, pr.NoHands)),
			heard(map[int]bool{3: true}),
		)},
		{"a lowered hand leaves the queue; a leaver's hand too", peer, script(
			seats("FMMM"),
			keys(10*sec, 2, "*9", sayI(2, pr.HandRaised), facs(0, pr.Caller, "2", pr.RaisedAHand)),
			keys(11*sec, 3, "*9", sayI(3, pr.HandRaised), facs(0, pr.Caller, "3", pr.RaisedAHand)),
			keys(12*sec, 4, "*9", sayI(4, pr.HandRaised), facs(0, pr.Caller, "4", pr.RaisedAHand)),
			keys(13*sec, 2, "*9", sayI(2, pr.HandLowered)),
			leave(14*sec, 3, chimeL(3)),
			keys(15*sec, 1, "*8", room(0, pr.Caller, "4", pr.YouHaveTheFloor)),
			keys(16*sec, 1, "*8", sayI(1, pr.NoHands)),
		)},
		{"the floor holder who muted themselves is not heard", peer, script(
			seats("FM"),
			pre(keys(10*sec, 1, "*5"), keys(11*sec, 2, "*9*6")),
			keys(12*sec, 1, "*8", room(0, pr.Caller, "2", pr.YouHaveTheFloor)),
			heard(map[int]bool{2: false}),
			keys(13*sec, 2, "*6", sayI(2, pr.Unmuted)),
			heard(map[int]bool{2: true}),
		)},
		{"the floor does not lift a facilitator mute; seat action 2 does", peer, script(
			seats("FM"),
			pre(keys(10*sec, 1, "*5"), keys(11*sec, 1, "*12#1"), keys(12*sec, 2, "*9")),
			keys(13*sec, 1, "*8", room(0, pr.Caller, "2", pr.YouHaveTheFloor)),
			heard(map[int]bool{2: false}),
			keys(14*sec, 2, "*6*6", sayI(2, pr.Muted), sayI(2, pr.Unmuted, pr.MutedByFacilitator)),
			keys(15*sec, 1, "*12#", sayI(1, pr.Caller, "2", pr.SeatMenu)),
			keys(16*sec, 1, "2", room(0, pr.Caller, "2", pr.YouHaveTheFloor), sayI(1, pr.Caller, "2", pr.IsUnmuted)),
			heard(map[int]bool{2: true}),
		)},
		{"the floor outside lecture mode", peer, script(
			seats("FM"),
			pre(keys(10*sec, 2, "*9")),
			keys(11*sec, 1, "*8", room(0, pr.Caller, "2", pr.YouHaveTheFloor)),
			view(2, hasFloor(true)),
			keys(12*sec, 1, "*5", room(0, pr.EveryoneMuted)),
			heard(map[int]bool{2: true}), // keeps the floor into lecture mode
		)},
		{"*7 lock and unlock", peer, script(
			seats("FM"),
			keys(10*sec, 1, "*7", sayI(1, pr.Locked)),
			keys(11*sec, 1, "*7", sayI(1, pr.Unlocked)),
		)},
	})
}

func TestRemoveLast(t *testing.T) {
	runAll(t, []scenario{
		{"*3 removes the member who joined last, never a facilitator", peer, script(
			seats("FMMF"),
			keys(10*sec, 1, "*3", sayI(1, pr.Caller, "3", pr.ConfirmPress1)),
			keys(11*sec, 1, "1", sayI(3, pr.RemovedYou), hang(3, ReasonRemoved), chimeL(3), sayI(1, pr.CallerRemoved)),
			heard(map[int]bool{3: false}),
			// Being hung up: out of head counts and the next *3.
			keys(12*sec, 2, "*2", sayI(2, pr.ThereAre, "3", pr.PeopleOnCall)),
			keys(12*sec, 3, "*6"),
			keys(13*sec, 4, "*3", sayI(4, pr.Caller, "2", pr.ConfirmPress1)),
			keys(14*sec, 4, "1", sayI(2, pr.RemovedYou), hang(2, ReasonRemoved), chimeL(2), sayI(4, pr.CallerRemoved)),
			keys(15*sec, 4, "*3", sayI(4, pr.NoMemberToRemove)),
			leave(16*sec, 3),
			leave(16*sec, 2),
			state(func(s *Session) string {
				if s.Seats().Present() != 2 || s.Ended() {
					return "wrong after removals"
				}
				return ""
			}),
		)},
		{"*3 cancelled by another key", peer, script(
			seats("FM"),
			keys(10*sec, 1, "*3", sayI(1, pr.Caller, "2", pr.ConfirmPress1)),
			keys(11*sec, 1, "9", sayI(1, pr.Cancelled)),
			keys(12*sec, 1, "1"), // no longer a confirmation
			heard(map[int]bool{2: true}),
		)},
		{"*3 cancelled by star", peer, script(
			seats("FM"),
			keys(10*sec, 1, "*3", sayI(1, pr.Caller, "2", pr.ConfirmPress1)),
			keys(11*sec, 1, "*", sayI(1, pr.Cancelled)),
			keys(12*sec, 1, "6"),
		)},
		{"*3 confirmation times out", peer, script(
			seats("FM"),
			keys(10*sec, 1, "*3", sayI(1, pr.Caller, "2", pr.ConfirmPress1)),
			tick(20*sec-1),
			tick(20*sec, sayQ(1, pr.Cancelled)),
			keys(21*sec, 1, "1"),
			heard(map[int]bool{2: true}),
		)},
		{"removing the speaker clears the floor", peer, script(
			seats("FMM"),
			pre(keys(5*sec, 1, "*5*4"), keys(5*sec, 3, "*9"), keys(6*sec, 1, "*8")),
			keys(10*sec, 1, "*3", sayI(1, pr.Caller, "3", pr.ConfirmPress1)),
			keys(11*sec, 1, "1", sayI(3, pr.RemovedYou), hang(3, ReasonRemoved), chimeL(3), sayI(1, pr.CallerRemoved)),
			state(noFloor),
			tick(time10m), // the share timer went with the floor
		)},
		{"*3 with only facilitators", peer, script(
			seats("FF"),
			keys(10*sec, 1, "*3", sayI(1, pr.NoMemberToRemove)),
		)},
		{"*3 target made facilitator meanwhile", peer, script(
			seats("FMF"),
			keys(10*sec, 1, "*3", sayI(1, pr.Caller, "2", pr.ConfirmPress1)),
			keys(11*sec, 3, "*12#5", sayI(3, pr.Caller, "2", pr.SeatMenu),
				sayQ(2, pr.YouAreFacilitator), sayI(3, pr.Caller, "2", pr.IsFacilitator)),
			keys(12*sec, 1, "1", sayI(1, pr.Cancelled)),
		)},
		{"*3 target left meanwhile", peer, script(
			seats("FM"),
			keys(10*sec, 1, "*3", sayI(1, pr.Caller, "2", pr.ConfirmPress1)),
			leave(11*sec, 2, chimeL(2)),
			keys(12*sec, 1, "1", sayI(1, pr.NoSuchSeat)),
		)},
		{"removing a waiting member stops their hold music", peer, script(
			seats("FM"),
			pre(keys(10*sec, 1, "*12#3")),
			keys(11*sec, 1, "*3", sayI(1, pr.Caller, "2", pr.ConfirmPress1)),
			keys(12*sec, 1, "1", music(2, false), sayI(2, pr.RemovedYou), hang(2, ReasonRemoved), chimeL(2), sayI(1, pr.CallerRemoved)),
			tick(time10m), // no more waiting announcements
		)},
	})
}

func TestSeatMenu(t *testing.T) {
	runAll(t, []scenario{
		{"*1 with no such seat", peer, script(
			seats("FMM"),
			leave(5*sec, 3, chimeL(3)),
			keys(10*sec, 1, "*19#", sayI(1, pr.NoSuchSeat)),
			keys(10*sec, 1, "*1#", sayI(1, pr.NoSuchSeat)),
			keys(10*sec, 1, "*10#", sayI(1, pr.NoSuchSeat)),
			keys(10*sec, 1, "*13#", sayI(1, pr.NoSuchSeat)), // left
			keys(10*sec, 1, "*1000000002#", sayI(1, pr.NoSuchSeat)),
			keys(10*sec, 1, "*199999999999999999999#", sayI(1, pr.NoSuchSeat)),
		)},
		{"*1 reads leading zeros and speaks the seat, not the digits", peer, script(
			seats("FM"),
			keys(10*sec, 1, "*1002#", sayI(1, pr.Caller, "2", pr.SeatMenu)),
			keys(11*sec, 1, "9", sayI(1, pr.Cancelled)),
		)},
		{"*1 seat entry cancelled by star or another key", peer, script(
			seats("FM"),
			keys(10*sec, 1, "*12*", sayI(1, pr.Cancelled)),
			keys(11*sec, 1, "6"), // the star cancelled; it started nothing
			keys(12*sec, 1, "*1A", sayI(1, pr.Cancelled)),
			keys(13*sec, 1, "*12#*", sayI(1, pr.Caller, "2", pr.SeatMenu), sayI(1, pr.Cancelled)),
			keys(14*sec, 1, "*12#0", sayI(1, pr.Caller, "2", pr.SeatMenu), sayI(1, pr.Cancelled)),
			keys(15*sec, 1, "*12#7", sayI(1, pr.Caller, "2", pr.SeatMenu), sayI(1, pr.Cancelled)),
		)},
		{"seat entry times out from the last digit", peer, script(
			seats("FM"),
			keys(10*sec, 1, "*1"),
			keys(15*sec, 1, "2"),
			tick(25*sec-1),
			tick(25*sec, sayQ(1, pr.Cancelled)),
			keys(26*sec, 1, "#"),
		)},
		{"seat action times out", peer, script(
			seats("FM"),
			keys(10*sec, 1, "*12#", sayI(1, pr.Caller, "2", pr.SeatMenu)),
			tick(20*sec, sayQ(1, pr.Cancelled)),
			keys(21*sec, 1, "1"),
			heard(map[int]bool{2: true}),
		)},
		{"seat actions 1 and 2 outside lecture mode", peer, script(
			seats("FM"),
			keys(10*sec, 1, "*12#1", sayI(1, pr.Caller, "2", pr.SeatMenu),
				sayQ(2, pr.MutedByFacilitator), sayI(1, pr.Caller, "2", pr.IsMuted)),
			heard(map[int]bool{2: false}),
			view(2, func(v SeatView) string {
				if !v.FacilitatorMuted || v.SelfMuted {
					return "not muted by the facilitator"
				}
				return ""
			}),
			// Again: the caller is told only once.
			keys(11*sec, 1, "*12#1", sayI(1, pr.Caller, "2", pr.SeatMenu), sayI(1, pr.Caller, "2", pr.IsMuted)),
			keys(12*sec, 1, "*12#2", sayI(1, pr.Caller, "2", pr.SeatMenu),
				sayQ(2, pr.Unmuted), sayI(1, pr.Caller, "2", pr.IsUnmuted)),
			heard(map[int]bool{2: true}),
			state(noFloor),
			keys(13*sec, 1, "*12#2", sayI(1, pr.Caller, "2", pr.SeatMenu), sayI(1, pr.Caller, "2", pr.IsUnmuted)),
		)},
		{"seat action 2 never opens a self-muted microphone", peer, script(
			seats("FM"),
			pre(keys(10*sec, 2, "*6"), keys(11*sec, 1, "*12#1")),
			keys(12*sec, 1, "*12#2", sayI(1, pr.Caller, "2", pr.SeatMenu),
				sayQ(2, pr.ReminderUnmute), sayI(1, pr.Caller, "2", pr.IsUnmuted)),
			heard(map[int]bool{2: false}),
		)},
		{"seat action 2 in lecture mode gives the floor", peer, script(
			seats("FMM"),
			pre(keys(10*sec, 1, "*5"), keys(10*sec, 2, "*9"), keys(10*sec, 3, "*9")),
			keys(11*sec, 1, "*13#2", sayI(1, pr.Caller, "3", pr.SeatMenu),
				room(0, pr.Caller, "3", pr.YouHaveTheFloor), sayI(1, pr.Caller, "3", pr.IsUnmuted)),
			heard(map[int]bool{2: false, 3: true}),
			view(3, func(v SeatView) string {
				if v.Hand {
					return "hand still raised"
				}
				return ""
			}),
			keys(12*sec, 1, "*8", room(0, pr.Caller, "2", pr.YouHaveTheFloor)),
			heard(map[int]bool{2: true, 3: false}),
		)},
		{"seat actions 1 and 2 on a facilitator", peer, script(
			seats("FFM"),
			keys(10*sec, 1, "*12#1", sayI(1, pr.Caller, "2", pr.SeatMenu),
				sayQ(2, pr.MutedByFacilitator), sayI(1, pr.Caller, "2", pr.IsMuted)),
			heard(map[int]bool{2: false}),
			pre(keys(11*sec, 1, "*5")),
			keys(12*sec, 1, "*12#2", sayI(1, pr.Caller, "2", pr.SeatMenu),
				sayQ(2, pr.Unmuted), sayI(1, pr.Caller, "2", pr.IsUnmuted)),
			heard(map[int]bool{2: true}),
			state(noFloor),
			// On oneself too.
			keys(13*sec, 1, "*11#1", sayI(1, pr.Caller, "1", pr.SeatMenu),
				sayQ(1, pr.MutedByFacilitator), sayI(1, pr.Caller, "1", pr.IsMuted)),
			heard(map[int]bool{1: false}),
		)},
		{"seat action 3 moves to waiting and back", peer, script(
			seats("FMM"),
			pre(keys(5*sec, 1, "*5"), keys(5*sec, 3, "*9"), keys(6*sec, 1, "*8")),
			heard(map[int]bool{3: true}),
			keys(10*sec, 1, "*13#", sayI(1, pr.Caller, "3", pr.SeatMenu)),
			keys(11*sec, 1, "3", music(3, true), sayQ(3, pr.WaitingMessage), sayI(1, pr.Caller, "3", pr.IsWaiting)),
			view(3, placed(Waiting)),
			view(3, func(v SeatView) string {
				if v.Floor || v.Hand {
					return "waiting kept the floor or hand"
				}
				return ""
			}),
			heard(map[int]bool{3: false}),
			tick(41*sec-1),
			tick(41*sec, sayQ(3, pr.WaitingMessage)),
			tick(71*sec, sayQ(3, pr.WaitingMessage)),
			// Only *6, *2, *0 work while waiting.
			keys(72*sec, 3, "*9"),
			keys(72*sec, 3, "*5", sayI(3, pr.FacilitatorOnly)),
			keys(72*sec, 3, "*6", sayI(3, pr.Muted)),
			keys(72*sec, 3, "*6", sayI(3, pr.Unmuted, pr.WaitingMessage)),
			keys(72*sec, 3, "*2", sayI(3, pr.ThereAre, "3", pr.PeopleOnCall)),
			talk(72*sec, 3, true), // no reminder while waiting
			keys(80*sec, 1, "*13#3", sayI(1, pr.Caller, "3", pr.SeatMenu),
				music(3, false), sayQ(3, pr.BackInRoom), sayI(1, pr.Caller, "3", pr.IsBack)),
			view(3, placed(InRoom)),
			heard(map[int]bool{3: false}), // lecture mode, no floor
			keys(81*sec, 1, "*5", room(0, pr.EveryoneMaySpeak)),
			heard(map[int]bool{3: true}),
			tick(time10m),
		)},
		{"seat actions 3 and 4 refused on a facilitator", peer, script(
			seats("FF"),
			keys(10*sec, 1, "*12#3", sayI(1, pr.Caller, "2", pr.SeatMenu), sayI(1, pr.Cancelled)),
			keys(11*sec, 1, "*12#4", sayI(1, pr.Caller, "2", pr.SeatMenu), sayI(1, pr.Cancelled)),
			view(2, placed(InRoom)),
			heard(map[int]bool{2: true}),
		)},
		{"seat action 4 removes after confirmation", peer, script(
			seats("FMM"),
			keys(10*sec, 1, "*12#4", sayI(1, pr.Caller, "2", pr.SeatMenu), sayI(1, pr.Caller, "2", pr.ConfirmPress1)),
			keys(11*sec, 1, "1", sayI(2, pr.RemovedYou), hang(2, ReasonRemoved), chimeL(2), sayI(1, pr.CallerRemoved)),
			keys(12*sec, 1, "*13#4", sayI(1, pr.Caller, "3", pr.SeatMenu), sayI(1, pr.Caller, "3", pr.ConfirmPress1)),
			keys(13*sec, 1, "2", sayI(1, pr.Cancelled)),
			keys(14*sec, 1, "*13#4", sayI(1, pr.Caller, "3", pr.SeatMenu), sayI(1, pr.Caller, "3", pr.ConfirmPress1)),
			tick(24*sec, sayQ(1, pr.Cancelled)),
			heard(map[int]bool{3: true}),
		)},
		{"seat action 5 makes a facilitator", peer, script(
			seats("FMM"),
			pre(keys(5*sec, 2, "*9"), keys(5*sec, 1, "*5"), keys(6*sec, 1, "*8")),
			keys(10*sec, 1, "*12#5", sayI(1, pr.Caller, "2", pr.SeatMenu),
				sayQ(2, pr.YouAreFacilitator), sayI(1, pr.Caller, "2", pr.IsFacilitator)),
			view(2, func(v SeatView) string {
				if v.Role != group.Facilitator || v.Floor || v.Hand || !v.Heard {
					return "not a heard facilitator without floor or hand"
				}
				return ""
			}),
			keys(11*sec, 2, "*5", room(0, pr.EveryoneMaySpeak)),
			keys(12*sec, 1, "*12#5", sayI(1, pr.Caller, "2", pr.SeatMenu), sayI(1, pr.Caller, "2", pr.IsFacilitator)),
			// Not for a caller in waiting.
			pre(keys(13*sec, 1, "*13#3")),
			keys(14*sec, 1, "*13#5", sayI(1, pr.Caller, "3", pr.SeatMenu), sayI(1, pr.Cancelled)),
			view(3, func(v SeatView) string {
				if v.Role != group.Member {
					return "waiting caller made facilitator"
				}
				return ""
			}),
		)},
		{"seat action on a caller who left meanwhile", peer, script(
			seats("FM"),
			keys(10*sec, 1, "*12#", sayI(1, pr.Caller, "2", pr.SeatMenu)),
			leave(11*sec, 2, chimeL(2)),
			keys(12*sec, 1, "1", sayI(1, pr.NoSuchSeat)),
		)},
	})
}

func TestShareTimer(t *testing.T) {
	runAll(t, []scenario{
		{"in lecture mode: chime at the limit, floor lost 30 s later", peer, script(
			seats("FMM"),
			keys(10*sec, 1, "*4", sayI(1, pr.TimerOn)),
			keys(11*sec, 1, "*5", room(0, pr.EveryoneMuted)),
			pre(keys(12*sec, 2, "*9")),
			keys(20*sec, 1, "*8", room(0, pr.Caller, "2", pr.YouHaveTheFloor)),
			tick(20*sec+3*mn-1),
			tick(20*sec+3*mn, shareChime(2)),
			heard(map[int]bool{2: true}),
			tick(20*sec+3*mn+30*sec-1),
			tick(20*sec+3*mn+30*sec, room(0, pr.ThankYou, pr.Caller, "2")),
			heard(map[int]bool{2: false}),
			state(noFloor),
			tick(time10m),
		)},
		{"outside lecture mode: only the chime", peer, script(
			seats("FM"),
			keys(10*sec, 1, "*4", sayI(1, pr.TimerOn)),
			pre(keys(12*sec, 2, "*9")),
			keys(20*sec, 1, "*8", room(0, pr.Caller, "2", pr.YouHaveTheFloor)),
			tick(20*sec+3*mn, shareChime(2)),
			tick(20*sec+3*mn+30*sec),
			view(2, hasFloor(true)),
			tick(time10m),
			view(2, hasFloor(true)),
		)},
		{"share_minutes from the config", Config{LedBy: group.LedByPeer, ShareLimit: mn}, script(
			seats("FM"),
			pre(keys(10*sec, 1, "*4*5"), keys(12*sec, 2, "*9")),
			keys(20*sec, 1, "*8", room(0, pr.Caller, "2", pr.YouHaveTheFloor)),
			tick(80*sec, shareChime(2)),
			tick(110*sec, room(0, pr.ThankYou, pr.Caller, "2")),
		)},
		{"the next grant restarts the timer", peer, script(
			seats("FMM"),
			pre(keys(10*sec, 1, "*4*5"), keys(12*sec, 2, "*9"), keys(13*sec, 3, "*9")),
			keys(20*sec, 1, "*8", room(0, pr.Caller, "2", pr.YouHaveTheFloor)),
			keys(2*mn, 1, "*8", room(0, pr.Caller, "3", pr.YouHaveTheFloor)),
			tick(20*sec+3*mn),
			tick(5*mn, shareChime(3)),
			tick(5*mn+30*sec, room(0, pr.ThankYou, pr.Caller, "3")),
		)},
		{"turning the timer off cancels it", peer, script(
			seats("FM"),
			pre(keys(10*sec, 1, "*4*5"), keys(12*sec, 2, "*9")),
			keys(20*sec, 1, "*8", room(0, pr.Caller, "2", pr.YouHaveTheFloor)),
			keys(mn, 1, "*4", sayI(1, pr.TimerOff)),
			tick(time10m),
			view(2, hasFloor(true)),
		)},
		{"turning the timer on starts it for the current speaker", peer, script(
			seats("FM"),
			pre(keys(10*sec, 1, "*5"), keys(12*sec, 2, "*9")),
			keys(20*sec, 1, "*8", room(0, pr.Caller, "2", pr.YouHaveTheFloor)),
			keys(mn, 1, "*4", sayI(1, pr.TimerOn)),
			tick(3*mn+59*sec),
			tick(4*mn, shareChime(2)),
		)},
		{"lecture off after the chime: nobody loses the floor", peer, script(
			seats("FM"),
			pre(keys(10*sec, 1, "*4*5"), keys(12*sec, 2, "*9")),
			keys(20*sec, 1, "*8", room(0, pr.Caller, "2", pr.YouHaveTheFloor)),
			tick(20*sec+3*mn, shareChime(2)),
			keys(20*sec+3*mn+10*sec, 1, "*5", room(0, pr.EveryoneMaySpeak)),
			tick(time10m),
			heard(map[int]bool{2: true}),
		)},
		{"the speaker leaving stops the timer", peer, script(
			seats("FM"),
			pre(keys(10*sec, 1, "*4*5"), keys(12*sec, 2, "*9")),
			keys(20*sec, 1, "*8", room(0, pr.Caller, "2", pr.YouHaveTheFloor)),
			leave(30*sec, 2, chimeL(2)),
			tick(time10m),
		)},
	})
}

func TestEndByFacilitator(t *testing.T) {
	runAll(t, []scenario{
		{"*# then 1 ends the session for everyone", peer, script(
			seats("FMM"),
			pre(keys(5*sec, 1, "*13#3")), // waiting callers are told too
			keys(10*sec, 1, "*#", sayI(1, pr.EndConfirm)),
			keys(11*sec, 1, "1", endAll(ReasonEndedByFacilitator, 1, 2, 3)...),
			state(func(s *Session) string {
				if !s.Ended() || s.Seats().Present() != 3 {
					return "not ended with everyone still connected"
				}
				return ""
			}),
			heard(map[int]bool{1: false, 2: false, 3: false}),
			keys(12*sec, 1, "*#1"),
			tick(time10m),
			leave(time10m, 1), leave(time10m, 2), leave(time10m, 3),
		)},
		{"*# cancelled by another key", peer, script(
			seats("FM"),
			keys(10*sec, 1, "*#", sayI(1, pr.EndConfirm)),
			keys(11*sec, 1, "2", sayI(1, pr.Cancelled)),
			keys(12*sec, 1, "1"),
		)},
		{"*# times out", peer, script(
			seats("FM"),
			keys(10*sec, 1, "*#", sayI(1, pr.EndConfirm)),
			tick(20*sec, sayQ(1, pr.Cancelled)),
			keys(21*sec, 1, "1"),
		)},
		{"ending leaves out a caller already being removed", peer, script(
			seats("FMM"),
			pre(keys(5*sec, 1, "*3"), keys(5*sec, 1, "1")),
			keys(10*sec, 1, "*#1", cat(sayI(1, pr.EndConfirm), endAll(ReasonEndedByFacilitator, 1, 2))...),
		)},
	})
}

func TestMutedTalkerReminder(t *testing.T) {
	runAll(t, []scenario{
		{"self-muted talker hears the *6 reminder at most once a minute", peer, script(
			seats("FM"),
			keys(10*sec, 2, "*6", sayI(2, pr.Muted)),
			talk(20*sec, 2, true),
			tick(22*sec-1),
			tick(22*sec, sayQ(2, pr.ReminderUnmute)),
			tick(81*sec),
			tick(82*sec, sayQ(2, pr.ReminderUnmute)),
			talk(90*sec, 2, false),
			talk(100*sec, 2, true),
			tick(102*sec), // within the minute of the last reminder
			tick(142*sec, sayQ(2, pr.ReminderUnmute)),
			talk(150*sec, 2, false),
			tick(time10m),
		)},
		{"short talk gets no reminder", peer, script(
			seats("FM"),
			pre(keys(10*sec, 2, "*6")),
			talk(20*sec, 2, true),
			talk(21*sec, 2, false),
			tick(30*sec),
		)},
		{"heard talker gets no reminder", peer, script(
			seats("FM"),
			talk(20*sec, 2, true),
			tick(time10m),
		)},
		{"lecture mode without the floor: the *9 reminder", peer, script(
			seats("FM"),
			pre(keys(10*sec, 1, "*5")),
			talk(20*sec, 2, true),
			tick(22*sec, sayQ(2, pr.ReminderRaiseHand)),
			keys(23*sec, 2, "*9", sayI(2, pr.HandRaised), facs(0, pr.Caller, "2", pr.RaisedAHand)),
			tick(time10m), // the hand is up: nothing more to press
		)},
		{"muted by the facilitator: the *9 reminder, timed from the mute", peer, script(
			seats("FM"),
			talk(20*sec, 2, true),
			keys(30*sec, 1, "*12#1", sayI(1, pr.Caller, "2", pr.SeatMenu),
				sayQ(2, pr.MutedByFacilitator), sayI(1, pr.Caller, "2", pr.IsMuted)),
			tick(32*sec-1),
			tick(32*sec, sayQ(2, pr.ReminderRaiseHand)),
		)},
		{"a facilitator muted by another gets no reminder; self-muted does", peer, script(
			seats("FF"),
			pre(keys(10*sec, 1, "*12#1")),
			talk(20*sec, 2, true),
			tick(time10m/2),
			keys(time10m/2, 2, "*6", sayI(2, pr.Muted)),
			tick(time10m/2+2*sec, sayQ(2, pr.ReminderUnmute)),
		)},
		{"lobby talker gets no reminder", facLed, script(
			seats("M"),
			talk(sec, 1, true),
			tick(30*sec, sayQ(1, pr.FacilitatorNotJoined)),
		)},
		{"a floor grant ends the reminder timer", peer, script(
			seats("FM"),
			pre(keys(10*sec, 1, "*5"), keys(10*sec, 2, "*9")),
			talk(20*sec, 2, true),
			keys(21*sec, 1, "*8", room(0, pr.Caller, "2", pr.YouHaveTheFloor)),
			tick(time10m),
		)},
	})
}

func TestRejoin(t *testing.T) {
	runAll(t, []scenario{
		{"a drop and a call back within the window: seat, mute and hand back", peer, script(
			seats("FMM"),
			pre(keys(5*sec, 2, "*6*9"), keys(6*sec, 3, "*9")),
			leave(30*sec, 2, chimeL(2)),
			join(30*sec+2*mn-1, "s2", group.Member, JoinResult{Seat: 2, Restored: true},
				greet(2, pr.Muted, pr.HandRaised), chimeJ(2)),
			view(2, func(v SeatView) string {
				if !v.SelfMuted || !v.Hand || v.Heard {
					return "state not restored"
				}
				return ""
			}),
			// The restored hand queues after the hands raised meanwhile.
			keys(3*mn, 1, "*8", room(0, pr.Caller, "3", pr.YouHaveTheFloor)),
			keys(3*mn, 1, "*8", room(0, pr.Caller, "2", pr.YouHaveTheFloor)),
		)},
		{"after the window: a new seat", peer, script(
			seats("FM"),
			pre(keys(5*sec, 2, "*6")),
			leave(30*sec, 2, chimeL(2)),
			join(30*sec+2*mn, "s2", group.Member, JoinResult{Seat: 3}, greet(3), chimeJ(3)),
			heard(map[int]bool{3: true}),
		)},
		{"a caller with no number is never restored", peer, script(
			pre(join(0, "f", group.Facilitator, JoinResult{Seat: 1}), join(sec, "", group.Member, JoinResult{Seat: 2})),
			pre(keys(5*sec, 2, "*6")),
			leave(10*sec, 2, chimeL(2)),
			join(11*sec, "", group.Member, JoinResult{Seat: 3}, greet(3), chimeJ(3)),
		)},
		{"facilitator mute, role and waiting come back", peer, script(
			seats("FMMM"),
			pre(keys(5*sec, 1, "*12#1"), keys(5*sec, 1, "*13#5"), keys(5*sec, 1, "*14#3")),
			leave(10*sec, 2, chimeL(2)),
			leave(10*sec, 3, chimeL(3)),
			leave(10*sec, 4, chimeL(4)),
			join(20*sec, "s2", group.Member, JoinResult{Seat: 2, Restored: true}, greet(2, pr.MutedByFacilitator), chimeJ(2)),
			join(20*sec, "s3", group.Member, JoinResult{Seat: 3, Restored: true}, greet(3), chimeJ(3)),
			join(20*sec, "s4", group.Member, JoinResult{Seat: 4, Restored: true},
				greet(4), music(4, true), sayQ(4, pr.WaitingMessage), chimeJ(4)),
			view(3, func(v SeatView) string {
				if v.Role != group.Facilitator {
					return "role not restored"
				}
				return ""
			}),
			view(4, placed(Waiting)),
			tick(50*sec, sayQ(4, pr.WaitingMessage)),
			heard(map[int]bool{2: false, 3: true, 4: false}),
		)},
		{"a rejoin gets in while locked; a new member does not", peer, script(
			seats("FM"),
			pre(keys(5*sec, 1, "*7")),
			leave(10*sec, 2, chimeL(2)),
			join(11*sec, "s2", group.Member, JoinResult{Seat: 2, Restored: true}, greet(2), chimeJ(2)),
			join(12*sec, "x", group.Member, JoinResult{Refused: RefuseLocked}),
		)},
		{"a rejoin still counts against max_members", Config{LedBy: group.LedByPeer, MaxMembers: 1}, script(
			seats("FM"),
			leave(10*sec, 2, chimeL(2)),
			join(11*sec, "x", group.Member, JoinResult{Seat: 3}, greet(3), chimeJ(3)),
			join(12*sec, "s2", group.Member, JoinResult{Refused: RefuseFull}),
			leave(13*sec, 3, chimeL(3)),
			join(14*sec, "s2", group.Member, JoinResult{Seat: 2, Restored: true}, greet(2), chimeJ(2)),
		)},
		{"a rejoin in lecture mode is told how to ask for the floor", peer, script(
			seats("FM"),
			pre(keys(5*sec, 1, "*5")),
			leave(10*sec, 2, chimeL(2)),
			join(11*sec, "s2", group.Member, JoinResult{Seat: 2, Restored: true}, greet(2, pr.LectureRaiseHand), chimeJ(2)),
		)},
		{"lobby rejoin", facLed, script(
			seats("MM"),
			leave(10*sec, 2),
			join(11*sec, "s2", group.Member, JoinResult{Seat: 2, Restored: true},
				greet(2), music(2, true), sayQ(2, pr.FacilitatorNotJoined)),
			leave(12*sec, 2),
			join(13*sec, "f", group.Facilitator, JoinResult{Seat: 3},
				greet(3), music(1, false), sayQ(1, pr.FacilitatorJoined), chimeJ(3)),
			join(14*sec, "s2", group.Member, JoinResult{Seat: 2, Restored: true}, greet(2), chimeJ(2)),
			view(2, placed(InRoom)),
		)},
		{"the floor is not restored", peer, script(
			seats("FM"),
			pre(keys(5*sec, 1, "*5"), keys(5*sec, 2, "*9"), keys(6*sec, 1, "*8")),
			leave(10*sec, 2, chimeL(2)),
			join(11*sec, "s2", group.Member, JoinResult{Seat: 2, Restored: true}, greet(2, pr.LectureRaiseHand), chimeJ(2)),
			heard(map[int]bool{2: false}),
			state(noFloor),
		)},
	})
}
