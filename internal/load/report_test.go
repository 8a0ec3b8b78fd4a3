package load

import (
	"bytes"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestPercentile(t *testing.T) {
	tests := []struct {
		xs   []float64
		q    float64
		want float64
	}{
		{nil, 0.5, 0},
		{[]float64{7}, 0.99, 7},
		{[]float64{3, 1, 2}, 0.5, 2},
		{[]float64{5, 1, 4, 2, 3}, 1, 5},
		{[]float64{5, 1, 4, 2, 3}, 0, 1},
		// Nearest rank: the 99th percentile of 100 values is the 99th.
		{seq(100), 0.99, 99},
		{seq(100), 0.5, 50},
		{seq(1000), 0.99, 990},
	}
	for _, tc := range tests {
		if got := percentile(tc.xs, tc.q); got != tc.want {
			t.Errorf("percentile(%d values, %v) = %v, want %v", len(tc.xs), tc.q, got, tc.want)
		}
	}
}

func seq(n int) []float64 {
	out := make([]float64, n)
	for i := range out {
		out[n-1-i] = float64(i + 1) // descending, so sorting matters
	}
	return out
}

func TestParseStatCPU(t *testing.T) {
	// A real layout: pid (comm) state ppid ... utime(14) stime(15) ...
	line := func(comm string, utime, stime int) string {
		return "4242 (" + comm + ") S 1 4242 4242 0 -1 4194560 1234 0 0 0 " +
			itoa(utime) + " " + itoa(stime) + " 0 0 20 0 9 0 123456 1234567 890 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n"
	}
	tests := []struct {
		name    string
		line    string
		want    time.Duration
		wantErr bool
	}{
		{"plain", line("groupbridge", 150, 50), 2 * time.Second, false},
		{"name with spaces and parens", line("a) b (c", 7, 3), 100 * time.Millisecond, false},
		{"zero", line("x", 0, 0), 0, false},
		{"no name", "4242 S 1 2 3", 0, true},
		{"short", "4242 (x) S 1 2 3", 0, true},
		{"not a number", strings.Replace(line("x", 1, 2), " 1 2 0 0 20", " 1 x 0 0 20", 1), 0, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseStatCPU(tc.line)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tc.wantErr)
			}
			if got != tc.want {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

// CPU per caller-second from two /proc samples: 3 s of CPU for 200
// callers over 20 s is 750 µs per caller-second.
func TestCPUPerCaller(t *testing.T) {
	before, err := parseStatCPU("1 (bridge) S 0 0 0 0 0 0 0 0 0 0 1000 200 0 0")
	if err != nil {
		t.Fatal(err)
	}
	after, err := parseStatCPU("1 (bridge) S 0 0 0 0 0 0 0 0 0 0 1250 250 0 0")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		callers int
		window  time.Duration
		wantSec float64
		wantUs  float64
	}{
		{200, 20 * time.Second, 3, 750},
		{1000, 10 * time.Second, 3, 300},
		{0, 10 * time.Second, 3, 0}, // nobody up: no per-caller figure
	}
	for _, tc := range tests {
		c := cpuPerCaller(1, before, after, tc.callers, tc.window)
		if math.Abs(c.Seconds-tc.wantSec) > 1e-9 || math.Abs(c.MicrosPerCallerSecond-tc.wantUs) > 1e-6 {
			t.Errorf("%d callers over %v: %.3f s, %.3f µs; want %.3f s, %.3f µs",
				tc.callers, tc.window, c.Seconds, c.MicrosPerCallerSecond, tc.wantSec, tc.wantUs)
		}
	}
}

func TestRatesAndLoss(t *testing.T) {
	r := rates([]int{500, 490, 510}, 10*time.Second)
	if r.Mean != 50 || r.Min != 49 {
		t.Errorf("rates = %+v, want mean 50, min 49", r)
	}
	if r := rates(nil, time.Second); r != (Rates{}) {
		t.Errorf("rates of nobody = %+v", r)
	}
	l := loss(1, 999)
	if l.Expected != 1000 || l.Percent != 0.1 {
		t.Errorf("loss = %+v, want 1000 expected, 0.1%%", l)
	}
	if l := loss(0, 0); l.Percent != 0 {
		t.Errorf("loss of nothing = %+v", l)
	}
}

func TestCheckLoopback(t *testing.T) {
	tests := []struct {
		target string
		ok     bool
	}{
		{"127.0.0.1:5060", true},
		{"127.1.2.3:5060", true},
		{"[::1]:5060", true},
		{"10.0.0.1:5060", false},
		{"192.168.1.1:5060", false},
		{"[2001:db8::1]:5060", false},
		{"localhost:5060", false}, // names could resolve anywhere
		{"127.0.0.1", false},
		{"127.0.0.1:http", false},
	}
	for _, tc := range tests {
		if err := checkLoopback(tc.target); (err == nil) != tc.ok {
			t.Errorf("checkLoopback(%q) = %v, want ok %v", tc.target, err, tc.ok)
		}
	}
}

func TestValidate(t *testing.T) {
	good := func() Options {
		return Options{Target: "127.0.0.1:5060", Calls: 10, Rooms: 2, PINs: []string{"1234", "98765"},
			Duration: time.Minute, Rate: 20}
	}
	tests := []struct {
		name   string
		mutate func(*Options)
		errHas string
	}{
		{"good", func(*Options) {}, ""},
		{"too many calls", func(o *Options) { o.Calls = MaxCalls + 1 }, "--calls"},
		{"no calls", func(o *Options) { o.Calls = 0 }, "--calls"},
		{"too long", func(o *Options) { o.Duration = 2 * time.Hour }, "--duration"},
		{"not loopback", func(o *Options) { o.Target = "192.0.2.1:5060" }, "not loopback"},
		{"PIN count", func(o *Options) { o.PINs = o.PINs[:1] }, "--pins"},
		{"bad PIN", func(o *Options) { o.PINs[1] = "12a4" }, "PIN 2"},
		{"rate", func(o *Options) { o.Rate = 0 }, "--rate"},
		{"rooms", func(o *Options) { o.Rooms = 11 }, "--rooms"},
		{"transport", func(o *Options) { o.Transport = "sctp" }, "--transport"},
		{"digits", func(o *Options) { o.Digits = "inband" }, "--digits"},
		{"digits info", func(o *Options) { o.Digits = DigitsInfo }, ""},
		{"no target", func(o *Options) { o.Target = "" }, "--target"},
		{"reflector alone", func(o *Options) { o.Target, o.Reflector = "", true }, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := good()
			tc.mutate(&o)
			err := o.validate()
			if tc.errHas == "" {
				if err != nil {
					t.Fatalf("unexpected error %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.errHas) {
				t.Fatalf("err = %v, want one mentioning %q", err, tc.errHas)
			}
			// PINs are secrets: no error repeats one.
			for _, p := range o.PINs {
				if strings.Contains(err.Error(), p) {
					t.Fatalf("error %q repeats a PIN", err)
				}
			}
		})
	}
}

func TestRoomsAndTones(t *testing.T) {
	// 10 callers round-robin into 3 rooms: 4, 3, 3.
	for r, want := range []int{4, 3, 3} {
		if got := roomSize(10, 3, r); got != want {
			t.Errorf("roomSize(10, 3, %d) = %d, want %d", r, got, want)
		}
	}
	if toneFreq(0) != 300 || toneFreq(1) != 350 || toneFreq(61) != 3350 || toneFreq(62) != 300 {
		t.Errorf("tones: %v %v %v %v", toneFreq(0), toneFreq(1), toneFreq(61), toneFreq(62))
	}
}

// The text report names every figure and never a PIN.
func TestWriteText(t *testing.T) {
	r := &Report{Target: "127.0.0.1:5060", Transport: "udp", Digits: DigitsInfo, Calls: 2, Rooms: 1, Window: 5, Up: 2,
		Setups:    &Setups{Attempted: 2, Succeeded: 1, PerSecond: 2, Failures: map[string]int{"status 503": 1}},
		Tone:      &ToneCheck{Sampled: 1, Heard: 1, WorstFraction: 1, TalkerStalls: 3},
		TargetCPU: &CPU{PID: 7, Seconds: 1, MicrosPerCallerSecond: 100},
		Reflector: &Report{Calls: 2, Window: 5, TargetCPU: &CPU{PID: 8, MicrosPerCallerSecond: 50}},
		Ratio:     2,
	}
	var b bytes.Buffer
	if err := r.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"PIN by SIP INFO, no telephone-event", "1 of 2", "status 503: 1", "1 of 1 sampled", "3 frames sent late", "100 µs per caller-second", "reference reflector", "2.00x"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, b.String())
		}
	}
}
