package sipua

import (
	"strings"

	"github.com/emiago/sipgo/sip"
	"github.com/groupbridge/groupbridge/internal/sipua/sipmsg"
)

// Request validation. sipgo parses leniently: a request with a foreign SIP
// version, two Call-IDs or a CSeq naming another method reaches the
// handlers as if it were sound, and the handlers would answer it 200. The
// checks here refuse such requests with the answers RFC 3261 gives them,
// in two steps:
//
//   - wellFormed, for every request after the flood screening (limits.go:
//     floods are dropped, never answered) and before any other work: what
//     makes the message itself unusable (505, 400).
//   - inspect, after the request is admitted (dialog.go, auth.go), in the order of
//     RFC 3261 8.2: the method (sipgo routes by method; onOther answers
//     the ones we do not serve), then the headers (8.2.2.1 Request-URI
//     scheme: 416; 8.2.2.3 Require: 420), then the content (8.2.3: 415 and
//     406 for an INVITE, whose answer carries SDP).
//
// Both read only what sipgo parsed already and allocate nothing for a
// request that passes; only a refusal builds a response.

// validator is the screening by RFC 3261's rules: wellFormed, inspect
// and newDialog, each a unit of the chain (screen.go, steps 4, 8 and 10).
type validator struct{ resp responder }

// wellFormedScreen is validator.wellFormed as a unit of the chain.
type wellFormedScreen struct{ v validator }

func (wellFormedScreen) name() string { return "well-formed" }

func (w wellFormedScreen) screen(req *sip.Request, tx sip.ServerTransaction, r facts) (facts, bool) {
	return r, w.v.wellFormed(req, tx)
}

// inspectScreen is validator.inspect as a unit of the chain, for the
// methods we serve: the others are answered 405 or 501 first (RFC 3261
// 8.2.1), by onOther.
type inspectScreen struct{ v validator }

func (inspectScreen) name() string { return "inspect" }

func (i inspectScreen) screen(req *sip.Request, tx sip.ServerTransaction, r facts) (facts, bool) {
	switch req.Method {
	case sip.INVITE, sip.BYE, sip.CANCEL, sip.OPTIONS, sip.INFO:
		return r, i.v.inspect(req, tx)
	}
	return r, true // ACK is never answered; other methods go to onOther
}

// newDialogScreen is validator.newDialog as a unit of the chain.
type newDialogScreen struct{ v validator }

func (newDialogScreen) name() string { return "new-dialog" }

func (n newDialogScreen) screen(req *sip.Request, tx sip.ServerTransaction, r facts) (facts, bool) {
	if !newInvite(req) {
		return r, true
	}
	return r, n.v.newDialog(req, tx)
}

// sipVersion is the only version we speak (RFC 3261 7.1: compared without
// case).
const sipVersion = sipmsg.Version

// fault is why a request is refused: the reason phrase of the answer and
// a Warning (RFC 3261 20.43, code 399) that names the header. The reason
// phrase names the problem without naming a header: tools that look for a
// header by searching the message for its name, as sipp does for "CSeq",
// find the status line first and misread the answer. Neither ever holds a
// header's value, which may be a caller's number.
type fault struct {
	reason  string
	warning string // the Warning header's value
}

// The faults wellFormed finds.
var (
	faultDupCallID        = fault{"Bad Request: Repeated Header", `399 groupbridge "more than one Call-ID"`}
	faultDupFrom          = fault{"Bad Request: Repeated Header", `399 groupbridge "more than one From"`}
	faultDupTo            = fault{"Bad Request: Repeated Header", `399 groupbridge "more than one To"`}
	faultDupCSeq          = fault{"Bad Request: Repeated Header", `399 groupbridge "more than one CSeq"`}
	faultDupContentLength = fault{"Bad Request: Repeated Header", `399 groupbridge "more than one Content-Length"`}
	faultDupContentType   = fault{"Bad Request: Repeated Header", `399 groupbridge "more than one Content-Type"`}
	faultDupMaxForwards   = fault{"Bad Request: Repeated Header", `399 groupbridge "more than one Max-Forwards"`}
	faultCSeqMethod       = fault{"Bad Request: Method Mismatch", `399 groupbridge "the CSeq method is not the request method"`}
	faultURIHeaders       = fault{"Bad Request: Headers in Request-URI", `399 groupbridge "headers are not allowed in a Request-URI"`}
)

// wellFormed checks what makes a request unusable whatever it asks for,
// and answers it when it fails: a version other than SIP/2.0 (505), a
// header that may appear once appearing more often, a CSeq whose method is
// not the request's, and a Request-URI with headers (400). An ACK is never
// answered (RFC 3261 17.1.1.3): a bad one is dropped. It reports whether
// the request may go on.
func (v validator) wellFormed(req *sip.Request, tx sip.ServerTransaction) bool {
	if !strings.EqualFold(req.SipVersion, sipVersion) {
		// RFC 3261 21.5.6. The answer speaks our version, not the
		// request's (send sees to that).
		if req.IsAck() {
			return false
		}
		v.resp.send(tx, sip.NewResponseFromRequest(req, 505, "Version Not Supported", nil))
		return false
	}
	if f := malformed(req); f.reason != "" {
		if !req.IsAck() {
			v.resp.respond(req, tx, 400, f.reason, sip.NewHeader("Warning", f.warning))
		}
		return false
	}
	return true
}

// malformed returns why a request deserves a 400, or the zero fault for a
// sound one.
func malformed(req *sip.Request) fault {
	// Headers RFC 3261 7.3.1 allows once only (they are not comma
	// lists). sipgo
	// keeps the first of each and ignores the others, so a request with two
	// Call-IDs or Content-Lengths would be taken for what its first one
	// says while a proxy on the way may have read the second (RFC 4475
	// 3.3.8, 3.3.9).
	var callID, from, to, cseq, length, ctype, maxFwd int
	for _, h := range req.Headers() {
		switch h.(type) {
		case *sip.CallIDHeader:
			callID++
		case *sip.FromHeader:
			from++
		case *sip.ToHeader:
			to++
		case *sip.CSeqHeader:
			cseq++
		case *sip.ContentLengthHeader:
			length++
		case *sip.ContentTypeHeader:
			ctype++
		case *sip.MaxForwardsHeader:
			maxFwd++
		}
	}
	switch {
	case callID > 1:
		return faultDupCallID
	case from > 1:
		return faultDupFrom
	case to > 1:
		return faultDupTo
	case cseq > 1:
		return faultDupCSeq
	case length > 1:
		return faultDupContentLength
	case ctype > 1:
		return faultDupContentType
	case maxFwd > 1:
		return faultDupMaxForwards
	}
	// RFC 3261 8.1.1.5: the CSeq method matches the request's (an ACK's
	// CSeq names ACK, a CANCEL's CANCEL). sipgo upper-cases the request
	// line's method, so the comparison ignores case.
	if c := req.CSeq(); c != nil && !strings.EqualFold(strings.TrimLeft(string(c.MethodName), " \t"), string(req.Method)) {
		return faultCSeqMethod
	}
	// RFC 3261 19.1.1, Table 1: headers ("?Route=...") are not allowed in
	// a Request-URI (RFC 4475 3.1.2.11).
	if r := req.Recipient; (r.Scheme == "sip" || r.Scheme == "sips") && r.Headers != nil && r.Headers.Length() > 0 {
		return faultURIHeaders
	}
	return fault{}
}

// inspect checks a request admitted by the gate as RFC 3261 8.2.2 and
// 8.2.3 ask, and answers it when it fails: a Request-URI scheme we do not
// serve (416), an extension we do not support in Require (420), and for an
// INVITE a body that is not SDP (415) or an Accept that excludes SDP
// (406). It reports whether the request may go on.
func (v validator) inspect(req *sip.Request, tx sip.ServerTransaction) bool {
	if req.IsAck() {
		return true // never answered; nothing here concerns it
	}
	switch req.Recipient.Scheme {
	case "sip", "sips", "tel":
		// sipgo lower-cases the scheme. A tel URI is what a PBX may put
		// in the Request-URI of a call to a number (RFC 3966).
	default:
		v.resp.respond(req, tx, 416, "Unsupported URI Scheme")
		return false
	}
	// RFC 3261 8.2.2.3: Require in a CANCEL is ignored. We support no
	// extension (no 100rel, no session timers), so every option-tag is
	// unsupported; Proxy-Require is for proxies and a UAS ignores it.
	if !req.IsCancel() {
		if tags := requiredTags(req); tags != "" {
			v.resp.respond(req, tx, 420, "Bad Extension", sip.NewHeader("Unsupported", tags))
			return false
		}
	}
	if req.IsInvite() {
		if ct := req.ContentType(); ct != nil && len(req.Body()) > 0 && !isSDP(ct.Value()) {
			v.resp.respond(req, tx, 415, "Unsupported Media Type", sip.NewHeader("Accept", "application/sdp"))
			return false
		}
		if !acceptsSDP(req) {
			// RFC 3261 21.4.7; RFC 4475 3.3.15. Our answer to an INVITE
			// carries SDP, which this caller says it cannot take.
			v.resp.respond(req, tx, 406, "Not Acceptable", sip.NewHeader("Warning", `399 groupbridge "answer is application/sdp"`))
			return false
		}
	}
	return true
}

// newDialog checks what a new INVITE's dialog is made of, and answers
// 400 when it is missing: Call-ID, From, To and CSeq, and a From tag. RFC
// 3261 8.1.1.3 asks for the tag; an RFC 2543 caller without one cannot be
// told apart from another call with the same Call-ID. (sipgo keeps white
// space around "=" in a parameter's name, so RFC 4475's wsinv, "tag =
// 98asjd8", lands here too.) The reason phrases name no header (see
// fault).
func (v validator) newDialog(req *sip.Request, tx sip.ServerTransaction) bool {
	if req.CallID() == nil || req.From() == nil || req.To() == nil || req.CSeq() == nil {
		v.resp.respond(req, tx, 400, "Bad Request: Missing Header")
		return false
	}
	if fromTag, _ := req.From().Params.Get("tag"); fromTag == "" {
		v.resp.respond(req, tx, 400, "Bad Request: Missing Tag", sip.NewHeader("Warning", `399 groupbridge "no From tag"`))
		return false
	}
	return true
}

// requiredTags returns the option-tags of the request's Require headers as a
// list for Unsupported ("a, b"), or "" when there are none. It allocates
// only when there are.
func requiredTags(req *sip.Request) string {
	var out []byte
	for _, h := range req.Headers() {
		if !strings.EqualFold(h.Name(), "Require") {
			continue
		}
		for v := h.Value(); v != ""; {
			var tag string
			tag, v, _ = strings.Cut(v, ",")
			if tag = strings.TrimSpace(tag); tag == "" {
				continue
			}
			if len(out) > 0 {
				out = append(out, ", "...)
			}
			out = append(out, tag...)
		}
	}
	return string(out)
}

// isSDP reports whether a Content-Type value is application/sdp (with any
// parameters, any case).
func isSDP(ct string) bool {
	mt, _, _ := strings.Cut(ct, ";")
	return strings.EqualFold(strings.TrimSpace(mt), "application/sdp")
}

// acceptsSDP reports whether the request's Accept headers allow an SDP
// body in the answer: no Accept at all means application/sdp (RFC 3261
// 20.1), and so does a media range that covers it with a q-value above 0.
// An Accept with no value at all would, by the letter of 20.1, allow no
// body; a caller that sends one is broken rather than asking for an answer
// without SDP, which an INVITE cannot have, so it is taken as no Accept.
func acceptsSDP(req *sip.Request) bool {
	seen := false
	for _, h := range req.Headers() {
		if !strings.EqualFold(h.Name(), "Accept") {
			continue
		}
		for v := h.Value(); v != ""; {
			var item string
			item, v, _ = strings.Cut(v, ",")
			mr, params, _ := strings.Cut(item, ";")
			mr = strings.TrimSpace(mr)
			if mr == "" {
				continue
			}
			seen = true
			if (strings.EqualFold(mr, "application/sdp") || strings.EqualFold(mr, "application/*") || mr == "*/*") && !qZero(params) {
				return true
			}
		}
	}
	return !seen
}

// qZero reports whether accept-params (after the media range's ";") hold
// q=0, which makes the range unacceptable (RFC 3261 20.1, RFC 2616 14.1).
func qZero(params string) bool {
	for params != "" {
		var p string
		p, params, _ = strings.Cut(params, ";")
		k, v, ok := strings.Cut(p, "=")
		if !ok || !strings.EqualFold(strings.TrimSpace(k), "q") {
			continue
		}
		v = strings.TrimSpace(v)
		return strings.TrimRight(strings.TrimPrefix(v, "0."), "0") == "" && strings.HasPrefix(v, "0")
	}
	return false
}
