package dialog

import (
	"errors"
	"strconv"

	"github.com/emiago/sipgo/sip"
	"github.com/groupbridge/groupbridge/internal/sipua/sipmsg"
	"github.com/groupbridge/groupbridge/media/dtmf"
)

// Handlers serves the peer's requests inside a dialog of the layer (and
// the strays that name none), once the server has screened them: the
// server routes sipgo's handlers to these.
type Handlers struct{ d *Layer }

// Handlers returns the layer's handlers of the peer's requests.
func (d *Layer) Handlers() Handlers { return Handlers{d} }

// inOrder applies RFC 3261 12.2.2 to a request inside call c: its CSeq
// must be above the last one the caller sent in the dialog, which it then
// becomes. One that is not is out of order and refused with 500; it
// reports whether the request may go on. A retransmission of a request
// already taken never gets here: sipgo's transaction layer absorbs it
// and resends our answer. OnReinvite checks a re-INVITE here first, then
// against the INVITE transaction in progress.
func (h Handlers) inOrder(c *Call, req *sip.Request, tx sip.ServerTransaction) bool {
	cs := req.CSeq()
	if cs == nil {
		h.d.cfg.Respond(req, tx, 400, "Bad Request: Missing Header")
		return false
	}
	c.mu.Lock()
	ok := cs.SeqNo > c.remoteCSeq
	if ok {
		c.remoteCSeq = cs.SeqNo
	}
	c.mu.Unlock()
	if !ok {
		h.d.cfg.Respond(req, tx, 500, "Server Internal Error: Out of Order", sip.NewHeader("Warning", `399 groupbridge "CSeq out of order"`))
	}
	return ok
}

func (h Handlers) OnReinvite(req *sip.Request, tx sip.ServerTransaction) {
	c := h.d.Lookup(req)
	if c == nil {
		h.d.cfg.Respond(req, tx, 481, "Call/Transaction Does Not Exist")
		return
	}
	c.mu.Lock()
	ended := c.endReason != ""
	c.mu.Unlock()
	if ended {
		h.d.cfg.Respond(req, tx, 481, "Call/Transaction Does Not Exist")
		return
	}
	// The CSeq order (12.2.2) comes before the dialog's state: a request
	// older than one already taken is refused with 500 whatever is in
	// progress, since a 491 would invite the caller to retry it.
	if !h.inOrder(c, req, tx) {
		return
	}
	seq := req.CSeq().SeqNo
	body := req.Body()
	late := len(body) == 0
	c.mu.Lock()
	switch {
	case c.pending != nil && !c.pending.answered, c.pending == nil && !c.confirmed:
		// Our final response to an earlier INVITE has not gone out
		// (RFC 3261 14.2): 500 with a random Retry-After of 0-10 s.
		c.mu.Unlock()
		h.d.cfg.Respond(req, tx, 500, "Server Internal Error", sip.NewHeader("Retry-After", strconv.FormatUint(sipmsg.RandUint64()%11, 10)))
		return
	case c.pending != nil:
		// Our 2xx waits for its ACK: that INVITE transaction, and its
		// offer/answer exchange, is still in progress.
		c.mu.Unlock()
		h.d.cfg.Respond(req, tx, 491, "Request Pending")
		return
	}
	// Taken from here on, until our 2xx is ACKed or given up on.
	pend := &pendingAnswer{cseq: seq, acked: make(chan *sip.Request, 1), offer: late}
	c.pending = pend
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		if c.pending == pend {
			c.pending = nil
		}
		c.mu.Unlock()
	}()

	policy := h.d.cfg.SRTP
	if c.keyedOutOfBand() {
		policy = outOfBandPolicy
	}
	offer, err := policy.readOffer(body, req.Transport())
	if err != nil {
		h.d.cfg.Respond(req, tx, 488, "Not Acceptable Here", sip.NewHeader("Warning", `305 groupbridge "`+sipmsg.WarningText(err)+`"`))
		return
	}
	if ct := req.Contact(); ct != nil {
		c.mu.Lock()
		c.remoteTarget = ct.Address
		c.mu.Unlock()
	}
	var answerTo *Media
	if !late {
		answerTo = &offer
	}
	sdpBody, err := c.localSDP(answerTo, h.d.cfg.SRTP.Mode)
	if err != nil {
		h.d.cfg.Respond(req, tx, 500, "Server Internal Error")
		return
	}
	c.mu.Lock()
	pend.answered = true
	c.mu.Unlock()
	if !late {
		c.applyMedia(offer)
	}
	h.d.log.Info("call media changed", "call", c.id, "hold", c.OnHold())
	// A lost ACK on a re-INVITE is no reason to drop a caller who is in
	// a session: whatever ends the wait, the call goes on.
	ack, end := h.d.answerInvite(c, req, tx, sdpBody, pend, nil)
	if end == ackReceived && late {
		_ = c.takeAnswer(ack.Body())
	}
}

func (h Handlers) OnAck(req *sip.Request, tx sip.ServerTransaction) {
	c := h.d.Lookup(req)
	if c == nil || req.CSeq() == nil {
		return // ACKs get no response; a stray one is simply ignored
	}
	c.mu.Lock()
	p := c.pending
	c.mu.Unlock()
	if p != nil && p.answered && p.cseq == req.CSeq().SeqNo {
		select {
		case p.acked <- req:
		default:
		}
	}
}

// ordered returns the call of an in-dialog request whose CSeq moves the
// dialog on, or answers it (481 for no call of ours, inOrder's 500) and
// returns nil.
func (h Handlers) ordered(req *sip.Request, tx sip.ServerTransaction) *Call {
	c := h.d.Lookup(req)
	if c == nil {
		h.d.cfg.Respond(req, tx, 481, "Call/Transaction Does Not Exist")
		return nil
	}
	if !h.inOrder(c, req, tx) {
		return nil
	}
	return c
}

func (h Handlers) OnBye(req *sip.Request, tx sip.ServerTransaction) {
	c := h.ordered(req, tx)
	if c == nil {
		return
	}
	h.d.cfg.Respond(req, tx, 200, "OK")
	if c.endBy("remote-bye", ParseReason(headerValues(req, "Reason"))) {
		h.d.log.Debug("BYE received", "call", c.id)
	}
}

func (h Handlers) OnCancel(req *sip.Request, tx sip.ServerTransaction) {
	// A matching CANCEL is answered by sipgo's transaction layer (200, then
	// 487 to the INVITE); one that reaches us matched nothing.
	h.d.cfg.Respond(req, tx, 481, "Call/Transaction Does Not Exist")
}

func (h Handlers) OnOptions(req *sip.Request, tx sip.ServerTransaction) {
	// Outside a dialog (the usual keep-alive) an OPTIONS is answered as
	// it comes; inside one of our calls its CSeq must move on like any
	// in-dialog request's.
	if sipmsg.HasToTag(req) {
		if c := h.d.Lookup(req); c != nil && !h.inOrder(c, req, tx) {
			return
		}
	}
	h.d.cfg.Respond(req, tx, 200, "OK",
		sip.NewHeader("Allow", sipmsg.Allowed),
		sip.NewHeader("Accept", "application/sdp, application/dtmf-relay, application/dtmf"))
}

func (h Handlers) OnInfo(req *sip.Request, tx sip.ServerTransaction) {
	c := h.ordered(req, tx)
	if c == nil {
		return
	}
	ct := ""
	if cth := req.ContentType(); cth != nil {
		ct = cth.Value()
	}
	if len(req.Body()) == 0 {
		// An empty INFO is a keep-alive some gateways send.
		h.d.cfg.Respond(req, tx, 200, "OK")
		return
	}
	key, err := dtmf.ParseInfo(ct, req.Body())
	switch {
	case errors.Is(err, dtmf.ErrNotDTMF):
		h.d.cfg.Respond(req, tx, 415, "Unsupported Media Type", sip.NewHeader("Accept", "application/dtmf-relay, application/dtmf"))
	case err != nil:
		h.d.cfg.Respond(req, tx, 400, "Bad Request")
	default:
		// The digit is queued before the 200 goes out: a phone that sends
		// its next INFO on our answer would otherwise race this goroutine
		// (sipgo serves each request on its own), and a PIN could arrive
		// out of order.
		c.pushDigit(key)
		h.d.cfg.Respond(req, tx, 200, "OK")
	}
}

// OnOther answers the methods we do not serve (RFC 3261 8.2.1): 405 for
// those we know of, which this server does not allow, and 501 for the
// ones we do not know at all (21.5.2), both with Allow. A request with a
// To tag for no dialog of ours gets 481 first, as any such request does.
func (h Handlers) OnOther(req *sip.Request, tx sip.ServerTransaction) {
	if sipmsg.HasToTag(req) && h.d.Lookup(req) == nil {
		h.d.cfg.Respond(req, tx, 481, "Call/Transaction Does Not Exist")
		return
	}
	if knownMethod(req.Method) {
		h.d.cfg.Respond(req, tx, 405, "Method Not Allowed", sip.NewHeader("Allow", sipmsg.Allowed))
		return
	}
	h.d.cfg.Respond(req, tx, 501, "Not Implemented", sip.NewHeader("Allow", sipmsg.Allowed))
}

// knownMethod reports whether m is a method of RFC 3261 or of a standard
// extension: a request for one we do not serve gets 405, not 501.
func knownMethod(m sip.RequestMethod) bool {
	switch m {
	case sip.INVITE, sip.ACK, sip.BYE, sip.CANCEL, sip.OPTIONS, sip.REGISTER, // RFC 3261
		// RFC 6086, 3262, 6665, 3311, 3428, 3515, 3903
		sip.INFO, sip.PRACK, sip.SUBSCRIBE, sip.NOTIFY, sip.UPDATE, sip.MESSAGE, sip.REFER, sip.PUBLISH:
		return true
	}
	return false
}

// headerValues returns the values of every header line called name.
func headerValues(req *sip.Request, name string) []string {
	var out []string
	for _, h := range req.GetHeaders(name) {
		out = append(out, h.Value())
	}
	return out
}
