package rules

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/groupbridge/groupbridge/internal/group"
	pr "github.com/groupbridge/groupbridge/media/prompt"
)

// t0 is the fake clock's origin; every event is at t0 + its offset.
var t0 = time.Date(2025, 1, 7, 19, 0, 0, 0, time.UTC)

const (
	sec = time.Second
	mn  = time.Minute
)

var (
	peer   = Config{LedBy: group.LedByPeer}
	facLed = Config{LedBy: group.LedByFacilitator, EndGrace: 2 * mn}
)

type opKind int

const (
	opJoin opKind = iota
	opLeave
	opKeys
	opTalk
	opTick
	opAct
	opCheck
	opPIN
)

// ev is one step of a scenario: an event at t0+at and the exact effects it
// must return (unless skip: a setup step whose effects other rows assert).
type ev struct {
	at    time.Duration
	op    opKind
	seat  int
	id    string
	role  group.Role
	keys  string
	on    bool
	res   JoinResult
	act   Action
	pin   PINVerdict
	err   error // the error Act must return (errors.Is), nil for none
	want  []Effect
	skip  bool
	check func(*testing.T, *Session)
}

func join(at time.Duration, id string, r group.Role, res JoinResult, want ...Effect) ev {
	return ev{at: at, op: opJoin, id: id, role: r, res: res, want: want}
}

func leave(at time.Duration, seat int, want ...Effect) ev {
	return ev{at: at, op: opLeave, seat: seat, want: want}
}

// keys presses every key of ks at the same instant; their effects are
// concatenated.
func keys(at time.Duration, seat int, ks string, want ...Effect) ev {
	return ev{at: at, op: opKeys, seat: seat, keys: ks, want: want}
}

func talk(at time.Duration, seat int, on bool, want ...Effect) ev {
	return ev{at: at, op: opTalk, seat: seat, on: on, want: want}
}

func tick(at time.Duration, want ...Effect) ev {
	return ev{at: at, op: opTick, want: want}
}

// act runs an operator action and expects err (nil: none).
func act(at time.Duration, a Action, seat int, err error, want ...Effect) ev {
	return ev{at: at, op: opAct, act: a, seat: seat, err: err, want: want}
}

func check(fn func(*testing.T, *Session)) ev { return ev{op: opCheck, check: fn} }

// pinAns is the engine's verdict on seat's CheckPIN (Session.PINChecked).
func pinAns(at time.Duration, seat int, v PINVerdict, want ...Effect) ev {
	return ev{at: at, op: opPIN, seat: seat, pin: v, want: want}
}

// pre marks setup steps: run, invariants checked, effects not asserted.
func pre(evs ...ev) []ev {
	for i := range evs {
		evs[i].skip = true
	}
	return evs
}

// seats joins callers 1..n at 0s, 1s, 2s ... with identities "s1", "s2" ...
// (role F for a facilitator, M for a member), effects not asserted.
func seats(roles string) []ev {
	var out []ev
	for i, r := range roles {
		role := group.Member
		if r == 'F' {
			role = group.Facilitator
		}
		out = append(out, join(time.Duration(i)*sec, fmt.Sprintf("s%d", i+1), role, JoinResult{Seat: i + 1}))
	}
	return pre(out...)
}

func script(parts ...any) []ev {
	var out []ev
	for _, p := range parts {
		switch v := p.(type) {
		case ev:
			out = append(out, v)
		case []ev:
			out = append(out, v...)
		default:
			panic(fmt.Sprintf("script: %T", p))
		}
	}
	return out
}

// Effect builders.
func sayI(seat int, p ...string) Effect {
	return Effect{Kind: Say, Seat: seat, Phrase: p, Interrupt: true}
}
func sayQ(seat int, p ...string) Effect     { return Effect{Kind: Say, Seat: seat, Phrase: p} }
func room(leaveOut int, p ...string) Effect { return Effect{Kind: SayRoom, Seat: leaveOut, Phrase: p} }
func facs(leaveOut int, p ...string) Effect {
	return Effect{Kind: SayFacilitators, Seat: leaveOut, Phrase: p}
}
func chimeJ(seat int) Effect              { return Effect{Kind: Chime, Chime: ChimeJoin, Seat: seat} }
func chimeL(seat int) Effect              { return Effect{Kind: Chime, Chime: ChimeLeave, Seat: seat} }
func shareChime(seat int) Effect          { return Effect{Kind: Chime, Chime: ChimeShareLimit, Seat: seat} }
func music(seat int, on bool) Effect      { return Effect{Kind: HoldMusic, Seat: seat, On: on} }
func hang(seat int, reason string) Effect { return Effect{Kind: Hangup, Seat: seat, Reason: reason} }
func checkPIN(seat int, digits string) Effect {
	return Effect{Kind: CheckPIN, Seat: seat, Digits: []byte(digits)}
}
func endE(reason string) Effect { return Effect{Kind: End, Reason: reason} }
func greet(seat int, more ...string) Effect {
	return sayQ(seat, append([]string{pr.YouAreCaller, num(seat)}, more...)...)
}

// endAll is what ending the session returns for the given seats.
func endAll(reason string, seats ...int) []Effect {
	out := []Effect{room(0, pr.SessionEnded), endE(reason)}
	for _, s := range seats {
		out = append(out, hang(s, reason))
	}
	return out
}

func cat(parts ...any) []Effect {
	var out []Effect
	for _, p := range parts {
		switch v := p.(type) {
		case Effect:
			out = append(out, v)
		case []Effect:
			out = append(out, v...)
		}
	}
	return out
}

// Checks.
func heard(want map[int]bool) ev {
	return check(func(t *testing.T, s *Session) {
		t.Helper()
		for seat, w := range want {
			if got := s.Heard(seat); got != w {
				t.Errorf("Heard(%d) = %v, want %v", seat, got, w)
			}
		}
	})
}

func view(seat int, fn func(v SeatView) string) ev {
	return check(func(t *testing.T, s *Session) {
		t.Helper()
		for _, v := range s.View() {
			if v.Seat == seat {
				if msg := fn(v); msg != "" {
					t.Errorf("seat %d: %s (%+v)", seat, msg, v)
				}
				return
			}
		}
		t.Errorf("seat %d not present", seat)
	})
}

func state(fn func(s *Session) string) ev {
	return check(func(t *testing.T, s *Session) {
		t.Helper()
		if msg := fn(s); msg != "" {
			t.Error(msg)
		}
	})
}

func fmtEffects(es []Effect) string {
	if len(es) == 0 {
		return "(none)"
	}
	var b strings.Builder
	for _, e := range es {
		b.WriteString("\n\t")
		b.WriteString(e.String())
	}
	return b.String()
}

// run plays a scenario on a fresh session, asserting every step.
func run(t *testing.T, cfg Config, evs []ev) *Session {
	t.Helper()
	s := New(cfg, t0)
	ids := map[string]bool{}
	for i, e := range evs {
		now := t0.Add(e.at)
		var got []Effect
		label := ""
		switch e.op {
		case opJoin:
			ids[e.id] = true
			res, effs := s.Join(e.id, e.role, now)
			got = effs
			label = fmt.Sprintf("Join(%q, %v)@%v", e.id, e.role, e.at)
			if !e.skip && res != e.res {
				t.Errorf("step %d %s: result %+v, want %+v", i, label, res, e.res)
			}
			if e.skip && res.Seat != e.res.Seat && e.res.Seat != 0 {
				t.Fatalf("step %d %s: setup got seat %d, want %d", i, label, res.Seat, e.res.Seat)
			}
		case opLeave:
			got = s.Leave(e.seat, now)
			label = fmt.Sprintf("Leave(%d)@%v", e.seat, e.at)
		case opKeys:
			for j := 0; j < len(e.keys); j++ {
				got = append(got, s.Key(e.seat, e.keys[j], now)...)
			}
			label = fmt.Sprintf("Keys(%d, %q)@%v", e.seat, e.keys, e.at)
		case opTalk:
			got = s.Talking(e.seat, e.on, now)
			label = fmt.Sprintf("Talking(%d, %v)@%v", e.seat, e.on, e.at)
		case opTick:
			got = s.Tick(now)
			label = fmt.Sprintf("Tick@%v", e.at)
		case opAct:
			var err error
			got, err = s.Act(e.act, e.seat, now)
			label = fmt.Sprintf("Act(%v, %d)@%v", e.act, e.seat, e.at)
			if !errors.Is(err, e.err) { // errors.Is(err, nil) holds only for nil
				t.Errorf("step %d %s: error %v, want %v", i, label, err, e.err)
			}
		case opPIN:
			got = s.PINChecked(e.seat, e.pin, now)
			label = fmt.Sprintf("PINChecked(%d, %v)@%v", e.seat, e.pin, e.at)
		case opCheck:
			e.check(t, s)
			continue
		}
		if !e.skip && !sameEffects(got, e.want) {
			t.Errorf("step %d %s:\n got %s\nwant %s", i, label, fmtEffects(got), fmtEffects(e.want))
		}
		checkEffects(t, s, got, ids, label)
		checkInvariants(t, s, label)
	}
	return s
}

func sameEffects(a, b []Effect) bool {
	if len(a) == 0 && len(b) == 0 {
		return true
	}
	return reflect.DeepEqual(a, b)
}

var promptNames = func() map[string]bool {
	m := map[string]bool{}
	for _, n := range pr.Names() {
		m[n] = true
	}
	return m
}()

var reasons = map[string]bool{ReasonRemoved: true, ReasonGraceExpired: true, ReasonEndedByFacilitator: true, ReasonEndedByOperator: true,
	ReasonMeetingClosed: true}

func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// checkEffects enforces the privacy rule and the shape of every effect:
// phrases are prompt names or seat numbers of present callers, never an
// identity; reasons are known; targets are present.
func checkEffects(t testing.TB, s *Session, effs []Effect, ids map[string]bool, label string) {
	t.Helper()
	present := map[int]bool{}
	for _, c := range s.seats.live {
		present[c.seat] = true
	}
	for _, e := range effs {
		for i, w := range e.Phrase {
			if ids[w] && w != "" {
				t.Errorf("%s: %v speaks an identity", label, e)
			}
			switch {
			case allDigits(w) && i > 0 && e.Phrase[i-1] == pr.ThereAre:
				// The head count: callers present, not being hung up.
				if w != num(s.seats.members+s.seats.facs) {
					t.Errorf("%s: %v: head count %q, want %d", label, e, w, s.seats.members+s.seats.facs)
				}
			case allDigits(w):
				var n int
				fmt.Sscan(w, &n)
				if !present[n] || num(n) != w {
					t.Errorf("%s: %v speaks %q, not the seat of a present caller", label, e, w)
				}
			case !promptNames[w]:
				t.Errorf("%s: %v: %q is not a prompt", label, e, w)
			}
		}
		switch e.Kind {
		case Hangup, End:
			if !reasons[e.Reason] {
				t.Errorf("%s: %v: unknown reason", label, e)
			}
		default:
			if e.Reason != "" {
				t.Errorf("%s: %v: reason on a %v", label, e, e.Kind)
			}
		}
		// Digits only in a CheckPIN, and never in its text; a caller's
		// entry is overwritten once handed over.
		switch {
		case e.Kind != CheckPIN && e.Digits != nil:
			t.Errorf("%s: %v carries digits", label, e)
		case e.Kind == CheckPIN && e.String() != fmt.Sprintf("CheckPIN(%d)", e.Seat):
			t.Errorf("%s: a CheckPIN renders as %q", label, e.String())
		case e.Kind == CheckPIN && len(e.Digits) == 0:
			t.Errorf("%s: a CheckPIN without digits", label)
		}
		targeted := e.Kind == Say || e.Kind == HoldMusic || e.Kind == Hangup || e.Kind == CheckPIN ||
			(e.Kind == Chime && e.Chime == ChimeShareLimit)
		if targeted && !present[e.Seat] {
			t.Errorf("%s: %v targets a seat not present", label, e)
		}
		if (e.Kind == Say || e.Kind == SayRoom || e.Kind == SayFacilitators) && len(e.Phrase) == 0 {
			t.Errorf("%s: %v says nothing", label, e)
		}
	}
}

// wantHeard is the who-is-heard table, written again from View.
func wantHeard(s *Session, v SeatView, departing bool) bool {
	return !s.Ended() && !departing && v.Placement == InRoom && !v.SelfMuted && !v.FacilitatorMuted &&
		(!s.Lecture() || v.Role == group.Facilitator || v.Floor)
}

// checkInvariants checks the session's internal consistency.
func checkInvariants(t testing.TB, s *Session, label string) {
	t.Helper()
	vs := s.View()
	if len(vs) != s.Seats().Present() {
		t.Errorf("%s: View has %d, Present %d", label, len(vs), s.Seats().Present())
	}
	floors, members, facils := 0, 0, 0
	inQueue := map[int]bool{}
	for _, h := range s.floor.hands {
		if inQueue[h] {
			t.Errorf("%s: seat %d twice in the hand queue", label, h)
		}
		inQueue[h] = true
	}
	for i, v := range vs {
		c := s.seats.live[i]
		if s.seats.bySeat[v.Seat] != c || c.seat != v.Seat {
			t.Errorf("%s: seat %d index broken", label, v.Seat)
		}
		if i > 0 && vs[i-1].Seat >= v.Seat {
			t.Errorf("%s: View not by ascending seat", label)
		}
		if s.Seats().Placement(v.Seat) != v.Placement || s.Seats().Role(v.Seat) != v.Role {
			t.Errorf("%s: seat %d Placement/Role %v/%v, View %v/%v", label, v.Seat, s.Seats().Placement(v.Seat), s.Seats().Role(v.Seat), v.Placement, v.Role)
		}
		if want := wantHeard(s, v, c.departing); v.Heard != want || s.Heard(v.Seat) != want {
			t.Errorf("%s: seat %d heard %v/%v, table says %v (%+v)", label, v.Seat, v.Heard, s.Heard(v.Seat), want, v)
		}
		if v.Floor {
			floors++
			if v.Role != group.Member || v.Placement != InRoom || c.departing {
				t.Errorf("%s: floor held by %+v", label, v)
			}
		}
		if v.Hand != inQueue[v.Seat] {
			t.Errorf("%s: seat %d hand %v, queued %v", label, v.Seat, v.Hand, inQueue[v.Seat])
		}
		if v.Hand && (v.Role != group.Member || v.Placement != InRoom || c.departing) {
			t.Errorf("%s: hand raised by %+v", label, v)
		}
		if v.Role == group.Facilitator && v.Placement != InRoom {
			t.Errorf("%s: facilitator out of the room: %+v", label, v)
		}
		// A lobby caller an operator removed keeps their placement until
		// their call is gone.
		if v.Placement == Lobby && !s.presence.lobby && !c.departing {
			t.Errorf("%s: seat %d in the lobby after a facilitator joined", label, v.Seat)
		}
		if !c.departing {
			if v.Role == group.Facilitator {
				facils++
			} else {
				members++
			}
		}
	}
	for _, h := range s.floor.hands {
		if s.seats.get(h) == nil {
			t.Errorf("%s: absent seat %d in the hand queue", label, h)
		}
	}
	for _, absent := range []int{-1, 0, len(s.seats.bySeat), len(s.seats.bySeat) + 5} {
		if s.Heard(absent) || s.Seats().Placement(absent) != InRoom || s.Seats().Role(absent) != group.Member {
			t.Errorf("%s: absent seat %d has a state", label, absent)
		}
	}
	if floors > 1 {
		t.Errorf("%s: %d floor holders", label, floors)
	}
	if s.floor.seat != 0 && floors != 1 {
		t.Errorf("%s: floor %d not present", label, s.floor.seat)
	}
	if members != s.seats.members || facils != s.seats.facs {
		t.Errorf("%s: counted %d members %d facilitators, session says %d %d", label, members, facils, s.seats.members, s.seats.facs)
	}
	if s.presence.lobby && s.seats.facs > 0 {
		t.Errorf("%s: lobby with a facilitator present", label)
	}
	if !s.presence.openAt.IsZero() && (s.presence.facLed || s.seats.facs > 0) {
		t.Errorf("%s: return to open talk pending with facilitator-led %v, %d facilitators", label, s.presence.facLed, s.seats.facs)
	}
	// The deadline bound is never late, and NextDeadline is exact.
	exact, ok := s.earliest()
	if ok && (!s.alarm.has || s.alarm.next.After(exact)) {
		t.Errorf("%s: deadline bound %v (%v) later than %v", label, s.alarm.next, s.alarm.has, exact)
	}
	got, gotOK := s.NextDeadline()
	if gotOK != ok || !got.Equal(exact) {
		t.Errorf("%s: NextDeadline %v %v, want %v %v", label, got, gotOK, exact, ok)
	}
	if s.Ended() && gotOK {
		t.Errorf("%s: ended session has a deadline", label)
	}
	seen := map[int]bool{}
	for _, c := range s.seats.live {
		if c.key != keyPINEntry && (c.nPIN != 0 || c.pin != [len(c.pin)]byte{}) {
			t.Errorf("%s: seat %d keeps PIN digits outside PIN entry", label, c.seat)
		}
		if seen[c.seat] {
			t.Errorf("%s: seat %d twice", label, c.seat)
		}
		seen[c.seat] = true
	}
	if slices.ContainsFunc(s.seats.live, func(c *caller) bool { return c.heard && (c.departing || s.ended) }) {
		t.Errorf("%s: a departing caller is heard", label)
	}
}
