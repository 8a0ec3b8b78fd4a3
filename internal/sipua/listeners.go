package sipua

import (
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/groupbridge/groupbridge/internal/sipua/sipmsg"
)

// listeners are the server's bound SIP sockets: where requests come in,
// and where the requests we send leave from and name as our address.
type listeners struct {
	external string // Config.ExternalAddress: our host in Via and Contact when set

	mu      sync.Mutex
	bound   []boundListener
	closers []func() error
}

// boundListener is a listener as bound, with its socket's address as sipgo
// keys it (0.0.0.0:5060 for a wildcard): requests that must leave from the
// listening socket name it as their local address.
type boundListener struct {
	Listener
	sock sip.Addr
}

// add records a bound listener and how to close it.
func (l *listeners) add(b boundListener, closer func() error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.bound = append(l.bound, b)
	l.closers = append(l.closers, closer)
}

// addrs returns the listeners as bound (real ports).
func (l *listeners) addrs() []Listener {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]Listener, len(l.bound))
	for i, b := range l.bound {
		out[i] = b.Listener
	}
	return out
}

// close closes every listening socket, once.
func (l *listeners) close() {
	l.mu.Lock()
	closers := l.closers
	l.closers = nil
	l.mu.Unlock()
	for _, c := range closers {
		_ = c()
	}
}

// awaitServed waits until sipgo's UDP transport knows the listening socket
// at addr: until then a request we send (a REGISTER right at start) would
// not find it and would try to bind a socket of its own.
func awaitServed(ua *sipgo.UserAgent, log *slog.Logger, addr string) {
	deadline := time.Now().Add(time.Second)
	for time.Now().Before(deadline) {
		if c, err := ua.TransportLayer().GetConnection("udp", addr); err == nil {
			_, _ = c.TryClose() // GetConnection took a reference
			return
		}
		time.Sleep(time.Millisecond)
	}
	log.Warn("SIP listener not ready after 1s", "addr", addr)
}

// localAddrFor finds the address a request reached us on, and the socket
// (as sipgo keys it) that took it. For a wildcard listener it asks the
// kernel which local address routes to the source (a connected UDP socket
// sends nothing).
func (l *listeners) localAddrFor(req *sip.Request, tx sip.ServerTransaction, source string) (sip.Addr, sip.Addr, error) {
	var local netip.AddrPort
	var sock sip.Addr
	if stx, ok := tx.(*sip.ServerTx); ok && stx.Connection() != nil {
		la := stx.Connection().LocalAddr()
		if ap, err := netip.ParseAddrPort(la.String()); err == nil {
			local = ap
			sock = sip.Addr{IP: net.IP(ap.Addr().AsSlice()), Port: int(ap.Port())}
		}
	}
	if !local.IsValid() {
		l.mu.Lock()
		for _, b := range l.bound {
			if strings.EqualFold(b.Transport, req.Transport()) {
				local, sock = b.Addr, b.sock
				break
			}
		}
		l.mu.Unlock()
	}
	ip := local.Addr().Unmap()
	if sipmsg.Unspecified(ip) {
		src, err := netip.ParseAddrPort(source)
		if err != nil {
			return sip.Addr{}, sip.Addr{}, fmt.Errorf("route to %s: %w", source, err)
		}
		if ip, err = routeTo(src.Addr()); err != nil {
			return sip.Addr{}, sip.Addr{}, err
		}
	}
	// The listener port, not an ephemeral one: the peer must reach us back there.
	port := int(local.Port())
	l.mu.Lock()
	for _, b := range l.bound {
		if strings.EqualFold(b.Transport, req.Transport()) && (b.Addr.Port() == local.Port() || port == 0) {
			port = int(b.Addr.Port())
			break
		}
	}
	l.mu.Unlock()
	return sip.Addr{IP: net.IP(ip.AsSlice()), Port: port}, sock, nil
}

// routeTo asks the kernel which local address routes to dst (connecting a
// UDP socket sends nothing).
func routeTo(dst netip.Addr) (netip.Addr, error) {
	conn, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(netip.AddrPortFrom(dst, 9)))
	if err != nil {
		return netip.Addr{}, fmt.Errorf("route to %s: %w", dst, err)
	}
	defer conn.Close()
	return conn.LocalAddr().(*net.UDPAddr).AddrPort().Addr().Unmap(), nil
}

// localSock is where a request we originate leaves from and what it names
// as our address.
type localSock struct {
	sock sip.Addr // the listening socket, as sipgo keys it
	host string   // our host for Via and Contact
	port int      // the listening port
}

// localFor picks the listener of transport for a request to dst: one of
// dst's address family when there is one.
func (l *listeners) localFor(transport string, dst netip.Addr) (localSock, error) {
	l.mu.Lock()
	var pick *boundListener
	for i := range l.bound {
		b := &l.bound[i]
		if b.Transport != transport {
			continue
		}
		if pick == nil {
			pick = b
		}
		if familyFits(b.Addr.Addr(), dst) {
			pick = b
			break
		}
	}
	var b boundListener
	if pick != nil {
		b = *pick
	}
	l.mu.Unlock()
	if pick == nil {
		return localSock{}, fmt.Errorf("no %s listener", transport)
	}
	host := l.external
	if host == "" {
		ip := b.Addr.Addr()
		if sipmsg.Unspecified(ip) {
			var err error
			if ip, err = routeTo(dst); err != nil {
				return localSock{}, err
			}
		}
		host = ip.String()
	}
	return localSock{sock: b.sock, host: host, port: int(b.Addr.Port())}, nil
}

// hasListenerFor reports whether a listener of transport can reach dst.
func (l *listeners) hasListenerFor(transport string, dst netip.Addr) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, b := range l.bound {
		if b.Transport == transport && familyFits(b.Addr.Addr(), dst) {
			return true
		}
	}
	return false
}

// familyFits reports whether a socket bound to listen can send to dst: the
// same address family, or the IPv6 wildcard, which is dual-stack.
func familyFits(listen, dst netip.Addr) bool {
	return listen.Is4() == dst.Unmap().Is4() || (listen.Is6() && listen.IsUnspecified())
}
