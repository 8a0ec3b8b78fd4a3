package sipua

import (
	"bytes"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/groupbridge/groupbridge/internal/wallclock"
)

// Floods. A public SIP address is scanned and flooded within hours of going
// live. Requests from untrusted sources pass a per-source token bucket and a
// scanner check before anything else is done with them: over UDP on the raw
// datagram, before sipgo parses it or opens a transaction (floodScreen.datagram);
// over TCP and TLS, where a read is not a message, on each parsed request
// before any handler work (floodScreen.screen). What fails is dropped without an
// answer, so that a flood is never amplified and a scanner learns nothing.
// Trusted sources and the registrar are never screened: the PBX carries
// everyone's calls, and a PBX whose requests go unanswered marks the bridge
// down.

// Limits are the server's defences against floods and overlong calls. The
// zero value turns each of them off. Config.Limits sets them at start and
// SetLimits changes them while the server runs.
type Limits struct {
	// SourceRate is the requests per second one untrusted source address
	// may send on average (the token bucket's refill); 0 turns the
	// per-source limit off.
	SourceRate float64
	// SourceBurst is the token bucket's size: the requests an untrusted
	// source may send at once. At least 1 is used when SourceRate is set.
	SourceBurst int
	// MaxSources bounds the per-source table (default 16384 addresses,
	// about a megabyte). When it is full and no entry is idle, new sources
	// share one bucket, so a flood from spoofed addresses cannot grow it.
	MaxSources int
	// MaxCalls caps the calls up or being set up, from every source,
	// trusted ones included; an INVITE beyond it gets 503 with
	// Retry-After. 0 is no cap.
	MaxCalls int
	// MaxCall ends a call (BYE, end reason "max-call") once it has lasted
	// this long; 0 is no limit. A change applies to calls in progress too.
	MaxCall time.Duration
	// DropScanners drops requests from untrusted sources whose User-Agent,
	// or From display name or user, names a known SIP scanner.
	DropScanners bool
	// SetupPerSource caps the calls of one untrusted source address
	// (IPv6: its /64) in setup or not yet admitted (Call.Admitted); an
	// INVITE beyond it gets 503. 0 is no cap.
	SetupPerSource int
	// SetupPerUser is the same for the calls of one sip.users account.
	SetupPerUser int
	// TCPPerSource caps the TCP and TLS connections one untrusted source
	// address (IPv6: its /64) may hold open; more are closed at once. 0
	// is no cap.
	TCPPerSource int
	// TCPIdle closes an untrusted connection that has not carried a
	// complete request this long after it was accepted. 0 is off.
	TCPIdle time.Duration
	// TLSHandshake bounds a TLS handshake (0: a minute).
	TLSHandshake time.Duration
}

// Reasons a request is dropped unanswered, as Events.RequestDropped (and,
// for an INVITE, Events.CallRejected) tells them.
const (
	DropRateLimited = "rate-limited" // over Limits.SourceRate
	DropScanner     = "scanner"      // a known scanner (Limits.DropScanners)
	DropUntrusted   = "untrusted"    // not in Trusted, and Config.OnlyTrusted
)

// Reasons an INVITE is refused before it is answered, as
// Events.CallRejected tells them (besides the Drop* reasons).
const (
	RejectMaxCalls       = "max-calls"       // Limits.MaxCalls reached: 503
	RejectDraining       = "draining"        // Drain was called: 503
	RejectPortsExhausted = "ports-exhausted" // no free RTP port: 503
)

// EndMaxCall is the end reason of a call hung up at Limits.MaxCall.
const EndMaxCall = "max-call"

const (
	defaultMaxSources = 16384
	// sweepEvery is how often a full per-source table is swept for idle
	// entries: a sweep is linear in the table, so a spoofed flood that
	// keeps it full must not make every new source pay for one.
	sweepEvery = time.Second
	// maxScanned bounds how much of a header value the scanner check
	// reads: a scanner's name is near the start, and a huge crafted
	// header must cost no more than a short one.
	maxScanned = 256
	// retryAfterFull is the Retry-After of a 503 at Limits.MaxCalls.
	retryAfterFull = 30
)

// errMaxCalls is newCall's answer when Limits.MaxCalls is reached.
var errMaxCalls = errors.New("sipua: limits.max_calls reached")

// withDefaults fills in what a zero field means when the limit is on.
func (l Limits) withDefaults() Limits {
	if l.MaxSources <= 0 {
		l.MaxSources = defaultMaxSources
	}
	if l.SourceRate > 0 && l.SourceBurst < 1 {
		l.SourceBurst = 1
	}
	return l
}

// SetLimits changes the limits from now on: a lower rate or burst applies
// to the next request of every source, a MaxCall to calls in progress too.
func (s *Server) SetLimits(l Limits) {
	l = l.withDefaults()
	s.limits.Store(&l)
	s.flood.configure(l)
	s.setup.configure(l)
	s.accept.configure(l)
}

// SetAnswerDelay changes how long calls that arrive from now on ring
// before they are answered (Config.AnswerDelay).
func (s *Server) SetAnswerDelay(d time.Duration) { s.answerDelay.Store(int64(d)) }

// bucket is one source's token bucket.
type bucket struct {
	tokens float64
	last   time.Duration // when tokens was computed, on the limiter's clock
}

// take refills b up to now and takes a token if there is one.
func (b *bucket) take(now time.Duration, rate, burst float64) bool {
	b.tokens = min(burst, b.tokens+(now-b.last).Seconds()*rate)
	b.last = now
	if b.tokens >= 1 {
		b.tokens--
		return true
	}
	return false
}

// idle reports whether b is full again by now: forgetting it then changes
// nothing, as a new source starts full.
func (b *bucket) idle(now time.Duration, rate, burst float64) bool {
	return b.tokens+(now-b.last).Seconds()*rate >= burst
}

// sourceLimiter holds a token bucket per source address, bounded in size.
type sourceLimiter struct {
	epoch time.Time // the clock's zero; time.Time carries a monotonic reading

	mu        sync.Mutex
	rate      float64
	burst     float64
	max       int
	sources   map[netip.Addr]bucket
	overflow  bucket // shared by new sources while the table is full
	lastSweep time.Duration
	overflows uint64 // requests that went to the shared bucket
}

// newSourceLimiter starts a limiter whose clock reads zero at epoch.
func newSourceLimiter(epoch time.Time) *sourceLimiter {
	return &sourceLimiter{epoch: epoch, max: defaultMaxSources, sources: make(map[netip.Addr]bucket)}
}

func (l *sourceLimiter) configure(rate, burst float64, max int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.rate, l.burst, l.max = rate, burst, max
	if rate <= 0 {
		clear(l.sources) // off: nothing to remember
	}
}

// allow takes a token for a request from src at now, and reports whether
// there was one. It allocates only when the table grows.
func (l *sourceLimiter) allow(src netip.Addr, now time.Time) bool {
	t := now.Sub(l.epoch)
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.rate <= 0 {
		return true
	}
	b, known := l.sources[src]
	if !known {
		if len(l.sources) >= l.max && t-l.lastSweep >= sweepEvery {
			l.sweepLocked(t)
		}
		if len(l.sources) >= l.max {
			if l.overflows == 0 {
				l.overflow = bucket{tokens: l.burst, last: t} // starts full, like any bucket
			}
			l.overflows++
			return l.overflow.take(t, l.rate, l.burst)
		}
		b = bucket{tokens: l.burst, last: t}
	}
	ok := b.take(t, l.rate, l.burst)
	l.sources[src] = b
	return ok
}

// sweep forgets the sources whose buckets are full again.
func (l *sourceLimiter) sweep(now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sweepLocked(now.Sub(l.epoch))
}

func (l *sourceLimiter) sweepLocked(t time.Duration) {
	l.lastSweep = t
	for a, b := range l.sources {
		if b.idle(t, l.rate, l.burst) {
			delete(l.sources, a)
		}
	}
}

// size returns how many sources are remembered, and how many requests
// went to the shared bucket because the table was full.
func (l *sourceLimiter) size() (sources int, overflows uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.sources), l.overflows
}

// floodScreen is the flood screening (screen.go, step 3): requests from
// untrusted sources over limits.source_rate, and from known scanners, are
// dropped unanswered. Trusted sources (step 1) are never screened here.
// Behind a proxy the source is the caller's own (origin.go), and trusted
// is asked of it.
type floodScreen struct {
	trusted     func(netip.Addr) bool
	proxies     []netip.Prefix // Config.Proxies: their datagrams name their origin
	limiter     *sourceLimiter
	scanners    atomic.Bool // Limits.DropScanners
	onlyTrusted bool        // Config.OnlyTrusted: every untrusted source is dropped
	events      Events
	log         *slog.Logger
	clock       wallclock.Clock
	// Drops since the last log line, per reason.
	rateLog, scanLog, untrustedLog countedLog
}

// configure takes the unit's part of l: the per-source bucket and
// DropScanners.
func (f *floodScreen) configure(l Limits) {
	f.limiter.configure(l.SourceRate, float64(l.SourceBurst), l.MaxSources)
	f.scanners.Store(l.DropScanners)
}

// datagram is the UDP read filter: it sees each datagram before it is
// parsed, and returns nil for one to drop. TCP and TLS reads are not
// messages and pass; request handles their requests.
func (f *floodScreen) datagram(p sip.TransportReadProps, data []byte) ([]byte, error) {
	if p.Transport != "UDP" {
		return data, nil
	}
	ua, ok := p.RemoteAddr.(*net.UDPAddr)
	if !ok {
		return data, nil
	}
	src := ua.AddrPort().Addr().Unmap()
	invite := len(data) >= 7 && string(data[:7]) == "INVITE "
	if f.onlyTrusted && !f.trusted(src) {
		// The transport's source: no header may open this listener.
		f.untrusted(src, invite)
		return nil, nil
	}
	request := !(len(data) >= 4 && string(data[:4]) == "SIP/")
	if request && len(f.proxies) > 0 && inPrefixes(f.proxies, src) {
		// The caller's own address; a malformed one is refused by the
		// origin unit once parsed.
		if o, ok := rawOrigin(data); ok {
			src = o
		}
	}
	if f.trusted(src) {
		return data, nil
	}
	now := f.clock.Now()
	if !f.limiter.allow(src, now) {
		f.drop(DropRateLimited, src, invite, now)
		return nil, nil
	}
	if request && f.scanners.Load() && rawScanner(data) {
		f.drop(DropScanner, src, invite, now)
		return nil, nil
	}
	return data, nil
}

func (*floodScreen) name() string { return "flood" }

// screen screens a request that came over TCP or TLS from an untrusted
// source, as datagram does a UDP datagram; what fails is dropped (nothing
// is answered).
func (f *floodScreen) screen(req *sip.Request, _ sip.ServerTransaction, r facts) (facts, bool) {
	invite := req.Method == sip.INVITE
	if f.onlyTrusted && !r.trusted {
		// Accept closed such connections, and the read filter dropped
		// such datagrams: this is the last guard, unreadable sources
		// included.
		f.untrusted(r.src, invite)
		return r, false
	}
	if r.originTrusted || !r.origin.IsValid() || strings.EqualFold(req.Transport(), "udp") {
		return r, true // UDP: screened as a datagram already
	}
	now := f.clock.Now()
	if !f.limiter.allow(r.origin, now) {
		f.drop(DropRateLimited, r.origin, invite, now)
		return r, false
	}
	if f.scanners.Load() && scannerRequest(req) {
		f.drop(DropScanner, r.origin, invite, now)
		return r, false
	}
	return r, true
}

// untrusted drops what an untrusted source sent to a server with
// Config.OnlyTrusted (a datagram, a request, a connection).
func (f *floodScreen) untrusted(src netip.Addr, invite bool) {
	f.drop(DropUntrusted, src, invite, f.clock.Now())
}

// drop counts a dropped request, and logs the drops at most once a minute
// per reason.
func (f *floodScreen) drop(reason string, src netip.Addr, invite bool, now time.Time) {
	if h := f.events.RequestDropped; h != nil {
		h(reason)
	}
	if h := f.events.CallRejected; invite && h != nil {
		h(reason)
	}
	l, msg := &f.rateLog, "SIP requests dropped: source over limits.source_rate"
	switch reason {
	case DropScanner:
		l, msg = &f.scanLog, "SIP requests dropped: known scanner"
	case DropUntrusted:
		l, msg = &f.untrustedLog, "SIP requests dropped: source not trusted on a listener for trusted sources only"
	}
	if ok, n := l.note(now); ok {
		f.log.Warn(msg, "reason", reason, "source", src.String(), "dropped", n)
	}
}

// Scanners. Each entry is a lower-case fragment, matched case-insensitively
// anywhere in the value.
var (
	// scannerAgents are found in the User-Agent of SIP scanners and
	// attack tools; no phone or PBX sends one.
	scannerAgents = []string{
		"friendly-scanner", "sipvicious", "sipcli", "sip-scan", "sipscan", "sundayddr",
		"iwar", "vaxsipuseragent", "pplsip", "sipbomber", "siparmyknife", "sipsak-scan",
	}
	// scannerNames are found in the From display name or user that such
	// tools send. Only fragments no person's name or number holds: a short
	// one like "iwar" would drop a caller whose name contains it.
	scannerNames = []string{
		"friendly-scanner", "sipvicious", "sip-scan", "sipscan", "sundayddr", "vaxsipuseragent", "sipbomber",
	}
)

// scannerRequest reports whether a parsed request comes from a scanner.
func scannerRequest(req *sip.Request) bool {
	if h := req.GetHeader("User-Agent"); h != nil && matchAny(clip(h.Value()), scannerAgents) {
		return true
	}
	if f := req.From(); f != nil && (matchAny(clip(f.DisplayName), scannerNames) || matchAny(clip(f.Address.User), scannerNames)) {
		return true
	}
	return false
}

// rawScanner reports whether the SIP request in a datagram comes from a
// scanner, from its User-Agent and From header lines (f: is From's compact
// form). It reads only the header lines and allocates nothing.
func rawScanner(data []byte) bool {
	h := rawHeaders(data)
	for {
		name, value, ok := h.next()
		if !ok {
			return false
		}
		value = clip(value)
		switch {
		case equalFold(name, "user-agent"):
			if matchAny(value, scannerAgents) {
				return true
			}
		case equalFold(name, "from"), equalFold(name, "f"):
			// The display name and the user come before the @; the host
			// after it is nobody's name.
			if at := bytes.IndexByte(value, '@'); at >= 0 {
				value = value[:at]
			}
			if matchAny(value, scannerNames) {
				return true
			}
		}
	}
}

// rawHeaderLines walks the header lines of a SIP request in a datagram,
// before sipgo parses it, allocating nothing.
type rawHeaderLines struct{ rest []byte }

// rawHeaders starts past the request line of data.
func rawHeaders(data []byte) rawHeaderLines {
	nl := bytes.IndexByte(data, '\n')
	if nl < 0 {
		return rawHeaderLines{}
	}
	return rawHeaderLines{rest: data[nl+1:]}
}

// next returns the next header line's name and value, trimmed of spaces;
// false at the end of the headers. Lines without a colon are passed over.
func (h *rawHeaderLines) next() (name, value []byte, ok bool) {
	for len(h.rest) > 0 {
		line := h.rest
		h.rest = nil
		if nl := bytes.IndexByte(line, '\n'); nl >= 0 {
			line, h.rest = line[:nl], line[nl+1:]
		}
		if n := len(line); n > 0 && line[n-1] == '\r' {
			line = line[:n-1]
		}
		if len(line) == 0 {
			h.rest = nil
			return nil, nil, false // the end of the headers
		}
		if colon := bytes.IndexByte(line, ':'); colon >= 0 {
			return trimSpace(line[:colon]), trimSpace(line[colon+1:]), true
		}
	}
	return nil, nil, false
}

// clip keeps the first maxScanned bytes of a header value.
func clip[T string | []byte](v T) T {
	if len(v) > maxScanned {
		return v[:maxScanned]
	}
	return v
}

// matchAny reports whether h holds any of the lower-case fragments,
// ignoring ASCII case.
func matchAny[T string | []byte](h T, fragments []string) bool {
	for _, f := range fragments {
		if containsFold(h, f) {
			return true
		}
	}
	return false
}

// containsFold reports whether h holds the lower-case needle, ignoring
// ASCII case. Naive, which is fine for a bounded h and short needles.
func containsFold[T string | []byte](h T, needle string) bool {
	n := len(needle)
	for i := 0; i+n <= len(h); i++ {
		j := 0
		for j < n && lower(h[i+j]) == needle[j] {
			j++
		}
		if j == n {
			return true
		}
	}
	return false
}

// equalFold reports whether b is the lower-case s, ignoring ASCII case.
func equalFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range b {
		if lower(b[i]) != s[i] {
			return false
		}
	}
	return true
}

func lower(c byte) byte {
	if c >= 'A' && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}
