package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"time"

	"github.com/groupbridge/groupbridge/internal/attendance"
	"github.com/groupbridge/groupbridge/internal/attendance/store"
	"github.com/spf13/cobra"
)

// newAttendance is `groupbridge attendance`: the stored sessions and day
// counts, read while the bridge runs. The store is opened read-only, so a
// run as root leaves no file the bridge could not write.
func newAttendance(stdout, stderr io.Writer) *cobra.Command {
	var file, group, since, until, format string
	cmd := &cobra.Command{
		Use:   "attendance",
		Short: "Print the stored attendance: sessions and wrong PINs per day (never writes to the store)",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			err := printAttendance(stdout, file, group, since, until, format)
			if err != nil {
				fmt.Fprintln(stderr, err)
				return exitError{1}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&file, "config", "", "configuration file (YAML) naming the store; without it, the embedded default's")
	cmd.Flags().StringVar(&group, "group", "", "only this group (any case)")
	cmd.Flags().StringVar(&since, "since", "", "from this local date on, YYYY-MM-DD")
	cmd.Flags().StringVar(&until, "until", "", "up to and including this local date, YYYY-MM-DD")
	cmd.Flags().StringVar(&format, "format", "table", "table, csv or json")
	return cmd
}

func printAttendance(w io.Writer, file, group, since, until, format string) error {
	write := map[string]func(io.Writer, []attendance.Session, []attendance.Day) error{
		"table": attendance.WriteTable, "csv": attendance.WriteCSV, "json": attendance.WriteJSON,
	}[format]
	if write == nil {
		return fmt.Errorf("--format %q: use table, csv or json", format)
	}
	f := attendance.Filter{Group: group}
	var err error
	if f.Since, err = localDate("--since", since, 0); err != nil {
		return err
	}
	// The whole of the last day: up to the next midnight.
	if f.Until, err = localDate("--until", until, 1); err != nil {
		return err
	}
	if !f.Since.IsZero() && !f.Until.IsZero() && !f.Since.Before(f.Until) {
		return fmt.Errorf("--since %s is after --until %s", since, until)
	}
	cfg, err := loadConfig(file)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := store.Open(ctx, store.Options{Path: cfg.Attendance.Path, DSN: cfg.Attendance.DSN, ReadOnly: true})
	if errors.Is(err, store.ErrNoStore) {
		where := "the PostgreSQL database of attendance.dsn"
		if cfg.Attendance.DSN == "" {
			where, _ = filepath.Abs(cfg.Attendance.Path)
		}
		return fmt.Errorf("no attendance recorded yet at %s", where)
	}
	if err != nil {
		return err
	}
	defer st.Close()
	ss, err := st.Sessions(ctx, f)
	if err != nil {
		return fmt.Errorf("%s: %w", st.Where(), err)
	}
	days, err := st.Days(ctx, f)
	if err != nil {
		return fmt.Errorf("%s: %w", st.Where(), err)
	}
	return write(w, ss, days)
}

// localDate is the local midnight of date plus addDays, zero for "".
func localDate(flag, date string, addDays int) (time.Time, error) {
	if date == "" {
		return time.Time{}, nil
	}
	d, err := time.ParseInLocation("2006-01-02", date, time.Local)
	if err != nil {
		return time.Time{}, fmt.Errorf("%s %q: not a date; write YYYY-MM-DD, like 2026-01-31", flag, date)
	}
	return d.AddDate(0, 0, addDays), nil
}
