package main

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/groupbridge/groupbridge/config"
	"github.com/groupbridge/groupbridge/internal/guard"
)

// pinTarget is the expected time to a hit that config check wants from
// every number: a month of guessing at the budget's pace.
const pinTarget = 30 * 24 * time.Hour

// pinKey is one PIN by its configuration key, never its value.
type pinKey struct {
	key string
	len int
}

// exposure is what an attacker on one number can reach.
type exposure struct {
	number string // how config check names the number
	pins   []pinKey
	hit    time.Duration // guard.TimeToHit at limits.pin_budget
}

// exposures lists the numbers of cfg and the PINs each reaches: every
// group's own number, and any number no group claims (the shared access
// number), which reaches every group's PINs.
func exposures(cfg *config.Config) []exposure {
	var shared exposure
	shared.number = "the shared access number (any number no group claims)"
	var out []exposure
	for i, g := range cfg.Groups {
		var pins []pinKey
		if g.MemberPIN != "" {
			pins = append(pins, pinKey{fmt.Sprintf("groups[%d].member_pin", i), len(g.MemberPIN)})
		}
		if g.FacilitatorPIN != "" {
			pins = append(pins, pinKey{fmt.Sprintf("groups[%d].facilitator_pin", i), len(g.FacilitatorPIN)})
		}
		shared.pins = append(shared.pins, pins...)
		if g.Number != "" {
			out = append(out, exposure{number: fmt.Sprintf("groups[%d].number", i), pins: pins})
		}
	}
	out = append([]exposure{shared}, out...)
	for i := range out {
		out[i].hit = guard.TimeToHit(lengths(out[i].pins), cfg.Limits.PINBudget)
	}
	return out
}

func lengths(pins []pinKey) []int {
	out := make([]int, len(pins))
	for i, p := range pins {
		out[i] = p.len
	}
	return out
}

// weak returns the PINs of e whose length alone holds out less than the
// target, and the length that would hold it if they all had it.
func (e exposure) weak(perMinute int) (keys []string, want int) {
	ls := lengths(e.pins)
	short := map[int]bool{}
	for _, lc := range guard.LengthCounts(ls) {
		if guard.TimeToHitLength(ls, lc.Len, perMinute) < pinTarget {
			short[lc.Len] = true
		}
	}
	var moved []int
	for _, p := range e.pins {
		if short[p.len] {
			keys = append(keys, p.key)
			moved = append(moved, p.len)
		}
	}
	if len(keys) == 0 {
		return nil, 0
	}
	// The shortest length at which the weak PINs, lengthened together
	// (beside the others already that long), reach the target; 10 is the
	// longest a PIN may be.
	for want = minLen(moved) + 1; want < 10; want++ {
		all := slices.Repeat([]int{want}, len(moved))
		for _, l := range ls {
			if l == want && !short[l] {
				all = append(all, l)
			}
		}
		if guard.TimeToHit(all, perMinute) >= pinTarget {
			break
		}
	}
	return keys, want
}

func minLen(ls []int) int {
	m := ls[0]
	for _, l := range ls {
		m = min(m, l)
	}
	return m
}

// humanDuration says a long duration in the unit a reader wants.
func humanDuration(d time.Duration) string {
	switch {
	case d >= 2*24*time.Hour:
		return fmt.Sprintf("%.1f days", d.Hours()/24)
	case d >= 2*time.Hour:
		return fmt.Sprintf("%.1f hours", d.Hours())
	default:
		return fmt.Sprintf("%.0f minutes", d.Minutes())
	}
}

// reportPINs prints how long the PINs of cfg hold against guessing at the
// budget's pace (stdout) and warns about the numbers under the target
// (warn). PINs are named by key, never by value.
func reportPINs(cfg *config.Config, stdout io.Writer, warn func(string)) {
	budget := cfg.Limits.PINBudget
	fmt.Fprintf(stdout, "PIN guessing: at limits.pin_budget %d wrong PINs a minute per number, however many caller numbers and calls are used, the expected time to hit a PIN is:\n", budget)
	for _, e := range exposures(cfg) {
		if len(e.pins) == 0 {
			continue
		}
		fmt.Fprintf(stdout, "  %s, %d PINs: %s\n", e.number, len(e.pins), humanDuration(e.hit))
		if e.hit >= pinTarget {
			continue
		}
		keys, want := e.weak(budget)
		warn(fmt.Sprintf("PINs reachable from %s can be guessed in %s on average (under 30 days): lengthen %s to %d digits or more",
			e.number, humanDuration(e.hit), strings.Join(keys, ", "), want))
	}
}
