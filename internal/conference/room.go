package conference

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/groupbridge/groupbridge/internal/conference/rules"
	"github.com/groupbridge/groupbridge/internal/group"
	"github.com/groupbridge/groupbridge/media/g711"
	"github.com/groupbridge/groupbridge/media/level"
	"github.com/groupbridge/groupbridge/media/mixer"
	"github.com/groupbridge/groupbridge/media/pcm"
	"github.com/groupbridge/groupbridge/media/prompt"
	"github.com/groupbridge/groupbridge/media/tone"
)

// Reasons a caller is not let into a room; the caller hears why.
var (
	// ErrFull means the group already has max_members members.
	ErrFull = errors.New("conference: group is full")
	// ErrLocked means a facilitator locked the group.
	ErrLocked = errors.New("conference: group is locked")
	// ErrRemoved means this caller was removed from the session.
	ErrRemoved = errors.New("conference: caller was removed from this session")
	// ErrNotMeeting means the caller may come in only while a facilitator
	// is present (JoinRequest.OnlyWithFacilitator) and none is.
	ErrNotMeeting = errors.New("conference: group not meeting and no facilitator present")
	// ErrNoSession is ErrNotMeeting when the group had no live session:
	// no room was started, so no session's record counts the caller.
	ErrNoSession = fmt.Errorf("%w (no session)", ErrNotMeeting)
)

type cmdKind int

const (
	cmdJoin cmdKind = iota
	cmdLeave
	cmdKey
	cmdSnapshot
	cmdAct
	cmdAnnounce
	cmdRemembers
	cmdHours
	cmdRestore
)

type command struct {
	kind      cmdKind
	p         *Participant
	stream    pcm.Stream
	role      group.Role
	identity  string
	masked    string
	via       string // cmdJoin: JoinRequest.Via
	withFac   bool   // cmdJoin: JoinRequest.OnlyWithFacilitator
	language  string
	digit     byte
	action    rules.Action
	seat      int
	reply     chan error
	view      chan roomAnswer
	phrase    []string        // cmdAnnounce
	known     chan bool       // cmdRemembers
	hours     *group.Group    // cmdHours: the group as reloaded
	reconnect bool            // cmdJoin: JoinRequest.Reconnect
	snap      *rules.Snapshot // cmdRestore
}

// stickyDB favours talkers already mixed when choosing the loudest few, so
// two similar voices do not flap in and out of the mix.
const stickyDB = 3.0

// comfortAmplitude is the peak of the comfort noise: about -70 dBFS.
const comfortAmplitude = 10

// member is a caller inside a room, owned by the room's tick.
type member struct {
	p      *Participant
	stream pcm.Stream
	shared SharedWriter // stream, when it can send the room's shared frame
	seat   int

	mix     mixer.Member
	inMixer bool
	player  prompt.Player // what this caller alone hears: prompts, hold music
	fx      prompt.Player // chimes for this caller, over whatever else plays
	private pcm.Frame
	fxFrame pcm.Frame

	talker *level.Talker // talking state for the rules and the loudest-few choice
	agc    *level.AGC
	gate   *level.Gate
	mixed  bool   // mixed in the previous tick
	picked bool   // scratch for loudestOnly
	hangup bool   // let go once the player has said everything
	reason string // why, for the call's log
	masked string // the caller as the admin API shows it (JoinRequest.Masked)
	via    string // the node relaying the caller (JoinRequest.Via); "" for our own
	lang   string // what the caller hears (JoinRequest.Language)
	failed any    // what this member's part of a tick panicked with; nil if it did not
}

// own fills m.private with what this caller alone hears this tick (prompts,
// hold music, chimes) and reports whether there is anything.
func (m *member) own() bool {
	speech := m.player.Next(&m.private)
	if !m.fx.Next(&m.fxFrame) {
		return speech
	}
	m.private.Add(&m.fxFrame)
	return true
}

// Room is one group's live session: the rules (package rules) decide who
// is heard and what is said; the room mixes and speaks.
type Room struct {
	conf  *Conference
	group group.Group // without its PINs: a room never needs them

	cmds     chan command
	stopped  chan struct{}
	stopOnce sync.Once
	// handoff: the room moved to another node (Conference.Handoff); its
	// session goes on there, so no record of it is made here.
	handoff atomic.Bool

	pendingJoins int // guarded by conf.mu

	// Owned by the tick (clock goroutine) from here on.
	sess     *rules.Session
	members  []*member
	bySeat   map[int]*member
	byP      map[*Participant]*member
	mixer    *mixer.Mixer
	common   g711.Shared // the mix heard by every listener who is not heard, encoded once per codec
	audience []int       // scratch for Seats.Audience
	changed  bool        // seats or placements changed since the counts were published
	noise    pcm.Frame
	rng      uint32 // comfort noise generator state
	started  time.Time
	detached bool // the session ended: no longer the group's live room

	// The mirror (Config.Mirror): the session's Version last handed
	// over, whether MirrorEnded was told, and until when a restored room
	// waits, empty, for its callers.
	mirrored   uint64
	unmirrored bool
	holdUntil  time.Time

	// The room's parts, each with its own state: what it says, in each
	// listener's language; the readings; the meeting's hours; the
	// session's attendance.
	speaker speaker
	reading readingPlayer
	hours   meetingHours
	tally   roomTally

	// published is this room's share of the conference's Stats counts:
	// written by the tick, zeroed by shutdown from any goroutine.
	published [nCounts]atomic.Int64
	counted   [nCounts]int64 // scratch for count
}

func newRoom(c *Conference, g group.Group, now time.Time) *Room {
	cfg := rules.ConfigFor(g) // whether the group has a facilitator PIN, not the PIN
	g.MemberPIN, g.FacilitatorPIN = "", ""
	sess := rules.New(cfg, now)
	r := &Room{
		conf:    c,
		group:   g,
		cmds:    make(chan command, 1024),
		stopped: make(chan struct{}),
		sess:    sess,
		bySeat:  map[int]*member{},
		byP:     map[*Participant]*member{},
		mixer:   mixer.New(),
		started: now,
		speaker: speaker{prompts: &c.prompts},
		reading: readingPlayer{files: c.readings.Load().For(g.Name), rules: sess.Readings(), log: c.log, group: g.Name},
		hours:   meetingHours{hours: sess.Hours(), wall: c.wall, log: c.log, group: g.Name},
	}
	r.tally.start(c.record, c.wall, g.Name, now)
	r.hours.tally = &r.tally
	r.hours.meet(&r.group, now)
	return r
}

// send queues a command; a room that has stopped answers joins with
// ErrClosed and ignores the rest.
func (r *Room) send(c command) {
	select {
	case r.cmds <- c:
	case <-r.stopped:
		if c.reply != nil {
			c.reply <- ErrClosed
		}
	}
}

// shutdown lets every caller go with reason. Safe to call more than once,
// from any goroutine, once the room is off the clock.
func (r *Room) shutdown(reason string) {
	r.stopOnce.Do(func() {
		close(r.stopped)
		r.unpublish()
		if !r.handoff.Load() {
			r.tally.end() // a session a stop ends is recorded too
		}
		for _, m := range r.members {
			m.p.letGo(reason)
		}
	})
}

// Tick applies queued commands and timers, then mixes one frame for
// everybody.
func (r *Room) Tick(now time.Time) {
	if r.conf.fenced != nil && r.conf.fenced(r.group.Name) {
		return
	}
	r.drain(now)
	r.apply(r.sess.Tick(now), now)
	r.apply(r.hours.due(), now)
	r.release(now)
	if r.changed {
		r.count()
		r.tally.roles(r.members, r.sess.Seats())
		r.changed = false
	}
	if r.conf.mirror != nil && r.sess.Version() != r.mirrored {
		r.mirrorState(now)
	}
	if r.sess.Ended() && !r.detached {
		r.detached = true
		r.conf.detach(r)
		r.unmirror()
	}
	if len(r.members) == 0 {
		if now.Before(r.holdUntil) && !r.detached {
			return // a restored room waits for its callers
		}
		if r.conf.maybeRemove(r) {
			r.unmirror()
			// On the clock the start came from, not the tick's.
			dur := r.conf.wall.Now().Sub(r.started).Round(time.Second)
			r.conf.log.Info("session ended", "group", r.group.Name, "duration", dur.String())
			r.shutdown("room-closed")
		}
		return
	}
	var faults *Faults
	if f := r.conf.faults.Load(); f != nil {
		if f.Room != nil {
			f.Room(r.group.Name)
		}
		faults = f
	}
	heard := 0
	for i := 0; i < len(r.members); {
		// inputs stops early only after a member that panicked.
		next, h := r.inputs(i, now, faults)
		i, heard = next, heard+h
	}
	if heard > r.conf.audio.MaxTalkers {
		r.loudestOnly(r.conf.audio.MaxTalkers)
	}
	for _, m := range r.members {
		m.mixed = m.inMixer && m.mix.Heard
	}
	var noise *pcm.Frame
	if r.conf.audio.ComfortNoise {
		r.comfortNoise()
		noise = &r.noise
	}
	r.mixer.Tick(r.reading.next(noise))
	r.common.Set(r.mixer.CommonFrame())
	for i := 0; i < len(r.members); {
		i = r.outputs(i, noise) // out of the mix: no reading
	}
	r.dropFailed(now)
}

// inputs runs input for the members from index from on and returns how
// many are heard and the index to go on from: len(r.members), or the one
// after a member whose part panicked. A panic there (a bad stream, a bug
// on one caller's path) is recovered here: that member is taken out of
// the mix at once and let go at the end of the tick, and the others' tick
// goes on. One recover boundary for the whole loop, not one per member:
// the common case pays a single deferred call per room.
func (r *Room) inputs(from int, now time.Time, faults *Faults) (next, heard int) {
	i := from
	defer func() {
		if v := recover(); v != nil {
			r.fail(r.members[i], v)
			next = i + 1
		}
	}()
	for ; i < len(r.members); i++ {
		if r.input(r.members[i], now, faults) {
			heard++
		}
	}
	return i, heard
}

// outputs is inputs for sending: it runs output from index from on and
// returns the index to go on from.
func (r *Room) outputs(from int, extra *pcm.Frame) (next int) {
	i := from
	defer func() {
		if v := recover(); v != nil {
			r.fail(r.members[i], v)
			next = i + 1
		}
	}()
	for ; i < len(r.members); i++ {
		r.output(r.members[i], extra)
	}
	return i
}

// input is a member's own part of a tick before the mix: read their audio,
// follow their talking, clean it up, and say whether it is heard.
func (r *Room) input(m *member, now time.Time, faults *Faults) bool {
	if m.failed != nil {
		return false
	}
	if faults != nil && faults.Member != nil {
		faults.Member(m.p.callID)
	}
	got := m.stream.ReadFrame(&m.mix.In)
	in := &m.mix.In
	if !got {
		in = nil
	}
	talking, changed := m.talker.Process(in)
	if changed {
		r.apply(r.sess.Talking(m.seat, talking, now), now)
	}
	if !m.inMixer {
		m.gate.Skip(in)
		return false
	}
	h := got && r.sess.Heard(m.seat)
	if h {
		if r.conf.audio.AGC {
			m.agc.Process(&m.mix.In, talking)
		}
		// The gate keeps open lines with only background noise out, and
		// opens on a word's first loud frame (Voice Onset), not on the
		// confirmed talkspurt, so no word loses its start.
		h = m.gate.Process(&m.mix.In, m.talker.Voice())
	} else {
		m.gate.Skip(in)
	}
	m.mix.Heard = h
	if m.own() {
		m.mix.Private = &m.private
	} else {
		m.mix.Private = nil
	}
	return h
}

// output sends a member what they hear this tick.
func (r *Room) output(m *member, extra *pcm.Frame) {
	if m.failed != nil {
		return
	}
	if m.inMixer {
		if m.shared != nil && m.mix.Common() {
			m.shared.WriteShared(&r.common)
			return
		}
		m.stream.WriteFrame(m.mix.Out())
		return
	}
	// Out of the mix (waiting, or before the facilitator came): only
	// their own prompts and hold music.
	m.own()
	if extra != nil {
		m.private.Add(extra)
	}
	m.stream.WriteFrame(&m.private)
}

// fail marks a member whose part of the tick panicked and takes them out
// of the mix, so that nobody hears what was left of their frame.
func (r *Room) fail(m *member, recovered any) {
	m.failed = recovered
	if m.failed == nil {
		m.failed = "nil panic"
	}
	m.mix.Heard = false
	m.mixed = false
	if m.inMixer {
		r.mixer.Remove(&m.mix)
		m.inMixer = false
	}
}

// dropFailed lets go the members whose part of this tick panicked: their
// calls end (reason "internal-error"), the room goes on. The log line
// names the call, never a PIN or a number: the panic's digit runs are
// masked.
func (r *Room) dropFailed(now time.Time) {
	for i := 0; i < len(r.members); i++ {
		m := r.members[i]
		if m.failed == nil {
			continue
		}
		r.remove(m)
		i--
		r.conf.log.Error("caller's audio processing panicked, letting the caller go", "call", m.p.callID,
			"group", r.group.Name, "seat", m.seat, "panic", panicText(m.failed))
		m.p.letGo(memberFailed)
		r.apply(r.sess.Leave(m.seat, now), now)
	}
}

// loudestOnly keeps the n loudest heard talkers in the mix (those mixed
// last tick get a small head start) and leaves the others out this tick.
// Selection by repeated maximum: n is small, and it allocates nothing.
func (r *Room) loudestOnly(n int) {
	for _, m := range r.members {
		m.picked = false
	}
	for k := 0; k < n; k++ {
		var best *member
		bestLevel := 0.0
		for _, m := range r.members {
			if !m.inMixer || !m.mix.Heard || m.picked {
				continue
			}
			lv := m.talker.LevelDBFS()
			if m.mixed {
				lv += stickyDB
			}
			if best == nil || lv > bestLevel {
				best, bestLevel = m, lv
			}
		}
		if best == nil {
			break
		}
		best.picked = true
	}
	for _, m := range r.members {
		if m.inMixer && m.mix.Heard && !m.picked {
			m.mix.Heard = false
			m.gate.Skip(&m.mix.In) // unheard: back in later with a fade, not a click
		}
	}
}

// comfortNoise fills r.noise with very quiet white noise (xorshift: cheap
// and allocation-free; it need not be good randomness).
func (r *Room) comfortNoise() {
	x := r.rng
	if x == 0 {
		x = 2463534242
	}
	for i := range r.noise {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		r.noise[i] = int16(int32(x%(2*comfortAmplitude+1)) - comfortAmplitude)
	}
	r.rng = x
}

// drain applies every queued command without waiting for more.
func (r *Room) drain(now time.Time) {
	for {
		select {
		case c := <-r.cmds:
			r.command(c, now)
		default:
			return
		}
	}
}

func (r *Room) command(c command, now time.Time) {
	switch c.kind {
	case cmdHours:
		r.hours.rehours(c.hours)
	case cmdAnnounce:
		// Everyone hears it at once, whatever they were hearing, each in
		// their own language.
		r.speaker.newPhrase()
		for _, m := range r.members {
			m.player.StopLoop()
			m.player.Play(r.speaker.phraseFor(m.lang, c.phrase)...)
		}
		if c.reply != nil {
			c.reply <- nil
		}
	case cmdJoin:
		err := r.join(c, now)
		r.tally.refused(err)
		c.reply <- err
		r.conf.joinApplied(r)
	case cmdLeave:
		if m := r.byP[c.p]; m != nil {
			r.remove(m)
			r.apply(r.sess.Leave(m.seat, now), now)
			r.conf.log.Info("left", "call", c.p.callID, "group", r.group.Name, "seat", m.seat)
		}
		c.p.letGo("left")
		if c.reply != nil {
			c.reply <- nil
		}
	case cmdKey:
		if m := r.byP[c.p]; m != nil && !m.hangup {
			r.apply(r.sess.Key(m.seat, c.digit, now), now)
		}
	case cmdSnapshot:
		c.view <- roomAnswer{view: r.view(), live: !r.sess.Ended()}
	case cmdRestore:
		r.restore(c.snap, now)
	case cmdRemembers:
		c.known <- r.sess.Door().Remembers(c.identity, now)
	case cmdAct:
		effects, err := r.sess.Act(c.action, c.seat, now)
		r.apply(effects, now)
		if err != nil {
			r.conf.log.Info("operator action refused", "group", r.group.Name, "action", c.action.String(), "seat", c.seat, "error", err.Error())
		} else {
			r.conf.log.Info("operator action", "group", r.group.Name, "action", c.action.String(), "seat", c.seat)
		}
		c.reply <- err
	}
}

func (r *Room) join(c command, now time.Time) error {
	if c.withFac && c.role == group.Member && (r.sess.Seats().Facilitators() == 0 || r.sess.Ended()) {
		return ErrNotMeeting
	}
	res, effects := r.sess.Join(c.identity, c.role, now)
	switch res.Refused {
	case rules.RefuseNone:
	case rules.RefuseFull:
		return ErrFull
	case rules.RefuseLocked:
		return ErrLocked
	case rules.RefuseRemoved:
		return ErrRemoved
	default:
		return ErrClosed
	}
	sw, _ := c.stream.(SharedWriter)
	m := &member{p: c.p, stream: c.stream, shared: sw, seat: res.Seat, masked: c.masked, via: c.via, lang: c.language,
		talker: level.NewTalker(level.TalkerConfig{}), agc: level.NewAGC(level.AGCConfig{}), gate: level.NewGate()}
	c.p.seat = m.seat
	c.p.restored = res.Restored
	r.tally.join(m.seat, c.identity, r.sess.Seats().Role(m.seat))
	r.members = append(r.members, m)
	r.bySeat[m.seat] = m
	r.byP[c.p] = m
	r.changed = true
	r.place(m)
	if c.reconnect {
		m.player.Enqueue(r.speaker.to(m.lang, []string{prompt.LineProblem})...)
		if res.Restored {
			effects = quietRejoin(effects, m.seat)
		}
	}
	r.apply(effects, now)
	r.conf.log.Info("joined", "call", c.p.callID, "group", r.group.Name, "seat", m.seat,
		"role", c.role.String(), "restored", res.Restored)
	return nil
}

// quietRejoin drops what a caller reconnected after a failover would be
// told on getting their seat back (they hear line_problem instead), and
// the room's join chime for them: the room never heard them leave.
func quietRejoin(effects []rules.Effect, seat int) []rules.Effect {
	return slices.DeleteFunc(effects, func(e rules.Effect) bool {
		return e.Seat == seat && (e.Kind == rules.Say || e.Kind == rules.Chime && e.Chime == rules.ChimeJoin)
	})
}

// restore makes the room's fresh session the one snap was taken of
// (Conference.Restore), and waits for its callers a rejoin window.
func (r *Room) restore(snap *rules.Snapshot, now time.Time) {
	if err := r.sess.Restore(*snap, now); err != nil {
		r.conf.log.Error("session not restored", "group", r.group.Name, "error", err.Error())
		return
	}
	r.holdUntil = now.Add(rules.DefaultRejoinWindow) // rules.ConfigFor leaves the window at its default
	if m, ok := r.sess.Hours().Meeting(); ok {
		r.tally.slot(m)
	}
	r.changed = true
}

// mirrorState hands the session's state to Config.Mirror: only on a tick
// where the rules changed something, never once the session is over.
func (r *Room) mirrorState(now time.Time) {
	r.mirrored = r.sess.Version()
	if r.sess.Ended() {
		return
	}
	snap := r.sess.Snapshot(now)
	snap.Start, snap.Record = r.started, r.tally.id()
	r.conf.mirror(r.group.Name, snap)
}

// unmirror tells Config.MirrorEnded, once, that the session is over.
func (r *Room) unmirror() {
	if r.unmirrored || r.conf.unmirror == nil {
		return
	}
	r.unmirrored = true
	r.conf.unmirror(r.group.Name)
}

// place puts a member in or out of the mix as the rules say.
func (r *Room) place(m *member) {
	in := r.sess.Seats().Placement(m.seat) == rules.InRoom
	switch {
	case in && !m.inMixer:
		r.mixer.Add(&m.mix)
		m.inMixer = true
	case !in && m.inMixer:
		r.mixer.Remove(&m.mix)
		m.inMixer = false
	}
}

// remove takes a member out of the room's structures.
func (r *Room) remove(m *member) {
	r.changed = true
	r.tally.leave(m.seat)
	if m.inMixer {
		r.mixer.Remove(&m.mix)
		m.inMixer = false
	}
	delete(r.bySeat, m.seat)
	delete(r.byP, m.p)
	for i, x := range r.members {
		if x == m {
			r.members = slices.Delete(r.members, i, i+1) // clears the freed end: no departed member stays reachable
			break
		}
	}
}

// release lets go members whose hang-up is due (their last words played).
func (r *Room) release(now time.Time) {
	for i := 0; i < len(r.members); i++ {
		m := r.members[i]
		if !m.hangup || m.player.Playing() {
			continue
		}
		r.remove(m)
		i--
		r.conf.log.Info("let go", "call", m.p.callID, "group", r.group.Name, "seat", m.seat, "reason", m.reason)
		m.p.letGo(m.reason)
		r.apply(r.sess.Leave(m.seat, now), now)
	}
}

// apply carries out the rules' effects, in order.
func (r *Room) apply(effects []rules.Effect, now time.Time) {
	if len(effects) == 0 {
		// The common case, every tick: no change in who is where.
		return
	}
	r.changed = true
	for _, e := range effects {
		switch e.Kind {
		case rules.Say:
			if m := r.bySeat[e.Seat]; m != nil {
				clips := r.speaker.to(m.lang, e.Phrase)
				if e.Interrupt {
					m.player.Play(clips...)
				} else {
					m.player.Enqueue(clips...)
				}
			}
		case rules.SayRoom, rules.SayFacilitators:
			// Each listener in their own language, rendered once per
			// language heard.
			r.speaker.newPhrase()
			r.audience = r.sess.Seats().Audience(e, r.audience[:0])
			for _, seat := range r.audience {
				if m := r.bySeat[seat]; m != nil {
					m.player.Enqueue(r.speaker.phraseFor(m.lang, e.Phrase)...)
				}
			}
		case rules.Chime:
			switch e.Chime {
			case rules.ChimeJoin, rules.ChimeLeave:
				c := tone.JoinChime()
				if e.Chime == rules.ChimeLeave {
					c = tone.LeaveChime()
				}
				r.audience = r.sess.Seats().Audience(e, r.audience[:0])
				for _, seat := range r.audience {
					if m := r.bySeat[seat]; m != nil {
						m.fx.Play(c)
					}
				}
			case rules.ChimeShareLimit:
				if m := r.bySeat[e.Seat]; m != nil {
					m.fx.Play(tone.Chime())
				}
			}
		case rules.HoldMusic:
			if m := r.bySeat[e.Seat]; m != nil {
				if e.On {
					if clip, ok := r.conf.prompts.Load().In(m.lang).Clip(prompt.HoldMusic); ok {
						m.player.Loop(clip)
					}
				} else {
					m.player.StopLoop()
				}
			}
		case rules.Hangup:
			if m := r.bySeat[e.Seat]; m != nil {
				m.hangup, m.reason = true, e.Reason
			}
		case rules.End:
			r.conf.log.Info("session ended by the rules", "group", r.group.Name, "reason", e.Reason)
		case rules.Reading:
			lead := 0
			if m := r.bySeat[e.Seat]; m != nil {
				lead = m.player.Remaining()
			}
			r.reading.play(e.Key, lead)
		case rules.StopReading:
			r.reading.stop()
		case rules.CheckPIN:
			r.checkPIN(e, now)
		}
	}
	// Placement may have changed (waiting, lobby, back): follow it.
	for _, m := range r.members {
		r.place(m)
	}
}

// checkPIN carries out a CheckPIN: the caller's own checker (from their
// JoinRequest) judges the digits, which are zeroed at once, and the rules
// hear the verdict. Only the verdict is logged.
func (r *Room) checkPIN(e rules.Effect, now time.Time) {
	v := rules.PINWrong
	m := r.bySeat[e.Seat]
	if m != nil && m.p.checkPIN != nil {
		v = m.p.checkPIN(e.Digits)
	}
	clear(e.Digits)
	if m != nil {
		r.conf.log.Info("facilitator PIN in the room", "call", m.p.callID, "group", r.group.Name,
			"seat", e.Seat, "verdict", v.String())
	}
	r.apply(r.sess.PINChecked(e.Seat, v, now), now)
}
