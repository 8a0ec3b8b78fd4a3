package guard

import (
	"sync"
	"time"
)

// BudgetConfig sets the limits per dialled number; zero fields take the
// defaults.
type BudgetConfig struct {
	// PerNumber is the wrong PINs a minute to one number (a group's own
	// number, or the shared access number) above which that number is
	// under attack; under attack its PIN answers are paced to this many a
	// minute, so no number of parallel calls guesses faster (6).
	PerNumber int
	// Bridge is the same for all numbers together: above it every number
	// is under attack (30).
	Bridge int
	// Queue caps the calls of one number waiting for their PIN's answer;
	// an attempt beyond it is not checked and its call is refused (40).
	Queue int
	// KnownFor is how long a caller who entered a group's PIN is known to
	// it and skips the pacing (30 days); negative turns it off.
	KnownFor time.Duration
	// MaxKnown bounds the known callers kept (100,000); the ones closest
	// to expiry are dropped first.
	MaxKnown int
	// MaxDelay bounds the least delay of an answer under attack (2 min).
	MaxDelay time.Duration
	// Shared, when set, is the counting this node shares with the other
	// nodes of a cluster: one budget per number and one for the bridge,
	// and one answer slot per interval per number, cluster-wide. Nil
	// counts in memory only. Fixed by NewBudget: SetConfig keeps it.
	// Known callers stay per node.
	Shared Shared
}

func (c *BudgetConfig) defaults() {
	if c.PerNumber <= 0 {
		c.PerNumber = 6
	}
	if c.Bridge <= 0 {
		c.Bridge = 30
	}
	if c.Queue <= 0 {
		c.Queue = 40
	}
	if c.KnownFor == 0 {
		c.KnownFor = 30 * 24 * time.Hour
	}
	if c.MaxKnown <= 0 {
		c.MaxKnown = 100_000
	}
	if c.MaxDelay <= 0 {
		c.MaxDelay = 2 * time.Minute
	}
}

// interval is the pacing under attack: one answer per interval per number.
func (c *BudgetConfig) interval() time.Duration { return time.Minute / time.Duration(c.PerNumber) }

// Budget limits PIN guessing per dialled number and bridge-wide, where
// changing the caller number does not help. While failures stay within the
// budget it does nothing. Past it the number (or the whole bridge) is under
// attack until the failure rate falls back: every PIN attempt waits its turn
// in a queue per number, in arrival order, and is answered no sooner than a
// delay that grows with the failure rate and no sooner than one interval
// after the previous answer. The turn is fixed before the PIN is checked, so
// a right PIN is answered exactly as late as a wrong one would have been.
// Callers known to the group skip the queue until they enter a wrong PIN
// (so a spoofed regular's number buys one unpaced guess, not ten).
type Budget struct {
	mu     sync.Mutex
	cfg    BudgetConfig
	bridge scope
	scopes map[string]*scope
	known  map[string]time.Time // keyed hash -> expiry
}

// scope is one number's failures and queue (or the bridge's failures).
type scope struct {
	key      string // its Shared key
	minute   window // failures in the last minute, by second
	tenMin   window // failures in the last ten minutes, by ten seconds
	attack   bool
	queue    []*ticket // waiting, in arrival order
	nextSlot time.Time // the earliest time the next answer may go out
}

func newScope() *scope {
	return &scope{minute: window{width: time.Second}, tenMin: window{width: 10 * time.Second}}
}

// ticket is one attempt's place in a queue.
type ticket struct {
	earliest time.Time
	released bool
}

// NewBudget returns a Budget with cfg's limits.
func NewBudget(cfg BudgetConfig) *Budget {
	cfg.defaults()
	b := &Budget{cfg: cfg, scopes: map[string]*scope{}, known: map[string]time.Time{}}
	b.bridge = *newScope()
	b.bridge.key = sharedBridge
	return b
}

// SetConfig changes the limits (a reload); queued attempts keep their turn.
func (b *Budget) SetConfig(cfg BudgetConfig) {
	cfg.defaults()
	b.mu.Lock()
	defer b.mu.Unlock()
	cfg.Shared = b.cfg.Shared
	b.cfg = cfg
}

func (b *Budget) scope(number string) *scope {
	s := b.scopes[number]
	if s == nil {
		s = newScope()
		s.key = sharedNumber + number
		b.scopes[number] = s
	}
	return s
}

// check updates s's attack state: it starts when the last minute's failures
// pass limit and ends when the last ten minutes' are back within one
// minute's limit. The long window keeps an attacker from bursting, pausing
// a minute and bursting again: the attack stays on through the pause.
func check(s *scope, limit int, now time.Time) bool {
	if !s.attack && s.minute.sum(now) > limit {
		s.attack = true
	}
	if s.attack && s.tenMin.sum(now) <= limit {
		s.attack = false
	}
	return s.attack
}

// Fail records a wrong PIN on a call to number ("" for the shared access
// number, or any number no group claims). It reports whether this failure
// put the number or the bridge under attack.
func (b *Budget) Fail(number string, now time.Time) (started bool) {
	sh := b.pressure(number, now, 1)
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.scope(number)
	was := b.underAttack(s, now) || sh.was
	for _, sc := range []*scope{s, &b.bridge} {
		sc.minute.add(now)
		sc.tenMin.add(now)
	}
	return !was && (b.underAttack(s, now) || sh.is)
}

// UnderAttack reports whether calls to number are paced now.
func (b *Budget) UnderAttack(number string, now time.Time) bool {
	sh := b.pressure(number, now, 0)
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.underAttack(b.scope(number), now) || sh.is
}

func (b *Budget) underAttack(s *scope, now time.Time) bool {
	// Both are evaluated: each keeps its own state current.
	num := check(s, b.cfg.PerNumber, now)
	bridge := check(&b.bridge, b.cfg.Bridge, now)
	return num || bridge
}

// shared is what the Shared counts say of a number with the bridge: not
// under attack, perMinute -1, when there is no Shared or it did not answer.
type shared struct {
	was, is   bool
	perMinute int // the number's failures in the last minute
}

// pressure adds n failures to number's and the bridge's shared counts and
// returns their state. Called outside b.mu: it is a round trip. A scope
// whose call fails counts as not under attack: the local counts decide.
func (b *Budget) pressure(number string, now time.Time, n int) shared {
	out := shared{perMinute: -1}
	b.mu.Lock()
	sh, perNumber, bridge := b.cfg.Shared, b.cfg.PerNumber, b.cfg.Bridge
	b.mu.Unlock()
	if sh == nil {
		return out
	}
	if was, is, rate, err := sh.Pressure(sharedNumber+number, now, n, perNumber); err == nil {
		out = shared{was: was, is: is, perMinute: rate}
	}
	if was, is, _, err := sh.Pressure(sharedBridge, now, n, bridge); err == nil {
		out.was, out.is = out.was || was, out.is || is
	}
	return out
}

// Delay is the least wait of an answer under attack given the number's
// failures in the last minute: one interval at the budget, growing in
// proportion beyond it, at most MaxDelay.
func (b *Budget) delay(s *scope, now time.Time, shared int) time.Duration {
	d := b.cfg.interval()
	if rate := max(s.minute.sum(now), shared); rate > b.cfg.PerNumber {
		d = d * time.Duration(rate) / time.Duration(b.cfg.PerNumber)
	}
	return min(d, b.cfg.MaxDelay)
}

// advance releases the queue's head while its turn has come. A turn is
// taken at the time it came, not when somebody looked, so a late driver
// does not slow the queue. With a Shared the turn is also the number's
// slot cluster-wide: when another node took this interval's, the head
// waits for the next one (or, Redis failing, goes by the local pacing).
// The round trip is made under b.mu, so the node's other budget calls wait
// for it; it comes once per answer under attack, and the store gives up
// on a failing Redis fast.
func (b *Budget) advance(s *scope, now time.Time) {
	for len(s.queue) > 0 {
		h := s.queue[0]
		at := later(s.nextSlot, h.earliest)
		if at.After(now) {
			return
		}
		if b.cfg.Shared != nil {
			slot, taken, err := b.cfg.Shared.Slot(s.key, at, now, b.cfg.interval())
			if err == nil && !taken {
				s.nextSlot = slot
				return
			}
			if err == nil {
				at = slot
			}
		}
		h.released = true
		s.queue[0] = nil
		s.queue = s.queue[1:]
		s.nextSlot = at.Add(b.cfg.interval())
	}
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// Remember notes that the caller behind key (a keyed hash of the caller's
// identity and the group) entered the group's PIN.
func (b *Budget) Remember(key string, now time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cfg.KnownFor < 0 || key == "" {
		return
	}
	if _, ok := b.known[key]; !ok && len(b.known) >= b.cfg.MaxKnown {
		// Linear, but only when full; expired entries go first since they
		// expire soonest.
		var drop string
		var soonest time.Time
		for k, exp := range b.known {
			if drop == "" || exp.Before(soonest) {
				drop, soonest = k, exp
			}
		}
		delete(b.known, drop)
	}
	b.known[key] = now.Add(b.cfg.KnownFor)
}

// Known reports whether any of keys was remembered and has not expired.
func (b *Budget) Known(now time.Time, keys ...string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cfg.KnownFor < 0 {
		return false
	}
	found := false
	for _, k := range keys {
		exp, ok := b.known[k]
		switch {
		case !ok:
		case now.Before(exp):
			found = true
		default:
			delete(b.known, k)
		}
	}
	return found
}

// KnownCount returns how many callers are remembered (tests, metrics).
func (b *Budget) KnownCount() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.known)
}

// Waiting returns how many attempts to number wait for their answer.
func (b *Budget) Waiting(number string, now time.Time) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.scope(number)
	b.advance(s, now)
	return len(s.queue)
}

// Gate is one call's way through the Budget: it decides when each of the
// call's PIN attempts may be answered. Not safe for concurrent use (one call
// owns it); Close it when the call ends.
type Gate struct {
	b      *Budget
	number string
	s      *scope
	keys   []string // the caller's known-caller keys
	known  bool
	ticket *ticket
}

// Gate returns the gate of a call to number ("" for the shared access
// number). The caller is known, and skips the pacing, if any of knownKeys
// (keyed hashes of its identity and each group the number reaches) is
// remembered.
func (b *Budget) Gate(number string, now time.Time, knownKeys ...string) *Gate {
	known := b.Known(now, knownKeys...)
	b.mu.Lock()
	defer b.mu.Unlock()
	return &Gate{b: b, number: number, s: b.scope(number), keys: knownKeys, known: known}
}

// Fail records a wrong PIN on the call (Budget.Fail for its number). A
// known caller is forgotten: whoever it is now waits its turn like anyone
// until it enters the PIN again.
func (g *Gate) Fail(now time.Time) (started bool) {
	if g.known {
		g.known = false
		g.b.mu.Lock()
		for _, k := range g.keys {
			delete(g.b.known, k)
		}
		g.b.mu.Unlock()
	}
	return g.b.Fail(g.number, now)
}

// Admit is asked when the caller has submitted a PIN, before it is
// checked. wait is false when the answer may be given at once (no attack,
// or a known caller). ok is false when the number's queue is full: the
// attempt must not be checked and the call is to be turned away.
func (g *Gate) Admit(now time.Time) (wait, ok bool) {
	b := g.b
	sh := shared{perMinute: -1}
	if !g.known {
		sh = b.pressure(g.number, now, 0)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	g.drop()
	if g.known || !(b.underAttack(g.s, now) || sh.is) {
		return false, true
	}
	b.advance(g.s, now)
	if len(g.s.queue) >= b.cfg.Queue {
		return false, false
	}
	g.ticket = &ticket{earliest: now.Add(b.delay(g.s, now, sh.perMinute))}
	g.s.queue = append(g.s.queue, g.ticket)
	return true, true
}

// Ready reports whether the admitted attempt's turn has come. If not, next
// is when to ask again (an estimate while others are ahead).
func (g *Gate) Ready(now time.Time) (ready bool, next time.Time) {
	b := g.b
	b.mu.Lock()
	defer b.mu.Unlock()
	if g.ticket == nil {
		return true, now
	}
	b.advance(g.s, now)
	if g.ticket.released {
		g.ticket = nil
		return true, now
	}
	pos := 0
	for i, t := range g.s.queue {
		if t == g.ticket {
			pos = i
			break
		}
	}
	head := later(g.s.nextSlot, g.s.queue[0].earliest)
	next = later(head.Add(time.Duration(pos)*b.cfg.interval()), g.ticket.earliest)
	return false, next
}

// Close gives up the call's place in the queue (the caller hung up).
func (g *Gate) Close() {
	g.b.mu.Lock()
	defer g.b.mu.Unlock()
	g.drop()
}

// drop removes the gate's waiting ticket from the queue.
func (g *Gate) drop() {
	if g.ticket == nil {
		return
	}
	for i, t := range g.s.queue {
		if t == g.ticket {
			g.s.queue = append(g.s.queue[:i], g.s.queue[i+1:]...)
			break
		}
	}
	g.ticket = nil
}
