package app

import (
	"context"
	"github.com/groupbridge/groupbridge/internal/testkit"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Interop with sipp (Debian's sip-tester), a SIP stack nobody here wrote.
// `make test` installs it; the scenarios live in testdata/sipp.

func sippPath(t *testing.T) string {
	t.Helper()
	return testkit.NeedBinary(t, "sipp")
}

// needRoot skips scenarios that replay RFC 4733 pcaps: sipp sends them on
// a raw socket.
func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("sipp replays RFC 4733 pcaps on a raw socket, which needs root")
	}
}

// runSipp runs one scenario against the app and returns its combined output.
func runSipp(t *testing.T, scenario, target string, args ...string) {
	t.Helper()
	sipp := sippPath(t)
	dir := t.TempDir()
	sf, err := filepath.Abs(filepath.Join("..", "..", "testdata", "sipp", scenario))
	if err != nil {
		t.Fatal(err)
	}
	full := append([]string{
		"-sf", sf,
		"-s", "groupbridge",
		"-i", "127.0.0.1", "-p", strconv.Itoa(freeUDPPort(t)),
		"-mp", strconv.Itoa(freeUDPPort(t)),
		"-nostdin", "-timeout", "60s", "-timeout_error",
		"-trace_err", "-error_file", filepath.Join(dir, "errors.log"),
	}, args...)
	full = append(full, target)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, sipp, full...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		errs, _ := os.ReadFile(filepath.Join(dir, "errors.log"))
		t.Fatalf("sipp %s: %v\n%s\nerrors:\n%s", scenario, err, tail(string(out), 3000), tail(string(errs), 3000))
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

func TestSippJoinMemberPIN(t *testing.T) {
	sippPath(t)
	needRoot(t)
	a, logs := startApp(t, testYAML("", ""))
	runSipp(t, "join_member.xml", sipAddr(t, a, "udp"), "-m", "1")
	if n := logs.count(t, "call joined", "role", "member", "group", "Circle"); n != 1 {
		t.Fatalf("%d member joins, want 1; log:\n%s", n, logs.String())
	}
	logs.waitCount(t, 5*time.Second, 1, "call ended", "reason", "remote-bye")
}

func TestSippJoinFacilitatorPIN(t *testing.T) {
	sippPath(t)
	needRoot(t)
	a, logs := startApp(t, testYAML("", ""))
	runSipp(t, "join_facilitator.xml", sipAddr(t, a, "udp"), "-m", "1")
	if n := logs.count(t, "call joined", "role", "facilitator"); n != 1 {
		t.Fatalf("%d facilitator joins, want 1; log:\n%s", n, logs.String())
	}
}

func TestSippJoinOverTCP(t *testing.T) {
	sippPath(t)
	needRoot(t)
	a, logs := startApp(t, testYAML("", ""))
	runSipp(t, "join_member.xml", sipAddr(t, a, "tcp"), "-m", "1", "-t", "t1")
	if n := logs.count(t, "call joined", "role", "member"); n != 1 {
		t.Fatalf("%d joins over TCP, want 1; log:\n%s", n, logs.String())
	}
}

func TestSipp20ConcurrentCalls(t *testing.T) {
	sippPath(t)
	needRoot(t)
	a, logs := startApp(t, testYAML("", ""))
	// 20 calls started at 20 per second, all in the room at once.
	runSipp(t, "join_member.xml", sipAddr(t, a, "udp"), "-m", "20", "-l", "20", "-r", "20")
	if n := logs.count(t, "call joined", "role", "member", "group", "Circle"); n != 20 {
		t.Fatalf("%d joins, want 20; log:\n%s", n, logs.String())
	}
	maxSeat := 0
	for _, r := range logs.records(t) {
		if r["msg"] == "call joined" {
			if s, ok := r["seat"].(float64); ok && int(s) > maxSeat {
				maxSeat = int(s)
			}
		}
	}
	if maxSeat < 2 {
		t.Fatalf("calls were never in the room together (highest seat %d)", maxSeat)
	}
	logs.waitCount(t, 10*time.Second, 20, "call ended")
}

func TestSippCancelBeforeAnswer(t *testing.T) {
	sippPath(t)
	a, logs := startApp(t, testYAML("  answer_delay: 3s", ""))
	runSipp(t, "cancel.xml", sipAddr(t, a, "udp"), "-m", "1")
	logs.waitCount(t, 5*time.Second, 1, "call cancelled")
	if n := logs.count(t, "call answered"); n != 0 {
		t.Fatalf("a cancelled call was answered")
	}
	if a.sip.ActiveCalls() != 0 {
		t.Fatalf("%d calls left after CANCEL", a.sip.ActiveCalls())
	}
}

func TestSippNoAckEndsCallWithBye(t *testing.T) {
	sippPath(t)
	cfg := testYAML("", "")
	clk := testkit.NewManualClock()
	a, logs := startAppWith(t, cfg, Options{Clock: clk})
	stop := runFast(clk) // RFC 3261's 32 s wait for the ACK, in about 0.7 s
	defer stop()
	runSipp(t, "no_ack.xml", sipAddr(t, a, "udp"), "-m", "1")
	logs.waitCount(t, 5*time.Second, 1, "no ACK for 200 OK, hanging up")
	if a.sip.ActiveCalls() != 0 {
		t.Fatalf("%d calls left", a.sip.ActiveCalls())
	}
}

func TestSippNoMediaEndsCallWithBye(t *testing.T) {
	sippPath(t)
	cfg := strings.Replace(testYAML("", ""), "timeout: 10s", "timeout: 2s", 1)
	a, logs := startApp(t, cfg)
	runSipp(t, "no_media.xml", sipAddr(t, a, "udp"), "-m", "1")
	logs.waitCount(t, 5*time.Second, 1, "call ended", "reason", "rtp-timeout")
}
