package sipua

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/groupbridge/groupbridge/internal/sipua/sipmsg"
	"github.com/groupbridge/groupbridge/internal/wallclock"
)

// Connections. A TCP or TLS connection costs a descriptor and a goroutine
// for as long as it is open, and sipgo keeps one open for as long as the
// peer does: 200 idle TCP connections and 50 TLS ones that never finished
// their handshake stayed open for minutes. So every accepted connection
// goes through a guardedListener first:
//   - an untrusted source (IPv6: its /64) may hold Limits.TCPPerSource
//     connections at once, over TCP and TLS together; more are closed at
//     once, before any byte is read;
//   - a TLS handshake must end within Limits.TLSHandshake, before the
//     connection is handed to sipgo;
//   - an untrusted connection that has not carried a complete request
//     within Limits.TCPIdle of its accept is closed. One that has is the
//     peer's (its calls' BYEs go back on it) and stays as long as the peer
//     keeps it.
// Trusted sources are neither capped nor timed out: the PBX carries
// everyone's calls.

// connTable counts the open connections per source and finds a connection
// by its remote address, as sipgo gives it in a request's Source.
type connTable struct {
	mu       sync.Mutex
	bySource map[netip.Prefix]int
	byRemote map[string]*guardedConn
}

func newConnTable() *connTable {
	return &connTable{bySource: map[netip.Prefix]int{}, byRemote: map[string]*guardedConn{}}
}

// add counts a connection of an untrusted source, unless the source holds
// max already (max 0: no cap).
func (t *connTable) add(key netip.Prefix, max int) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if max > 0 && t.bySource[key] >= max {
		return false
	}
	t.bySource[key]++
	return true
}

func (t *connTable) track(c *guardedConn) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.byRemote[c.remote] = c
}

func (t *connTable) remove(c *guardedConn) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.byRemote[c.remote] == c {
		delete(t.byRemote, c.remote)
	}
	if c.counted {
		if t.bySource[c.key]--; t.bySource[c.key] <= 0 {
			delete(t.bySource, c.key)
		}
	}
}

func (*connTable) name() string { return "connection" }

// screen is the connection guard's part in the chain (screen.go, step 5):
// a TCP or TLS request that came this far is sound, so its connection is
// proven. It stops nothing.
func (t *connTable) screen(req *sip.Request, _ sip.ServerTransaction, r facts) (facts, bool) {
	if sipmsg.Reliable(req.Transport()) {
		t.proven(req.Source())
	}
	return r, true
}

// proven marks the connection from remote as having carried a complete
// request: the idle timeout no longer applies to it.
func (t *connTable) proven(remote string) {
	t.mu.Lock()
	c := t.byRemote[remote]
	t.mu.Unlock()
	if c != nil {
		c.prove()
	}
}

// size returns the open connections and the sources counted.
func (t *connTable) size() (conns, sources int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.byRemote), len(t.bySource)
}

// guardedConn is an accepted connection under the idle timeout until it
// carries a complete request.
type guardedConn struct {
	net.Conn
	g       *connGuard
	remote  string
	key     netip.Prefix
	counted bool // in t.bySource

	mu        sync.Mutex
	idle      wallclock.Timer // Limits.TCPIdle; nil once proven, and for trusted sources
	expired   atomic.Bool     // idle fired before the connection was proven
	closeOnce sync.Once
}

// longAgo is a read deadline already passed: it ends a blocked Read.
var longAgo = time.Unix(1, 0)

// expire runs when Limits.TCPIdle has passed on the server's clock. A
// read deadline in the past ends a Read blocked now; Read itself checks
// expired before reading, in case the deadline was set again since.
func (c *guardedConn) expire() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.idle == nil {
		return // proven meanwhile
	}
	c.expired.Store(true)
	_ = c.Conn.SetReadDeadline(longAgo)
}

// Read ends the connection as if the peer had closed it once its idle
// time expired, so sipgo closes it without logging an error for each.
func (c *guardedConn) Read(b []byte) (int, error) {
	if c.expired.Load() {
		return 0, c.idleEnd()
	}
	n, err := c.Conn.Read(b)
	if err != nil && c.expired.Load() && errors.Is(err, os.ErrDeadlineExceeded) {
		return n, c.idleEnd()
	}
	return n, err
}

// idleEnd reports the idle close and is what Read returns for it.
func (c *guardedConn) idleEnd() error {
	connClosed(c.g.log, &c.g.idleLog, c.g.clock.Now(), "SIP connection closed: no complete request within limits.tcp_idle", c.key)
	return io.EOF
}

// prove lifts the idle limit, from any goroutine; if it had just expired,
// a Read it ended is released from it.
func (c *guardedConn) prove() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.idle == nil {
		return
	}
	c.idle.Stop()
	c.idle = nil
	if c.expired.Swap(false) {
		_ = c.Conn.SetReadDeadline(time.Time{})
	}
}

func (c *guardedConn) Close() error {
	err := net.ErrClosed
	c.closeOnce.Do(func() {
		c.mu.Lock()
		if c.idle != nil {
			c.idle.Stop()
		}
		c.mu.Unlock()
		c.g.table.remove(c)
		err = c.Conn.Close()
	})
	return err
}

// maxHandshake bounds a TLS handshake when Limits.TLSHandshake is off: a
// trusted peer's handshake must end too.
const maxHandshake = time.Minute

// connGuard is the connection guard (screen.go, step 0): the checks above,
// for every TCP and TLS listener, with its part of Limits.
type connGuard struct {
	table   *connTable
	trusted func(netip.Addr) bool
	// onlyTrusted (Config.OnlyTrusted) closes an untrusted source's
	// connection at accept, told to untrusted (floodScreen.untrusted).
	onlyTrusted bool
	untrusted   func(src netip.Addr, invite bool)
	limits      atomic.Pointer[connLimits]
	log         *slog.Logger
	clock       wallclock.Clock
	ctx         context.Context // the server's: handshakes end with it
	wg          *sync.WaitGroup // the server's goroutines
	// Connections refused or closed since the last log line of each kind.
	capLog, idleLog, handshakeLog countedLog
}

// connLimits are the guard's part of Limits.
type connLimits struct {
	perSource       int
	idle, handshake time.Duration
}

// configure takes the guard's part of l.
func (g *connGuard) configure(l Limits) {
	g.limits.Store(&connLimits{perSource: l.TCPPerSource, idle: l.TCPIdle, handshake: l.TLSHandshake})
}

// guardedListener hands sipgo the connections that pass the checks above.
// Accepting, and the TLS handshakes, run in goroutines of their own, so a
// slow or silent client never holds up the next one.
type guardedListener struct {
	net.Listener
	g     *connGuard
	tls   *tls.Config // nil for TCP
	ready chan net.Conn
	done  chan struct{}
	once  sync.Once
}

// listen guards inner, a TCP listener; tlsCfg makes it TLS.
func (g *connGuard) listen(inner net.Listener, tlsCfg *tls.Config) *guardedListener {
	l := &guardedListener{Listener: inner, g: g, tls: tlsCfg, ready: make(chan net.Conn), done: make(chan struct{})}
	g.wg.Add(1)
	go l.acceptLoop()
	return l
}

// Accept returns the next connection that passed, or net.ErrClosed once
// the listener is closed.
func (l *guardedListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ready:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *guardedListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return l.Listener.Close()
}

func (l *guardedListener) acceptLoop() {
	defer l.g.wg.Done()
	defer sipmsg.Recover(l.g.log, "connection guard")
	backoff := 5 * time.Millisecond
	for {
		raw, err := l.Listener.Accept()
		if err != nil {
			select {
			case <-l.done:
				return
			default:
			}
			if errors.Is(err, net.ErrClosed) {
				_ = l.Close()
				return
			}
			// Out of descriptors, most likely: wait, as net/http does.
			l.g.log.Warn("SIP accept failed", "error", err)
			select {
			case <-time.After(backoff):
			case <-l.done:
				return
			}
			backoff = min(2*backoff, time.Second)
			continue
		}
		backoff = 5 * time.Millisecond
		if c := l.admit(raw); c != nil {
			l.g.wg.Add(1)
			go l.finish(c)
		}
	}
}

// admit counts a new connection and wraps it, or closes it at once when
// its source holds the most it may.
func (l *guardedListener) admit(raw net.Conn) *guardedConn {
	ap, err := netip.ParseAddrPort(raw.RemoteAddr().String())
	if err != nil {
		_ = raw.Close()
		return nil
	}
	src := ap.Addr().Unmap()
	g := l.g
	lim := g.limits.Load()
	c := &guardedConn{Conn: raw, g: g, remote: raw.RemoteAddr().String(), key: sourceKey(src)}
	if g.onlyTrusted && !g.trusted(src) {
		// Counted before the close: once the peer sees its connection
		// end, the drop is already told (TestOnlyTrusted reads both).
		g.untrusted(src, false)
		_ = raw.Close()
		return nil
	}
	if !g.trusted(src) {
		if !g.table.add(c.key, lim.perSource) {
			_ = raw.Close()
			connClosed(g.log, &g.capLog, g.clock.Now(), "SIP connection refused: limits.tcp_per_source reached", c.key)
			return nil
		}
		c.counted = true
		if lim.idle > 0 {
			c.mu.Lock() // expire may run before AfterFunc returns
			c.idle = g.clock.AfterFunc(lim.idle, c.expire)
			c.mu.Unlock()
		}
	}
	g.table.track(c)
	return c
}

// finish does the TLS handshake, within Limits.TLSHandshake, and hands the
// connection to Accept.
func (l *guardedListener) finish(c *guardedConn) {
	defer l.g.wg.Done()
	defer sipmsg.Recover(l.g.log, "connection handshake")
	var conn net.Conn = c
	if l.tls != nil {
		tc := tls.Server(c, l.tls)
		d := l.g.limits.Load().handshake
		if d <= 0 {
			d = maxHandshake
		}
		// On the server's clock: cancelling the context ends the handshake.
		ctx, cancel := context.WithCancel(l.g.ctx)
		var expired atomic.Bool
		limit := l.g.clock.AfterFunc(d, func() { expired.Store(true); cancel() })
		err := tc.HandshakeContext(ctx)
		limit.Stop()
		cancel()
		timedOut := expired.Load()
		if err != nil {
			_ = tc.Close()
			_ = c.Close()
			if timedOut {
				connClosed(l.g.log, &l.g.handshakeLog, l.g.clock.Now(), "SIP connection closed: TLS handshake not done within limits.tls_handshake", c.key)
			}
			return
		}
		conn = tc
	}
	select {
	case l.ready <- conn:
	case <-l.done:
		_ = conn.Close()
	}
}

// connClosed counts a connection refused or closed by the guard in l,
// and logs such closes at most once a minute per kind.
func connClosed(log *slog.Logger, l *countedLog, now time.Time, msg string, key netip.Prefix) {
	if ok, n := l.note(now); ok {
		log.Warn(msg, "source", key.String(), "closed", n)
	}
}
