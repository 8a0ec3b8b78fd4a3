package config

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// SIP transports a listener may use.
const (
	TransportUDP = "udp"
	TransportTCP = "tcp"
	// TransportTLS is SIP over TLS (RFC 3261 26.2); it needs sip.tls.
	TransportTLS = "tls"
)

// Listener is one parsed sip.listen entry.
type Listener struct {
	// Transport is TransportUDP, TransportTCP or TransportTLS.
	Transport string
	// Addr is the IP and port to bind; port 0 asks the kernel for any free port.
	Addr netip.AddrPort
}

// String returns the entry in the form ParseListener reads.
func (l Listener) String() string { return l.Transport + ":" + l.Addr.String() }

// ParseListener reads a "transport:host:port" entry such as udp:0.0.0.0:5060
// or tcp:[::1]:5060 or tls:0.0.0.0:5061. The host must be an IP address (host names would make
// the bind depend on DNS at start-up), an IPv6 one in brackets; the port is
// 0-65535, 0 meaning any free port. The error quotes s, which is no secret.
func ParseListener(s string) (Listener, error) {
	transport, rest, ok := strings.Cut(s, ":")
	if !ok {
		return Listener{}, fmt.Errorf("%s must look like transport:host:port, like udp:0.0.0.0:5060", quote(s))
	}
	if transport != TransportUDP && transport != TransportTCP && transport != TransportTLS {
		return Listener{}, fmt.Errorf("%s: transport must be udp, tcp or tls", quote(s))
	}
	i := strings.LastIndexByte(rest, ':')
	if i < 0 {
		return Listener{}, fmt.Errorf("%s must look like transport:host:port, like udp:0.0.0.0:5060", quote(s))
	}
	host, port := rest[:i], rest[i+1:]
	bracketed := len(host) >= 2 && host[0] == '[' && host[len(host)-1] == ']'
	if bracketed {
		host = host[1 : len(host)-1]
	}
	addr, err := netip.ParseAddr(host)
	switch {
	case err != nil:
		return Listener{}, fmt.Errorf("%s: host %s must be an IP address", quote(s), quote(host))
	case addr.Is6() && !bracketed:
		return Listener{}, fmt.Errorf("%s: an IPv6 host goes in brackets, like udp:[::1]:5060", quote(s))
	case !addr.Is6() && bracketed:
		return Listener{}, fmt.Errorf("%s: brackets are only for IPv6 hosts", quote(s))
	}
	p, err := parsePort(port)
	if err != nil {
		return Listener{}, fmt.Errorf("%s: port %s must be 0-65535", quote(s), quote(port))
	}
	return Listener{Transport: transport, Addr: netip.AddrPortFrom(addr, p)}, nil
}

// parsePort accepts only plain decimal digits: strconv would also take a sign.
func parsePort(s string) (uint16, error) {
	if s == "" || len(s) > 5 || strings.Trim(s, "0123456789") != "" {
		return 0, fmt.Errorf("port %q is not a number", s)
	}
	p, err := strconv.ParseUint(s, 10, 16)
	if err != nil {
		return 0, fmt.Errorf("port %q: %w", s, err)
	}
	return uint16(p), nil
}

// Listeners returns the parsed sip.listen entries. It assumes a validated
// configuration and leaves out any entry that does not parse.
func (s SIP) Listeners() []Listener {
	out := make([]Listener, 0, len(s.Listen))
	for _, e := range s.Listen {
		if l, err := ParseListener(e); err == nil {
			out = append(out, l)
		}
	}
	return out
}
