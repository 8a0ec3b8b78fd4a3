// Package app is the composition root: it builds the bridge from a validated
// configuration (prompts, RTP engine, clock, conference, call flow, SIP,
// admin, metrics), hands each answered call to callflow, distributes a
// reload and drains and stops the whole.
//
// It owns no rules of its own and must not grow a call's logic: a call's
// life is callflow's, PIN entry is ivr's, a session's rules are
// conference/rules', SIP is sipua's, and the words for groups are
// internal/group's.
package app

import (
	"context"
	"crypto/rand"
	"crypto/tls"
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
	"github.com/groupbridge/groupbridge/internal/attendance"
	"github.com/groupbridge/groupbridge/internal/attendance/store"
	"github.com/groupbridge/groupbridge/internal/callflow"
	"github.com/groupbridge/groupbridge/internal/conference"
	"github.com/groupbridge/groupbridge/internal/conference/rules"
	"github.com/groupbridge/groupbridge/internal/group"
	"github.com/groupbridge/groupbridge/internal/guard"
	"github.com/groupbridge/groupbridge/internal/lobby"
	"github.com/groupbridge/groupbridge/internal/logging"
	"github.com/groupbridge/groupbridge/internal/metrics"
	"github.com/groupbridge/groupbridge/internal/readings"
	"github.com/groupbridge/groupbridge/internal/sipua"
	"github.com/groupbridge/groupbridge/internal/wallclock"
	"github.com/groupbridge/groupbridge/media/clock"
	"github.com/groupbridge/groupbridge/media/pcm"
	"github.com/groupbridge/groupbridge/media/prompt"
	"github.com/groupbridge/groupbridge/media/rtpio"
)

// Options are the process-level things a configuration does not hold.
type Options struct {
	// LogOutput receives the log; nil means io.Discard.
	LogOutput io.Writer
	// LogLevel is the minimum level logged (default Info).
	LogLevel slog.Leveler

	// Clock runs groupbridge's own wall-time timers (internal/wallclock):
	// the SIP layer's ACK wait, ringing, media timeouts and limits, the
	// call flow's PIN prompt timeouts and PIN limits, a room's session
	// start and the waits for a room's answer; nil is the real time. The
	// media clock is not it. Tests pass testkit.ManualClock and move it by
	// hand.
	Clock wallclock.Clock
}

// App is a running bridge.
type App struct {
	cfg     *config.Config // as started; settings that need a restart come from here
	state   atomic.Pointer[state]
	log     *slog.Logger
	clock   *clock.Clock
	engine  *rtpio.Engine
	conf    *conference.Conference
	lobby   *lobby.Lobby
	sip     *sipua.Server
	metrics *metrics.Metrics
	guard   *guard.PINGuard
	budget  *guard.Budget
	flow    *callflow.Flow
	admin   *http.Server // nil when admin.listen is ""
	adminLn net.Listener
	reload  sync.Mutex

	cluster *clusterPart // nil on a single node

	store  *store.Store  // the attendance store, read by the console and API
	record *store.Writer // the attendance Recorder of the rooms and the call flow

	stopOnce  sync.Once
	stopErr   error
	storeOnce sync.Once // closeStore's
}

// openTimeout bounds opening the attendance store at start (migrating it;
// the store itself gives up on a PostgreSQL server that does not answer
// after 5 s and starts without it); storeFlushWait bounds writing what is
// queued at a stop, after the rooms have recorded the sessions it ended.
const (
	openTimeout    = 30 * time.Second
	storeFlushWait = 5 * time.Second
)

// state is what a reload may change: groups and prompts. A call takes one
// snapshot when it starts, so a reload never changes the rules mid-call.
type state struct {
	cfg      *config.Config
	groups   []group.Group // cfg.Groups as the call's packages take them
	prompts  *prompt.Set
	readings *readings.Library
}

func newState(cfg *config.Config, prompts *prompt.Set, lib *readings.Library) *state {
	return &state{cfg: cfg, prompts: prompts, readings: lib, groups: cfg.RuntimeGroups()}
}

// loadReadings loads the groups' greetings and readings (prompts.dir/readings/),
// reusing what prev (nil at start) holds of files unchanged since.
func loadReadings(cfg *config.Config, prev *readings.Library) (*readings.Library, error) {
	return readings.Load(cfg.Prompts.Dir, cfg.Prompts.ReadingsMax, cfg.RuntimeGroups(), prev)
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
	lib, err := loadReadings(cfg, nil)
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
	a.state.Store(newState(cfg, prompts, lib))
	a.guard = guard.New(guard.Config{AlarmRate: cfg.Limits.PINFailureAlarm})
	a.budget = guard.NewBudget(a.budgetConfig(cfg))
	a.clock = clock.New(0, log, a.onTickPanic)
	a.metrics = metrics.New()
	a.clock.Observe(a.metrics.ObserveTick)
	if err := a.openStore(opts.Clock); err != nil {
		_ = engine.Close()
		return nil, err
	}
	started := false
	defer func() {
		if !started {
			a.closeStore()
			if a.cluster != nil {
				_ = a.cluster.rdb.Close()
			}
		}
	}()
	if cfg.Cluster.Clustered() {
		if a.cluster, err = openCluster(cfg.Cluster, cfg.Admin.Listen, opts.Clock, a); err != nil {
			_ = engine.Close()
			return nil, err
		}
		// Three nodes must not give a guesser three budgets.
		a.guard = guard.New(guard.Config{AlarmRate: cfg.Limits.PINFailureAlarm, Shared: a.cluster.guards})
		a.budget = guard.NewBudget(a.budgetConfig(cfg))
	}
	var mirror func(string, rules.Snapshot)
	var unmirror func(string)
	var fenced func(string) bool
	if a.cluster != nil {
		mirror, unmirror, fenced = a.cluster.mirrorRoom, a.cluster.unmirrorRoom, a.cluster.fenced
	}
	a.conf = conference.New(conference.Config{
		Mirror:      mirror,
		MirrorEnded: unmirror,
		Fenced:      fenced,
		Media:       a.clock,
		Prompts:     prompts,
		Readings:    lib,
		Log:         log,
		Audio: conference.Audio{
			MaxTalkers:   cfg.Audio.MaxTalkers,
			AGC:          cfg.Audio.AGC,
			ComfortNoise: cfg.Audio.ComfortNoise,
		},
		Clock:      opts.Clock,
		Attendance: a.record,
	})
	if a.flow, err = a.newFlow(opts.Clock); err != nil {
		_ = engine.Close()
		return nil, err
	}
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
	sipCfg := sipua.Config{
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
		Clock:           opts.Clock,
		// Never nil: an empty list means "trust nobody".
		Trusted:              cfg.SIP.TrustedPrefixes(),
		AssertIdentity:       assertPrefixes,
		AssertTrusted:        assertTrusted,
		NoIdentity:           cfg.SIP.NoIdentityPrefixes(),
		CallerLabel:          func(c *sipua.Call) string { return a.flow.Label(c) },
		Users:                users,
		Register:             reg,
		MediaExternalAddress: cfg.RTP.ExternalAddress,
		MediaSources:         cfg.RTP.MediaSourcePrefixes(),
		Proxies:              cfg.Cluster.ProxyPrefixes(), // nil without cluster.proxies
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
	}
	if a.sip, err = sipua.New(sipCfg); err != nil {
		_ = engine.Close()
		return nil, err
	}
	if a.cluster != nil {
		if err := a.newClusterSIP(sipCfg); err != nil {
			_ = engine.Close()
			return nil, err
		}
	}
	a.registerMetrics()
	if reg == nil {
		a.metrics.SetRegistration(metrics.RegistrationDisabled)
	} else {
		a.metrics.SetRegistration(metrics.RegistrationRegistering)
	}
	started = true
	return a, nil
}

// openStore opens the attendance store (attendance.path, or attendance.dsn
// when set) and starts its writer; an error names the key, never the DSN's
// secrets (the store redacts them). A PostgreSQL server that cannot be
// reached is no error: the store logs it and the writer connects later, so
// a node restarting while the shared database is down still takes calls.
// clk is Options.Clock.
func (a *App) openStore(clk wallclock.Clock) error {
	c := a.cfg.Attendance
	key := "attendance.path"
	if c.DSN != "" {
		key = "attendance.dsn"
	}
	ctx, cancel := context.WithTimeout(context.Background(), openTimeout)
	defer cancel()
	st, err := store.Open(ctx, store.Options{Path: c.Path, DSN: c.DSN, Keep: c.Keep, Clock: clk, Log: a.log})
	if err != nil {
		if !strings.HasPrefix(err.Error(), key+":") { // the store names it for some errors
			err = fmt.Errorf("%s: %w", key, err)
		}
		return err
	}
	a.store = st
	a.record = st.NewWriter(store.WriterOptions{OnError: a.metrics.AttendanceWriteError})
	if st.Ready() {
		a.log.Info("attendance store open", "store", st.Where())
	}
	return nil
}

// closeStore writes what the writer holds (bounded by storeFlushWait) and
// closes the store. The rooms must have ended their sessions first: a
// record given after is lost.
func (a *App) closeStore() {
	if a.store == nil {
		return
	}
	a.storeOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), storeFlushWait)
		defer cancel()
		if err := a.record.Close(ctx); err != nil {
			a.log.Error("attendance not all written at the stop", "error", err.Error())
		}
		if err := a.store.Close(); err != nil {
			a.log.Error("attendance store close", "error", err.Error())
		}
	})
}

// Attendance returns the attendance store's reader (the console and the
// admin API show it).
func (a *App) Attendance() attendance.Reader { return a.store }

// newFlow builds the call flow from the bridge's parts; clk is
// Options.Clock.
func (a *App) newFlow(clk wallclock.Clock) (*callflow.Flow, error) {
	fc := callflow.Config{
		Settings: a.settings,
		Lobby:    a.lobby,
		Join: func(_ callflow.Call, g group.Group, r conference.JoinRequest) (callflow.Member, error) {
			return a.joinHere(g, r)
		},
		JoinHere:      a.joinHere,
		Rejoining:     a.conf.Rejoining,
		Attendance:    a.record,
		Guard:         a.guard,
		Budget:        a.budget,
		Metrics:       a.metrics,
		Log:           a.log,
		MaskedCallers: a.cfg.Log.Callers == config.LogCallersMasked,
		TagZone:       time.Local,
		Clock:         clk,
		GuardOffTick:  a.cluster != nil, // the PIN limits ask Redis
	}
	// The per-start key that recognises callers; memory only.
	if _, err := rand.Read(fc.Key[:]); err != nil {
		return nil, fmt.Errorf("identity key: %w", err)
	}
	if cp := a.cluster; cp != nil {
		// Every node recognises a caller alike: the cluster's key.
		fc.Join = cp.join
		warned := &logging.Throttle{Every: time.Minute}
		fc.IdentityKey = cp.identityKey(fc.Key, func(err error) {
			if warned.Allow(time.Now()) {
				a.log.Warn("cluster: the shared identity key cannot be had; this node's own is used", "error", err.Error())
			}
		})
	}
	return callflow.New(fc)
}

// joinHere seats a caller in its group's room on this node.
func (a *App) joinHere(g group.Group, r conference.JoinRequest) (callflow.Member, error) {
	p, err := a.conf.Join(g, r)
	if err != nil {
		return nil, err // not a nil *Participant in a non-nil Member
	}
	return p, nil
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

// budgetConfig is the PIN budget's part of a configuration, shared with
// the cluster's other nodes on a cluster node.
func (a *App) budgetConfig(cfg *config.Config) guard.BudgetConfig {
	bc := budgetConfigOf(cfg)
	if a.cluster != nil {
		bc.Shared = a.cluster.guards
	}
	return bc
}

// budgetConfigOf is the PIN budget's part of a configuration.
func budgetConfigOf(cfg *config.Config) guard.BudgetConfig {
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
				"stale-epoch":          d.StaleEpoch,
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
	var tlsConf *tls.Config
	if a.cfg.Admin.TLS != nil {
		var err error
		if tlsConf, err = a.cfg.Admin.TLS.LoadAs("admin.tls"); err != nil {
			return err
		}
	}
	ln, err := net.Listen("tcp", a.cfg.Admin.Listen)
	if err != nil {
		return fmt.Errorf("admin.listen %s: %w", a.cfg.Admin.Listen, err)
	}
	a.adminLn = ln
	h := a.AdminHandler(a.cfg.Admin.Token)
	a.admin = &http.Server{
		Handler:           h,
		TLSConfig:         tlsConf,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       60 * time.Second,
		ErrorLog:          slog.NewLogLogger(logging.Library(a.log, slog.LevelWarn, "http").Handler(), slog.LevelWarn),
	}
	// Shutdown waits for open requests: the console's event streams end
	// only when told.
	a.admin.RegisterOnShutdown(h.Close)
	go func() {
		var err error
		if tlsConf != nil {
			err = a.admin.ServeTLS(ln, "", "") // the certificate is in TLSConfig
		} else {
			err = a.admin.Serve(ln)
		}
		if err != nil && !errors.Is(err, http.ErrServerClosed) {
			a.log.Error("admin listener stopped", "error", err.Error())
		}
	}()
	a.log.Info("listening", "admin", ln.Addr().String(), "https", tlsConf != nil)
	return nil
}

// AdminAddr returns the admin listener's address, or "" when it is off.
func (a *App) AdminAddr() string {
	if a.adminLn == nil {
		return ""
	}
	return a.adminLn.Addr().String()
}

// AdminHandler is the operator's HTTP API and console: /healthz, /metrics,
// /api/..., and / in a browser. Every action goes through the session
// rules, like the keypad.
func (a *App) AdminHandler(token string) *admin.Handler {
	var rooms admin.Rooms = a.conf
	if a.cluster != nil {
		rooms = clusterRooms{Conference: a.conf, node: a.cluster.cfg.Node, router: a.cluster.router}
	}
	cfg := admin.Config{
		Token:   token,
		Hosts:   adminHosts(&a.cfg.Admin),
		Rooms:   rooms,
		Drain:   a.Drain,
		Metrics: a.metrics.Handler(),
		Health:  a.health,
		Logger:  a.log,
	}
	if a.store != nil {
		cfg.Attendance = a.store
	}
	return admin.NewHandler(cfg)
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
	// And last: send the bundles of audio the rooms' ticks gathered for
	// relay nodes (nothing without a cluster).
	a.clock.AddLast(a.engine.BundleFlusher())
	a.clock.Start()
	if err := a.sip.Start(); err != nil {
		a.clock.Stop()
		_ = a.engine.Close()
		a.closeStore()
		return err
	}
	for _, l := range a.sip.Addrs() {
		a.log.Info("listening", "sip", l.String())
	}
	if a.cluster != nil {
		if err := a.cluster.start(); err != nil {
			a.sip.Close()
			a.clock.Stop()
			_ = a.engine.Close()
			a.closeStore()
			return err
		}
		a.log.Info("cluster node", "node", a.cluster.cfg.Node, "internal", a.cluster.listenAddr().String(),
			"redis", a.cluster.cfg.RedactedRedis())
	}
	if err := a.startAdmin(); err != nil {
		a.sip.Close()
		a.clock.Stop()
		_ = a.engine.Close()
		a.closeStore()
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
// everything, the attendance store last: the sessions the stop ends are
// recorded. Called again, it returns the first call's result.
func (a *App) Shutdown(ctx context.Context) error {
	a.stopOnce.Do(func() { a.stopErr = a.shutdown(ctx) })
	return a.stopErr
}

func (a *App) shutdown(ctx context.Context) error {
	a.sip.Drain()
	if a.cluster != nil {
		// Rooms other nodes' callers sit in go on there.
		a.cluster.draining()
	}
	if a.sip.ActiveCalls() > 0 {
		st := a.state.Load()
		a.conf.Announce([]string{prompt.ClosingMaintenance})
		a.lobby.Announce(func(lang string) [][]int16 {
			clip, _ := st.prompts.In(lang).Clip(prompt.ClosingMaintenance)
			return [][]int16{clip}
		})
		// Let the message play in its longest language, but never past
		// the deadline. Real time, not Options.Clock: the media clock
		// plays it in real time.
		longest := 0
		for _, lang := range st.prompts.Languages() {
			clip, _ := st.prompts.In(lang).Clip(prompt.ClosingMaintenance)
			longest = max(longest, len(clip))
		}
		wait := time.Duration(longest)*time.Second/8000 + 300*time.Millisecond
		select {
		case <-time.After(wait):
		case <-ctx.Done():
		}
	}
	err := a.sip.Shutdown(ctx)
	if a.admin != nil {
		_ = a.admin.Shutdown(ctx)
	}
	a.conf.Close() // the rooms record the sessions it ends
	if a.cluster != nil {
		if cerr := a.cluster.stop(ctx); cerr != nil && err == nil {
			err = cerr
		}
	}
	a.clock.Stop()
	if cerr := a.engine.Close(); cerr != nil && err == nil {
		err = cerr
	}
	a.closeStore()
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

// Reload applies a new configuration's live keys (config.ReloadLive):
// groups and PINs to calls that start from now on, prompts to every room
// from its next announcement on, the limits at once. Live sessions go on;
// a removed group's session runs to its end; a live meeting takes its
// group's new hours (Conference.SetHours). A changed key that needs a
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
	lib, err := loadReadings(cfg, a.state.Load().readings)
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
	a.budget.SetConfig(a.budgetConfig(cfg))
	a.state.Store(newState(cfg, prompts, lib))
	a.conf.SetPrompts(prompts)
	a.conf.SetReadings(lib)
	// A live meeting takes its group's reloaded hours (its end may move).
	a.conf.SetHours(a.state.Load().groups)
	a.log.Info("configuration reloaded", "groups", len(cfg.Groups), "groups_before", len(old.Groups))
	return nil
}

// DrainTimeout is drain_timeout as last loaded: how long a stop may take.
func (a *App) DrainTimeout() time.Duration { return a.state.Load().cfg.DrainTimeout }

// Drain stops taking new calls (503); calls in progress go on until their
// sessions end by themselves.
func (a *App) Drain() {
	a.sip.Drain()
	if a.cluster != nil {
		a.cluster.draining()
	}
	a.log.Info("draining: new calls are refused, sessions go on")
}

// ServeCall carries an answered call through its life (callflow).
func (a *App) ServeCall(c *sipua.Call) { a.flow.Serve(sipCall{c}) }

// sipCall is a SIP call as the call flow takes it: its stream as the
// pcm.Stream the lobby and the rooms play to.
type sipCall struct{ *sipua.Call }

func (c sipCall) Stream() pcm.Stream { return c.Call.Stream() }

// settings is the call flow's view of the latest reload.
func (a *App) settings() *callflow.Settings {
	st := a.state.Load()
	l := st.cfg.Limits
	return &callflow.Settings{Groups: st.groups, Prompts: st.prompts, Readings: st.readings, Languages: st.cfg.Prompts.Offered(),
		PINFailureAlarm: l.PINFailureAlarm, PINBudget: l.PINBudget, PINBudgetBridge: l.PINBudgetBridge}
}
