package sipua

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/groupbridge/groupbridge/internal/testkit"
	"github.com/groupbridge/groupbridge/internal/testports"
	"github.com/groupbridge/groupbridge/media/pcm"
	"github.com/groupbridge/groupbridge/media/tone"
)

// The UAC side: calls placed from one groupbridge sipua to another over
// loopback, and to sipp's UAS.

// callee starts a server whose handler hands each answered call to the
// test and holds it until it ends.
func callee(t *testing.T, mod func(*Config)) (*Server, <-chan *Call) {
	t.Helper()
	calls := make(chan *Call, 4)
	s := testServer(t, func(c *Config) {
		c.Handler = HandlerFunc(func(call *Call) {
			calls <- call
			<-call.Context().Done()
		})
		if mod != nil {
			mod(c)
		}
	})
	return s, calls
}

// target is a sip: URI that reaches s over UDP.
func target(t *testing.T, s *Server) string {
	return "sip:room@" + sipAddr(t, s, "udp").String()
}

// dial places a call from a to b and returns both ends.
func dial(t *testing.T, a, b *Server, calls <-chan *Call) (out, in *Call) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	out, err := a.Dial(ctx, target(t, b), DialOptions{})
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	select {
	case in = <-calls:
	case <-time.After(3 * time.Second):
		t.Fatal("the callee's handler got no call")
	}
	return out, in
}

// waitFor polls cond for up to 3 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// toneShare sends a tone of hz from send's stream, every 20 ms for d,
// while reading recv's stream, and returns the share of 100 ms blocks of
// what recv played whose level at hz is above -30 dBFS (Goertzel). The
// first 300 ms, while the jitter buffer fills, are not judged.
func toneShare(send, recv interface {
	WriteFrame(*pcm.Frame)
	ReadFrame(*pcm.Frame) bool
}, hz float64, d time.Duration) float64 {
	sine := tone.NewSine(hz, -10)
	var out, in pcm.Frame
	var got []int16
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for range int(d / (20 * time.Millisecond)) {
		<-tick.C
		sine.Fill(&out)
		send.WriteFrame(&out)
		in = pcm.Frame{}
		recv.ReadFrame(&in)
		got = append(got, in[:]...)
	}
	got = got[len(got)*3/10:]
	const block = 800
	above, blocks := 0, len(got)/block
	for i := range blocks {
		if tone.LevelDBFS(got[i*block:(i+1)*block], hz) > -30 {
			above++
		}
	}
	if blocks == 0 {
		return 0
	}
	return float64(above) / float64(blocks)
}

func TestDialAudio(t *testing.T) {
	a := testServer(t, nil)
	b, calls := callee(t, nil)
	out, in := dial(t, a, b, calls)
	if out.Codec() != in.Codec() {
		t.Fatalf("codecs differ: caller %v, callee %v", out.Codec(), in.Codec())
	}
	for _, tc := range []struct {
		name      string
		from, to  *Call
		hz        float64
		wantAbove float64
	}{
		{"caller to callee", out, in, 1000, 0.8},
		{"callee to caller", in, out, 600, 0.8},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := toneShare(tc.from.Stream(), tc.to.Stream(), tc.hz, 1500*time.Millisecond); got < tc.wantAbove {
				t.Errorf("%.0f Hz heard in %.0f%% of blocks; want at least %.0f%%", tc.hz, 100*got, 100*tc.wantAbove)
			}
		})
	}
	out.Hangup("done")
}

func TestDialDigits(t *testing.T) {
	a := testServer(t, nil)
	b, calls := callee(t, nil)
	out, in := dial(t, a, b, calls)
	// Audio flows both ways meanwhile, as from a phone: the telephone
	// events share the RTP session with it.
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		var f pcm.Frame
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				out.Stream().WriteFrame(&f)
				in.Stream().WriteFrame(&f)
			}
		}
	}()
	time.Sleep(200 * time.Millisecond)
	for _, tc := range []struct {
		name     string
		from, to *Call
		mode     DigitMode
		keys     string
	}{
		{"rfc4733 caller to callee", out, in, DigitRFC4733, "12#"},
		{"info caller to callee", out, in, DigitInfo, "*90"},
		{"rfc4733 callee to caller", in, out, DigitRFC4733, "47"},
		{"info callee to caller", in, out, DigitInfo, "5#"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := tc.from.SendDigits(ctx, tc.keys, tc.mode); err != nil {
				t.Fatalf("SendDigits: %v", err)
			}
			var got []byte
			for len(got) < len(tc.keys) {
				select {
				case d := <-tc.to.Digits():
					got = append(got, d)
				case <-time.After(2 * time.Second):
					t.Fatalf("got keys %q; want %q", got, tc.keys)
				}
			}
			if string(got) != tc.keys {
				t.Errorf("got keys %q; want %q", got, tc.keys)
			}
		})
	}
}

func TestDialBye(t *testing.T) {
	withTCP := func(c *Config) {
		c.Listeners = append(c.Listeners, Listener{"tcp", netip.AddrPortFrom(loopback, 0)})
	}
	for _, tc := range []struct {
		name       string
		transport  string
		callerEnds bool
	}{
		{"udp caller hangs up", "udp", true},
		{"udp callee hangs up", "udp", false},
		{"tcp caller hangs up", "tcp", true},
		{"tcp callee hangs up", "tcp", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := testServer(t, withTCP)
			b, calls := callee(t, withTCP)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			out, err := a.Dial(ctx, "sip:room@"+sipAddr(t, b, tc.transport).String(), DialOptions{Transport: tc.transport})
			if err != nil {
				t.Fatalf("Dial: %v", err)
			}
			var in *Call
			select {
			case in = <-calls:
			case <-time.After(3 * time.Second):
				t.Fatal("the callee's handler got no call")
			}
			ender, other := in, out
			if tc.callerEnds {
				ender, other = out, in
			}
			ender.Hangup("test")
			select {
			case <-other.Context().Done():
			case <-time.After(3 * time.Second):
				t.Fatal("the other side did not see the BYE")
			}
			if r := other.EndReason(); r != "remote-bye" {
				t.Errorf("other side's end reason = %q; want remote-bye", r)
			}
			waitFor(t, "both call tables to empty", func() bool { return a.ActiveCalls() == 0 && b.ActiveCalls() == 0 })
		})
	}
}

// resources counts the process's goroutines and open files (sockets).
func resources(t *testing.T) (goroutines, fds int) {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("cannot count open files: %v", err)
	}
	return runtime.NumGoroutine(), len(ents)
}

// waitFreed waits until goroutines and open files are back to what they
// were before a call. The callee's sipgo keeps a goroutine with the ACK
// of its non-2xx answer until Timer I (T4, 5 s) ends that transaction.
func waitFreed(t *testing.T, g0, f0 int) {
	t.Helper()
	deadline := time.Now().Add(8 * time.Second)
	for {
		g, f := resources(t)
		if g <= g0 && f <= f0 {
			return
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Logf("goroutines:\n%s", buf[:runtime.Stack(buf, true)])
			t.Fatalf("after the call: %d goroutines and %d open files; before it %d and %d", g, f, g0, f0)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestDialRefused(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mod    func(*Config)
		drain  bool
		code   int
		reason string
	}{
		{"403 untrusted source", func(c *Config) { c.Trusted = []netip.Prefix{} }, false, 403, "Forbidden"},
		{"488 srtp required", func(c *Config) { c.SRTP, c.SRTPOverUDP = SRTPRequire, true }, false, 488, "Not Acceptable Here"},
		{"503 draining", nil, true, 503, "Service Unavailable"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := testServer(t, nil)
			b, calls := callee(t, tc.mod)
			if tc.drain {
				b.Drain()
			}
			g0, f0 := resources(t)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			c, err := a.Dial(ctx, target(t, b), DialOptions{})
			var refusal *AnswerError
			if !errors.As(err, &refusal) {
				t.Fatalf("Dial = %v, %v; want an *AnswerError", c, err)
			}
			if refusal.Code != tc.code || refusal.Reason != tc.reason {
				t.Errorf("refused with %d %q; want %d %q", refusal.Code, refusal.Reason, tc.code, tc.reason)
			}
			if !strings.Contains(err.Error(), strconv.Itoa(tc.code)) {
				t.Errorf("error %q does not name the code", err)
			}
			if n := a.ActiveCalls(); n != 0 {
				t.Errorf("caller's ActiveCalls() = %d; want 0", n)
			}
			select {
			case <-calls:
				t.Error("the callee's handler got the refused call")
			default:
			}
			waitFreed(t, g0, f0)
		})
	}
}

func TestDialCancel(t *testing.T) {
	for _, tc := range []struct {
		name    string
		ring    time.Duration
		cancel  bool // cancel the context on 180
		wantErr error
	}{
		{"context cancelled while ringing", 0, true, context.Canceled},
		{"ring timeout", 400 * time.Millisecond, false, ErrRingTimeout},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := testServer(t, nil)
			b, calls := callee(t, func(c *Config) { c.AnswerDelay = 20 * time.Second })
			g0, f0 := resources(t)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			ringing := make(chan struct{}, 1)
			opts := DialOptions{RingTimeout: tc.ring, OnProgress: func(code int) {
				if code == 180 {
					ringing <- struct{}{}
				}
			}}
			if tc.cancel {
				go func() {
					<-ringing
					if n := b.ActiveCalls(); n != 1 {
						t.Errorf("callee's ActiveCalls() while ringing = %d; want 1", n)
					}
					cancel()
				}()
			}
			_, err := a.Dial(ctx, target(t, b), opts)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("Dial error = %v; want %v", err, tc.wantErr)
			}
			var refusal *AnswerError
			if !errors.As(err, &refusal) || refusal.Code != 487 {
				t.Errorf("Dial error = %v; want the callee's 487", err)
			}
			waitFor(t, "the callee to drop the call", func() bool { return b.ActiveCalls() == 0 })
			select {
			case <-calls:
				t.Error("the callee's handler got the cancelled call")
			default:
			}
			waitFreed(t, g0, f0)
		})
	}
}

// startSippUAS runs sipp's built-in UAS for one call on loopback, echoing
// RTP, and returns its address and a channel closed with its exit error.
func startSippUAS(t *testing.T) (netip.AddrPort, <-chan error) {
	t.Helper()
	bin := testkit.NeedBinary(t, "sipp")
	port, mport := testports.Port(t), testports.Port(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	cmd := exec.CommandContext(ctx, bin, "-sn", "uas", "-i", "127.0.0.1", "-p", strconv.Itoa(port),
		"-mi", "127.0.0.1", "-mp", strconv.Itoa(mport), "-rtp_echo", "-m", "1", "-nostdin",
		"-timeout", "20s", "-timeout_error")
	cmd.Dir = t.TempDir()
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("start sipp: %v", err)
	}
	done := make(chan error, 1)
	exited := make(chan struct{})
	go func() {
		err := cmd.Wait()
		if err != nil {
			err = errors.Join(err, errors.New(out.String()))
		}
		done <- err
		close(exited)
	}()
	t.Cleanup(func() {
		cancel() // kills sipp by its own process if still running
		<-exited
	})
	addr := netip.AddrPortFrom(loopback, uint16(port))
	// Ready when it holds its SIP port, as the kernel's socket table says:
	// trying to bind the port to find out would take it from sipp for a
	// moment, and a sipp starting then fails to bind and exits.
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if udpBound(t, port) {
			return addr, done
		}
		select {
		case <-exited:
			t.Fatalf("sipp ended at start: %s", out.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	t.Fatal("sipp did not bind its port")
	return addr, done
}

// udpBound reports whether a UDP socket is bound to port on this machine
// (/proc/net/udp: local addresses as hex IP:port).
func udpBound(t *testing.T, port int) bool {
	t.Helper()
	b, err := os.ReadFile("/proc/net/udp")
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf(":%04X ", port)
	for _, line := range strings.Split(string(b), "\n")[1:] {
		if f := strings.Fields(line); len(f) > 1 && strings.HasSuffix(f[1]+" ", want) {
			return true
		}
	}
	return false
}

func TestDialSippUAS(t *testing.T) {
	addr, exited := startSippUAS(t)
	a := testServer(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := a.Dial(ctx, "sip:service@"+addr.String(), DialOptions{})
	if err != nil {
		t.Fatalf("Dial sipp: %v", err)
	}
	// sipp echoes our RTP: the tone comes back.
	if got := toneShare(c.Stream(), c.Stream(), 1000, 1500*time.Millisecond); got < 0.8 {
		t.Errorf("echoed tone heard in %.0f%% of blocks; want at least 80%%", 100*got)
	}
	c.Hangup("done")
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("sipp: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("sipp did not end after our BYE")
	}
	waitFor(t, "the call table to empty", func() bool { return a.ActiveCalls() == 0 })
}

// TestAnswerDelayOnTheClock: the ringing before an answer runs on
// Config.Clock, so a 30 s answer delay passes when the test moves the
// clock, not in real time.
func TestAnswerDelayOnTheClock(t *testing.T) {
	clk := testkit.NewManualClock()
	a := testServer(t, nil)
	b, calls := callee(t, func(c *Config) { c.Clock, c.AnswerDelay = clk, 30*time.Second })
	ringing := make(chan struct{}, 1)
	type result struct {
		c   *Call
		err error
	}
	done := make(chan result, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		c, err := a.Dial(ctx, target(t, b), DialOptions{OnProgress: func(code int) {
			if code == 180 {
				ringing <- struct{}{}
			}
		}})
		done <- result{c, err}
	}()
	select {
	case <-ringing:
	case <-time.After(3 * time.Second):
		t.Fatal("no 180 Ringing")
	}
	select {
	case r := <-done:
		t.Fatalf("answered before the clock moved: %v, %v", r.c, r.err)
	case <-time.After(300 * time.Millisecond):
	}
	clk.Advance(30 * time.Second)
	select {
	case r := <-done:
		if r.err != nil {
			t.Fatalf("Dial: %v", r.err)
		}
		select {
		case <-calls:
		case <-time.After(3 * time.Second):
			t.Fatal("the callee's handler got no call")
		}
		r.c.Hangup("done")
	case <-time.After(3 * time.Second):
		t.Fatal("not answered after the clock moved 30 s")
	}
}

// TestRTPTimeoutOnAManualClock: media idleness is measured on the clock
// that stamps the packets (real time, in rtpio), whatever Config.Clock
// says: a silent call ends with rtp-timeout though the server's clock
// stands years in the past and only steps to run the watcher.
func TestRTPTimeoutOnAManualClock(t *testing.T) {
	clk := testkit.NewManualClock()
	a := testServer(t, nil)
	b, calls := callee(t, func(c *Config) { c.Clock, c.RTPTimeout = clk, time.Second })
	out, in := dial(t, a, b, calls)
	defer out.Hangup("done")
	deadline := time.Now().Add(5 * time.Second)
	for in.Context().Err() == nil && time.Now().Before(deadline) {
		clk.Advance(500 * time.Millisecond)
		time.Sleep(100 * time.Millisecond)
	}
	if got := in.EndReason(); got != "rtp-timeout" {
		t.Fatalf("a call without media ended with %q, want rtp-timeout", got)
	}
}
