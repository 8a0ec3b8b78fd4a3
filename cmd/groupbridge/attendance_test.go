package main

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/groupbridge/groupbridge/internal/attendance"
	"github.com/groupbridge/groupbridge/internal/attendance/store"
)

// attendanceStore writes a store with three sessions and day counts into
// dir and returns a configuration file naming it.
func attendanceStore(t *testing.T, dir string) string {
	t.Helper()
	db := filepath.Join(dir, "data", "attendance.db")
	st, err := store.Open(context.Background(), store.Options{Path: db})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	w := st.NewWriter(store.WriterOptions{})
	day := func(d, h int) time.Time { return time.Date(2026, 3, d, h, 0, 0, 0, time.Local) }
	for _, s := range []attendance.Session{
		{ID: "aaaa", Group: "Tuesday circle", Start: day(3, 19), End: day(3, 20), Peak: 6, Distinct: 7, Joins: 8, MemberTime: 300 * time.Minute, MedianStay: 45 * time.Minute, LongestStay: time.Hour},
		{ID: "bbbb", Group: "Thursday", Start: day(5, 12), End: day(5, 13), Peak: 2, Distinct: 2, Joins: 2, MemberTime: 100 * time.Minute, LongestStay: time.Hour},
		{ID: "cccc", Group: "Tuesday circle", Start: day(10, 19), End: day(10, 20), Peak: 4, Distinct: 4, Joins: 4},
	} {
		w.Session(s)
	}
	w.WrongPIN("", day(3, 9))
	w.WrongPIN("Thursday", day(5, 9))
	if err := w.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "gb.yaml")
	if err := os.WriteFile(cfg, []byte("attendance: {path: "+db+"}\ngroups:\n  - {name: Tuesday circle, member_pin: \"482193\"}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return cfg
}

func TestAttendanceCommand(t *testing.T) {
	dir := t.TempDir()
	cfg := attendanceStore(t, dir)
	tests := []struct {
		name string
		args []string
		code int
		want []string // in stdout (code 0) or stderr
		not  []string
	}{
		{"table", nil, 0, []string{
			"GROUP", "Tuesday circle  2026-03-03 19:00  60.0     6     7", "fewer than 3", "2026-03-10 19:00",
			"(access number)  1", "2026-03-05  Thursday         1",
		}, nil},
		{"a group, any case", []string{"--group", "TUESDAY CIRCLE"}, 0, []string{"2026-03-03 19:00", "2026-03-10 19:00", "No wrong PINs"}, []string{"Thursday"}},
		{"since and until, inclusive", []string{"--since", "2026-03-05", "--until", "2026-03-05"}, 0, []string{"Thursday", "fewer than 3"}, []string{"2026-03-03 19:00", "2026-03-10", "(access number)"}},
		{"bad date", []string{"--since", "2026-3-5"}, 1, []string{`--since "2026-3-5": not a date; write YYYY-MM-DD`}, nil},
		{"until before since", []string{"--since", "2026-03-06", "--until", "2026-03-05"}, 1, []string{"--since 2026-03-06 is after --until 2026-03-05"}, nil},
		{"bad format", []string{"--format", "xml"}, 1, []string{`--format "xml": use table, csv or json`}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, code := run(append([]string{"attendance", "--config", cfg}, tc.args...)...)
			if code != tc.code {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tc.code, out, errOut)
			}
			text := out
			if code != 0 {
				text = errOut
			}
			for _, w := range tc.want {
				if !strings.Contains(text, w) {
					t.Errorf("output lacks %q:\n%s", w, text)
				}
			}
			for _, n := range tc.not {
				if strings.Contains(text, n) {
					t.Errorf("output has %q:\n%s", n, text)
				}
			}
		})
	}

	t.Run("csv", func(t *testing.T) {
		out, errOut, code := run("attendance", "--config", cfg, "--format", "csv")
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errOut)
		}
		rows, err := csv.NewReader(strings.NewReader(out)).ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		var kinds []string
		for _, r := range rows[1:] {
			kinds = append(kinds, r[0]+":"+r[1]+r[2])
		}
		want := []string{"session:aaaaTuesday circle", "session:bbbbThursday", "session:ccccTuesday circle", "day:(access number)", "day:Thursday"}
		if !reflect.DeepEqual(kinds, want) {
			t.Errorf("rows %v, want %v", kinds, want)
		}
	})
	t.Run("json", func(t *testing.T) {
		out, errOut, code := run("attendance", "--config", cfg, "--format", "json", "--group", "thursday")
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errOut)
		}
		var doc struct {
			Sessions []struct {
				ID          string `json:"id"`
				People      *int   `json:"people"`
				PeopleShown string `json:"people_shown"`
			} `json:"sessions"`
			Days []struct {
				WrongPINs int `json:"wrong_pins"`
			} `json:"days"`
		}
		if err := json.Unmarshal([]byte(out), &doc); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		if len(doc.Sessions) != 1 || doc.Sessions[0].ID != "bbbb" || doc.Sessions[0].People != nil || doc.Sessions[0].PeopleShown != "fewer than 3" || len(doc.Days) != 1 || doc.Days[0].WrongPINs != 1 {
			t.Errorf("%s", out)
		}
	})

	// Nothing recorded: said so, and nothing made.
	t.Run("no store", func(t *testing.T) {
		empty := t.TempDir()
		cfg := filepath.Join(empty, "gb.yaml")
		db := filepath.Join(empty, "state", "attendance.db")
		if err := os.WriteFile(cfg, []byte("attendance: {path: "+db+"}\ngroups:\n  - {name: A, member_pin: \"482193\"}\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		_, errOut, code := run("attendance", "--config", cfg)
		if code != 1 || !strings.Contains(errOut, "no attendance recorded yet at "+db) {
			t.Errorf("exit %d: %s", code, errOut)
		}
		entries, _ := os.ReadDir(empty)
		if len(entries) != 1 {
			t.Errorf("the command made files: %v", entries)
		}
	})
}
