package sipua

import (
	"errors"
	"log/slog"
	"net/netip"
	"strings"

	"github.com/emiago/sipgo/sip"
	"github.com/groupbridge/groupbridge/internal/wallclock"
)

// Callers behind a proxy. With Kamailio in front of several nodes, every
// request comes from Kamailio's address, and the per-source screens (the
// flood bucket, scanner drops, digest failure blocks, the setup caps)
// would lump every caller together. The proxy names the caller's own
// address in SourceHeader; a request from one of Config.Proxies that
// carries it is screened per source as if it came from there (its
// origin). Trust is still the transport's: whether a request needs a
// password and whose identity headers are believed stay decided on the
// address the packet came from, as a header cannot make a stranger a PBX.
// From anyone else the header means nothing and is never read.

// SourceHeader names the caller's real source, "IP:port" or "IP" (IPv6 in
// brackets when a port follows), in a request a proxy forwards.
const SourceHeader = "X-Groupbridge-Source"

// maxSourceValue bounds the header's value: "[IPv6]:port" is at most 47
// characters, and the raw scan of a datagram reads no further.
const maxSourceValue = 64

var errBadSource = errors.New("not IP, IP:port or [IPv6]:port")

// ParseSource reads a SourceHeader value: "192.0.2.7:5060", "192.0.2.7",
// "[2001:db8::7]:5060", "[2001:db8::7]" or "2001:db8::7", with spaces
// around it. A port, when given, is 1-65535; the address must be one a
// packet can come from (not unspecified, multicast or zoned). An IPv4
// address mapped into IPv6 is returned as IPv4.
func ParseSource(v string) (netip.AddrPort, error) {
	v = strings.Trim(v, " \t")
	if v == "" || len(v) > maxSourceValue {
		return netip.AddrPort{}, errBadSource
	}
	var ap netip.AddrPort
	if a, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(v, "["), "]")); err == nil {
		// A bare IPv6 address goes without brackets, or in them.
		if bracketed := v[0] == '['; bracketed != (v[len(v)-1] == ']') || (bracketed && !a.Is6()) {
			return netip.AddrPort{}, errBadSource
		}
		ap = netip.AddrPortFrom(a, 0)
	} else {
		p, err := netip.ParseAddrPort(v)
		if err != nil || p.Port() == 0 {
			return netip.AddrPort{}, errBadSource
		}
		ap = p
	}
	a := ap.Addr()
	if a.Zone() != "" || a.IsUnspecified() || a.IsMulticast() {
		return netip.AddrPort{}, errBadSource
	}
	return netip.AddrPortFrom(a.Unmap(), ap.Port()), nil
}

// originScreen is the origin unit (screen.go, step 2): it sets the
// address the per-source units screen (facts.origin), from SourceHeader
// when the request comes from a proxy. A proxy's request whose header is
// not one value ParseSource reads is answered 400 (an ACK is dropped):
// the proxy is misconfigured, and guessing would screen the wrong caller.
type originScreen struct {
	proxies []netip.Prefix        // Config.Proxies
	trusted func(netip.Addr) bool // gate.trustedSource
	resp    responder
	log     *slog.Logger
	clock   wallclock.Clock
	badLog  countedLog // malformed headers since the last log line
}

func (*originScreen) name() string { return "origin" }

func (o *originScreen) screen(req *sip.Request, tx sip.ServerTransaction, r facts) (facts, bool) {
	if len(o.proxies) == 0 || !inPrefixes(o.proxies, r.src) {
		return r, true
	}
	hs := req.GetHeaders(SourceHeader)
	if len(hs) == 0 {
		return r, true // the proxy's own request (its OPTIONS probe)
	}
	var ap netip.AddrPort
	err := errBadSource
	if len(hs) == 1 {
		ap, err = ParseSource(hs[0].Value())
	}
	if err != nil {
		if req.Method != sip.ACK {
			o.resp.respond(req, tx, 400, "Bad Request", sip.NewHeader("Warning", `399 groupbridge "malformed `+SourceHeader+`"`))
		}
		if ok, n := o.badLog.note(o.clock.Now()); ok {
			o.log.Warn("SIP request from a proxy refused: "+SourceHeader+" must be one IP or IP:port",
				"proxy", r.src.String(), "method", string(req.Method), "refused", n)
		}
		return r, false
	}
	r.origin = ap.Addr()
	r.originTrusted = o.trusted(r.origin)
	return r, true
}

// rawOrigin finds SourceHeader in the headers of a datagram, as rawScanner
// reads them, for the flood screen that runs before sipgo parses it. It
// reports false when the header is absent, given more than once or
// malformed: the origin unit then screens (and refuses) the parsed
// request.
func rawOrigin(data []byte) (netip.Addr, bool) {
	var found []byte
	for h := rawHeaders(data); ; {
		name, value, ok := h.next()
		if !ok {
			break
		}
		if !equalFold(name, "x-groupbridge-source") {
			continue
		}
		if found != nil {
			return netip.Addr{}, false
		}
		found = value
		if len(found) == 0 || len(found) > maxSourceValue {
			return netip.Addr{}, false
		}
	}
	if found == nil {
		return netip.Addr{}, false
	}
	ap, err := ParseSource(string(found))
	return ap.Addr(), err == nil
}
