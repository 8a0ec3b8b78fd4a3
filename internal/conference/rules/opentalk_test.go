package rules

import (
	"fmt"
	"testing"

	"github.com/groupbridge/groupbridge/internal/group"
	pr "github.com/groupbridge/groupbridge/media/prompt"
)

// What a peer-led room returns to when its last facilitator (the chair,
// seat 1, leaving at 10 s) has not come back within OpenTalkAfter (so at
// 70 s): one row per state at the moment the chair leaves.
func TestPeerOpenTalk(t *testing.T) {
	const (
		gone = 10 * sec      // the chair leaves
		due  = gone + 60*sec // DefaultOpenTalkAfter later
	)
	// The sentences of the return to open talk.
	open := func(seat int) Effect { return sayQ(seat, pr.FacilitatorGone, pr.EveryoneMaySpeak) }
	openMuted := func(seat int) Effect {
		return sayQ(seat, pr.FacilitatorGone, pr.EveryoneMaySpeak, pr.ReminderUnmute)
	}
	waitGone := func(seat int) Effect { return sayQ(seat, pr.FacilitatorGone) }
	roomIs := func(lecture, locked bool, floor int) ev {
		return state(func(s *Session) string {
			if s.Lecture() != lecture || s.Door().Locked() != locked || s.floor.seat != floor {
				return fmt.Sprintf("lecture %v locked %v floor %d, want %v %v %d",
					s.Lecture(), s.Door().Locked(), s.floor.seat, lecture, locked, floor)
			}
			return ""
		})
	}
	mutes := func(self, fac bool) func(SeatView) string {
		return func(v SeatView) string {
			if v.SelfMuted != self || v.FacilitatorMuted != fac {
				return fmt.Sprintf("self-muted %v facilitator-muted %v, want %v %v", v.SelfMuted, v.FacilitatorMuted, self, fac)
			}
			return ""
		}
	}
	runAll(t, []scenario{
		{"lecture on", peer, script(
			seats("FMM"),
			pre(keys(5*sec, 1, "*5")),
			leave(gone, 1, chimeL(1)),
			heard(map[int]bool{2: false, 3: false}),
			tick(due-1), // not yet
			roomIs(true, false, 0),
			tick(due, open(2), open(3)),
			roomIs(false, false, 0),
			heard(map[int]bool{2: true, 3: true}),
			tick(time10m), // said once
		)},
		{"floor given in lecture mode", peer, script(
			seats("FMMM"),
			pre(keys(5*sec, 1, "*5"), keys(6*sec, 2, "*9"), keys(7*sec, 1, "*8")),
			leave(gone, 1, chimeL(1)),
			heard(map[int]bool{2: true, 3: false, 4: false}),
			tick(due, open(2), open(3), open(4)),
			roomIs(false, false, 0),
			view(2, func(v SeatView) string {
				if v.Floor || v.Hand {
					return "still has the floor or a hand"
				}
				return ""
			}),
			heard(map[int]bool{2: true, 3: true, 4: true}),
		)},
		{"floor given with the share timer on, no lecture", peer, script(
			seats("FMM"),
			pre(keys(5*sec, 1, "*4"), keys(6*sec, 2, "*9"), keys(7*sec, 1, "*8")),
			leave(gone, 1, chimeL(1)),
			tick(due, open(2), open(3)),
			roomIs(false, false, 0),
			// The floor is gone, so its share time is too: no chime.
			tick(7*sec+DefaultShareLimit),
			tick(time10m),
		)},
		{"locked", peer, script(
			seats("FM"),
			pre(keys(5*sec, 1, "*7")),
			leave(gone, 1, chimeL(1)),
			join(30*sec, "new", group.Member, JoinResult{Refused: RefuseLocked}),
			tick(due, open(2)),
			roomIs(false, false, 0),
			join(due+sec, "new", group.Member, JoinResult{Seat: 3}, greet(3), chimeJ(3)),
		)},
		{"facilitator-muted members become self-muted", peer, script(
			// 2 muted by the facilitator, 3 by themselves, 4 both.
			seats("FMMM"),
			pre(keys(5*sec, 1, "*12#1"), keys(5*sec, 3, "*6"),
				keys(6*sec, 1, "*14#1"), keys(6*sec, 4, "*6")),
			leave(gone, 1, chimeL(1)),
			tick(due, openMuted(2), open(3), openMuted(4)),
			view(2, mutes(true, false)),
			view(3, mutes(true, false)),
			view(4, mutes(true, false)),
			heard(map[int]bool{2: false, 3: false, 4: false}),
			// Only the caller opens their microphone, with *6.
			keys(due+5*sec, 2, "*6", sayI(2, pr.Unmuted)),
			heard(map[int]bool{2: true, 3: false, 4: false}),
			// Talking while muted now reminds of *6, not *9.
			talk(due+6*sec, 4, true),
			tick(due+8*sec, sayQ(4, pr.ReminderUnmute)),
		)},
		{"waiting members stay and are told once; nothing else to undo", peer, script(
			seats("FMM"),
			pre(keys(5*sec, 1, "*12#3")),
			leave(gone, 1, chimeL(1)),
			tick(35*sec, sayQ(2, pr.WaitingMessage)),
			tick(65*sec, sayQ(2, pr.WaitingMessage)),
			// The room had nothing to undo: only the waiting caller hears.
			tick(due, waitGone(2)),
			view(2, placed(Waiting)),
			heard(map[int]bool{2: false, 3: true}),
			tick(95*sec, sayQ(2, pr.WaitingMessage)), // their hold goes on
		)},
		{"everything at once", peer, script(
			// Lecture with the floor to 2, locked, 3 muted by the
			// facilitator, 4 in waiting, 5 in the room.
			seats("FMMMM"),
			pre(keys(5*sec, 1, "*5"), keys(5*sec, 2, "*9"), keys(6*sec, 1, "*8"), keys(6*sec, 1, "*7"),
				keys(7*sec, 1, "*13#1"), keys(8*sec, 1, "*14#3")),
			leave(gone, 1, chimeL(1)),
			heard(map[int]bool{2: true, 3: false, 4: false, 5: false}),
			tick(38*sec, sayQ(4, pr.WaitingMessage)),
			tick(68*sec, sayQ(4, pr.WaitingMessage)),
			tick(due, open(2), openMuted(3), waitGone(4), open(5)),
			roomIs(false, false, 0),
			view(3, mutes(true, false)),
			view(4, placed(Waiting)),
			heard(map[int]bool{2: true, 3: false, 4: false, 5: true}),
		)},
		{"nothing to undo: not a word", peer, script(
			seats("FMM"),
			leave(gone, 1, chimeL(1)),
			tick(due),
			heard(map[int]bool{2: true, 3: true}),
		)},
		{"the chair rejoins within the minute: nothing reset", peer, script(
			seats("FMMM"),
			pre(keys(5*sec, 1, "*5"), keys(5*sec, 1, "*7"), keys(6*sec, 1, "*12#1"), keys(7*sec, 1, "*13#3")),
			leave(gone, 1, chimeL(1)),
			tick(37*sec, sayQ(3, pr.WaitingMessage)),
			tick(67*sec, sayQ(3, pr.WaitingMessage)),
			join(due-1, "s1", group.Facilitator, JoinResult{Seat: 1, Restored: true}, greet(1), chimeJ(1)),
			tick(time10m, sayQ(3, pr.WaitingMessage)),
			roomIs(true, true, 0),
			view(2, mutes(false, true)),
			view(3, placed(Waiting)),
			heard(map[int]bool{1: true, 2: false, 3: false, 4: false}),
		)},
		{"the chair comes back as the minute ends: finds the room open", peer, script(
			seats("FMM"),
			pre(keys(5*sec, 1, "*5"), keys(5*sec, 1, "*7")),
			leave(gone, 1, chimeL(1)),
			// No Tick came in time: the join runs the timer first.
			join(due, "s1", group.Facilitator, JoinResult{Seat: 1, Restored: true},
				open(2), open(3), greet(1), chimeJ(1)),
			roomIs(false, false, 0),
			heard(map[int]bool{1: true, 2: true, 3: true}),
			// Their keys work on the room as it is.
			keys(due+sec, 1, "*5", room(0, pr.EveryoneMuted)),
		)},
		{"another facilitator still present: nothing reset", peer, script(
			seats("FFM"),
			pre(keys(5*sec, 1, "*5"), keys(5*sec, 1, "*7")),
			leave(gone, 1, chimeL(1)),
			tick(time10m),
			roomIs(true, true, 0),
			heard(map[int]bool{2: true, 3: false}),
		)},
		{"the minute runs from the last facilitator leaving", peer, script(
			seats("FFM"),
			pre(keys(5*sec, 1, "*5")),
			leave(gone, 1, chimeL(1)),
			leave(40*sec, 2, chimeL(2)),
			tick(99*sec),
			roomIs(true, false, 0),
			tick(100*sec, open(3)),
		)},
		{"another facilitator joins within the minute", peer, script(
			seats("FMM"),
			pre(keys(5*sec, 1, "*5")),
			leave(gone, 1, chimeL(1)),
			join(30*sec, "x", group.Facilitator, JoinResult{Seat: 4}, greet(4), chimeJ(4)),
			tick(time10m),
			roomIs(true, false, 0),
		)},
		{"an operator makes a facilitator within the minute", peer, script(
			seats("FMM"),
			pre(keys(5*sec, 1, "*5")),
			leave(gone, 1, chimeL(1)),
			act(30*sec, ActMakeFacilitator, 2, nil, sayQ(2, pr.YouAreFacilitator)),
			tick(time10m),
			roomIs(true, false, 0),
			heard(map[int]bool{2: true, 3: false}),
		)},
		{"a member rejoining does not stop the minute", peer, script(
			seats("FMM"),
			pre(keys(5*sec, 1, "*5")),
			leave(5*sec, 3, chimeL(3)),
			leave(gone, 1, chimeL(1)),
			join(20*sec, "s3", group.Member, JoinResult{Seat: 3, Restored: true}, greet(3, pr.LectureRaiseHand), chimeJ(3)),
			tick(due, open(2), open(3)),
		)},
		{"a facilitator-muted caller who dropped comes back self-muted", peer, script(
			seats("FMM"),
			pre(keys(5*sec, 1, "*13#1")),
			leave(8*sec, 3, chimeL(3)),
			leave(gone, 1, chimeL(1)),
			tick(due), // nobody present was muted: nothing to say
			join(80*sec, "s3", group.Member, JoinResult{Seat: 3, Restored: true}, greet(3, pr.Muted), chimeJ(3)),
			view(3, mutes(true, false)),
			keys(81*sec, 3, "*6", sayI(3, pr.Unmuted)),
			heard(map[int]bool{3: true}),
		)},
		{"the last callers leave first: nothing pending", peer, script(
			seats("FM"),
			pre(keys(5*sec, 1, "*5")),
			leave(gone, 1, chimeL(1)),
			leave(20*sec, 2),
			state(func(s *Session) string {
				if _, ok := s.NextDeadline(); ok || !s.Ended() {
					return "not ended, or a deadline left"
				}
				return ""
			}),
		)},
		{"facilitator-led rooms keep the grace rule", facLed, script(
			seats("FMM"),
			pre(keys(5*sec, 1, "*5"), keys(5*sec, 1, "*7")),
			leave(gone, 1, chimeL(1), room(0, pr.FacilitatorLeft)),
			tick(due),
			roomIs(true, true, 0),
			heard(map[int]bool{2: false, 3: false}),
			tick(gone+2*mn, endAll(ReasonGraceExpired, 2, 3)...),
		)},
	})
}

// TestOpenTalkAfterConfigured runs the return to open talk with a
// configuration's own delay.
func TestOpenTalkAfterConfigured(t *testing.T) {
	cfg := Config{LedBy: group.LedByPeer, OpenTalkAfter: 5 * sec}
	run(t, cfg, script(
		seats("FM"),
		pre(keys(3*sec, 1, "*5")),
		leave(4*sec, 1, chimeL(1)),
		tick(9*sec-1),
		tick(9*sec, sayQ(2, pr.FacilitatorGone, pr.EveryoneMaySpeak)),
		heard(map[int]bool{2: true}),
	))
}
