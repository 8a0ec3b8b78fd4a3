package guard

import "time"

// Shared is the counting that the guards of several nodes share (a
// cluster's Redis: cluster.GuardStore), so that an attacker who spreads
// calls over three nodes meets one set of limits, not three. Each call is
// one atomic step; times are the guard's now.
//
// A guard given a Shared still counts in memory as it does alone, and
// refuses when either count says so: when a call fails (Redis down or
// slow) the guard goes by its own counts for that step, so a node alone
// still enforces its own limits. Keys say what is counted and for whom:
// the guard's own keys (caller identities and sources as keyed hashes,
// group names, never a number); the store keeps them apart per method.
type Shared interface {
	// Fail adds a failure of key at now. When limit failures fall within
	// window, key is locked out until now+lockout and its count starts
	// again. It returns until when key is locked out (zero: it is not).
	Fail(key string, now time.Time, window time.Duration, limit int, lockout time.Duration) (until time.Time, err error)
	// Locked returns until when key is locked out (zero: it is not).
	Locked(key string, now time.Time) (until time.Time, err error)
	// Rate adds n events (0: none) at now to key's count over the last
	// minute, by seconds, and returns that count.
	Rate(key string, now time.Time, n int) (int, error)
	// Pressure adds n failures (0: none) at now to key's counts over the
	// last minute (by seconds) and the last ten minutes (by ten seconds).
	// Key is under attack from when the minute's count passes limit until
	// the ten minutes' count is back within limit: was is that state
	// before the add, is after it; perMinute is the minute's count after.
	Pressure(key string, now time.Time, n, limit int) (was, is bool, perMinute int, err error)
	// Slot takes key's next answer slot: the later of at and the end of
	// the last slot taken, if that has come by now; the slot after it is
	// interval later. Not taken, slot is when to ask again.
	Slot(key string, at, now time.Time, interval time.Duration) (slot time.Time, taken bool, err error)
}

// Keys of the shared counts; the guard's record keys follow the prefix.
const (
	sharedCaller = "caller:" // a caller record: "caller:" + "n:"/"u:"/"s:" + hash; withheld: "caller:"
	sharedRate   = "rate:"   // the bridge's failure rate: "rate:"; a group's: "rate:g:" + name
	sharedNumber = "number:" // a dialled number's budget and answer slots: "number:" + group ("" shared)
	sharedBridge = "bridge"  // the bridge's budget
)

func rateKey(group string) string {
	if group == "" {
		return sharedRate
	}
	return sharedRate + "g:" + group
}
