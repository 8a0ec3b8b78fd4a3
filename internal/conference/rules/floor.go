package rules

import (
	"slices"
	"time"
)

// floor is the order of speaking in lecture mode: the first-come queue of
// raised hands, the seat holding the floor, and the share timer on that
// seat (the share-limit chime, then the floor's end FloorGrace later).
// Who is heard because of it is hearing's business: change the holder
// through hearing.setFloor.
type floor struct {
	hands   []int // raised hands, first come first
	seat    int   // holder, 0 = nobody
	timer   bool  // share timer on (*4)
	limit   time.Duration
	grace   time.Duration
	alarm   *alarm
	chimeAt time.Time
	endAt   time.Time
}

// raise puts c at the end of the hand queue.
func (f *floor) raise(c *caller) {
	c.hand = true
	f.hands = append(f.hands, c.seat)
}

// raiseRanked puts c, back from a restored session with c.handRank, in
// the hand queue before every hand raised since the restore and every
// restored one ranked after it, so a queue comes back in its order
// whatever order its callers rejoin in. rank is another seat's handRank.
func (f *floor) raiseRanked(c *caller, rank func(seat int) int) {
	c.hand = true
	i := 0
	for ; i < len(f.hands); i++ {
		if r := rank(f.hands[i]); r == 0 || r > c.handRank {
			break
		}
	}
	f.hands = slices.Insert(f.hands, i, c.seat)
}

// resume gives the floor back to seat with its share time's deadlines
// (zero: that timer does not run); nobody holds it.
func (f *floor) resume(seat int, chimeAt, endAt time.Time) {
	f.seat, f.chimeAt, f.endAt = seat, chimeAt, endAt
	if t, ok := f.deadline(); ok {
		f.alarm.schedule(t)
	}
}

// lower takes c out of the hand queue.
func (f *floor) lower(c *caller) {
	c.handRank = 0
	if !c.hand {
		return
	}
	c.hand = false
	if i := slices.Index(f.hands, c.seat); i >= 0 {
		f.hands = slices.Delete(f.hands, i, i+1)
	}
}

// head is the first raised hand, 0 for none.
func (f *floor) head() int {
	if len(f.hands) == 0 {
		return 0
	}
	return f.hands[0]
}

// give hands the floor to seat (0 = nobody) and returns the previous
// holder; a new grant restarts the share time when the timer is on.
func (f *floor) give(seat int, now time.Time) (old int) {
	old, f.seat = f.seat, seat
	f.chimeAt, f.endAt = time.Time{}, time.Time{}
	f.alarm.invalidate()
	if seat != 0 && f.timer {
		f.startShare(now)
	}
	return old
}

// setTimer turns the share timer on or off; turned on while someone holds
// the floor, their share time starts now.
func (f *floor) setTimer(on bool, now time.Time) {
	f.timer = on
	if on {
		if f.seat != 0 {
			f.startShare(now)
		}
		return
	}
	f.chimeAt, f.endAt = time.Time{}, time.Time{}
	f.alarm.invalidate()
}

// startShare runs the share limit for the holder from now.
func (f *floor) startShare(now time.Time) {
	f.chimeAt = now.Add(f.limit)
	f.endAt = f.chimeAt.Add(f.grace)
	f.alarm.schedule(f.chimeAt)
}

// due fires the holder's share timers due at now: the chime, and the end
// of their grant (which only lecture mode acts on).
func (f *floor) due(now time.Time) (chime, over bool) {
	if f.seat == 0 {
		return false, false
	}
	if !f.chimeAt.IsZero() && !now.Before(f.chimeAt) {
		f.chimeAt, chime = time.Time{}, true
	}
	if !f.endAt.IsZero() && !now.Before(f.endAt) {
		f.endAt, over = time.Time{}, true
	}
	return chime, over
}

// deadline is the earliest pending share timer.
func (f *floor) deadline() (time.Time, bool) {
	return earlier(f.chimeAt, f.endAt)
}

// clear empties the floor when the session ends.
func (f *floor) clear() {
	f.seat, f.hands = 0, nil
	f.chimeAt, f.endAt = time.Time{}, time.Time{}
}

// earlier is the earlier of two optional times (zero = none).
func earlier(a, b time.Time) (time.Time, bool) {
	switch {
	case a.IsZero():
		return b, !b.IsZero()
	case b.IsZero() || a.Before(b):
		return a, true
	}
	return b, true
}
