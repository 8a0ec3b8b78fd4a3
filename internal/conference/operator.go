package conference

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/groupbridge/groupbridge/internal/conference/rules"
	"github.com/groupbridge/groupbridge/internal/group"
)

// ErrNoSuchRoom means the group has no live session (nobody has called in,
// or its session has ended).
var ErrNoSuchRoom = errors.New("conference: no such room")

// RoomView is one live session as an operator sees it, taken by the room's
// own tick so that every field describes the same moment.
type RoomView struct {
	Group      string
	Started    time.Time
	Locked     bool // new members are refused
	Lecture    bool // only facilitators and the floor are heard
	ShareTimer bool // floor grants are timed
	// MeetingStart and MeetingEnd are the scheduled meeting the session
	// holds (groups[].meets), zero when it has none.
	MeetingStart, MeetingEnd time.Time
	Seats                    []SeatView
	// Node and Epoch are the cluster node that owns the room and the
	// epoch it took it at; conference leaves them empty (it knows no
	// cluster), the app fills them in on a cluster node.
	Node  string
	Epoch int64
}

// SeatView is one connected caller of a RoomView. It holds no identity and
// no number: Caller is the masked form the app gave at Join.
type SeatView struct {
	Seat             int
	Role             string // "member" | "facilitator"
	Muted            bool   // self-muted or muted by a facilitator
	SelfMuted        bool
	FacilitatorMuted bool
	Talking          bool // the talker detector hears speech, whether mixed or not
	HandRaised       bool
	Floor            bool
	Heard            bool   // mixed into the room when talking (the who-is-heard table)
	Leaving          bool   // being hung up: removed, or the session ended
	Placement        string // "room" | "waiting" | "lobby"
	Caller           string // masked: "+1•••••4567"
	Via              string // the cluster node relaying the caller; "" for this node's own
}

// Stats are cheap counters for metrics, read without waiting for any room.
// Calls are counted from the moment the room takes them in until they are
// let go, the ones being hung up included.
type Stats struct {
	Rooms        int // live sessions (not one that has ended and is saying goodbye)
	InRoom       int // calls in a room's mix
	Waiting      int // calls moved to waiting
	Lobby        int // calls waiting for a facilitator-led session to start
	Facilitators int // calls with the facilitator role (all in the mix)
}

// Indexes of Conference.counts and Room.published.
const (
	countInRoom = iota
	countWaiting
	countLobby
	countFacilitators
	nCounts
)

// roomAnswer is a room's reply to a snapshot command.
type roomAnswer struct {
	view RoomView
	live bool // false once the session has ended
}

// Stats returns the conference's counters; it takes no lock and never
// waits for a room.
func (c *Conference) Stats() Stats {
	return Stats{
		Rooms:        int(c.nRooms.Load()),
		InRoom:       int(c.counts[countInRoom].Load()),
		Waiting:      int(c.counts[countWaiting].Load()),
		Lobby:        int(c.counts[countLobby].Load()),
		Facilitators: int(c.counts[countFacilitators].Load()),
	}
}

// Snapshot returns every live session by group name. Each room answers on
// its own tick, so a room's view is consistent; a room that does not
// answer within a bounded wait (a stopped clock) is left out.
func (c *Conference) Snapshot() []RoomView {
	rooms := c.live()

	deadline := c.wall.NewTimer(answerWait)
	defer deadline.Stop()
	// Ask every room first and collect afterwards: the rooms answer on the
	// same tick, not one tick after another.
	answers := make([]chan roomAnswer, len(rooms))
	for i, r := range rooms {
		ch := make(chan roomAnswer, 1)
		select {
		case r.cmds <- command{kind: cmdSnapshot, view: ch}:
			answers[i] = ch
		case <-r.stopped:
		case <-deadline.C():
			c.log.Warn("rooms did not take a snapshot request in time")
			return sortViews(collect(rooms[:i], answers[:i], nil))
		}
	}
	return sortViews(collect(rooms, answers, deadline.C()))
}

// collect gathers the rooms' answers until timeout (nil: only answers
// already there).
func collect(rooms []*Room, answers []chan roomAnswer, timeout <-chan time.Time) []RoomView {
	out := make([]RoomView, 0, len(rooms))
	for i, ch := range answers {
		if ch == nil {
			continue
		}
		var a roomAnswer
		if timeout == nil {
			select {
			case a = <-ch:
			default:
				continue
			}
		} else {
			select {
			case a = <-ch:
			case <-rooms[i].stopped:
				continue
			case <-timeout:
				rooms[i].conf.log.Warn("room did not answer a snapshot in time", "group", rooms[i].group.Name)
				return append(out, collect(rooms[i:], answers[i:], nil)...)
			}
		}
		if a.live {
			out = append(out, a.view)
		}
	}
	return out
}

func sortViews(v []RoomView) []RoomView {
	slices.SortFunc(v, func(a, b RoomView) int { return cmp.Compare(a.Group, b.Group) })
	return v
}

// Act carries out an operator's action on the live session of group (its
// exact name, or else the one name equal under Unicode case folding: group
// names are unique regardless of case). It runs on the room's tick through
// the session's rules (rules.Session.Act) and returns their error (match
// with errors.Is: rules.ErrNoSeat, rules.ErrFacilitator, ...),
// ErrNoSuchRoom, ErrClosed, or an error when the room does not answer
// within a bounded wait.
func (c *Conference) Act(group string, a rules.Action, seat int) error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return ErrClosed
	}
	r := c.rooms[group]
	if r == nil {
		for name, x := range c.rooms {
			if strings.EqualFold(name, group) {
				r = x
				break
			}
		}
	}
	c.mu.Unlock()
	if r == nil {
		return fmt.Errorf("%v %q: %w", a, group, ErrNoSuchRoom)
	}

	deadline := c.wall.NewTimer(answerWait)
	defer deadline.Stop()
	reply := make(chan error, 1)
	select {
	case r.cmds <- command{kind: cmdAct, action: a, seat: seat, reply: reply}:
	case <-r.stopped:
		return fmt.Errorf("%v %q: %w", a, r.group.Name, ErrNoSuchRoom)
	case <-deadline.C():
		return fmt.Errorf("%v %q: the room did not take the action in time", a, r.group.Name)
	}
	select {
	case err := <-reply:
		return err
	case <-r.stopped:
		select {
		case err := <-reply: // answered just before it stopped
			return err
		default:
			return fmt.Errorf("%v %q: %w", a, r.group.Name, ErrNoSuchRoom)
		}
	case <-deadline.C():
		return fmt.Errorf("%v %q: the room did not answer in time", a, r.group.Name)
	}
}

// view describes the room now; it runs on the tick.
func (r *Room) view() RoomView {
	seats := r.sess.View()
	v := RoomView{
		Group:      r.group.Name,
		Started:    r.started,
		Locked:     r.sess.Door().Locked(),
		Lecture:    r.sess.Lecture(),
		ShareTimer: r.sess.ShareTimer(),
		Seats:      make([]SeatView, 0, len(seats)),
	}
	if m, on := r.sess.Hours().Meeting(); on {
		v.MeetingStart, v.MeetingEnd = m.Start, m.End
	}
	for _, s := range seats {
		sv := SeatView{
			Seat:             s.Seat,
			Role:             s.Role.String(),
			Muted:            s.SelfMuted || s.FacilitatorMuted,
			SelfMuted:        s.SelfMuted,
			FacilitatorMuted: s.FacilitatorMuted,
			Talking:          s.Talking,
			HandRaised:       s.Hand,
			Floor:            s.Floor,
			Heard:            s.Heard,
			Placement:        s.Placement.String(),
		}
		if m := r.bySeat[s.Seat]; m != nil {
			sv.Caller = m.masked
			sv.Via = m.via
			sv.Leaving = m.hangup
		}
		v.Seats = append(v.Seats, sv)
	}
	return v
}

// count publishes the room's calls by placement to the conference's Stats.
// It runs on every tick and allocates nothing; the atomics are touched
// only when a count changed.
func (r *Room) count() {
	clear(r.counted[:])
	for _, m := range r.members {
		switch r.sess.Seats().Placement(m.seat) {
		case rules.InRoom:
			r.counted[countInRoom]++
		case rules.Waiting:
			r.counted[countWaiting]++
		case rules.Lobby:
			r.counted[countLobby]++
		}
		if r.sess.Seats().Role(m.seat) == group.Facilitator {
			r.counted[countFacilitators]++
		}
	}
	changed := false
	for i, n := range r.counted {
		if r.published[i].Load() != n {
			r.conf.counts[i].Add(n - r.published[i].Swap(n))
			changed = true
		}
	}
	if changed {
		// shutdown may have zeroed our share while we published: the last
		// one to write must leave zero behind.
		select {
		case <-r.stopped:
			r.unpublish()
		default:
		}
	}
}

// unpublish takes the room's share out of the conference's Stats. Safe
// from any goroutine, concurrently with count.
func (r *Room) unpublish() {
	for i := range r.published {
		r.conf.counts[i].Add(-r.published[i].Swap(0))
	}
}
