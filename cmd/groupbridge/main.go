// Command groupbridge is a telephone dial-in bridge for support groups.
// The commands only wire configuration to the app; all logic lives below.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/groupbridge/groupbridge/config"
	"github.com/groupbridge/groupbridge/internal/app"
	"github.com/groupbridge/groupbridge/internal/readings"
	"github.com/spf13/cobra"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = ""

func main() {
	if err := newRoot(os.Stdout, os.Stderr).Execute(); err != nil {
		var ee exitError
		if errors.As(err, &ee) {
			os.Exit(ee.code)
		}
		fmt.Fprintln(os.Stderr, "groupbridge:", err)
		os.Exit(1)
	}
}

// exitError carries an exit status for a failure that has already been
// reported to the user.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

func newRoot(stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:           "groupbridge",
		Short:         "A telephone dial-in bridge for support groups",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.AddCommand(newServe(stderr), newConfigCmd(stdout, stderr), newVersion(stdout))
	root.AddCommand(newLoad(stdout, stderr), newPrompts(stdout), newAttendance(stdout, stderr))
	return root
}

func newServe(stderr io.Writer) *cobra.Command {
	var file, cpuProfile string
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the bridge (without --config: the embedded default configuration)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(file)
			if err != nil {
				fmt.Fprintln(stderr, err)
				return exitError{1}
			}
			if cpuProfile != "" {
				stop, err := startCPUProfile(cpuProfile)
				if err != nil {
					fmt.Fprintln(stderr, err)
					return exitError{1}
				}
				defer stop()
			}
			return serve(cfg, file, stderr)
		},
	}
	cmd.Flags().StringVar(&file, "config", "", "configuration file (YAML)")
	cmd.Flags().StringVar(&cpuProfile, "cpuprofile", "", "write a CPU profile of the running bridge to this file until it stops (for go tool pprof; benchmarks only)")
	return cmd
}

// loadConfig reads the file, or the embedded default when file is "".
func loadConfig(file string) (*config.Config, error) {
	if file == "" {
		return config.Embedded()
	}
	return config.LoadFile(file)
}

func serve(cfg *config.Config, file string, logOut io.Writer) error {
	a, err := app.New(cfg, app.Options{LogOutput: logOut})
	if err != nil {
		return err
	}
	if err := a.Start(); err != nil {
		return err
	}
	if file != "" {
		warnFileMode(file, func(w string) { a.Logger().Warn("configuration file permissions", "problem", w) })
	}
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	defer signal.Stop(sigs)
	for sig := range sigs {
		if sig == syscall.SIGHUP {
			reload(a, file)
			continue
		}
		a.Logger().Info("stopping", "signal", sig.String())
		ctx, cancel := context.WithTimeout(context.Background(), a.DrainTimeout())
		err := a.Shutdown(ctx)
		cancel()
		if err != nil {
			a.Logger().Warn("stopped with calls still up", "error", err)
		}
		return nil
	}
	return nil
}

// reload re-reads the configuration on SIGHUP. A file with errors is
// refused, each problem logged (secrets never), and the running
// configuration stays.
func reload(a *app.App, file string) {
	log := a.Logger()
	log.Info("SIGHUP: reloading configuration")
	cfg, err := loadConfig(file)
	if err == nil {
		err = a.Reload(cfg)
	}
	if err != nil {
		var errs config.Errors
		if errors.As(err, &errs) {
			for _, e := range errs {
				log.Error("reload refused", "problem", e.Error())
			}
		} else {
			log.Error("reload refused", "error", err.Error())
		}
		log.Warn("the running configuration is unchanged")
	}
}

// warnFileMode reports a configuration file that users other than
// groupbridge may read: a warning, never a failure.
func warnFileMode(file string, report func(string)) {
	if w, err := config.FileModeWarning(file); err == nil && w != "" {
		report(w)
	}
}

func newConfigCmd(stdout, stderr io.Writer) *cobra.Command {
	cmd := &cobra.Command{Use: "config", Short: "Check or print configuration"}
	cmd.AddCommand(&cobra.Command{
		Use:   "check FILE",
		Short: "Validate a configuration file and print every problem",
		Args:  cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			cfg, err := config.LoadFile(args[0])
			if err != nil {
				fmt.Fprintln(stderr, err)
				return exitError{1}
			}
			// The groups' recordings and every language's prompts are
			// loaded as the bridge would, so a file that would stop a start
			// or a reload stops the check; both are checked, so one run
			// lists the problems of both.
			_, rerr := readings.Load(cfg.Prompts.Dir, cfg.Prompts.ReadingsMax, cfg.RuntimeGroups(), nil)
			if rerr != nil {
				fmt.Fprintln(stderr, rerr)
			}
			warn := func(w string) { fmt.Fprintln(stderr, "warning:", w) }
			warnFileMode(args[0], warn)
			notes, err := app.CheckPrompts(cfg)
			if err != nil {
				fmt.Fprintln(stderr, err)
			}
			if rerr != nil || err != nil {
				return exitError{1}
			}
			fmt.Fprintf(stdout, "%s: ok (%d groups)\n", args[0], len(cfg.Groups))
			if cfg.Cluster != nil {
				// Redis's password hidden, the cluster secret never shown.
				fmt.Fprintln(stdout, "cluster:", cfg.Cluster.Summary())
			}
			for _, n := range notes {
				fmt.Fprintln(stdout, "prompts:", n)
			}
			// Warnings, not errors: short PINs are the operator's choice.
			reportPINs(cfg, stdout, warn)
			return nil
		},
	}, &cobra.Command{
		Use:   "default",
		Short: "Print the embedded default configuration",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			_, err := stdout.Write(config.EmbeddedYAML())
			return err
		},
	})
	return cmd
}

func newVersion(stdout io.Writer) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  cobra.NoArgs,
		Run: func(*cobra.Command, []string) {
			fmt.Fprintln(stdout, "groupbridge", versionString())
		},
	}
}

func versionString() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		v := bi.Main.Version
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				v += " (" + s.Value[:12] + ")"
			}
		}
		return v + " " + bi.GoVersion
	}
	return "dev"
}
