// Package sipua is groupbridge's SIP user agent (on sipgo): the server
// that binds the SIP listeners, screens every request (trust, rate
// limits, connection and setup caps, in-dialog source, digest; screen.go)
// and hands what passes to the dialog layer (package dialog, which owns
// the dialogs of calls answered and placed, SDP and each call's RTP
// stream); who a caller is (package callerid) and how logs name them;
// registration to a PBX (register.go). An answered call is handed to a
// Handler, a placed one (Server.Dial) to whoever dialled.
//
// It must not know groups, rooms, PINs or what a call is for: those
// belong to its callers. It never takes a dialog's lock: a call's dialog
// state is reached through dialog.Call's methods.
//
// Calls from trusted networks (and the registrar) are answered as they come;
// other sources authenticate with SIP digest or are refused, and a source
// that keeps failing is blocked for a while (auth.go).
package sipua

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/groupbridge/groupbridge/internal/callerid"
	"github.com/groupbridge/groupbridge/internal/logging"
	"github.com/groupbridge/groupbridge/internal/sipua/dialog"
	"github.com/groupbridge/groupbridge/internal/sipua/sipmsg"
	"github.com/groupbridge/groupbridge/internal/wallclock"
	"github.com/groupbridge/groupbridge/media/rtpio"
)

// Handler runs an answered call. ServeCall is called in its own goroutine
// after the ACK; when it returns, the call is hung up if still up and its
// media is released.
type Handler interface {
	ServeCall(c *Call)
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(c *Call)

// ServeCall calls f(c).
func (f HandlerFunc) ServeCall(c *Call) { f(c) }

// Listener is one SIP socket: transport "udp", "tcp" or "tls" and an address.
type Listener struct {
	Transport string
	Addr      netip.AddrPort
}

// String returns "udp:127.0.0.1:5060".
func (l Listener) String() string { return l.Transport + ":" + l.Addr.String() }

// Config is what the server needs; the application fills it from its
// configuration.
type Config struct {
	Listeners       []Listener
	ExternalAddress string        // host for Contact, Via and SDP when behind NAT
	UserAgent       string        // Server/User-Agent header, and the digest realm
	MediaAddress    netip.Addr    // where RTP sockets bind (for SDP when specified)
	Media           *rtpio.Engine // RTP port pool
	Handler         Handler
	Logger          *slog.Logger
	RTPTimeout      time.Duration // no media for this long: BYE
	HoldTimeout     time.Duration // the same while on hold
	AnswerDelay     time.Duration // ring this long (180) before answering
	Events          Events        // told of authentication and registration events (metrics)

	// MediaExternalAddress, when set, goes in SDP (c= and o=) instead of
	// ExternalAddress: for media that leaves by another address.
	MediaExternalAddress string
	// MediaSources are networks callers' media may come from besides
	// their SDP address and the address their SIP came from
	// (rtp.media_sources); media from anywhere else is dropped.
	MediaSources []netip.Prefix
	// Trusted lists the networks whose requests need no authentication.
	// Nil means loopback only (127.0.0.0/8 and ::1); an empty non-nil slice
	// trusts nobody. The registrar's addresses are always trusted.
	Trusted []netip.Prefix
	// AssertIdentity lists the trusted sources whose P-Asserted-Identity
	// and Remote-Party-ID name the caller (RFC 3325's trust domain);
	// AssertTrusted adds every trusted source. The headers of a caller
	// who authenticated (an untrusted source) are never believed.
	AssertIdentity []netip.Prefix
	AssertTrusted  bool
	// NoIdentity lists the sources whose From names nobody (one number in
	// every From): without an asserted identity the caller is anonymous
	// for the call.
	NoIdentity []netip.Prefix
	// CallerLabel names a call's caller in log lines, once when the call
	// is set up; nil shows the masked number (logging.MaskCaller).
	CallerLabel func(*Call) string
	// Proxies are the SIP proxies (Kamailio in front of several nodes)
	// whose X-Groupbridge-Source header names the caller's own address:
	// the source the per-source screens use for their requests, and one
	// more address the call's media may come from (origin.go). Trust
	// stays the transport's. Nil: the header is never read.
	Proxies []netip.Prefix
	// Users may authenticate (digest) from untrusted addresses; with none,
	// untrusted sources get 403.
	Users []User
	// Register, when set, registers the server to a PBX as an extension.
	Register *Register
	// SRTP is when calls are encrypted (SDES); the zero value is
	// SRTPOffer: SRTP when the caller offers it. Keys are taken and given
	// only over TLS (dialog/crypto.go).
	SRTP SRTPMode
	// SRTPOverUDP lets SDES keys travel over UDP and TCP SIP, in clear.
	SRTPOverUDP bool
	// TLS serves the listeners of transport "tls"; required when there
	// are any. It needs at least one certificate; TLS 1.2 is the least
	// version accepted whatever it says.
	TLS *tls.Config
	// Limits are the flood defences and the call caps (limits.go); the
	// zero value turns them all off. SetLimits changes them later.
	Limits Limits
	// Clock runs groupbridge's own timers here (the dialog layer's and the
	// screening's; internal/wallclock); nil is wallclock.SystemClock.
	Clock wallclock.Clock
	// Gate, when set, decides on every new INVITE after the screening
	// chain and before any answer, provisional or final (admission.go).
	// A *Refusal answers with its code, any other error 403. It runs on
	// the request's goroutine: a slow gate delays that call only, but
	// sipgo sends 100 Trying by itself after 200 ms.
	Gate func(GateRequest) (GateResult, error)
	// OnlyTrusted drops every request (and response) from a source
	// outside Trusted unanswered, counted as DropUntrusted, and closes
	// such TCP and TLS connections at accept: a listener for other
	// nodes only, which nobody else may even learn is there.
	OnlyTrusted bool
}

// Events are hooks the server calls as things happen, so that metrics
// count them where they occur. Nil hooks are skipped; none may block.
type Events struct {
	AuthFailure   func()             // an untrusted source gave wrong credentials
	SourceBlocked func()             // a request refused because its source is blocked
	Registration  func(state string) // the registration changed state (Registration* values)
	// RequestDropped: a request from an untrusted source was dropped
	// unanswered (DropRateLimited, DropScanner, DropNotDialogPeer).
	RequestDropped func(reason string)
	// CallRejected: an INVITE was refused before its answer
	// (RejectMaxCalls, RejectDraining, RejectPortsExhausted) or dropped
	// (the Drop* reasons).
	CallRejected func(reason string)
}

// Server is the SIP side of the bridge.
type Server struct {
	cfg    Config
	log    *slog.Logger
	ua     *sipgo.UserAgent
	srv    *sipgo.Server
	client *sipgo.Client
	clock  wallclock.Clock

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup // call goroutines and listeners

	gate *gate         // who may call
	reg  *registration // nil without Config.Register

	socks *listeners // the bound SIP sockets (listeners.go)

	dlg *dialog.Layer // the dialog layer (package dialog)

	answerDelay atomic.Int64 // Config.AnswerDelay, as changed by SetAnswerDelay
	limits      atomic.Pointer[Limits]

	// The screening units; chain (screen.go) puts them in their order.
	chain  []screen
	resp   responder
	val    validator
	srtp   dialog.SRTPPolicy
	flood  *floodScreen
	peers  *peerScreen
	digest *digestScreen
	setup  *setupScreen
	conns  *connTable // TCP and TLS connections, by source (conns.go)
	accept *connGuard // the connection guard of the TCP and TLS listeners

	gateLog countedLog // Config.Gate's refusals since the last log line
}

// New builds a server; Start binds its sockets.
func New(cfg Config) (*Server, error) {
	if cfg.Media == nil || cfg.Handler == nil {
		return nil, errors.New("sipua: Media and Handler are required")
	}
	if len(cfg.Listeners) == 0 {
		return nil, errors.New("sipua: no listeners")
	}
	for _, l := range cfg.Listeners {
		if l.Transport == "tls" && (cfg.TLS == nil || (len(cfg.TLS.Certificates) == 0 && cfg.TLS.GetCertificate == nil)) {
			return nil, fmt.Errorf("sipua: listener %s needs a TLS certificate", l)
		}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.UserAgent == "" {
		cfg.UserAgent = "groupbridge"
	}
	if cfg.RTPTimeout <= 0 {
		cfg.RTPTimeout = 30 * time.Second
	}
	if cfg.HoldTimeout <= 0 {
		cfg.HoldTimeout = time.Hour
	}
	if cfg.Clock == nil {
		cfg.Clock = wallclock.SystemClock{}
	}
	// sipgo logs raw messages on parse errors: everything it says goes
	// through the redacting handler, and only warnings and worse.
	lib := logging.Library(cfg.Logger, slog.LevelWarn, "sipgo")
	setLibraryDefault(lib)
	// The read filter screens UDP datagrams before sipgo parses them. It
	// needs the server, which is set below, before any socket is served.
	var s *Server
	screen := func(p sip.TransportReadProps, data []byte) ([]byte, error) { return s.flood.datagram(p, data) }
	ua, err := sipgo.NewUA(
		sipgo.WithUserAgent(cfg.UserAgent),
		sipgo.WithUserAgentTransportLayerOptions(sip.WithTransportLayerLogger(lib), sip.WithTransportLayerReadFilter(screen)),
		sipgo.WithUserAgentTransactionLayerOptions(sip.WithTransactionLayerLogger(lib)),
	)
	if err != nil {
		return nil, fmt.Errorf("sipua: user agent: %w", err)
	}
	srv, err := sipgo.NewServer(ua, sipgo.WithServerLogger(lib))
	if err != nil {
		return nil, fmt.Errorf("sipua: server: %w", err)
	}
	client, err := sipgo.NewClient(ua, sipgo.WithClientLogger(lib))
	if err != nil {
		return nil, fmt.Errorf("sipua: client: %w", err)
	}
	g, err := newGate(cfg.UserAgent, cfg.Trusted, cfg.Users)
	if err != nil {
		return nil, err
	}
	g.events = cfg.Events
	ctx, cancel := context.WithCancel(context.Background())
	s = &Server{cfg: cfg, log: cfg.Logger, ua: ua, srv: srv, client: client, clock: cfg.Clock,
		ctx: ctx, cancel: cancel, gate: g, conns: newConnTable(),
		socks: &listeners{external: cfg.ExternalAddress},
		resp:  responder{userAgent: cfg.UserAgent, log: cfg.Logger},
		srtp:  dialog.SRTPPolicy{Mode: cfg.SRTP, OverUDP: cfg.SRTPOverUDP}}
	s.val = validator{resp: s.resp}
	s.dlg = dialog.New(dialog.Config{UserAgent: cfg.UserAgent, ExternalAddress: cfg.ExternalAddress,
		MediaExternalAddress: cfg.MediaExternalAddress, MediaAddress: cfg.MediaAddress, MediaSources: cfg.MediaSources,
		Media: cfg.Media, SRTP: s.srtp, Logger: cfg.Logger, Respond: s.resp.respond,
		UA: ua, Client: client, Clock: cfg.Clock, Context: ctx, WaitGroup: &s.wg})
	s.flood = &floodScreen{trusted: g.trustedSource, proxies: cfg.Proxies, limiter: newSourceLimiter(cfg.Clock.Now()),
		onlyTrusted: cfg.OnlyTrusted, events: cfg.Events, log: cfg.Logger, clock: cfg.Clock}
	origin := &originScreen{proxies: cfg.Proxies, trusted: g.trustedSource, resp: s.resp, log: cfg.Logger, clock: cfg.Clock}
	s.peers = &peerScreen{gate: g, lookup: s.lookup, resp: s.resp, events: cfg.Events, log: cfg.Logger, clock: cfg.Clock}
	s.digest = &digestScreen{gate: g, resp: s.resp, log: cfg.Logger, clock: cfg.Clock}
	s.accept = &connGuard{table: s.conns, trusted: g.trustedSource, onlyTrusted: cfg.OnlyTrusted, untrusted: s.flood.untrusted,
		log: cfg.Logger, clock: cfg.Clock, ctx: ctx, wg: &s.wg}
	s.setup = &setupScreen{trusted: g.trustedSource, table: newSetupTable(), calls: s.dlg.Count,
		events: cfg.Events, resp: s.resp, log: cfg.Logger, clock: cfg.Clock}
	s.SetLimits(cfg.Limits)
	s.SetAnswerDelay(cfg.AnswerDelay)
	warnSRTP(s.srtp, s.log, cfg.Listeners)
	if cfg.Register != nil {
		if s.reg, err = newRegistration(s, *cfg.Register); err != nil {
			cancel()
			return nil, err
		}
	}
	// Every handler behind the one screening chain (screen.go); sipgo
	// routes by method, and onOther answers the methods we do not serve.
	s.chain = chain(trustScreen{trusted: g.trustedSource}, origin, s.flood, s.val, s.conns, s.peers, s.digest, s.setup)
	srv.OnInvite(s.serve(s.onInvite))
	dh := s.dlg.Handlers()
	srv.OnAck(s.serve(plain(dh.OnAck)))
	srv.OnBye(s.serve(plain(dh.OnBye)))
	srv.OnCancel(s.serve(plain(dh.OnCancel)))
	srv.OnOptions(s.serve(plain(s.onOptions)))
	srv.OnInfo(s.serve(plain(dh.OnInfo)))
	srv.OnNoRoute(s.serve(plain(dh.OnOther)))
	return s, nil
}

// maxUDPPayload is the largest UDP payload over IPv4: 65,535 less the IP
// and UDP headers.
const maxUDPPayload = 65507

// sipgo refuses to send any UDP message longer than sip.UDPMTUSize-200
// bytes (1,300 by default), which is RFC 3261 18.1.1's rule for a request
// a client sends: one that large should go over a congestion-controlled
// transport instead. It does not fit a response. A response goes back
// over the transport the request came on (18.2.2: a UDP request is
// answered by UDP, to the Via's sent-by), so sipgo silently dropped the
// answer to any UDP request whose Vias, Record-Routes and From/To made it
// longer than that: RFC 4475's longreq got nothing back, nor would an
// INVITE that crossed a few proxies, whose 200 also carries our SDP. The
// kernel fragments what exceeds the path MTU. Our own requests (BYE,
// REGISTER) stay far below the old bound. The variable is global and read
// on every UDP write, so it is set once here, before any server (or test)
// starts a goroutine that could read it.
func init() { sip.UDPMTUSize = maxUDPPayload + 200 }

// sipgo also logs through a package-level default logger, read by code we do
// not control; it is set once, race-free, to a handler that forwards to the
// newest server's redacting logger.
var (
	defaultOnce sync.Once
	defaultLib  atomic.Pointer[slog.Logger]
)

func setLibraryDefault(l *slog.Logger) {
	defaultLib.Store(l)
	defaultOnce.Do(func() { sip.SetDefaultLogger(slog.New(forwardHandler{})) })
}

// forwardHandler sends records to whatever defaultLib holds now.
type forwardHandler struct{ attrs []slog.Attr }

func (f forwardHandler) target() slog.Handler {
	if l := defaultLib.Load(); l != nil {
		return l.Handler()
	}
	return slog.DiscardHandler
}

func (f forwardHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return f.target().Enabled(ctx, l)
}

func (f forwardHandler) Handle(ctx context.Context, r slog.Record) error {
	h := f.target()
	if len(f.attrs) > 0 {
		h = h.WithAttrs(f.attrs)
	}
	return h.Handle(ctx, r)
}

func (f forwardHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return forwardHandler{attrs: append(append([]slog.Attr(nil), f.attrs...), attrs...)}
}

// WithGroup is not used by sipgo; groups are flattened.
func (f forwardHandler) WithGroup(string) slog.Handler { return f }

// serve is the recover boundary around every SIP handler: a panic answers
// 500 where it still can and is logged without the message. Before h, the
// request walks the screening chain (screen.go), which may drop or answer
// it instead.
func (s *Server) serve(h screenedHandler) sipgo.RequestHandler {
	return func(req *sip.Request, tx sip.ServerTransaction) {
		defer func() {
			if r := recover(); r != nil {
				s.log.Error("panic in SIP handler", "method", string(req.Method),
					"panic", logging.RedactDigits(fmt.Sprint(r)), "stack", logging.RedactDigits(string(debug.Stack())))
				s.resp.respond(req, tx, 500, "Server Internal Error")
			}
		}()
		if r, stop := pass(s.chain, req, tx); stop == nil {
			h(req, tx, r)
		}
	}
}

// Start binds every listener and serves it. Port 0 picks a free port; Addrs
// tells which.
func (s *Server) Start() error {
	for _, l := range s.cfg.Listeners {
		if err := s.listen(l); err != nil {
			s.Close()
			return err
		}
	}
	s.wg.Add(1)
	go s.watchTimeouts()
	if s.reg != nil {
		s.reg.start(s.ctx)
	}
	return nil
}

func (s *Server) listen(l Listener) error {
	switch l.Transport {
	case "udp":
		conn, err := net.ListenPacket("udp", l.Addr.String())
		if err != nil {
			return fmt.Errorf("sip listen %s: %w", l, err)
		}
		ua := conn.LocalAddr().(*net.UDPAddr)
		ap := ua.AddrPort()
		s.socks.add(boundListener{Listener{"udp", netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())},
			sip.Addr{IP: ua.IP, Port: ua.Port}}, conn.Close)
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer sipmsg.Recover(s.log, "udp listener")
			_ = s.srv.ServeUDP(conn)
		}()
		awaitServed(s.ua, s.log, conn.LocalAddr().String())
	case "tcp":
		ln, err := net.Listen("tcp", l.Addr.String())
		if err != nil {
			return fmt.Errorf("sip listen %s: %w", l, err)
		}
		ta := ln.Addr().(*net.TCPAddr)
		ap := ta.AddrPort()
		gl := s.accept.listen(ln, nil)
		s.socks.add(boundListener{Listener{"tcp", netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())},
			sip.Addr{IP: ta.IP, Port: ta.Port}}, gl.Close)
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer sipmsg.Recover(s.log, "tcp listener")
			_ = s.srv.ServeTCP(gl)
		}()
	case "tls":
		if s.cfg.TLS == nil {
			return fmt.Errorf("sip listen %s: no TLS certificate configured", l)
		}
		ln, err := net.Listen("tcp", l.Addr.String())
		if err != nil {
			return fmt.Errorf("sip listen %s: %w", l, err)
		}
		ta := ln.Addr().(*net.TCPAddr)
		ap := ta.AddrPort()
		// The guard does the handshake (with its deadline) before sipgo
		// sees the connection.
		tl := s.accept.listen(ln, serverTLS(s.cfg.TLS))
		s.socks.add(boundListener{Listener{"tls", netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())},
			sip.Addr{IP: ta.IP, Port: ta.Port}}, tl.Close)
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer sipmsg.Recover(s.log, "tls listener")
			_ = s.srv.ServeTLS(tl)
		}()
	default:
		return fmt.Errorf("sip listen %s: transport must be udp, tcp or tls", l)
	}
	return nil
}

// serverTLS is the listeners' copy of cfg with TLS 1.2 as the floor:
// older versions have known attacks, and every SIP phone that does TLS
// at all does 1.2.
func serverTLS(cfg *tls.Config) *tls.Config {
	c := cfg.Clone()
	if c.MinVersion < tls.VersionTLS12 {
		c.MinVersion = tls.VersionTLS12
	}
	return c
}

// Addrs returns the listeners as bound (real ports).
func (s *Server) Addrs() []Listener {
	return s.socks.addrs()
}

// AuthStats returns, since start, how many digest challenges (401) were
// sent, how many answers to them failed (wrong password, unknown user,
// malformed), and how many requests were refused because their source was
// blocked after repeated failures.
func (s *Server) AuthStats() (challenges, failures, blocked uint64) {
	return s.gate.challenges.Load(), s.gate.failures.Load(), s.gate.blocked.Load()
}

// Registration returns the state of the registration to the PBX (one of
// the Registration* constants) and, when it failed, why.
func (s *Server) Registration() (state string, err error) {
	if s.reg == nil {
		return RegistrationDisabled, nil
	}
	return s.reg.status()
}

// ActiveCalls returns the number of calls up or being set up.
func (s *Server) ActiveCalls() int { return s.dlg.Count() }

// Drain makes new calls get 503 while calls in progress go on.
func (s *Server) Drain() {
	s.setup.draining.Store(true)
}

// HangupAll sends BYE to every call.
func (s *Server) HangupAll(reason string) {
	for _, c := range s.dlg.All() {
		c.Hangup(reason)
	}
}

// Shutdown stops taking calls, removes the registration (REGISTER with
// Expires: 0, at most a few seconds), hangs up every call, waits up to ctx
// for call goroutines to finish and for the BYEs to leave, and closes the
// sockets.
func (s *Server) Shutdown(ctx context.Context) error {
	s.Drain()
	unregistered := make(chan struct{})
	go func() {
		defer close(unregistered)
		defer sipmsg.Recover(s.log, "un-REGISTER")
		if s.reg != nil {
			s.reg.stop(ctx)
		}
	}()
	s.HangupAll("shutdown")
	done := make(chan struct{})
	go func() {
		// Call goroutines end when their handlers see the cancelled context.
		for s.ActiveCalls() > 0 {
			select {
			case <-ctx.Done():
				close(done)
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
		close(done)
	}()
	<-done
	// The BYEs of HangupAll must leave (another node learns from one
	// that its leg ended) before Close cancels their transactions.
	s.dlg.Settle(ctx)
	<-unregistered
	s.Close()
	return ctx.Err()
}

// Close stops listening and ends every goroutine the server started.
func (s *Server) Close() {
	s.cancel()
	s.socks.close()
	_ = s.ua.Close()
	s.wg.Wait()
}

// onInvite serves an INVITE that passed the screening chain: a re-INVITE
// goes to the dialog layer; a new one holds its place in setup (r.hold).
func (s *Server) onInvite(req *sip.Request, tx sip.ServerTransaction, r facts) {
	if sipmsg.HasToTag(req) {
		s.dlg.Handlers().OnReinvite(req, tx)
		return
	}
	user, hold := r.user, r.hold
	var origin netip.Addr
	if r.origin != r.src {
		origin = r.origin // a proxy named the caller's own address
	}
	adm, ok := s.askGate(req, tx)
	if !ok {
		hold.release()
		return
	}
	// 100 at once, not after sipgo's 200 ms timer: a PBX that sees nothing
	// retransmits and may fail over.
	s.resp.respond(req, tx, 100, "Trying")

	body := req.Body()
	late := len(body) == 0
	// inspect refused a body that is not SDP (415).
	readOffer := s.dlg.ReadOffer
	if adm.SRTP != nil {
		readOffer = s.dlg.ReadPlainOffer
	}
	offer, err := readOffer(body, req.Transport())
	if err != nil {
		hold.release()
		s.log.Info("call rejected", "reason", "sdp", "error", err)
		s.resp.respond(req, tx, 488, "Not Acceptable Here", sip.NewHeader("Warning", `305 groupbridge "`+sipmsg.WarningText(err)+`"`))
		return
	}

	call, err := s.newCall(req, tx, late, user, origin, hold, adm)
	if err != nil {
		hold.release()
		if errors.Is(err, errMaxCalls) {
			// Others took the last places while this one was set up.
			s.setup.refuseFull(req, tx, s.limits.Load().MaxCalls)
			return
		}
		if errors.Is(err, rtpio.ErrNoPorts) {
			s.setup.rejected(RejectPortsExhausted)
			s.log.Warn("call rejected", "reason", "rtp ports exhausted")
			s.resp.respond(req, tx, 503, "Service Unavailable", sip.NewHeader("Retry-After", "30"))
			return
		}
		s.log.Error("call setup failed", "error", err)
		s.resp.respond(req, tx, 500, "Server Internal Error")
		return
	}
	var answerTo *dialog.Media
	if !late {
		answerTo = &offer
	}
	switch s.dlg.Answer(call.Call, req, tx, answerTo, time.Duration(s.answerDelay.Load())) {
	case dialog.AnswerFailed:
		s.release(call)
		return
	case dialog.AnswerCancelled:
		s.log.Info("call cancelled", "call", call.ID(), "caller", call.label)
		s.release(call)
		return
	case dialog.AnswerEnded:
		s.release(call)
		s.logEnded(call)
		return
	}
	s.log.Info("call answered", "call", call.ID(), "caller", call.label, "identity", string(call.ident.Source),
		"transport", strings.ToLower(call.Transport()), "codec", call.Codec().String())
	s.wg.Add(1)
	go s.runCall(call)
}

// newCall sets up the dialog of a new INVITE (dialog.Layer.NewInbound)
// with what the screening decided: who is calling, the account user the
// caller authenticated as ("" for a trusted source), the caller's own
// address a proxy named (origin; invalid for none), its setup hold and
// what the gate let it in with. The call enters the call table unless
// Limits.MaxCalls are there.
func (s *Server) newCall(req *sip.Request, tx sip.ServerTransaction, late bool, user string, origin netip.Addr, hold *setupHold, adm GateResult) (*Call, error) {
	source := req.Source()
	laddr, sock, err := s.socks.localAddrFor(req, tx, source)
	if err != nil {
		return nil, err
	}
	c := &Call{ident: identify(&s.cfg, req, source, origin, user), user: user, setup: hold, admission: adm.Value}
	if s.cfg.CallerLabel != nil {
		c.label = s.cfg.CallerLabel(c)
	} else {
		c.label = logging.MaskCaller(shownNumber(c.ident))
	}
	c.Call, err = s.dlg.NewInbound(req, dialog.Inbound{Laddr: laddr, Sock: sock, Late: late, Origin: origin, Owner: c, SRTP: adm.SRTP})
	if err != nil {
		return nil, err
	}
	if !s.dlg.Add(c.Call, s.limits.Load().MaxCalls) {
		s.dlg.Discard(c.Call, errMaxCalls)
		return nil, errMaxCalls
	}
	return c, nil
}

// onOptions answers OPTIONS. Outside a dialog, a draining server answers
// 503: a proxy probing its nodes (Kamailio's dispatcher) then sends new
// calls elsewhere, while calls in progress go on. Inside one of our calls
// an OPTIONS is the peer's keep-alive, answered as usual.
func (s *Server) onOptions(req *sip.Request, tx sip.ServerTransaction) {
	if s.setup.draining.Load() && !sipmsg.HasToTag(req) {
		s.resp.respond(req, tx, 503, "Service Unavailable", sip.NewHeader("Retry-After", "60"))
		return
	}
	s.dlg.Handlers().OnOptions(req, tx)
}

// lookup returns the call of an in-dialog request, or nil.
func (s *Server) lookup(req *sip.Request) *Call { return callOf(s.dlg.Lookup(req)) }

// logEnded logs the end of an answered or placed call.
func (s *Server) logEnded(c *Call) {
	s.log.Info("call ended", "call", c.ID(), "caller", c.label,
		"reason", c.EndReason(), "duration", s.clock.Now().Sub(c.Started()).Round(time.Second).String())
}

// identify reads who a call is from (package callerid). Identity headers
// count only from a trusted source (user "") that AssertIdentity names;
// the From of a source in NoIdentity names nobody, whether that is the
// packet's source or the origin a proxy named (the PBX whose From the
// proxy passed on).
func identify(cfg *Config, req *sip.Request, source string, origin netip.Addr, user string) callerid.Identity {
	var src netip.Addr
	if ap, err := netip.ParseAddrPort(source); err == nil {
		src = ap.Addr().Unmap()
	}
	h := callerid.Headers{
		// The URI alone: a display name is never read for a number.
		From:    "<" + req.From().Address.String() + ">",
		Privacy: headerValues(req, "Privacy"),
		NoFrom:  inPrefixes(cfg.NoIdentity, src) || inPrefixes(cfg.NoIdentity, origin),
	}
	if user == "" && (cfg.AssertTrusted || inPrefixes(cfg.AssertIdentity, src)) {
		h.Assert = true
		h.PAI = headerValues(req, "P-Asserted-Identity")
		h.RPID = headerValues(req, "Remote-Party-ID")
	}
	return callerid.Resolve(h)
}

// headerValues returns the values of every header line called name.
func headerValues(req *sip.Request, name string) []string {
	var out []string
	for _, h := range req.GetHeaders(name) {
		out = append(out, h.Value())
	}
	return out
}

// inPrefixes reports whether a is inside one of ps.
func inPrefixes(ps []netip.Prefix, a netip.Addr) bool {
	if !a.IsValid() {
		return false
	}
	for _, p := range ps {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// release forgets a call and frees its media. Only for calls whose handler
// never ran (runCall releases the others).
func (s *Server) release(c *Call) {
	s.dlg.Release(c.Call)
	c.setup.release()
}

func (s *Server) runCall(c *Call) {
	defer s.wg.Done()
	defer func() {
		if r := recover(); r != nil {
			s.log.Error("panic in call handler", "call", c.ID(), "panic", logging.RedactDigits(fmt.Sprint(r)),
				"stack", logging.RedactDigits(string(debug.Stack())))
		}
		c.Hangup("handler-done")
		s.release(c)
		s.logEnded(c)
	}()
	s.cfg.Handler.ServeCall(c)
}

// watchTimeouts hangs up calls whose media stopped and calls that reached
// Limits.MaxCall: one goroutine for all calls, not a timer per call. It
// also sweeps the tables of sources now and then.
func (s *Server) watchTimeouts() {
	defer s.wg.Done()
	defer sipmsg.Recover(s.log, "timeout watcher")
	const every = 500 * time.Millisecond
	tick := s.clock.NewTimer(every)
	defer tick.Stop()
	lastSweep := s.clock.Now()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-tick.C():
			tick.Reset(every)
			now := s.clock.Now()
			if now.Sub(lastSweep) > 30*time.Second {
				s.gate.sweep(now)
				s.flood.limiter.sweep(now)
				lastSweep = now
			}
			maxCall := s.limits.Load().MaxCall
			expired, overlong := s.dlg.Overdue(now, time.Now(), s.cfg.RTPTimeout, s.cfg.HoldTimeout, maxCall)
			for _, c := range expired {
				s.log.Info("no media, hanging up", "call", c.ID())
				c.Hangup("rtp-timeout")
			}
			for _, c := range overlong {
				s.log.Info("call time limit reached, hanging up", "call", c.ID(), "max_call", maxCall.String())
				c.Hangup(EndMaxCall)
			}
		}
	}
}
