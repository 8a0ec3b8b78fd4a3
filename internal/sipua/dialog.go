package sipua

import (
	"net/netip"
	"slices"
	"time"

	"github.com/emiago/sipgo/sip"
)

// In-dialog requests. Knowing a call's Call-ID and tags (anyone on the path
// sees them) must not be enough to move its media, end it or press its
// keys. A request inside a call is taken only from the dialog's peer: the
// IP address its INVITE came from or one in its route set (IP addresses,
// not ports: a TCP reconnect changes the port). Besides:
//   - in a call from a trusted source, any trusted address may send it
//     (carriers send BYE from another SBC);
//   - in a digest-authenticated call, a new address is challenged, and a
//     right answer for the call's own account adds it to the peers (a
//     phone that moved networks).
// Anything else is dropped unanswered and counted (DropNotDialogPeer).

// DropNotDialogPeer is the drop reason of an in-dialog request from an
// address that is not the dialog's peer.
const DropNotDialogPeer = "not-dialog-peer"

// fromPeer reports whether a is one of the dialog's peer addresses.
func (c *Call) fromPeer(a netip.Addr) bool {
	a = a.Unmap()
	if ap, err := netip.ParseAddrPort(c.source); err == nil && ap.Addr().Unmap() == a {
		return true
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, r := range c.routeSet {
		if ip, err := netip.ParseAddr(r.Host); err == nil && ip.Unmap() == a {
			return true
		}
	}
	return slices.Contains(c.morePeers, a)
}

// addPeer makes a a peer address of the dialog.
func (c *Call) addPeer(a netip.Addr) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !slices.Contains(c.morePeers, a.Unmap()) && len(c.morePeers) < maxMorePeers {
		c.morePeers = append(c.morePeers, a.Unmap())
	}
}

// maxMorePeers bounds the addresses a call's account may add: a phone
// that moves networks a few times, not a table.
const maxMorePeers = 8

// admitInDialog decides on a request inside call c, answering it when it
// may not go on (a challenge) and dropping it when it comes from a
// stranger. It returns the call's account and whether to go on.
func (s *Server) admitInDialog(c *Call, req *sip.Request, tx sip.ServerTransaction) (string, bool) {
	src, err := sourceAddr(req)
	if err != nil {
		s.respond(req, tx, 400, "Bad Request")
		return "", false
	}
	if c.fromPeer(src) {
		return c.user, true
	}
	if c.user == "" {
		if s.gate.trustedSource(src) {
			return "", true
		}
		s.dropStranger(c, src, req)
		return "", false
	}
	if req.Method == sip.ACK {
		// An ACK cannot be challenged (RFC 3261 22.1).
		s.dropStranger(c, src, req)
		return "", false
	}
	now := time.Now()
	v, user, _ := s.gate.check(req, src, now)
	switch {
	case v == vAdmit && user == c.user:
		c.addPeer(src)
		s.log.Info("call's account answered from a new address", "call", c.id, "source", src.String())
		return user, true
	case v == vChallenge || v == vStale:
		s.respond(req, tx, 401, "Unauthorized", s.gate.challengeHeaders(src, now, v == vStale)...)
	default:
		// Another account's right answer does not take over this call.
		s.respond(req, tx, 403, "Forbidden")
	}
	return "", false
}

// dropStranger counts an in-dialog request from a stranger and logs such
// drops at most once a minute.
func (s *Server) dropStranger(c *Call, src netip.Addr, req *sip.Request) {
	if h := s.cfg.Events.RequestDropped; h != nil {
		h(DropNotDialogPeer)
	}
	s.strangerDrops.Add(1)
	now := time.Now().UnixNano()
	if l := s.strangerLog.Load(); now-l > int64(time.Minute) && s.strangerLog.CompareAndSwap(l, now) {
		s.log.Warn("SIP in-dialog request dropped: source is not the call's peer", "reason", DropNotDialogPeer,
			"call", c.id, "source", src.String(), "method", string(req.Method), "dropped", s.strangerDrops.Swap(0))
	}
}
