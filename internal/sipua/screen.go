package sipua

import (
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/groupbridge/groupbridge/internal/logging"
)

// Request screening. Every request passes these units in this order, the
// way a chain of plugins does; each lets it on, or drops or answers it,
// and the first that stops it ends the chain. Each unit has its own type,
// configuration and tests.
//
//  0. connections (conns.go, guardedListener): TCP and TLS only, at
//     accept: the per-source cap and the handshake and idle deadlines.
//  1. trust (auth.go, gate.trustedSource): decides what follows; a trusted
//     source (sip.trusted, the registrar) skips the flood screen, digest
//     and the setup caps.
//  2. flood (limits.go, floodScreen): untrusted sources only: the
//     per-source token bucket and known scanners; dropped unanswered.
//     UDP datagrams before sipgo parses them, TCP and TLS requests first
//     thing in guard.
//  3. well-formed (validate.go, wellFormed): 505 and 400.
//  4. who may ask (Server.admit): inside a dialog we know, the dialog's
//     peer (dialog.go, peerScreen); outside one, digest authentication
//     for untrusted sources (auth.go, gate).
//  5. inspect (validate.go): 416, 420, and for an INVITE 415 and 406.
//  6. a new INVITE only: draining (503), limits.max_calls (setupScreen.full)
//     and the setup caps per source and per account (setup.go,
//     setupScreen.reserve). PIN budgets come later, in the application.

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
