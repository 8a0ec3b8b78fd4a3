package app

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"syscall"
	"testing"
	"time"

	"github.com/groupbridge/groupbridge/config"
	"github.com/groupbridge/groupbridge/internal/testkit"
)

// A cluster node in a process of its own, so that a test can kill it
// (SIGKILL) or stall it (SIGSTOP) as an operator's machine would: this
// test binary run again with the node's configuration in nodeProcessEnv
// (TestMain), logging to its standard output, which the test reads.

const nodeProcessEnv = "GROUPBRIDGE_TEST_NODE"

// runNodeProcess runs a bridge from yaml until SIGTERM; its exit code.
func runNodeProcess(yaml string) int {
	cfg, err := config.Parse([]byte(yaml))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	a, err := New(cfg, Options{LogOutput: os.Stdout})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := a.Start(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	<-sig
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.Shutdown(ctx); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// procNode is a node in its own process.
type procNode struct {
	cmd  *exec.Cmd
	logs *syncBuffer
	sip  string // its UDP SIP address
	done chan struct{}
}

// startProcNode starts a node process from yaml, whose SIP listener is
// udp:ip:port, and waits until it has started. The test ends it.
func startProcNode(t *testing.T, yaml, sip string) *procNode {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), nodeProcessEnv+"="+yaml)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	errs := &testkit.LogBuffer{}
	cmd.Stderr = errs
	n := &procNode{cmd: cmd, logs: &syncBuffer{}, sip: sip, done: make(chan struct{})}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		_, _ = io.Copy(n.logs, out)
	}()
	go func() {
		<-copied
		_ = cmd.Wait()
		close(n.done)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGCONT) // a stalled node cannot stop
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-n.done:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			<-n.done
		}
		if t.Failed() {
			t.Logf("node process stderr:\n%s\nits log:\n%s", errs.String(), n.logs.String())
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for n.logs.count(t, "groupbridge started") == 0 {
		select {
		case <-n.done:
			t.Fatalf("node process ended at start:\n%s\n%s", errs.String(), n.logs.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("node process did not start:\n%s", n.logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	return n
}

// kill ends the node at once (SIGKILL): no BYE, no lease given up.
func (n *procNode) kill(t *testing.T) {
	t.Helper()
	if err := n.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-n.done
}
