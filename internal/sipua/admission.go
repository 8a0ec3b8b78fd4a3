package sipua

import (
	"errors"
	"net/netip"
	"strconv"
	"strings"

	"github.com/emiago/sipgo/sip"
	"github.com/groupbridge/groupbridge/media/rtpio"
)

// The application's say on a new INVITE (Config.Gate): after every
// screen of the chain and before anything is answered, not even 100
// Trying, so that a refused caller learns nothing but the refusal. sipua
// knows nothing of what the gate checks (the signed header of an
// internal leg, a nonce in Redis); it hands over the request's source,
// Call-ID, headers and exact body, and keeps what the gate returns on the
// call.

// GateRequest is what Config.Gate sees of a new INVITE.
type GateRequest struct {
	Source netip.AddrPort // the packet's source (the transport's, not a header's)
	CallID string
	// Header returns the value of the first header called name (case
	// insensitive), "" for none.
	Header func(name string) string
	Body   []byte // the SDP offer as received, byte for byte; do not modify
}

// GateResult is what Config.Gate lets a call in with.
type GateResult struct {
	// Value is kept on the call: Call.Admission returns it.
	Value any
	// SRTP, when set, are the call's SRTP keys, agreed outside SIP: Local
	// encrypts what we send, Remote decrypts what we receive. The offer
	// must then carry plain RTP/AVP (an a=crypto is never taken) and the
	// answer carries no key.
	SRTP *rtpio.SRTPKeys
}

// Refusal is an error of Config.Gate's that answers the INVITE with Code
// (400-699) and Reason; any other error answers 403.
type Refusal struct {
	Code   int
	Reason string
}

func (r *Refusal) Error() string { return "sipua: refused: " + strconv.Itoa(r.Code) + " " + r.Reason }

// RejectGate is the Events.CallRejected reason of an INVITE Config.Gate
// refused.
const RejectGate = "gate"

// Admission returns the GateResult.Value Config.Gate let the call in
// with; nil without a gate, and for a call we placed.
func (c *Call) Admission() any { return c.admission }

// askGate asks Config.Gate about the new INVITE req. It returns what the
// gate let it in with, or answers the refusal and reports false.
func (s *Server) askGate(req *sip.Request, tx sip.ServerTransaction) (GateResult, bool) {
	if s.cfg.Gate == nil {
		return GateResult{}, true
	}
	src, _ := netip.ParseAddrPort(req.Source())
	callID := ""
	if id := req.CallID(); id != nil {
		callID = id.Value()
	}
	res, err := s.cfg.Gate(GateRequest{
		Source: netip.AddrPortFrom(src.Addr().Unmap(), src.Port()),
		CallID: callID,
		Header: func(name string) string {
			if h := req.GetHeader(name); h != nil {
				return h.Value()
			}
			return ""
		},
		Body: req.Body(),
	})
	if err == nil {
		return res, true
	}
	code, reason := 403, "Forbidden"
	var r *Refusal
	if errors.As(err, &r) && r.Code >= 400 && r.Code <= 699 {
		code, reason = r.Code, statusText(r.Reason, r.Code)
	}
	s.setup.rejected(RejectGate)
	if ok, n := s.gateLog.note(s.clock.Now()); ok {
		s.log.Info("call refused by the gate", "reason", RejectGate, "code", code, "error", err, "refused", n)
	}
	s.resp.respond(req, tx, code, reason)
	return GateResult{}, false
}

// statusText makes reason fit a status line: printable ASCII only, at
// most 64 bytes; an empty one is the code's phrase (RFC 3261 21) for the
// codes a gate is likely to use.
func statusText(reason string, code int) string {
	reason = strings.Map(func(r rune) rune {
		if r < 0x20 || r > 0x7e {
			return -1
		}
		return r
	}, reason)
	if len(reason) > 64 {
		reason = reason[:64]
	}
	if strings.TrimSpace(reason) != "" {
		return reason
	}
	switch code {
	case 403:
		return "Forbidden"
	case 404:
		return "Not Found"
	case 480:
		return "Temporarily Unavailable"
	case 486:
		return "Busy Here"
	case 488:
		return "Not Acceptable Here"
	case 500:
		return "Server Internal Error"
	case 503:
		return "Service Unavailable"
	case 603:
		return "Decline"
	}
	return "Refused"
}
