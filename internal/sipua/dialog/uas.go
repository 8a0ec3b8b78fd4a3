package dialog

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/groupbridge/groupbridge/internal/sipua/sipmsg"
	"github.com/groupbridge/groupbridge/media/rtpio"
)

// The UAS side: a new INVITE's dialog, once the server has screened and
// admitted it, answered with our SDP and confirmed by its ACK.

// Inbound is what NewInbound needs of a new INVITE besides the request.
type Inbound struct {
	Laddr sip.Addr // our address where the INVITE arrived (Contact, Via)
	Sock  sip.Addr // the socket that took it, as sipgo keys it
	Late  bool     // it carries no offer: ours goes in the 2xx
	// Origin is the caller's own address when a proxy named it (sipua's
	// origin.go); invalid for none. The call's media may come from it.
	Origin netip.Addr
	Owner  any // what Call.Owner returns
	// SRTP, when set, are the call's SRTP keys agreed outside SIP (Local
	// encrypts what we send, Remote decrypts what the caller sends): the
	// answer carries no a=crypto and the offer must not need one
	// (ReadPlainOffer).
	SRTP *rtpio.SRTPKeys
}

// NewInbound makes the dialog of a new INVITE req and opens its RTP
// stream. The call is not in the table yet (Add); a call that never gets
// there is let go with Discard.
func (d *Layer) NewInbound(req *sip.Request, in Inbound) (*Call, error) {
	inv := req.Clone()
	localTag := sip.GenerateTagN(16)
	inv.To().Params.Add("tag", localTag)
	id, err := sip.DialogIDFromRequestUAS(inv)
	if err != nil {
		return nil, fmt.Errorf("dialog id: %w", err)
	}
	ctx, cancel := context.WithCancelCause(d.cfg.Context)
	c := &Call{
		layer:      d,
		owner:      in.Owner,
		id:         sipmsg.NewID(),
		dialogID:   id,
		dialed:     DialedNumber(&req.Recipient),
		transport:  req.Transport(),
		source:     req.Source(),
		origin:     in.Origin,
		laddr:      in.Laddr,
		sock:       in.Sock,
		started:    d.cfg.Clock.Now(),
		digits:     make(chan byte, 64),
		ctx:        ctx,
		cancel:     cancel,
		invite:     inv,
		localTag:   localTag,
		remoteCSeq: req.CSeq().SeqNo,
		lateOffer:  in.Late,
		media:      Media{DTMFPT: -1},
	}
	if err := c.setOutOfBand(in.SRTP); err != nil {
		cancel(err)
		return nil, err
	}
	c.localCSeq.Store(uint32(sipmsg.RandUint64() & 0x7fff))
	if ct := req.Contact(); ct != nil {
		c.remoteTarget = ct.Address
	} else {
		c.remoteTarget = req.From().Address
	}
	for _, h := range req.GetHeaders("Record-Route") {
		c.routeSet = append(c.routeSet, recordRoutes(h)...)
	}
	stream, err := d.cfg.Media.Open(rtpio.Params{DTMFPT: -1, OnDigit: c.pushDigit, Allowed: mediaAllowed(c.source, c.origin, c.layer.cfg.MediaSources), CallID: c.id})
	if err != nil {
		cancel(err)
		return nil, err
	}
	c.stream = stream
	c.local = Local{Host: d.mediaHost(in.Laddr), Port: stream.LocalAddr().Port(), SessionID: sipmsg.RandUint64()}
	if in.Late {
		// Until the answer arrives in the ACK we know nothing about the peer.
		stream.SetDirection(false, false)
	}
	return c, nil
}

// Discard lets go of a call NewInbound made that never entered the table:
// its stream closes and its context ends with cause.
func (d *Layer) Discard(c *Call, cause error) {
	_ = c.stream.Close()
	c.cancel(cause)
}

// Release forgets a call and frees its media: what ends a call whose
// handler is done, or one that never got that far.
func (d *Layer) Release(c *Call) {
	d.Remove(c)
	_ = c.stream.Close()
}

// Answered is how Answer left a call.
type Answered int

const (
	// AnswerUp: the 2xx was ACKed; the call is up.
	AnswerUp Answered = iota
	// AnswerFailed: the call never came up (CANCEL, shutdown while
	// ringing, a 2xx that could not be sent); it has ended, and its end
	// is not a call's end to log.
	AnswerFailed
	// AnswerEnded: the call was answered but ended before or at its ACK
	// (none came, a BYE overtook it): its end is logged like any other.
	AnswerEnded
	// AnswerCancelled: a CANCEL came while it rang (the answer delay);
	// it has ended, and the server logs the caller's cancel.
	AnswerCancelled
)

// Answer answers the new INVITE req of c, whose offer is offer (nil for a
// late offer): 180 and a wait of delay first when delay > 0, then the 2xx
// with our SDP, retransmitted until the ACK (ackwait.go). A CANCEL, the
// call's end or shutdown stops it. On anything but AnswerUp the call has
// ended and the caller releases it.
func (d *Layer) Answer(c *Call, req *sip.Request, tx sip.ServerTransaction, offer *Media, delay time.Duration) Answered {
	late := offer == nil
	if offer != nil {
		c.applyMedia(*offer)
	}
	cancelled := make(chan struct{})
	var once sync.Once
	tx.OnCancel(func(*sip.Request) { once.Do(func() { close(cancelled) }) })

	if delay > 0 {
		d.respondInvite(c, req, tx, 180, "Ringing", nil)
		ring := d.cfg.Clock.NewTimer(delay)
		defer ring.Stop()
		select {
		case <-ring.C():
		case <-cancelled:
			c.end("cancelled")
			return AnswerCancelled
		case <-tx.Done():
			c.end("cancelled")
			return AnswerFailed
		case <-d.cfg.Context.Done():
			d.respondInvite(c, req, tx, 503, "Service Unavailable", nil)
			c.end("shutdown")
			return AnswerFailed
		}
	}

	sdpBody, err := c.localSDP(offer, d.cfg.SRTP.Mode)
	if err != nil {
		d.log.Error("call setup failed", "error", err)
		d.respondInvite(c, req, tx, 500, "Server Internal Error", nil)
		c.end("error")
		return AnswerFailed
	}
	pend := d.answering(c, req.CSeq().SeqNo, late)

	select {
	case <-cancelled:
		c.end("cancelled")
		return AnswerFailed
	default:
	}
	ack, end := d.answerInvite(c, req, tx, sdpBody, pend, cancelled)
	switch end {
	case ackReceived:
	case ackSendFailed:
		c.end("send-failed")
		return AnswerFailed
	case ackTimedOut:
		d.log.Warn("no ACK for 200 OK, hanging up", "call", c.id)
		c.Hangup("no-ack")
		return AnswerEnded
	case ackCallEnded:
		// BYE before the ACK: sipgo serves each request on a goroutine
		// of its own, so a BYE may overtake the ACK it follows. The
		// call was answered; its end is logged like any other.
		return AnswerEnded
	case ackCancelled:
		c.end("cancelled")
		return AnswerFailed
	case ackShutdown:
		c.Hangup("shutdown")
		return AnswerFailed
	}
	if late {
		if err := c.takeAnswer(ack.Body()); err != nil {
			d.log.Info("late offer answer unusable, hanging up", "call", c.id, "error", err)
			c.Hangup("bad-ack-sdp")
			return AnswerFailed
		}
	}
	return AnswerUp
}

// mediaHost is the address we put in SDP.
func (d *Layer) mediaHost(laddr sip.Addr) string {
	switch {
	case d.cfg.MediaExternalAddress != "":
		return d.cfg.MediaExternalAddress
	case d.cfg.ExternalAddress != "":
		return d.cfg.ExternalAddress
	case !sipmsg.Unspecified(d.cfg.MediaAddress):
		return d.cfg.MediaAddress.String()
	}
	return laddr.IP.String()
}

// recordRoutes reads the URIs of one Record-Route header line, in order.
func recordRoutes(h sip.Header) []sip.Uri {
	var out []sip.Uri
	for _, v := range strings.Split(h.Value(), ",") {
		var u sip.Uri
		v = strings.Trim(strings.TrimSpace(v), "<>")
		if i := strings.Index(v, ">"); i >= 0 {
			v = v[:i]
		}
		if err := sip.ParseUri(v, &u); err == nil {
			out = append(out, u)
		}
	}
	return out
}

// DialedNumber is the number a Request-URI calls: the user part of a sip
// or sips URI, the number of a tel URI (RFC 3966: "tel:+15551234567" and
// its parameters after ";").
func DialedNumber(u *sip.Uri) string {
	if u.Scheme == "tel" {
		n, _, _ := strings.Cut(u.Raw(), ";")
		return n
	}
	return u.User
}
