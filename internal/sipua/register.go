package sipua

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/groupbridge/groupbridge/internal/sipua/sipmsg"
	"github.com/icholy/digest"
)

// Register describes the bridge's registration to a PBX as one of its
// extensions: the PBX then sends that extension's calls to our listener.
type Register struct {
	// Registrar is the PBX's URI: sip:host or sip:host:port.
	Registrar string
	// User is the extension: the user part of the address-of-record and of
	// our Contact, and the digest user name.
	User string
	// Password answers the registrar's digest challenge; empty answers none.
	Password string
	// Expires is the lifetime asked for (whole seconds); 0 means 300 s.
	// The registration is refreshed at 80% of what the registrar grants.
	Expires time.Duration
	// Transport is "udp" or "tcp"; "" means udp when a udp listener exists,
	// else tcp. REGISTER leaves from that listener's socket.
	Transport string
}

// Registration states, as Server.Registration reports them.
const (
	RegistrationDisabled    = "disabled"    // no Register configured
	RegistrationRegistering = "registering" // the first attempt is under way
	RegistrationRegistered  = "registered"  // the registrar holds our binding
	RegistrationFailed      = "failed"      // the last attempt failed; retrying with backoff
)

// Bounds of the registration loop.
const (
	defaultExpires = 300 * time.Second
	maxExpires     = 24 * time.Hour
	backoffMin     = time.Second
	backoffMax     = 5 * time.Minute
	minRefresh     = time.Second     // even if a registrar grants next to nothing
	unregisterMax  = 5 * time.Second // Shutdown waits at most this for the un-REGISTER
	registerRounds = 5               // requests per attempt: challenges, stale nonces, 423
)

// errShutdown is the registration's error once the server has shut down.
var errShutdown = errors.New("sipua: shut down")

// registration runs the REGISTER client loop of one Register.
type registration struct {
	s         *Server
	cfg       Register
	uri       sip.Uri // the registrar
	transport string  // "udp" or "tcp"
	callID    string  // one Call-ID and From tag for every REGISTER (RFC 3261 10.2)
	fromTag   string

	// Loop timing; tests shorten them.
	backoffMin, backoffMax, minRefresh time.Duration

	// Only the loop, then the un-REGISTER after it, touch these.
	cseq    uint32
	expires time.Duration // asked for; raised by a 423's Min-Expires

	mu    sync.Mutex
	state string
	err   error
	bound bool // the registrar may hold our binding: un-REGISTER on shutdown

	cancel   context.CancelFunc
	done     chan struct{}
	stopOnce sync.Once
}

func newRegistration(s *Server, cfg Register) (*registration, error) {
	var uri sip.Uri
	if err := sip.ParseUri(cfg.Registrar, &uri); err != nil {
		return nil, fmt.Errorf("sipua: registrar %q: %w", cfg.Registrar, err)
	}
	if !strings.EqualFold(uri.Scheme, "sip") || uri.Host == "" || uri.User != "" {
		return nil, fmt.Errorf("sipua: registrar %q: want sip:host or sip:host:port", cfg.Registrar)
	}
	if cfg.User == "" {
		return nil, errors.New("sipua: register: no user")
	}
	r := &registration{
		s: s, cfg: cfg, uri: uri,
		callID:     sipmsg.NewID() + sipmsg.NewID() + "@groupbridge",
		fromTag:    sip.GenerateTagN(16),
		expires:    cfg.Expires.Truncate(time.Second),
		backoffMin: backoffMin, backoffMax: backoffMax, minRefresh: minRefresh,
		cseq:  uint32(sipmsg.RandUint64() & 0x7fff),
		state: RegistrationRegistering,
		done:  make(chan struct{}),
	}
	if r.expires <= 0 {
		r.expires = defaultExpires
	}
	r.expires = min(r.expires, maxExpires)
	switch t := strings.ToLower(cfg.Transport); t {
	case "udp", "tcp":
		r.transport = t
	case "":
		r.transport = "tcp"
		for _, l := range s.cfg.Listeners {
			if l.Transport == "udp" {
				r.transport = "udp"
			}
		}
	default:
		return nil, fmt.Errorf("sipua: register transport %q: want udp or tcp", cfg.Transport)
	}
	found := false
	for _, l := range s.cfg.Listeners {
		found = found || l.Transport == r.transport
	}
	if !found {
		return nil, fmt.Errorf("sipua: register over %s needs a %s listener", r.transport, r.transport)
	}
	// A registrar given as an IP is trusted from the start; a name once
	// resolved (see resolve).
	if a, err := netip.ParseAddr(strings.Trim(uri.Host, "[]")); err == nil {
		s.gate.registrar.Store(&[]netip.Addr{a.Unmap()})
	}
	return r, nil
}

// start runs the loop until ctx ends or stop is called.
func (r *registration) start(ctx context.Context) {
	ctx, r.cancel = context.WithCancel(ctx)
	r.s.wg.Add(1)
	go func() {
		defer r.s.wg.Done()
		defer close(r.done)
		defer sipmsg.Recover(r.s.log, "registration")
		r.run(ctx)
	}()
}

func (r *registration) run(ctx context.Context) {
	failures := 0
	for {
		granted, retryAfter, err := r.register(ctx, r.expires)
		if ctx.Err() != nil {
			return
		}
		var wait time.Duration
		if err == nil {
			if state, _ := r.status(); state != RegistrationRegistered {
				r.s.log.Info("registered", "registrar", r.uri.Host, "expires", granted.String())
			}
			failures = 0
			r.set(RegistrationRegistered, nil)
			wait = max(granted*8/10, r.minRefresh)
		} else {
			wait = r.backoff(failures)
			failures++
			if retryAfter > wait {
				wait = min(retryAfter, r.backoffMax)
			}
			r.set(RegistrationFailed, err)
			r.s.log.Warn("registration failed", "registrar", r.uri.Host, "error", err,
				"retry_in", wait.Round(time.Millisecond).String())
		}
		t := r.s.clock.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C():
		}
	}
}

// backoff returns the wait after the n-th failure in a row (from 0):
// doubling from backoffMin to backoffMax, less up to 20% of jitter so that
// bridges restarted together do not retry in step.
func (r *registration) backoff(n int) time.Duration {
	d := r.backoffMax
	if n < 30 {
		d = min(r.backoffMin<<n, r.backoffMax)
	}
	return d - time.Duration(rand.Int64N(int64(d/5)+1))
}

func (r *registration) set(state string, err error) {
	r.mu.Lock()
	changed := r.state != state
	r.state, r.err = state, err
	r.mu.Unlock()
	if f := r.s.cfg.Events.Registration; changed && f != nil {
		f(state)
	}
}

func (r *registration) status() (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.state, r.err
}

// stop ends the loop and, when the registrar may hold our binding, removes
// it (REGISTER with Expires: 0) within ctx and unregisterMax. Only the first
// call does anything.
func (r *registration) stop(ctx context.Context) {
	r.stopOnce.Do(func() { r.stopLoop(ctx) })
}

func (r *registration) stopLoop(ctx context.Context) {
	if r.cancel == nil {
		return // never started
	}
	r.cancel()
	<-r.done
	r.mu.Lock()
	bound := r.bound
	r.mu.Unlock()
	if bound {
		ctx, cancel := context.WithTimeout(ctx, unregisterMax)
		defer cancel()
		if _, _, err := r.register(ctx, 0); err != nil {
			r.s.log.Warn("un-REGISTER failed", "registrar", r.uri.Host, "error", err)
		} else {
			r.s.log.Info("unregistered", "registrar", r.uri.Host)
		}
	}
	r.set(RegistrationFailed, errShutdown)
}

// register runs one registration attempt (expires 0: removal), answering
// digest challenges and 423 Interval Too Brief. It returns the lifetime the
// registrar granted and, on failure, how long it asked us to wait.
func (r *registration) register(ctx context.Context, expires time.Duration) (granted, retryAfter time.Duration, err error) {
	dest, err := r.resolve(ctx)
	if err != nil {
		return 0, 0, err
	}
	local, err := r.s.socks.localFor(r.transport, dest.Addr())
	if err != nil {
		return 0, 0, err
	}
	contact := sip.Uri{Scheme: "sip", User: r.cfg.User, Host: local.host, Port: local.port}
	if r.transport == "tcp" {
		contact.UriParams = sip.NewParams()
		contact.UriParams.Add("transport", "tcp")
	}
	var auth sip.Header
	var stale bool
	for round := 0; ; round++ {
		req := r.request(dest, local, contact, expires, auth)
		res, err := r.do(ctx, req)
		if err != nil {
			return 0, 0, err
		}
		code := res.StatusCode
		switch {
		case code >= 200 && code < 300:
			r.mu.Lock()
			r.bound = expires > 0
			r.mu.Unlock()
			if expires == 0 {
				return 0, 0, nil
			}
			granted = grantedExpiry(res, contact, expires)
			if granted <= 0 {
				return 0, 0, errors.New("registrar granted no binding")
			}
			return granted, 0, nil
		case round+1 >= registerRounds:
			// Out of rounds: give up below with this answer.
		case code == 401 || code == 407:
			if r.cfg.Password == "" {
				return 0, 0, fmt.Errorf("registrar answered %d and no password is set", code)
			}
			if auth != nil && !stale {
				return 0, 0, fmt.Errorf("registrar refused the credentials (%d)", code)
			}
			auth, stale, err = r.authorize(req, res)
			if err != nil {
				return 0, 0, err
			}
			continue
		case code == 423 && expires > 0:
			// RFC 3261 10.2.8: ask again for at least Min-Expires.
			// The next refreshes ask for it too, and credentials are
			// asked for afresh rather than replaying a nonce.
			if m, ok := headerSeconds(res, "Min-Expires"); ok && m > expires && m <= maxExpires {
				expires, r.expires = m, m
				auth, stale = nil, false
				continue
			}
		}
		retryAfter, _ = headerSeconds(res, "Retry-After")
		return 0, retryAfter, fmt.Errorf("registrar answered %d %s", code, sipmsg.Shorten(sanitize(res.Reason)))
	}
}

// resolve returns where the registrar is, and makes its addresses trusted.
// A name is looked up at each attempt, so a PBX that moves is followed.
func (r *registration) resolve(ctx context.Context) (netip.AddrPort, error) {
	port := uint16(5060)
	if r.uri.Port > 0 && r.uri.Port < 65536 {
		port = uint16(r.uri.Port)
	}
	host := strings.Trim(r.uri.Host, "[]")
	if a, err := netip.ParseAddr(host); err == nil {
		return netip.AddrPortFrom(a.Unmap(), port), nil
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	addrs, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("registrar %s: %w", host, err)
	}
	if len(addrs) == 0 {
		return netip.AddrPort{}, fmt.Errorf("registrar %s: no address", host)
	}
	for i := range addrs {
		addrs[i] = addrs[i].Unmap()
	}
	r.s.gate.registrar.Store(&addrs)
	// The first address of the family our listener speaks.
	pick := addrs[0]
	for _, a := range addrs {
		if r.s.socks.hasListenerFor(r.transport, a) {
			pick = a
			break
		}
	}
	return netip.AddrPortFrom(pick, port), nil
}

// request builds one REGISTER. It is built whole here, Via included, so that
// sipgo sends it as is from our listening socket.
func (r *registration) request(dest netip.AddrPort, local localSock, contact sip.Uri, expires time.Duration, auth sip.Header) *sip.Request {
	req := sip.NewRequest(sip.REGISTER, *r.uri.Clone())
	req.AppendHeader(sipmsg.NewVia(r.transport, local.host, local.port))
	aor := sip.Uri{Scheme: "sip", User: r.cfg.User, Host: r.uri.Host}
	from := &sip.FromHeader{Address: aor, Params: sip.NewParams()}
	from.Params.Add("tag", r.fromTag)
	req.AppendHeader(from)
	req.AppendHeader(&sip.ToHeader{Address: aor})
	callID := sip.CallIDHeader(r.callID)
	req.AppendHeader(&callID)
	r.cseq++
	req.AppendHeader(&sip.CSeqHeader{SeqNo: r.cseq, MethodName: sip.REGISTER})
	maxFwd := sip.MaxForwardsHeader(70)
	req.AppendHeader(&maxFwd)
	req.AppendHeader(&sip.ContactHeader{Address: contact})
	req.AppendHeader(sip.NewHeader("Expires", strconv.Itoa(int(expires/time.Second))))
	req.AppendHeader(sip.NewHeader("Allow", sipmsg.Allowed))
	req.AppendHeader(sip.NewHeader("User-Agent", r.s.cfg.UserAgent))
	if auth != nil {
		req.AppendHeader(auth)
	}
	req.SetTransport(strings.ToUpper(r.transport))
	req.SetDestination(dest.String())
	if r.transport == "udp" {
		local.sock.Copy(&req.Laddr)
	}
	req.SetBody(nil)
	return req
}

// do sends a request in a client transaction and returns its final response.
func (r *registration) do(ctx context.Context, req *sip.Request) (*sip.Response, error) {
	ctx, cancel := context.WithTimeout(ctx, 64*sipmsg.T1+time.Second)
	defer cancel()
	return r.s.dlg.RoundTrip(ctx, req)
}

// authorize answers a 401 or 407 with the first challenge we can meet (the
// registrar lists them most preferred first, RFC 8760). It reports whether
// the challenge said our last nonce was merely stale.
func (r *registration) authorize(req *sip.Request, res *sip.Response) (sip.Header, bool, error) {
	name, answer := "WWW-Authenticate", "Authorization"
	if res.StatusCode == 407 {
		name, answer = "Proxy-Authenticate", "Proxy-Authorization"
	}
	for _, h := range res.GetHeaders(name) {
		chal, err := digest.ParseChallenge(h.Value())
		if err != nil {
			continue
		}
		chal.Algorithm = strings.ToUpper(chal.Algorithm)
		for i, q := range chal.QOP {
			chal.QOP[i] = strings.TrimSpace(q)
		}
		if !digest.CanDigest(chal) || chal.Userhash {
			continue
		}
		cred, err := digest.Digest(chal, digest.Options{
			Method:   string(req.Method),
			URI:      req.Recipient.String(),
			Username: r.cfg.User,
			Password: r.cfg.Password,
		})
		if err != nil {
			continue
		}
		return sip.NewHeader(answer, cred.String()), chal.Stale, nil
	}
	return nil, false, fmt.Errorf("registrar answered %d with no digest challenge we can answer", res.StatusCode)
}

// grantedExpiry reads the lifetime a 2xx to REGISTER grants our contact: the
// expires parameter of our Contact in the answer, else the Expires header,
// else what we asked for. Registrars answer with every binding of the
// address-of-record, other devices' too.
func grantedExpiry(res *sip.Response, contact sip.Uri, asked time.Duration) time.Duration {
	var contacts []*sip.ContactHeader
	for _, h := range res.GetHeaders("Contact") {
		if c, ok := h.(*sip.ContactHeader); ok {
			contacts = append(contacts, c)
		}
	}
	for _, c := range contacts {
		if sameContact(c.Address, contact) || len(contacts) == 1 {
			if v, ok := c.Params.Get("expires"); ok {
				if d, ok := parseSeconds(v); ok {
					return d
				}
			}
		}
	}
	if d, ok := headerSeconds(res, "Expires"); ok {
		return d
	}
	return asked
}

// sameContact compares the parts of a contact URI a registrar keeps.
func sameContact(a, b sip.Uri) bool {
	port := func(u sip.Uri) int {
		if u.Port == 0 {
			return 5060
		}
		return u.Port
	}
	return a.User == b.User && strings.EqualFold(strings.Trim(a.Host, "[]"), strings.Trim(b.Host, "[]")) && port(a) == port(b)
}

// headerSeconds reads a header holding delta-seconds (Expires, Min-Expires,
// Retry-After, which may carry a comment and parameters after the number).
func headerSeconds(m *sip.Response, name string) (time.Duration, bool) {
	h := m.GetHeader(name)
	if h == nil {
		return 0, false
	}
	return parseSeconds(h.Value())
}

// parseSeconds reads the leading delta-seconds of v, capped at a day.
func parseSeconds(v string) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	end := 0
	for end < len(v) && end < 10 && v[end] >= '0' && v[end] <= '9' {
		end++
	}
	if end == 0 {
		return 0, false
	}
	n, err := strconv.ParseInt(v[:end], 10, 64)
	if err != nil {
		return 0, false
	}
	if n > int64(maxExpires/time.Second) {
		return maxExpires, true
	}
	return time.Duration(n) * time.Second, true
}

// sanitize keeps printable ASCII of text from a peer.
func sanitize(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r > 0x7e {
			return -1
		}
		return r
	}, s)
}
