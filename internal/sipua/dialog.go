package sipua

import (
	"log/slog"
	"net/netip"

	"github.com/emiago/sipgo/sip"
	"github.com/groupbridge/groupbridge/internal/sipua/sipmsg"
	"github.com/groupbridge/groupbridge/internal/wallclock"
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

// peerScreen decides on requests inside a dialog we know (screen.go,
// step 6), by the rules above.
type peerScreen struct {
	gate   *gate
	lookup func(*sip.Request) *Call // the dialog layer's call table
	resp   responder
	events Events
	log    *slog.Logger
	clock  wallclock.Clock
	drops  countedLog // strangers' requests since the last log line
}

func (*peerScreen) name() string { return "dialog-peer" }

// screen finds the dialog a request with a To tag is inside and admits
// it; a request in no dialog we know goes on for the digest unit. A
// CANCEL is matched to its INVITE's transaction, not a dialog.
func (p *peerScreen) screen(req *sip.Request, tx sip.ServerTransaction, r facts) (facts, bool) {
	if req.Method == sip.CANCEL || !sipmsg.HasToTag(req) {
		return r, true
	}
	c := p.lookup(req)
	if c == nil {
		return r, true
	}
	r.call = c
	user, ok := p.admit(c, req, tx)
	r.user = user
	return r, ok
}

// admit decides on a request inside call c, answering it when it may not
// go on (a challenge) and dropping it when it comes from a stranger. It
// returns the call's account and whether to go on.
func (p *peerScreen) admit(c *Call, req *sip.Request, tx sip.ServerTransaction) (string, bool) {
	src, err := sourceAddr(req)
	if err != nil {
		p.resp.respond(req, tx, 400, "Bad Request")
		return "", false
	}
	if c.FromPeer(src) {
		return c.user, true
	}
	if c.user == "" {
		if p.gate.trustedSource(src) {
			return "", true
		}
		p.dropStranger(c, src, req)
		return "", false
	}
	if req.Method == sip.ACK {
		// An ACK cannot be challenged (RFC 3261 22.1).
		p.dropStranger(c, src, req)
		return "", false
	}
	now := p.clock.Now()
	v, user, _ := p.gate.check(req, src, now)
	switch {
	case v == vAdmit && user == c.user:
		c.AddPeer(src)
		p.log.Info("call's account answered from a new address", "call", c.ID(), "source", src.String())
		return user, true
	case v == vChallenge || v == vStale:
		p.resp.respond(req, tx, 401, "Unauthorized", p.gate.challengeHeaders(src, now, v == vStale)...)
	default:
		// Another account's right answer does not take over this call.
		p.resp.respond(req, tx, 403, "Forbidden")
	}
	return "", false
}

// dropStranger counts an in-dialog request from a stranger and logs such
// drops at most once a minute.
func (p *peerScreen) dropStranger(c *Call, src netip.Addr, req *sip.Request) {
	if h := p.events.RequestDropped; h != nil {
		h(DropNotDialogPeer)
	}
	if ok, n := p.drops.note(p.clock.Now()); ok {
		p.log.Warn("SIP in-dialog request dropped: source is not the call's peer", "reason", DropNotDialogPeer,
			"call", c.ID(), "source", src.String(), "method", string(req.Method), "dropped", n)
	}
}
