// Package clock is the one 20 ms clock that drives all mixing. Every room and
// every caller still in the PIN prompt is a Ticker on it: one goroutine, one
// timer, however many calls there are.
package clock

import (
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/groupbridge/groupbridge/media/pcm"
)

// Ticker is driven by the clock. Tick must not block: it runs on the
// goroutine that paces everybody's audio.
type Ticker interface {
	Tick(now time.Time)
}

// PanicHandler is told when a Ticker panicked; the clock has recovered and
// goes on with the others.
type PanicHandler func(t Ticker, recovered any)

// Clock calls every registered Ticker once per period, on one goroutine,
// against absolute deadlines so that a late tick does not shift all later
// ones.
type Clock struct {
	period  time.Duration
	onPanic PanicHandler
	log     *slog.Logger

	mu      sync.Mutex
	tickers []Ticker                 // copy-on-write: the loop reads a snapshot
	snap    atomic.Pointer[[]Ticker] // what the loop iterates

	ticks     atomic.Int64
	late      atomic.Int64 // ticks that started more than a period late
	lastNanos atomic.Int64 // duration of the last tick's work
	panics    atomic.Int64 // ticks of one Ticker that panicked and were recovered

	observe func(time.Duration) // told each tick's work time; set before Start
	last    []Ticker            // ticked after all others; set before Start

	stop chan struct{}
	done chan struct{}
	once sync.Once
}

// Observe sets a function told how long each tick's work took (a metrics
// histogram). It must be set before Start and must not block.
func (c *Clock) Observe(f func(time.Duration)) { c.observe = f }

// AddLast registers t to be ticked after every other Ticker of each
// period: what sends the rooms' output gathered during the tick. It must
// be called before Start.
func (c *Clock) AddLast(t Ticker) { c.last = append(c.last, t) }

// New returns a stopped clock with the given period (0 means 20 ms).
func New(period time.Duration, log *slog.Logger, onPanic PanicHandler) *Clock {
	if period <= 0 {
		period = pcm.FrameDuration
	}
	if log == nil {
		log = slog.Default()
	}
	c := &Clock{period: period, onPanic: onPanic, log: log, stop: make(chan struct{}), done: make(chan struct{})}
	empty := []Ticker{}
	c.snap.Store(&empty)
	return c
}

// Add registers t; it is ticked from the next period on.
func (c *Clock) Add(t Ticker) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.tickers = append(c.tickers, t)
	c.publish()
}

// Remove unregisters t. After Remove returns, t may still be inside a Tick
// that had already started.
func (c *Clock) Remove(t Ticker) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, x := range c.tickers {
		if x == t {
			c.tickers = append(c.tickers[:i:i], c.tickers[i+1:]...)
			break
		}
	}
	c.publish()
}

func (c *Clock) publish() {
	s := append([]Ticker(nil), c.tickers...)
	c.snap.Store(&s)
}

// Start runs the clock until Stop.
func (c *Clock) Start() {
	go c.run()
}

// Stop ends the clock and waits for the current tick to finish.
func (c *Clock) Stop() {
	c.once.Do(func() { close(c.stop) })
	<-c.done
}

// Panics returns how many Ticker panics the clock has recovered.
func (c *Clock) Panics() int64 { return c.panics.Load() }

// Stats returns how many ticks ran, how many started late, and how long
// the last one's work took.
func (c *Clock) Stats() (ticks, late int64, last time.Duration) {
	return c.ticks.Load(), c.late.Load(), time.Duration(c.lastNanos.Load())
}

func (c *Clock) run() {
	defer close(c.done)
	timer := time.NewTimer(c.period)
	defer timer.Stop()
	next := time.Now().Add(c.period)
	for {
		select {
		case <-c.stop:
			return
		case <-timer.C:
		}
		now := time.Now()
		if now.Sub(next) > c.period {
			// We fell more than a period behind (the machine stalled): do
			// not burst to catch up, which would flood every caller with
			// packets; resynchronise instead.
			c.late.Add(1)
			next = now
		}
		c.tickAll(now)
		c.ticks.Add(1)
		took := time.Since(now)
		c.lastNanos.Store(int64(took))
		if c.observe != nil {
			c.observe(took)
		}
		next = next.Add(c.period)
		timer.Reset(time.Until(next))
	}
}

func (c *Clock) tickAll(now time.Time) {
	for _, t := range *c.snap.Load() {
		c.safeTick(t, now)
	}
	for _, t := range c.last {
		c.safeTick(t, now)
	}
}

// safeTick is the recover boundary around one room's (or caller's) tick.
// The panic's value is not logged here (it may hold a caller's digits and
// this package cannot redact them): the handler, which knows the ticker,
// logs what may be logged.
func (c *Clock) safeTick(t Ticker, now time.Time) {
	defer func() {
		if r := recover(); r != nil {
			c.panics.Add(1)
			c.log.Error("panic in mixing tick recovered", "ticker", fmt.Sprintf("%T", t))
			c.handlePanic(t, r)
		}
	}()
	t.Tick(now)
}

// handlePanic tells onPanic about a recovered panic. A panic in the
// handler itself is recovered too: the clock goroutine paces everybody's
// audio and must survive its own error path.
func (c *Clock) handlePanic(t Ticker, recovered any) {
	if c.onPanic == nil {
		return
	}
	defer func() {
		if r := recover(); r != nil {
			c.log.Error("panic in the mixing clock's panic handler recovered", "ticker", fmt.Sprintf("%T", t))
		}
	}()
	c.onPanic(t, recovered)
}
