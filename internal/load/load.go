// Package load drives a groupbridge on the same machine with many
// softphones and measures it: call set-up rate and failures, packets
// received per caller, receive-interval jitter, loss, whether listeners
// hear their room, and the bridge's CPU per caller-second from /proc. It
// also runs a reference reflector (one UDP socket and goroutine per caller
// echoing every packet) for the same number of callers, whose CPU is the
// yardstick of what plain packet I/O costs on the machine.
//
// It is bounded (MaxCalls, MaxDuration) and refuses targets that are not
// loopback: it is a benchmark, not a way to flood someone's PBX.
package load

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"time"

	"github.com/groupbridge/groupbridge/internal/softphone"
)

// Bounds of a run.
const (
	MaxCalls    = 5000
	MaxDuration = time.Hour
	// MaxRate bounds call setups per second.
	MaxRate = 500
	// callsPerAgent is how many calls share one SIP user agent before the
	// next Agent is made, so that one sipgo UA does not become the
	// bottleneck of the load tool.
	callsPerAgent = 250
	// settle is the pause between the last set-up and the measuring window:
	// the join prompts ("You are caller N.") end and jitter buffers adapt.
	settle = 3 * time.Second
	// toneWindow is how much of the window's end the tone check judges.
	toneWindow = 5 * time.Second
	// toneDBFS is the level each caller sends its tone at.
	toneDBFS = -20
)

// The ways a caller enters its PIN (Options.Digits).
const (
	DigitsRFC4733 = "rfc4733"
	DigitsInfo    = "info"
)

// Options describe a run.
type Options struct {
	// Target is the bridge's SIP address, an IP literal on loopback and a
	// port. Empty with Reflector runs the reflector alone.
	Target string
	// Transport is "udp" (default) or "tcp".
	Transport string
	// Dialed is the Request-URI user; default the softphone's.
	Dialed string
	// Calls is the number of callers, 1-MaxCalls.
	Calls int
	// Rooms is the number of rooms; callers are assigned round-robin.
	Rooms int
	// PINs holds one member PIN per room. They are never printed.
	PINs []string
	// Duration is the measuring window, with every call up; each call
	// stays through it and then hangs up.
	Duration time.Duration
	// Rate is call set-ups per second.
	Rate float64
	// PID is the bridge's process, for its CPU; 0 skips it.
	PID int
	// Digits is how callers enter their PIN: "rfc4733" (default; the
	// offer carries telephone-event) or "info" (the offer has no
	// telephone-event, so the bridge runs its in-band detector on every
	// packet, and the PIN goes by SIP INFO).
	Digits string
	// Sample is how many listeners get the tone check (0: one per room, at
	// most 20). Their phones keep the last 10 s of audio.
	Sample int
	// Reflector also runs the reference reflector for the same Calls.
	Reflector bool
	// ReflectorCmd builds the child process that serves the reflector
	// (see ServeReflector) for n sockets; required with Reflector.
	ReflectorCmd func(n int) *exec.Cmd
	// Logger receives progress lines; nil discards them.
	Logger *slog.Logger
	// PhoneLogger receives the softphones' own lines (one per call event
	// at Info, so hundreds of them); nil discards them.
	PhoneLogger *slog.Logger
}

// validate checks the bounds and that the target is loopback.
func (o *Options) validate() error {
	if o.Calls < 1 || o.Calls > MaxCalls {
		return fmt.Errorf("load: --calls %d: want 1-%d", o.Calls, MaxCalls)
	}
	if o.Duration <= 0 || o.Duration > MaxDuration {
		return fmt.Errorf("load: --duration %v: want more than 0 and at most %v", o.Duration, MaxDuration)
	}
	if o.Target == "" {
		if !o.Reflector {
			return errors.New("load: --target is required (or --reflector alone)")
		}
		return nil
	}
	if err := checkLoopback(o.Target); err != nil {
		return err
	}
	switch o.Transport {
	case "", "udp", "tcp":
	default:
		return fmt.Errorf("load: --transport %q: want udp or tcp", o.Transport)
	}
	switch o.Digits {
	case "", DigitsRFC4733, DigitsInfo:
	default:
		return fmt.Errorf("load: --digits %q: want %s or %s", o.Digits, DigitsRFC4733, DigitsInfo)
	}
	if o.Rate <= 0 || o.Rate > MaxRate {
		return fmt.Errorf("load: --rate %v: want more than 0 and at most %d per second", o.Rate, MaxRate)
	}
	if o.Rooms < 1 || o.Rooms > o.Calls {
		return fmt.Errorf("load: --rooms %d: want 1 to --calls (%d)", o.Rooms, o.Calls)
	}
	if len(o.PINs) != o.Rooms {
		return fmt.Errorf("load: --pins has %d PINs, want one per room (%d)", len(o.PINs), o.Rooms)
	}
	for i, p := range o.PINs {
		// The PIN itself is never echoed, only which one is wrong.
		if len(p) < 4 || len(p) > 10 || !allDigits(p) {
			return fmt.Errorf("load: --pins: PIN %d is not 4-10 digits", i+1)
		}
	}
	if o.Sample < 0 {
		return fmt.Errorf("load: --sample %d: want 0 or more", o.Sample)
	}
	return nil
}

func allDigits(s string) bool {
	for i := range len(s) {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// checkLoopback refuses any target that is not an IP literal on
// 127.0.0.0/8 or ::1.
func checkLoopback(target string) error {
	host, port, err := net.SplitHostPort(target)
	if err != nil {
		return fmt.Errorf("load: --target %q: want IP:port: %w", target, err)
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return fmt.Errorf("load: --target %q: the host must be an IP literal on loopback (127.0.0.0/8 or ::1)", target)
	}
	if !ip.Unmap().IsLoopback() {
		return fmt.Errorf("load: --target %s is not loopback: the load tool only runs against this machine (127.0.0.0/8 or ::1)", target)
	}
	if _, err := netip.ParseAddrPort(net.JoinHostPort(host, port)); err != nil {
		return fmt.Errorf("load: --target %q: bad port", target)
	}
	return nil
}

// Run performs the run opts describe and returns its report. A run that
// could be carried out returns a report even when calls failed; the report
// says how many.
func Run(ctx context.Context, opts Options) (*Report, error) {
	if err := opts.validate(); err != nil {
		return nil, err
	}
	if opts.Transport == "" {
		opts.Transport = "udp"
	}
	if opts.Digits == "" {
		opts.Digits = DigitsRFC4733
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.PhoneLogger == nil {
		opts.PhoneLogger = slog.New(slog.DiscardHandler)
	}
	var rep *Report
	if opts.Target != "" {
		var err error
		if rep, err = runBridge(ctx, opts); err != nil {
			return nil, err
		}
	} else {
		rep = &Report{Calls: opts.Calls}
	}
	if opts.Reflector {
		opts.Logger.Info("running the reference reflector", "calls", opts.Calls)
		rr, err := runReflector(ctx, opts)
		if err != nil {
			return nil, err
		}
		rep.Reflector = rr
		if rep.TargetCPU != nil && rr.TargetCPU != nil && rr.TargetCPU.MicrosPerCallerSecond > 0 {
			rep.Ratio = rep.TargetCPU.MicrosPerCallerSecond / rr.TargetCPU.MicrosPerCallerSecond
		}
	}
	return rep, nil
}

func selfPID() int { return os.Getpid() }

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("load: interrupted: %w", context.Cause(ctx))
	}
}

// intervals summarises a merged histogram and the per-caller p99s.
func intervals(h *softphone.IntervalHistogram, p99s []float64) Intervals {
	iv := Intervals{
		P50: ms(h.Quantile(0.5)),
		P99: ms(h.Quantile(0.99)),
		Max: ms(h.Max()),
	}
	iv.JitterP99 = max(0, iv.P99-20)
	if len(p99s) > 0 {
		iv.WorstCallerP99 = percentile(p99s, 1)
	}
	return iv
}
