package load

import (
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc/PID/stat. The
// kernel reports in 1/100 s on every architecture Go runs Linux on,
// whatever its internal HZ.
const clockTicks = 100

// procCPU returns the user plus system CPU time that a process has used,
// read from /proc/PID/stat.
func procCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, fmt.Errorf("load: CPU of pid %d: %w", pid, err)
	}
	return parseStatCPU(string(b))
}

// parseStatCPU takes utime and stime (fields 14 and 15) from one
// /proc/PID/stat line. The command name (field 2) is in parentheses and may
// hold spaces and parentheses itself, so fields are counted after the last
// ')'.
func parseStatCPU(line string) (time.Duration, error) {
	i := strings.LastIndexByte(line, ')')
	if i < 0 {
		return 0, fmt.Errorf("load: /proc stat line has no command name")
	}
	f := strings.Fields(line[i+1:])
	// f[0] is field 3 (state), so field k is f[k-3].
	if len(f) < 13 {
		return 0, fmt.Errorf("load: /proc stat line has %d fields after the name, want at least 13", len(f))
	}
	var ticks uint64
	for _, s := range f[11:13] {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("load: /proc stat CPU field %q: %w", s, err)
		}
		ticks += v
	}
	return time.Duration(ticks) * time.Second / clockTicks, nil
}

// CPU is what a process spent over a measuring window.
type CPU struct {
	PID int `json:"pid"`
	// Seconds is the user+system CPU time used in the window.
	Seconds float64 `json:"cpu_seconds"`
	// MicrosPerCallerSecond is Seconds divided by the callers up in the
	// window and the window's length, in microseconds: what one caller
	// costs per second of call.
	MicrosPerCallerSecond float64 `json:"us_per_caller_second"`
}

// cpuPerCaller turns two CPU samples of a process into a CPU figure.
func cpuPerCaller(pid int, before, after time.Duration, callers int, window time.Duration) CPU {
	used := (after - before).Seconds()
	c := CPU{PID: pid, Seconds: used}
	if callers > 0 && window > 0 {
		c.MicrosPerCallerSecond = used * 1e6 / (float64(callers) * window.Seconds())
	}
	return c
}

// Intervals summarises packet arrival intervals, in milliseconds.
type Intervals struct {
	P50 float64 `json:"p50_ms"`
	P99 float64 `json:"p99_ms"`
	Max float64 `json:"max_ms"`
	// JitterP99 is how far the 99th percentile interval is above the
	// nominal 20 ms.
	JitterP99 float64 `json:"jitter_p99_ms"`
	// WorstCallerP99 is the highest per-caller 99th percentile.
	WorstCallerP99 float64 `json:"worst_caller_p99_ms"`
}

// Rates summarises packets received per caller per second.
type Rates struct {
	Mean float64 `json:"mean"`
	Min  float64 `json:"min"`
}

// rates computes the mean and minimum of per-caller packet counts over a
// window.
func rates(counts []int, window time.Duration) Rates {
	if len(counts) == 0 || window <= 0 {
		return Rates{}
	}
	sum, lo := 0, counts[0]
	for _, c := range counts {
		sum += c
		lo = min(lo, c)
	}
	s := window.Seconds()
	return Rates{Mean: float64(sum) / float64(len(counts)) / s, Min: float64(lo) / s}
}

// Loss counts packets lost by sequence number in the window.
type Loss struct {
	Lost     int     `json:"lost"`
	Expected int     `json:"expected"`
	Percent  float64 `json:"percent"`
}

func loss(lost, received int) Loss {
	l := Loss{Lost: lost, Expected: lost + received}
	if l.Expected > 0 {
		l.Percent = 100 * float64(lost) / float64(l.Expected)
	}
	return l
}

// Setups describes the call set-up phase.
type Setups struct {
	Attempted int `json:"attempted"`
	Succeeded int `json:"succeeded"`
	// PerSecond is succeeded calls divided by the time from the first
	// INVITE to the last answer.
	PerSecond float64 `json:"per_second"`
	// LatencyP50 and LatencyMax are INVITE-to-answer times, in ms.
	LatencyP50 float64 `json:"latency_p50_ms"`
	LatencyMax float64 `json:"latency_max_ms"`
	// Failures counts failed calls by cause: "status 503", "timeout",
	// "digits" (the PIN could not be sent), "ended early" (the bridge hung
	// up before the window ended), "error".
	Failures map[string]int `json:"failures,omitempty"`
	// FirstError is the text of the first "error" failure, for diagnosis.
	FirstError string `json:"first_error,omitempty"`
}

// ToneCheck is the verdict on sampled listeners.
type ToneCheck struct {
	Sampled int `json:"sampled"`
	// Heard counts listeners that heard a room-mate's tone in at least 90%
	// of 100 ms blocks over the last seconds of the window.
	Heard int `json:"heard"`
	// WorstFraction is the lowest such fraction among the sampled.
	WorstFraction float64 `json:"worst_fraction"`
	// TalkerStalls counts the frames the sampled rooms' callers sent more
	// than 20 ms late or skipped during the window: the load tool itself
	// was starved of CPU, and a shortfall above may be its own.
	TalkerStalls int `json:"talker_stalls"`
}

// Report is what a load run measured.
type Report struct {
	Target    string  `json:"target,omitempty"`
	Transport string  `json:"transport,omitempty"`
	Digits    string  `json:"digits,omitempty"`
	Calls     int     `json:"calls"`
	Rooms     int     `json:"rooms,omitempty"`
	Window    float64 `json:"window_seconds"`
	// Up is the number of calls up for the whole window: the divisor of
	// the per-caller figures.
	Up        int        `json:"calls_up"`
	Setups    *Setups    `json:"setups,omitempty"`
	Received  Rates      `json:"packets_per_caller_second"`
	Intervals Intervals  `json:"receive_intervals"`
	Loss      Loss       `json:"loss"`
	Tone      *ToneCheck `json:"tone_check,omitempty"`
	// TargetCPU is the measured process's CPU: the bridge's when its PID
	// was given, the reflector child's in a reflector report.
	TargetCPU *CPU `json:"target_cpu,omitempty"`
	// LoadCPU is this process's own CPU, to judge whether the load tool
	// itself was the bottleneck.
	LoadCPU CPU `json:"load_cpu"`
	// Reflector is the reference reflector's run for the same callers.
	Reflector *Report `json:"reflector,omitempty"`
	// Ratio is the bridge's CPU per caller-second over the reflector's.
	Ratio float64 `json:"bridge_over_reflector,omitempty"`
}

// percentile returns the q-quantile (0-1) of xs by nearest rank; xs is
// sorted in place. Empty input gives 0.
func percentile(xs []float64, q float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	slices.Sort(xs)
	r := int(q*float64(len(xs))+0.999999999) - 1
	return xs[min(max(r, 0), len(xs)-1)]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// WriteText writes the report as a table.
func (r *Report) WriteText(w io.Writer) error {
	var b strings.Builder
	if r.Target != "" {
		fmt.Fprintf(&b, "groupbridge load: %d calls into %d rooms at %s (%s), PIN by %s, window %.1f s\n",
			r.Calls, r.Rooms, r.Target, r.Transport, digitsName(r.Digits), r.Window)
		r.writeRows(&b, "")
	}
	if f := r.Reflector; f != nil {
		fmt.Fprintf(&b, "reference reflector: %d sockets, window %.1f s\n", f.Calls, f.Window)
		f.writeRows(&b, "")
		if r.Ratio > 0 {
			fmt.Fprintf(&b, "%-22s %.2fx\n", "bridge / reflector CPU", r.Ratio)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// digitsName says how the callers entered their PIN, in the report's
// words.
func digitsName(d string) string {
	if d == DigitsInfo {
		return "SIP INFO, no telephone-event offered"
	}
	return "RFC 4733"
}

func (r *Report) writeRows(b *strings.Builder, _ string) {
	row := func(name, format string, args ...any) {
		fmt.Fprintf(b, "  %-20s "+format+"\n", append([]any{name}, args...)...)
	}
	if s := r.Setups; s != nil {
		row("call setups", "%d of %d, %.1f per second (answer p50 %.0f ms, max %.0f ms)",
			s.Succeeded, s.Attempted, s.PerSecond, s.LatencyP50, s.LatencyMax)
		if len(s.Failures) == 0 {
			row("failures", "none")
		} else {
			keys := make([]string, 0, len(s.Failures))
			for k := range s.Failures {
				keys = append(keys, k)
			}
			slices.Sort(keys)
			parts := make([]string, len(keys))
			for i, k := range keys {
				parts[i] = fmt.Sprintf("%s: %d", k, s.Failures[k])
			}
			row("failures", "%s", strings.Join(parts, ", "))
			if s.FirstError != "" {
				row("first error", "%s", s.FirstError)
			}
		}
	}
	row("calls up", "%d", r.Up)
	row("packets/caller/s", "mean %.1f, min %.1f", r.Received.Mean, r.Received.Min)
	iv := r.Intervals
	row("receive interval", "p50 %.2f ms, p99 %.2f ms, max %.1f ms (jitter p99 %.2f ms; worst caller p99 %.2f ms)",
		iv.P50, iv.P99, iv.Max, iv.JitterP99, iv.WorstCallerP99)
	row("lost packets", "%d of %d (%.3f%%)", r.Loss.Lost, r.Loss.Expected, r.Loss.Percent)
	if t := r.Tone; t != nil {
		row("tone check", "%d of %d sampled listeners hear their room (worst %.0f%% of blocks)",
			t.Heard, t.Sampled, 100*t.WorstFraction)
		if t.TalkerStalls > 0 {
			row("talker stalls", "%d frames sent late or not at all in the sampled rooms (the load tool was starved)", t.TalkerStalls)
		}
	}
	if c := r.TargetCPU; c != nil {
		row("CPU (target)", "pid %d: %.2f s = %.0f µs per caller-second", c.PID, c.Seconds, c.MicrosPerCallerSecond)
	}
	row("CPU (load tool)", "%.2f s = %.0f µs per caller-second", r.LoadCPU.Seconds, r.LoadCPU.MicrosPerCallerSecond)
}
