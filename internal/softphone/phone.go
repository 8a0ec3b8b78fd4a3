package softphone

import (
	"context"
	crand "crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/groupbridge/groupbridge/internal/logging"
	"github.com/groupbridge/groupbridge/media/g711"
	"github.com/groupbridge/groupbridge/media/pcm"
)

// Defaults applied by Dial for zero Config fields.
const (
	DefaultDialed         = "groupbridge"
	DefaultTelephoneEvent = 101
	DefaultKeep           = 60 * time.Second
	DefaultDigitDuration  = 100 * time.Millisecond
	DefaultDigitGap       = 100 * time.Millisecond
	// maxDigitDuration keeps an RFC 4733 duration inside its 16-bit field.
	maxDigitDuration = 8 * time.Second
)

// Config describes one call.
type Config struct {
	// Server is the bridge's SIP address, "host:port" (IPv4 literal or a
	// resolvable name). Required.
	Server string
	// Transport is "udp" (default), "tcp" or "tls". Over TLS the bridge's
	// in-dialog requests come back on the phone's connection.
	Transport string
	// TLSConfig is the TLS client configuration of the private Agent (a
	// shared Agent has its own, AgentConfig.TLSConfig): for a test bridge
	// with a self-signed certificate, InsecureSkipVerify or RootCAs.
	TLSConfig *tls.Config
	// SRTP offers RTP/SAVP with an SDES key (RFC 4568,
	// AES_CM_128_HMAC_SHA1_80) instead of RTP/AVP, and encrypts and
	// authenticates the call's RTP both ways with pion/srtp. An answer
	// without a usable a=crypto ends the call (ACK, then BYE) with ErrSDP.
	SRTP bool
	// Dialed is the Request-URI user, the number dialled. Default "groupbridge".
	Dialed string
	// Caller is the From user, the caller's number such as "+15551234567".
	// Empty calls anonymously (From: "Anonymous" <sip:anonymous@anonymous.invalid>,
	// RFC 3323). Logs show it masked.
	Caller string
	// Codecs lists the G.711 laws offered, in preference order. Default PCMU, PCMA.
	Codecs []g711.Codec
	// TelephoneEvent is the payload type offered for RFC 4733 events: 0
	// means 101, 96 mimics linphone, -1 offers none (digits then go by SIP
	// INFO or in-band). Otherwise it must be a dynamic type, 96-127.
	TelephoneEvent int
	// LateOffer sends the INVITE without SDP: the bridge offers in its 200
	// OK and the phone answers in the ACK (RFC 3261 section 13.2.1).
	LateOffer bool
	// LocalIP is the IPv4 address for RTP (and for SIP when the phone makes
	// its own Agent). Default: the Agent's address, else 127.0.0.1.
	LocalIP string
	// Agent is the shared SIP endpoint to call through; nil makes a private
	// one that is closed when the call ends.
	Agent *Agent
	// Keep is how much received audio Received can return. Memory is about
	// 200 bytes per 20 ms (600 KB per minute). 0 means DefaultKeep; a
	// negative value keeps none (statistics are still counted), for load
	// tests with many phones.
	Keep time.Duration
	// DigitDuration is how long each key is held (default 100 ms); DigitGap
	// is the pause between keys (default 100 ms).
	DigitDuration, DigitGap time.Duration
	// Logger receives call events (never the full caller number) and,
	// through the private Agent, sipgo's warnings. Nil discards them.
	Logger *slog.Logger
	// Impair, when not nil, passes everything the phone sends by RTP
	// (audio and RFC 4733 digits alike) through a seeded model of a bad
	// network; see Impairment. Nil sends as a perfect network would.
	// Dial copies it.
	Impair *Impairment
}

// StatusError is the final non-2xx response to an INVITE (or re-INVITE, or
// INFO): tests branch on StatusCode (486, 488, 503, ...) with errors.As.
type StatusError struct {
	Method     string
	StatusCode int
	Reason     string
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("softphone: %s answered %d %s", e.Method, e.StatusCode, e.Reason)
}

// FailureCause classifies a failed Dial for reports: "status N" for a final
// answer N, "timeout" when the context ran out, else "error".
func FailureCause(err error) string {
	var se *StatusError
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf("status %d", se.StatusCode)
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	}
	return "error"
}

var (
	// ErrEnded is returned by operations on a call that has ended.
	ErrEnded = errors.New("softphone: call has ended")
	// ErrAnswered is returned by Attempt.Cancel when the 200 OK won the race
	// with the CANCEL; the call was then ACKed and hung up with a BYE.
	ErrAnswered = errors.New("softphone: answered before the CANCEL took effect")
)

// Phone is an answered call: it sends 20 ms RTP frames of whatever it was
// told to play (silence at first) and records what it receives.
// All methods are safe for concurrent use.
type Phone struct {
	cfg      Config
	agent    *Agent
	ownAgent bool
	ep       *endpoint
	log      *slog.Logger
	stream   *stream
	media    Media // wraps stream for callers
	rtpIP    netip.Addr

	sess      *sipgo.DialogClientSession
	target    sip.Uri // remote target: the Contact of the 200 OK
	dialogID  string
	sessionID uint64
	sdpVer    atomic.Uint64

	sipMu   sync.Mutex // one in-dialog transaction at a time keeps CSeq order
	digitMu sync.Mutex // one SendDigits at a time
	endOnce sync.Once
	done    chan struct{}

	remoteBye atomic.Bool
	// byeAnswered is closed once the bridge's BYE has been answered:
	// sipgo ends the dialog (and so wakes watch) before it sends the 200,
	// and tearing down first could close the connection under it.
	byeAnswered chan struct{}
	byeOnce     sync.Once

	srtpKey cryptoAttr // our SDES key and tag, when Config.SRTP
	// rxKey is the bridge's SDES key in use; guarded by sipMu after setup.
	rxKey [srtpKeyLen]byte
}

// Attempt is a call that has been sent but not answered yet; see DialAsync.
type Attempt struct {
	p          *Phone
	cancel     context.CancelCauseFunc
	cancelReq  chan struct{}
	cancelOnce sync.Once
	proceeding chan struct{}
	procOnce   sync.Once
	done       chan struct{}
	status     atomic.Int32 // last response status seen

	causeMu sync.Mutex
	cause   error // why the INVITE's context was cancelled

	phone *Phone
	err   error
}

// errCancelled is the cause Attempt.Cancel gives the INVITE's context.
var errCancelled = errors.New("softphone: call cancelled")

// Dial places a call and waits for the answer: INVITE, any provisional
// responses, then 200 OK -> ACK -> RTP. A final non-2xx response is
// returned as a *StatusError. Cancelling ctx before the answer sends a
// CANCEL; after the answer, ctx has no effect: the call lasts until Hangup
// or the bridge's BYE.
func Dial(ctx context.Context, cfg Config) (*Phone, error) {
	a, err := DialAsync(ctx, cfg)
	if err != nil {
		return nil, err
	}
	return a.Wait()
}

// DialAsync sends the INVITE and returns without waiting for the answer, so
// that the caller can CANCEL (Attempt.Cancel) or watch the call proceed.
// Cancelling ctx before the answer cancels the call too.
func DialAsync(ctx context.Context, cfg Config) (*Attempt, error) {
	if err := cfg.normalize(); err != nil {
		return nil, err
	}
	p := &Phone{
		cfg:         cfg,
		agent:       cfg.Agent,
		done:        make(chan struct{}),
		byeAnswered: make(chan struct{}),
		sessionID:   uint64(rand.Uint32()),
	}
	p.log = cfg.Logger.With("component", "softphone", "caller", logging.MaskCaller(cfg.Caller))
	if cfg.SRTP {
		// Tag 1 as every phone uses for its first offer; a fresh key per call.
		p.srtpKey.tag = 1
		_, _ = crand.Read(p.srtpKey.key[:]) // crypto/rand.Read never fails
	}
	if p.agent == nil {
		agent, err := NewAgent(AgentConfig{LocalIP: cfg.LocalIP, Logger: cfg.Logger, TLSConfig: cfg.TLSConfig})
		if err != nil {
			return nil, err
		}
		p.agent, p.ownAgent = agent, true
	}
	if p.agent.isClosed() {
		return nil, ErrAgentClosed
	}
	p.ep = p.agent.endpoint(cfg.Transport)
	ip := p.agent.ip
	if cfg.LocalIP != "" {
		var err error
		if ip, err = netip.ParseAddr(cfg.LocalIP); err != nil || !ip.Is4() {
			p.closeAgent()
			return nil, fmt.Errorf("softphone: local IP %q: must be an IPv4 address", cfg.LocalIP)
		}
	}
	p.rtpIP = ip
	st, err := newStream(ip, cfg.Keep, p.log)
	if err != nil {
		p.closeAgent()
		return nil, err
	}
	p.stream = st
	p.media.st = st
	st.srtpPending.Store(cfg.SRTP)
	if cfg.Impair != nil {
		st.impair = newImpairer(*cfg.Impair) // before the sender starts
	}

	req, err := p.inviteRequest()
	if err != nil {
		p.abort()
		return nil, err
	}
	sess, err := p.ep.dialog.WriteInvite(ctx, req)
	if err != nil {
		p.abort()
		return nil, fmt.Errorf("softphone: send INVITE to %s: %w", cfg.Server, err)
	}
	p.sess = sess
	p.log = p.log.With("call_id", req.CallID().Value())
	p.log.Info("calling", "server", cfg.Server, "transport", cfg.Transport, "late_offer", cfg.LateOffer)

	// The INVITE's own context is cut loose from ctx so that the two ways to
	// stop it can differ (see watchCancel).
	wctx, cancel := context.WithCancelCause(context.Background())
	a := &Attempt{
		p: p, cancel: cancel,
		cancelReq:  make(chan struct{}),
		proceeding: make(chan struct{}),
		done:       make(chan struct{}),
	}
	go a.watchCancel(ctx)
	go a.run(wctx)
	return a, nil
}

// watchCancel turns ctx's end or a Cancel call into the INVITE context's
// cancellation. sipgo then sends a CANCEL, but only after a provisional
// response (RFC 3261 section 9.1), waiting up to Timer B (32 s) for one.
// That is right for Cancel; for a ctx that expired before the peer said
// anything, the attempt is abandoned at once instead, so that a dead
// server cannot hold Dial past its deadline.
func (a *Attempt) watchCancel(ctx context.Context) {
	var cause error
	select {
	case <-a.done:
		return
	case <-a.cancelReq:
		cause = errCancelled
	case <-ctx.Done():
		cause = context.Cause(ctx)
		select {
		case <-a.proceeding:
		default:
			a.setCause(fmt.Errorf("abandoned before any response: %w", cause))
			a.cancel(sipgo.WaitAnswerForceCancelErr)
			return
		}
	}
	a.setCause(cause)
	a.cancel(cause)
}

func (a *Attempt) setCause(err error) {
	a.causeMu.Lock()
	a.cause = err
	a.causeMu.Unlock()
}

func (a *Attempt) getCause() error {
	a.causeMu.Lock()
	defer a.causeMu.Unlock()
	return a.cause
}

// normalize applies defaults and rejects what cannot work.
func (c *Config) normalize() error {
	if c.Server == "" {
		return errors.New("softphone: Config.Server is empty")
	}
	c.Transport = strings.ToLower(c.Transport)
	switch c.Transport {
	case "":
		c.Transport = "udp"
	case "udp", "tcp", "tls":
	default:
		return fmt.Errorf("softphone: transport %q: want udp, tcp or tls", c.Transport)
	}
	if c.Dialed == "" {
		c.Dialed = DefaultDialed
	}
	if len(c.Codecs) == 0 {
		c.Codecs = []g711.Codec{g711.PCMU, g711.PCMA}
	}
	for _, cd := range c.Codecs {
		if !cd.Valid() {
			return fmt.Errorf("softphone: codec %v is not G.711", cd)
		}
	}
	switch {
	case c.TelephoneEvent == 0:
		c.TelephoneEvent = DefaultTelephoneEvent
	case c.TelephoneEvent < 0:
		c.TelephoneEvent = -1
	case c.TelephoneEvent < 96 || c.TelephoneEvent > 127:
		return fmt.Errorf("softphone: telephone-event payload type %d: want 96-127", c.TelephoneEvent)
	}
	if c.Keep == 0 {
		c.Keep = DefaultKeep
	}
	if c.DigitDuration <= 0 {
		c.DigitDuration = DefaultDigitDuration
	}
	c.DigitDuration = min(c.DigitDuration, maxDigitDuration)
	if c.DigitGap <= 0 {
		c.DigitGap = DefaultDigitGap
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Impair != nil {
		if err := c.Impair.validate(); err != nil {
			return err
		}
		im := *c.Impair // later changes by the caller must not reach the call
		c.Impair = &im
	}
	return nil
}

// inviteRequest builds the initial INVITE with its offer (unless LateOffer).
func (p *Phone) inviteRequest() (*sip.Request, error) {
	host, port, err := sip.ParseAddr(p.cfg.Server)
	if err != nil {
		return nil, fmt.Errorf("softphone: server address %q: %w", p.cfg.Server, err)
	}
	ruri := sip.Uri{Scheme: "sip", User: p.cfg.Dialed, Host: host, Port: port}
	if p.cfg.Transport != "udp" {
		ruri.UriParams = sip.HeaderParams{{K: "transport", V: p.cfg.Transport}}
	}
	req := sip.NewRequest(sip.INVITE, ruri)
	req.SetTransport(strings.ToUpper(p.cfg.Transport))

	from := &sip.FromHeader{
		Address: sip.Uri{Scheme: "sip", User: p.cfg.Caller, Host: p.agent.ip.String()},
		Params:  sip.HeaderParams{{K: "tag", V: sip.GenerateTagN(16)}},
	}
	if p.cfg.Caller == "" {
		from.DisplayName = "Anonymous"
		from.Address = sip.Uri{Scheme: "sip", User: "anonymous", Host: "anonymous.invalid"}
	}
	req.AppendHeader(from)
	req.AppendHeader(&sip.ToHeader{Address: sip.Uri{Scheme: "sip", User: p.cfg.Dialed, Host: host, Port: port}})
	contact := p.agent.contact("softphone", p.cfg.Transport)
	req.AppendHeader(&contact)
	req.AppendHeader(sip.NewHeader("Allow", "INVITE, ACK, CANCEL, BYE, INFO, OPTIONS"))
	req.AppendHeader(sip.NewHeader("User-Agent", p.agent.ua.Name()))
	if !p.cfg.LateOffer {
		body, err := p.offer(SendRecv).marshal()
		if err != nil {
			return nil, err
		}
		req.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
		req.SetBody(body)
	}
	return req, nil
}

// offer describes the phone's media with a new o= version.
// With SRTP it carries the call's one key, so a re-INVITE does not rekey.
func (p *Phone) offer(dir Direction) sdpOffer {
	o := sdpOffer{
		addr:      netip.AddrPortFrom(p.rtpIP, p.stream.local.Port()),
		sessionID: p.sessionID,
		version:   p.sdpVer.Add(1),
		codecs:    p.cfg.Codecs,
		eventPT:   p.cfg.TelephoneEvent,
		direction: dir,
	}
	if p.cfg.SRTP {
		c := p.srtpKey
		o.crypto = &c
	}
	return o
}

// checkSecurity holds the peer's description to the phone's SRTP setting:
// RTP/SAVP with a usable key when Config.SRTP, plain RTP/AVP otherwise.
// An answer must also keep the tag of the offer it answers (RFC 4568
// section 7.1.2); offer is false when the peer's description is itself the
// offer (late offer).
func (p *Phone) checkSecurity(rm remoteMedia, offer bool) error {
	switch {
	case !p.cfg.SRTP && rm.savp:
		return fmt.Errorf("%w: RTP/SAVP needs Config.SRTP", ErrSDP)
	case !p.cfg.SRTP:
		return nil
	case !rm.savp:
		return fmt.Errorf("%w: SRTP was asked for and the audio is plain RTP/AVP", ErrSDP)
	case rm.crypto == nil:
		return fmt.Errorf("%w: no %s a=crypto with a 30-byte inline key", ErrSDP, srtpSuite)
	case !offer && rm.crypto.tag != p.srtpKey.tag:
		return fmt.Errorf("%w: a=crypto tag %d answers none offered", ErrSDP, rm.crypto.tag)
	}
	return nil
}

// run waits for the final response and sets the call up.
func (a *Attempt) run(ctx context.Context) {
	defer close(a.done)
	defer a.cancel(nil) // releases the context once the outcome is known
	p := a.p
	err := p.sess.WaitAnswer(ctx, sipgo.AnswerOptions{OnResponse: func(r *sip.Response) error {
		a.status.Store(int32(r.StatusCode))
		if r.IsProvisional() {
			a.procOnce.Do(func() { close(a.proceeding) })
		}
		return nil
	}})
	res := p.sess.InviteResponse
	if res != nil {
		// OnResponse does not see what arrives while sipgo cancels (the 487).
		a.status.Store(int32(res.StatusCode))
	}
	switch {
	case err == nil:
		a.err = p.established(context.Background())
		if a.err == nil {
			a.phone = p
		}
		return
	case res != nil && res.IsSuccess():
		// The 200 crossed the CANCEL: the call exists and must be ACKed,
		// then ended with a BYE (RFC 3261 section 9.1).
		if id, idErr := sip.DialogIDFromResponse(res); idErr == nil {
			p.sess.ID = id
		}
		p.setTarget(res)
		bctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		ackErr := p.sess.WriteAck(bctx, p.inDialog(sip.ACK, "", nil))
		byeErr := p.sess.WriteBye(bctx, p.inDialog(sip.BYE, "", nil))
		a.err = errors.Join(ErrAnswered, ackErr, byeErr)
		p.abort()
		return
	}
	p.abort()
	var dr *sipgo.ErrDialogResponse
	switch {
	case errors.As(err, &dr):
		a.err = &StatusError{Method: "INVITE", StatusCode: dr.Res.StatusCode, Reason: dr.Res.Reason}
	case ctx.Err() != nil:
		cause := a.getCause()
		if res != nil && res.StatusCode >= 300 {
			cause = errors.Join(cause, &StatusError{Method: "INVITE", StatusCode: res.StatusCode, Reason: res.Reason})
		}
		a.err = fmt.Errorf("softphone: call cancelled before answer: %w", cause)
	default:
		a.err = fmt.Errorf("softphone: INVITE to %s failed: %w", p.cfg.Server, err)
	}
	p.log.Info("call failed", "error", a.err)
}

// Proceeding is closed when the first provisional response (100, 180, 183)
// arrives: from then on a CANCEL can be sent (RFC 3261 section 9.1).
func (a *Attempt) Proceeding() <-chan struct{} { return a.proceeding }

// Done is closed when the attempt has its outcome (see Wait).
func (a *Attempt) Done() <-chan struct{} { return a.done }

// Wait blocks until the call is answered (and set up) or has failed.
func (a *Attempt) Wait() (*Phone, error) {
	<-a.done
	return a.phone, a.err
}

// Cancel sends a CANCEL (after the first provisional response, as RFC 3261
// requires, so it may wait for one) and returns the INVITE's final status:
// 487 when the cancel worked. If the bridge answered first, the call is
// ACKed and hung up, and Cancel returns 200 with ErrAnswered; if the attempt
// had already failed, it returns that status and error.
func (a *Attempt) Cancel() (int, error) {
	a.cancelOnce.Do(func() { close(a.cancelReq) })
	ph, err := a.Wait()
	if ph != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return 200, errors.Join(ErrAnswered, ph.Hangup(ctx))
	}
	code := int(a.status.Load())
	if errors.Is(err, ErrAnswered) {
		return code, err
	}
	if code == 487 {
		return code, nil
	}
	return code, err
}

// established finishes the dialog after a 200 OK: SDP, ACK, media.
func (p *Phone) established(ctx context.Context) error {
	res := p.sess.InviteResponse
	p.dialogID = p.sess.ID
	p.setTarget(res)

	var (
		rm       remoteMedia
		mediaErr error
		ackBody  []byte
		ourDir   = SendRecv
	)
	if !p.cfg.LateOffer {
		rm, mediaErr = parseSDP(res.Body(), p.cfg.Codecs)
		if mediaErr == nil {
			mediaErr = p.checkSecurity(rm, false)
		}
		if mediaErr == nil && p.cfg.TelephoneEvent < 0 {
			rm.eventPT = -1 // an event type we never offered cannot be used
		}
	} else {
		rm, mediaErr = parseSDP(res.Body(), p.cfg.Codecs)
		if mediaErr == nil {
			mediaErr = p.checkSecurity(rm, true)
		}
		if mediaErr == nil {
			ourDir = answerDirection(rm.direction)
			if p.cfg.TelephoneEvent < 0 {
				rm.eventPT = -1
			}
			ans := p.offer(ourDir)
			ans.codecs = []g711.Codec{rm.codec}
			ans.eventPT = rm.eventPT // an answer reuses the offer's numbers
			if ans.crypto != nil {
				p.srtpKey.tag = rm.crypto.tag // an answer takes the offer's tag
				ans.crypto.tag = rm.crypto.tag
			}
			ackBody, mediaErr = ans.marshal()
		}
	}
	if mediaErr == nil && p.cfg.SRTP {
		p.rxKey = rm.crypto.key
		mediaErr = p.stream.setSRTP(p.srtpKey.key, p.rxKey)
	}

	if err := p.agent.register(p.dialogID, p); err != nil && mediaErr == nil {
		mediaErr = err // ACKed and ended with a BYE like a bad answer
	}
	ct := ""
	if ackBody != nil {
		ct = "application/sdp"
	}
	if err := p.sess.WriteAck(ctx, p.inDialog(sip.ACK, ct, ackBody)); err != nil {
		p.abort()
		return fmt.Errorf("softphone: send ACK: %w", err)
	}
	if mediaErr != nil {
		// The dialog exists, so it is ended with a BYE (RFC 3261 section 13.2.1).
		bctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		byeErr := p.sess.WriteBye(bctx, p.inDialog(sip.BYE, "", nil))
		p.abort()
		return errors.Join(fmt.Errorf("softphone: 200 OK media: %w", mediaErr), byeErr)
	}
	p.stream.start(mediaParams{
		remote:  rm.addr,
		codec:   rm.codec,
		eventPT: rm.eventPT,
		send:    ourDir.sends() && rm.direction.receives(),
	})
	go p.watch()
	p.log.Info("call answered", "codec", rm.codec.String(), "telephone_event", rm.eventPT, "srtp", p.cfg.SRTP,
		"remote_rtp", rm.addr.String(), "local_rtp", p.stream.local.String())
	return nil
}

// setTarget takes the remote target from the 200 OK's Contact (RFC 3261
// section 12.1.2), falling back to the Request-URI.
func (p *Phone) setTarget(res *sip.Response) {
	p.target = *p.sess.InviteRequest.Recipient.Clone()
	if c := res.Contact(); c != nil {
		p.target = *c.Address.Clone()
	}
}

// answerDirection is the direction answering an offer of d (RFC 3264 section 6.1).
func answerDirection(d Direction) Direction {
	switch d {
	case SendOnly:
		return RecvOnly
	case RecvOnly:
		return SendOnly
	case Inactive:
		return Inactive
	}
	return SendRecv
}

// inDialog builds a request to the remote target. sipgo's dialog session
// adds From, To, Call-ID, CSeq, Via and the route; the phone adds the local
// address so that UDP requests leave from the agent's listening socket.
func (p *Phone) inDialog(method sip.RequestMethod, contentType string, body []byte) *sip.Request {
	target := p.target
	if target.Host == "" {
		target = p.sess.InviteRequest.Recipient
	}
	req := sip.NewRequest(method, *target.Clone())
	if method == sip.INVITE || method == sip.ACK {
		c := p.agent.contact("softphone", p.cfg.Transport)
		req.AppendHeader(&c)
	}
	if body != nil {
		req.AppendHeader(sip.NewHeader("Content-Type", contentType))
		req.SetBody(body)
	}
	if p.cfg.Transport == "udp" {
		ap := p.ep.addr
		req.Laddr = sip.Addr{IP: net.IP(ap.Addr().AsSlice()), Port: int(ap.Port()), Hostname: ap.Addr().String()}
	}
	return req
}

// watch ends the phone when the dialog ends (the bridge's BYE, a failed
// ACK retransmission).
func (p *Phone) watch() {
	select {
	case <-p.sess.Context().Done():
		if p.remoteBye.Load() {
			select {
			case <-p.byeAnswered:
			case <-time.After(time.Second):
			}
		}
		p.finish()
	case <-p.done:
	}
}

// finish tears the call down once; it sends nothing.
func (p *Phone) finish() {
	p.endOnce.Do(func() {
		p.stream.close()
		p.agent.unregister(p.dialogID)
		p.closeAgent()
		received, lost, _ := p.stream.rtpStats()
		p.log.Info("call ended", "by_remote", p.remoteBye.Load(), "rtp_received", received, "rtp_lost", lost)
		close(p.done)
	})
}

// abort releases everything of a call that never got going.
func (p *Phone) abort() {
	if p.dialogID != "" {
		p.agent.unregister(p.dialogID)
	}
	if p.stream != nil {
		p.stream.close()
	}
	p.closeAgent()
}

func (p *Phone) closeAgent() {
	if p.ownAgent {
		_ = p.agent.Close()
	}
}

// SIPAddr returns the agent's listening address this call's Contact names.
func (p *Phone) SIPAddr() netip.AddrPort { return p.ep.addr }

// CallID returns the call's SIP Call-ID.
func (p *Phone) CallID() string { return p.sess.InviteRequest.CallID().Value() }

// Media returns the call's RTP side: what the phone sends, what it
// received and its counters.
func (p *Phone) Media() *Media { return &p.media }

// Done is closed when the call has ended, by Hangup or by the bridge.
func (p *Phone) Done() <-chan struct{} { return p.done }

// EndedByRemote reports whether the bridge ended the call with a BYE.
func (p *Phone) EndedByRemote() bool { return p.remoteBye.Load() }

// Hangup ends the call with a BYE and waits for its answer (bounded by
// ctx); the media stops either way. Hanging up an ended call returns nil.
func (p *Phone) Hangup(ctx context.Context) error {
	select {
	case <-p.done:
		return nil
	default:
	}
	p.sipMu.Lock()
	err := p.sess.WriteBye(ctx, p.inDialog(sip.BYE, "", nil))
	p.sipMu.Unlock()
	p.finish()
	if err != nil {
		return fmt.Errorf("softphone: BYE: %w", err)
	}
	return nil
}

// Hold puts the call on hold the way desk phones do: a re-INVITE offering
// a=sendonly on the same port, ACKed after the 200 OK.
func (p *Phone) Hold(ctx context.Context) error { return p.reinvite(ctx, SendOnly) }

// Resume takes the call off hold with a re-INVITE offering a=sendrecv.
func (p *Phone) Resume(ctx context.Context) error { return p.reinvite(ctx, SendRecv) }

func (p *Phone) reinvite(ctx context.Context, dir Direction) error {
	select {
	case <-p.done:
		return ErrEnded
	default:
	}
	p.sipMu.Lock()
	defer p.sipMu.Unlock()
	body, err := p.offer(dir).marshal()
	if err != nil {
		return err
	}
	req := p.inDialog(sip.INVITE, "application/sdp", body)
	tx, err := p.sess.TransactionRequest(ctx, req)
	if err != nil {
		return fmt.Errorf("softphone: send re-INVITE: %w", err)
	}
	var res *sip.Response
	for res == nil {
		select {
		case r := <-tx.Responses():
			if !r.IsProvisional() {
				res = r
			}
		case <-tx.Done():
			return fmt.Errorf("softphone: re-INVITE: %w", errors.Join(errors.New("transaction ended"), tx.Err()))
		case <-ctx.Done():
			tx.Terminate()
			return fmt.Errorf("softphone: re-INVITE: %w", ctx.Err())
		case <-p.done:
			tx.Terminate()
			return ErrEnded
		}
	}
	if !res.IsSuccess() {
		// sipgo's INVITE client transaction ACKs a non-2xx itself.
		return &StatusError{Method: "re-INVITE", StatusCode: res.StatusCode, Reason: res.Reason}
	}
	// The ACK of a 2xx is the core's job, not the transaction's; the session
	// numbers it with the re-INVITE's CSeq. The transaction stays in its
	// Accepted state (Timer M, 32 s) so a retransmitted 200 (our ACK lost)
	// is ACKed again, as sipgo's WriteAck does for the first INVITE.
	ack := p.inDialog(sip.ACK, "", nil)
	if err := p.sess.WriteRequest(ack); err != nil {
		return fmt.Errorf("softphone: ACK re-INVITE: %w", err)
	}
	tmpl := ack.Clone()
	tx.OnRetransmission(func(r *sip.Response) {
		if r.IsSuccess() {
			_ = p.ep.client.WriteRequest(tmpl.Clone(), noBuild)
		}
	})
	rm, err := parseSDP(res.Body(), p.cfg.Codecs)
	if err == nil {
		err = p.checkSecurity(rm, false)
	}
	if err != nil {
		return fmt.Errorf("softphone: re-INVITE answer: %w", err)
	}
	if p.cfg.SRTP && rm.crypto.key != p.rxKey {
		// The bridge may rekey in an answer; our own key stays as offered.
		rx, err := newSRTPContext(rm.crypto.key)
		if err != nil {
			return err
		}
		p.rxKey = rm.crypto.key
		p.stream.rxSRTP.Store(rx)
	}
	if p.cfg.TelephoneEvent < 0 {
		rm.eventPT = -1
	}
	p.stream.update(mediaParams{
		remote:  rm.addr,
		codec:   rm.codec,
		eventPT: rm.eventPT,
		send:    dir.sends() && rm.direction.receives(),
	})
	p.log.Info("re-INVITE answered", "direction", string(dir), "remote_direction", string(rm.direction))
	return nil
}

// frameTicks converts a duration to whole 20 ms frames, at least one.
func frameTicks(d time.Duration) int {
	return max(1, int((d+pcm.FrameDuration/2)/pcm.FrameDuration))
}

// noBuild is a sipgo request option that leaves an already complete request
// (a retransmitted ACK) untouched.
func noBuild(*sipgo.Client, *sip.Request) error { return nil }
