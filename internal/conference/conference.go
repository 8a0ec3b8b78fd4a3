// Package conference holds the rooms: one per group with a live session,
// their seats, roles and the rules of who is heard. Each room is the single
// owner of its state: joins, leaves, key presses, operator actions and
// snapshot requests reach it as commands, which it applies at the start of
// its 20 ms tick on the shared clock, then mixes. Nothing slow (a BYE, a
// prompt load) ever runs inside a tick, and callers waiting for a room's
// answer (Join, Snapshot, Act) wait a bounded time. Wall time (a session's
// start, those bounds) comes from Config.Clock, never the media clock.
//
// It must not know SIP, RTP sockets or the configuration file: a caller is
// a pcm.Stream, a group a group.Group, and what a key press or an operator
// action does is decided by conference/rules.
package conference

import (
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/groupbridge/groupbridge/internal/attendance"
	"github.com/groupbridge/groupbridge/internal/conference/rules"
	"github.com/groupbridge/groupbridge/internal/group"
	"github.com/groupbridge/groupbridge/internal/readings"
	"github.com/groupbridge/groupbridge/internal/wallclock"
	"github.com/groupbridge/groupbridge/media/clock"
	"github.com/groupbridge/groupbridge/media/g711"
	"github.com/groupbridge/groupbridge/media/pcm"
	"github.com/groupbridge/groupbridge/media/prompt"
)

// SharedWriter is implemented by streams that can send a frame many
// streams share, encoded once per codec for all of them (rtpio.Stream
// does). Listeners of a room's common mix are sent it that way; other
// streams get WriteFrame.
type SharedWriter interface {
	WriteShared(sh *g711.Shared)
}

// ErrClosed means the conference is shutting down.
var ErrClosed = errors.New("conference: closed")

// answerWait bounds how long a caller of Join, Snapshot or Act waits for a
// room's tick to answer: a stopped or stuck clock must never hang a call
// or an operator's request.
const answerWait = 5 * time.Second

// Audio is how rooms clean up and mix callers' audio.
type Audio struct {
	// MaxTalkers is how many of the loudest heard talkers are mixed at
	// once (0 means 4).
	MaxTalkers int
	// AGC levels each talker toward a common speech level, with a limiter.
	AGC bool
	// ComfortNoise adds very quiet noise instead of digital silence.
	ComfortNoise bool
}

// Config is what a Conference is built from.
type Config struct {
	// Media is the one 20 ms clock the rooms tick and mix on.
	Media   *clock.Clock
	Prompts *prompt.Set
	// Readings are the groups' readings (nil: none).
	Readings *readings.Library
	Log      *slog.Logger // nil: slog.Default()
	Audio    Audio
	// Clock is wall time: a session's start and the bounded waits for a
	// room's answer (Join, Snapshot, Act, Announce, Leave); nil is the
	// real time. Never the mixing, which runs on Media.
	Clock wallclock.Clock
	// Attendance is handed each session's record when it ends (nil:
	// none are made).
	Attendance attendance.Recorder
	// Mirror is handed a room's session state, on the room's tick, each
	// time it changed (nil: nothing): what another node of a cluster
	// needs to rebuild the room (Restore). It must not block: keep the
	// latest per room and write it elsewhere. The snapshot is the
	// callee's; it holds identities, never for a log.
	Mirror func(room string, snap rules.Snapshot)
	// MirrorEnded is told, once, that a room's session is over (ended,
	// everyone left, or reset after a panic), so its mirror can go. Not
	// on Close: a node stopping leaves its rooms' mirrors for the node
	// that takes them over.
	MirrorEnded func(room string)
	// Fenced, when set, is asked at the start of each of a room's ticks;
	// true holds the room still (no commands, timers or mixing) for that
	// tick: a cluster owner that stalled past its lease must not act on
	// the room (its timers would have run out) before Redis has said
	// whether the room is still its own. Called on the clock: cheap.
	Fenced func(room string) bool
}

// Conference is the set of live rooms.
type Conference struct {
	clock *clock.Clock    // the media clock
	wall  wallclock.Clock // session starts and answer waits
	// prompts is swapped whole by SetPrompts (a reload) while rooms read
	// it on the clock goroutine; a Set is never changed once shared.
	prompts atomic.Pointer[prompt.Set]
	// readings is swapped whole by SetReadings; a room takes its group's
	// when its session starts and keeps them to its end.
	readings atomic.Pointer[readings.Library]
	log      *slog.Logger
	audio    Audio
	record   attendance.Recorder // nil: no attendance
	mirror   func(string, rules.Snapshot)
	unmirror func(string)
	fenced   func(string) bool

	mu     sync.Mutex
	rooms  map[string]*Room
	closed bool

	// Counters for Stats, read without any lock: nRooms follows len(rooms)
	// (written under mu), counts are the sums of what each room's tick
	// publishes.
	nRooms atomic.Int64
	counts [nCounts]atomic.Int64

	faults atomic.Pointer[Faults] // fault tests only; nil in production
}

// New returns a conference whose rooms tick on cfg.Media and speak from
// cfg.Prompts.
func New(cfg Config) *Conference {
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.Audio.MaxTalkers <= 0 {
		cfg.Audio.MaxTalkers = 4
	}
	c := &Conference{clock: cfg.Media, wall: wallclock.Or(cfg.Clock), log: cfg.Log, audio: cfg.Audio,
		record: cfg.Attendance, mirror: cfg.Mirror, unmirror: cfg.MirrorEnded, fenced: cfg.Fenced, rooms: map[string]*Room{}}
	c.prompts.Store(cfg.Prompts)
	c.readings.Store(cfg.Readings)
	return c
}

// SetPrompts makes every room, the running ones included, speak from
// prompts from its next announcement on (a reload of prompts.dir).
// Announcements already playing finish with the clips they started with.
func (c *Conference) SetPrompts(prompts *prompt.Set) { c.prompts.Store(prompts) }

// SetReadings makes sessions that start from now on play from lib (a
// reload); a live session keeps the readings it started with, as it keeps
// the rules it started with.
func (c *Conference) SetReadings(lib *readings.Library) { c.readings.Store(lib) }

// JoinRequest is a caller about to enter a room.
type JoinRequest struct {
	Stream pcm.Stream
	Role   group.Role
	// Identity recognises a caller who calls back (rejoin, removal): an
	// HMAC of the caller number under a per-start key, or "" when the
	// caller has no number. Never the number itself.
	Identity string
	// Masked is the caller as an operator may see it in the admin API
	// (logging.MaskCaller: "+1•••••4567"). Never the number itself.
	Masked string
	CallID string // for logs only
	// OnlyWithFacilitator lets the caller in only while a facilitator is
	// present in the room: a member outside the group's meeting hours
	// (an extra meeting a facilitator opened). Otherwise Join returns
	// ErrNotMeeting (ErrNoSession when the group has no live session),
	// and no room is started for the caller.
	OnlyWithFacilitator bool
	// FacilitatorPIN checks the facilitator PIN a member types after *#
	// (rules.CheckPIN), on the room's tick: it must answer at once,
	// compare in constant time, count a wrong PIN toward the PIN-guess
	// limits, and never keep or log the digits (the room zeroes them
	// after). nil answers rules.PINWrong.
	FacilitatorPIN func(digits []byte) rules.PINVerdict
	// Language is what the caller hears: every prompt and announcement
	// in the room is rendered in it; "" or a language the prompts lack
	// is the default.
	Language string
	// Via is the cluster node that relays the caller to this room ("" for
	// a caller of this node); the operator's view shows it.
	Via string
	// Reconnect: the caller comes back after a failover of the cluster
	// (their leg to the room's old owner was lost). They hear "Sorry, the
	// line had a problem. You are back in your meeting."; when they get
	// their seat back, that is all they hear, and the room hears no join
	// chime.
	Reconnect bool
}

// Join puts a caller into the group's room, starting its session if it is
// the first. It returns once the room has taken the caller in (within one
// tick). A room that stops before taking the join (it was reset after a
// panic) is replaced by a new session once.
func (c *Conference) Join(g group.Group, req JoinRequest) (*Participant, error) {
	p, err := c.join(g, req)
	if errors.Is(err, errRoomStopped) {
		p, err = c.join(g, req)
	}
	if errors.Is(err, errRoomStopped) {
		err = ErrClosed
	}
	return p, err
}

// errRoomStopped means the room stopped before it took a join.
var errRoomStopped = errors.New("conference: room stopped")

func (c *Conference) join(g group.Group, req JoinRequest) (*Participant, error) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil, ErrClosed
	}
	r := c.rooms[g.Name]
	if r == nil && req.OnlyWithFacilitator {
		c.mu.Unlock()
		return nil, ErrNoSession
	}
	if r == nil {
		r = newRoom(c, g, c.wall.Now())
		c.rooms[g.Name] = r
		c.nRooms.Store(int64(len(c.rooms)))
		c.clock.Add(r)
		c.log.Info("session started", "group", g.Name)
	}
	r.pendingJoins++
	c.mu.Unlock()

	p := &Participant{room: r, callID: req.CallID, checkPIN: req.FacilitatorPIN, done: make(chan struct{})}
	reply := make(chan error, 1)
	r.send(command{kind: cmdJoin, p: p, stream: req.Stream, role: req.Role, identity: req.Identity, masked: req.Masked, via: req.Via,
		withFac: req.OnlyWithFacilitator, language: req.Language, reconnect: req.Reconnect, reply: reply})
	timeout := c.wall.NewTimer(answerWait)
	defer timeout.Stop()
	var err error
	select {
	case err = <-reply:
	case <-r.stopped:
		select {
		case err = <-reply: // taken just before the room stopped
		default:
			return nil, errRoomStopped
		}
	case <-timeout.C():
		// The clock is stopped or stuck; never leave a caller hanging on it.
		return nil, fmt.Errorf("conference: room %q did not answer the join", g.Name)
	}
	if errors.Is(err, ErrClosed) && !c.isClosed() {
		// send found the room stopped: a reset room, not a closing bridge.
		return nil, errRoomStopped
	}
	if err != nil {
		return nil, err
	}
	return p, nil
}

// ErrLive means Restore found the group with a live session already.
var ErrLive = errors.New("conference: the group already has a live session")

// Restore starts g's room from snap, a session another node of a cluster
// mirrored before it failed (Config.Mirror there): the session goes on
// (its start, its attendance record, no opening reading or greeting
// again) and every caller who was in it gets their seat back by joining
// again with their identity within the rejoin window (rules.Session.
// Restore; JoinRequest.Reconnect for the apology). The room waits that
// long for them before it closes empty. Refused (ErrLive) when g already
// has a live room, and for a snapshot rules.Snapshot.Check refuses.
func (c *Conference) Restore(g group.Group, snap rules.Snapshot) error {
	if err := snap.Check(); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return ErrClosed
	}
	if c.rooms[g.Name] != nil {
		return ErrLive
	}
	r := newRoom(c, g, snap.Start)
	r.tally.resume(g.Name, snap.Start, snap.Record)
	// First in the fresh room's queue: applied on its first tick, with
	// that tick's time, before any join.
	r.cmds <- command{kind: cmdRestore, snap: &snap}
	c.rooms[g.Name] = r
	c.nRooms.Store(int64(len(c.rooms)))
	c.clock.Add(r)
	c.log.Info("session restored", "group", g.Name, "seats", len(snap.Seats))
	return nil
}

// isClosed reports whether Close has run.
func (c *Conference) isClosed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed
}

// Rejoining reports whether the caller known by identity would get their
// seat back in the group's live session now (a call that dropped within
// the rejoin window): such a caller skips the group's greeting. False when
// the group has no live session, for an anonymous caller, or when the room
// does not answer in time.
func (c *Conference) Rejoining(g group.Group, identity string) bool {
	if identity == "" {
		return false
	}
	c.mu.Lock()
	r := c.rooms[g.Name]
	c.mu.Unlock()
	if r == nil {
		return false
	}
	known := make(chan bool, 1)
	r.send(command{kind: cmdRemembers, identity: identity, known: known})
	wait := c.wall.NewTimer(answerWait)
	defer wait.Stop()
	select {
	case k := <-known:
		return k
	case <-r.stopped:
	case <-wait.C():
	}
	return false
}

// Announce says phrase (prompt names, numbers as digits) to every caller in
// every room at once, interrupting what they hear: the bridge's own news,
// such as closing for maintenance. It returns when every room has taken it
// (bounded).
func (c *Conference) Announce(phrase []string) {
	rooms := c.live()
	wait := c.wall.NewTimer(answerWait)
	defer wait.Stop()
	for _, r := range rooms {
		wait.Reset(answerWait) // each room gets the full wait
		reply := make(chan error, 1)
		r.send(command{kind: cmdAnnounce, phrase: phrase, reply: reply})
		select {
		case <-reply:
		case <-r.stopped:
		case <-wait.C():
		}
	}
}

// SetHours hands every live room its group's meeting hours as reloaded
// (groups: the whole new list; matched by name). A session that has a
// meeting takes the reloaded one on now, its new end included; see
// meetingHours.rehours. Other settings of a live session do not change.
func (c *Conference) SetHours(groups []group.Group) {
	for _, r := range c.live() {
		i := slices.IndexFunc(groups, func(g group.Group) bool { return g.Name == r.group.Name })
		if i < 0 {
			continue
		}
		g := groups[i]
		g.MemberPIN, g.FacilitatorPIN = "", "" // a room never holds PINs
		r.send(command{kind: cmdHours, hours: &g})
	}
}

// live returns the rooms now live, so each can be asked without holding
// c.mu while it answers on its own tick.
func (c *Conference) live() []*Room {
	c.mu.Lock()
	defer c.mu.Unlock()
	rooms := make([]*Room, 0, len(c.rooms))
	for _, r := range c.rooms {
		rooms = append(rooms, r)
	}
	return rooms
}

// Rooms returns the number of live sessions.
func (c *Conference) Rooms() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.rooms)
}

// Close stops taking joins and removes every room from the clock. Calls
// still in rooms see their Participant's Done channel closed.
func (c *Conference) Close() {
	c.mu.Lock()
	c.closed = true
	rooms := make([]*Room, 0, len(c.rooms))
	for _, r := range c.rooms {
		rooms = append(rooms, r)
	}
	c.rooms = map[string]*Room{}
	c.nRooms.Store(0)
	c.mu.Unlock()
	for _, r := range rooms {
		c.clock.Remove(r)
		r.shutdown("room-closed")
	}
}

// ReasonMoved is why the room lets a caller go when the room moves to
// another cluster node (Handoff): the call goes on, joined again where the
// room now is.
const ReasonMoved = "moved"

// Handoff takes the group's live room off this node without ending its
// session, which goes on at another node: every caller is let go with
// ReasonMoved and no attendance record is made. It reports whether the
// group had a room here.
func (c *Conference) Handoff(group string) bool {
	c.mu.Lock()
	r := c.rooms[group]
	if r != nil {
		delete(c.rooms, group)
		c.nRooms.Store(int64(len(c.rooms)))
	}
	c.mu.Unlock()
	if r == nil {
		return false
	}
	c.clock.Remove(r)
	r.handoff.Store(true)
	r.shutdown(ReasonMoved)
	return true
}

// Has reports whether the group has a live room here, or one being
// started for a caller.
func (c *Conference) Has(group string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.rooms[group] != nil
}

// maybeRemove takes an empty room off the clock once its joins have all
// been applied. It runs on the clock goroutine, from the room's own tick.
func (c *Conference) maybeRemove(r *Room) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if r.pendingJoins > 0 {
		return false
	}
	if c.rooms[r.group.Name] == r {
		delete(c.rooms, r.group.Name)
		c.nRooms.Store(int64(len(c.rooms)))
	}
	c.clock.Remove(r)
	return true
}

// detach makes a room whose session has ended stop taking joins: the next
// caller starts a new session while the old room says goodbye.
func (c *Conference) detach(r *Room) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.rooms[r.group.Name] == r {
		delete(c.rooms, r.group.Name)
		c.nRooms.Store(int64(len(c.rooms)))
	}
}

// joinApplied is called by the room when it has taken a join command.
func (c *Conference) joinApplied(r *Room) {
	c.mu.Lock()
	r.pendingJoins--
	c.mu.Unlock()
}

// Recover is the clock's panic handler for rooms: the room whose tick
// panicked is reset (taken off the clock, its callers let go with reason
// "room-reset", so their calls end; the group's next caller starts a new
// session); every other room goes on. The log line names the group and
// the panic with digit runs masked, never a PIN or a caller number.
func (c *Conference) Recover(t clock.Ticker, recovered any) {
	r, ok := t.(*Room)
	if !ok {
		return
	}
	c.log.Error("room tick panicked, resetting the room", "group", r.group.Name, "panic", panicText(recovered))
	c.mu.Lock()
	if c.rooms[r.group.Name] == r {
		delete(c.rooms, r.group.Name)
		c.nRooms.Store(int64(len(c.rooms)))
	}
	c.mu.Unlock()
	c.clock.Remove(r)
	r.unmirror()
	r.shutdown(roomReset)
}

// Participant is a caller's handle on their room.
type Participant struct {
	room     *Room
	callID   string
	checkPIN func([]byte) rules.PINVerdict // JoinRequest.FacilitatorPIN
	done     chan struct{}                 // closed when the room lets the caller go

	// Set by the room before the join reply; read-only afterwards.
	seat     int
	restored bool

	once   sync.Once
	reason string // why the room let the caller go; written before done closes
}

// Seat returns the caller's seat number in this session.
func (p *Participant) Seat() int { return p.seat }

// Restored reports whether the caller got back the seat they had before
// their call dropped.
func (p *Participant) Restored() bool { return p.restored }

// Done is closed when the room has let the caller go (session ended, the
// caller was removed, or the conference closed). The call should end then.
func (p *Participant) Done() <-chan struct{} { return p.done }

// Reason tells why the room let the caller go; valid once Done is closed.
func (p *Participant) Reason() string {
	select {
	case <-p.done:
		return p.reason
	default:
		return ""
	}
}

// letGo closes Done with a reason, once.
func (p *Participant) letGo(reason string) {
	p.once.Do(func() {
		p.reason = reason
		close(p.done)
	})
}

// Key hands a key press to the room.
func (p *Participant) Key(d byte) {
	if f := p.room.conf.faults.Load(); f != nil && f.Key != nil {
		f.Key(p.callID, d)
	}
	p.room.send(command{kind: cmdKey, p: p, digit: d})
}

// Leave takes the caller out of the room and waits (bounded) until the room
// no longer touches their stream, so the caller may close it afterwards.
func (p *Participant) Leave() {
	reply := make(chan error, 1)
	p.room.send(command{kind: cmdLeave, p: p, reply: reply})
	wait := p.room.conf.wall.NewTimer(2 * time.Second)
	defer wait.Stop()
	select {
	case <-reply:
	case <-p.done:
	case <-wait.C():
	}
}
