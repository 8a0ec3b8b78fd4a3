package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/groupbridge/groupbridge/internal/load"
)

// newLoad is `groupbridge load`: the load tool and its reflector child.
func newLoad(stdout, stderr io.Writer) *cobra.Command {
	var (
		opts    load.Options
		pins    string
		asJSON  bool
		verbose bool
	)
	cmd := &cobra.Command{
		Use:   "load",
		Short: "Load-test a bridge on this machine with many softphones (loopback only)",
		Long: `load places --calls softphone calls at --rate set-ups per second into --rooms
rooms of a bridge on this machine (one member PIN per room in --pins, callers
assigned round-robin), each caller sending its own tone and entering its PIN
by RFC 4733 (--digits info: by SIP INFO, offering no telephone-event). With every call up it measures for --duration: packets received
per caller per second, receive-interval jitter, loss, whether sampled
listeners hear their room, and with --pid the bridge's CPU per caller-second
from /proc. --reflector also runs the reference reflector (one UDP socket
and goroutine per caller echoing every packet, in a child process) for the
same number of callers as the yardstick of plain packet I/O.
PINs are never printed.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if pins != "" {
				opts.PINs = strings.Split(pins, ",")
			}
			level := slog.LevelInfo
			if !verbose {
				level = slog.LevelWarn
			}
			// Progress goes to stderr so that --json output stays clean.
			opts.Logger = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
			// The phones' problems only, not a line per call event.
			opts.PhoneLogger = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
			exe, err := os.Executable()
			if err != nil {
				return fmt.Errorf("load: find own executable for the reflector: %w", err)
			}
			opts.ReflectorCmd = func(n int) *exec.Cmd {
				c := exec.Command(exe, "load", "reflector", "--calls", strconv.Itoa(n))
				c.Stderr = stderr
				return c
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			rep, err := load.Run(ctx, opts)
			if err != nil {
				return err
			}
			if asJSON {
				enc := json.NewEncoder(stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(rep)
			}
			return rep.WriteText(stdout)
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.Target, "target", "", "the bridge's SIP address, loopback IP:port (e.g. 127.0.0.1:5060)")
	f.StringVar(&opts.Transport, "transport", "udp", "SIP transport: udp or tcp")
	f.StringVar(&opts.Dialed, "dialed", "", "number dialled (Request-URI user); default the softphone's")
	f.IntVar(&opts.Calls, "calls", 10, fmt.Sprintf("number of callers (1-%d)", load.MaxCalls))
	f.IntVar(&opts.Rooms, "rooms", 1, "number of rooms (the target needs a group per room)")
	f.StringVar(&pins, "pins", "", "member PINs, one per room, comma-separated (never printed)")
	f.DurationVar(&opts.Duration, "duration", 60*time.Second, fmt.Sprintf("measuring window with every call up (at most %v)", load.MaxDuration))
	f.StringVar(&opts.Digits, "digits", load.DigitsRFC4733, "how callers enter their PIN: rfc4733, or info (offer no telephone-event, PIN by SIP INFO: the bridge runs its in-band detector on every packet)")
	f.Float64Var(&opts.Rate, "rate", 20, "call set-ups per second")
	f.IntVar(&opts.PID, "pid", 0, "the bridge's process ID, to report its CPU per caller-second")
	f.IntVar(&opts.Sample, "sample", 0, "listeners to tone-check (0: one per room, at most 20)")
	f.BoolVar(&opts.Reflector, "reflector", false, "also run the reference reflector for the same number of callers")
	f.BoolVar(&asJSON, "json", false, "print the report as JSON")
	f.BoolVar(&verbose, "verbose", false, "log progress to stderr")
	cmd.AddCommand(newLoadReflector(stdout))
	return cmd
}

// newLoadReflector is the reflector child the load tool starts: it prints
// its ports and echoes until its stdin closes or it is signalled.
func newLoadReflector(stdout io.Writer) *cobra.Command {
	var n int
	cmd := &cobra.Command{
		Use:    "reflector",
		Short:  "Serve the reference reflector (started by load --reflector)",
		Args:   cobra.NoArgs,
		Hidden: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			ctx, cancel := context.WithCancel(ctx)
			defer cancel()
			go func() {
				// The parent closes our stdin to stop us, or dies.
				_, _ = io.Copy(io.Discard, os.Stdin)
				cancel()
			}()
			return load.ServeReflector(ctx, n, stdout)
		},
	}
	cmd.Flags().IntVar(&n, "calls", 1, "number of sockets")
	return cmd
}
