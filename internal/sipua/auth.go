package sipua

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/groupbridge/groupbridge/internal/logging"
	"github.com/groupbridge/groupbridge/internal/wallclock"
	"github.com/icholy/digest"
)

// User is an account that a softphone calling from an untrusted address
// authenticates as, with SIP digest (RFC 3261 22, RFC 8760).
type User struct {
	Name     string
	Password string
}

// Who may call (the dialog-peer and digest units of the chain, screen.go):
//   - requests inside a call we know: from its peer (dialog.go);
//   - ACK, CANCEL and OPTIONS outside a call: always;
//   - a source in Config.Trusted or the registrar's address: always;
//   - a blocked source: 403;
//   - any other source: a digest challenge when users are configured, or 403.
//
// Nonces carry their own timestamp signed with an HMAC key made at start
// and bound to the source address, so a nonce seen on the wire is of no use
// from another address. Only nonces answered correctly are remembered, for
// their short life, with their count: an answer replayed from the same
// address is refused, and one computed for another Request-URI too.
type gate struct {
	realm   string
	trusted []netip.Prefix
	users   map[string]string // name -> password
	key     [32]byte

	maxFailures int           // this many failures within window...
	window      time.Duration //
	blockFor    time.Duration // ...block the source this long
	nonceTTL    time.Duration // a nonce older than this is stale

	registrar atomic.Pointer[[]netip.Addr] // resolved registrar addresses
	events    Events                       // hooks for metrics; set before use

	mu      sync.Mutex
	sources map[netip.Prefix]*sourceRecord // by sourceKey
	// aggregates count new sources by aggregateKey while sources is full
	// of active blocks.
	aggregates map[netip.Prefix]*sourceRecord
	nonces     map[string]nonceUse // nonces answered correctly, until they expire

	challenges, failures, blocked atomic.Uint64
}

// sourceRecord is what the gate remembers of a source that failed.
type sourceRecord struct {
	failures     []time.Time // within the window, oldest first
	blockedUntil time.Time
	last         time.Time // the latest failure: the oldest record is evicted first
}

// nonceUse is what a nonce was last used with: a captured Authorization
// header replayed with the same nonce count is refused.
type nonceUse struct {
	nc     int // the highest nonce count accepted; 0 for RFC 2069 (no qop)
	issued time.Time
}

// Defaults of the gate: a password guesser gets 5 tries a minute, then waits
// 5 minutes; a nonce lives a minute (a softphone that keeps one longer is
// told stale=true and retries without asking its user).
const (
	defaultMaxFailures = 5
	defaultAuthWindow  = time.Minute
	defaultBlockFor    = 5 * time.Minute
	defaultNonceTTL    = time.Minute
	// maxSources bounds the failure records: spoofed UDP sources must not
	// grow memory without end. When full, expired records are swept, then
	// the oldest record that is not an active block is evicted; when every
	// record is an active block, new sources are counted by their /24
	// (IPv4) or /48 (IPv6) in up to maxAggregates more records, so many
	// addresses cannot escape blocking by filling the table.
	maxSources    = 4096
	maxAggregates = 1024
	// maxNonces bounds the nonces remembered against replay. Only a right
	// password adds one, and one lives nonceTTL; when full of live ones a
	// new answer is told stale and retried later.
	maxNonces = 65536
	// nonceSkew tolerates a nonce dated slightly in the future (clock steps).
	nonceSkew = 5 * time.Second
)

// defaultTrusted is used when Config.Trusted is nil: loopback only.
var defaultTrusted = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}

func newGate(realm string, trusted []netip.Prefix, users []User) (*gate, error) {
	g := &gate{
		realm:       realm,
		trusted:     trusted,
		users:       make(map[string]string, len(users)),
		maxFailures: defaultMaxFailures,
		window:      defaultAuthWindow,
		blockFor:    defaultBlockFor,
		nonceTTL:    defaultNonceTTL,
		sources:     make(map[netip.Prefix]*sourceRecord),
		aggregates:  make(map[netip.Prefix]*sourceRecord),
		nonces:      make(map[string]nonceUse),
	}
	if g.trusted == nil {
		g.trusted = defaultTrusted
	}
	for i, u := range users {
		switch {
		case u.Name == "":
			return nil, fmt.Errorf("sipua: user %d has no name", i)
		case u.Password == "":
			return nil, fmt.Errorf("sipua: user %d has no password", i)
		}
		if _, dup := g.users[u.Name]; dup {
			return nil, fmt.Errorf("sipua: user %d repeats a name", i)
		}
		g.users[u.Name] = u.Password
	}
	if _, err := rand.Read(g.key[:]); err != nil {
		return nil, fmt.Errorf("sipua: nonce key: %w", err)
	}
	return g, nil
}

// trustedSource reports whether calls from a need no authentication.
func (g *gate) trustedSource(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range g.trusted {
		if p.Contains(a) {
			return true
		}
	}
	if r := g.registrar.Load(); r != nil && slices.Contains(*r, a) {
		return true
	}
	return false
}

// verdict is what the gate says of one request from an untrusted source.
type verdict int

const (
	vAdmit     verdict = iota // credentials are good
	vChallenge                // no usable credentials: 401 with a fresh nonce
	vStale                    // good credentials on an old nonce: 401 stale=true
	vForbidden                // no users, or wrong credentials: 403
	vBlocked                  // the source is blocked: 403
)

// check decides on a request from the untrusted source src. It returns the
// user name for vAdmit, and whether this request got the source blocked.
func (g *gate) check(req *sip.Request, src netip.Addr, now time.Time) (v verdict, user string, blockedNow bool) {
	src = src.Unmap()
	if g.isBlocked(src, now) {
		g.blocked.Add(1)
		if g.events.SourceBlocked != nil {
			g.events.SourceBlocked()
		}
		return vBlocked, "", false
	}
	if len(g.users) == 0 {
		return vForbidden, "", false
	}
	switch res, name := g.verify(req, src, now); res {
	case authOK:
		g.forgive(src)
		return vAdmit, name, false
	case authStale:
		g.challenges.Add(1)
		return vStale, "", false
	case authNone:
		g.challenges.Add(1)
		return vChallenge, "", false
	default:
		g.failures.Add(1)
		if g.events.AuthFailure != nil {
			g.events.AuthFailure()
		}
		return vForbidden, "", g.fail(src, now)
	}
}

// authResult is the outcome of checking a request's credentials.
type authResult int

const (
	authNone   authResult = iota // no credentials for our realm, or a nonce we did not make
	authOK                       // right password, fresh nonce
	authStale                    // right password, expired nonce
	authFailed                   // wrong password, unknown user, or a malformed answer
)

// verify checks the Authorization header for our realm.
func (g *gate) verify(req *sip.Request, src netip.Addr, now time.Time) (authResult, string) {
	var cred *digest.Credentials
	for _, h := range req.GetHeaders("Authorization") {
		c, err := digest.ParseCredentials(h.Value())
		if err != nil {
			continue // not digest, or unreadable: as if absent, so challenged
		}
		if c.Realm == g.realm {
			cred = c
			break
		}
	}
	if cred == nil {
		return authNone, ""
	}
	issued, ok := g.nonceTime(cred.Nonce, src)
	if !ok {
		// Not ours: made before a restart, or for another address. The
		// answer cannot be checked, so it is neither right nor wrong.
		return authNone, ""
	}
	alg := strings.ToUpper(cred.Algorithm)
	switch {
	case alg != "" && alg != "MD5" && alg != "SHA-256":
		return authFailed, ""
	case cred.Userhash:
		return authFailed, ""
	case cred.QOP == "auth" && (cred.Cnonce == "" || cred.Nc <= 0):
		return authFailed, ""
	case cred.QOP != "auth" && cred.QOP != "":
		// "" is RFC 2069 digest, still sent by old phones.
		return authFailed, ""
	case cred.URI == "" || cred.Response == "":
		return authFailed, ""
	case !sameURI(cred.URI, &req.Recipient):
		// Computed for another Request-URI (RFC 7616 3.4.6): a captured
		// answer for one number must not call another.
		return authFailed, ""
	}
	password, known := g.users[cred.Username]
	if !known {
		// Hash anyway, so that timing does not tell which names exist.
		password = "\x00unknown user"
	}
	chal := &digest.Challenge{Realm: g.realm, Nonce: cred.Nonce, Algorithm: cred.Algorithm}
	if cred.QOP != "" {
		chal.QOP = []string{cred.QOP}
	}
	want, err := digest.Digest(chal, digest.Options{
		Method:   string(req.Method),
		URI:      cred.URI,
		Username: cred.Username,
		Password: password,
		Cnonce:   cred.Cnonce,
		Count:    cred.Nc,
	})
	if err != nil {
		return authFailed, ""
	}
	if subtle.ConstantTimeCompare([]byte(want.Response), []byte(strings.ToLower(cred.Response))) != 1 || !known {
		return authFailed, ""
	}
	if age := now.Sub(issued); age > g.nonceTTL || age < -nonceSkew {
		return authStale, ""
	}
	if !g.useNonce(cred.Nonce, cred.QOP != "", cred.Nc, issued, now) {
		// A replay (or a client that reuses its count): a fresh nonce,
		// not a failure, so replays cannot get the real client blocked.
		return authStale, ""
	}
	return authOK, cred.Username
}

// useNonce records a correct answer on nonce with count nc and reports
// whether it is new: with qop the count must grow (RFC 7616 3.4), without
// (RFC 2069, no count) the nonce is good once.
func (g *gate) useNonce(nonce string, counted bool, nc int, issued, now time.Time) bool {
	if !counted {
		nc = 0
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	u, seen := g.nonces[nonce]
	if seen && (!counted || nc <= u.nc) {
		return false
	}
	if !seen && len(g.nonces) >= maxNonces {
		g.sweepNoncesLocked(now)
		if len(g.nonces) >= maxNonces {
			return false
		}
	}
	g.nonces[nonce] = nonceUse{nc: nc, issued: issued}
	return true
}

// sweepNoncesLocked forgets nonces past their lifetime: they are refused
// as stale anyway.
func (g *gate) sweepNoncesLocked(now time.Time) {
	for n, u := range g.nonces {
		if now.Sub(u.issued) > g.nonceTTL+nonceSkew {
			delete(g.nonces, n)
		}
	}
}

// sameURI reports whether the digest uri names the Request-URI: the same
// text, or equal parsed URIs (RFC 3261 19.1.4 for what matters here:
// scheme, user, password, host and port; tel URIs by their number).
func sameURI(credURI string, ruri *sip.Uri) bool {
	if credURI == ruri.String() {
		return true
	}
	var u sip.Uri
	if err := sip.ParseUri(credURI, &u); err != nil {
		return false
	}
	if !strings.EqualFold(u.Scheme, ruri.Scheme) {
		return false
	}
	if strings.EqualFold(u.Scheme, "tel") {
		a, _, _ := strings.Cut(u.Raw(), ";")
		b, _, _ := strings.Cut(ruri.Raw(), ";")
		return a == b
	}
	return u.User == ruri.User && u.Password == ruri.Password &&
		strings.EqualFold(u.Host, ruri.Host) && u.Port == ruri.Port
}

// nonceLen is the decoded size of a nonce: a timestamp and a truncated MAC.
const nonceLen = 8 + 16

// nonce makes a nonce for src: base64url(unix-nanos || HMAC(ts || src)[:16]).
func (g *gate) nonce(src netip.Addr, now time.Time) string {
	var b [nonceLen]byte
	binary.BigEndian.PutUint64(b[:8], uint64(now.UnixNano()))
	copy(b[8:], g.nonceMAC(b[:8], src))
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func (g *gate) nonceMAC(ts []byte, src netip.Addr) []byte {
	m := hmac.New(sha256.New, g.key[:])
	m.Write(ts)
	m.Write(src.Unmap().AsSlice())
	return m.Sum(nil)[:16]
}

// nonceTime returns when a nonce was made, if we made it for src.
func (g *gate) nonceTime(n string, src netip.Addr) (time.Time, bool) {
	if base64.RawURLEncoding.DecodedLen(len(n)) != nonceLen {
		return time.Time{}, false
	}
	var b [nonceLen]byte
	if _, err := base64.RawURLEncoding.Decode(b[:], []byte(n)); err != nil {
		return time.Time{}, false
	}
	if !hmac.Equal(b[8:], g.nonceMAC(b[:8], src)) {
		return time.Time{}, false
	}
	return time.Unix(0, int64(binary.BigEndian.Uint64(b[:8]))), true
}

// challengeHeaders returns the WWW-Authenticate headers of a 401: MD5, then
// SHA-256 (RFC 8760), with one nonce. RFC 8760 would list the preferred
// SHA-256 first, but many deployed user agents answer only the first
// challenge and give up when it is not MD5 (sipp 3.6 does: "authentication
// must use MD5"), so MD5 leads; clients that prefer SHA-256 still find it.
func (g *gate) challengeHeaders(src netip.Addr, now time.Time, stale bool) []sip.Header {
	n := g.nonce(src, now)
	out := make([]sip.Header, 0, 2)
	for _, alg := range []string{"MD5", "SHA-256"} {
		c := digest.Challenge{Realm: g.realm, Nonce: n, Algorithm: alg, QOP: []string{"auth"}, Stale: stale}
		out = append(out, sip.NewHeader("WWW-Authenticate", c.String()))
	}
	return out
}

// sourceKey is the failure record of an address: IPv4 by itself, IPv6 by
// its /64, which one host gets whole (RFC 4291) and changes addresses in.
func sourceKey(a netip.Addr) netip.Prefix {
	a = a.Unmap()
	if a.Is4() {
		return netip.PrefixFrom(a, 32)
	}
	p, _ := a.Prefix(64)
	return p
}

// aggregateKey is the record an address is counted in while the table is
// full of active blocks: its /24 (IPv4) or /48 (IPv6).
func aggregateKey(a netip.Addr) netip.Prefix {
	a = a.Unmap()
	bits := 48
	if a.Is4() {
		bits = 24
	}
	p, _ := a.Prefix(bits)
	return p
}

// isBlocked reports whether src, or its aggregate, is blocked now.
func (g *gate) isBlocked(src netip.Addr, now time.Time) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if r := g.sources[sourceKey(src)]; r != nil && now.Before(r.blockedUntil) {
		return true
	}
	r := g.aggregates[aggregateKey(src)]
	return r != nil && now.Before(r.blockedUntil)
}

// fail records a failure of src and reports whether it got src blocked.
func (g *gate) fail(src netip.Addr, now time.Time) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	r := g.recordLocked(src, now)
	if r == nil {
		return false
	}
	cut := 0
	for cut < len(r.failures) && now.Sub(r.failures[cut]) >= g.window {
		cut++
	}
	r.failures = append(r.failures[cut:], now)
	r.last = now
	if len(r.failures) < g.maxFailures {
		return false
	}
	r.failures = r.failures[:0]
	r.blockedUntil = now.Add(g.blockFor)
	return true
}

// recordLocked finds or makes the record src's failures count in. When
// the table is full it sweeps, then evicts the oldest record that is not
// an active block; when all are, src is counted by its aggregate. It
// returns nil only when the aggregates are full of active blocks too.
func (g *gate) recordLocked(src netip.Addr, now time.Time) *sourceRecord {
	key := sourceKey(src)
	if r := g.sources[key]; r != nil {
		return r
	}
	if len(g.sources) >= maxSources {
		g.sweepLocked(now)
	}
	if len(g.sources) < maxSources || g.evictOldestLocked(now) {
		r := &sourceRecord{}
		g.sources[key] = r
		return r
	}
	key = aggregateKey(src)
	if r := g.aggregates[key]; r != nil {
		return r
	}
	if len(g.aggregates) >= maxAggregates {
		return nil
	}
	r := &sourceRecord{}
	g.aggregates[key] = r
	return r
}

// evictOldestLocked forgets the record whose last failure is the oldest,
// among those not blocked now; it reports whether there was one.
func (g *gate) evictOldestLocked(now time.Time) bool {
	var oldest netip.Prefix
	var at time.Time
	for k, r := range g.sources {
		if now.Before(r.blockedUntil) {
			continue
		}
		if !oldest.IsValid() || r.last.Before(at) {
			oldest, at = k, r.last
		}
	}
	if !oldest.IsValid() {
		return false
	}
	delete(g.sources, oldest)
	return true
}

// forgive forgets the failures of a source that got its password right (a
// blocked source never gets this far). An aggregate's record stays.
func (g *gate) forgive(src netip.Addr) {
	g.mu.Lock()
	defer g.mu.Unlock()
	delete(g.sources, sourceKey(src))
}

// sweep forgets records and nonces that no longer matter.
func (g *gate) sweep(now time.Time) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.sweepLocked(now)
	g.sweepNoncesLocked(now)
}

func (g *gate) sweepLocked(now time.Time) {
	for _, m := range [2]map[netip.Prefix]*sourceRecord{g.sources, g.aggregates} {
		for a, r := range m {
			if now.Before(r.blockedUntil) {
				continue
			}
			if n := len(r.failures); n == 0 || now.Sub(r.failures[n-1]) >= g.window {
				delete(m, a)
			}
		}
	}
}

// sourceAddr returns the address a request came from (the packet's, never
// a header's).
func sourceAddr(req *sip.Request) (netip.Addr, error) {
	ap, err := netip.ParseAddrPort(req.Source())
	if err != nil {
		return netip.Addr{}, fmt.Errorf("request source: %w", err)
	}
	if !ap.Addr().IsValid() {
		return netip.Addr{}, errors.New("request source: no address")
	}
	return ap.Addr().Unmap(), nil
}

// trustScreen is the trust decision (screen.go, step 1): it reads where a
// request came from and whether that source is trusted, for the units
// after it. It stops nothing: a source it cannot read is left to the
// units that need one.
type trustScreen struct {
	trusted func(netip.Addr) bool // gate.trustedSource: sip.trusted and the registrar
}

func (trustScreen) name() string { return "trust" }

func (t trustScreen) screen(req *sip.Request, _ sip.ServerTransaction, r facts) (facts, bool) {
	if src, err := sourceAddr(req); err == nil {
		r.src, r.trusted = src, t.trusted(src)
	}
	// The per-source units screen the packet's source unless a proxy
	// names another (the origin unit).
	r.origin, r.originTrusted = r.src, r.trusted
	return r, true
}

// digestScreen decides on requests outside a dialog we know (screen.go,
// step 7): a trusted source passes; others authenticate with digest as
// one of sip.users, or are refused. ACK and CANCEL cannot be challenged
// (RFC 3261 22.1: they cannot be resubmitted), nor is OPTIONS, which PBXs
// use to see that we are up.
type digestScreen struct {
	gate  *gate
	resp  responder
	log   *slog.Logger
	clock wallclock.Clock
	// Requests refused for want of sip.trusted or sip.users since the
	// last log line.
	refusedLog logging.Throttle
}

func (*digestScreen) name() string { return "digest" }

func (d *digestScreen) screen(req *sip.Request, tx sip.ServerTransaction, r facts) (facts, bool) {
	if r.call != nil || req.Method == sip.ACK || req.Method == sip.CANCEL || req.Method == sip.OPTIONS {
		return r, true // the dialog's peer, or not for a challenge
	}
	if !r.src.IsValid() {
		d.resp.respond(req, tx, 400, "Bad Request")
		return r, false
	}
	if r.trusted {
		return r, true
	}
	// Behind a proxy, nonces, failures and blocks are the caller's own.
	user, ok := d.admit(req, tx, r.origin)
	r.user = user
	return r, ok
}

// admit checks the credentials of a request from the untrusted source
// src, answering it when it may not go on. It returns the user name.
func (d *digestScreen) admit(req *sip.Request, tx sip.ServerTransaction, src netip.Addr) (string, bool) {
	g := d.gate
	now := d.clock.Now()
	v, user, blockedNow := g.check(req, src, now)
	switch v {
	case vAdmit:
		return user, true
	case vChallenge, vStale:
		d.resp.respond(req, tx, 401, "Unauthorized", g.challengeHeaders(src, now, v == vStale)...)
	case vBlocked:
		d.resp.respond(req, tx, 403, "Forbidden")
	default:
		d.resp.respond(req, tx, 403, "Forbidden")
		switch {
		case blockedNow:
			d.log.Warn("SIP source blocked after repeated authentication failures", "source", src.String(),
				"failures", g.maxFailures, "for", g.blockFor.String())
		case len(g.users) > 0:
			d.log.Info("SIP authentication failed", "source", src.String(), "method", string(req.Method))
		default:
			// Scanners send these all day: one line a minute is enough.
			if d.refusedLog.Allow(now) {
				d.log.Info("SIP request refused: source not in sip.trusted and no sip.users", "source", src.String(),
					"method", string(req.Method))
			}
		}
	}
	return "", false
}
