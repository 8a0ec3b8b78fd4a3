package rules

import (
	"slices"
	"testing"

	"github.com/groupbridge/groupbridge/internal/group"
	pr "github.com/groupbridge/groupbridge/media/prompt"
)

func TestAudience(t *testing.T) {
	// 1 facilitator, 2 member in waiting, 3 member, 4 member being
	// removed, 5 facilitator; 6 left.
	s := run(t, peer, script(
		seats("FMMMFM"),
		pre(keys(5*sec, 1, "*12#3"), keys(6*sec, 1, "*3"), keys(6*sec, 1, "1")),
		pre(leave(7*sec, 6), keys(8*sec, 1, "*14#4"), keys(8*sec, 1, "1")),
	))
	rows := []struct {
		e    Effect
		want []int
	}{
		{sayQ(2, pr.WaitingMessage), []int{2}},
		{sayQ(6, pr.Muted), nil},
		{music(2, true), []int{2}},
		{hang(4, ReasonRemoved), []int{4}},
		{shareChime(3), []int{3}},
		{chimeJ(3), []int{1, 5}},
		{chimeL(6), []int{1, 3, 5}},
		{room(0, pr.EveryoneMuted), []int{1, 2, 3, 5}},
		{room(1, pr.FacilitatorJoined), []int{2, 3, 5}},
		{facs(0, pr.Caller, "3", pr.RaisedAHand), []int{1, 5}},
		{facs(5, pr.Caller, "3", pr.RaisedAHand), []int{1}},
		{endE(ReasonEndedByFacilitator), nil},
	}
	for _, row := range rows {
		if got := s.Seats().Audience(row.e, nil); !slices.Equal(got, row.want) {
			t.Errorf("Audience(%v) = %v, want %v", row.e, got, row.want)
		}
	}
}

func TestStrings(t *testing.T) {
	rows := []struct{ got, want string }{
		{RefuseNone.String(), "none"},
		{RefuseFull.String(), "full"},
		{RefuseLocked.String(), "locked"},
		{RefuseRemoved.String(), "removed"},
		{RefuseEnded.String(), "ended"},
		{RefuseReason(9).String(), "refuse(9)"},
		{InRoom.String(), "room"},
		{Waiting.String(), "waiting"},
		{Lobby.String(), "lobby"},
		{Placement(5).String(), "placement(5)"},
		{Say.String(), "Say"},
		{SayRoom.String(), "SayRoom"},
		{SayFacilitators.String(), "SayFacilitators"},
		{Chime.String(), "Chime"},
		{HoldMusic.String(), "HoldMusic"},
		{Hangup.String(), "Hangup"},
		{End.String(), "End"},
		{EffectKind(42).String(), "effect(42)"},
		{ChimeJoin.String(), "join"},
		{ChimeLeave.String(), "leave"},
		{ChimeShareLimit.String(), "share-limit"},
		{ChimeKind(3).String(), "chime(3)"},
		{sayI(4, pr.Caller, "4", pr.YouHaveTheFloor).String(), "Say(4 [caller 4 you_have_the_floor] interrupt)"},
		{room(2, pr.EveryoneMuted).String(), "SayRoom(2 [everyone_muted])"},
		{music(3, true).String(), "HoldMusic(3 on)"},
		{music(3, false).String(), "HoldMusic(3 off)"},
		{shareChime(5).String(), "Chime(5 share-limit)"},
		{hang(6, ReasonRemoved).String(), "Hangup(6 removed)"},
		{endE(ReasonGraceExpired).String(), "End(0 grace-expired)"},
	}
	for _, row := range rows {
		if row.got != row.want {
			t.Errorf("got %q, want %q", row.got, row.want)
		}
	}
}

func TestConfigDefaults(t *testing.T) {
	got := Config{EndGrace: -1, MaxMembers: -3, StarTimeout: -sec}.withDefaults()
	want := Config{
		ShareLimit: DefaultShareLimit, RejoinWindow: DefaultRejoinWindow, StarTimeout: DefaultStarTimeout,
		MenuTimeout: DefaultMenuTimeout, AnnounceEvery: DefaultAnnounceEvery, FloorGrace: DefaultFloorGrace,
		TalkReminderAfter: DefaultTalkReminderAfter, ReminderEvery: DefaultReminderEvery,
		OpenTalkAfter: DefaultOpenTalkAfter,
	}
	if got != want {
		t.Errorf("defaults %+v, want %+v", got, want)
	}
	// Set timings are kept.
	custom := Config{LedBy: group.LedByFacilitator, MaxMembers: 5, ShareLimit: mn, EndGrace: sec, RejoinWindow: 1,
		StarTimeout: 2, MenuTimeout: 3, AnnounceEvery: 4, FloorGrace: 5, TalkReminderAfter: 6, ReminderEvery: 7,
		OpenTalkAfter: 8}
	if got := custom.withDefaults(); got != custom {
		t.Errorf("custom %+v changed to %+v", custom, got)
	}
}

// TestCustomTimings runs the timers with a configuration's own values.
func TestCustomTimings(t *testing.T) {
	cfg := Config{LedBy: group.LedByFacilitator, EndGrace: 5 * sec, RejoinWindow: 10 * sec, StarTimeout: sec,
		MenuTimeout: 2 * sec, AnnounceEvery: 4 * sec, TalkReminderAfter: sec, ReminderEvery: 3 * sec}
	run(t, cfg, script(
		join(0, "m", group.Member, JoinResult{Seat: 1}, greet(1, pr.FirstHere), music(1, true), sayQ(1, pr.FacilitatorNotJoined)),
		tick(4*sec, sayQ(1, pr.FacilitatorNotJoined)),
		join(5*sec, "f", group.Facilitator, JoinResult{Seat: 2}, greet(2), music(1, false), sayQ(1, pr.FacilitatorJoined), chimeJ(2)),
		keys(6*sec, 1, "*"),
		keys(7*sec, 1, "6"), // star expired after 1 s
		keys(8*sec, 2, "*#", sayI(2, pr.EndConfirm)),
		tick(10*sec, sayQ(2, pr.Cancelled)),
		pre(keys(11*sec, 1, "*6")),
		talk(11*sec, 1, true),
		tick(12*sec, sayQ(1, pr.ReminderUnmute)),
		tick(15*sec, sayQ(1, pr.ReminderUnmute)),
		leave(16*sec, 1, chimeL(1)),
		join(26*sec, "m", group.Member, JoinResult{Seat: 3}, greet(3), chimeJ(3)), // window passed
		leave(27*sec, 2, chimeL(2), room(0, pr.FacilitatorLeft)),
		tick(32*sec, endAll(ReasonGraceExpired, 3)...),
	))
}
