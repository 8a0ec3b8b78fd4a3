package rules

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/groupbridge/groupbridge/internal/group"
	pr "github.com/groupbridge/groupbridge/media/prompt"
)

var (
	sessionEnded = state(func(s *Session) string {
		if !s.Ended() {
			return "not ended"
		}
		return ""
	})
	sessionLive = state(func(s *Session) string {
		if s.Ended() {
			return "ended"
		}
		return ""
	})
)

func role(r group.Role) func(SeatView) string {
	return func(v SeatView) string {
		if v.Role != r {
			return "role " + v.Role.String() + ", want " + r.String()
		}
		return ""
	}
}

func facMuted(want bool) func(SeatView) string {
	return func(v SeatView) string {
		if v.FacilitatorMuted != want {
			return fmt.Sprintf("facilitator-muted %v, want %v", v.FacilitatorMuted, want)
		}
		return ""
	}
}

func TestActSeat(t *testing.T) {
	runAll(t, []scenario{
		{"mute: the target is told once", peer, script(
			seats("FM"),
			act(10*sec, ActMute, 2, nil, sayQ(2, pr.MutedByFacilitator)),
			heard(map[int]bool{2: false}),
			view(2, facMuted(true)),
			act(11*sec, ActMute, 2, nil),
			view(2, facMuted(true)),
		)},
		{"mute a facilitator, a self-muted member and a waiting member", peer, script(
			seats("FMM"),
			pre(keys(5*sec, 2, "*6"), act(5*sec, ActWait, 3, nil)),
			act(10*sec, ActMute, 1, nil, sayQ(1, pr.MutedByFacilitator)),
			act(10*sec, ActMute, 2, nil, sayQ(2, pr.MutedByFacilitator)),
			act(10*sec, ActMute, 3, nil, sayQ(3, pr.MutedByFacilitator)),
			heard(map[int]bool{1: false, 2: false, 3: false}),
			view(3, facMuted(true)), view(3, placed(Waiting)),
		)},
		{"unmute: told when heard again, only once", peer, script(
			seats("FM"),
			act(10*sec, ActUnmute, 2, nil), // never muted: nothing to do
			pre(act(11*sec, ActMute, 2, nil)),
			act(12*sec, ActUnmute, 2, nil, sayQ(2, pr.Unmuted)),
			heard(map[int]bool{2: true}),
			act(13*sec, ActUnmute, 2, nil),
			state(noFloor),
		)},
		{"unmute never opens a self-muted microphone", peer, script(
			seats("FM"),
			pre(keys(10*sec, 2, "*6"), act(11*sec, ActMute, 2, nil)),
			act(12*sec, ActUnmute, 2, nil, sayQ(2, pr.ReminderUnmute)),
			heard(map[int]bool{2: false}),
			view(2, facMuted(false)),
		)},
		{"unmute in lecture mode gives the floor, once", peer, script(
			seats("FMM"),
			pre(act(5*sec, ActLectureOn, 0, nil), keys(6*sec, 3, "*9")),
			act(10*sec, ActUnmute, 3, nil, room(0, pr.Caller, "3", pr.YouHaveTheFloor)),
			heard(map[int]bool{2: false, 3: true}),
			view(3, hasFloor(true)),
			view(3, func(v SeatView) string {
				if v.Hand {
					return "hand still raised"
				}
				return ""
			}),
			act(11*sec, ActUnmute, 3, nil), // holds the floor already
			// A facilitator-muted member gets unmuted and the floor.
			pre(act(12*sec, ActMute, 2, nil)),
			act(13*sec, ActUnmute, 2, nil, room(0, pr.Caller, "2", pr.YouHaveTheFloor)),
			heard(map[int]bool{2: true, 3: false}),
			// A facilitator is unmuted without a floor.
			pre(act(14*sec, ActMute, 1, nil)),
			act(15*sec, ActUnmute, 1, nil, sayQ(1, pr.Unmuted)),
			view(2, hasFloor(true)),
		)},
		{"unmute a waiting member in lecture mode: no floor from waiting", peer, script(
			seats("FM"),
			pre(act(5*sec, ActLectureOn, 0, nil), act(6*sec, ActMute, 2, nil), act(7*sec, ActWait, 2, nil)),
			act(10*sec, ActUnmute, 2, nil),
			view(2, facMuted(false)),
			view(2, hasFloor(false)),
			act(11*sec, ActUnmute, 2, nil),
		)},
		{"wait and return", peer, script(
			seats("FMM"),
			pre(act(5*sec, ActLectureOn, 0, nil), keys(5*sec, 3, "*9"), keys(6*sec, 1, "*8"), keys(6*sec, 2, "*9")),
			act(10*sec, ActWait, 3, nil, music(3, true), sayQ(3, pr.WaitingMessage)),
			act(10*sec, ActWait, 2, nil, music(2, true), sayQ(2, pr.WaitingMessage)),
			view(3, placed(Waiting)),
			state(noFloor),
			view(2, func(v SeatView) string {
				if v.Hand {
					return "waiting kept the hand"
				}
				return ""
			}),
			act(11*sec, ActWait, 3, nil),
			tick(40*sec, sayQ(2, pr.WaitingMessage), sayQ(3, pr.WaitingMessage)),
			act(41*sec, ActReturn, 3, nil, music(3, false), sayQ(3, pr.BackInRoom)),
			view(3, placed(InRoom)),
			act(42*sec, ActReturn, 3, nil),
			act(42*sec, ActReturn, 1, nil),
			tick(70*sec, sayQ(2, pr.WaitingMessage)),
		)},
		{"wait and remove refused on a facilitator", peer, script(
			seats("FF"),
			act(10*sec, ActWait, 2, ErrFacilitator),
			act(10*sec, ActRemove, 1, ErrFacilitator),
			view(2, placed(InRoom)),
			state(func(s *Session) string {
				if s.Seats().Present() != 2 {
					return "a facilitator was removed"
				}
				return ""
			}),
		)},
		{"waiting from the lobby keeps the caller out when the facilitator comes", facLed, script(
			seats("MM"),
			act(10*sec, ActWait, 1, nil, sayQ(1, pr.WaitingMessage)),
			act(11*sec, ActReturn, 2, ErrLobby),
			view(2, placed(Lobby)),
			tick(31*sec, sayQ(2, pr.FacilitatorNotJoined)),
			tick(40*sec, sayQ(1, pr.WaitingMessage)),
			join(50*sec, "f", group.Facilitator, JoinResult{Seat: 3},
				greet(3), music(2, false), sayQ(2, pr.FacilitatorJoined), chimeJ(3)),
			view(1, placed(Waiting)),
			act(51*sec, ActReturn, 1, nil, music(1, false), sayQ(1, pr.BackInRoom)),
			heard(map[int]bool{1: true, 2: true}),
		)},
		{"remove: the member hears why and is hung up; not again", peer, script(
			seats("FMM"),
			act(10*sec, ActRemove, 2, nil, sayI(2, pr.RemovedYou), hang(2, ReasonRemoved), chimeL(2)),
			heard(map[int]bool{2: false}),
			act(11*sec, ActRemove, 2, nil), // being hung up: done already
			act(11*sec, ActMute, 2, ErrNoSeat),
			leave(12*sec, 2),
			act(13*sec, ActRemove, 2, ErrNoSeat),
			join(14*sec, "s2", group.Member, JoinResult{Refused: RefuseRemoved}),
		)},
		{"remove a waiting member stops the hold music", peer, script(
			seats("FM"),
			pre(act(5*sec, ActWait, 2, nil)),
			act(10*sec, ActRemove, 2, nil, music(2, false), sayI(2, pr.RemovedYou), hang(2, ReasonRemoved), chimeL(2)),
			tick(time10m),
		)},
		{"removing the last caller ends the session", peer, script(
			seats("M"),
			act(10*sec, ActRemove, 1, nil, sayI(1, pr.RemovedYou), hang(1, ReasonRemoved)),
			sessionEnded,
			act(11*sec, ActLock, 0, ErrEnded),
			leave(12*sec, 1),
			join(13*sec, "x", group.Member, JoinResult{Refused: RefuseEnded}),
		)},
		{"removing everyone from the lobby ends the session", facLed, script(
			seats("MM"),
			act(10*sec, ActRemove, 1, nil, music(1, false), sayI(1, pr.RemovedYou), hang(1, ReasonRemoved)),
			sessionLive,
			tick(31*sec, sayQ(2, pr.FacilitatorNotJoined)),
			act(32*sec, ActRemove, 2, nil, music(2, false), sayI(2, pr.RemovedYou), hang(2, ReasonRemoved)),
			sessionEnded,
			tick(time10m),
		)},
		{"make facilitator: hand and floor go, once", peer, script(
			seats("FMM"),
			pre(act(5*sec, ActLectureOn, 0, nil), keys(5*sec, 2, "*9"), keys(6*sec, 1, "*8"), keys(6*sec, 3, "*9")),
			act(10*sec, ActMakeFacilitator, 2, nil, sayQ(2, pr.YouAreFacilitator)),
			act(10*sec, ActMakeFacilitator, 3, nil, sayQ(3, pr.YouAreFacilitator)),
			view(2, role(group.Facilitator)),
			view(2, func(v SeatView) string {
				if v.Floor || v.Hand || !v.Heard {
					return "not a heard facilitator without floor or hand"
				}
				return ""
			}),
			view(3, func(v SeatView) string {
				if v.Hand {
					return "hand still raised"
				}
				return ""
			}),
			act(11*sec, ActMakeFacilitator, 2, nil),
			act(11*sec, ActMakeFacilitator, 1, nil),
			keys(12*sec, 1, "*8", sayI(1, pr.NoHands)),
		)},
		{"make facilitator refused in waiting", peer, script(
			seats("FM"),
			pre(act(5*sec, ActWait, 2, nil)),
			act(10*sec, ActMakeFacilitator, 2, ErrWaiting),
			view(2, role(group.Member)),
		)},
		{"a peer room with no facilitator is given one", peer, script(
			seats("MM"),
			keys(5*sec, 1, "*7", sayI(1, pr.FacilitatorOnly)),
			act(10*sec, ActMakeFacilitator, 1, nil, sayQ(1, pr.YouAreFacilitator)),
			keys(11*sec, 1, "*7", sayI(1, pr.Locked)),
			keys(12*sec, 1, "*12#1", sayI(1, pr.Caller, "2", pr.SeatMenu),
				sayQ(2, pr.MutedByFacilitator), sayI(1, pr.Caller, "2", pr.IsMuted)),
		)},
		{"a facilitator-led lobby is started by making a facilitator", facLed, script(
			seats("MMM"),
			pre(act(5*sec, ActWait, 3, nil)),
			act(10*sec, ActMakeFacilitator, 1, nil,
				music(1, false), sayQ(1, pr.YouAreFacilitator),
				music(2, false), sayQ(2, pr.FacilitatorJoined)),
			view(1, placed(InRoom)), view(2, placed(InRoom)), view(3, placed(Waiting)),
			heard(map[int]bool{1: true, 2: true, 3: false}),
			tick(30*sec), // no lobby announcements left
			tick(35*sec, sayQ(3, pr.WaitingMessage)),
			join(40*sec, "n", group.Member, JoinResult{Seat: 4}, greet(4), chimeJ(4)),
			// The new facilitator leaving starts the grace as any would.
			leave(50*sec, 1, chimeL(1), room(0, pr.FacilitatorLeft)),
		)},
		{"making a facilitator during the grace keeps the session", facLed, script(
			seats("FMM"),
			leave(10*sec, 1, chimeL(1), room(0, pr.FacilitatorLeft)),
			act(20*sec, ActMakeFacilitator, 2, nil, sayQ(2, pr.YouAreFacilitator), room(2, pr.FacilitatorJoined)),
			tick(time10m),
			sessionLive,
		)},
		{"no such seat", peer, script(
			seats("FMM"),
			leave(5*sec, 3, chimeL(3)),
			act(10*sec, ActMute, 0, ErrNoSeat),
			act(10*sec, ActMute, -1, ErrNoSeat),
			act(10*sec, ActUnmute, 3, ErrNoSeat),
			act(10*sec, ActWait, 4, ErrNoSeat),
			act(10*sec, ActReturn, 1<<40, ErrNoSeat),
			act(10*sec, ActRemove, 3, ErrNoSeat),
			act(10*sec, ActMakeFacilitator, 3, ErrNoSeat),
		)},
		{"unknown actions", peer, script(
			seats("FM"),
			act(10*sec, 0, 2, ErrUnknownAction),
			act(10*sec, ActEnd+1, 2, ErrUnknownAction),
			act(10*sec, -3, 0, ErrUnknownAction),
			sessionLive,
		)},
	})
}

func TestActRoom(t *testing.T) {
	runAll(t, []scenario{
		{"lock and unlock say nothing and refuse members only", peer, script(
			seats("FM"),
			act(10*sec, ActLock, 0, nil),
			act(10*sec, ActLock, 7, nil), // the seat is ignored
			join(11*sec, "x", group.Member, JoinResult{Refused: RefuseLocked}),
			join(12*sec, "y", group.Facilitator, JoinResult{Seat: 3}, greet(3), chimeJ(3)),
			act(13*sec, ActUnlock, 0, nil),
			act(13*sec, ActUnlock, 0, nil),
			join(14*sec, "x", group.Member, JoinResult{Seat: 4}, greet(4), chimeJ(4)),
		)},
		{"lecture on and off, once each", peer, script(
			seats("FMM"),
			act(10*sec, ActLectureOn, 0, nil, room(0, pr.EveryoneMuted)),
			act(11*sec, ActLectureOn, 0, nil),
			heard(map[int]bool{1: true, 2: false, 3: false}),
			pre(keys(12*sec, 2, "*9"), keys(13*sec, 1, "*8")),
			heard(map[int]bool{2: true}),
			act(14*sec, ActLectureOff, 0, nil, room(0, pr.EveryoneMaySpeak)),
			state(noFloor),
			heard(map[int]bool{1: true, 2: true, 3: true}),
			act(15*sec, ActLectureOff, 0, nil),
		)},
		{"lecture mode reaches the lobby too", facLed, script(
			seats("M"),
			act(10*sec, ActLectureOn, 0, nil, room(0, pr.EveryoneMuted)),
			join(11*sec, "f", group.Facilitator, JoinResult{Seat: 2},
				greet(2), music(1, false), sayQ(1, pr.FacilitatorJoined), chimeJ(2)),
			heard(map[int]bool{1: false, 2: true}),
		)},
		{"end hangs everyone up, removed callers already going", peer, script(
			seats("FMM"),
			pre(act(5*sec, ActRemove, 3, nil)),
			act(10*sec, ActEnd, 0, nil, endAll(ReasonEndedByOperator, 1, 2)...),
			sessionEnded,
			act(11*sec, ActEnd, 0, ErrEnded),
			act(11*sec, ActMute, 1, ErrEnded),
			join(12*sec, "x", group.Facilitator, JoinResult{Refused: RefuseEnded}),
		)},
		{"end in the lobby", facLed, script(
			seats("MM"),
			act(10*sec, ActEnd, 0, nil, endAll(ReasonEndedByOperator, 1, 2)...),
			tick(time10m),
		)},
		{"timers due run first: an expired grace ends before the action", facLed, script(
			seats("FM"),
			leave(10*sec, 1, chimeL(1), room(0, pr.FacilitatorLeft)),
			act(10*sec+2*mn, ActMakeFacilitator, 2, ErrEnded, endAll(ReasonGraceExpired, 2)...),
			sessionEnded,
		)},
	})
}

// sessionState is everything Act and Key may change, for comparing two
// sessions.
type sessionState struct {
	View                          []SeatView
	Lecture, Locked, Timer, Ended bool
	Lobby                         bool
	Present, Members, Facs, Floor int
	Hands                         []int
	Removed                       []string
	Next                          time.Time
	HasNext                       bool
	GraceAt, ChimeAt, FloorEndAt  time.Time
	Departing                     []int
	TalkSince                     []time.Time
	Announce                      []time.Time
	RejoinIDs                     []string
}

func stateOf(s *Session) sessionState {
	st := sessionState{
		View: s.View(), Lecture: s.hearing.lecture, Locked: s.door.locked, Timer: s.floor.timer, Ended: s.ended, Lobby: s.presence.lobby,
		Present: s.Seats().Present(), Members: s.seats.members, Facs: s.seats.facs, Floor: s.floor.seat,
		Hands: slices.Clone(s.floor.hands), GraceAt: s.presence.graceAt, ChimeAt: s.floor.chimeAt, FloorEndAt: s.floor.endAt,
	}
	st.Next, st.HasNext = s.NextDeadline()
	for id := range s.door.removed {
		st.Removed = append(st.Removed, id)
	}
	slices.Sort(st.Removed)
	for id := range s.door.rejoin {
		st.RejoinIDs = append(st.RejoinIDs, id)
	}
	slices.Sort(st.RejoinIDs)
	for _, c := range s.seats.live {
		if c.departing {
			st.Departing = append(st.Departing, c.seat)
		}
		st.TalkSince = append(st.TalkSince, c.unheardTalkSince)
		if c.placement != InRoom {
			st.Announce = append(st.Announce, c.announceAt)
		}
	}
	return st
}

// setup builds a session from a script whose effects are not asserted.
func setup(t *testing.T, cfg Config, evs []ev) *Session {
	t.Helper()
	return run(t, cfg, pre(slices.Clone(evs)...))
}

// busyRoom is a peer room with a facilitator (1), members in the room
// (2, 3 with a raised hand, 4 self-muted and facilitator-muted, 6 with the
// floor in lecture mode), a member in waiting (5), talkers and the share
// timer on.
var busyRoom = script(
	seats("FMMMMM"),
	keys(5*sec, 1, "*4"), keys(5*sec, 1, "*5"),
	keys(5*sec, 6, "*9"), keys(5*sec, 3, "*9"), keys(6*sec, 1, "*8"),
	keys(6*sec, 4, "*6"), keys(6*sec, 1, "*14#1"), keys(6*sec, 1, "*15#3"),
	talk(7*sec, 2, true), talk(7*sec, 4, true),
)

// quietRoom is a peer room without lecture mode: a facilitator (1), a
// member (2), a member muted by the facilitator (3), a member in waiting
// (4).
var quietRoom = script(
	seats("FMMM"),
	keys(5*sec, 1, "*13#1"), keys(5*sec, 1, "*14#3"),
)

// TestActIsIdempotent applies every action to every seat of a few rooms
// twice: the second time changes nothing and says nothing (or fails the
// same way as the first).
func TestActIsIdempotent(t *testing.T) {
	rooms := []struct {
		name  string
		cfg   Config
		evs   []ev
		seats int
	}{
		{"busy", peer, busyRoom, 7},
		{"quiet", peer, quietRoom, 5},
		{"lobby", facLed, script(seats("MM"), keys(5*sec, 1, "*6")), 3},
		{"grace", facLed, script(seats("FMM"), leave(5*sec, 1)), 4},
	}
	for _, rm := range rooms {
		for a := ActMute; a <= ActEnd; a++ {
			for seat := 0; seat <= rm.seats; seat++ {
				if !a.SeatAction() && seat > 0 {
					break
				}
				t.Run(fmt.Sprintf("%s/%v/%d", rm.name, a, seat), func(t *testing.T) {
					s := setup(t, rm.cfg, rm.evs)
					now := t0.Add(20 * sec)
					_, err1 := s.Act(a, seat, now)
					before := stateOf(s)
					effs, err2 := s.Act(a, seat, now.Add(sec))
					after := stateOf(s)
					checkInvariants(t, s, "second Act")
					if len(effs) != 0 {
						t.Errorf("second %v said %s", a, fmtEffects(effs))
					}
					switch {
					case a == ActEnd && err1 == nil:
						if !errors.Is(err2, ErrEnded) {
							t.Errorf("second end: %v, want ErrEnded", err2)
						}
					case (err1 == nil) != (err2 == nil) || err1 != nil && err1.Error() != err2.Error():
						t.Errorf("errors %v then %v", err1, err2)
					}
					if !reflect.DeepEqual(before, after) {
						t.Errorf("second %v changed the state:\n%+v\n%+v", a, before, after)
					}
				})
			}
		}
	}
}

// keypadOnly drops what only the pressing facilitator hears: the answers
// to their own keys (Say with Interrupt to the presser).
func keypadOnly(presser int, effs []Effect) []Effect {
	var out []Effect
	for _, e := range effs {
		if e.Kind == Say && e.Seat == presser && e.Interrupt {
			continue
		}
		if e.Reason == ReasonEndedByFacilitator {
			e.Reason = ReasonEndedByOperator // the same ending, told apart in logs
		}
		out = append(out, e)
	}
	return out
}

// TestActMatchesKeypad checks that each action leaves the session exactly
// as its keypad equivalent does, and that the room and the target hear the
// same things.
func TestActMatchesKeypad(t *testing.T) {
	rows := []struct {
		name    string
		cfg     Config
		evs     []ev
		act     Action
		seat    int
		presser int
		keys    string
	}{
		{"mute a member", peer, quietRoom, ActMute, 2, 1, "*12#1"},
		{"mute oneself", peer, quietRoom, ActMute, 1, 1, "*11#1"},
		{"mute a waiting member", peer, quietRoom, ActMute, 4, 1, "*14#1"},
		{"mute a self-muted talker", peer, busyRoom, ActMute, 2, 1, "*12#1"},
		{"unmute", peer, quietRoom, ActUnmute, 3, 1, "*13#2"},
		{"unmute a self-muted member", peer, busyRoom, ActUnmute, 4, 1, "*14#2"},
		{"unmute in lecture mode grants the floor", peer, busyRoom, ActUnmute, 3, 1, "*13#2"},
		{"unmute the facilitator-muted member in lecture mode", peer, busyRoom, ActUnmute, 4, 1, "*14#2"},
		{"wait", peer, quietRoom, ActWait, 2, 1, "*12#3"},
		{"wait the floor holder", peer, busyRoom, ActWait, 6, 1, "*16#3"},
		{"wait a raised hand", peer, busyRoom, ActWait, 3, 1, "*13#3"},
		{"return", peer, quietRoom, ActReturn, 4, 1, "*14#3"},
		{"return in lecture mode", peer, busyRoom, ActReturn, 5, 1, "*15#3"},
		{"remove", peer, quietRoom, ActRemove, 2, 1, "*12#41"},
		{"remove the floor holder", peer, busyRoom, ActRemove, 6, 1, "*16#41"},
		{"remove a waiting member", peer, quietRoom, ActRemove, 4, 1, "*14#41"},
		{"make facilitator", peer, quietRoom, ActMakeFacilitator, 2, 1, "*12#5"},
		{"make the floor holder facilitator", peer, busyRoom, ActMakeFacilitator, 6, 1, "*16#5"},
		{"make a raised hand facilitator", peer, busyRoom, ActMakeFacilitator, 3, 1, "*13#5"},
		{"lock", peer, quietRoom, ActLock, 0, 1, "*7"},
		{"unlock", peer, script(quietRoom, keys(6*sec, 1, "*7")), ActUnlock, 0, 1, "*7"},
		{"lecture on", peer, quietRoom, ActLectureOn, 0, 1, "*5"},
		{"lecture on with talkers", peer, script(quietRoom, talk(6*sec, 2, true)), ActLectureOn, 0, 1, "*5"},
		{"lecture off", peer, busyRoom, ActLectureOff, 0, 1, "*5"},
		{"end", peer, busyRoom, ActEnd, 0, 1, "*#1"},
		{"end facilitator-led", facLed, script(seats("FMM"), keys(5*sec, 1, "*13#3")), ActEnd, 0, 1, "*#1"},
	}
	for _, row := range rows {
		t.Run(row.name, func(t *testing.T) {
			now := t0.Add(20 * sec)
			byKeys := setup(t, row.cfg, row.evs)
			var keyEffs []Effect
			for i := 0; i < len(row.keys); i++ {
				keyEffs = append(keyEffs, byKeys.Key(row.presser, row.keys[i], now)...)
			}
			byAct := setup(t, row.cfg, row.evs)
			actEffs, err := byAct.Act(row.act, row.seat, now)
			if err != nil {
				t.Fatalf("Act(%v, %d): %v", row.act, row.seat, err)
			}
			checkInvariants(t, byAct, "Act")
			if want := keypadOnly(row.presser, keyEffs); !sameEffects(actEffs, want) {
				t.Errorf("Act said %s\nkeys %q said %s", fmtEffects(actEffs), row.keys, fmtEffects(want))
			}
			if a, k := stateOf(byAct), stateOf(byKeys); !reflect.DeepEqual(a, k) {
				t.Errorf("state after Act differs from keys %q:\n act %+v\nkeys %+v", row.keys, a, k)
			}
			// The next minutes unfold the same way too.
			for later := now; later.Before(now.Add(5 * mn)); later = later.Add(5 * sec) {
				a, k := byAct.Tick(later), keypadOnly(row.presser, byKeys.Tick(later))
				if !sameEffects(a, k) {
					t.Fatalf("Tick@%v: act %s keys %s", later.Sub(t0), fmtEffects(a), fmtEffects(k))
				}
			}
		})
	}
}

func TestActionNames(t *testing.T) {
	want := []string{"mute", "unmute", "wait", "return", "remove", "facilitator",
		"lock", "unlock", "lecture-on", "lecture-off", "end"}
	for i, name := range want {
		a := ActMute + Action(i)
		if a.String() != name {
			t.Errorf("%d.String() = %q, want %q", a, a.String(), name)
		}
		got, err := ParseAction(name)
		if err != nil || got != a {
			t.Errorf("ParseAction(%q) = %v, %v", name, got, err)
		}
		if a.SeatAction() != (i < 6) {
			t.Errorf("%v.SeatAction() = %v", a, a.SeatAction())
		}
	}
	for _, bad := range []string{"", "Mute", "lecture", "action(1)", "mute ", "facilitators"} {
		if a, err := ParseAction(bad); !errors.Is(err, ErrUnknownAction) {
			t.Errorf("ParseAction(%q) = %v, %v", bad, a, err)
		}
	}
	for _, a := range []Action{0, ActEnd + 1, -1} {
		if a.SeatAction() || a.String() != fmt.Sprintf("action(%d)", int(a)) {
			t.Errorf("invalid action %d: %q seat %v", int(a), a.String(), a.SeatAction())
		}
	}
}

func TestActErrorsNameActionAndSeat(t *testing.T) {
	s := setup(t, peer, seats("FM"))
	_, err := s.Act(ActRemove, 1, t0.Add(10*sec))
	if err == nil || err.Error() != "remove seat 1: "+ErrFacilitator.Error() {
		t.Errorf("error %q", err)
	}
	_, err = s.Act(ActMute, 9, t0.Add(10*sec))
	if err == nil || err.Error() != "mute seat 9: "+ErrNoSeat.Error() {
		t.Errorf("error %q", err)
	}
}
