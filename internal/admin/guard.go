package admin

import (
	"net/netip"
	"sync"
	"time"
)

// tokenGuard blocks a source address that keeps presenting wrong admin
// tokens, the way the SIP gate (sipua/auth.go) blocks a source after
// repeated digest failures and with the same numbers: 5 wrong tokens
// within a minute block the source for 5 minutes. An address counts by
// its /32 (IPv4) or /64 (IPv6).
type tokenGuard struct {
	maxFailures int
	window      time.Duration
	blockFor    time.Duration
	maxSources  int

	mu      sync.Mutex
	sources map[netip.Prefix]*guessRecord
}

type guessRecord struct {
	failures     []time.Time // within the window, oldest first
	blockedUntil time.Time
}

const (
	guardMaxFailures = 5
	guardWindow      = time.Minute
	guardBlockFor    = 5 * time.Minute
	// guardMaxSources bounds the records. When it is full of active
	// blocks a new source is counted by its /24 or /48, so that many
	// addresses cannot escape blocking by filling the table.
	guardMaxSources = 4096
)

func newTokenGuard() *tokenGuard {
	return &tokenGuard{
		maxFailures: guardMaxFailures, window: guardWindow, blockFor: guardBlockFor,
		maxSources: guardMaxSources, sources: make(map[netip.Prefix]*guessRecord),
	}
}

// guardKeys are the records an address counts in: its own and its
// aggregate's.
func guardKeys(a netip.Addr) (own, wide netip.Prefix) {
	a = a.Unmap()
	if a.Is4() {
		own, _ = a.Prefix(32)
		wide, _ = a.Prefix(24)
	} else {
		own, _ = a.Prefix(64)
		wide, _ = a.Prefix(48)
	}
	return own, wide
}

// blocked reports how long src stays blocked (0: not blocked).
func (g *tokenGuard) blocked(src netip.Addr, now time.Time) time.Duration {
	if !src.IsValid() {
		return 0
	}
	own, wide := guardKeys(src)
	g.mu.Lock()
	defer g.mu.Unlock()
	var left time.Duration
	for _, k := range [2]netip.Prefix{own, wide} {
		if r := g.sources[k]; r != nil && now.Before(r.blockedUntil) {
			left = max(left, r.blockedUntil.Sub(now))
		}
	}
	return left
}

// fail counts a wrong token from src and reports whether src is blocked
// now because of it.
func (g *tokenGuard) fail(src netip.Addr, now time.Time) bool {
	if !src.IsValid() {
		return false
	}
	own, wide := guardKeys(src)
	g.mu.Lock()
	defer g.mu.Unlock()
	r := g.sources[own]
	if r == nil {
		if len(g.sources) >= g.maxSources {
			g.sweepLocked(now)
		}
		key := own
		if len(g.sources) >= g.maxSources {
			key = wide // the table is full of blocks: count the neighbourhood
			if r = g.sources[wide]; r == nil && len(g.sources) >= g.maxSources+g.maxSources/4 {
				return false
			}
		}
		if r == nil {
			r = &guessRecord{}
			g.sources[key] = r
		}
	}
	cut := 0
	for cut < len(r.failures) && now.Sub(r.failures[cut]) >= g.window {
		cut++
	}
	r.failures = append(r.failures[cut:], now)
	if len(r.failures) < g.maxFailures {
		return false
	}
	r.failures = r.failures[:0]
	r.blockedUntil = now.Add(g.blockFor)
	return true
}

// forgive forgets the failures of a source that got the token right.
func (g *tokenGuard) forgive(src netip.Addr) {
	if !src.IsValid() {
		return
	}
	own, _ := guardKeys(src)
	g.mu.Lock()
	defer g.mu.Unlock()
	delete(g.sources, own)
}

func (g *tokenGuard) sweepLocked(now time.Time) {
	for k, r := range g.sources {
		if now.Before(r.blockedUntil) {
			continue
		}
		if n := len(r.failures); n == 0 || now.Sub(r.failures[n-1]) >= g.window {
			delete(g.sources, k)
		}
	}
}

// remoteAddr is the address a request came from (the connection's, never
// a header's); invalid when it cannot be read.
func remoteAddr(remote string) netip.Addr {
	ap, err := netip.ParseAddrPort(remote)
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}
