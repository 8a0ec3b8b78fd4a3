package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/groupbridge/groupbridge/internal/softphone"
	"github.com/groupbridge/groupbridge/internal/testports"
	"github.com/groupbridge/groupbridge/media/tone"
)

// End-to-end tests of the process: the real binary, real signals.

var buildOnce struct {
	sync.Once
	path string
	err  error
}

// binary builds groupbridge once per test run.
func binary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "groupbridge-bin")
		if err != nil {
			buildOnce.err = err
			return
		}
		buildOnce.path = filepath.Join(dir, "groupbridge")
		out, err := exec.Command("go", "build", "-o", buildOnce.path, ".").CombinedOutput()
		if err != nil {
			buildOnce.err = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildOnce.err != nil {
		t.Fatal(buildOnce.err)
	}
	return buildOnce.path
}

// proc is a running groupbridge whose JSON log the test reads.
type proc struct {
	cmd  *exec.Cmd
	mu   sync.Mutex
	logs []map[string]any
	raw  strings.Builder
	done chan struct{} // closed when the process has exited
	err  error         // its exit status, valid once done is closed
}

func configYAML(groups string) string {
	base := testports.Shared(100) // ports no other process's test holds
	return fmt.Sprintf(`sip:
  listen: ["udp:127.0.0.1:0"]
rtp:
  address: 127.0.0.1
  port_min: %d
  port_max: %d
log:
  format: json
admin:
  listen: 127.0.0.1:0
groups:
%s`, base, base+99, groups)
}

func start(t *testing.T, file string) *proc {
	t.Helper()
	cmd := exec.Command(binary(t), "serve", "--config", file)
	// Beside the file, in the test's own directory: the attendance store's
	// default path is relative.
	cmd.Dir = filepath.Dir(file)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, done: make(chan struct{})}
	go p.read(stderr)
	go func() { p.err = cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

func (p *proc) read(r io.Reader) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var m map[string]any
		p.mu.Lock()
		p.raw.WriteString(sc.Text() + "\n")
		if json.Unmarshal(sc.Bytes(), &m) == nil {
			p.logs = append(p.logs, m)
		}
		p.mu.Unlock()
	}
}

// wait returns the first log record with msg (and key=value pairs) within d.
func (p *proc) wait(t *testing.T, d time.Duration, msg string, kv ...string) map[string]any {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		p.mu.Lock()
	next:
		for _, r := range p.logs {
			if r["msg"] != msg {
				continue
			}
			for i := 0; i+1 < len(kv); i += 2 {
				if fmt.Sprint(r[kv[i]]) != kv[i+1] {
					continue next
				}
			}
			p.mu.Unlock()
			return r
		}
		p.mu.Unlock()
		time.Sleep(50 * time.Millisecond)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	t.Fatalf("no %q %v log record within %v; log:\n%s", msg, kv, d, p.raw.String())
	return nil
}

func (p *proc) count(msg string, kv ...string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
next:
	for _, r := range p.logs {
		if r["msg"] != msg {
			continue
		}
		for i := 0; i+1 < len(kv); i += 2 {
			if fmt.Sprint(r[kv[i]]) != kv[i+1] {
				continue next
			}
		}
		n++
	}
	return n
}

func (p *proc) sipAddr(t *testing.T) string {
	r := p.wait(t, 10*time.Second, "listening")
	return strings.TrimPrefix(fmt.Sprint(r["sip"]), "udp:")
}

func callWithPIN(t *testing.T, server, caller, pin string) *softphone.Phone {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ph, err := softphone.Dial(ctx, softphone.Config{Server: server, Caller: caller})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		_ = ph.Hangup(ctx)
	})
	if err := ph.SendDigits(ctx, pin+"#", softphone.DigitRFC4733); err != nil {
		t.Fatal(err)
	}
	return ph
}

// PINs long and irregular enough that no random id in the log contains them.
const groupA = `  - name: Alpha
    member_pin: "48213579"
`
const groupB = `  - name: Beta
    member_pin: "73915246"
`

func TestSIGHUPReloadsGroupsAndRefusesBadFiles(t *testing.T) {
	file := filepath.Join(t.TempDir(), "groupbridge.yaml")
	cfg := configYAML(groupA)
	if err := os.WriteFile(file, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	p := start(t, file)
	server := p.sipAddr(t)
	first := callWithPIN(t, server, "+15553000001", "48213579")
	p.wait(t, 10*time.Second, "call joined", "group", "Alpha")

	// A new group appears on SIGHUP; the call in Alpha goes on.
	if err := os.WriteFile(file, []byte(strings.Replace(cfg, groupA, groupA+groupB, 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	p.wait(t, 5*time.Second, "configuration reloaded")
	callWithPIN(t, server, "+15553000002", "73915246")
	p.wait(t, 10*time.Second, "call joined", "group", "Beta")

	// A bad file is refused, its problems logged, the old configuration kept.
	bad := strings.Replace(cfg, groupA, groupA+groupB+"  - name: Gamma\n    member_pin: \"12\"\n", 1)
	if err := os.WriteFile(file, []byte(bad), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	r := p.wait(t, 5*time.Second, "reload refused")
	if !strings.Contains(fmt.Sprint(r["problem"]), "member_pin") {
		t.Errorf("refusal does not name the key: %v", r)
	}
	p.wait(t, 5*time.Second, "the running configuration is unchanged")
	callWithPIN(t, server, "+15553000003", "73915246")
	deadline := time.Now().Add(10 * time.Second)
	for p.count("call joined", "group", "Beta") < 2 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if p.count("call joined", "group", "Beta") < 2 {
		t.Fatal("after a refused reload, the previous configuration no longer admits Beta")
	}
	select {
	case <-first.Done():
		t.Fatal("a reload dropped a call")
	default:
	}
	p.mu.Lock()
	raw := p.raw.String()
	p.mu.Unlock()
	for _, secret := range []string{"48213579", "73915246", "5553000001"} {
		if strings.Contains(raw, secret) {
			t.Errorf("the log contains %q", secret)
		}
	}
}

func TestSIGTERMHangsUpEveryoneAndExitsZero(t *testing.T) {
	file := filepath.Join(t.TempDir(), "groupbridge.yaml")
	if err := os.WriteFile(file, []byte(configYAML(groupA)), 0o600); err != nil {
		t.Fatal(err)
	}
	p := start(t, file)
	server := p.sipAddr(t)
	a := callWithPIN(t, server, "+15553000011", "48213579")
	b := callWithPIN(t, server, "+15553000012", "48213579")
	p.wait(t, 10*time.Second, "call joined", "seat", "2")
	time.Sleep(3 * time.Second) // join prompts over: the room is silent
	sigterm := time.Now()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.done:
		if p.err != nil {
			t.Fatalf("exit: %v", p.err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("did not exit within the drain timeout")
	}
	for i, ph := range []*softphone.Phone{a, b} {
		select {
		case <-ph.Done():
			if !ph.EndedByRemote() {
				t.Errorf("caller %d not hung up by the bridge", i+1)
			}
		case <-time.After(5 * time.Second):
			t.Errorf("caller %d still connected after the bridge exited", i+1)
		}
		// "This line is closing for maintenance...": speech, where the
		// silent room had nothing.
		if lv := tone.RMSDBFS(ph.Media().Received(sigterm)); lv < -40 {
			t.Errorf("caller %d heard no closing message (level %.1f dBFS)", i+1, lv)
		}
	}
}
