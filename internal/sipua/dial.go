package sipua

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
	"github.com/groupbridge/groupbridge/internal/logging"
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
}

// uac is the server seen as the caller of a call it places.
type uac struct{ s *Server }

// DefaultRingTimeout is how long a placed call rings without an answer.
const DefaultRingTimeout = 60 * time.Second

// AnswerError is a final answer other than 2xx to a call we placed.
type AnswerError struct {
	Code   int
	Reason string
}

func (e *AnswerError) Error() string {
	return "sipua: call refused: " + strconv.Itoa(e.Code) + " " + e.Reason
}

// ErrRingTimeout is returned by Dial when nobody answered within
// DialOptions.RingTimeout.
var ErrRingTimeout = errors.New("sipua: no answer within the ring timeout")

// Dial places a call to target, a sip: URI whose host is an IP address
// ("sip:room@192.0.2.7:5060"), and returns it once answered and ACKed.
// The SDP offer is made like every description of ours (localSDP), the
// answer read like every answer (takeAnswer), and audio flows through an
// rtpio stream of Config.Media. The call is not given to the Handler: the
// caller of Dial owns it, ends it with Hangup and learns of the callee's
// BYE from its Context; its media is released when it ends.
//
// Until the answer, cancelling ctx (or the ring timeout) CANCELs the
// INVITE: the error then wraps ctx's error (or ErrRingTimeout) and the
// callee's final answer, normally 487. A final answer of 3xx to 6xx gives
// an *AnswerError.
func (s *Server) Dial(ctx context.Context, target string, opts DialOptions) (*Call, error) {
	u := uac{s}
	var uri sip.Uri
	if err := sip.ParseUri(target, &uri); err != nil {
		return nil, fmt.Errorf("sipua: dial %q: %w", target, err)
	}
	transport := strings.ToLower(opts.Transport)
	if transport == "" {
		transport = "udp"
	}
	dst, err := dialDestination(uri, transport)
	if err != nil {
		return nil, err
	}
	local, err := s.socks.localFor(transport, dst.Addr())
	if err != nil {
		return nil, fmt.Errorf("sipua: dial: %w", err)
	}
	mode, err := s.srtp.srtpFor(transport)
	if err != nil {
		return nil, fmt.Errorf("sipua: dial: %w", err)
	}
	c, err := u.newOutbound(uri, transport, dst, local)
	if err != nil {
		return nil, err
	}
	offer, err := c.localSDP(nil, mode)
	if err != nil {
		s.release(c)
		return nil, fmt.Errorf("sipua: dial: %w", err)
	}
	from := opts.From
	if from == "" {
		from = "groupbridge"
	}
	inv := u.newInvite(c, uri, from, local, offer)
	c.mu.Lock()
	c.invite = inv
	c.mu.Unlock()

	res, err := u.awaitAnswer(ctx, c, inv, opts)
	if err != nil {
		c.end("not-answered")
		s.release(c)
		return nil, err
	}
	if err := u.confirm(c, res); err != nil {
		c.Hangup("bad-answer")
		s.release(c)
		return nil, err
	}
	s.log.Info("call placed", "call", c.id, "callee", c.label, "transport", transport, "codec", c.Codec().String())
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		<-c.ctx.Done()
		s.release(c)
		s.dlg.logEnded(c)
	}()
	return c, nil
}

// dialDestination is where an INVITE to uri goes: its host, which must
// be an IP address (no DNS on the call path), and its port or the
// transport's default.
func dialDestination(uri sip.Uri, transport string) (netip.AddrPort, error) {
	ip, err := netip.ParseAddr(strings.Trim(uri.Host, "[]"))
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("sipua: dial: host %q is not an IP address", uri.Host)
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
func (u uac) newOutbound(uri sip.Uri, transport string, dst netip.AddrPort, local localSock) (*Call, error) {
	s := u.s
	ctx, cancel := context.WithCancelCause(s.ctx)
	ip, _ := netip.ParseAddr(local.host)
	c := &Call{
		srv:       s,
		id:        newCallID(),
		dialed:    dialedNumber(&uri),
		transport: strings.ToUpper(transport),
		source:    dst.String(),
		laddr:     sip.Addr{IP: net.IP(ip.AsSlice()), Port: local.port},
		sock:      local.sock,
		started:   s.clock.Now(),
		outbound:  true,
		digits:    make(chan byte, 64),
		ctx:       ctx,
		cancel:    cancel,
		localTag:  sip.GenerateTagN(16),
		media:     Media{DTMFPT: -1},
	}
	c.remoteTarget = uri
	c.localCSeq.Store(uint32(randUint64() & 0x7fff))
	c.label = logging.MaskCaller(c.dialed)
	stream, err := s.cfg.Media.Open(rtpio.Params{DTMFPT: -1, OnDigit: c.pushDigit, Allowed: c.mediaAllowed(), CallID: c.id})
	if err != nil {
		cancel(err)
		return nil, fmt.Errorf("sipua: dial: %w", err)
	}
	c.stream = stream
	host := local.host
	if !unspecified(s.cfg.MediaAddress) || s.cfg.MediaExternalAddress != "" || s.cfg.ExternalAddress != "" {
		host = s.mediaHost(c.laddr)
	}
	c.local = Local{Host: host, Port: stream.LocalAddr().Port(), SessionID: randUint64()}
	// Nothing to send to until the answer says where.
	stream.SetDirection(false, false)
	return c, nil
}

// newInvite builds our INVITE, whole, so that sipgo sends it as is from
// the listening socket.
func (u uac) newInvite(c *Call, uri sip.Uri, fromUser string, local localSock, sdp []byte) *sip.Request {
	s := u.s
	inv := sip.NewRequest(sip.INVITE, uri)
	inv.AppendHeader(newVia(c.transport, local.host, local.port))
	from := &sip.FromHeader{Address: sip.Uri{Scheme: "sip", User: fromUser, Host: local.host, Port: local.port}, Params: sip.NewParams()}
	from.Params.Add("tag", c.localTag)
	inv.AppendHeader(from)
	inv.AppendHeader(&sip.ToHeader{Address: *uri.Clone(), Params: sip.NewParams()})
	callID := sip.CallIDHeader(sip.GenerateTagN(24))
	inv.AppendHeader(&callID)
	inv.AppendHeader(&sip.CSeqHeader{SeqNo: c.localCSeq.Load(), MethodName: sip.INVITE})
	maxFwd := sip.MaxForwardsHeader(70)
	inv.AppendHeader(&maxFwd)
	inv.AppendHeader(s.dlg.contactFor(c))
	inv.AppendHeader(sip.NewHeader("Allow", allowed))
	inv.AppendHeader(sip.NewHeader("User-Agent", s.cfg.UserAgent))
	inv.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	inv.SetBody(sdp)
	inv.SetTransport(c.transport)
	inv.SetDestination(c.source)
	if c.transport == "UDP" {
		local.sock.Copy(&inv.Laddr)
	}
	return inv
}

// awaitAnswer runs the INVITE transaction (sipgo retransmits the INVITE
// and ACKs a non-2xx answer) until a final answer, CANCELling it when ctx
// ends or the ring timeout passes. It returns the 2xx.
func (u uac) awaitAnswer(ctx context.Context, c *Call, inv *sip.Request, opts DialOptions) (*sip.Response, error) {
	s := u.s
	tx, err := s.client.TransactionRequest(s.ctx, inv, func(*sipgo.Client, *sip.Request) error { return nil })
	if err != nil {
		return nil, fmt.Errorf("sipua: send INVITE: %w", err)
	}
	ring := opts.RingTimeout
	if ring <= 0 {
		ring = DefaultRingTimeout
	}
	timer := s.clock.NewTimer(ring)
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
			stop = fmt.Errorf("sipua: dial cancelled: %w", context.Cause(ctx))
			if provisional {
				u.sendCancel(inv)
			}
		case <-timeout:
			stop = ErrRingTimeout
			if provisional {
				u.sendCancel(inv)
			}
		case <-tx.Done():
			if stop != nil {
				return nil, stop
			}
			return nil, fmt.Errorf("sipua: INVITE: %w", errors.Join(errors.New("no answer"), tx.Err()))
		}
	}
}

// sendCancel CANCELs our INVITE (RFC 3261 9.1): the same Request-URI,
// top Via, From, To and Call-ID, in a transaction of its own in the
// background; the INVITE's final answer (487) ends the wait.
func (u uac) sendCancel(inv *sip.Request) {
	s := u.s
	cancel := sip.NewRequest(sip.CANCEL, inv.Recipient)
	cancel.AppendHeader(sip.HeaderClone(inv.Via()))
	cancel.AppendHeader(sip.HeaderClone(inv.From()))
	cancel.AppendHeader(sip.HeaderClone(inv.To()))
	cancel.AppendHeader(sip.HeaderClone(inv.CallID()))
	cancel.AppendHeader(&sip.CSeqHeader{SeqNo: inv.CSeq().SeqNo, MethodName: sip.CANCEL})
	maxFwd := sip.MaxForwardsHeader(70)
	cancel.AppendHeader(&maxFwd)
	cancel.AppendHeader(sip.NewHeader("User-Agent", s.cfg.UserAgent))
	cancel.SetTransport(inv.Transport())
	cancel.SetDestination(inv.Destination())
	cancel.Laddr = inv.Laddr
	cancel.SetBody(nil)
	s.dlg.goRoundTrip(cancel)
}

// confirm takes the callee's 2xx: the dialog's remote tag, target and
// route set (RFC 3261 12.1.2), the SDP answer, then the ACK, which is
// sent again for every retransmission of the 2xx. The call enters the
// call table, so the callee's requests find it.
func (u uac) confirm(c *Call, res *sip.Response) error {
	s := u.s
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

	ack := s.dlg.inDialogRequest(c, sip.ACK, inv.CSeq().SeqNo)
	sendAck := func() {
		if err := s.client.WriteRequest(ack, func(*sipgo.Client, *sip.Request) error { return nil }); err != nil {
			s.log.Debug("ACK not sent", "call", c.id, "error", err)
		}
	}
	if tx != nil {
		tx.OnRetransmission(func(*sip.Response) { sendAck() })
	}
	sendAck()
	c.dialogID = sip.DialogIDMake(inv.CallID().Value(), c.localTag, tag)
	s.dlg.add(c, 0)
	c.mu.Lock()
	c.confirmed = true
	c.mu.Unlock()
	if err := c.takeAnswer(res.Body()); err != nil {
		return fmt.Errorf("sipua: dial: the answer's SDP: %w", err)
	}
	return nil
}
