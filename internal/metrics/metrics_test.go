package metrics

import (
	"bufio"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// ourNames are every series family this package exposes, as the README
// lists them.
var ourNames = []string{
	"groupbridge_calls_total",
	"groupbridge_calls_rejected_total",
	"groupbridge_pin_failures_total",
	"groupbridge_pin_failure_alarms_total",
	"groupbridge_pin_attacks_total",
	"groupbridge_sip_requests_dropped_total",
	"groupbridge_sip_auth_failures_total",
	"groupbridge_sip_sources_blocked_total",
	"groupbridge_attendance_write_errors_total",
	"groupbridge_mixer_tick_seconds",
	"groupbridge_sip_registered",
	"groupbridge_sip_registration_state",
	"groupbridge_calls_active",
	"groupbridge_rooms",
	"groupbridge_room_members",
	"groupbridge_rtp_packets_total",
	"groupbridge_rtp_bytes_total",
	"groupbridge_rtp_dropped_total",
	"groupbridge_rtp_lost_total",
	"groupbridge_rtp_late_total",
	"groupbridge_rtp_concealed_total",
	"groupbridge_rtcp_packets_total",
	"groupbridge_jitter_buffer_depth_seconds",
	"groupbridge_mixer_ticks_total",
	"groupbridge_mixer_late_ticks_total",
}

// scrapeBody fetches /metrics from m's handler over a real loopback HTTP
// server, the way Prometheus does.
func scrapeBody(t testing.TB, m *Metrics) string {
	t.Helper()
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	res, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatalf("scrape: %v", err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("read scrape: %v", err)
	}
	if res.StatusCode != http.StatusOK {
		t.Fatalf("scrape: status %d: %s", res.StatusCode, body)
	}
	return string(body)
}

// parseSeries reads the text exposition format into series -> value, the
// series written as in the body: name{label="value",...} with the labels
// in the order the encoder gives (sorted by name).
func parseSeries(t testing.TB, body string) map[string]float64 {
	t.Helper()
	out := map[string]float64{}
	sc := bufio.NewScanner(strings.NewReader(body))
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			t.Fatalf("bad exposition line %q", line)
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("bad value in %q: %v", line, err)
		}
		out[line[:i]] = v
	}
	return out
}

func scrape(t testing.TB, m *Metrics) map[string]float64 {
	t.Helper()
	return parseSeries(t, scrapeBody(t, m))
}

// ours keeps only the groupbridge_ series.
func ours(s map[string]float64) map[string]float64 {
	out := map[string]float64{}
	for k, v := range s {
		if strings.HasPrefix(k, namespace+"_") {
			out[k] = v
		}
	}
	return out
}

// diff returns the series whose value differs between before and after
// (appearing series count from 0).
func diff(before, after map[string]float64) map[string]float64 {
	out := map[string]float64{}
	for k, v := range after {
		if d := v - before[k]; d != 0 {
			out[k] = d
		}
	}
	for k, v := range before {
		if _, ok := after[k]; !ok {
			out[k] = -v
		}
	}
	return out
}

func TestNewExposesEventSeriesAtZero(t *testing.T) {
	s := scrape(t, New())
	want := map[string]float64{
		`groupbridge_pin_failures_total{scope="group"}`:                 0,
		`groupbridge_pin_failures_total{scope="shared"}`:                0,
		`groupbridge_pin_failure_alarms_total{scope="bridge"}`:          0,
		`groupbridge_pin_failure_alarms_total{scope="group"}`:           0,
		`groupbridge_pin_attacks_total{scope="group"}`:                  0,
		`groupbridge_pin_attacks_total{scope="shared"}`:                 0,
		`groupbridge_sip_requests_dropped_total{reason="rate-limited"}`: 0,
		`groupbridge_sip_requests_dropped_total{reason="scanner"}`:      0,
		`groupbridge_sip_requests_dropped_total{reason="other"}`:        0,
		`groupbridge_sip_auth_failures_total`:                           0,
		`groupbridge_sip_sources_blocked_total`:                         0,
		`groupbridge_attendance_write_errors_total`:                     0,
		`groupbridge_mixer_tick_seconds_count`:                          0,
		`groupbridge_sip_registered`:                                    0,
		`groupbridge_sip_registration_state{state="disabled"}`:          1,
		`groupbridge_sip_registration_state{state="registering"}`:       0,
		`groupbridge_sip_registration_state{state="registered"}`:        0,
		`groupbridge_sip_registration_state{state="failed"}`:            0,
		`groupbridge_mixer_tick_seconds_bucket{le="0.02"}`:              0,
		`groupbridge_mixer_tick_seconds_bucket{le="1e-05"}`:             0,
		`groupbridge_mixer_tick_seconds_bucket{le="+Inf"}`:              0,
		`groupbridge_mixer_tick_seconds_sum`:                            0,
		`groupbridge_mixer_tick_seconds_bucket{le="0.0001"}`:            0,
		`groupbridge_mixer_tick_seconds_bucket{le="0.01"}`:              0,
		`groupbridge_mixer_tick_seconds_bucket{le="2.5e-05"}`:           0,
		`groupbridge_mixer_tick_seconds_bucket{le="5e-05"}`:             0,
		`groupbridge_mixer_tick_seconds_bucket{le="0.00025"}`:           0,
		`groupbridge_mixer_tick_seconds_bucket{le="0.0005"}`:            0,
		`groupbridge_mixer_tick_seconds_bucket{le="0.001"}`:             0,
		`groupbridge_mixer_tick_seconds_bucket{le="0.0025"}`:            0,
		`groupbridge_mixer_tick_seconds_bucket{le="0.005"}`:             0,
		`promhttp_metric_handler_errors_total{cause="gathering"}`:       0,
		`promhttp_metric_handler_errors_total{cause="encoding"}`:        0,
	}
	for k, v := range want {
		got, ok := s[k]
		if !ok {
			t.Errorf("series %s missing", k)
		} else if got != v {
			t.Errorf("%s = %v, want %v", k, got, v)
		}
	}
	// Every known outcome and reason is there, and nothing else.
	var calls, rejected []string
	for k := range s {
		if v, ok := strings.CutPrefix(k, `groupbridge_calls_total{outcome="`); ok {
			calls = append(calls, strings.TrimSuffix(v, `"}`))
		}
		if v, ok := strings.CutPrefix(k, `groupbridge_calls_rejected_total{reason="`); ok {
			rejected = append(rejected, strings.TrimSuffix(v, `"}`))
		}
	}
	slices.Sort(calls)
	slices.Sort(rejected)
	if want := slices.Sorted(slices.Values(Outcomes())); !slices.Equal(calls, want) {
		t.Errorf("calls_total outcomes = %v, want %v", calls, want)
	}
	if want := slices.Sorted(slices.Values(RejectReasons())); !slices.Equal(rejected, want) {
		t.Errorf("calls_rejected_total reasons = %v, want %v", rejected, want)
	}
	// The scrape-time series appear only once their function is registered.
	for _, name := range []string{"groupbridge_calls_active", "groupbridge_rooms", "groupbridge_rtp_", "groupbridge_rtcp_", "groupbridge_jitter_", "groupbridge_mixer_ticks_total", "groupbridge_mixer_late"} {
		for k := range s {
			if strings.HasPrefix(k, name) {
				t.Errorf("%s present before its function was registered", k)
			}
		}
	}
	// The client's standard collectors are there.
	for _, k := range []string{"go_goroutines", "process_open_fds"} {
		if _, ok := s[k]; !ok {
			t.Errorf("series %s missing", k)
		}
	}
}

func TestCallOutcomeAndRejected(t *testing.T) {
	const (
		calls    = `groupbridge_calls_total{outcome="%s"}`
		rejected = `groupbridge_calls_rejected_total{reason="%s"}`
	)
	c := func(o string) string { return strings.Replace(calls, "%s", o, 1) }
	r := func(o string) string { return strings.Replace(rejected, "%s", o, 1) }
	tests := []struct {
		name   string
		record func(m *Metrics)
		want   map[string]float64
	}{
		{"joined", func(m *Metrics) { m.CallOutcome("joined") }, map[string]float64{c("joined"): 1}},
		{"wrong pin twice", func(m *Metrics) { m.CallOutcome("wrong-pin"); m.CallOutcome("wrong-pin") }, map[string]float64{c("wrong-pin"): 2}},
		{"hung up in ivr", func(m *Metrics) { m.CallOutcome("hung-up-in-ivr") }, map[string]float64{c("hung-up-in-ivr"): 1}},
		{"unknown outcome", func(m *Metrics) { m.CallOutcome("exploded") }, map[string]float64{c("other"): 1}},
		{"case matters", func(m *Metrics) { m.CallOutcome("Joined") }, map[string]float64{c("other"): 1}},
		{"empty outcome", func(m *Metrics) { m.CallOutcome("") }, map[string]float64{c("other"): 1}},
		{"rejected outcome", func(m *Metrics) { m.CallOutcome("rejected-sdp") }, map[string]float64{c("rejected-sdp"): 1, r("sdp"): 1}},
		{"rejected unknown outcome", func(m *Metrics) { m.CallOutcome("rejected-teapot") }, map[string]float64{c("rejected-other"): 1, r("other"): 1}},
		{"rejected empty outcome", func(m *Metrics) { m.CallOutcome("rejected-") }, map[string]float64{c("rejected-other"): 1, r("other"): 1}},
		{"rejected", func(m *Metrics) { m.CallRejected("ports-exhausted") }, map[string]float64{c("rejected-ports-exhausted"): 1, r("ports-exhausted"): 1}},
		{"rejected scanner", func(m *Metrics) { m.CallRejected("scanner") }, map[string]float64{c("rejected-scanner"): 1, r("scanner"): 1}},
		{"rejected unknown", func(m *Metrics) { m.CallRejected("because") }, map[string]float64{c("rejected-other"): 1, r("other"): 1}},
		{"rejected prefix twice", func(m *Metrics) { m.CallRejected("rejected-sdp") }, map[string]float64{c("rejected-other"): 1, r("other"): 1}},
		{"pin failure in group", func(m *Metrics) { m.PINFailure(true) }, map[string]float64{`groupbridge_pin_failures_total{scope="group"}`: 1}},
		{"pin failure shared", func(m *Metrics) { m.PINFailure(false); m.PINFailure(false) }, map[string]float64{`groupbridge_pin_failures_total{scope="shared"}`: 2}},
		{"auth failure", func(m *Metrics) { m.AuthFailure() }, map[string]float64{`groupbridge_sip_auth_failures_total`: 1}},
		{"source blocked", func(m *Metrics) { m.SourceBlocked() }, map[string]float64{`groupbridge_sip_sources_blocked_total`: 1}},
		{"attendance write error", func(m *Metrics) { m.AttendanceWriteError() }, map[string]float64{`groupbridge_attendance_write_errors_total`: 1}},
		{"pin alarm bridge", func(m *Metrics) { m.PINAlarm(false) }, map[string]float64{`groupbridge_pin_failure_alarms_total{scope="bridge"}`: 1}},
		{"pin alarm group", func(m *Metrics) { m.PINAlarm(true); m.PINAlarm(true) }, map[string]float64{`groupbridge_pin_failure_alarms_total{scope="group"}`: 2}},
		{"pin attack shared", func(m *Metrics) { m.PINAttack(false) }, map[string]float64{`groupbridge_pin_attacks_total{scope="shared"}`: 1}},
		{"pin attack group", func(m *Metrics) { m.PINAttack(true) }, map[string]float64{`groupbridge_pin_attacks_total{scope="group"}`: 1}},
		{"request rate-limited", func(m *Metrics) { m.RequestDropped("rate-limited") }, map[string]float64{`groupbridge_sip_requests_dropped_total{reason="rate-limited"}`: 1}},
		{"request scanner", func(m *Metrics) { m.RequestDropped("scanner") }, map[string]float64{`groupbridge_sip_requests_dropped_total{reason="scanner"}`: 1}},
		{"request dropped unknown", func(m *Metrics) { m.RequestDropped("Monday group") }, map[string]float64{`groupbridge_sip_requests_dropped_total{reason="other"}`: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := New()
			before := ours(scrape(t, m))
			tt.record(m)
			got := diff(before, ours(scrape(t, m)))
			if !maps.Equal(got, tt.want) {
				t.Errorf("changed series = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestSetRegistration(t *testing.T) {
	tests := []struct {
		state      string
		registered float64
		oneHot     string
	}{
		{RegistrationRegistering, 0, "registering"},
		{RegistrationRegistered, 1, "registered"},
		{RegistrationFailed, 0, "failed"},
		{RegistrationRegistered, 1, "registered"},
		{"exploded", 0, "failed"}, // unknown: not registered
		{RegistrationDisabled, 0, "disabled"},
	}
	m := New() // one Metrics: each step follows the one before
	for _, tt := range tests {
		m.SetRegistration(tt.state)
		s := scrape(t, m)
		if got := s["groupbridge_sip_registered"]; got != tt.registered {
			t.Errorf("after %q: sip_registered = %v, want %v", tt.state, got, tt.registered)
		}
		for _, st := range RegistrationStates() {
			want := 0.0
			if st == tt.oneHot {
				want = 1
			}
			k := `groupbridge_sip_registration_state{state="` + st + `"}`
			if got, ok := s[k]; !ok || got != want {
				t.Errorf("after %q: %s = %v (present %v), want %v", tt.state, k, got, ok, want)
			}
		}
	}
}

func TestObserveTickBuckets(t *testing.T) {
	m := New()
	for _, d := range []time.Duration{
		5 * time.Microsecond,   // first bucket
		10 * time.Microsecond,  // on a bound: le is inclusive
		300 * time.Microsecond, // le=0.0005
		20 * time.Millisecond,  // the last bound
		35 * time.Millisecond,  // only +Inf
	} {
		m.ObserveTick(d)
	}
	s := scrape(t, m)
	want := map[string]float64{
		`groupbridge_mixer_tick_seconds_bucket{le="1e-05"}`:   2,
		`groupbridge_mixer_tick_seconds_bucket{le="0.00025"}`: 2,
		`groupbridge_mixer_tick_seconds_bucket{le="0.0005"}`:  3,
		`groupbridge_mixer_tick_seconds_bucket{le="0.01"}`:    3,
		`groupbridge_mixer_tick_seconds_bucket{le="0.02"}`:    4,
		`groupbridge_mixer_tick_seconds_bucket{le="+Inf"}`:    5,
		`groupbridge_mixer_tick_seconds_count`:                5,
	}
	for k, v := range want {
		if got := s[k]; got != v {
			t.Errorf("%s = %v, want %v", k, got, v)
		}
	}
	const sum = 0.000005 + 0.00001 + 0.0003 + 0.02 + 0.035
	if got := s["groupbridge_mixer_tick_seconds_sum"]; got < sum-1e-12 || got > sum+1e-12 {
		t.Errorf("sum = %v, want %v", got, sum)
	}
}

func TestScrapeTimeFunctions(t *testing.T) {
	m := New()
	active := 7
	m.RegisterCallsActive(func() int { return active })
	m.RegisterRooms(func() (int, int, int) { return 3, 25, 2 })
	m.RegisterClock(func() (int64, int64) { return 90000, 12 })
	m.RegisterRTP(func() RTPStats {
		return RTPStats{
			PacketsIn: 1000, PacketsOut: 2000, BytesIn: 172000, BytesOut: 344000,
			Lost: 4, Late: 3, Concealed: 6, RTCPIn: 10, RTCPOut: 11,
			Dropped: map[string]uint64{
				"foreign-source": 5, "malformed": 2, "late": 3, "other": 1,
				"bogus": 4, "+15551234567": 8, // unknown keys fold into other
			},
			JitterDepthSeconds: 0.04,
		}
	})
	s := scrape(t, m)
	want := map[string]float64{
		`groupbridge_calls_active`:                                     7,
		`groupbridge_rooms`:                                            3,
		`groupbridge_room_members{placement="room"}`:                   25,
		`groupbridge_room_members{placement="waiting"}`:                2,
		`groupbridge_mixer_ticks_total`:                                90000,
		`groupbridge_mixer_late_ticks_total`:                           12,
		`groupbridge_rtp_packets_total{direction="in"}`:                1000,
		`groupbridge_rtp_packets_total{direction="out"}`:               2000,
		`groupbridge_rtp_bytes_total{direction="in"}`:                  172000,
		`groupbridge_rtp_bytes_total{direction="out"}`:                 344000,
		`groupbridge_rtp_lost_total`:                                   4,
		`groupbridge_rtp_late_total`:                                   3,
		`groupbridge_rtp_concealed_total`:                              6,
		`groupbridge_rtcp_packets_total{direction="in"}`:               10,
		`groupbridge_rtcp_packets_total{direction="out"}`:              11,
		`groupbridge_jitter_buffer_depth_seconds`:                      0.04,
		`groupbridge_rtp_dropped_total{reason="foreign-source"}`:       5,
		`groupbridge_rtp_dropped_total{reason="malformed"}`:            2,
		`groupbridge_rtp_dropped_total{reason="late"}`:                 3,
		`groupbridge_rtp_dropped_total{reason="other"}`:                13,
		`groupbridge_rtp_dropped_total{reason="probation"}`:            0,
		`groupbridge_rtp_dropped_total{reason="unknown-payload-type"}`: 0,
		`groupbridge_rtp_dropped_total{reason="srtp-auth"}`:            0,
		`groupbridge_rtp_dropped_total{reason="stale-epoch"}`:          0,
		`groupbridge_rtp_dropped_total{reason="rtcp-foreign"}`:         0,
		`groupbridge_rtp_dropped_total{reason="rtcp-malformed"}`:       0,
		`groupbridge_rtp_dropped_total{reason="duplicate"}`:            0,
		`groupbridge_rtp_dropped_total{reason="send-error"}`:           0,
		`groupbridge_rtp_dropped_total{reason="direction"}`:            0,
		`groupbridge_sip_registration_state{state="disabled"}`:         1,
	}
	for k, v := range want {
		if got, ok := s[k]; !ok || got != v {
			t.Errorf("%s = %v (present %v), want %v", k, got, ok, v)
		}
	}
	for k := range s {
		if strings.Contains(k, "bogus") || strings.Contains(k, "5551234567") {
			t.Errorf("unknown drop reason leaked into %s", k)
		}
	}

	// Functions are read at each scrape, a later registration replaces the
	// earlier one, and nil removes the series.
	active = 9
	if got := scrape(t, m)["groupbridge_calls_active"]; got != 9 {
		t.Errorf("calls_active after change = %v, want 9", got)
	}
	m.RegisterCallsActive(func() int { return 1 })
	if got := scrape(t, m)["groupbridge_calls_active"]; got != 1 {
		t.Errorf("calls_active after replacing the function = %v, want 1", got)
	}
	m.RegisterCallsActive(nil)
	m.RegisterRooms(nil)
	m.RegisterRTP(nil)
	m.RegisterClock(nil)
	for k := range ours(scrape(t, m)) {
		for _, gone := range []string{"calls_active", "rooms", "room_members", "rtp_", "rtcp_", "jitter", "mixer_ticks", "mixer_late"} {
			if strings.HasPrefix(k, namespace+"_"+gone) {
				t.Errorf("%s still present after its function was removed", k)
			}
		}
	}
}

// A function that panics costs only its own series: the scrape still
// answers with everything else, counts the error, and shows nothing of the
// panic's value (which might hold anything).
func TestPanickingFunctionCostsOnlyItsSeries(t *testing.T) {
	m := New()
	m.RegisterCallsActive(func() int { return 4 })
	m.RegisterRooms(func() (int, int, int) { panic("room for +15551234567 with PIN 917355") })
	m.RegisterRTP(func() RTPStats { panic("+15551234567") })
	m.RegisterClock(func() (int64, int64) { return 5, 1 })
	m.CallOutcome("joined")
	scrapeBody(t, m) // the handler counts a scrape's error after serving it
	body := scrapeBody(t, m)
	for _, secret := range []string{"5551234567", "917355", "panic"} {
		if strings.Contains(body, secret) {
			t.Errorf("scrape output contains %q", secret)
		}
	}
	s := parseSeries(t, body)
	for k, v := range map[string]float64{
		"groupbridge_calls_active":                  4,
		"groupbridge_mixer_ticks_total":             5,
		`groupbridge_calls_total{outcome="joined"}`: 1,
	} {
		if s[k] != v {
			t.Errorf("%s = %v, want %v", k, s[k], v)
		}
	}
	for k := range s {
		if strings.HasPrefix(k, "groupbridge_rooms") || strings.HasPrefix(k, "groupbridge_rtp_") {
			t.Errorf("%s present although its function panicked", k)
		}
	}
	if got := s[`promhttp_metric_handler_errors_total{cause="gathering"}`]; got != 1 {
		t.Errorf("gathering errors = %v, want 1", got)
	}
}

// labelRE finds label="value" pairs in an exposition line.
var labelRE = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"`)

// TestNoPINOrCallerNumberInLabels feeds every recorder strings that hold a
// PIN or a caller number, as a careless caller of this package might, and
// checks that the scrape output shows neither and that every label value
// of ours comes from an allow list.
func TestNoPINOrCallerNumberInLabels(t *testing.T) {
	const pin, caller = "917355", "+15551234567"
	hostile := []string{
		pin, caller, "15551234567", "5551234567",
		"wrong-pin " + pin, "wrong-pin-" + pin, "joined:" + caller, "sip:" + caller + "@pbx",
		"rejected-" + pin, "rejected-" + caller, "rejected-sdp " + caller, "rejected-sdp\n" + pin,
		"JOINED", "joined ", " joined", "joined\x00" + pin, "\"}\n" + caller,
	}
	m := New()
	dropped := map[string]uint64{}
	for i, h := range hostile {
		m.CallOutcome(h)
		m.CallRejected(h)
		m.RequestDropped(h)
		m.SetRegistration(h)
		dropped[h] = uint64(i + 1)
	}
	m.RegisterRTP(func() RTPStats { return RTPStats{Dropped: dropped} })

	body := scrapeBody(t, m)
	for _, secret := range []string{caller, "5551234567", "1555123"} {
		if strings.Contains(body, secret) {
			t.Errorf("scrape output contains %q", secret)
		}
	}
	allowed := map[string][]string{
		"outcome":   Outcomes(),
		"reason":    slices.Concat(RejectReasons(), DropReasons(), RequestDropReasons()),
		"state":     RegistrationStates(),
		"scope":     {ScopeGroup, ScopeShared, ScopeBridge},
		"placement": {"room", "waiting"},
		"direction": {"in", "out"},
	}
	valueRE := regexp.MustCompile(`^[a-z-]+$`)
	sc := bufio.NewScanner(strings.NewReader(body))
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, namespace+"_") {
			continue
		}
		// Ours hold counts only: no PIN can hide in a value either.
		if strings.Contains(line, pin) {
			t.Errorf("line %q contains the PIN", line)
		}
		for _, lv := range labelRE.FindAllStringSubmatch(line, -1) {
			name, value := lv[1], lv[2]
			if name == "le" {
				continue // histogram bucket bounds are ours
			}
			if !valueRE.MatchString(value) || !slices.Contains(allowed[name], value) {
				t.Errorf("label %s=%q in %q is not from an allow list", name, value, line)
			}
		}
	}
	// Every hostile string was counted, as "other".
	s := parseSeries(t, body)
	n := float64(len(hostile))
	for k, v := range map[string]float64{
		`groupbridge_calls_total{outcome="other"}`:               n - 4, // all but the 4 "rejected-" ones
		`groupbridge_calls_total{outcome="rejected-other"}`:      n + 4, // every CallRejected, and the 4 prefixed CallOutcomes
		`groupbridge_calls_rejected_total{reason="other"}`:       n + 4,
		`groupbridge_sip_registration_state{state="failed"}`:     1,
		`groupbridge_rtp_dropped_total{reason="other"}`:          n * (n + 1) / 2,
		`groupbridge_sip_requests_dropped_total{reason="other"}`: n,
	} {
		if s[k] != v {
			t.Errorf("%s = %v, want %v", k, s[k], v)
		}
	}
}

func TestAllowLists(t *testing.T) {
	valueRE := regexp.MustCompile(`^[a-z]+(-[a-z]+)*$`)
	for name, list := range map[string][]string{
		"outcomes": Outcomes(), "reject reasons": RejectReasons(),
		"drop reasons": DropReasons(), "registration states": RegistrationStates(),
		"request drop reasons": RequestDropReasons(),
	} {
		seen := map[string]bool{}
		for _, v := range list {
			if !valueRE.MatchString(v) {
				t.Errorf("%s: %q is not lower-case words joined by hyphens", name, v)
			}
			if seen[v] {
				t.Errorf("%s: %q twice", name, v)
			}
			seen[v] = true
		}
		if name != "registration states" && !seen[Other] {
			t.Errorf("%s: no %q", name, Other)
		}
	}
	// The zero state of Metrics.regState is "disabled".
	if registrationStates[0] != RegistrationDisabled {
		t.Errorf("registrationStates[0] = %q, want %q", registrationStates[0], RegistrationDisabled)
	}
	// The accessors hand out copies.
	Outcomes()[0] = "changed"
	RejectReasons()[0] = "changed"
	if outcomes[0] == "changed" || rejectReasons[0] == "changed" {
		t.Error("an accessor exposed the package's own list")
	}
}

// Several app instances in one process: each has its own counts, and none
// touches the client's global registry.
func TestInstancesAreIndependent(t *testing.T) {
	a, b := New(), New()
	a.CallOutcome("joined")
	a.CallOutcome("joined")
	b.CallOutcome("joined")
	for m, want := range map[*Metrics]float64{a: 2, b: 1} {
		if got := scrape(t, m)[`groupbridge_calls_total{outcome="joined"}`]; got != want {
			t.Errorf("joined = %v, want %v", got, want)
		}
	}
	families, err := prometheus.DefaultGatherer.Gather()
	if err != nil {
		t.Fatalf("gather the default registry: %v", err)
	}
	for _, f := range families {
		if strings.HasPrefix(f.GetName(), namespace+"_") {
			t.Errorf("%s registered in the global registry", f.GetName())
		}
	}
}

// TestSeriesNamesAndLint checks that the families are exactly the
// documented ones (once every function is registered) and that they pass
// the client's metric-naming lint.
func TestSeriesNamesAndLint(t *testing.T) {
	m := New()
	m.RegisterCallsActive(func() int { return 0 })
	m.RegisterRooms(func() (int, int, int) { return 0, 0, 0 })
	m.RegisterRTP(func() RTPStats { return RTPStats{} })
	m.RegisterClock(func() (int64, int64) { return 0, 0 })
	families, err := m.Registry().Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	var got []string
	for _, f := range families {
		if strings.HasPrefix(f.GetName(), namespace+"_") {
			got = append(got, f.GetName())
		}
	}
	if want := slices.Sorted(slices.Values(ourNames)); !slices.Equal(got, want) {
		t.Errorf("families = %v, want %v", got, want)
	}
	problems, err := testutil.GatherAndLint(m.Registry(), ourNames...)
	if err != nil {
		t.Fatalf("lint: %v", err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
}

func TestNilMetricsRecordsNothing(t *testing.T) {
	var m *Metrics
	// None of these may panic: code paths without metrics need no checks.
	m.CallOutcome("joined")
	m.CallRejected("sdp")
	m.PINFailure(true)
	m.PINAlarm(true)
	m.RequestDropped("scanner")
	m.AuthFailure()
	m.SourceBlocked()
	m.AttendanceWriteError()
	m.ObserveTick(time.Millisecond)
	m.SetRegistration(RegistrationRegistered)
	m.RegisterCallsActive(func() int { return 0 })
	m.RegisterRooms(nil)
	m.RegisterRTP(nil)
	m.RegisterClock(nil)
}

// Recorders, registrations and scrapes at once (run with -race).
func TestConcurrentUse(t *testing.T) {
	m := New()
	const n = 200
	var wg sync.WaitGroup
	wg.Go(func() {
		for range n {
			m.CallOutcome("joined")
			m.CallRejected("sdp")
			m.ObserveTick(time.Millisecond)
			m.PINFailure(false)
		}
	})
	wg.Go(func() {
		for i := range n {
			m.SetRegistration(RegistrationStates()[i%4])
			m.RegisterCallsActive(func() int { return i })
		}
	})
	wg.Go(func() {
		for range 5 {
			scrapeBody(t, m)
		}
	})
	wg.Wait()
	s := scrape(t, m)
	for k, v := range map[string]float64{
		`groupbridge_calls_total{outcome="joined"}`:       n,
		`groupbridge_calls_total{outcome="rejected-sdp"}`: n,
		`groupbridge_mixer_tick_seconds_count`:            n,
		`groupbridge_calls_active`:                        n - 1,
	} {
		if s[k] != v {
			t.Errorf("%s = %v, want %v", k, s[k], v)
		}
	}
	// The one-hot set is whole after concurrent changes: exactly one 1.
	ones := 0.0
	for _, st := range RegistrationStates() {
		ones += s[`groupbridge_sip_registration_state{state="`+st+`"}`]
	}
	if ones != 1 {
		t.Errorf("registration states sum to %v, want 1", ones)
	}
}

// The recorders on the call and mixing paths do not allocate.
func TestRecordersDoNotAllocate(t *testing.T) {
	m := New()
	for name, f := range map[string]func(){
		"ObserveTick":             func() { m.ObserveTick(137 * time.Microsecond) },
		"CallOutcome":             func() { m.CallOutcome("joined") },
		"CallOutcome other":       func() { m.CallOutcome("something-else") },
		"CallOutcome rejected":    func() { m.CallOutcome("rejected-sdp") },
		"CallRejected":            func() { m.CallRejected("scanner") },
		"PINFailure":              func() { m.PINFailure(true) },
		"SetRegistration":         func() { m.SetRegistration(RegistrationRegistered) },
		"SetRegistration unknown": func() { m.SetRegistration("nope") },
		"AuthFailure":             func() { m.AuthFailure() },
		"AttendanceWriteError":    func() { m.AttendanceWriteError() },
		"PINAlarm":                func() { m.PINAlarm(false) },
		"RequestDropped":          func() { m.RequestDropped("rate-limited") },
		"RequestDropped other":    func() { m.RequestDropped("nope") },
	} {
		if a := testing.AllocsPerRun(1000, f); a != 0 {
			t.Errorf("%s: %v allocations per call, want 0", name, a)
		}
	}
}
