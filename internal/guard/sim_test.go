package guard_test

// A simulation of a PIN-guessing attack on a fake clock, driving the real
// guard (Budget with its gates and queue, PINGuard) and the real IVR
// Machine the way internal/app does, with the built-in prompts' real
// lengths. The attacker has unlimited caller numbers and 30 calls at once,
// redials at once and types as fast as the Machine lets it. It answers
// the figure: the expected time to hit any PIN reachable from the
// attacked number, which TimeToHit estimates for config check.

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"testing"
	"time"

	"github.com/groupbridge/groupbridge/internal/group"
	"github.com/groupbridge/groupbridge/internal/guard"
	"github.com/groupbridge/groupbridge/internal/ivr"
	"github.com/groupbridge/groupbridge/media/prompt"
)

const (
	parallel   = 30                     // attacker's calls at once
	redial     = time.Second            // from hang-up to the next call's welcome
	attackKey  = 100 * time.Millisecond // the attacker's time per key (RFC 4733)
	humanKey   = 600 * time.Millisecond // a caller's time per key
	promptGap  = 200 * time.Millisecond // callflow.Flow.runIVR's pause after each prompt
	simDay     = 24 * time.Hour
	targetDays = 30
)

var simT0 = time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)

// clipLen is how long the built-in prompts play, as the app queues them.
func clipLens(t testing.TB) map[string]time.Duration {
	t.Helper()
	set, err := prompt.Builtin("en")
	if err != nil {
		t.Fatal(err)
	}
	lens := map[string]time.Duration{}
	for _, n := range []string{ivr.PromptWelcome, ivr.PromptPINWrong, ivr.PromptGoodbye, ivr.PromptPleaseHold, ivr.PromptTryLater} {
		clip, ok := set.Clip(n)
		if !ok {
			t.Fatalf("no built-in prompt %q", n)
		}
		lens[n] = time.Duration(len(clip))*time.Second/8000 + promptGap
	}
	return lens
}

// bridge is the guard's side of the simulation: what app.App holds.
type bridge struct {
	groups []group.Group
	names  []string
	budget *guard.Budget
	pins   *guard.PINGuard
	lens   map[string]time.Duration
}

func newBridge(t testing.TB, groups []group.Group) *bridge {
	b := &bridge{groups: groups, budget: guard.NewBudget(guard.BudgetConfig{}),
		pins: guard.New(guard.Config{}), lens: clipLens(t)}
	for i := range groups {
		b.names = append(b.names, "group-"+strconv.Itoa(i))
	}
	return b
}

// scope is the budget key of a dialled number, as callflow.Flow.runIVR finds it.
func (b *bridge) scope(dialed string) (string, []string) {
	for i, g := range b.groups {
		if g.Number != "" && g.Number == dialed {
			return b.names[i], []string{b.names[i]}
		}
	}
	return "", b.names
}

// call is one call in the simulation, driven like callflow.Flow.runIVR drives it.
type call struct {
	b       *bridge
	who     guard.Caller
	dialed  string
	scope   string
	m       *ivr.Machine
	gate    *guard.Gate
	tries   int
	source  func() string // what this caller types at each welcome
	entry   string        // what it is typing now
	perKey  time.Duration
	waitEnd bool // types only once the prompt has finished (a person)

	playEnd  time.Time // when the queued prompts end; zero: nothing plays
	lastPlay string    // the last prompt queued
	typeAt   time.Time // when the entry has been typed; zero: not typing
	started  time.Time
	typedAt  time.Time // when the last entry was submitted
	joined   bool
	joinedAt time.Time
	ended    bool
	busy     bool // turned away by a full queue
}

func (b *bridge) dial(now time.Time, who guard.Caller, dialed string, knownKeys []string) *call {
	scope, _ := b.scope(dialed)
	c := &call{b: b, who: who, dialed: dialed, scope: scope, started: now}
	if blocked, _ := b.pins.Blocked(who, now); blocked {
		c.ended = true
		return c
	}
	c.gate = b.budget.Gate(scope, now, knownKeys...)
	c.m = ivr.New(ivr.Config{Groups: b.groups, Dialed: dialed, Gate: c.gate})
	return c
}

// knownKeys are the keys a caller would be known under for dialed.
func (b *bridge) knownKeys(id, dialed string) []string {
	_, groups := b.scope(dialed)
	var keys []string
	for _, g := range groups {
		keys = append(keys, id+"/"+g)
	}
	return keys
}

// next is the call's next event time.
func (c *call) next() time.Time {
	if c.ended || c.joined {
		return time.Time{}
	}
	at := time.Time{}
	pick := func(t time.Time) {
		if !t.IsZero() && (at.IsZero() || t.Before(at)) {
			at = t
		}
	}
	pick(c.playEnd)
	pick(c.typeAt)
	if dl, ok := c.m.NextDeadline(); ok {
		pick(dl)
	}
	return at
}

// step handles the call's event due at now.
func (c *call) step(now time.Time) {
	switch {
	case !c.typeAt.IsZero() && !now.Before(c.typeAt):
		c.typeAt = time.Time{}
		c.typedAt = now
		for i := range len(c.entry) {
			c.apply(now, c.m.Digit(c.entry[i], now))
		}
		c.apply(now, c.m.Digit('#', now))
	case !c.playEnd.IsZero() && !now.Before(c.playEnd):
		c.playEnd = time.Time{}
		c.apply(now, c.m.PromptDone(now))
		if c.waitEnd && c.typeAt.IsZero() && c.wantsToType() {
			c.typeNext(now)
		}
	default:
		c.apply(now, c.m.Tick(now))
	}
	c.countFailures(now)
}

// wantsToType: the caller has heard the welcome (again) and not yet typed.
func (c *call) wantsToType() bool {
	return c.m != nil && !c.m.Done() && c.lastPlay == ivr.PromptWelcome
}

func (c *call) apply(now time.Time, acts []ivr.Action) {
	for _, a := range acts {
		switch a.Kind {
		case ivr.ActPlay:
			var d time.Duration
			for _, p := range a.Prompts {
				d += c.b.lens[p]
			}
			c.playEnd = now.Add(d)
			c.lastPlay = a.Prompts[len(a.Prompts)-1]
			if a.Prompts[0] == ivr.PromptTryLater {
				c.busy = true
			}
			// An attacker types at once, over the prompt.
			if !c.waitEnd && c.lastPlay == ivr.PromptWelcome {
				c.typeNext(now)
			}
		case ivr.ActStopPrompt:
			c.playEnd = time.Time{}
		case ivr.ActJoin:
			c.joined, c.joinedAt = true, now
			c.gate.Close()
			c.b.budget.Remember(c.who.Number+"/"+c.b.names[a.Group], now)
		case ivr.ActHangup:
			c.ended = true
			c.gate.Close()
		}
	}
}

// typeNext starts typing the next entry and pound.
func (c *call) typeNext(now time.Time) {
	c.entry = c.source()
	c.typeAt = now.Add(time.Duration(len(c.entry)+1) * c.perKey)
}

// countFailures reports new wrong PINs to the guard, as callflow.Flow.runIVR does.
func (c *call) countFailures(now time.Time) {
	for ; c.tries < c.m.Tries(); c.tries++ {
		if blocked, _ := c.b.pins.Fail(c.who, c.scope, now); blocked {
			c.ended = true
		}
		c.gate.Fail(now)
	}
}

// attack is a running attack: parallel calls from new numbers, each
// trying the next guesses.
type attack struct {
	b       *bridge
	dialed  string
	guesses func() string // the next guess
	calls   []*call
	numbers int
	redials []time.Time // per slot: when to dial again
	tried   int         // guesses answered
	limit   int         // stop after this many guesses (0: none)
	hits    int
	firstAt time.Time
	others  []*call // legitimate calls
}

func newAttack(b *bridge, dialed string, guesses func() string, now time.Time) *attack {
	a := &attack{b: b, dialed: dialed, guesses: guesses, calls: make([]*call, parallel), redials: make([]time.Time, parallel)}
	for i := range a.calls {
		a.redials[i] = now
	}
	return a
}

func (a *attack) newCall(now time.Time) *call {
	a.numbers++
	c := a.b.dial(now, guard.Caller{Number: "attacker-" + strconv.Itoa(a.numbers)}, a.dialed, nil)
	c.perKey = attackKey
	c.source = a.guesses
	if !c.ended {
		c.apply(now, c.m.Start(now))
	}
	return c
}

// run advances the simulation until until, or the first hit when stop.
func (a *attack) run(until time.Time, stopAtHit bool) time.Time {
	for {
		// The earliest event of all calls and redials.
		var at time.Time
		who, slot := (*call)(nil), -1
		consider := func(t time.Time, c *call, s int) {
			if !t.IsZero() && (at.IsZero() || t.Before(at)) {
				at, who, slot = t, c, s
			}
		}
		for i, c := range a.calls {
			if c == nil || c.ended || c.joined {
				consider(a.redials[i], nil, i)
				continue
			}
			consider(c.next(), c, i)
		}
		for _, c := range a.others {
			if c.m != nil && !c.ended && !c.joined {
				consider(c.next(), c, -1)
			}
		}
		if at.IsZero() || at.After(until) {
			return until
		}
		if a.limit > 0 && a.tried >= a.limit {
			return at // far more than the budget lets through: stop early
		}
		if who == nil {
			a.calls[slot] = a.newCall(at)
			a.redials[slot] = at.Add(redial) // if it was refused at once
			continue
		}
		before := who.m.Tries()
		who.step(at)
		if slot < 0 {
			continue
		}
		a.tried += who.m.Tries() - before
		if who.joined {
			a.tried++
			a.hits++
			if a.firstAt.IsZero() {
				a.firstAt = at
			}
			if stopAtHit {
				return at
			}
		}
		if who.ended || who.joined {
			a.redials[slot] = at.Add(redial)
		}
	}
}

// legit places a legitimate caller's call and returns it; the attack's
// run drives it.
func (a *attack) legit(now time.Time, id, pin string) *call {
	c := a.b.dial(now, guard.Caller{Number: id}, a.dialed, a.b.knownKeys(id, a.dialed))
	c.source = func() string { return pin }
	c.perKey, c.waitEnd = humanKey, true
	c.apply(now, c.m.Start(now))
	a.others = append(a.others, c)
	return c
}

// enumerate returns every entry of length digits once, in random order.
func enumerate(r *rand.Rand, digits int) func() string {
	n := 1
	for range digits {
		n *= 10
	}
	perm := r.Perm(n)
	i := 0
	format := "%0" + strconv.Itoa(digits) + "d"
	return func() string {
		g := fmt.Sprintf(format, perm[i%n])
		i++
		return g
	}
}

// randomPIN returns a PIN of digits not in taken.
func randomPIN(r *rand.Rand, digits int, taken map[string]bool) string {
	for {
		p := ""
		for range digits {
			p += strconv.Itoa(r.IntN(10))
		}
		if !taken[p] {
			taken[p] = true
			return p
		}
	}
}

// setup is a configuration: groups with PIN lengths, on their own numbers
// or all on the shared access number.
type setup struct {
	name       string
	groups     int
	member     int // member PIN length
	fac        int // facilitator PIN length
	ownNumbers bool
}

func (s setup) build(r *rand.Rand) ([]group.Group, string, []int) {
	taken := map[string]bool{}
	var groups []group.Group
	var lengths []int
	for i := range s.groups {
		g := group.Group{MemberPIN: randomPIN(r, s.member, taken), FacilitatorPIN: randomPIN(r, s.fac, taken)}
		if s.ownNumbers {
			g.Number = strconv.Itoa(1001 + i)
		}
		groups = append(groups, g)
	}
	dialed := "4000" // a number no group claims: the shared access number
	if s.ownNumbers {
		dialed = groups[0].Number
	}
	for _, g := range groups {
		if !s.ownNumbers || g.Number == dialed {
			lengths = append(lengths, len(g.MemberPIN), len(g.FacilitatorPIN))
		}
	}
	return groups, dialed, lengths
}

// shortest is the length the attacker guesses: the one TimeToHit finds
// pays best.
func shortest(lengths []int) int {
	best, bestT := 0, time.Duration(0)
	for _, l := range guard.LengthCounts(lengths) {
		if d := guard.TimeToHitLength(lengths, l.Len, 6); best == 0 || d < bestT {
			best, bestT = l.Len, d
		}
	}
	return best
}

func days(d time.Duration) float64 { return d.Hours() / 24 }

// TestSimulatedGuessingRate runs a day of attack on each setup and turns
// the answered guesses into the expected time to a hit; it must agree with
// TimeToHit, and on a group's own number with two 6-digit PINs exceed 30
// days. A returning caller and first-time callers call in during the
// attack.
func TestSimulatedGuessingRate(t *testing.T) {
	setups := []setup{
		{"own number, 6-digit member and facilitator PINs", 1, 6, 6, true},
		{"own number, 4-digit member, 6-digit facilitator", 1, 4, 6, true},
		{"shared number, 5 groups, 6-digit PINs", 5, 6, 6, false},
		{"shared number, 5 groups, 4-digit member, 6-digit facilitator", 5, 4, 6, false},
	}
	for _, s := range setups {
		t.Run(s.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(1, 2))
			groups, dialed, lengths := s.build(r)
			b := newBridge(t, groups)
			// The regular joined last week.
			b.budget.Remember(b.knownKeys("regular", dialed)[0], simT0.Add(-7*simDay))

			// Guesses of the best length that never match, so the attack
			// runs the whole day.
			l := shortest(lengths)
			taken := map[string]bool{}
			for _, g := range groups {
				taken[g.MemberPIN], taken[g.FacilitatorPIN] = true, true
			}
			miss := randomPIN(r, l, taken)
			a := newAttack(b, dialed, func() string { return miss }, simT0)
			a.limit = 20_000 // 8,640 at 6 a minute

			var probes []*call
			now := simT0
			for h := 1; h <= 24; h++ {
				// Every 3 hours, a returning and a first-time caller.
				if h%3 == 0 {
					pin := groups[0].MemberPIN
					probes = append(probes, a.legit(now, "regular", pin), a.legit(now, "newcomer-"+strconv.Itoa(h), pin))
				}
				now = a.run(simT0.Add(time.Duration(h)*time.Hour), false)
			}
			span := now.Sub(simT0)
			perMinute := float64(a.tried) / span.Minutes()
			guesses := 0.0
			for _, lc := range guard.LengthCounts(lengths) {
				if lc.Len == l {
					n := 1.0
					for range l {
						n *= 10
					}
					guesses = (n + 1) / float64(lc.Count+1)
				}
			}
			simulated := time.Duration(guesses / perMinute * float64(time.Minute))
			estimate := guard.TimeToHit(lengths, 6)
			t.Logf("%d calls, %d guesses in %v: %.2f a minute; expected time to hit a PIN: simulated %.1f days (%.1f h), estimate %.1f days (%.1f h)",
				a.numbers, a.tried, span, perMinute, days(simulated), simulated.Hours(), days(estimate), estimate.Hours())
			if a.hits != 0 {
				t.Fatalf("%d hits with guesses that never match", a.hits)
			}
			if perMinute > 6.5 {
				t.Errorf("%.2f guesses a minute from %d parallel calls; the budget allows 6", perMinute, parallel)
			}
			if ratio := float64(simulated) / float64(estimate); ratio < 0.9 || ratio > 1.25 {
				t.Errorf("simulation %.1f days, estimate %.1f days: they disagree", days(simulated), days(estimate))
			}
			if s.ownNumbers && s.member == 6 && days(simulated) <= targetDays {
				t.Errorf("two 6-digit PINs on their own number: %.1f days to a hit, want over %d", days(simulated), targetDays)
			}

			// The legitimate callers during the attack.
			var worstKnown, worstNew time.Duration
			for i, c := range probes {
				known := i%2 == 0
				if !c.joined {
					t.Errorf("probe %d (known %v) did not join (busy %v)", i, known, c.busy)
					continue
				}
				wait := c.joinedAt.Sub(c.typedAt)
				total := c.joinedAt.Sub(c.started)
				switch {
				case known && wait > 0:
					t.Errorf("returning caller waited %v for the answer", wait)
				case !known && total > 6*time.Minute:
					t.Errorf("first-time caller joined %v after dialling, want within 6 minutes", total)
				case !known && wait < 10*time.Second:
					t.Errorf("first-time caller answered after %v under attack: no wait", wait)
				}
				if known {
					worstKnown = max(worstKnown, wait)
				} else {
					worstNew = max(worstNew, total)
				}
			}
			t.Logf("%d callers during the attack: returning ones waited at most %v for the answer, first-time ones joined at most %v after dialling",
				len(probes), worstKnown, worstNew.Round(time.Second))
		})
	}
}

// TestSimulatedHits attacks until a PIN is hit, with the attacker
// enumerating every entry of the best length in random order, many times
// over; the mean time to a hit must agree with TimeToHit. Short PINs keep
// it fast: the guessing rate is what TestSimulatedGuessingRate measures for
// longer ones.
func TestSimulatedHits(t *testing.T) {
	setups := []setup{
		{"own number, 4-digit member, 6-digit facilitator", 1, 4, 6, true},
		{"shared number, 3 groups, 4-digit member, 6-digit facilitator", 3, 4, 6, false},
	}
	const trials = 20
	for _, s := range setups {
		t.Run(s.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(3, 4))
			var sum time.Duration
			var estimate time.Duration
			for range trials {
				groups, dialed, lengths := s.build(r)
				estimate = guard.TimeToHit(lengths, 6)
				b := newBridge(t, groups)
				a := newAttack(b, dialed, enumerate(r, shortest(lengths)), simT0)
				at := a.run(simT0.Add(100*simDay), true)
				if a.hits == 0 {
					t.Fatal("no hit in 100 days")
				}
				sum += at.Sub(simT0)
			}
			mean := sum / trials
			t.Logf("mean time to hit over %d attacks: %.1f hours; estimate %.1f hours", trials, mean.Hours(), estimate.Hours())
			// The mean of 20 uniform positions is within 40% of its
			// expectation with 3 standard deviations to spare.
			if ratio := float64(mean) / float64(estimate); ratio < 0.6 || ratio > 1.4 {
				t.Errorf("simulated mean %.1f h, estimate %.1f h: they disagree", mean.Hours(), estimate.Hours())
			}
		})
	}
}
