package sipua

import (
	"time"

	"github.com/groupbridge/groupbridge/internal/testkit"
)

// fakeClock is testkit's ManualClock as a sipua Clock.
type fakeClock struct{ *testkit.ManualClock }

func newFakeClock() fakeClock { return fakeClock{testkit.NewManualClock()} }

func (c fakeClock) NewTimer(d time.Duration) Timer { return c.ManualClock.NewTimer(d) }
