package testkit

import (
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// fakeTB records how NeedBinary ends a test, without ending this one: run
// in a goroutine of its own, it stops that goroutine as testing.T would.
type fakeTB struct {
	testing.TB
	skipped, failed bool
}

func (f *fakeTB) Helper()               {}
func (f *fakeTB) Skip(...any)           { f.skipped = true; runtime.Goexit() }
func (f *fakeTB) Skipf(string, ...any)  { f.skipped = true; runtime.Goexit() }
func (f *fakeTB) Fatal(...any)          { f.failed = true; runtime.Goexit() }
func (f *fakeTB) Fatalf(string, ...any) { f.failed = true; runtime.Goexit() }

func needBinary(tb *fakeTB, name string, candidates ...string) (path string) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		path = NeedBinary(tb, name, candidates...)
	}()
	<-done
	return path
}

func TestNeedBinary(t *testing.T) {
	dir := t.TempDir()
	for _, v := range []string{"9.6", "15", "16"} {
		bin := filepath.Join(dir, "pg", v, "bin")
		if err := os.MkdirAll(bin, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(bin, "tool"), []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// 16's is not executable, so 15's is the highest that runs.
	if err := os.Chmod(filepath.Join(dir, "pg", "16", "bin", "tool"), 0o644); err != nil {
		t.Fatal(err)
	}
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		bin        string
		candidates []string
		require    string
		want       string
		skip, fail bool
	}{
		{"in PATH", "sh", nil, "", sh, false, false},
		{"PATH first", "sh", []string{filepath.Join(dir, "pg", "*", "bin", "tool")}, "", sh, false, false},
		{"highest version that runs", "no-such-tool-x", []string{filepath.Join(dir, "pg", "*", "bin", "tool")}, "", filepath.Join(dir, "pg", "15", "bin", "tool"), false, false},
		{"a name candidate", "no-such-tool-x", []string{"sh"}, "", sh, false, false},
		{"missing skips", "no-such-tool-x", []string{filepath.Join(dir, "none", "*")}, "", "", true, false},
		{"missing fails when required", "no-such-tool-x", nil, "1", "", false, true},
		{"only 1 requires", "no-such-tool-x", nil, "0", "", true, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(RequirePeersEnv, tc.require)
			f := &fakeTB{TB: t}
			got := needBinary(f, tc.bin, tc.candidates...)
			if got != tc.want || f.skipped != tc.skip || f.failed != tc.fail {
				t.Errorf("got %q skipped %v failed %v, want %q %v %v", got, f.skipped, f.failed, tc.want, tc.skip, tc.fail)
			}
		})
	}
}

func TestVersionCompare(t *testing.T) {
	tests := []struct {
		a, b string
		want int // sign
	}{
		{"/usr/lib/postgresql/9.6", "/usr/lib/postgresql/16", -1},
		{"/usr/lib/postgresql/16", "/usr/lib/postgresql/15", 1},
		{"a/010", "a/10", 0},
		{"a/10/b", "a/10/c", -1},
		{"a", "a/1", -1},
		{"same", "same", 0},
	}
	for _, tc := range tests {
		got := versionCompare(tc.a, tc.b)
		if sign(got) != tc.want || sign(versionCompare(tc.b, tc.a)) != -tc.want {
			t.Errorf("versionCompare(%q, %q) = %d, want sign %d", tc.a, tc.b, got, tc.want)
		}
	}
}

func sign(n int) int {
	switch {
	case n < 0:
		return -1
	case n > 0:
		return 1
	}
	return 0
}

// TestPostgres starts a server, logs in with psql over TCP (a wrong
// password is refused), stops and restarts it on the same port and data,
// and leaves nothing behind.
func TestPostgres(t *testing.T) {
	var root string
	t.Run("server", func(t *testing.T) {
		pg := Postgres(t)
		root = pg.root
		psql := filepath.Join(pg.bin, "psql")
		query := func(dsn, sql string) (string, error) {
			cmd := exec.Command(psql, "-X", "-tA", "-d", dsn, "-c", sql)
			cmd.Env = append(pgEnv(), "PGCONNECT_TIMEOUT=5")
			out, err := cmd.CombinedOutput()
			return strings.TrimSpace(string(out)), err
		}
		u, err := url.Parse(pg.DSN())
		if err != nil {
			t.Fatal(err)
		}
		if u.Hostname() != "127.0.0.1" {
			t.Errorf("DSN host %s, want 127.0.0.1", u.Hostname())
		}
		if out, err := query(pg.DSN(), "CREATE TABLE kept (n int); INSERT INTO kept VALUES (7)"); err != nil {
			t.Fatalf("psql: %v\n%s\n%s", err, out, pg.Log())
		}
		wrong := *u
		wrong.User = url.UserPassword("postgres", "not-"+pg.Password())
		if out, err := query(wrong.String(), "SELECT 1"); err == nil || !strings.Contains(out, "password authentication failed") {
			t.Errorf("a wrong password: %v %s", err, out)
		}

		pg.Stop()
		pg.Stop() // twice is harmless
		if c, err := net.DialTimeout("tcp", u.Host, time.Second); err == nil {
			c.Close()
			t.Fatalf("%s still answers after Stop", u.Host)
		}
		pg.Start()
		if out, err := query(pg.DSN(), "SELECT n FROM kept"); err != nil || out != "7" {
			t.Errorf("after a restart: %q %v", out, err)
		}
	})
	if root == "" {
		return // skipped
	}
	if _, err := os.Stat(root); !os.IsNotExist(err) {
		t.Errorf("%s is still there after the test: %v", root, err)
	}
}
