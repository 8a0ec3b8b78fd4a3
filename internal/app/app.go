// Package app is the composition root: it builds the bridge from a validated
// configuration (prompts, RTP engine, clock, conference, SIP) and carries a
// call from the PIN prompt into its group's room.
//
// It owns no rules of its own: PIN entry is ivr's, a session's rules are
// conference/rules', SIP is sipua's, and the words for groups are
// internal/group's.
package app

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/groupbridge/groupbridge/config"
	"github.com/groupbridge/groupbridge/internal/admin"
	"github.com/groupbridge/groupbridge/internal/conference"
	"github.com/groupbridge/groupbridge/internal/conference/rules"
	"github.com/groupbridge/groupbridge/internal/group"
	"github.com/groupbridge/groupbridge/internal/guard"
	"github.com/groupbridge/groupbridge/internal/ivr"
	"github.com/groupbridge/groupbridge/internal/lobby"
	"github.com/groupbridge/groupbridge/internal/logging"
	"github.com/groupbridge/groupbridge/internal/metrics"
	"github.com/groupbridge/groupbridge/internal/sipua"
	"github.com/groupbridge/groupbridge/media/clock"
	"github.com/groupbridge/groupbridge/media/prompt"
	"github.com/groupbridge/groupbridge/media/rtpio"
)

// Options are the process-level things a configuration does not hold.
type Options struct {
	// LogOutput receives the log; nil means io.Discard.
	LogOutput io.Writer
	// LogLevel is the minimum level logged (default Info).
	LogLevel slog.Leveler

	// ackTimeout shortens the wait for an ACK in tests (0: RFC 3261's 32 s).
	ackTimeout time.Duration
}

// App is a running bridge.
type App struct {
	cfg      *config.Config // as started; settings that need a restart come from here
	state    atomic.Pointer[state]
	log      *slog.Logger
	clock    *clock.Clock
	engine   *rtpio.Engine
	conf     *conference.Conference
	lobby    *lobby.Lobby
	sip      *sipua.Server
	metrics  *metrics.Metrics
	guard    *guard.PINGuard
	budget   *guard.Budget
	alarmLog [2]logging.Throttle // the PIN-rate alarm's log lines: bridge, group
	admin    *http.Server        // nil when admin.listen is ""
	adminLn  net.Listener
	idKey    [32]byte // per-start HMAC key for recognising callers; memory only
	tags     *logging.Tags
	reload   sync.Mutex
}

// state is what a reload may change: groups and prompts. A call takes one
// snapshot when it starts, so a reload never changes the rules mid-call.
type state struct {
	cfg     *config.Config
	groups  []group.Group // cfg.Groups as the call's packages take them
	prompts *prompt.Set
}

func newState(cfg *config.Config, prompts *prompt.Set) *state {
	st := &state{cfg: cfg, prompts: prompts}
	for _, g := range cfg.Groups {
		st.groups = append(st.groups, g.Runtime())
	}
	return st
}

// loadPrompts builds the prompt set a configuration asks for.
func loadPrompts(cfg *config.Config, log *slog.Logger) (*prompt.Set, error) {
	prompts, err := prompt.Builtin(cfg.Prompts.Language)
	if err != nil {
		return nil, fmt.Errorf("prompts.language: %w", err)
	}
	if cfg.Prompts.Dir != "" {
		n, err := prompts.LoadDir(cfg.Prompts.Dir)
		if err != nil {
			return nil, err // LoadDir names prompts.dir and the file
		}
		log.Info("operator prompts loaded", "dir", cfg.Prompts.Dir, "count", n)
	}
	return prompts, nil
}

// New builds the bridge from a validated configuration; Start runs it.
func New(cfg *config.Config, opts Options) (*App, error) {
	out := opts.LogOutput
	if out == nil {
		out = io.Discard
	}
	level := opts.LogLevel
	if level == nil {
		level = slog.LevelInfo
	}
	log, err := logging.New(cfg.Log.Format, out, level)
	if err != nil {
		return nil, fmt.Errorf("log.format: %w", err)
	}
	prompts, err := loadPrompts(cfg, log)
	if err != nil {
		return nil, err
	}
	rtpAddr, err := netip.ParseAddr(cfg.RTP.Address)
	if err != nil {
		return nil, fmt.Errorf("rtp.address: %q: %w", cfg.RTP.Address, err)
	}
	engine, err := rtpio.NewEngine(rtpio.Config{
		Address:   rtpAddr,
		PortMin:   cfg.RTP.PortMin,
		PortMax:   cfg.RTP.PortMax,
		JitterMin: cfg.Audio.JitterMin,
		JitterMax: cfg.Audio.JitterMax,
		Logger:    log,
	})
	if err != nil {
		return nil, fmt.Errorf("rtp: %w", err)
	}
	a := &App{cfg: cfg, log: log, engine: engine, lobby: lobby.New()}
	a.state.Store(newState(cfg, prompts))
	if _, err := rand.Read(a.idKey[:]); err != nil {
		_ = engine.Close()
		return nil, fmt.Errorf("identity key: %w", err)
	}
	a.guard = guard.New(guard.Config{AlarmRate: cfg.Limits.PINFailureAlarm})
	// A caller's tag outlives midnight as long as a rejoin or a run of
	// wrong PINs may still link their calls.
	a.tags = logging.NewTags(max(rules.DefaultRejoinWindow, a.guard.Memory()), time.Local)
	a.budget = guard.NewBudget(budgetConfig(cfg))
	a.clock = clock.New(0, log, a.onTickPanic)
	a.metrics = metrics.New()
	a.clock.Observe(a.metrics.ObserveTick)
	a.conf = conference.New(a.clock, prompts, log, conference.Audio{
		MaxTalkers:   cfg.Audio.MaxTalkers,
		AGC:          cfg.Audio.AGC,
		ComfortNoise: cfg.Audio.ComfortNoise,
	})
	var users []sipua.User
	for _, u := range cfg.SIP.Users {
		users = append(users, sipua.User{Name: u.Name, Password: u.Password})
	}
	srtpMode, err := sipua.ParseSRTPMode(cfg.RTP.SRTP)
	if err != nil {
		_ = engine.Close()
		return nil, fmt.Errorf("rtp.srtp: %w", err)
	}
	var tlsCfg *tls.Config
	if cfg.SIP.TLS != nil {
		if tlsCfg, err = cfg.SIP.TLS.Load(); err != nil {
			_ = engine.Close()
			return nil, err
		}
	}
	var reg *sipua.Register
	if r := cfg.SIP.Register; r != nil {
		reg = &sipua.Register{Registrar: r.Registrar, User: r.User, Password: r.Password, Expires: r.Expires, Transport: r.Transport}
	}
	var listeners []sipua.Listener
	for _, l := range cfg.SIP.Listeners() {
		listeners = append(listeners, sipua.Listener{Transport: l.Transport, Addr: l.Addr})
	}
	assertPrefixes, assertTrusted := cfg.SIP.AssertPrefixes()
	a.sip, err = sipua.New(sipua.Config{
		Listeners:       listeners,
		ExternalAddress: cfg.SIP.ExternalAddress,
		UserAgent:       cfg.SIP.UserAgent,
		MediaAddress:    rtpAddr,
		Media:           engine,
		Handler:         a,
		Logger:          log,
		RTPTimeout:      cfg.RTP.Timeout,
		HoldTimeout:     cfg.RTP.HoldTimeout,
		AnswerDelay:     cfg.SIP.AnswerDelay,
		AckTimeout:      opts.ackTimeout,
		// Never nil: an empty list means "trust nobody".
		Trusted:              cfg.SIP.TrustedPrefixes(),
		AssertIdentity:       assertPrefixes,
		AssertTrusted:        assertTrusted,
		NoIdentity:           cfg.SIP.NoIdentityPrefixes(),
		CallerLabel:          a.label,
		Users:                users,
		Register:             reg,
		MediaExternalAddress: cfg.RTP.ExternalAddress,
		MediaSources:         cfg.RTP.MediaSourcePrefixes(),
		SRTP:                 srtpMode,
		SRTPOverUDP:          cfg.RTP.SRTPOverUDP,
		TLS:                  tlsCfg,
		Limits:               sipLimits(cfg),
		Events: sipua.Events{
			AuthFailure:    a.metrics.AuthFailure,
			SourceBlocked:  a.metrics.SourceBlocked,
			Registration:   a.metrics.SetRegistration,
			RequestDropped: a.metrics.RequestDropped,
			CallRejected:   a.metrics.CallRejected,
		},
	})
	if err != nil {
		_ = engine.Close()
		return nil, err
	}
	a.registerMetrics()
	if reg == nil {
		a.metrics.SetRegistration(metrics.RegistrationDisabled)
	} else {
		a.metrics.SetRegistration(metrics.RegistrationRegistering)
	}
	return a, nil
}

// sipLimits are the SIP layer's limits from a configuration.
func sipLimits(cfg *config.Config) sipua.Limits {
	l := cfg.Limits
	return sipua.Limits{
		SourceRate:     float64(l.SourceRate),
		SourceBurst:    l.SourceBurst,
		MaxCalls:       l.MaxCalls,
		MaxCall:        l.MaxCall,
		DropScanners:   cfg.SIP.DropScanners,
		SetupPerSource: l.SetupPerSource,
		SetupPerUser:   l.SetupPerUser,
		TCPPerSource:   l.TCPPerSource,
		TCPIdle:        l.TCPIdle,
		TLSHandshake:   l.TLSHandshake,
	}
}

// budgetConfig is the PIN budget's part of a configuration.
func budgetConfig(cfg *config.Config) guard.BudgetConfig {
	l := cfg.Limits
	known := time.Duration(l.KnownCallers) * 24 * time.Hour
	if known == 0 {
		known = -1 // off
	}
	return guard.BudgetConfig{PerNumber: l.PINBudget, Bridge: l.PINBudgetBridge, Queue: l.PINQueue, KnownFor: known}
}

// registerMetrics gives the metrics their scrape-time sources: totals kept
// by the packages themselves, so nothing is counted twice.
func (a *App) registerMetrics() {
	a.metrics.RegisterCallsActive(a.sip.ActiveCalls)
	a.metrics.RegisterRooms(func() (rooms, members, waiting int) {
		st := a.conf.Stats()
		return st.Rooms, st.InRoom, st.Waiting + st.Lobby
	})
	a.metrics.RegisterClock(func() (int64, int64) {
		ticks, late, _ := a.clock.Stats()
		return ticks, late
	})
	a.metrics.RegisterRTP(func() metrics.RTPStats {
		st := a.engine.Stats()
		d := st.Dropped
		return metrics.RTPStats{
			PacketsIn: st.PacketsIn, PacketsOut: st.PacketsOut,
			BytesIn: st.BytesIn, BytesOut: st.BytesOut,
			Late: d.Late, Concealed: st.Concealed, Lost: st.Lost,
			JitterDepthSeconds: st.MeanPlayoutDelay.Seconds(),
			RTCPIn:             st.RTCP.Received, RTCPOut: st.RTCP.Sent,
			Dropped: map[string]uint64{
				"foreign-source":       d.ForeignSource,
				"probation":            d.Probation,
				"malformed":            d.Malformed,
				"unknown-payload-type": d.UnknownPayloadType,
				"duplicate":            d.Duplicate,
				"late":                 d.Late,
				"send-error":           d.SendError,
				"direction":            d.Direction,
				"rtcp-malformed":       st.RTCP.Malformed,
				"rtcp-foreign":         st.RTCP.Foreign,
				"srtp-auth":            d.SRTPAuth,
			},
		}
	})
}

// Metrics returns the app's metrics (served by the admin listener).
func (a *App) Metrics() *metrics.Metrics { return a.metrics }

// startAdmin serves the admin API on admin.listen (port 0: any free port;
// AdminAddr tells which).
func (a *App) startAdmin() error {
	if a.cfg.Admin.Listen == "" {
		return nil
	}
	ln, err := net.Listen("tcp", a.cfg.Admin.Listen)
	if err != nil {
		return fmt.Errorf("admin.listen %s: %w", a.cfg.Admin.Listen, err)
	}
	a.adminLn = ln
	a.admin = &http.Server{
		Handler:           a.AdminHandler(a.cfg.Admin.Token),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       60 * time.Second,
		ErrorLog:          slog.NewLogLogger(logging.Library(a.log, slog.LevelWarn, "http").Handler(), slog.LevelWarn),
	}
	go func() {
		if err := a.admin.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			a.log.Error("admin listener stopped", "error", err.Error())
		}
	}()
	a.log.Info("listening", "admin", ln.Addr().String())
	return nil
}

// AdminAddr returns the admin listener's address, or "" when it is off.
func (a *App) AdminAddr() string {
	if a.adminLn == nil {
		return ""
	}
	return a.adminLn.Addr().String()
}

// AdminHandler is the operator's HTTP API: /healthz, /metrics, /api/...
// Every action goes through the session rules, like the keypad.
func (a *App) AdminHandler(token string) http.Handler {
	return admin.NewHandler(admin.Config{
		Token:   token,
		Hosts:   adminHosts(&a.cfg.Admin),
		Rooms:   a.conf,
		Drain:   a.Drain,
		Metrics: a.metrics.Handler(),
		Health:  a.health,
		Logger:  a.log,
	})
}

// adminHosts is admin.hosts, or when it is empty the listen address and
// this machine's loopback names (validation requires admin.hosts for a
// wildcard listen address).
func adminHosts(c *config.Admin) []string {
	if len(c.Hosts) > 0 {
		return c.Hosts
	}
	hosts := admin.LocalHosts()
	if ap, err := netip.ParseAddrPort(c.Listen); err == nil {
		hosts = append(hosts, ap.Addr().String())
	}
	return hosts
}

// health reports whether the bridge can take calls.
func (a *App) health() error {
	if ticks, _, _ := a.clock.Stats(); ticks == 0 {
		return errors.New("mixing clock not running")
	}
	return nil
}

// Start begins mixing and answering calls.
func (a *App) Start() error {
	// The engine first: each tick reads what has arrived before anything
	// mixes (rtpio.Engine.Tick).
	a.clock.Add(a.engine)
	a.clock.Add(a.lobby)
	a.clock.Start()
	if err := a.sip.Start(); err != nil {
		a.clock.Stop()
		_ = a.engine.Close()
		return err
	}
	for _, l := range a.sip.Addrs() {
		a.log.Info("listening", "sip", l.String())
	}
	if err := a.startAdmin(); err != nil {
		a.sip.Close()
		a.clock.Stop()
		_ = a.engine.Close()
		return err
	}
	a.log.Info("groupbridge started", "groups", len(a.cfg.Groups),
		"rtp_ports", fmt.Sprintf("%d-%d", a.cfg.RTP.PortMin, a.cfg.RTP.PortMax))
	return nil
}

// SIPAddrs returns the SIP listeners as bound.
func (a *App) SIPAddrs() []sipua.Listener { return a.sip.Addrs() }

// Logger returns the application's logger.
func (a *App) Logger() *slog.Logger { return a.log }

// Shutdown stops taking calls, tells everyone the line is closing for
// maintenance, hangs up every call (all bounded by ctx) and stops
// everything.
func (a *App) Shutdown(ctx context.Context) error {
	a.sip.Drain()
	if a.sip.ActiveCalls() > 0 {
		st := a.state.Load()
		clip, _ := st.prompts.Clip(prompt.ClosingMaintenance)
		a.conf.Announce([]string{prompt.ClosingMaintenance})
		a.lobby.Announce(clip)
		// Let the message play, but never past the deadline.
		wait := time.Duration(len(clip))*time.Second/8000 + 300*time.Millisecond
		select {
		case <-time.After(wait):
		case <-ctx.Done():
		}
	}
	err := a.sip.Shutdown(ctx)
	if a.admin != nil {
		_ = a.admin.Shutdown(ctx)
	}
	a.conf.Close()
	a.clock.Stop()
	if cerr := a.engine.Close(); cerr != nil && err == nil {
		err = cerr
	}
	a.log.Info("groupbridge stopped")
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("shutdown: calls still up at the deadline: %w", err)
	}
	return err
}

// onTickPanic resets a room whose tick panicked; a panic in the lobby's
// tick is logged by the clock and the lobby goes on.
func (a *App) onTickPanic(t clock.Ticker, recovered any) {
	a.conf.Recover(t, recovered)
}

// identity recognises a caller who calls back without storing their
// number: an HMAC under a key made at each start and kept in memory only (a
// plain hash of a phone number is reversed by trying every number). The
// key lasts the whole run, so rejoins, removals, PIN limits and known
// callers hold across the log tags' daily change. Callers without a
// number, and every caller of a source that names nobody
// (sip.no_identity), get "" and are told apart by their call only.
func (a *App) identity(c *sipua.Call) string {
	if c.NoIdentity() {
		return ""
	}
	return a.identityOf(c.Caller())
}

// identityOf is identity for a normalised number ("" for none).
func (a *App) identityOf(number string) string {
	if number == "" {
		return ""
	}
	return a.keyed("", number)
}

// label is how log lines and the admin API name a call's caller
// (log.callers): a tag of the identity by default, the masked number when
// asked; "anonymous" when the number is withheld (Privacy: id) or none.
func (a *App) label(c *sipua.Call) string {
	if c.CallerPrivate() || c.NoIdentity() || c.Caller() == "" {
		return logging.Anonymous
	}
	if a.cfg.Log.Callers == config.LogCallersMasked {
		return logging.MaskCaller(c.Caller())
	}
	return a.tags.Tag(a.identityOf(c.Caller()), time.Now())
}

// keyed is the HMAC of the parts under the per-start key; kind keeps the
// hashes of different things (numbers, users, addresses) apart.
func (a *App) keyed(kind string, parts ...string) string {
	mac := hmac.New(sha256.New, a.idKey[:])
	if kind != "" {
		mac.Write([]byte(kind))
		mac.Write([]byte{0})
	}
	for i, p := range parts {
		if i > 0 {
			mac.Write([]byte{0})
		}
		mac.Write([]byte(p))
	}
	return hex.EncodeToString(mac.Sum(nil)[:16])
}

// caller is who places c for the PIN limits: its number's identity, and
// for a call from an untrusted source (one that authenticated as a
// sip.users account) that user and the source address, by its /64 for
// IPv6 since anyone holding one address of a /64 holds them all.
func (a *App) caller(c *sipua.Call, id string) guard.Caller {
	g := a.callerOf(id, c.User(), c.SourceIP())
	g.PerCall = c.NoIdentity()
	return g
}

// callerOf is caller from the call's parts: its number's identity, the
// authenticated user ("" when trusted) and the source address.
func (a *App) callerOf(id, user string, ip netip.Addr) guard.Caller {
	g := guard.Caller{Number: id}
	if user == "" {
		return g // a trusted PBX: the source carries everyone's calls
	}
	g.User = a.keyed("user", user)
	if ip.IsValid() {
		src := ip.String()
		if ip.Is6() {
			src = netip.PrefixFrom(ip, 64).Masked().String()
		}
		g.Source = a.keyed("source", src)
	}
	return g
}

// knownKey is the keyed hash under which a caller is known to a group.
func (a *App) knownKey(id, group string) string {
	if id == "" {
		return "" // withheld numbers are never known
	}
	return a.keyed("known", id, group)
}

// Reload applies a new configuration's live keys (config.ReloadLive):
// groups and PINs to calls that start from now on, prompts to every room
// from its next announcement on, the limits at once. Live sessions go on;
// a removed group's session runs to its end. A changed key that needs a
// restart is named in the log and keeps its running value.
func (a *App) Reload(cfg *config.Config) error {
	a.reload.Lock()
	defer a.reload.Unlock()
	if err := cfg.Validate(); err != nil {
		return err
	}
	prompts, err := loadPrompts(cfg, a.log)
	if err != nil {
		return err
	}
	old := a.state.Load().cfg
	// Restart keys against the running values (as started): a change is
	// reported at every reload until the restart. Live keys against the
	// last reload.
	if _, restart := config.ReloadChanges(a.cfg, cfg); len(restart) > 0 {
		a.log.Warn("reload: these settings need a restart; keeping the running values", "keys", strings.Join(restart, ","))
	}
	if live, _ := config.ReloadChanges(old, cfg); len(live) > 0 {
		a.log.Info("reload: applied", "keys", strings.Join(live, ","))
	}
	// The limits apply at once: an operator under attack tightens them
	// without cutting off the calls in progress.
	a.sip.SetLimits(sipLimits(cfg))
	a.sip.SetAnswerDelay(cfg.SIP.AnswerDelay)
	a.guard.SetAlarmRate(cfg.Limits.PINFailureAlarm)
	a.budget.SetConfig(budgetConfig(cfg))
	a.state.Store(newState(cfg, prompts))
	a.conf.SetPrompts(prompts)
	a.log.Info("configuration reloaded", "groups", len(cfg.Groups), "groups_before", len(old.Groups))
	return nil
}

// DrainTimeout is drain_timeout as last loaded: how long a stop may take.
func (a *App) DrainTimeout() time.Duration { return a.state.Load().cfg.DrainTimeout }

// Drain stops taking new calls (503); calls in progress go on until their
// sessions end by themselves.
func (a *App) Drain() {
	a.sip.Drain()
	a.log.Info("draining: new calls are refused, sessions go on")
}

// pinAlarm reports a PIN failure rate that crossed limits.pin_failure_alarm:
// many callers guessing a little each is still an attack. Each crossing
// is counted; the log gets at most one line a minute per scope. The group
// is named in the log (the operator's), never in the metrics.
func (a *App) pinAlarm(alarm guard.Alarm, group string) {
	level := a.state.Load().cfg.Limits.PINFailureAlarm
	report := func(i int, scope string, rate int, attrs ...any) {
		a.metrics.PINAlarm(scope == metrics.ScopeGroup)
		if !a.alarmLog[i].Allow(time.Now()) {
			return
		}
		a.log.Warn("PIN failure rate high: possible guessing attack",
			append([]any{"scope", scope, "per_minute", rate, "limit", level}, attrs...)...)
	}
	if alarm.Bridge {
		report(0, metrics.ScopeBridge, alarm.BridgeRate)
	}
	if alarm.Group {
		report(1, metrics.ScopeGroup, alarm.GroupRate, "group", group)
	}
}

// underAttack logs that wrong PINs to a number (or bridge-wide) passed the
// budget: from now on PIN answers there wait their turn. It happens once
// per attack (an attack ends after ten quiet minutes).
func (a *App) underAttack(group string) {
	l := a.state.Load().cfg.Limits
	attrs := []any{"scope", metrics.ScopeShared}
	if group != "" {
		attrs = []any{"scope", metrics.ScopeGroup, "group", group}
	}
	attrs = append(attrs, "pin_budget", l.PINBudget, "pin_budget_bridge", l.PINBudgetBridge)
	a.metrics.PINAttack(group != "")
	a.log.Warn("PIN guessing: wrong PINs past the budget; PIN answers now wait their turn", attrs...)
}

// ServeCall carries an answered call through the PIN prompt into its room.
func (a *App) ServeCall(c *sipua.Call) {
	st := a.state.Load()
	id := a.identity(c)
	who := a.caller(c, id)
	defer func() { a.tags.Touch(id, time.Now()) }()
	if blocked, _ := a.guard.Blocked(who, time.Now()); blocked {
		a.log.Info("call not admitted", "call", c.ID(), "caller", c.Label(), "outcome", "pin-blocked")
		a.metrics.CallOutcome("pin-blocked")
		a.sayAndHangup(c, st, "pin-blocked", prompt.TryLater)
		return
	}
	entry := a.lobby.Enter(c.Stream())
	defer entry.Leave()
	join, reason := a.runIVR(c, entry, st, id, who)
	if reason == "pin-blocked" {
		entry.Leave()
		a.log.Info("call not admitted", "call", c.ID(), "caller", c.Label(), "outcome", reason)
		a.metrics.CallOutcome(reason)
		a.sayAndHangup(c, st, reason, prompt.TryLater)
		return
	}
	if join == nil {
		if reason != "" {
			a.log.Info("call not admitted", "call", c.ID(), "caller", c.Label(), "outcome", reason)
			a.metrics.CallOutcome(reason)
			c.Hangup(reason)
		} else {
			a.metrics.CallOutcome("hung-up-in-ivr")
		}
		return
	}
	g := st.groups[join.Group]
	entry.Leave()
	p, err := a.conf.Join(g, conference.JoinRequest{Stream: c.Stream(), Role: join.Role, Identity: id,
		Masked: c.Label(), CallID: c.ID()})
	if err != nil {
		outcome, clip := "join-failed", prompt.Goodbye
		switch {
		case errors.Is(err, conference.ErrFull):
			outcome, clip = "group-full", prompt.GroupFull
		case errors.Is(err, conference.ErrLocked):
			outcome, clip = "locked", prompt.MeetingLocked
		case errors.Is(err, conference.ErrRemoved):
			outcome, clip = "removed", prompt.RemovedYou
		}
		a.log.Info("call not admitted", "call", c.ID(), "caller", c.Label(), "group", g.Name, "outcome", outcome)
		a.metrics.CallOutcome(outcome)
		a.sayAndHangup(c, st, outcome, clip)
		return
	}
	// Whatever ends this goroutine, a panic included, the caller leaves the
	// room: otherwise a call that is gone keeps its seat and the session.
	defer p.Leave()
	c.Admitted() // out of the PIN prompt: no longer counts against limits.setup_per_*
	a.budget.Remember(a.knownKey(id, g.Name), time.Now())
	a.metrics.CallOutcome("joined")
	a.log.Info("call joined", "call", c.ID(), "caller", c.Label(), "group", g.Name,
		"role", join.Role.String(), "seat", p.Seat(), "restored", p.Restored(), "outcome", "joined")
	for {
		select {
		case d := <-c.Digits():
			p.Key(d)
		case <-p.Done():
			c.Hangup(p.Reason())
			return
		case <-c.Context().Done():
			p.Leave()
			return
		}
	}
}

// sayAndHangup plays clips to a caller outside any room, then hangs up.
func (a *App) sayAndHangup(c *sipua.Call, st *state, reason string, names ...string) {
	entry := a.lobby.Enter(c.Stream())
	defer entry.Leave()
	var clips [][]int16
	for _, n := range names {
		if clip, ok := st.prompts.Clip(n); ok {
			clips = append(clips, clip)
		}
	}
	entry.Play(clips...)
	select {
	case <-entry.Finished():
	case <-c.Context().Done():
	case <-time.After(15 * time.Second):
	}
	c.Hangup(reason)
}

// runIVR drives the PIN state machine with the call's key presses, the
// prompts' completions and its timers. It returns the join action, or nil
// and the reason the call is to end ("" when the caller already hung up).
func (a *App) runIVR(c *sipua.Call, entry *lobby.Entry, st *state, id string, who guard.Caller) (*ivr.Action, string) {
	// The number's budget: a group's own number, or "" for the shared
	// access number (any number no group claims), which reaches every
	// group. The caller is known if known to a group it can reach.
	dialedGroup := ""
	if i := group.ByNumber(st.groups, c.Dialed()); i >= 0 {
		dialedGroup = st.groups[i].Name
	}
	var known []string
	for _, g := range st.cfg.Groups {
		if dialedGroup == "" || g.Name == dialedGroup {
			known = append(known, a.knownKey(id, g.Name))
		}
	}
	gate := a.budget.Gate(dialedGroup, time.Now(), known...)
	defer gate.Close()
	m := ivr.New(ivr.Config{Groups: st.groups, Dialed: c.Dialed(), Gate: gate})
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	var join *ivr.Action
	hangup := ""
	apply := func(acts []ivr.Action) {
		for i := range acts {
			act := acts[i]
			switch act.Kind {
			case ivr.ActPlay:
				var clips [][]int16
				for _, n := range act.Prompts {
					if clip, ok := st.prompts.Clip(n); ok {
						clips = append(clips, clip, prompt.Pause(200*time.Millisecond))
					}
				}
				entry.Play(clips...)
			case ivr.ActStopPrompt:
				entry.Stop()
			case ivr.ActJoin:
				join = &act
			case ivr.ActHangup:
				hangup = act.Reason
			}
		}
	}
	apply(m.Start(time.Now()))
	tries := 0
	// failed records wrong PINs; it reports whether the caller is now
	// blocked for guessing.
	failed := func() bool {
		blocked := false
		for ; tries < m.Tries(); tries++ {
			// For "it never let me in": who, which try, which number;
			// never the digits typed.
			attrs := []any{"call", c.ID(), "caller", c.Label(), "try", tries + 1}
			if dialedGroup != "" {
				attrs = append(attrs, "group", dialedGroup)
			}
			a.log.Info("wrong PIN", attrs...)
			a.metrics.PINFailure(dialedGroup != "")
			now := time.Now()
			b, alarm := a.guard.Fail(who, dialedGroup, now)
			blocked = blocked || b
			if alarm.Raised() {
				a.pinAlarm(alarm, dialedGroup)
			}
			if gate.Fail(now) {
				a.underAttack(dialedGroup)
			}
		}
		return blocked
	}
	for join == nil && hangup == "" && !m.Done() {
		if failed() {
			return nil, "pin-blocked"
		}
		if dl, ok := m.NextDeadline(); ok {
			timer.Reset(max(time.Until(dl), time.Millisecond))
		} else {
			timer.Reset(time.Hour)
		}
		select {
		case d := <-c.Digits():
			apply(m.Digit(d, time.Now()))
		case <-entry.Finished():
			apply(m.PromptDone(time.Now()))
		case <-entry.Failed():
			// The lobby recovered a panic on this caller's path and no
			// longer serves it: end only this call.
			a.log.Error("caller's prompt playback panicked, letting the caller go", "call", c.ID(),
				"panic", logging.RedactDigits(fmt.Sprint(entry.Fault())))
			return nil, "internal-error"
		case <-timer.C:
			apply(m.Tick(time.Now()))
		case <-c.Context().Done():
			return nil, ""
		}
	}
	if failed() && join == nil {
		return nil, "pin-blocked"
	}
	if join != nil {
		return join, ""
	}
	if hangup == "" {
		hangup = "ivr-ended"
	}
	return nil, hangup
}
