package sipua

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/groupbridge/groupbridge/internal/wallclock"
	"github.com/groupbridge/groupbridge/media/dtmf"
)

// dialogs is the dialog layer: the calls by dialog id, both those we
// answered and those we placed, and what keeps a dialog going: the peer's
// CSeq order, our answers to its INVITEs (and the wait for their ACK,
// ackwait.go), our own requests inside it (BYE, INFO, ACK) and their
// transactions. It knows nothing of policy: who may call, and what for,
// is decided before a call gets here.
type dialogs struct {
	userAgent  string
	external   string        // Config.ExternalAddress
	ackTimeout time.Duration // Config.AckTimeout
	log        *slog.Logger
	resp       responder
	ua         *sipgo.UserAgent
	client     *sipgo.Client
	clock      wallclock.Clock
	ctx        context.Context // the server's life
	wg         *sync.WaitGroup // the server's goroutines
	srtp       srtpPolicy      // for the offers of re-INVITEs

	mu    sync.Mutex
	calls map[string]*Call // by dialog id
}

// add puts c in the table under its dialog id unless max calls (0: no
// bound) are there already; it reports whether it did.
func (d *dialogs) add(c *Call, max int) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if max > 0 && len(d.calls) >= max {
		return false
	}
	d.calls[c.dialogID] = c
	return true
}

// remove forgets c.
func (d *dialogs) remove(c *Call) {
	d.mu.Lock()
	delete(d.calls, c.dialogID)
	d.mu.Unlock()
}

// count returns the number of calls up or being set up.
func (d *dialogs) count() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.calls)
}

// all returns the calls in the table now.
func (d *dialogs) all() []*Call {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]*Call, 0, len(d.calls))
	for _, c := range d.calls {
		out = append(out, c)
	}
	return out
}

func (d *dialogs) lookup(req *sip.Request) *Call {
	id, err := sip.DialogIDFromRequestUAS(req)
	if err != nil {
		return nil
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.calls[id]
}

// respondInvite answers the INVITE (or re-INVITE) req with our To tag,
// Contact and, when body is set, an SDP body.
func (d *dialogs) respondInvite(call *Call, req *sip.Request, tx sip.ServerTransaction, code int, reason string, body []byte) *sip.Response {
	res := sip.NewResponseFromRequest(req, code, reason, body)
	res.SipVersion = sipVersion // as in send
	if code > 100 {
		res.To().Params.Add("tag", call.localTag)
	}
	if code >= 180 && code < 300 {
		res.AppendHeader(d.contactFor(call))
	}
	res.AppendHeader(sip.NewHeader("Server", d.userAgent))
	if code >= 200 && code < 300 {
		res.AppendHeader(sip.NewHeader("Allow", allowed))
	}
	if body != nil {
		res.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
		res.SetBody(body)
	}
	if err := tx.Respond(res); err != nil {
		d.log.Debug("respond to INVITE failed", "call", call.id, "code", code, "error", err)
		if code >= 200 {
			return nil
		}
	}
	return res
}

func (d *dialogs) contactFor(call *Call) sip.Header {
	host, port := d.sipHost(call)
	uri := sip.Uri{Scheme: "sip", User: "groupbridge", Host: host, Port: port}
	if reliable(call.transport) {
		uri.UriParams = sip.NewParams()
		uri.UriParams.Add("transport", strings.ToLower(call.transport))
	}
	return &sip.ContactHeader{Address: uri}
}

// sipHost returns the host and port for our Contact: the external address
// when configured, else the address the call reached us on.
func (d *dialogs) sipHost(call *Call) (string, int) {
	port := call.laddr.Port
	if d.external != "" {
		return d.external, port
	}
	return call.laddr.IP.String(), port
}

// logEnded logs the end of an answered call.
func (d *dialogs) logEnded(c *Call) {
	d.log.Info("call ended", "call", c.id, "caller", c.label,
		"reason", c.EndReason(), "duration", d.clock.Now().Sub(c.started).Round(time.Second).String())
}

// inOrder applies RFC 3261 12.2.2 to a request inside call c: its CSeq
// must be above the last one the caller sent in the dialog, which it then
// becomes. One that is not is out of order and refused with 500; it
// reports whether the request may go on. A retransmission of a request
// already taken never gets here: sipgo's transaction layer absorbs it
// and resends our answer. onReinvite checks a re-INVITE here first, then
// against the INVITE transaction in progress.
func (d *dialogs) inOrder(c *Call, req *sip.Request, tx sip.ServerTransaction) bool {
	cs := req.CSeq()
	if cs == nil {
		d.resp.respond(req, tx, 400, "Bad Request: Missing Header")
		return false
	}
	c.mu.Lock()
	ok := cs.SeqNo > c.remoteCSeq
	if ok {
		c.remoteCSeq = cs.SeqNo
	}
	c.mu.Unlock()
	if !ok {
		d.resp.respond(req, tx, 500, "Server Internal Error: Out of Order", sip.NewHeader("Warning", `399 groupbridge "CSeq out of order"`))
	}
	return ok
}

// sendBye ends the dialog from our side. It never blocks the caller: the
// transaction runs in the background with a bound, and the call's resources
// do not wait for its answer.
func (d *dialogs) sendBye(c *Call) {
	if !c.byeSent.CompareAndSwap(false, true) {
		return
	}
	d.goRoundTrip(d.inDialogRequest(c, sip.BYE, c.localCSeq.Add(1)), "call", c.id)
}

// goRoundTrip runs req's transaction in the background, off the caller's
// path, for at most 64*T1 and never beyond the server's life; attrs go in
// the debug line when it gets no final answer.
func (d *dialogs) goRoundTrip(req *sip.Request, attrs ...any) {
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		defer recoverGoroutine(d.log, string(req.Method))
		ctx, cancel := context.WithTimeout(d.ctx, 64*t1)
		defer cancel()
		if _, err := d.roundTrip(ctx, req); err != nil {
			d.log.Debug(string(req.Method)+" not answered", append(attrs, "error", err)...)
		}
	}()
}

// inDialogRequest builds a request of ours inside call c's dialog (RFC
// 3261 12.2.1.1), whichever side placed the call, with the given CSeq
// number. It is built whole, Via included, so that sipgo sends it as is.
func (d *dialogs) inDialogRequest(c *Call, method sip.RequestMethod, cseq uint32) *sip.Request {
	c.mu.Lock()
	inv := c.invite
	target := c.remoteTarget
	routes := append([]sip.Uri(nil), c.routeSet...)
	c.mu.Unlock()

	req := sip.NewRequest(method, target)
	// The caller's INVITE, with our To tag...
	from, to := inv.To().AsFrom(), inv.From().AsTo()
	if c.outbound {
		// ...or ours, with the callee's To tag from its answer.
		from, to = sip.FromHeader(inv.From().AsTo()), sip.ToHeader(inv.To().AsFrom())
	}
	callID := sip.CallIDHeader(inv.CallID().Value())
	maxFwd := sip.MaxForwardsHeader(70)
	req.AppendHeader(&from)
	req.AppendHeader(&to)
	req.AppendHeader(&callID)
	req.AppendHeader(&sip.CSeqHeader{SeqNo: cseq, MethodName: method})
	req.AppendHeader(&maxFwd)
	for _, r := range routes {
		req.AppendHeader(&sip.RouteHeader{Address: r})
	}
	req.AppendHeader(sip.NewHeader("User-Agent", d.userAgent))
	req.SetTransport(c.transport)
	if len(routes) > 0 {
		req.SetDestination(routes[0].HostPort())
	} else {
		// Like Asterisk's rewrite_contact: where the INVITE came from (or
		// went to), which is what works behind NAT and on the TCP
		// connection.
		req.SetDestination(c.source)
	}
	if strings.EqualFold(c.transport, "udp") {
		// The listening socket, as sipgo keys it: for a wildcard listener
		// that is 0.0.0.0:port, not the address the call came in on.
		c.sock.Copy(&req.Laddr)
	}
	host, port := d.sipHost(c)
	req.PrependHeader(newVia(c.transport, host, port))
	req.SetBody(nil)
	return req
}

// roundTrip sends a request we built whole in a client transaction and
// returns its final response.
func (d *dialogs) roundTrip(ctx context.Context, req *sip.Request) (*sip.Response, error) {
	tx, err := d.client.TransactionRequest(ctx, req, func(*sipgo.Client, *sip.Request) error { return nil })
	if err != nil {
		return nil, fmt.Errorf("send %s: %w", req.Method, err)
	}
	defer tx.Terminate()
	for {
		select {
		case res := <-tx.Responses():
			if res.IsProvisional() {
				continue
			}
			return res, nil
		case <-tx.Done():
			if err := tx.Err(); err != nil {
				return nil, fmt.Errorf("%s: %w", req.Method, err)
			}
			return nil, fmt.Errorf("%s: no answer", req.Method)
		case <-ctx.Done():
			return nil, fmt.Errorf("%s: %w", req.Method, ctx.Err())
		}
	}
}

// answerInvite sends our 2xx (with body, our SDP) to the INVITE or
// re-INVITE req of call c and waits for its ACK (awaitAck). A
// retransmission goes on the transaction and, once sipgo has ended that,
// straight to the transport. On the ACK the dialog is confirmed and pend
// is done; what the ACK's SDP says is for the caller to take (takeAnswer).
func (d *dialogs) answerInvite(c *Call, req *sip.Request, tx sip.ServerTransaction, body []byte,
	pend *pendingAnswer, cancelled <-chan struct{}) (*sip.Request, ackEnd) {
	res := d.respondInvite(c, req, tx, 200, "OK", body)
	if res == nil {
		return nil, ackSendFailed
	}
	resend := func() {
		if err := tx.Respond(res); err != nil {
			// The transaction is gone; resend on the transport directly.
			_ = d.ua.TransportLayer().WriteMsg(res)
		}
	}
	ack, end := awaitAck(d.clock, d.ackTimeout, reliable(c.transport), resend, pend.acked,
		ackStops{ended: c.ctx.Done(), cancelled: cancelled, shutdown: d.ctx.Done()})
	if end == ackReceived {
		c.mu.Lock()
		if c.pending == pend {
			c.pending = nil
		}
		c.confirmed = true
		c.mu.Unlock()
	}
	return ack, end
}

// answering marks c's first INVITE (CSeq cseq) answered: its 2xx is on
// its way, carrying our offer when late, and an ACK may come.
func (d *dialogs) answering(c *Call, cseq uint32, late bool) *pendingAnswer {
	pend := &pendingAnswer{cseq: cseq, acked: make(chan *sip.Request, 1), offer: late, answered: true}
	c.mu.Lock()
	c.pending = pend
	c.mu.Unlock()
	return pend
}

// overdue returns, at now, the confirmed calls whose media stopped for
// longer than rtp (hold while on hold, mediaTimeout) and those that
// reached maxCall (0: no bound).
func (d *dialogs) overdue(now time.Time, rtp, hold, maxCall time.Duration) (expired, overlong []*Call) {
	for _, c := range d.all() {
		c.mu.Lock()
		confirmed := c.confirmed
		limit := mediaTimeout(c.direction, &c.media, rtp, hold)
		c.mu.Unlock()
		if !confirmed {
			continue
		}
		switch {
		case now.Sub(c.stream.LastActivity()) > limit:
			expired = append(expired, c)
		case maxCall > 0 && now.Sub(c.started) >= maxCall:
			overlong = append(overlong, c)
		}
	}
	return expired, overlong
}

// The peer's requests inside a dialog, once screened (screen.go).

func (d *dialogs) onReinvite(req *sip.Request, tx sip.ServerTransaction) {
	c := d.lookup(req)
	if c == nil {
		d.resp.respond(req, tx, 481, "Call/Transaction Does Not Exist")
		return
	}
	c.mu.Lock()
	ended := c.endReason != ""
	c.mu.Unlock()
	if ended {
		d.resp.respond(req, tx, 481, "Call/Transaction Does Not Exist")
		return
	}
	// The CSeq order (12.2.2) comes before the dialog's state: a request
	// older than one already taken is refused with 500 whatever is in
	// progress, since a 491 would invite the caller to retry it.
	if !d.inOrder(c, req, tx) {
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
		d.resp.respond(req, tx, 500, "Server Internal Error", sip.NewHeader("Retry-After", strconv.FormatUint(randUint64()%11, 10)))
		return
	case c.pending != nil:
		// Our 2xx waits for its ACK: that INVITE transaction, and its
		// offer/answer exchange, is still in progress.
		c.mu.Unlock()
		d.resp.respond(req, tx, 491, "Request Pending")
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

	offer, err := d.srtp.readOffer(body, req.Transport())
	if err != nil {
		d.resp.respond(req, tx, 488, "Not Acceptable Here", sip.NewHeader("Warning", `305 groupbridge "`+warningText(err)+`"`))
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
	sdpBody, err := c.localSDP(answerTo, d.srtp.mode)
	if err != nil {
		d.resp.respond(req, tx, 500, "Server Internal Error")
		return
	}
	c.mu.Lock()
	pend.answered = true
	c.mu.Unlock()
	if !late {
		c.applyMedia(offer)
	}
	d.log.Info("call media changed", "call", c.id, "hold", c.OnHold())
	// A lost ACK on a re-INVITE is no reason to drop a caller who is in
	// a session: whatever ends the wait, the call goes on.
	ack, end := d.answerInvite(c, req, tx, sdpBody, pend, nil)
	if end == ackReceived && late {
		_ = c.takeAnswer(ack.Body())
	}
}

func (d *dialogs) onAck(req *sip.Request, tx sip.ServerTransaction) {
	c := d.lookup(req)
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
func (d *dialogs) ordered(req *sip.Request, tx sip.ServerTransaction) *Call {
	c := d.lookup(req)
	if c == nil {
		d.resp.respond(req, tx, 481, "Call/Transaction Does Not Exist")
		return nil
	}
	if !d.inOrder(c, req, tx) {
		return nil
	}
	return c
}

func (d *dialogs) onBye(req *sip.Request, tx sip.ServerTransaction) {
	c := d.ordered(req, tx)
	if c == nil {
		return
	}
	d.resp.respond(req, tx, 200, "OK")
	if c.end("remote-bye") {
		d.log.Debug("BYE received", "call", c.id)
	}
}

func (d *dialogs) onCancel(req *sip.Request, tx sip.ServerTransaction) {
	// A matching CANCEL is answered by sipgo's transaction layer (200, then
	// 487 to the INVITE); one that reaches us matched nothing.
	d.resp.respond(req, tx, 481, "Call/Transaction Does Not Exist")
}

func (d *dialogs) onOptions(req *sip.Request, tx sip.ServerTransaction) {
	// Outside a dialog (the usual keep-alive) an OPTIONS is answered as
	// it comes; inside one of our calls its CSeq must move on like any
	// in-dialog request's.
	if hasToTag(req) {
		if c := d.lookup(req); c != nil && !d.inOrder(c, req, tx) {
			return
		}
	}
	d.resp.respond(req, tx, 200, "OK",
		sip.NewHeader("Allow", allowed),
		sip.NewHeader("Accept", "application/sdp, application/dtmf-relay, application/dtmf"))
}

func (d *dialogs) onInfo(req *sip.Request, tx sip.ServerTransaction) {
	c := d.ordered(req, tx)
	if c == nil {
		return
	}
	ct := ""
	if h := req.ContentType(); h != nil {
		ct = h.Value()
	}
	if len(req.Body()) == 0 {
		// An empty INFO is a keep-alive some gateways send.
		d.resp.respond(req, tx, 200, "OK")
		return
	}
	key, err := dtmf.ParseInfo(ct, req.Body())
	switch {
	case errors.Is(err, dtmf.ErrNotDTMF):
		d.resp.respond(req, tx, 415, "Unsupported Media Type", sip.NewHeader("Accept", "application/dtmf-relay, application/dtmf"))
	case err != nil:
		d.resp.respond(req, tx, 400, "Bad Request")
	default:
		// The digit is queued before the 200 goes out: a phone that sends
		// its next INFO on our answer would otherwise race this goroutine
		// (sipgo serves each request on its own), and a PIN could arrive
		// out of order.
		c.pushDigit(key)
		d.resp.respond(req, tx, 200, "OK")
	}
}

// onOther answers the methods we do not serve (RFC 3261 8.2.1): 405 for
// those we know of, which this server does not allow, and 501 for the
// ones we do not know at all (21.5.2), both with Allow. A request with a
// To tag for no dialog of ours gets 481 first, as any such request does.
func (d *dialogs) onOther(req *sip.Request, tx sip.ServerTransaction) {
	if hasToTag(req) && d.lookup(req) == nil {
		d.resp.respond(req, tx, 481, "Call/Transaction Does Not Exist")
		return
	}
	if knownMethod(req.Method) {
		d.resp.respond(req, tx, 405, "Method Not Allowed", sip.NewHeader("Allow", allowed))
		return
	}
	d.resp.respond(req, tx, 501, "Not Implemented", sip.NewHeader("Allow", allowed))
}
