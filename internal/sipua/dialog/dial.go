package dialog

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/groupbridge/groupbridge/internal/sipua/sipmsg"
	"github.com/groupbridge/groupbridge/media/g711"
	"github.com/groupbridge/groupbridge/media/rtpio"
)

// The UAC side of the dialog layer: a call we place. It knows nothing of
// PINs, groups or policy; whoever dials decides what the call is for.

// DialOptions are how a call is placed. The zero value places a UDP call
// from "groupbridge" that rings for at most DefaultRingTimeout.
type DialOptions struct {
	// Transport is "udp" (the default), "tcp" or "tls"; the server needs
	// a listener of it, where the callee's requests reach us.
	Transport string
	// From is the user part of our From URI; "" is "groupbridge".
	From string
	// RingTimeout bounds the wait for a final answer; then the call is
	// CANCELled. 0 is DefaultRingTimeout.
	RingTimeout time.Duration
	// OnProgress, when set, is told of every provisional answer (100,
	// 180, 183) as it comes. It must not block.
	OnProgress func(code int)
	// Codecs, when set, are the only audio formats offered, in order
	// (PCMU, PCMA); nil offers both. A relay forwards payload bytes as
	// they are, so its leg must carry its caller's codec.
	Codecs []g711.Codec
	// DTMFPT is the telephone-event payload type offered: 0 is
	// OfferDTMFPT (101), -1 offers none, 1-127 that type (not one of
	// Codecs' types).
	DTMFPT int
	// Sign, when set, is called once the offer's SDP and the Call-ID
	// exist, before the INVITE goes out, with exactly the bytes the
	// callee will see. Its headers are added to the INVITE. Its keys,
	// when not nil, protect the call's media with SRTP (Local encrypts
	// what we send, Remote decrypts what the callee sends); both ends
	// agree on them outside SIP. With Sign set the offer carries no
	// a=crypto whatever rtp.srtp says, and the answer must carry none.
	// An error stops the call before anything is sent.
	Sign func(callID string, sdp []byte) (headers []Header, keys *rtpio.SRTPKeys, err error)
}

// Header is one header line Sign adds to an INVITE.
type Header struct {
	Name, Value string
}

// check refuses options that cannot make a sound INVITE.
func (o *DialOptions) check() error {
	seen := map[g711.Codec]bool{}
	for _, c := range o.Codecs {
		if !c.Valid() || seen[c] {
			return fmt.Errorf("dialog: dial: codec %v is not PCMU or PCMA, or is offered twice", c)
		}
		seen[c] = true
	}
	if o.DTMFPT < -1 || o.DTMFPT > 127 {
		return fmt.Errorf("dialog: dial: telephone-event payload type %d is not -1, 0 or 1-127", o.DTMFPT)
	}
	if o.DTMFPT > 0 && (seen[g711.Codec(o.DTMFPT)] || len(o.Codecs) == 0 && (o.DTMFPT == int(g711.PCMU) || o.DTMFPT == int(g711.PCMA))) {
		return fmt.Errorf("dialog: dial: telephone-event payload type %d is an audio format's", o.DTMFPT)
	}
	return nil
}

// ownHeaders are the headers Dial writes itself (and their compact
// forms): one from Sign would make the INVITE ambiguous.
var ownHeaders = map[string]bool{
	"via": true, "v": true, "from": true, "f": true, "to": true, "t": true, "call-id": true, "i": true,
	"cseq": true, "contact": true, "m": true, "content-type": true, "c": true, "content-length": true, "l": true,
	"max-forwards": true, "route": true, "record-route": true,
}

// checkHeader refuses a header Sign gave that could not be written as
// one header line of its own.
func checkHeader(h Header) error {
	if h.Name == "" || ownHeaders[strings.ToLower(h.Name)] {
		return fmt.Errorf("dialog: dial: Sign's header %q is empty or one Dial writes", h.Name)
	}
	for i := 0; i < len(h.Name); i++ {
		c := h.Name[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("-.!%*_+`'~", c) >= 0) {
			return fmt.Errorf("dialog: dial: Sign's header name %q is not a token", h.Name)
		}
	}
	if strings.ContainsAny(h.Value, "\r\n\x00") {
		return fmt.Errorf("dialog: dial: Sign's header %s holds a line break", h.Name)
	}
	return nil
}

// uac is the dialog layer seen as the caller of a call it places.
type uac struct{ d *Layer }

// Socket is the listening socket a call we place leaves from: the host
// and port our Via, Contact and From name, and the socket as sipgo keys it.
type Socket struct {
	Host string
	Port int
	Sock sip.Addr
}

// DefaultRingTimeout is how long a placed call rings without an answer.
const DefaultRingTimeout = 60 * time.Second

// AnswerError is a final answer other than 2xx to a call we placed.
type AnswerError struct {
	Code   int
	Reason string
}

func (e *AnswerError) Error() string {
	return "dialog: call refused: " + strconv.Itoa(e.Code) + " " + e.Reason
}

// ErrRingTimeout is returned by Dial when nobody answered within
// DialOptions.RingTimeout.
var ErrRingTimeout = errors.New("dialog: no answer within the ring timeout")

// Dial places a call to uri over transport ("udp", "tcp" or "tls") from
// the listening socket local to dst, and returns it once answered and
// ACKed. bind is called with the new Call before anything can find it
// (the peer's BYE may come the moment the answer is ACKed) and returns
// what its Owner returns, so the layer above can hold the Call in its own
// type before that type is asked for. The SDP offer is made like
// every description of ours (localSDP), the answer read like every answer
// (takeAnswer), and audio flows through an rtpio stream of Config.Media.
// The caller owns the call: it ends it with Hangup, learns of the
// callee's BYE from its Context and releases it (Release) when it ends.
//
// Until the answer, cancelling ctx (or the ring timeout) CANCELs the
// INVITE: the error then wraps ctx's error (or ErrRingTimeout) and the
// callee's final answer, normally 487. Before any provisional answer no
// CANCEL may go: Dial then returns ctx's error (or ErrRingTimeout) at
// once and the INVITE is seen to in the background (abandon). A final
// answer of 3xx to 6xx gives an *AnswerError.
func (d *Layer) Dial(ctx context.Context, uri sip.Uri, transport string, dst netip.AddrPort, local Socket,
	opts DialOptions, bind func(*Call) any) (*Call, error) {
	u := uac{d}
	if err := opts.check(); err != nil {
		return nil, err
	}
	mode := SRTPOff // Sign's keys, or none
	if opts.Sign == nil {
		var err error
		if mode, err = d.cfg.SRTP.srtpFor(transport); err != nil {
			return nil, fmt.Errorf("dialog: dial: %w", err)
		}
	}
	c, err := u.newOutbound(uri, transport, dst, local, bind)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.local.Codecs, c.local.DTMFPT = opts.Codecs, opts.DTMFPT
	c.mu.Unlock()
	offer, err := c.localSDP(nil, mode)
	if err != nil {
		d.Release(c)
		return nil, fmt.Errorf("dialog: dial: %w", err)
	}
	callID := sip.GenerateTagN(24)
	var extra []Header
	if opts.Sign != nil {
		var keys *rtpio.SRTPKeys
		extra, keys, err = opts.Sign(callID, offer)
		if err == nil {
			err = c.setOutOfBand(keys)
		}
		for _, h := range extra {
			if err == nil {
				err = checkHeader(h)
			}
		}
		if err != nil {
			d.Release(c)
			return nil, fmt.Errorf("dialog: dial: sign: %w", err)
		}
	}
	from := opts.From
	if from == "" {
		from = "groupbridge"
	}
	inv := u.newInvite(c, uri, from, local, callID, offer, extra)
	c.mu.Lock()
	c.invite = inv
	c.mu.Unlock()

	res, err := u.awaitAnswer(ctx, c, inv, opts)
	if err != nil {
		if !errors.Is(err, errAbandoned) {
			c.end("not-answered")
			d.Release(c)
		}
		return nil, err
	}
	if err := u.confirm(c, res); err != nil {
		c.Hangup("bad-answer")
		d.Release(c)
		return nil, err
	}
	return c, nil
}

// DialDestination is where an INVITE to uri goes: its host, which must
// be an IP address (no DNS on the call path), and its port or the
// transport's default.
func DialDestination(uri sip.Uri, transport string) (netip.AddrPort, error) {
	ip, err := netip.ParseAddr(strings.Trim(uri.Host, "[]"))
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("dialog: dial: host %q is not an IP address", uri.Host)
	}
	port := uri.Port
	if port == 0 {
		port = 5060
		if transport == "tls" {
			port = 5061
		}
	}
	return netip.AddrPortFrom(ip.Unmap(), uint16(port)), nil
}

// newOutbound makes the Call of a call we place and opens its stream. It
// is not in the call table until the callee's answer names the dialog.
func (u uac) newOutbound(uri sip.Uri, transport string, dst netip.AddrPort, local Socket, bind func(*Call) any) (*Call, error) {
	d := u.d
	ctx, cancel := context.WithCancelCause(d.cfg.Context)
	ip, _ := netip.ParseAddr(local.Host)
	c := &Call{
		layer:     d,
		id:        sipmsg.NewID(),
		dialed:    DialedNumber(&uri),
		transport: strings.ToUpper(transport),
		source:    dst.String(),
		laddr:     sip.Addr{IP: net.IP(ip.AsSlice()), Port: local.Port},
		sock:      local.Sock,
		started:   d.cfg.Clock.Now(),
		outbound:  true,
		digits:    make(chan byte, 64),
		ctx:       ctx,
		cancel:    cancel,
		localTag:  sip.GenerateTagN(16),
		media:     Media{DTMFPT: -1},
	}
	if bind != nil {
		c.owner = bind(c)
	}
	c.remoteTarget = uri
	c.localCSeq.Store(uint32(sipmsg.RandUint64() & 0x7fff))
	stream, err := d.cfg.Media.Open(rtpio.Params{DTMFPT: -1, OnDigit: c.pushDigit, Allowed: mediaAllowed(c.source, netip.Addr{}, c.layer.cfg.MediaSources), CallID: c.id})
	if err != nil {
		cancel(err)
		return nil, fmt.Errorf("dialog: dial: %w", err)
	}
	c.stream = stream
	host := local.Host
	if !sipmsg.Unspecified(d.cfg.MediaAddress) || d.cfg.MediaExternalAddress != "" || d.cfg.ExternalAddress != "" {
		host = d.mediaHost(c.laddr)
	}
	c.local = Local{Host: host, Port: stream.LocalAddr().Port(), SessionID: sipmsg.RandUint64()}
	// Nothing to send to until the answer says where.
	stream.SetDirection(false, false)
	return c, nil
}

// newInvite builds our INVITE, whole, so that sipgo sends it as is from
// the listening socket.
func (u uac) newInvite(c *Call, uri sip.Uri, fromUser string, local Socket, callID string, sdp []byte, extra []Header) *sip.Request {
	d := u.d
	inv := sip.NewRequest(sip.INVITE, uri)
	inv.AppendHeader(sipmsg.NewVia(c.transport, local.Host, local.Port))
	from := &sip.FromHeader{Address: sip.Uri{Scheme: "sip", User: fromUser, Host: local.Host, Port: local.Port}, Params: sip.NewParams()}
	from.Params.Add("tag", c.localTag)
	inv.AppendHeader(from)
	inv.AppendHeader(&sip.ToHeader{Address: *uri.Clone(), Params: sip.NewParams()})
	id := sip.CallIDHeader(callID)
	inv.AppendHeader(&id)
	inv.AppendHeader(&sip.CSeqHeader{SeqNo: c.localCSeq.Load(), MethodName: sip.INVITE})
	maxFwd := sip.MaxForwardsHeader(70)
	inv.AppendHeader(&maxFwd)
	inv.AppendHeader(d.contactFor(c))
	inv.AppendHeader(sip.NewHeader("Allow", sipmsg.Allowed))
	inv.AppendHeader(sip.NewHeader("User-Agent", d.cfg.UserAgent))
	for _, h := range extra {
		inv.AppendHeader(sip.NewHeader(h.Name, h.Value))
	}
	inv.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	inv.SetBody(sdp)
	inv.SetTransport(c.transport)
	inv.SetDestination(c.source)
	if c.transport == "UDP" {
		local.Sock.Copy(&inv.Laddr)
	}
	return inv
}

// awaitAnswer runs the INVITE transaction (sipgo retransmits the INVITE
// and ACKs a non-2xx answer) until a final answer, CANCELling it when ctx
// ends or the ring timeout passes. It returns the 2xx.
func (u uac) awaitAnswer(ctx context.Context, c *Call, inv *sip.Request, opts DialOptions) (*sip.Response, error) {
	d := u.d
	tx, err := d.cfg.Client.TransactionRequest(d.cfg.Context, inv, func(*sipgo.Client, *sip.Request) error { return nil })
	if err != nil {
		return nil, fmt.Errorf("dialog: send INVITE: %w", err)
	}
	ring := opts.RingTimeout
	if ring <= 0 {
		ring = DefaultRingTimeout
	}
	timer := d.cfg.Clock.NewTimer(ring)
	defer timer.Stop()
	var stop error // why we CANCELled, once we have
	provisional := false
	for {
		var cancelNow <-chan struct{}
		var timeout <-chan time.Time
		if stop == nil {
			cancelNow, timeout = ctx.Done(), timer.C()
		}
		select {
		case res := <-tx.Responses():
			switch {
			case res.IsProvisional():
				if !provisional && stop != nil {
					// A CANCEL may go only after a provisional answer
					// (RFC 3261 9.1).
					u.sendCancel(inv)
				}
				provisional = true
				if opts.OnProgress != nil {
					opts.OnProgress(res.StatusCode)
				}
			case res.IsSuccess():
				c.mu.Lock()
				c.inviteTx = tx
				c.mu.Unlock()
				if stop != nil {
					// Answered as our CANCEL crossed it: take the call
					// and end it at once.
					if u.confirm(c, res) == nil {
						c.Hangup("cancelled")
					}
					return nil, stop
				}
				return res, nil
			default:
				tx.Terminate()
				refusal := &AnswerError{Code: res.StatusCode, Reason: res.Reason}
				if stop != nil {
					return nil, fmt.Errorf("%w: %w", stop, refusal)
				}
				return nil, refusal
			}
		case <-cancelNow:
			stop = fmt.Errorf("dialog: dial cancelled: %w", context.Cause(ctx))
			if !provisional {
				u.abandon(c, inv, tx)
				return nil, fmt.Errorf("%w%w", stop, errAbandoned)
			}
			u.sendCancel(inv)
		case <-timeout:
			stop = ErrRingTimeout
			if !provisional {
				u.abandon(c, inv, tx)
				return nil, fmt.Errorf("%w%w", stop, errAbandoned)
			}
			u.sendCancel(inv)
		case <-tx.Done():
			if stop != nil {
				return nil, stop
			}
			return nil, fmt.Errorf("dialog: INVITE: %w", errors.Join(errors.New("no answer"), tx.Err()))
		}
	}
}

// errAbandoned marks (with an empty text) the error of a Dial whose
// INVITE abandon took over, with the call already ended and released.
var errAbandoned = errors.New("")

// abandon hands our INVITE, given up on before any provisional answer
// (a CANCEL may not go yet: RFC 3261 9.1), to a goroutine of its own, so
// that Dial returns at once instead of after Timer B (32 s) when the
// callee is silent, as a dead node is. What still comes is dealt with:
// a provisional answer gets our CANCEL, a 2xx our ACK and a BYE.
func (u uac) abandon(c *Call, inv *sip.Request, tx sip.ClientTransaction) {
	d := u.d
	// Ended and released here, before the goroutine may touch the
	// dialog: Dial leaves an abandoned call alone.
	c.end("not-answered")
	d.Release(c)
	d.cfg.WaitGroup.Add(1)
	go func() {
		defer d.cfg.WaitGroup.Done()
		defer sipmsg.Recover(d.log, "abandoned INVITE")
		answered := false
		defer func() {
			if !answered {
				tx.Terminate()
			}
		}()
		cancelled := false
		for {
			select {
			case res := <-tx.Responses():
				switch {
				case res.IsProvisional():
					if !cancelled {
						u.sendCancel(inv)
						cancelled = true
					}
				case res.IsSuccess():
					// Kept for the 2xx's retransmissions, which adopt ACKs.
					answered = true
					c.mu.Lock()
					c.inviteTx = tx
					c.mu.Unlock()
					u.adopt(c, res)
					d.sendBye(c)
					d.Remove(c)
					return
				default:
					return
				}
			case <-tx.Done():
				return
			case <-d.cfg.Context.Done():
				return
			}
		}
	}()
}

// sendCancel CANCELs our INVITE (RFC 3261 9.1): the same Request-URI,
// top Via, From, To and Call-ID, in a transaction of its own in the
// background; the INVITE's final answer (487) ends the wait.
func (u uac) sendCancel(inv *sip.Request) {
	d := u.d
	cancel := sip.NewRequest(sip.CANCEL, inv.Recipient)
	cancel.AppendHeader(sip.HeaderClone(inv.Via()))
	cancel.AppendHeader(sip.HeaderClone(inv.From()))
	cancel.AppendHeader(sip.HeaderClone(inv.To()))
	cancel.AppendHeader(sip.HeaderClone(inv.CallID()))
	cancel.AppendHeader(&sip.CSeqHeader{SeqNo: inv.CSeq().SeqNo, MethodName: sip.CANCEL})
	maxFwd := sip.MaxForwardsHeader(70)
	cancel.AppendHeader(&maxFwd)
	cancel.AppendHeader(sip.NewHeader("User-Agent", d.cfg.UserAgent))
	cancel.SetTransport(inv.Transport())
	cancel.SetDestination(inv.Destination())
	cancel.Laddr = inv.Laddr
	cancel.SetBody(nil)
	d.goRoundTrip(cancel)
}

// confirm takes the callee's 2xx (adopt) and its SDP answer.
func (u uac) confirm(c *Call, res *sip.Response) error {
	u.adopt(c, res)
	if err := c.takeAnswer(res.Body()); err != nil {
		return fmt.Errorf("dialog: dial: the answer's SDP: %w", err)
	}
	return nil
}

// adopt takes the callee's 2xx: the dialog's remote tag, target and
// route set (RFC 3261 12.1.2), then the ACK, which is sent again for
// every retransmission of the 2xx. The call enters the call table, so the
// callee's requests find it.
func (u uac) adopt(c *Call, res *sip.Response) {
	d := u.d
	tag, _ := res.To().Params.Get("tag")
	c.mu.Lock()
	inv := c.invite.Clone()
	inv.To().Params.Add("tag", tag)
	c.invite = inv
	if ct := res.Contact(); ct != nil {
		c.remoteTarget = ct.Address
	}
	c.routeSet = nil
	rr := res.GetHeaders("Record-Route")
	for i := len(rr) - 1; i >= 0; i-- {
		c.routeSet = append(c.routeSet, recordRoutes(rr[i])...)
	}
	tx := c.inviteTx
	c.mu.Unlock()

	ack := d.inDialogRequest(c, sip.ACK, inv.CSeq().SeqNo)
	sendAck := func() {
		if err := d.cfg.Client.WriteRequest(ack, func(*sipgo.Client, *sip.Request) error { return nil }); err != nil {
			d.log.Debug("ACK not sent", "call", c.id, "error", err)
		}
	}
	// In the table before the ACK leaves: the callee may send its BYE
	// the moment the ACK reaches it, and a BYE for a dialog not yet in
	// the table would get 481 and leave the call up.
	c.dialogID = sip.DialogIDMake(inv.CallID().Value(), c.localTag, tag)
	d.Add(c, 0)
	c.mu.Lock()
	c.confirmed = true
	c.mu.Unlock()
	if tx != nil {
		tx.OnRetransmission(func(*sip.Response) { sendAck() })
	}
	sendAck()
}
