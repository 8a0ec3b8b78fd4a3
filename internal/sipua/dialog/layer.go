// Package dialog is groupbridge's SIP dialog layer, both sides of it: a
// call we answer (NewInbound, Answer: our SDP answer or offer, the 2xx
// retransmitted until the ACK, ackwait.go) and a call we place (Dial:
// INVITE, CANCEL, the ACK of its 2xx); the peer's requests inside a
// dialog (Handlers: re-INVITE, ACK, BYE, INFO, OPTIONS, CSeq order) and
// ours (BYE, INFO keys, RFC 4733 keys); SDP offer/answer and SDES keys
// (sdp.go, crypto.go); each call's RTP stream, and the call table.
// A Call's lock is taken here and nowhere else.
//
// It must not know PINs, groups, callers' identities, accounts or any
// screening (who may call or send what): the server (package sipua)
// decides on a request before it gets here, and keeps what it decided
// about a call in its own type, which Call.Owner hands back.
package dialog

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/groupbridge/groupbridge/internal/sipua/sipmsg"
	"github.com/groupbridge/groupbridge/internal/wallclock"
	"github.com/groupbridge/groupbridge/media/rtpio"
)

// Layer is the dialog layer: the calls by dialog id, both those we
// answered and those we placed, and what keeps a dialog going: the peer's
// CSeq order, our answers to its INVITEs (and the wait for their ACK,
// ackwait.go), our own requests inside it (BYE, INFO, ACK, CANCEL) and
// their transactions. It knows nothing of policy: who may call, and what
// for, is decided before a call gets here.
type Layer struct {
	cfg Config
	log *slog.Logger

	mu    sync.Mutex
	calls map[string]*Call // by dialog id

	sending inflight // our requests in the background (goRoundTrip) not yet sent: Settle waits for them
}

// inflight counts requests in flight and says when there are none; unlike
// a WaitGroup it may be waited on while requests start.
type inflight struct {
	mu   sync.Mutex
	n    int
	idle chan struct{} // closed when n drops to 0
}

func (f *inflight) add() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.n == 0 {
		f.idle = make(chan struct{})
	}
	f.n++
}

func (f *inflight) done() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.n--; f.n == 0 {
		close(f.idle)
	}
}

// none returns a channel closed once no request is in flight.
func (f *inflight) none() <-chan struct{} {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.n == 0 {
		c := make(chan struct{})
		close(c)
		return c
	}
	return f.idle
}

// Settle waits until our requests in the background (the BYEs of
// Hangup, CANCELs) have left, or until ctx ends: a server shutting down
// lets its BYEs go out before it closes its sockets and cancels their
// transactions. Their answers are not waited for: a dead peer would hold
// the shutdown up.
func (d *Layer) Settle(ctx context.Context) {
	select {
	case <-d.sending.none():
	case <-ctx.Done():
	}
}

// Config is what the dialog layer is given by the server it serves.
type Config struct {
	UserAgent       string // User-Agent and Server headers
	ExternalAddress string // host for Contact and Via when behind NAT
	// MediaExternalAddress, when set, goes in SDP instead of
	// ExternalAddress; MediaAddress is where RTP sockets bind.
	MediaExternalAddress string
	MediaAddress         netip.Addr
	// MediaSources are networks a call's media may come from besides its
	// SDP address and the address its SIP came from.
	MediaSources []netip.Prefix
	Media        *rtpio.Engine // opens each call's RTP stream
	SRTP         SRTPPolicy    // what SDES keys an offer may carry
	Logger       *slog.Logger
	// Respond answers a request with a bodiless response (the server's
	// Server header and status line).
	Respond func(req *sip.Request, tx sip.ServerTransaction, code int, reason string, hdrs ...sip.Header)
	UA      *sipgo.UserAgent // its transport resends a 2xx once sipgo's transaction is gone
	Client  *sipgo.Client    // our requests' transactions
	Clock   wallclock.Clock  // the layer's own timers; nil is wallclock.SystemClock
	// Context is the server's life, and WaitGroup counts the goroutines
	// the layer starts (our requests' transactions).
	Context   context.Context
	WaitGroup *sync.WaitGroup
}

// New returns an empty dialog layer.
func New(cfg Config) *Layer {
	if cfg.Clock == nil {
		cfg.Clock = wallclock.SystemClock{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Layer{cfg: cfg, log: cfg.Logger, calls: map[string]*Call{}}
}

// ReadOffer reads the SDP offer of an INVITE or re-INVITE that came over
// transport, under Config.SRTP; an empty body (a late offer) gives none.
func (d *Layer) ReadOffer(body []byte, transport string) (Media, error) {
	return d.cfg.SRTP.readOffer(body, transport)
}

// ReadPlainOffer reads the SDP offer of an INVITE whose call is keyed out
// of band (Inbound.SRTP): a=crypto is never taken, so an offer of
// RTP/SAVP alone is refused (ErrNoSRTP).
func (d *Layer) ReadPlainOffer(body []byte, transport string) (Media, error) {
	return outOfBandPolicy.readOffer(body, transport)
}

// Add puts c in the table under its dialog id unless max calls (0: no
// bound) are there already; it reports whether it did.
func (d *Layer) Add(c *Call, max int) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if max > 0 && len(d.calls) >= max {
		return false
	}
	d.calls[c.dialogID] = c
	return true
}

// Remove forgets c.
func (d *Layer) Remove(c *Call) {
	d.mu.Lock()
	delete(d.calls, c.dialogID)
	d.mu.Unlock()
}

// Count returns the number of calls up or being set up.
func (d *Layer) Count() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.calls)
}

// All returns the calls in the table now.
func (d *Layer) All() []*Call {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]*Call, 0, len(d.calls))
	for _, c := range d.calls {
		out = append(out, c)
	}
	return out
}

// Lookup returns the call of an in-dialog request, or nil.
func (d *Layer) Lookup(req *sip.Request) *Call {
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
func (d *Layer) respondInvite(call *Call, req *sip.Request, tx sip.ServerTransaction, code int, reason string, body []byte) *sip.Response {
	res := sip.NewResponseFromRequest(req, code, reason, body)
	res.SipVersion = sipmsg.Version // as the server's Respond does
	if code > 100 {
		res.To().Params.Add("tag", call.localTag)
	}
	if code >= 180 && code < 300 {
		res.AppendHeader(d.contactFor(call))
	}
	res.AppendHeader(sip.NewHeader("Server", d.cfg.UserAgent))
	if code >= 200 && code < 300 {
		res.AppendHeader(sip.NewHeader("Allow", sipmsg.Allowed))
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

func (d *Layer) contactFor(call *Call) sip.Header {
	host, port := d.sipHost(call)
	uri := sip.Uri{Scheme: "sip", User: "groupbridge", Host: host, Port: port}
	if sipmsg.Reliable(call.transport) {
		uri.UriParams = sip.NewParams()
		uri.UriParams.Add("transport", strings.ToLower(call.transport))
	}
	return &sip.ContactHeader{Address: uri}
}

// sipHost returns the host and port for our Contact: the external address
// when configured, else the address the call reached us on.
func (d *Layer) sipHost(call *Call) (string, int) {
	port := call.laddr.Port
	if d.cfg.ExternalAddress != "" {
		return d.cfg.ExternalAddress, port
	}
	return call.laddr.IP.String(), port
}

// sendBye ends the dialog from our side, saying why (reason.go). It never blocks the caller: the
// transaction runs in the background with a bound, and the call's resources
// do not wait for its answer.
func (d *Layer) sendBye(c *Call) {
	if !c.byeSent.CompareAndSwap(false, true) {
		return
	}
	bye := d.inDialogRequest(c, sip.BYE, c.localCSeq.Add(1))
	if h := reasonHeader(c.EndReason()); h != nil {
		bye.AppendHeader(h)
	}
	d.goRoundTrip(bye, "call", c.id)
}

// goRoundTrip runs req's transaction in the background, off the caller's
// path, for at most 64*T1 and never beyond the server's life; attrs go in
// the debug line when it gets no final answer.
func (d *Layer) goRoundTrip(req *sip.Request, attrs ...any) {
	d.cfg.WaitGroup.Add(1)
	d.sending.add()
	go func() {
		defer d.cfg.WaitGroup.Done()
		sent := sync.OnceFunc(d.sending.done)
		defer sent()
		defer sipmsg.Recover(d.log, string(req.Method))
		ctx, cancel := context.WithTimeout(d.cfg.Context, 64*sipmsg.T1)
		defer cancel()
		if _, err := d.roundTrip(ctx, req, sent); err != nil {
			d.log.Debug(string(req.Method)+" not answered", append(attrs, "error", err)...)
		}
	}()
}

// inDialogRequest builds a request of ours inside call c's dialog (RFC
// 3261 12.2.1.1), whichever side placed the call, with the given CSeq
// number. It is built whole, Via included, so that sipgo sends it as is.
func (d *Layer) inDialogRequest(c *Call, method sip.RequestMethod, cseq uint32) *sip.Request {
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
	req.AppendHeader(sip.NewHeader("User-Agent", d.cfg.UserAgent))
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
	req.PrependHeader(sipmsg.NewVia(c.transport, host, port))
	req.SetBody(nil)
	return req
}

// RoundTrip sends a request built whole (ours in a dialog, or the
// server's REGISTER) in a client transaction and
// returns its final response.
func (d *Layer) RoundTrip(ctx context.Context, req *sip.Request) (*sip.Response, error) {
	return d.roundTrip(ctx, req, func() {})
}

// roundTrip is RoundTrip, calling sent once the request has first left
// (or could not).
func (d *Layer) roundTrip(ctx context.Context, req *sip.Request, sent func()) (*sip.Response, error) {
	tx, err := d.cfg.Client.TransactionRequest(ctx, req, func(*sipgo.Client, *sip.Request) error { return nil })
	sent()
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
func (d *Layer) answerInvite(c *Call, req *sip.Request, tx sip.ServerTransaction, body []byte,
	pend *pendingAnswer, cancelled <-chan struct{}) (*sip.Request, ackEnd) {
	res := d.respondInvite(c, req, tx, 200, "OK", body)
	if res == nil {
		return nil, ackSendFailed
	}
	resend := func() {
		if err := tx.Respond(res); err != nil {
			// The transaction is gone; resend on the transport directly.
			_ = d.cfg.UA.TransportLayer().WriteMsg(res)
		}
	}
	ack, end := awaitAck(d.cfg.Clock, ackTimeout, sipmsg.Reliable(c.transport), resend, pend.acked,
		ackStops{ended: c.ctx.Done(), cancelled: cancelled, shutdown: d.cfg.Context.Done()})
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
func (d *Layer) answering(c *Call, cseq uint32, late bool) *pendingAnswer {
	pend := &pendingAnswer{cseq: cseq, acked: make(chan *sip.Request, 1), offer: late, answered: true}
	c.mu.Lock()
	c.pending = pend
	c.mu.Unlock()
	return pend
}

// Overdue returns the confirmed calls whose media stopped for longer than
// rtp (hold while on hold, mediaTimeout) at mediaNow, and those that
// reached maxCall (0: no bound) at now. Two instants because two clocks
// stamp what they are compared with: the pollers stamp each packet in real
// time (rtpio, one clock for all media), a call's start is on the
// layer's Clock.
func (d *Layer) Overdue(now, mediaNow time.Time, rtp, hold, maxCall time.Duration) (expired, overlong []*Call) {
	for _, c := range d.All() {
		c.mu.Lock()
		confirmed := c.confirmed
		limit := mediaTimeout(c.direction, &c.media, rtp, hold)
		c.mu.Unlock()
		if !confirmed {
			continue
		}
		switch {
		case mediaNow.Sub(c.stream.LastActivity()) > limit:
			expired = append(expired, c)
		case maxCall > 0 && now.Sub(c.started) >= maxCall:
			overlong = append(overlong, c)
		}
	}
	return expired, overlong
}
