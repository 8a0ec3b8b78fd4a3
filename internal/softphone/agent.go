package softphone

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/groupbridge/groupbridge/internal/selfsigned"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/groupbridge/groupbridge/internal/logging"
)

// AgentConfig configures an Agent.
type AgentConfig struct {
	// LocalIP is the IPv4 address the SIP listeners bind and advertise in
	// Via and Contact. Default 127.0.0.1.
	LocalIP string
	// UserAgent is the User-Agent product name. Default "groupbridge-softphone".
	UserAgent string
	// TLSConfig is the client side of calls with Transport "tls": which
	// server certificates to trust (RootCAs, or InsecureSkipVerify for a
	// test's self-signed one), ServerName. Nil verifies against the system
	// roots.
	TLSConfig *tls.Config
	// Logger receives the agent's own lines and, redacted and from Warn up,
	// sipgo's. Nil discards everything.
	Logger *slog.Logger
}

// Agent is one SIP endpoint that many phones share: one sipgo user agent
// with a UDP socket, a TCP listener and a TLS listener (with a throwaway
// self-signed certificate), all on LocalIP with ports the kernel picks. Every request a phone sends over UDP leaves from the UDP
// socket, and every Contact names the listener of the call's transport, so
// the bridge's in-dialog requests (BYE) come back to the agent, which hands
// them to the right phone.
//
// A load tool running hundreds of phones creates one Agent and passes it in
// each Config; a phone dialled without one gets a private Agent that lives
// and dies with it. An Agent is safe for concurrent use.
type Agent struct {
	ip      netip.Addr
	log     *slog.Logger
	ua      *sipgo.UserAgent
	srv     *sipgo.Server
	udpConn *net.UDPConn
	tcpLn   *net.TCPListener
	tlsLn   net.Listener
	udp     endpoint
	tcp     endpoint
	tls     endpoint

	mu     sync.Mutex
	phones map[string]*Phone // by dialog ID
	closed bool

	serving   sync.WaitGroup
	closeOnce sync.Once
	closeErr  error
}

// endpoint is the per-transport half of an Agent.
type endpoint struct {
	addr   netip.AddrPort // listening address, what Contact names
	client *sipgo.Client
	dialog *sipgo.DialogUA
}

// ErrAgentClosed is returned when dialling through a closed Agent.
var ErrAgentClosed = errors.New("softphone: agent closed")

// NewAgent starts the SIP listeners. Close it when its phones are done.
func NewAgent(cfg AgentConfig) (*Agent, error) {
	ipStr := cfg.LocalIP
	if ipStr == "" {
		ipStr = "127.0.0.1"
	}
	ip, err := netip.ParseAddr(ipStr)
	if err != nil || !ip.Is4() || ip.IsUnspecified() {
		// Via, Contact and SDP must carry the address the peer can reach,
		// so a wildcard will not do; sipgo's URIs are only tried with IPv4.
		return nil, fmt.Errorf("softphone: agent local IP %q: must be a concrete IPv4 address", ipStr)
	}
	name := cfg.UserAgent
	if name == "" {
		name = "groupbridge-softphone"
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	// sipgo dumps whole messages when parsing fails; those carry caller
	// numbers and DTMF bodies, so its lines go through the redactor.
	lib := logging.Library(log, slog.LevelWarn, "sipgo")

	ua, err := sipgo.NewUA(
		sipgo.WithUserAgent(name),
		// The client side of TLS connections the phones open; nil keeps
		// sipgo's default (system roots).
		sipgo.WithUserAgenTLSConfig(cfg.TLSConfig),
		sipgo.WithUserAgentHostname(ip.String()),
		sipgo.WithUserAgentTransportLayerOptions(sip.WithTransportLayerLogger(lib)),
		sipgo.WithUserAgentTransactionLayerOptions(
			sip.WithTransactionLayerLogger(lib),
			// Retransmitted 200s after a transaction ended are expected (the
			// ACK may cross them); sipgo would log each at Info through its
			// global logger.
			sip.WithTransactionLayerUnhandledResponseHandler(func(*sip.Response) {}),
		),
	)
	if err != nil {
		return nil, fmt.Errorf("softphone: create user agent: %w", err)
	}
	a := &Agent{ip: ip, log: log, ua: ua, phones: make(map[string]*Phone)}
	if err := a.listen(lib); err != nil {
		a.shutdown()
		return nil, err
	}
	return a, nil
}

func (a *Agent) listen(lib *slog.Logger) error {
	srv, err := sipgo.NewServer(a.ua, sipgo.WithServerLogger(lib))
	if err != nil {
		return fmt.Errorf("softphone: create SIP server: %w", err)
	}
	a.srv = srv
	srv.OnBye(a.onBye)
	srv.OnOptions(func(req *sip.Request, tx sip.ServerTransaction) {
		a.respond(req, tx, 200, "OK")
	})
	srv.OnAck(func(*sip.Request, sip.ServerTransaction) {}) // a stray ACK needs no answer

	a.udpConn, err = net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(a.ip, 0)))
	if err != nil {
		return fmt.Errorf("softphone: bind SIP UDP on %s: %w", a.ip, err)
	}
	a.udp.addr = a.udpConn.LocalAddr().(*net.UDPAddr).AddrPort()
	a.tcpLn, err = net.ListenTCP("tcp4", net.TCPAddrFromAddrPort(netip.AddrPortFrom(a.ip, 0)))
	if err != nil {
		return fmt.Errorf("softphone: listen SIP TCP on %s: %w", a.ip, err)
	}
	a.tcp.addr = a.tcpLn.Addr().(*net.TCPAddr).AddrPort()
	// A throwaway certificate nobody is meant to trust: a bridge that opens
	// its own connection to the Contact must be told not to verify.
	pair, err := selfsigned.New("groupbridge softphone", 24*time.Hour, a.ip)
	if err != nil {
		return fmt.Errorf("softphone: TLS listener: %w", err)
	}
	cert := pair.Cert
	tln, err := net.ListenTCP("tcp4", net.TCPAddrFromAddrPort(netip.AddrPortFrom(a.ip, 0)))
	if err != nil {
		return fmt.Errorf("softphone: listen SIP TLS on %s: %w", a.ip, err)
	}
	a.tls.addr = tln.Addr().(*net.TCPAddr).AddrPort()
	a.tlsLn = tls.NewListener(tln, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})

	a.serving.Add(3)
	go func() {
		defer a.serving.Done()
		_ = srv.ServeUDP(a.udpConn) // returns when the socket is closed
	}()
	go func() {
		defer a.serving.Done()
		_ = srv.ServeTCP(a.tcpLn)
	}()
	go func() {
		defer a.serving.Done()
		_ = srv.ServeTLS(a.tlsLn)
	}()
	if err := a.waitUDPServing(); err != nil {
		return err
	}

	// UDP requests must leave from the listening socket: sipgo picks a
	// request's connection by its local address when one is forced, and
	// otherwise opens an ephemeral socket whose port the bridge would answer
	// and send its BYE to. WithClientConnectionAddr forces it for requests
	// the client builds; in-dialog requests get req.Laddr from the phone.
	a.udp.client, err = sipgo.NewClient(a.ua,
		sipgo.WithClientLogger(lib),
		sipgo.WithClientHostname(a.ip.String()),
		sipgo.WithClientConnectionAddr(a.udp.addr.String()))
	if err != nil {
		return fmt.Errorf("softphone: create UDP client: %w", err)
	}
	// TCP requests ride one outgoing connection per peer (sipgo reuses it
	// by remote address); responses come back on it and Via names it. The
	// Contact names the listener, where the bridge may open its own
	// connection for in-dialog requests.
	a.tcp.client, err = sipgo.NewClient(a.ua,
		sipgo.WithClientLogger(lib),
		sipgo.WithClientHostname(a.ip.String()))
	if err != nil {
		return fmt.Errorf("softphone: create TCP client: %w", err)
	}
	// TLS works as TCP does; the bridge sends its in-dialog requests back
	// on the phone's connection (RFC 5923 style reuse is what phones behind
	// NAT rely on), and the listener is there for one that opens its own.
	a.tls.client, err = sipgo.NewClient(a.ua,
		sipgo.WithClientLogger(lib),
		sipgo.WithClientHostname(a.ip.String()))
	if err != nil {
		return fmt.Errorf("softphone: create TLS client: %w", err)
	}
	a.udp.dialog = &sipgo.DialogUA{Client: a.udp.client, ContactHDR: a.contact("", "udp")}
	a.tcp.dialog = &sipgo.DialogUA{Client: a.tcp.client, ContactHDR: a.contact("", "tcp")}
	a.tls.dialog = &sipgo.DialogUA{Client: a.tls.client, ContactHDR: a.contact("", "tls")}
	return nil
}

// waitUDPServing waits until sipgo has put the listening socket into its
// connection pool. ServeUDP does that at its start, in its own goroutine; a
// request sent before would make sipgo try to bind the same port again.
func (a *Agent) waitUDPServing() error {
	deadline := time.Now().Add(5 * time.Second)
	for {
		if c, err := a.ua.TransportLayer().GetConnection("udp", a.udp.addr.String()); err == nil {
			_, _ = c.TryClose() // GetConnection took a reference
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("softphone: SIP UDP listener %s did not start", a.udp.addr)
		}
		time.Sleep(time.Millisecond)
	}
}

// contact is the Contact header for user over transport ("udp", "tcp" or "tls").
func (a *Agent) contact(user, transport string) sip.ContactHeader {
	ep := a.endpoint(transport)
	uri := sip.Uri{Scheme: "sip", User: user, Host: a.ip.String(), Port: int(ep.addr.Port())}
	if transport == "tcp" || transport == "tls" {
		uri.UriParams = sip.HeaderParams{{K: "transport", V: transport}}
	}
	return sip.ContactHeader{Address: uri}
}

func (a *Agent) endpoint(transport string) *endpoint {
	switch transport {
	case "tcp":
		return &a.tcp
	case "tls":
		return &a.tls
	}
	return &a.udp
}

// SIPAddr returns the listening address for transport "udp", "tcp" or "tls".
func (a *Agent) SIPAddr(transport string) netip.AddrPort {
	return a.endpoint(strings.ToLower(transport)).addr
}

// LocalIP returns the address the agent binds and advertises.
func (a *Agent) LocalIP() netip.Addr { return a.ip }

func (a *Agent) register(id string, p *Phone) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return ErrAgentClosed
	}
	a.phones[id] = p
	return nil
}

func (a *Agent) unregister(id string) {
	a.mu.Lock()
	delete(a.phones, id)
	a.mu.Unlock()
}

func (a *Agent) lookup(id string) *Phone {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.phones[id]
}

func (a *Agent) isClosed() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.closed
}

// onBye ends the phone whose dialog the BYE names.
func (a *Agent) onBye(req *sip.Request, tx sip.ServerTransaction) {
	id, err := sip.DialogIDFromRequestUAC(req)
	var p *Phone
	if err == nil {
		p = a.lookup(id)
	}
	if p == nil {
		a.respond(req, tx, 481, "Call/Transaction Does Not Exist")
		return
	}
	p.remoteBye.Store(true)
	// ReadBye answers 200 and ends the dialog; the phone's watcher sees the
	// dialog's context end and tears the media down. Teardown does not run
	// here because sipgo still owns this transaction.
	if err := p.sess.ReadBye(req, tx); err != nil {
		p.log.Warn("answering BYE failed", "error", err)
	}
	p.byeOnce.Do(func() { close(p.byeAnswered) })
}

func (a *Agent) respond(req *sip.Request, tx sip.ServerTransaction, code int, reason string) {
	if err := tx.Respond(sip.NewResponseFromRequest(req, code, reason, nil)); err != nil {
		a.log.Debug("SIP respond failed", "method", req.Method, "code", code, "error", err)
	}
}

// Close hangs up the agent's remaining calls (BYE, up to 2 s each, in
// parallel), then stops the listeners and the user agent. It is idempotent.
func (a *Agent) Close() error {
	a.closeOnce.Do(func() {
		a.mu.Lock()
		a.closed = true
		phones := make([]*Phone, 0, len(a.phones))
		for _, p := range a.phones {
			phones = append(phones, p)
		}
		a.mu.Unlock()
		var wg sync.WaitGroup
		for _, p := range phones {
			wg.Go(func() {
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				defer cancel()
				_ = p.Hangup(ctx) // best effort: the agent goes away either way
			})
		}
		wg.Wait()
		a.closeErr = a.shutdown()
	})
	return a.closeErr
}

func (a *Agent) shutdown() error {
	var errs []error
	// sipgo does not close listeners it was handed (Serve*); closing them
	// is what ends its read and accept loops.
	if a.udpConn != nil {
		errs = append(errs, a.udpConn.Close())
	}
	if a.tcpLn != nil {
		errs = append(errs, a.tcpLn.Close())
	}
	if a.tlsLn != nil {
		errs = append(errs, a.tlsLn.Close())
	}
	errs = append(errs, a.ua.Close())
	a.serving.Wait()
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("softphone: close agent: %w", err)
	}
	return nil
}
