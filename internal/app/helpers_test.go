package app

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/groupbridge/groupbridge/config"
	"github.com/groupbridge/groupbridge/internal/callerid"
	"github.com/groupbridge/groupbridge/internal/logging"
	"github.com/groupbridge/groupbridge/internal/softphone"
	"github.com/groupbridge/groupbridge/internal/testkit"
	"github.com/groupbridge/groupbridge/internal/testports"
	"github.com/groupbridge/groupbridge/media/tone"
)

// syncBuffer is a log sink the app writes from many goroutines.
type syncBuffer struct {
	testkit.LogBuffer
	app *App // whose log this is, when startApp made it: see caller
}

// Write keeps a log record without its time: tests look for digits of a
// PIN or a caller's number in the log, and a timestamp's nanoseconds can
// hold any of them (a record's time is the handler's, never the call's).
func (b *syncBuffer) Write(p []byte) (int, error) {
	rec := p
	switch {
	case bytes.HasPrefix(rec, []byte(`{"time":"`)):
		if i := bytes.Index(rec, []byte(`",`)); i > 0 {
			rec = append([]byte{'{'}, rec[i+2:]...)
		}
	case bytes.HasPrefix(rec, []byte("time=")):
		if i := bytes.IndexByte(rec, ' '); i > 0 {
			rec = rec[i+1:]
		}
	}
	if _, err := b.LogBuffer.Write(rec); err != nil {
		return 0, err
	}
	return len(p), nil
}

// caller is how the log names the caller of a call from number (the
// From user): the app's tag or masked number (log.callers).
func (b *syncBuffer) caller(number string) string {
	if b.app == nil {
		return logging.MaskCaller(number)
	}
	return b.app.callerName(number)
}

// callerName is how a's logs name the caller of a call from number.
func (a *App) callerName(number string) string {
	return a.flow.Label(numberCaller(callerid.Normalize(number)))
}

// numberCaller is a caller known by its number alone.
type numberCaller string

func (n numberCaller) Caller() string    { return string(n) }
func (numberCaller) CallerPrivate() bool { return false }
func (numberCaller) NoIdentity() bool    { return false }

// records parses the JSON log lines written so far.
func (b *syncBuffer) records(t *testing.T) []map[string]any {
	t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(b.String()))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("log line is not JSON: %q", sc.Text())
		}
		out = append(out, m)
	}
	return out
}

// count returns how many log records have msg and every key=value given.
func (b *syncBuffer) count(t *testing.T, msg string, kv ...string) int {
	n := 0
outer:
	for _, r := range b.records(t) {
		if r["msg"] != msg {
			continue
		}
		for i := 0; i+1 < len(kv); i += 2 {
			if fmt.Sprint(r[kv[i]]) != kv[i+1] {
				continue outer
			}
		}
		n++
	}
	return n
}

// waitCount waits until count(msg, kv...) reaches want.
func (b *syncBuffer) waitCount(t *testing.T, d time.Duration, want int, msg string, kv ...string) {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if b.count(t, msg, kv...) >= want {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("waited %v for %d %q %v records, have %d; log:\n%s", d, want, msg, kv, b.count(t, msg, kv...), b.String())
}

// rtpRange picks a port range for one test's RTP from this process's
// pool (testports.Shared): tests of this package may overlap, which the
// RTP pool handles by passing over a bound port, but no other process's
// and no test's own range (testports.Range) lies in it.
func rtpRange() (int, int) {
	base := testports.Shared(200)
	return base, base + 199
}

// testYAML is a configuration on free loopback ports; sipExtra is added to
// the sip: section, and groups, when set, replaces the default group list.
func testYAML(sipExtra, groups string) string {
	lo, hi := rtpRange()
	return testYAMLPorts(sipExtra, groups, lo, hi)
}

// testYAMLPorts is testYAML with a given RTP port range.
func testYAMLPorts(sipExtra, groups string, lo, hi int) string {
	if groups == "" {
		groups = `
  - name: Circle
    member_pin: "1234"
    facilitator_pin: "654321"
    led_by: peer
`
	}
	return fmt.Sprintf(`
sip:
  listen: ["udp:127.0.0.1:0", "tcp:127.0.0.1:0"]
%s
rtp:
  address: 127.0.0.1
  port_min: %d
  port_max: %d
  timeout: 10s
log:
  format: json
admin:
  listen: 127.0.0.1:0
attendance:
  path: %s
groups:%s`, sipExtra, lo, hi, storePath(), groups)
}

// storeDir holds the attendance stores of this package's tests (TestMain):
// no test writes groupbridge-data/ into the source tree.
var (
	storeDir string
	storeN   atomic.Int64
)

// storePath is a new attendance store's file in storeDir: each
// configuration made by testYAML has its own.
func storePath() string {
	return filepath.Join(storeDir, "attendance-"+letters(storeN.Add(1))+".db")
}

// letters writes n in letters only: the store's path is logged, and tests
// look for a PIN's or a caller number's digits in the log.
func letters(n int64) string {
	var b []byte
	for ; n > 0; n /= 26 {
		b = append(b, byte('a'+n%26))
	}
	return string(b)
}

func TestMain(m *testing.M) {
	if y := os.Getenv(nodeProcessEnv); y != "" {
		os.Exit(runNodeProcess(y)) // a cluster node of a test in another process
	}
	var dir string
	for try := 0; dir == ""; try++ {
		// Not os.MkdirTemp: its name has random digits (see letters).
		var r [8]byte
		_, _ = rand.Read(r[:])
		name := make([]byte, len(r))
		for i, v := range r {
			name[i] = 'a' + v%26
		}
		d := filepath.Join(os.TempDir(), "groupbridge-app-test-"+string(name))
		if err := os.Mkdir(d, 0o700); err == nil {
			dir = d
		} else if !os.IsExist(err) || try > 10 {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
	storeDir = dir
	_, before := os.Stat(filepath.Dir(config.DefaultAttendancePath))
	code := m.Run()
	_ = os.RemoveAll(dir)
	// The default path is relative: a test that kept it would have
	// written into the source tree.
	if _, err := os.Stat(filepath.Dir(config.DefaultAttendancePath)); err == nil && before != nil {
		fmt.Fprintf(os.Stderr, "a test wrote %s into the source tree\n", config.DefaultAttendancePath)
		code = 1
	}
	os.Exit(code)
}

// startApp runs the whole bridge in-process from a YAML string.
func startApp(t *testing.T, yaml string) (*App, *syncBuffer) {
	t.Helper()
	return startAppWith(t, yaml, Options{})
}

// startAppWith is startApp with options; the log always goes to the
// returned buffer.
func startAppWith(t *testing.T, yaml string, opts Options) (*App, *syncBuffer) {
	t.Helper()
	cfg, err := config.Parse([]byte(yaml))
	if err != nil {
		t.Fatalf("config: %v\n%s", err, yaml)
	}
	if cfg.Attendance.Path == config.DefaultAttendancePath {
		cfg.Attendance.Path = filepath.Join(t.TempDir(), "attendance.db") // a YAML not made by testYAML
	}
	logs := &syncBuffer{}
	opts.LogOutput = logs
	a, err := New(cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	logs.app = a
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
	return a, logs
}

// sipAddr returns the bound address of the app's listener for transport.
func sipAddr(t *testing.T, a *App, transport string) string {
	t.Helper()
	for _, l := range a.SIPAddrs() {
		if l.Transport == transport {
			return l.Addr.String()
		}
	}
	t.Fatalf("no %s listener", transport)
	return ""
}

// freeUDPPort returns a port for a peer program (sipp, Kamailio) that
// belongs to t until it ends (testports.Port).
func freeUDPPort(t *testing.T) int {
	t.Helper()
	return testports.Port(t)
}

// A broken operator prompt is refused at start-up with a clear error.
func TestBadOperatorPromptRefused(t *testing.T) {
	dir := t.TempDir()
	// 11.025 kHz is not a rate recorders make today: refused.
	hdr := []byte("RIFF\x24\x00\x00\x00WAVEfmt \x10\x00\x00\x00\x01\x00\x02\x00\x11\x2b\x00\x00\x44\xac\x00\x00\x04\x00\x10\x00data\x00\x00\x00\x00")
	if err := os.WriteFile(filepath.Join(dir, "welcome.wav"), hdr, 0o600); err != nil {
		t.Fatal(err)
	}
	y := strings.Replace(testYAML("", ""), "log:\n", "prompts:\n  dir: "+dir+"\nlog:\n", 1)
	cfg, err := config.Parse([]byte(y))
	if err != nil {
		t.Fatal(err)
	}
	_, err = New(cfg, Options{})
	if err == nil || !strings.Contains(err.Error(), "welcome.wav") || !strings.Contains(err.Error(), "prompts.dir") {
		t.Fatalf("err = %v, want a prompts.dir error naming welcome.wav", err)
	}
}

// rmsOf is the RMS level of s in dBFS (a full-scale sine is 0).
func rmsOf(s []int16) float64 { return tone.RMSDBFS(s) }

// levels2 is the level of freq over all of s.
func levels2(s []int16, freq float64) float64 { return tone.LevelDBFS(s, freq) }

// testContext is a context with a timeout.
func testContext(d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), d)
}

// joinRoom calls in one phone per PIN, in order, with caller numbers
// +1555 and base, base+1, ... and waits until each has joined; it returns
// the phones in the same order. The room must be empty before.
func joinRoom(t *testing.T, a *App, logs *syncBuffer, base int, pins ...string) []*softphone.Phone {
	t.Helper()
	phones := make([]*softphone.Phone, len(pins))
	for i := range pins {
		phones[i] = dial(t, a, softphone.Config{Caller: fmt.Sprintf("+1555%07d", base+i)})
	}
	for i, pin := range pins {
		enter(t, logs, phones[i], pin, softphone.DigitRFC4733, i+1)
	}
	return phones
}

// runFast moves clk on by a second every 20 ms of real time, 50 times the
// real speed, until the returned stop is called: half a minute of SIP
// timers (RFC 3261's 64*T1 ACK wait) in well under a second.
func runFast(clk *testkit.ManualClock) (stop func()) {
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				clk.Advance(time.Second)
			}
		}
	}()
	return func() { close(done); <-finished }
}

// The test log keeps records without their times, in both formats, and
// reports every byte written.
func TestSyncBufferDropsTime(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{`{"time":"2026-12-06T13:21:16.450739157Z","level":"INFO","msg":"joined"}` + "\n", `{"level":"INFO","msg":"joined"}` + "\n"},
		{"time=2026-12-06T13:21:16.450Z level=INFO msg=joined\n", "level=INFO msg=joined\n"},
		{"no time here\n", "no time here\n"},
	} {
		var b syncBuffer
		if n, err := b.Write([]byte(tt.in)); n != len(tt.in) || err != nil {
			t.Errorf("Write(%q) = %d, %v", tt.in, n, err)
		}
		if got := b.String(); got != tt.want {
			t.Errorf("Write(%q) kept %q, want %q", tt.in, got, tt.want)
		}
	}
}
