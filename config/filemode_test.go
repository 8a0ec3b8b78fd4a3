package config

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestModeWarning(t *testing.T) {
	rows := []struct {
		mode     fs.FileMode
		group    string
		ownGroup bool
		want     string // substring; "" for no warning
	}{
		{0o600, "staff", false, ""},
		{0o400, "staff", false, ""},
		{0o644, "staff", false, "readable by every user of this machine (mode 0644)"},
		{0o604, "root", true, "readable by every user"},
		{0o664, ServiceGroup, true, "readable by every user"},
		{0o640, "staff", false, `readable by group "staff" (mode 0640)`},
		{0o660, "users", false, `readable by group "users"`},
		{0o640, "root", true, ""},
		{0o640, ServiceGroup, false, ""},
		{0o620, "staff", false, ""}, // writable, not readable: not this warning
		{0o711, "staff", false, ""},
	}
	for _, row := range rows {
		got := modeWarning("/etc/gb.yaml", row.mode, row.group, row.ownGroup)
		if (row.want == "") != (got == "") || !strings.Contains(got, row.want) {
			t.Errorf("%04o group %s own %v: %q, want %q", row.mode, row.group, row.ownGroup, got, row.want)
		}
		if got != "" && (!strings.Contains(got, "/etc/gb.yaml") || !strings.Contains(got, "PINs")) {
			t.Errorf("%04o: %q does not name the file and what it holds", row.mode, got)
		}
	}
}

func TestFileModeWarning(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "gb.yaml")
	if err := os.WriteFile(file, EmbeddedYAML(), 0o600); err != nil {
		t.Fatal(err)
	}
	check := func(mode fs.FileMode, wantWarning bool) {
		t.Helper()
		if err := os.Chmod(file, mode); err != nil {
			t.Fatal(err)
		}
		w, err := FileModeWarning(file)
		if err != nil {
			t.Fatal(err)
		}
		if (w != "") != wantWarning {
			t.Errorf("%04o: warning %q", mode, w)
		}
	}
	check(0o600, false)
	check(0o644, true)
	check(0o604, true)
	check(0o640, false) // the test's own group
	// A group this process is not in, when the test may give the file one.
	if os.Chown(file, -1, 54321) == nil {
		check(0o640, true)
		check(0o600, false)
	}
	if _, err := FileModeWarning(filepath.Join(dir, "none.yaml")); err == nil {
		t.Error("no error for a missing file")
	}
}
