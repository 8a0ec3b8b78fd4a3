package conference

import (
	"errors"
	"sync"
	"time"

	"github.com/groupbridge/groupbridge/media/mixer"
	"github.com/groupbridge/groupbridge/media/pcm"
	"github.com/groupbridge/groupbridge/media/prompt"
	"github.com/groupbridge/groupbridge/media/tone"
)

// ErrFull means the group already has max_members members.
var ErrFull = errors.New("conference: group is full")

// starTimeout drops a '*' that no digit followed.
const starTimeout = 3 * time.Second

type cmdKind int

const (
	cmdJoin cmdKind = iota
	cmdLeave
	cmdKey
)

type command struct {
	kind   cmdKind
	p      *Participant
	stream Stream
	role   Role
	digit  byte
	reply  chan error
}

// member is a caller's state inside a room, owned by the room's tick.
type member struct {
	p         *Participant
	stream    Stream
	role      Role
	seat      int
	selfMuted bool

	mix     mixer.Member
	player  prompt.Player // prompts for this caller only
	private pcm.Frame

	starPending bool
	starAt      time.Time
}

// heard applies the who-is-heard rules that exist so far: the caller's own
// mute. The stream itself drops audio while the caller is on hold.
func (m *member) heard() bool { return !m.selfMuted }

// Room is one group's live session.
type Room struct {
	conf  *Conference
	group Group

	cmds     chan command
	stopped  chan struct{}
	stopOnce sync.Once

	pendingJoins int // guarded by conf.mu

	// Owned by the tick (clock goroutine) from here on.
	members  []*member
	byP      map[*Participant]*member
	mixer    *mixer.Mixer
	nextSeat int
	chime    prompt.Player
	extra    pcm.Frame
	started  time.Time
}

func newRoom(c *Conference, g Group) *Room {
	return &Room{
		conf:    c,
		group:   g,
		cmds:    make(chan command, 1024),
		stopped: make(chan struct{}),
		byP:     map[*Participant]*member{},
		mixer:   mixer.New(),
		started: time.Now(),
	}
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

// shutdown lets every caller go. Safe to call more than once, from any
// goroutine, once the room is off the clock.
func (r *Room) shutdown() {
	r.stopOnce.Do(func() {
		close(r.stopped)
		for _, m := range r.members {
			closeDone(m.p)
		}
	})
}

func closeDone(p *Participant) {
	select {
	case <-p.done:
	default:
		close(p.done)
	}
}

// Tick applies queued commands, then mixes one frame for everybody.
func (r *Room) Tick(now time.Time) {
	r.drain(now)
	if len(r.members) == 0 {
		if r.conf.maybeRemove(r) {
			r.conf.log.Info("session ended", "group", r.group.Name, "duration", time.Since(r.started).Round(time.Second).String())
			r.shutdown()
		}
		return
	}
	for _, m := range r.members {
		got := m.stream.ReadFrame(&m.mix.In)
		m.mix.Heard = got && m.heard()
		if m.player.Next(&m.private) {
			m.mix.Private = &m.private
		} else {
			m.mix.Private = nil
		}
		if m.starPending && now.Sub(m.starAt) > starTimeout {
			m.starPending = false
		}
	}
	var extra *pcm.Frame
	if r.chime.Next(&r.extra) {
		extra = &r.extra
	}
	r.mixer.Tick(extra)
	for _, m := range r.members {
		m.stream.WriteFrame(m.mix.Out())
	}
}

// drain applies every queued command without waiting for more.
func (r *Room) drain(now time.Time) {
	for {
		select {
		case c := <-r.cmds:
			r.apply(c, now)
		default:
			return
		}
	}
}

func (r *Room) apply(c command, now time.Time) {
	switch c.kind {
	case cmdJoin:
		c.reply <- r.join(c)
		r.conf.joinApplied(r)
	case cmdLeave:
		r.leave(c.p)
		if c.reply != nil {
			c.reply <- nil
		}
	case cmdKey:
		if m := r.byP[c.p]; m != nil {
			r.key(m, c.digit, now)
		}
	}
}

func (r *Room) countRole(role Role) int {
	n := 0
	for _, m := range r.members {
		if m.role == role {
			n++
		}
	}
	return n
}

func (r *Room) join(c command) error {
	if c.role == Member && r.group.MaxMembers > 0 && r.countRole(Member) >= r.group.MaxMembers {
		return ErrFull
	}
	r.nextSeat++
	m := &member{p: c.p, stream: c.stream, role: c.role, seat: r.nextSeat}
	c.p.seat = m.seat
	first := len(r.members) == 0
	r.members = append(r.members, m)
	r.byP[c.p] = m
	r.mixer.Add(&m.mix)

	clips := append([][]int16{r.clip(prompt.YouAreCaller)}, r.conf.prompts.Number(m.seat)...)
	if first {
		clips = append(clips, prompt.Pause(300*time.Millisecond), r.clip(prompt.FirstHere))
	} else {
		r.chime.Play(tone.JoinChime())
	}
	m.player.Play(clips...)
	r.conf.log.Info("joined", "call", c.p.callID, "group", r.group.Name, "seat", m.seat, "role", m.role.String())
	return nil
}

func (r *Room) leave(p *Participant) {
	m := r.byP[p]
	if m == nil {
		return
	}
	delete(r.byP, p)
	r.mixer.Remove(&m.mix)
	for i, x := range r.members {
		if x == m {
			r.members = append(r.members[:i], r.members[i+1:]...)
			break
		}
	}
	closeDone(p)
	if len(r.members) > 0 {
		r.chime.Play(tone.LeaveChime())
	}
	r.conf.log.Info("left", "call", p.callID, "group", r.group.Name, "seat", m.seat)
}

// key runs the keypad: a '*' then a digit within starTimeout is a command.
func (r *Room) key(m *member, d byte, now time.Time) {
	if d == '*' {
		m.starPending, m.starAt = true, now
		return
	}
	if !m.starPending {
		return
	}
	m.starPending = false
	switch d {
	case '6':
		m.selfMuted = !m.selfMuted
		if m.selfMuted {
			m.player.Play(r.clip(prompt.Muted))
		} else {
			m.player.Play(r.clip(prompt.Unmuted))
		}
	}
}

func (r *Room) clip(name string) []int16 {
	c, _ := r.conf.prompts.Clip(name)
	return c
}
