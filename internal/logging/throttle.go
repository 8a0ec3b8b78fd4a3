package logging

import (
	"sync/atomic"
	"time"
)

// DefaultThrottle is how often a Throttle with no Every lets a line
// through: a flood or an attack shows in the log once a minute without
// flooding it.
const DefaultThrottle = time.Minute

// Throttle lets a repeated log line through at most once per Every (0:
// DefaultThrottle). The first call always passes. The time is passed in,
// so tests need no clock hooks. Safe for concurrent use: of calls at the
// same moment, one wins. Allow never allocates, so it may sit on a path
// that drops packets or requests.
type Throttle struct {
	Every time.Duration
	last  atomic.Int64 // unix nanoseconds of the last line let through; 0: none yet
}

// Allow reports whether a line may be logged at now, and if so counts now
// as the time of the last line.
func (t *Throttle) Allow(now time.Time) bool {
	every := t.Every
	if every <= 0 {
		every = DefaultThrottle
	}
	n := now.UnixNano()
	last := t.last.Load()
	if last != 0 && n-last < int64(every) {
		return false
	}
	return t.last.CompareAndSwap(last, n)
}
