package testkit

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// RequirePeersEnv names the variable `make test` sets to 1: a test whose
// outside program is missing then fails instead of skipping, so that a
// run that was meant to cover everything cannot pass by skipping.
const RequirePeersEnv = "GROUPBRIDGE_REQUIRE_PEERS"

// NeedBinary returns the path of the program name: name itself from PATH,
// else the first candidate found. A candidate holding a slash is a path,
// and may be a glob (/usr/lib/postgresql/*/bin/initdb), of whose matches
// the highest version wins; one without is looked up in PATH. When none is
// found the test skips, or fails under GROUPBRIDGE_REQUIRE_PEERS=1.
func NeedBinary(t testing.TB, name string, candidates ...string) string {
	t.Helper()
	if p, ok := findBinary(name, candidates); ok {
		return p
	}
	msg := name + " not found (looked in PATH"
	if len(candidates) > 0 {
		msg += " and at " + strings.Join(candidates, ", ")
	}
	msg += "); make test installs it"
	if os.Getenv(RequirePeersEnv) == "1" {
		t.Fatalf("%s (%s=1: a missing program fails the test)", msg, RequirePeersEnv)
	}
	t.Skip(msg)
	return ""
}

func findBinary(name string, candidates []string) (string, bool) {
	for _, c := range append([]string{name}, candidates...) {
		if !strings.Contains(c, "/") {
			if p, err := exec.LookPath(c); err == nil {
				return p, true
			}
			continue
		}
		matches, _ := filepath.Glob(c)
		slices.SortFunc(matches, versionCompare)
		for i := len(matches) - 1; i >= 0; i-- {
			if executable(matches[i]) {
				return matches[i], true
			}
		}
	}
	return "", false
}

func executable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0
}

// versionCompare orders strings with runs of digits compared as numbers,
// so that postgresql/16 comes after postgresql/9.6.
func versionCompare(a, b string) int {
	for a != "" && b != "" {
		da, db := digitRun(a), digitRun(b)
		if da > 0 && db > 0 {
			na, nb := strings.TrimLeft(a[:da], "0"), strings.TrimLeft(b[:db], "0")
			if c := len(na) - len(nb); c != 0 {
				return c
			}
			if c := strings.Compare(na, nb); c != 0 {
				return c
			}
			a, b = a[da:], b[db:]
			continue
		}
		if a[0] != b[0] {
			return int(a[0]) - int(b[0])
		}
		a, b = a[1:], b[1:]
	}
	return len(a) - len(b)
}

func digitRun(s string) int {
	n := 0
	for n < len(s) && s[n] >= '0' && s[n] <= '9' {
		n++
	}
	return n
}
