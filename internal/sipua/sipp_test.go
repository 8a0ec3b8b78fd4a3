package sipua

import (
	"context"
	"github.com/groupbridge/groupbridge/internal/testkit"
	"github.com/groupbridge/groupbridge/internal/testports"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// Interop with sipp (Debian's sip-tester) for digest authentication: a
// client nobody here wrote must meet our challenge. sipp answers only the
// first WWW-Authenticate and knows only MD5, which is why MD5 leads.

func runSipp(t *testing.T, scenario, target string, args ...string) {
	t.Helper()
	sipp := testkit.NeedBinary(t, "sipp")
	dir := t.TempDir()
	sf, err := filepath.Abs(filepath.Join("testdata", "sipp", scenario))
	if err != nil {
		t.Fatal(err)
	}
	full := append([]string{
		"-sf", sf, "-s", "groupbridge", "-m", "1",
		"-i", "127.0.0.1", "-p", strconv.Itoa(freeUDPPort(t)), "-mp", strconv.Itoa(freeUDPPort(t)),
		"-nostdin", "-timeout", "20s", "-timeout_error",
		"-trace_err", "-error_file", filepath.Join(dir, "errors.log"),
	}, args...)
	full = append(full, target)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, sipp, full...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		errs, _ := os.ReadFile(filepath.Join(dir, "errors.log"))
		t.Fatalf("sipp %s: %v\n%s\nerrors:\n%s", scenario, err, out, errs)
	}
}

// freeUDPPort returns a port for sipp that belongs to t until it ends.
func freeUDPPort(t *testing.T) int {
	t.Helper()
	return testports.Port(t)
}

func TestSippDigest(t *testing.T) {
	s := testServer(t, untrusted(alice))
	target := sipAddr(t, s, "udp").String()
	// sipp's digest uri is remote_ip:remote_port unless told; ours must
	// name the Request-URI (sip:[service]@...).
	uri := "groupbridge@" + target
	runSipp(t, "digest.xml", target, "-au", "alice", "-ap", "correct horse", "-auth_uri", uri)
	runSipp(t, "digest_wrong.xml", target, "-au", "alice", "-ap", "wrong horse", "-auth_uri", uri)
	if c, f, b := s.AuthStats(); c != 2 || f != 1 || b != 0 {
		t.Errorf("AuthStats() = %d, %d, %d; want 2, 1, 0", c, f, b)
	}
}
