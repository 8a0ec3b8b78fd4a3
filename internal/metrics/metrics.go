// Package metrics is groupbridge's Prometheus instrumentation: the
// groupbridge_* series behind the admin listener's /metrics.
//
// It is built on the standard Prometheus Go client
// (github.com/prometheus/client_golang), served with its promhttp handler.
// Every Metrics owns a private prometheus.Registry and never touches the
// client's global DefaultRegisterer, so that tests can run several app
// instances in one process without their counts mixing or their
// registrations colliding.
//
// Two kinds of figures are exposed:
//
//   - Events the app records as they happen (CallOutcome, CallRejected,
//     PINFailure, PINAlarm, PINAttack, ObserveTick, AuthFailure, SourceBlocked,
//     RequestDropped, SetRegistration, AttendanceWriteError).
//     These are cheap and do not allocate; calling them on a nil *Metrics
//     does nothing, so code paths without metrics need no checks.
//   - State the app already keeps (active calls, rooms, RTP counters, the
//     mixing clock) read at scrape time from functions the app registers
//     (RegisterCallsActive, RegisterRooms, RegisterRTP, RegisterClock).
//     Nothing is counted twice and the hot paths pay nothing.
//
// Privacy: support groups are confidential. No label value ever comes from
// the app's strings as given: each is looked up in a fixed allow list
// (Outcomes, RejectReasons, DropReasons, RequestDropReasons,
// RegistrationStates, and the fixed scopes of the PIN series) and anything
// else is recorded as "other". So no PIN, caller number or other outside
// text can reach a label, and the number of series stays bounded.
//
// The series (all prefixed groupbridge_):
//
//	calls_total{outcome}                  counter  how calls left the IVR or were refused
//	calls_rejected_total{reason}          counter  calls refused before answer, by reason
//	pin_failures_total{scope}             counter  wrong PINs; scope=group|shared
//	pin_failure_alarms_total{scope}       counter  PIN failure rate crossed limits.pin_failure_alarm; scope=bridge|group
//	pin_attacks_total{scope}              counter  a number went past limits.pin_budget: PIN answers paced; scope=group|shared
//	sip_auth_failures_total               counter  failed digest authentications
//	sip_sources_blocked_total             counter  sources refused after repeated auth failures
//	sip_requests_dropped_total{reason}    counter  untrusted requests dropped unanswered; reason=rate-limited|scanner|not-dialog-peer
//	attendance_write_errors_total         counter  failed writes to the attendance store (the rows are retried)
//	mixer_tick_seconds                    histogram duration of one mixing tick
//	sip_registered                        gauge    1 while registered to the PBX
//	sip_registration_state{state}         gauge    one-hot: disabled|registering|registered|failed
//	calls_active                          gauge    calls up now (IVR and rooms)
//	rooms                                 gauge    rooms with a live session
//	room_members{placement}               gauge    callers in rooms; placement=room|waiting
//	rtp_packets_total{direction}          counter  datagrams in/out (RTP and RTCP)
//	rtp_bytes_total{direction}            counter  UDP payload bytes in/out
//	rtp_dropped_total{reason}             counter  datagrams or audio thrown away
//	rtp_lost_total                        counter  packets never received (sequence gaps)
//	rtp_late_total                        counter  audio packets that came after their play-out time
//	rtp_concealed_total                   counter  frames made up by loss concealment
//	rtcp_packets_total{direction}         counter  RTCP reports received and sent
//	jitter_buffer_depth_seconds           gauge    mean jitter-buffer delay over active streams
//	mixer_ticks_total                     counter  mixing clock ticks
//	mixer_late_ticks_total                counter  ticks that started late
//
// The registry also carries the client's standard go_* and process_*
// collectors (memory, goroutines, CPU, open files), which the soak and load
// checks of an operator's dashboard want beside ours.
package metrics

import (
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// namespace prefixes every series of ours.
const namespace = "groupbridge"

// tickBuckets are the upper bounds, in seconds, of mixer_tick_seconds: from
// 10 us (an idle room) to 20 ms (a whole frame period: a tick that long
// makes the next one late); anything longer lands in +Inf.
var tickBuckets = []float64{
	10e-6, 25e-6, 50e-6, 100e-6, 250e-6, 500e-6,
	1e-3, 2.5e-3, 5e-3, 10e-3, 20e-3,
}

// Handler limits: a scrape runs the app's registered functions, which take
// the app's locks, so a burst of scrapes must not pile up behind them, and
// a stuck one must not hold its client forever.
const (
	maxScrapesInFlight = 4
	scrapeTimeout      = 10 * time.Second
)

// Metrics holds one app instance's series and its private registry. Create
// it with New. All methods are safe for concurrent use; all but Handler
// and Registry do nothing on a nil *Metrics.
type Metrics struct {
	reg     *prometheus.Registry
	handler http.Handler

	// outcome[i] is calls_total{outcome=outcomes[i]}; rejected[i] and
	// rejectedOutcome[i] are the two series CallRejected(rejectReasons[i])
	// counts. The maps give the index without allocating.
	outcomeIdx      map[string]int
	rejectIdx       map[string]int
	regIdx          map[string]int
	outcome         []prometheus.Counter
	rejected        []prometheus.Counter
	rejectedOutcome []prometheus.Counter

	pinGroup, pinShared       prometheus.Counter
	alarmGroup, alarmBridge   prometheus.Counter
	attackGroup, attackShared prometheus.Counter
	dropIdx                   map[string]int
	dropped                   []prometheus.Counter
	authFailures              prometheus.Counter
	sourcesBlocked            prometheus.Counter
	attendanceErrors          prometheus.Counter
	tick                      prometheus.Histogram

	// regState is the index in registrationStates of the current state;
	// the collector turns it into both registration gauges at scrape time,
	// so that a scrape never sees a half-updated one-hot set.
	regState atomic.Uint32

	scrape *scrapeCollector
}

// New makes a Metrics with its own registry, every series registered and
// every known label value present at zero (so rate() works from the first
// event on).
func New() *Metrics {
	reg := prometheus.NewRegistry()
	m := &Metrics{
		reg:        reg,
		outcomeIdx: indexOf(outcomes),
		rejectIdx:  indexOf(rejectReasons),
		regIdx:     indexOf(registrationStates),
		dropIdx:    indexOf(requestDropReasons),
	}

	calls := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "calls_total",
		Help: "Calls by how they left the IVR or were refused (joined, wrong-pin, rejected-<reason>, ...).",
	}, []string{"outcome"})
	rejected := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "calls_rejected_total",
		Help: "Calls refused before they were answered, by reason.",
	}, []string{"reason"})
	for _, o := range outcomes {
		m.outcome = append(m.outcome, calls.WithLabelValues(o))
	}
	for _, r := range rejectReasons {
		m.rejected = append(m.rejected, rejected.WithLabelValues(r))
		m.rejectedOutcome = append(m.rejectedOutcome, calls.WithLabelValues(rejectedPrefix+r))
	}

	pin := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "pin_failures_total",
		Help: "Wrong PINs entered; scope=group for calls that dialled a group's own number, shared for the shared access number.",
	}, []string{"scope"})
	m.pinGroup = pin.WithLabelValues(ScopeGroup)
	m.pinShared = pin.WithLabelValues(ScopeShared)

	alarms := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "pin_failure_alarms_total",
		Help: "Times the wrong-PIN rate crossed limits.pin_failure_alarm: scope=bridge for the whole bridge, group for the calls to one group's number (which group is in the log, not here).",
	}, []string{"scope"})
	m.alarmBridge = alarms.WithLabelValues(ScopeBridge)
	m.alarmGroup = alarms.WithLabelValues(ScopeGroup)

	attacks := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "pin_attacks_total",
		Help: "Times wrong PINs went past limits.pin_budget (or pin_budget_bridge) and PIN answers started to be paced: scope=group for a group's own number, shared for the shared access number (which group is in the log, not here).",
	}, []string{"scope"})
	m.attackGroup = attacks.WithLabelValues(ScopeGroup)
	m.attackShared = attacks.WithLabelValues(ScopeShared)

	dropped := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "sip_requests_dropped_total",
		Help: "SIP requests from untrusted sources dropped without an answer: rate-limited (over limits.source_rate) or scanner (sip.drop_scanners).",
	}, []string{"reason"})
	for _, r := range requestDropReasons {
		m.dropped = append(m.dropped, dropped.WithLabelValues(r))
	}

	m.authFailures = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: namespace, Name: "sip_auth_failures_total",
		Help: "SIP requests whose digest authentication failed.",
	})
	m.sourcesBlocked = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: namespace, Name: "sip_sources_blocked_total",
		Help: "Times a source was refused for a while after repeated authentication failures.",
	})
	m.attendanceErrors = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: namespace, Name: "attendance_write_errors_total",
		Help: "Failed writes to the attendance store (attendance.path or attendance.dsn); the rows are kept and retried.",
	})
	m.tick = prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: namespace, Name: "mixer_tick_seconds",
		Help:    "Time one mixing tick took (all rooms of one clock, one 20 ms frame).",
		Buckets: tickBuckets,
	})

	m.scrape = newScrapeCollector(&m.regState)
	reg.MustRegister(calls, rejected, pin, alarms, attacks, dropped, m.authFailures, m.sourcesBlocked, m.attendanceErrors, m.tick, m.scrape,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	// ContinueOnError: one broken scrape-time function must not hide every
	// other series; its failure is counted in
	// promhttp_metric_handler_errors_total (hence Registry).
	m.handler = promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorHandling:       promhttp.ContinueOnError,
		Registry:            reg,
		MaxRequestsInFlight: maxScrapesInFlight,
		Timeout:             scrapeTimeout,
	})
	return m
}

// Handler serves this instance's registry in the Prometheus exposition
// formats (promhttp). Mount it at /metrics; it is the same handler on every
// call.
func (m *Metrics) Handler() http.Handler { return m.handler }

// Registry returns the private registry, for tests (prometheus/testutil) or
// to add collectors of the app's own.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// CallOutcome counts one call in groupbridge_calls_total{outcome}. The
// outcome is one of Outcomes(); anything else counts as "other".
// "rejected-<reason>" is the same as CallRejected(reason): call one or the
// other for a call, once.
func (m *Metrics) CallOutcome(outcome string) {
	if m == nil {
		return
	}
	if reason, ok := strings.CutPrefix(outcome, rejectedPrefix); ok {
		m.CallRejected(reason)
		return
	}
	i, ok := m.outcomeIdx[outcome]
	if !ok {
		i = m.outcomeIdx[Other]
	}
	m.outcome[i].Inc()
}

// CallRejected counts one call refused before answer, in both
// groupbridge_calls_rejected_total{reason} and
// groupbridge_calls_total{outcome="rejected-<reason>"}, so that calls_total
// holds every call exactly once. The reason is one of RejectReasons();
// anything else counts as "other".
func (m *Metrics) CallRejected(reason string) {
	if m == nil {
		return
	}
	i, ok := m.rejectIdx[reason]
	if !ok {
		i = m.rejectIdx[Other]
	}
	m.rejected[i].Inc()
	m.rejectedOutcome[i].Inc()
}

// Values of the scope label of the PIN series; the log lines about PIN
// guessing name their scope with the same words. One word, one set of
// calls: pin_failures_total said "global" for what pin_attacks_total calls
// "shared" until both said "shared".
const (
	// ScopeGroup: the calls that dialled one group's own number.
	ScopeGroup = "group"
	// ScopeShared: the calls to the shared access number (a number no
	// group claims), which reaches every group.
	ScopeShared = "shared"
	// ScopeBridge: all calls together, whatever number they dialled.
	ScopeBridge = "bridge"
)

// PINFailure counts one wrong PIN in groupbridge_pin_failures_total. Pass
// groupScoped for a call that dialled a group's own number (scope="group"),
// so that guessing aimed at one group shows apart from guessing at the
// shared number (scope="shared").
func (m *Metrics) PINFailure(groupScoped bool) {
	if m == nil {
		return
	}
	if groupScoped {
		m.pinGroup.Inc()
	} else {
		m.pinShared.Inc()
	}
}

// PINAlarm counts one crossing of the wrong-PIN alarm level in
// groupbridge_pin_failure_alarms_total: groupScoped for the rate of the
// calls to one group's number (scope="group"), else the whole bridge's
// (scope="bridge"). The group itself is never a label: a support group's
// name is for the operator's log, not for every dashboard.
func (m *Metrics) PINAlarm(groupScoped bool) {
	if m == nil {
		return
	}
	if groupScoped {
		m.alarmGroup.Inc()
	} else {
		m.alarmBridge.Inc()
	}
}

// PINAttack counts one start of PIN pacing in groupbridge_pin_attacks_total:
// groupScoped for a group's own number (scope="group"), else the shared
// access number (scope="shared").
func (m *Metrics) PINAttack(groupScoped bool) {
	if m == nil {
		return
	}
	if groupScoped {
		m.attackGroup.Inc()
	} else {
		m.attackShared.Inc()
	}
}

// RequestDropped counts one SIP request dropped unanswered in
// groupbridge_sip_requests_dropped_total{reason}. The reason is one of
// RequestDropReasons(); anything else counts as "other".
func (m *Metrics) RequestDropped(reason string) {
	if m == nil {
		return
	}
	i, ok := m.dropIdx[reason]
	if !ok {
		i = m.dropIdx[Other]
	}
	m.dropped[i].Inc()
}

// AuthFailure counts one failed SIP digest authentication
// (groupbridge_sip_auth_failures_total).
func (m *Metrics) AuthFailure() {
	if m == nil {
		return
	}
	m.authFailures.Inc()
}

// AttendanceWriteError counts one failed write to the attendance store
// (groupbridge_attendance_write_errors_total).
func (m *Metrics) AttendanceWriteError() {
	if m == nil {
		return
	}
	m.attendanceErrors.Inc()
}

// SourceBlocked counts one source refused for a while after repeated
// authentication failures (groupbridge_sip_sources_blocked_total).
func (m *Metrics) SourceBlocked() {
	if m == nil {
		return
	}
	m.sourcesBlocked.Inc()
}

// ObserveTick records how long one mixing tick took in the
// groupbridge_mixer_tick_seconds histogram (buckets 10 us to 20 ms). It
// runs on the mixing clock every 20 ms and does not allocate.
func (m *Metrics) ObserveTick(d time.Duration) {
	if m == nil {
		return
	}
	m.tick.Observe(d.Seconds())
}

// SetRegistration records the state of registering to the PBX: one of the
// Registration* constants. groupbridge_sip_registered is 1 only in
// RegistrationRegistered, and groupbridge_sip_registration_state{state} is 1
// for the current state and 0 for the others. A state this package does
// not know is recorded as RegistrationFailed: not registered, which is what
// an alert on it should assume.
func (m *Metrics) SetRegistration(state string) {
	if m == nil {
		return
	}
	i, ok := m.regIdx[state]
	if !ok {
		i = m.regIdx[RegistrationFailed]
	}
	m.regState.Store(uint32(i))
}

// RegisterCallsActive makes f the source of groupbridge_calls_active, read
// at each scrape: every call that is up, in the IVR or in a room. A later
// call replaces f; nil removes the series.
func (m *Metrics) RegisterCallsActive(f func() int) {
	if m == nil {
		return
	}
	m.scrape.mu.Lock()
	defer m.scrape.mu.Unlock()
	m.scrape.callsActive = f
}

// RegisterRooms makes f the source of groupbridge_rooms (rooms with a live
// session) and groupbridge_room_members{placement}: members in the mix
// (placement="room") and callers held in a room's waiting area
// (placement="waiting"), counted apart so that the two add up to everyone
// in a room. f is read at each scrape; a later call replaces it; nil
// removes the series.
func (m *Metrics) RegisterRooms(f func() (rooms, members, waiting int)) {
	if m == nil {
		return
	}
	m.scrape.mu.Lock()
	defer m.scrape.mu.Unlock()
	m.scrape.rooms = f
}

// RTPStats are the media figures RegisterRTP's function returns: totals
// since the app started, over every stream that ever existed (closed
// streams included), since they become counters and a counter that goes
// down reads as a restart. See RegisterRTP for the series each field feeds.
type RTPStats struct {
	// PacketsIn, PacketsOut, BytesIn and BytesOut count datagrams (RTP and
	// RTCP) and their UDP payload bytes.
	PacketsIn, PacketsOut, BytesIn, BytesOut uint64
	// Lost counts packets never received, from sequence-number gaps.
	Lost uint64
	// Late counts audio packets that arrived after their play-out time.
	Late uint64
	// Concealed counts frames made up by loss concealment.
	Concealed uint64
	// RTCPIn and RTCPOut count RTCP reports received (valid, from the
	// latched source) and sent.
	RTCPIn, RTCPOut uint64
	// Dropped counts discarded datagrams or audio by reason (DropReasons).
	// It is read at scrape time only; a key outside DropReasons adds to
	// "other".
	Dropped map[string]uint64
	// JitterDepthSeconds is the mean current jitter-buffer delay over the
	// active streams (0 with none). The mean, not the maximum: one caller
	// on a bad line would otherwise hide how the bridge serves everyone
	// else; per-caller figures belong in the admin API.
	JitterDepthSeconds float64
}

// RegisterRTP makes f the source of the media series, read at each scrape:
// groupbridge_rtp_packets_total{direction=in|out},
// groupbridge_rtp_bytes_total{direction}, groupbridge_rtp_dropped_total
// {reason}, groupbridge_rtp_lost_total, groupbridge_rtp_late_total,
// groupbridge_rtp_concealed_total, groupbridge_rtcp_packets_total
// {direction} and the gauge groupbridge_jitter_buffer_depth_seconds.
// A later call replaces f; nil removes the series.
func (m *Metrics) RegisterRTP(f func() RTPStats) {
	if m == nil {
		return
	}
	m.scrape.mu.Lock()
	defer m.scrape.mu.Unlock()
	m.scrape.rtp = f
}

// RegisterClock makes f the source of groupbridge_mixer_ticks_total and
// groupbridge_mixer_late_ticks_total: the mixing clock's ticks and the ones
// that started late, since the app started. Read at each scrape; a later
// call replaces f; nil removes the series.
func (m *Metrics) RegisterClock(f func() (ticks, late int64)) {
	if m == nil {
		return
	}
	m.scrape.mu.Lock()
	defer m.scrape.mu.Unlock()
	m.scrape.clock = f
}
