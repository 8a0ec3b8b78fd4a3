package sipua

import (
	"log/slog"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/groupbridge/groupbridge/internal/logging"
	"github.com/groupbridge/groupbridge/internal/sipua/sipmsg"
)

// Request screening. Every request passes the units of one chain, built
// in one place (chain, below) in this order, the way CoreDNS chains its
// plugins: each unit lets the request on, or drops or answers it, and the
// first that stops it ends the chain. Each unit is a type of its own with
// its own configuration (the part of Config or Limits it reads) and its
// own tests; TestChain drives the whole chain and TestChainOrder holds
// chain to this list.
//
//  0. accept (conns.go, connGuard): not a unit of the chain: TCP
//     and TLS connections, at accept: the per-source cap and the
//     handshake and idle deadlines.
//  1. trust (auth.go, trustScreen): reads the packet's source and decides
//     whether it is trusted (sip.trusted, the registrar). It comes first
//     because what follows depends on it: a trusted source (a PBX
//     carrying everyone's calls) is never rate limited, challenged or
//     capped in setup, so a flood from strangers cannot get the PBX's
//     own requests dropped.
//  2. origin (origin.go, originScreen): from a proxy in Config.Proxies,
//     X-Groupbridge-Source names the caller's own address: the source
//     the per-source units below screen (flood, digest blocks, setup
//     caps), exempt when it is trusted itself. A malformed one: 400.
//     Trust (step 1) stays the transport's.
//  3. flood (limits.go, floodScreen): untrusted sources only: the
//     per-source token bucket and known scanners; dropped unanswered.
//     With Config.OnlyTrusted, every request whose transport source
//     is untrusted is dropped here.
//     TCP and TLS requests here; a UDP datagram meets the same screen
//     (and the same trust decision) before sipgo parses it
//     (floodScreen.datagram, the transport's read filter).
//  4. well-formed (validate.go, wellFormedScreen): 505 and 400.
//  5. connection (conns.go, connTable): a TCP or TLS connection that
//     carried a sound request is proven: the idle deadline ends.
//  6. dialog-peer (dialog.go, peerScreen): inside a dialog we know, only
//     the dialog's peer (CANCEL excepted: it names no dialog of ours).
//  7. digest (auth.go, digestScreen): outside a dialog, an untrusted
//     source answers a digest challenge as one of sip.users (ACK, CANCEL
//     and OPTIONS excepted: RFC 3261 22.1, and PBXs' keep-alives).
//  8. inspect (validate.go, inspectScreen): 416, 420, and for an INVITE
//     415 and 406; methods we do not serve are left to their 405/501.
//  9. capacity (setup.go, capacityScreen): a new INVITE only: draining
//     (503), then limits.max_calls (503).
//  10. new-dialog (validate.go, newDialogScreen): a new INVITE only: the
//     headers a dialog is made of, and a From tag (400).
//  11. setup-caps (setup.go, setupScreen): a new INVITE only: the calls in
//     setup per untrusted source and per account (503); the place taken
//     goes with the request (facts.hold).
//  12. gate: not a unit of the chain: a new INVITE that passed it is put
//     to Config.Gate (admission.go) before any answer.
//  13. pin: not a unit of the chain: PIN budgets are the application's,
//     after the PIN prompt (internal/guard's PINGuard and Budget, asked
//     by internal/callflow), as sipua knows no PINs.

// facts are what the units learn of one request on its way through the
// chain; each unit reads what earlier ones found. They go by value, so
// that a request costs no allocation for them.
type facts struct {
	src     netip.Addr // the packet's source; invalid when unreadable
	trusted bool       // src is trusted (step 1)
	// origin is the source the per-source units screen: src, or the
	// caller's own address a proxy named (step 2); originTrusted exempts
	// it from them.
	origin        netip.Addr
	originTrusted bool
	call          *Call      // the dialog the request is inside, when we know it
	user          string     // the account the caller authenticated as ("": none)
	hold          *setupHold // a new INVITE's place among the calls in setup
}

// screen is one unit of the chain. screen returns r with what
// the unit learnt, and whether it may go on; a unit that stops it has
// answered it, or dropped it unanswered.
type screen interface {
	name() string
	screen(req *sip.Request, tx sip.ServerTransaction, r facts) (facts, bool)
}

// screenedHandler serves a request that passed the chain.
type screenedHandler func(req *sip.Request, tx sip.ServerTransaction, r facts)

// chain lists the screening units in their order (see above). It is the
// one place that order is written.
func chain(t trustScreen, o *originScreen, f *floodScreen, v validator, c *connTable, p *peerScreen, d *digestScreen, u *setupScreen) []screen {
	return []screen{
		t,
		o,
		f,
		wellFormedScreen{v},
		c,
		p,
		d,
		inspectScreen{v},
		capacityScreen{u},
		newDialogScreen{v},
		u,
	}
}

// pass walks the chain for one request. It returns what the units found,
// and the unit that stopped the request: nil when every one let it on.
func pass(units []screen, req *sip.Request, tx sip.ServerTransaction) (facts, screen) {
	var r facts
	for _, u := range units {
		var ok bool
		if r, ok = u.screen(req, tx, r); !ok {
			return r, u
		}
	}
	return r, nil
}

// newInvite reports whether req is an INVITE for a new dialog, the only
// request the last units (capacity, new-dialog, setup-caps) screen.
func newInvite(req *sip.Request) bool { return req.Method == sip.INVITE && !sipmsg.HasToTag(req) }

// plain adapts a handler that needs nothing the chain learnt.
func plain(h func(*sip.Request, sip.ServerTransaction)) screenedHandler {
	return func(req *sip.Request, tx sip.ServerTransaction, _ facts) { h(req, tx) }
}

// responder answers requests: every unit that refuses one answers it
// through here, so that each answer carries our Server header.
type responder struct {
	userAgent string
	log       *slog.Logger
}

// respond answers a request with a bodiless response.
func (r responder) respond(req *sip.Request, tx sip.ServerTransaction, code int, reason string, hdrs ...sip.Header) {
	res := sip.NewResponseFromRequest(req, code, reason, nil)
	for _, h := range hdrs {
		res.AppendHeader(h)
	}
	r.send(tx, res)
}

// send adds our Server header to res and sends it on tx. The status line
// says SIP/2.0 whatever the request said: sipgo copies the request's
// version, which may be SIP/7.0 (answered 505) or "sip/2.0", and RFC 3261
// 7.1 asks for upper case. The request itself is left alone: sipgo's
// transaction reads it from other goroutines.
func (r responder) send(tx sip.ServerTransaction, res *sip.Response) {
	res.SipVersion = sipVersion
	res.AppendHeader(sip.NewHeader("Server", r.userAgent))
	if err := tx.Respond(res); err != nil {
		r.log.Debug("respond failed", "code", res.StatusCode, "error", err)
	}
}

// countedLog counts events of one kind (drops, refusals) and lets a log
// line about them through at most once a minute: a flood must not flood
// the log too.
type countedLog struct {
	throttle logging.Throttle
	n        atomic.Int64
}

// note counts one event at now and reports whether to log, with how many
// events the line speaks for.
func (l *countedLog) note(now time.Time) (bool, int64) {
	l.n.Add(1)
	if !l.throttle.Allow(now) {
		return false, 0
	}
	return true, l.n.Swap(0)
}
