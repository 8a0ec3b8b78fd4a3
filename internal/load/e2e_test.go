package load

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/groupbridge/groupbridge/config"
	"github.com/groupbridge/groupbridge/internal/app"
	"github.com/groupbridge/groupbridge/internal/testports"
)

// reflectorChildEnv makes the test binary serve the reflector, so that the
// reflector test runs it as a child process like the command does.
const reflectorChildEnv = "GROUPBRIDGE_LOAD_TEST_REFLECTOR"

func TestMain(m *testing.M) {
	if v := os.Getenv(reflectorChildEnv); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			fmt.Fprintln(os.Stderr, "reflector child:", err)
			os.Exit(2)
		}
		ctx, cancel := context.WithCancel(context.Background())
		go func() {
			_, _ = io.Copy(io.Discard, os.Stdin)
			cancel()
		}()
		if err := ServeReflector(ctx, n, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "reflector child:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func reflectorCmd(n int) *exec.Cmd {
	c := exec.Command(os.Args[0], "-test.run=^$")
	c.Env = append(os.Environ(), reflectorChildEnv+"="+strconv.Itoa(n))
	c.Stderr = os.Stderr
	return c
}

// startBridge runs the whole bridge in-process with two peer rooms on
// loopback SIP ports the kernel picks and RTP ports of the test's own.
func startBridge(t *testing.T) string {
	t.Helper()
	base := testports.Range(t, 100)
	yaml := fmt.Sprintf(`
sip:
  listen: ["udp:127.0.0.1:0"]
rtp:
  address: 127.0.0.1
  port_min: %d
  port_max: %d
admin:
  listen: ""
groups:
  - name: Room A
    member_pin: "2468"
    led_by: peer
  - name: Room B
    member_pin: "13579"
    led_by: peer
`, base, base+99)
	cfg, err := config.Parse([]byte(yaml))
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	cfg.Attendance.Path = filepath.Join(t.TempDir(), "attendance.db") // not the relative default
	a, err := app.New(cfg, app.Options{LogOutput: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := a.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	for _, l := range a.SIPAddrs() {
		if l.Transport == "udp" {
			return l.Addr.String()
		}
	}
	t.Fatal("no UDP listener")
	return ""
}

// Six callers in two rooms of a real bridge, with PINs by RFC 4733 and by
// SIP INFO without telephone-event: every set-up succeeds, every caller
// receives packets, and the sampled listeners hear their room (so every
// PIN was taken).
func TestLoadAgainstBridge(t *testing.T) {
	t.Parallel()
	for _, digits := range []string{DigitsRFC4733, DigitsInfo} {
		t.Run(digits, func(t *testing.T) {
			t.Parallel()
			loadAgainstBridge(t, digits)
		})
	}
}

func loadAgainstBridge(t *testing.T, digits string) {
	target := startBridge(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	rep, err := Run(ctx, Options{
		Target: target, Calls: 6, Rooms: 2, PINs: []string{"2468", "13579"},
		Duration: 2 * time.Second, Rate: 20, PID: os.Getpid(), Digits: digits,
	})
	if err != nil {
		t.Fatal(err)
	}
	var out writerFunc = func(p []byte) (int, error) { t.Logf("%s", p); return len(p), nil }
	_ = rep.WriteText(out)
	if rep.Setups.Succeeded != 6 || len(rep.Setups.Failures) != 0 {
		t.Fatalf("set-ups: %+v", rep.Setups)
	}
	if rep.Up != 6 {
		t.Fatalf("%d calls up through the window, want 6", rep.Up)
	}
	// Every caller received packets: the least-served one got some.
	if rep.Received.Min <= 0 {
		t.Fatalf("a caller received nothing: %+v", rep.Received)
	}
	switch {
	case rep.Tone.Sampled == 2 && rep.Tone.Heard == 2:
	case rep.Tone.Sampled == 2 && rep.Tone.TalkerStalls > 0:
		// The callers (in this process, beside the bridge) could not send
		// on time: what the listeners missed measures the machine.
		t.Skipf("tone check %+v not judged: the callers sent %d frames late or not at all", rep.Tone, rep.Tone.TalkerStalls)
	default:
		t.Fatalf("tone check %+v, want both rooms' sampled listeners to hear their room", rep.Tone)
	}
	if rep.TargetCPU == nil || rep.TargetCPU.Seconds <= 0 {
		t.Fatalf("no CPU measured: %+v", rep.TargetCPU)
	}
}

// The reflector, as a child process, echoes four paced senders' packets.
func TestReflector(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rep, err := Run(ctx, Options{Calls: 4, Duration: 2 * time.Second, Reflector: true, ReflectorCmd: reflectorCmd})
	if err != nil {
		t.Fatal(err)
	}
	r := rep.Reflector
	if r == nil || r.Up != 4 {
		t.Fatalf("reflector report %+v", r)
	}
	if r.Received.Min <= 0 || r.Loss.Expected == 0 {
		t.Fatalf("echoes: %+v, loss %+v", r.Received, r.Loss)
	}
	if r.TargetCPU == nil || r.TargetCPU.PID <= 0 || r.TargetCPU.PID == os.Getpid() {
		t.Fatalf("reflector CPU not from a child: %+v", r.TargetCPU)
	}
	if r.Intervals.P50 <= 0 {
		t.Fatalf("no intervals: %+v", r.Intervals)
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
