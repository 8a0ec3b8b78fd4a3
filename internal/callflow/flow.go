// Package callflow owns a call's life once it is answered: admission (the
// PIN limits), the PIN prompt, who the caller is (identity keys and log
// tags), joining the group's room, and ending with a reason. Every call
// that is not admitted goes through one door, refuse.
//
// It must not know how the process is composed or how configuration files
// are read (its collaborators and settings are handed in by internal/app),
// nor the SIP dialog internals: a call is the Call interface, which
// sipua's calls satisfy through a thin adapter in app.
package callflow

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/groupbridge/groupbridge/internal/attendance"
	"github.com/groupbridge/groupbridge/internal/conference"
	"github.com/groupbridge/groupbridge/internal/conference/rules"
	"github.com/groupbridge/groupbridge/internal/group"
	"github.com/groupbridge/groupbridge/internal/guard"
	"github.com/groupbridge/groupbridge/internal/lobby"
	"github.com/groupbridge/groupbridge/internal/logging"
	"github.com/groupbridge/groupbridge/internal/readings"
	"github.com/groupbridge/groupbridge/internal/schedule"
	"github.com/groupbridge/groupbridge/internal/wallclock"
	"github.com/groupbridge/groupbridge/media/pcm"
	"github.com/groupbridge/groupbridge/media/prompt"
)

// Caller is what identity and labels need of a call.
type Caller interface {
	Caller() string // the normalised number, "" for none
	CallerPrivate() bool
	NoIdentity() bool
}

// Call is an answered call as the flow drives it.
type Call interface {
	Caller
	ID() string
	Label() string // fixed at answer (Flow.Label)
	Dialed() string
	User() string // the sip.users account of an untrusted source; "" when trusted
	SourceIP() netip.Addr
	Stream() pcm.Stream
	Digits() <-chan byte
	Context() context.Context // done when the call is gone
	Hangup(reason string)
	// Admitted tells the SIP layer the call left the PIN prompt (it no
	// longer counts against the setup caps).
	Admitted()
}

// Member is a caller's seat in a room.
type Member interface {
	Key(d byte)
	Done() <-chan struct{}
	Reason() string
	Leave()
	Seat() int
	Restored() bool
}

// Metrics are the series a call's life moves.
type Metrics interface {
	CallOutcome(outcome string)
	PINFailure(groupScoped bool)
	PINAlarm(groupScoped bool)
	PINAttack(groupScoped bool)
}

// Settings are what a reload may change. A call takes one snapshot when it
// starts, so a reload never changes the rules mid-call.
type Settings struct {
	Groups []group.Group
	// Prompts is the default language's set of a prompt.Bundle holding
	// every configured language (Set.In).
	Prompts *prompt.Set
	// Readings hold each group's greeting (nil: none).
	Readings *readings.Library
	// Languages are offered on numbers no group claims (prompts.languages),
	// *1 the first.
	Languages []string
	// For the attack log lines: limits.pin_failure_alarm, pin_budget,
	// pin_budget_bridge.
	PINFailureAlarm, PINBudget, PINBudgetBridge int
}

// Config is what a Flow is built from: its collaborators and settings.
type Config struct {
	Settings func() *Settings // the latest; never nil
	Lobby    *lobby.Lobby
	// Join seats a caller in its group's room: conference.Conference.Join
	// on a single node; in a cluster, the room here or, relayed, on the
	// node that owns it. An error wrapping ErrUnavailable refuses the
	// caller with an apology (the room's owner cannot be found).
	Join func(Call, group.Group, conference.JoinRequest) (Member, error)
	// JoinHere seats the caller of another node's internal leg in the
	// room on this node (ServeLeg); nil refuses every internal leg.
	JoinHere func(group.Group, conference.JoinRequest) (Member, error)
	// Rejoining reports whether a caller (by identity) would get their
	// seat back in the group's live session (conference.Conference.
	// Rejoining): they skip the group's greeting. Nil: nobody is.
	Rejoining func(g group.Group, identity string) bool
	Guard     *guard.PINGuard
	Budget    *guard.Budget
	Metrics   Metrics
	Log       *slog.Logger
	// Key is the per-start HMAC key for recognising callers; memory only.
	Key [32]byte
	// IdentityKey, when set, replaces Key: the key of the moment (a
	// cluster's shared key of the day), so that every node recognises a
	// caller alike.
	IdentityKey func(now time.Time) [32]byte
	// MaskedCallers: log.callers is "masked" (else log tags).
	MaskedCallers bool
	// TagZone is where a log tag's day changes.
	TagZone *time.Location
	// Clock is the flow's time: decisions and waits; nil is the real time.
	Clock wallclock.Clock
	// GuardOffTick: the PIN limits ask Redis (a cluster), so a wrong
	// facilitator PIN typed in the room is counted off the room's tick.
	GuardOffTick bool
	// Attendance counts wrong PINs per dialled number and callers told a
	// group without a session is closed; nil counts nothing.
	Attendance attendance.Recorder
}

// noAttendance is Config.Attendance when none is given.
type noAttendance struct{}

func (noAttendance) Session(attendance.Session) {}
func (noAttendance) WrongPIN(string, time.Time) {}
func (noAttendance) Closed(string, time.Time)   {}

// Flow carries answered calls through their life.
type Flow struct {
	cfg      Config
	tags     *logging.Tags
	alarmLog [2]logging.Throttle // the PIN-rate alarm's log lines: bridge, group
}

// New returns a Flow; every field of cfg but Clock is required.
func New(cfg Config) (*Flow, error) {
	var missing []string
	for name, absent := range map[string]bool{
		"Settings": cfg.Settings == nil, "Lobby": cfg.Lobby == nil, "Join": cfg.Join == nil,
		"Guard": cfg.Guard == nil, "Budget": cfg.Budget == nil, "Metrics": cfg.Metrics == nil,
		"Log": cfg.Log == nil, "TagZone": cfg.TagZone == nil,
	} {
		if absent {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		slices.Sort(missing)
		return nil, fmt.Errorf("callflow: Config.%s missing", strings.Join(missing, ", Config."))
	}
	cfg.Clock = wallclock.Or(cfg.Clock)
	if cfg.Attendance == nil {
		cfg.Attendance = noAttendance{}
	}
	f := &Flow{cfg: cfg}
	// A caller's tag outlives midnight as long as a rejoin or a run of
	// wrong PINs may still link their calls.
	f.tags = logging.NewTags(max(rules.DefaultRejoinWindow, cfg.Guard.Memory()), cfg.TagZone)
	return f, nil
}

// Serve carries an answered call through the PIN prompt into its room and
// returns when the call is over.
func (f *Flow) Serve(c Call) {
	st := f.cfg.Settings()
	id := f.Identity(c)
	who := f.caller(c, id)
	defer func() { f.tags.Touch(id, f.cfg.Clock.Now()) }()
	if blocked, _ := f.cfg.Guard.Blocked(who, f.cfg.Clock.Now()); blocked {
		f.refuse(c, st, PINBlocked, "")
		return
	}
	entry := f.cfg.Lobby.Enter(c.Stream())
	defer entry.Leave()
	join, reason, lang := f.runIVR(c, entry, st, id, who)
	// From here on the caller hears their own language, refusals too.
	st = st.in(lang)
	entry.SetLanguage(lang)
	if join == nil {
		if reason == "" {
			f.cfg.Metrics.CallOutcome(outcomeHungUpInIVR)
			return
		}
		entry.Leave()
		f.refuse(c, st, reason, "")
		return
	}
	g := st.Groups[join.Group]
	// Outside its hours a group takes members only while a facilitator
	// is in its room (an extra meeting); the room decides, atomically.
	// Such members get no greeting: most are told it is closed.
	next, closed := f.closedNow(g)
	closed = closed && join.Role == group.Member
	greeting := greetDone
	if !closed {
		greeting = f.greet(c, entry, st, g, id)
	}
	switch greeting {
	case greetGone:
		f.cfg.Metrics.CallOutcome(outcomeHungUpInIVR)
		return
	case greetFailed:
		entry.Leave()
		f.refuse(c, st, InternalError, "")
		return
	}
	entry.Leave()
	if !closed && len(g.Meets) > 0 && join.Role == group.Member {
		// The greeting may have outlasted the meeting's window.
		next, closed = f.closedNow(g)
	}
	req := conference.JoinRequest{Stream: c.Stream(), Role: join.Role, Identity: id,
		Masked: c.Label(), CallID: c.ID(), FacilitatorPIN: f.facilitatorPIN(c, st, g, id, who), Language: lang}
	req.OnlyWithFacilitator = closed
	p, err := f.cfg.Join(c, g, req)
	if err != nil {
		r := joinRefusal(err)
		if errors.Is(err, conference.ErrNoSession) {
			// A room's refusal is in its session's record; this one has
			// no session to be in.
			f.cfg.Attendance.Closed(g.Name, f.cfg.Clock.Now())
		}
		if r == Closed {
			// "It meets next on Tuesday at seven thirty P M."
			when := append([][]int16{prompt.Pause(300 * time.Millisecond)}, clipsOf(st, prompt.MeetsNext)...)
			when = append(when, st.Prompts.Time(next.Weekday(), next.Hour(), next.Minute())...)
			f.refuse(c, st, r, g.Name, append(when, prompt.Pause(300*time.Millisecond))...)
			return
		}
		f.refuse(c, st, r, g.Name)
		return
	}
	// Whatever ends this goroutine, a panic included, the caller leaves the
	// room: otherwise a call that is gone keeps its seat and the session.
	defer func() { p.Leave() }()
	c.Admitted() // out of the PIN prompt: no longer counts against limits.setup_per_*
	f.cfg.Budget.Remember(f.KnownKey(id, g.Name), f.cfg.Clock.Now())
	f.cfg.Metrics.CallOutcome(outcomeJoined)
	f.cfg.Log.Info("call joined", "call", c.ID(), "caller", c.Label(), "group", g.Name,
		"role", join.Role.String(), "seat", p.Seat(), "restored", p.Restored(), "outcome", outcomeJoined)
	for {
		select {
		case d := <-c.Digits():
			p.Key(d)
		case <-p.Done():
			if p.Reason() == conference.ReasonMoved {
				// The room moved to another node (a failover): the caller
				// joins it there and keeps their seat.
				np := f.rejoin(c, st, g, req)
				if np == nil {
					return
				}
				p.Leave()
				p = np
				continue
			}
			c.Hangup(p.Reason())
			return
		case <-c.Context().Done():
			p.Leave()
			return
		}
	}
}

// rejoin joins a caller whose room moved to another node again, where it
// now is; the room tells them the line had a problem. It returns nil when
// the join failed, after letting the caller go with the reason.
func (f *Flow) rejoin(c Call, st *Settings, g group.Group, req conference.JoinRequest) Member {
	req.Reconnect = true
	req.OnlyWithFacilitator = false // they were in the meeting already
	p, err := f.cfg.Join(c, g, req)
	if err != nil {
		r := joinRefusal(err)
		f.cfg.Log.Warn("call lost its room in a move", "call", c.ID(), "caller", c.Label(), "group", g.Name,
			"outcome", string(r))
		f.refuse(c, st, r, g.Name)
		return nil
	}
	f.cfg.Log.Info("call moved with its room", "call", c.ID(), "caller", c.Label(), "group", g.Name,
		"seat", p.Seat(), "restored", p.Restored())
	return p
}

// What became of a greeting.
const (
	greetDone   = iota // played, skipped, or none: join
	greetGone          // the caller hung up
	greetFailed        // the lobby stopped serving the caller (a recovered panic)
)

// greet plays the group's greeting to a caller whose PIN was right, before
// the join, unless they are rejoining (a dropped call back within the
// rejoin window has heard it). '#' skips it; other keys are dropped, as
// nobody listens to them yet.
func (f *Flow) greet(c Call, entry *lobby.Entry, st *Settings, g group.Group, id string) int {
	clip := st.Readings.For(g.Name)
	if clip == nil || clip.Greeting == nil {
		return greetDone
	}
	if f.cfg.Rejoining != nil && f.cfg.Rejoining(g, id) {
		return greetDone
	}
	entry.Play(clip.Greeting)
	// Bounded even if the mixing clock stalls: the greeting's length and
	// a little more.
	limit := f.cfg.Clock.NewTimer(time.Duration(len(clip.Greeting))*time.Second/pcm.SampleRate + 2*time.Second)
	defer limit.Stop()
	for {
		select {
		case d := <-c.Digits():
			if d == '#' {
				entry.Stop()
				return greetDone
			}
		case <-entry.Finished():
			return greetDone
		case <-limit.C():
			return greetDone
		case <-entry.Failed():
			f.cfg.Log.Error("caller's greeting playback panicked, letting the caller go", "call", c.ID(),
				"panic", fault(entry.Fault()))
			return greetFailed
		case <-c.Context().Done():
			return greetGone
		}
	}
}

// closedNow reports whether g is outside its meeting hours now and, if
// so, when its next meeting starts (in the group's zone). A group without
// hours is always open; so is one whose hours do not parse (config
// validation refuses them), which is logged.
func (f *Flow) closedNow(g group.Group) (next time.Time, closed bool) {
	h, err := schedule.New(g.Timezone, g.Meets, g.OpenEarly, g.Overrun)
	if err != nil {
		f.cfg.Log.Error("meeting hours unreadable, the group stays open", "group", g.Name, "error", err.Error())
		return time.Time{}, false
	}
	if h == nil {
		return time.Time{}, false
	}
	w, open := h.At(f.cfg.Clock.Now())
	return w.Start.In(h.Week.Loc), !open
}

// The outcomes of calls that were not refused.
const (
	outcomeJoined      = "joined"
	outcomeHungUpInIVR = "hung-up-in-ivr"
)

// in returns st speaking lang: a copy whose Prompts is lang's set.
func (st *Settings) in(lang string) *Settings {
	c := *st
	c.Prompts = st.Prompts.In(lang)
	return &c
}

// clipsOf is the named prompts' clips; a name the set lacks says nothing.
func clipsOf(st *Settings, names ...string) [][]int16 {
	var clips [][]int16
	for _, n := range names {
		if clip, ok := st.Prompts.Clip(n); ok {
			clips = append(clips, clip)
		}
	}
	return clips
}

// sayAndHangup plays clips to a caller outside any room, then hangs up.
func (f *Flow) sayAndHangup(c Call, reason string, clips ...[]int16) {
	entry := f.cfg.Lobby.Enter(c.Stream())
	defer entry.Leave()
	entry.Play(clips...)
	limit := f.cfg.Clock.NewTimer(15 * time.Second)
	defer limit.Stop()
	select {
	case <-entry.Finished():
	case <-c.Context().Done():
	case <-limit.C():
	}
	c.Hangup(reason)
}

// fault describes a recovered panic for the log without any digits it may
// carry (a PIN, a number).
func fault(v any) string { return logging.RedactDigits(fmt.Sprint(v)) }

// Leg is what another node's signed internal leg says of its caller: the
// room and the seat's terms, never a number.
type Leg struct {
	Group    string
	Role     group.Role
	Identity string // the caller's identity, or a per-call token
	Language string
	Via      string // the relaying node
	// Reconnect: the caller is coming back after a failover.
	Reconnect bool
}

// ServeLeg seats the caller of another node's internal leg in its room on
// this node (Config.JoinHere) and relays its key presses to the seat
// until either side ends. The relaying node ran the PIN prompt, the
// greeting and the PIN limits; this node applies the room's rules as to a
// caller of its own. The call's hang-up carries the room's reason, which
// the relaying node gives its caller.
func (f *Flow) ServeLeg(c Call, leg Leg) {
	st := f.cfg.Settings().in(leg.Language)
	i := slices.IndexFunc(st.Groups, func(g group.Group) bool { return g.Name == leg.Group })
	if i < 0 || f.cfg.JoinHere == nil {
		f.cfg.Log.Info("internal leg refused", "call", c.ID(), "via", leg.Via, "outcome", string(JoinFailed))
		c.Hangup(string(JoinFailed))
		return
	}
	g := st.Groups[i]
	who := guard.Caller{Number: leg.Identity}
	req := conference.JoinRequest{Stream: c.Stream(), Role: leg.Role, Identity: leg.Identity,
		CallID: c.ID(), Language: leg.Language, Via: leg.Via, Reconnect: leg.Reconnect,
		FacilitatorPIN: f.facilitatorPIN(c, st, g, leg.Identity, who)}
	p, err := f.cfg.JoinHere(g, req)
	if err != nil {
		// The relaying node tells its caller why: the reason rides the
		// final answer's hang-up.
		r := joinRefusal(err)
		f.cfg.Log.Info("internal leg refused", "call", c.ID(), "via", leg.Via, "group", g.Name, "outcome", string(r))
		c.Hangup(string(r))
		return
	}
	defer p.Leave()
	c.Admitted()
	f.cfg.Log.Info("relayed call joined", "call", c.ID(), "via", leg.Via, "group", g.Name,
		"role", leg.Role.String(), "seat", p.Seat(), "restored", p.Restored())
	for {
		select {
		case d := <-c.Digits():
			p.Key(d)
		case <-p.Done():
			c.Hangup(p.Reason())
			return
		case <-c.Context().Done():
			p.Leave()
			return
		}
	}
}
