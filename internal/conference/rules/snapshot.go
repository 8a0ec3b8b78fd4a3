package rules

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/groupbridge/groupbridge/internal/group"
)

// SnapshotFormat is the version of Snapshot's encoding this build writes
// and the only one it reads.
const SnapshotFormat = 1

// Bounds a decoded snapshot must keep: a garbled or hostile one must not
// make a node allocate without limit.
const (
	maxSnapSeats    = 1 << 16 // seats ever given in one session
	maxSnapIdentity = 256     // bytes of one identity
	maxSnapRemoved  = 1 << 16
)

// Snapshot is everything needed to rebuild a running session on another
// node (issue 15): who sat where with which role and mutes, the hands and
// the floor, the lock, lecture mode, the door's removals and rejoin memos,
// and the timers that run. It is a plain value that encodes to JSON
// (Encode, DecodeSnapshot); Session.Snapshot makes one, Session.Restore
// starts a fresh session from one.
//
// Times are instants on the engine's clocks, which a cluster's nodes
// share (wall time): a snapshot is only taken when something changed, so
// a timer that runs (the floor's share time, the grace, the wait for open
// talk) is kept as when it is due, and resumes with what is left of it
// then.
//
// It holds caller identities (the HMACs of numbers, never a number): it
// may live in Redis, never in a log.
type Snapshot struct {
	Format int `json:"format"`
	// Version is the session's change counter when it was taken
	// (Session.Version).
	Version uint64 `json:"version"`

	// Start and Record are the engine's: when the session started on its
	// wall clock and its attendance record's ID ("" without one). The
	// rules carry them and never read them.
	Start  time.Time `json:"start"`
	Record string    `json:"record,omitempty"`

	Started    bool `json:"started"`     // a caller has been admitted
	NextSeat   int  `json:"next_seat"`   // the seat the next new caller gets
	Locked     bool `json:"locked"`      // *7
	Lecture    bool `json:"lecture"`     // *5
	ShareTimer bool `json:"share_timer"` // *4
	Lobby      bool `json:"lobby"`       // facilitator-led, no facilitator yet
	// Opened: the opening reading was started (it is not played again).
	Opened bool `json:"opened"`
	// GraceAt and OpenTalkAt are when the facilitator grace and a
	// peer-led session's wait for open talk run out (zero: not running).
	GraceAt    time.Time `json:"grace_at,omitzero"`
	OpenTalkAt time.Time `json:"open_talk_at,omitzero"`
	// Meeting is the session's scheduled meeting, if it has one.
	Meeting *SnapshotMeeting `json:"meeting,omitempty"`

	// Seats are the callers present (not being hung up), by seat.
	Seats []SnapshotSeat `json:"seats"`
	// Memos are the callers who dropped and may still rejoin.
	Memos []SnapshotSeat `json:"memos,omitempty"`
	// Removed are the identities barred for the rest of the session.
	Removed []string `json:"removed,omitempty"`
}

// SnapshotMeeting is a session's meeting and which of its moments were
// carried out.
type SnapshotMeeting struct {
	Start   time.Time `json:"start"`
	End     time.Time `json:"end"`
	Close   time.Time `json:"close"`
	Started bool      `json:"started"` // MeetingStarted done
	Over    bool      `json:"over"`    // "The scheduled time is over." done
	Warned  bool      `json:"warned"`  // the five-minute warning done
}

// SnapshotSeat is one caller of a Snapshot: present (in Seats) or
// dropped and remembered for a rejoin (in Memos, with Until).
type SnapshotSeat struct {
	Seat             int        `json:"seat"`
	Identity         string     `json:"identity,omitempty"` // "": anonymous, cannot rejoin
	Role             group.Role `json:"role"`
	Placement        Placement  `json:"placement"`
	SelfMuted        bool       `json:"self_muted,omitempty"`
	FacilitatorMuted bool       `json:"facilitator_muted,omitempty"`
	// Hand is the caller's place in the hand queue, from 1; 0 for no
	// raised hand.
	Hand int `json:"hand,omitempty"`
	// Floor: the caller held the floor, their share time's chime due at
	// ChimeAt and its end at EndAt (zero: that timer does not run).
	Floor   bool      `json:"floor,omitempty"`
	ChimeAt time.Time `json:"chime_at,omitzero"`
	EndAt   time.Time `json:"end_at,omitzero"`
	// Until is when a memo's rejoin window closes (memos only).
	Until time.Time `json:"until,omitzero"`
}

// Errors of Restore and DecodeSnapshot.
var (
	// ErrSnapshot: the snapshot is not one this build can restore.
	ErrSnapshot = errors.New("rules: bad snapshot")
	// ErrNotFresh: Restore needs a session nobody has joined yet.
	ErrNotFresh = errors.New("rules: restore needs a fresh session")
)

// Version is the session's change counter: it moves whenever something a
// Snapshot holds may have changed (an event, a timer that fired), and not
// on a Tick with nothing due. The engine compares it on its tick to know
// when to take a new Snapshot: cheap, no allocation.
func (s *Session) Version() uint64 { return s.version }

// changed bumps the change counter.
func (s *Session) changed() { s.version++ }

// Snapshot returns the session's state at now (see Snapshot), with Start
// and Record left for the engine to fill. Callers already told to hang up
// are left out (they are leaving); so are expired memos.
func (s *Session) Snapshot(now time.Time) Snapshot {
	snap := Snapshot{
		Format:     SnapshotFormat,
		Version:    s.version,
		Started:    s.started,
		NextSeat:   len(s.seats.bySeat),
		Locked:     s.door.locked,
		Lecture:    s.hearing.lecture,
		ShareTimer: s.floor.timer,
		Lobby:      s.presence.lobby,
		Opened:     s.readings.opened,
		Seats:      make([]SnapshotSeat, 0, len(s.seats.live)),
	}
	snap.GraceAt, snap.OpenTalkAt = s.presence.graceAt, s.presence.openAt
	if h := &s.hours; h.set {
		snap.Meeting = &SnapshotMeeting{Start: h.m.Start, End: h.m.End, Close: h.m.Close,
			Started: h.started, Over: h.over, Warned: h.warned}
	}
	hands := s.handOrder(now)
	for _, c := range s.seats.live {
		if c.departing {
			continue
		}
		st := SnapshotSeat{Seat: c.seat, Identity: c.identity, Role: c.role, Placement: c.placement,
			SelfMuted: c.selfMuted, FacilitatorMuted: c.facMuted}
		if c.hand {
			st.Hand = slices.Index(hands, c.seat) + 1
		}
		if s.floor.seat == c.seat {
			st.Floor, st.ChimeAt, st.EndAt = true, s.floor.chimeAt, s.floor.endAt
		}
		snap.Seats = append(snap.Seats, st)
	}
	for id, m := range s.door.rejoin {
		if !now.Before(m.until) {
			continue
		}
		st := SnapshotSeat{Seat: m.seat, Identity: id, Role: m.role, Placement: m.placement,
			SelfMuted: m.selfMuted, FacilitatorMuted: m.facMuted, Until: m.until,
			Floor: m.floor, ChimeAt: m.chimeAt, EndAt: m.endAt}
		if m.hand {
			st.Hand = slices.Index(hands, m.seat) + 1
		}
		snap.Memos = append(snap.Memos, st)
	}
	slices.SortFunc(snap.Memos, func(a, b SnapshotSeat) int { return a.Seat - b.Seat })
	for id := range s.door.removed {
		snap.Removed = append(snap.Removed, id)
	}
	slices.Sort(snap.Removed)
	return snap
}

// handOrder is the hand queue as a restore would rebuild it, by seat:
// the present hands in their order, each remembered hand of a restored
// session where raiseRanked would put it back, then the other remembered
// hands, by seat (a plain rejoin goes to the end).
func (s *Session) handOrder(now time.Time) []int {
	order := slices.Clone(s.floor.hands)
	var ranked, plain []memo
	for _, m := range s.door.rejoin {
		switch {
		case !m.hand || !now.Before(m.until):
		case m.handRank > 0:
			ranked = append(ranked, m)
		default:
			plain = append(plain, m)
		}
	}
	slices.SortFunc(ranked, func(a, b memo) int { return a.handRank - b.handRank })
	slices.SortFunc(plain, func(a, b memo) int { return a.seat - b.seat })
	rank := map[int]int{}
	for _, seat := range order {
		rank[seat] = s.handRank(seat)
	}
	for _, m := range ranked {
		i := slices.IndexFunc(order, func(seat int) bool { r := rank[seat]; return r == 0 || r > m.handRank })
		if i < 0 {
			i = len(order)
		}
		order = slices.Insert(order, i, m.seat)
		rank[m.seat] = m.handRank
	}
	for _, m := range plain {
		order = append(order, m.seat)
	}
	return order
}

// Restore makes a fresh session (New, nobody joined yet) the one snap was
// taken of, at now: every seat in it becomes a rejoin memo under its
// identity, so each caller who joins again with that identity within
// RejoinWindow of now gets their seat, role, mutes, placement and hand (in
// the old queue's order) back, and the floor with what is left of their
// share time if nobody holds it by then (its timers due when they were,
// at once if that has passed). Memos keep their own expiry, removals
// stand, the lock, lecture mode, the share timer, the lobby, the
// opening reading and the meeting are as they were, and the grace or the
// wait for open talk run out when they would have.
//
// A session with facilitators when it was taken gives them time to come
// back: without one, a facilitator-led session ends RejoinWindow plus
// EndGrace after now (silently: nobody heard them leave), and a peer-led
// one returns to open talk RejoinWindow plus OpenTalkAfter after now.
//
// Anonymous seats (no identity) cannot be told apart when they call again:
// their seats stay taken, nothing else of them is kept. The session's
// config comes from the group as it is now (New), not from snap.
func (s *Session) Restore(snap Snapshot, now time.Time) error {
	if s.started || s.ended || s.restored || len(s.seats.live) > 0 {
		return ErrNotFresh
	}
	if err := snap.Check(); err != nil {
		return err
	}
	s.started = snap.Started
	s.seats.bySeat = make([]*caller, snap.NextSeat)
	s.door.locked = snap.Locked
	for _, id := range snap.Removed {
		s.door.removed[id] = struct{}{}
	}
	for _, st := range snap.Memos {
		if now.Before(st.Until) {
			s.door.rejoin[st.Identity] = memoOf(st, st.Until)
		}
	}
	facs := false
	for _, st := range snap.Seats {
		facs = facs || st.Role == group.Facilitator
		if st.Identity != "" {
			s.door.rejoin[st.Identity] = memoOf(st, now.Add(s.cfg.RejoinWindow))
		}
	}
	s.hearing.lecture = snap.Lecture
	s.floor.timer = snap.ShareTimer
	s.presence.lobby = snap.Lobby
	s.readings.opened = snap.Opened
	p := &s.presence
	p.graceAt, p.openAt = snap.GraceAt, snap.OpenTalkAt
	if facs && p.graceAt.IsZero() && p.openAt.IsZero() && !p.lobby {
		if p.facLed {
			p.graceAt, p.quiet = now.Add(s.cfg.RejoinWindow+s.cfg.EndGrace), true
		} else {
			p.openAt = now.Add(s.cfg.RejoinWindow + s.cfg.OpenTalkAfter)
		}
	}
	if t, ok := p.deadline(); ok {
		s.alarm.schedule(t)
	}
	if m := snap.Meeting; m != nil {
		s.hours.m = Meeting{Start: m.Start, End: m.End, Close: m.Close}
		s.hours.set = true
		s.hours.started, s.hours.over, s.hours.warned = m.Started, m.Over, m.Warned
	} else {
		s.hours.Clear()
	}
	s.restored = true
	s.version = snap.Version + 1
	return nil
}

// memoOf is the rejoin memo of a snapshot's seat, expiring at until.
func memoOf(st SnapshotSeat, until time.Time) memo {
	return memo{seat: st.Seat, role: st.Role, placement: st.Placement,
		selfMuted: st.SelfMuted, facMuted: st.FacilitatorMuted,
		hand: st.Hand > 0, handRank: st.Hand,
		floor: st.Floor, chimeAt: st.ChimeAt, endAt: st.EndAt,
		until: until}
}

// Check reports whether snap is one Restore can rebuild: this format,
// every seat below NextSeat and given once, known roles and placements,
// identities given once, hand places given once, at most one floor, and
// times within bounds. The error wraps ErrSnapshot and names the field.
func (snap *Snapshot) Check() error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: %s", ErrSnapshot, fmt.Sprintf(format, a...))
	}
	if snap.Format != SnapshotFormat {
		return bad("format %d, want %d", snap.Format, SnapshotFormat)
	}
	if snap.NextSeat < 1 || snap.NextSeat > maxSnapSeats {
		return bad("next_seat %d out of 1..%d", snap.NextSeat, maxSnapSeats)
	}
	if snap.Start.IsZero() {
		return bad("no start")
	}
	if len(snap.Record) > 64 {
		return bad("record ID of %d bytes", len(snap.Record))
	}
	if m := snap.Meeting; m != nil && (m.Start.After(m.End) || m.End.After(m.Close)) {
		return bad("meeting times out of order")
	}
	if len(snap.Seats)+len(snap.Memos) >= snap.NextSeat {
		return bad("%d seats and memos for next_seat %d", len(snap.Seats)+len(snap.Memos), snap.NextSeat)
	}
	seats := map[int]bool{}
	ids := map[string]bool{}
	hands := map[int]bool{}
	floors := 0
	for i, list := range [][]SnapshotSeat{snap.Seats, snap.Memos} {
		memo := i == 1
		for _, st := range list {
			if err := st.check(memo, snap.NextSeat); err != nil {
				return bad("seat %d: %v", st.Seat, err)
			}
			if seats[st.Seat] {
				return bad("seat %d given twice", st.Seat)
			}
			seats[st.Seat] = true
			if st.Identity != "" {
				if ids[st.Identity] {
					return bad("seat %d: identity given twice", st.Seat)
				}
				ids[st.Identity] = true
			}
			if st.Hand > 0 {
				if hands[st.Hand] {
					return bad("seat %d: hand place %d given twice", st.Seat, st.Hand)
				}
				hands[st.Hand] = true
			}
			if st.Floor {
				if floors++; floors > 1 {
					return bad("seat %d: a second floor", st.Seat)
				}
			}
		}
	}
	if len(snap.Removed) > maxSnapRemoved {
		return bad("%d removed identities", len(snap.Removed))
	}
	for _, id := range snap.Removed {
		if err := checkIdentity(id); err != nil || id == "" {
			return bad("removed identity: %v", err)
		}
	}
	return nil
}

// check is one seat's part of Check.
func (st *SnapshotSeat) check(memo bool, next int) error {
	switch {
	case st.Seat < 1 || st.Seat >= next:
		return fmt.Errorf("out of 1..%d", next-1)
	case st.Role != group.Member && st.Role != group.Facilitator:
		return fmt.Errorf("role %d", st.Role)
	case st.Placement != InRoom && st.Placement != Waiting && st.Placement != Lobby:
		return fmt.Errorf("placement %d", st.Placement)
	case st.Hand < 0 || st.Hand > maxSnapSeats:
		return fmt.Errorf("hand %d", st.Hand)
	case !st.Floor && (!st.ChimeAt.IsZero() || !st.EndAt.IsZero()):
		return errors.New("share time without the floor")
	case memo && (st.Identity == "" || st.Until.IsZero()):
		return errors.New("memo without identity or expiry")
	case !memo && !st.Until.IsZero():
		return errors.New("present seat with an expiry")
	}
	return checkIdentity(st.Identity)
}

// checkIdentity accepts what an engine's identity looks like: printable
// ASCII without spaces, bounded.
func checkIdentity(id string) error {
	if len(id) > maxSnapIdentity {
		return fmt.Errorf("identity of %d bytes", len(id))
	}
	for i := 0; i < len(id); i++ {
		if id[i] <= ' ' || id[i] > '~' {
			return errors.New("identity with a byte that is not printable ASCII")
		}
	}
	return nil
}

// Encode checks snap and returns its JSON.
func (snap Snapshot) Encode() ([]byte, error) {
	if err := snap.Check(); err != nil {
		return nil, err
	}
	return json.Marshal(snap)
}

// DecodeSnapshot reads a Snapshot's JSON (Encode), refusing anything else:
// unknown fields, trailing data, another format, or a snapshot Check
// refuses. Errors wrap ErrSnapshot.
func DecodeSnapshot(b []byte) (Snapshot, error) {
	var snap Snapshot
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(&snap); err != nil {
		return Snapshot{}, fmt.Errorf("%w: %v", ErrSnapshot, err)
	}
	if _, err := d.Token(); !errors.Is(err, io.EOF) {
		return Snapshot{}, fmt.Errorf("%w: data after the snapshot", ErrSnapshot)
	}
	if err := snap.Check(); err != nil {
		return Snapshot{}, err
	}
	return snap, nil
}
