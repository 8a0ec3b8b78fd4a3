package softphone

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/groupbridge/groupbridge/internal/testkit"
	"github.com/groupbridge/groupbridge/internal/testports"
	"github.com/groupbridge/groupbridge/media/g711"
	"github.com/groupbridge/groupbridge/media/tone"
)

// These tests call sipp, a SIP stack nobody here wrote, so the phone is
// judged by a real peer rather than by code sharing its assumptions.

func TestMain(m *testing.M) {
	// sipgo logs a few things through its package-global logger rather than
	// the one it is given (a "TCP ref went negative" warning whenever the
	// local side closes a TCP connection first). A library must not set
	// process-wide state, so only this test binary quiets it; the bridge's
	// composition root routes it through its redacting logger.
	sip.SetDefaultLogger(slog.New(slog.DiscardHandler))
	os.Exit(m.Run())
}

// sipp is one sipp process acting as the UAS.
type sipp struct {
	cmd       *exec.Cmd
	addr      string // SIP host:port
	mediaPort int
	out       *testkit.LogBuffer
	exited    chan struct{}
	err       error // valid after exited
}

// freePort returns a port for sipp that belongs to the test until it
// ends (testports.Port, checked for UDP and TCP): below the kernel's
// ephemeral ports, so a socket bound to port 0 meanwhile cannot take it.
// startSipp still retries if a program outside the tests took it.
func freePort(t *testing.T) int {
	t.Helper()
	return testports.Port(t)
}

// startSipp runs sipp as UAS for one call: scenario is "uas" for the
// built-in one, a file name under testdata or an absolute path. It echoes RTP. The process is
// killed by PID when the test ends.
func startSipp(t *testing.T, transport, scenario string, extra ...string) *sipp {
	t.Helper()
	bin := testkit.NeedBinary(t, "sipp")
	var lastOut string
	for range 3 {
		port := freePort(t)
		mport := freePort(t)
		args := []string{"-i", "127.0.0.1", "-p", strconv.Itoa(port),
			"-mi", "127.0.0.1", "-mp", strconv.Itoa(mport), "-rtp_echo",
			"-m", "1", "-nostdin", "-timeout", "30", "-timeout_error"}
		if scenario == "uas" {
			args = append(args, "-sn", "uas")
		} else {
			abs := scenario
			if !filepath.IsAbs(abs) {
				var err error
				if abs, err = filepath.Abs(filepath.Join("testdata", scenario)); err != nil {
					t.Fatal(err)
				}
			}
			args = append(args, "-sf", abs)
		}
		if transport == "tcp" {
			args = append(args, "-t", "t1")
		}
		args = append(args, extra...)
		s := &sipp{
			cmd:       exec.Command(bin, args...),
			addr:      net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
			mediaPort: mport,
			out:       &testkit.LogBuffer{},
			exited:    make(chan struct{}),
		}
		s.cmd.Dir = t.TempDir() // sipp writes its logs into the working directory
		s.cmd.Stdout, s.cmd.Stderr = s.out, s.out
		if err := s.cmd.Start(); err != nil {
			t.Fatalf("start sipp: %v", err)
		}
		go func() {
			s.err = s.cmd.Wait()
			close(s.exited)
		}()
		t.Cleanup(func() {
			_ = s.cmd.Process.Kill()
			<-s.exited
		})
		if s.ready(transport) {
			return s
		}
		lastOut = s.out.String()
	}
	t.Fatalf("sipp did not start:\n%s", lastOut)
	return nil
}

// ready waits until sipp listens. For TCP that is checked in /proc-free
// fashion by waiting for the process to stay up and the port to be taken;
// for UDP the INVITE's retransmissions cover a slow start anyway.
func (s *sipp) ready(transport string) bool {
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-s.exited:
			return false
		default:
		}
		network := "udp4"
		if transport == "tcp" {
			network = "tcp4"
		}
		if portTaken(network, s.addr) && portTaken("udp4", net.JoinHostPort("127.0.0.1", strconv.Itoa(s.mediaPort))) {
			return true
		}
		time.Sleep(10 * time.Millisecond)
	}
	return false
}

// portTaken reports whether binding addr fails, i.e. sipp holds it. It
// never connects, so sipp sees no stray traffic.
func portTaken(network, addr string) bool {
	if strings.HasPrefix(network, "tcp") {
		l, err := net.Listen(network, addr)
		if err != nil {
			return true
		}
		_ = l.Close()
		return false
	}
	c, err := net.ListenPacket(network, addr)
	if err != nil {
		return true
	}
	_ = c.Close()
	return false
}

// wait waits for sipp to finish its one call and fails the test unless it
// counted it successful.
func (s *sipp) wait(t *testing.T) {
	t.Helper()
	select {
	case <-s.exited:
	case <-time.After(10 * time.Second):
		t.Fatalf("sipp did not finish:\n%s", s.out.String())
	}
	if s.err != nil {
		t.Fatalf("sipp failed the call (%v):\n%s", s.err, s.out.String())
	}
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// waitAudio polls until at least n samples arrived after since.
func waitAudio(t *testing.T, p *Phone, since time.Time, n int) []int16 {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		got := p.Media().Received(since)
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("received %d samples after 5 s, want %d", len(got), n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// checkTone fails unless samples carry freq at about dBFS and nothing much
// at the other frequency.
func checkTone(t *testing.T, samples []int16, freq, dBFS, other float64) {
	t.Helper()
	if got := tone.LevelDBFS(samples, freq); got < dBFS-2 || got > dBFS+2 {
		t.Errorf("level at %.0f Hz = %.1f dBFS, want %.0f±2", freq, got, dBFS)
	}
	if got := tone.LevelDBFS(samples, other); got > dBFS-30 {
		t.Errorf("level at %.0f Hz = %.1f dBFS, want below %.0f", other, got, dBFS-30)
	}
}

func TestSippEchoTone(t *testing.T) {
	cases := []struct {
		name      string
		transport string
		lateOffer bool
		codecs    []g711.Codec
	}{
		{"udp", "udp", false, nil},
		{"tcp", "tcp", false, nil},
		{"udp late offer", "udp", true, nil},
		{"tcp late offer", "tcp", true, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := startSipp(t, tc.transport, "uas")
			ctx := testCtx(t)
			p, err := Dial(ctx, Config{
				Server: s.addr, Transport: tc.transport, Caller: "+15551234567",
				LateOffer: tc.lateOffer, Codecs: tc.codecs,
			})
			if err != nil {
				t.Fatalf("Dial: %v\nsipp:\n%s", err, s.out.String())
			}
			if p.Media().Codec() != g711.PCMU {
				t.Errorf("codec = %v, want PCMU (sipp offers only that)", p.Media().Codec())
			}
			if got := p.Media().RemoteRTP().Port(); int(got) != s.mediaPort {
				t.Errorf("remote RTP port = %d, want sipp's %d", got, s.mediaPort)
			}
			p.Media().SendTone(1000, -10)
			time.Sleep(100 * time.Millisecond) // let frames made before the switch drain
			since := time.Now()
			got := waitAudio(t, p, since, 4000)
			checkTone(t, got, 1000, -10, 1700)
			recv, lost := p.Media().RTPStats()
			if recv == 0 || lost != 0 {
				t.Errorf("RTPStats = %d received, %d lost; want some and none lost on loopback", recv, lost)
			}
			if err := p.Hangup(ctx); err != nil {
				t.Fatalf("Hangup: %v\nsipp:\n%s", err, s.out.String())
			}
			select {
			case <-p.Done():
			default:
				t.Error("Done not closed after Hangup")
			}
			if p.EndedByRemote() {
				t.Error("EndedByRemote after our own BYE")
			}
		})
	}
}

// TestNoGoroutineLeak makes a whole call with a private Agent and checks
// that every goroutine it started is gone afterwards.
func TestNoGoroutineLeak(t *testing.T) {
	for _, transport := range []string{"udp", "tcp"} {
		t.Run(transport, func(t *testing.T) {
			s := startSipp(t, transport, "uas")
			before := runtime.NumGoroutine()
			ctx := testCtx(t)
			p, err := Dial(ctx, Config{Server: s.addr, Transport: transport})
			if err != nil {
				t.Fatalf("Dial: %v", err)
			}
			p.Media().SendTone(440, -20)
			waitAudio(t, p, time.Time{}, 1600)
			if err := p.SendDigits(ctx, "1", DigitInband); err != nil {
				t.Fatal(err)
			}
			if err := p.Hangup(ctx); err != nil {
				t.Fatal(err)
			}
			deadline := time.Now().Add(3 * time.Second)
			for runtime.NumGoroutine() > before {
				if time.Now().After(deadline) {
					buf := make([]byte, 1<<20)
					n := runtime.Stack(buf, true)
					t.Fatalf("%d goroutines before the call, %d after:\n%s", before, runtime.NumGoroutine(), buf[:n])
				}
				time.Sleep(20 * time.Millisecond)
			}
		})
	}
}

func TestSippRemoteBye(t *testing.T) {
	for _, transport := range []string{"udp", "tcp"} {
		t.Run(transport, func(t *testing.T) {
			s := startSipp(t, transport, "uas_bye.xml")
			ctx := testCtx(t)
			p, err := Dial(ctx, Config{Server: s.addr, Transport: transport, Caller: "+15551234567"})
			if err != nil {
				t.Fatalf("Dial: %v\nsipp:\n%s", err, s.out.String())
			}
			select {
			case <-p.Done():
			case <-ctx.Done():
				t.Fatalf("the bridge's BYE did not end the call\nsipp:\n%s", s.out.String())
			}
			if !p.EndedByRemote() {
				t.Error("EndedByRemote = false after the peer's BYE")
			}
			if err := p.Hangup(ctx); err != nil {
				t.Errorf("Hangup after the end = %v, want nil", err)
			}
			if err := p.SendDigits(ctx, "1", DigitRFC4733); !errors.Is(err, ErrEnded) {
				t.Errorf("SendDigits after the end = %v, want ErrEnded", err)
			}
			s.wait(t)
		})
	}
}

func TestSippReject(t *testing.T) {
	for _, code := range []int{486, 488, 503} {
		t.Run(strconv.Itoa(code), func(t *testing.T) {
			tmpl, err := os.ReadFile(filepath.Join("testdata", "uas_reject.xml.tmpl"))
			if err != nil {
				t.Fatal(err)
			}
			sf := filepath.Join(t.TempDir(), "uas_reject.xml")
			if err := os.WriteFile(sf, bytes.ReplaceAll(tmpl, []byte("@CODE@"), []byte(strconv.Itoa(code))), 0o600); err != nil {
				t.Fatal(err)
			}
			s := startSipp(t, "udp", sf)
			p, err := Dial(testCtx(t), Config{Server: s.addr})
			var se *StatusError
			if !errors.As(err, &se) {
				t.Fatalf("Dial = %v, %v; want a *StatusError", p, err)
			}
			if se.StatusCode != code {
				t.Errorf("StatusCode = %d, want %d", se.StatusCode, code)
			}
			s.wait(t)
		})
	}
}

func TestSippCancel(t *testing.T) {
	s := startSipp(t, "udp", "uas_cancel.xml")
	a, err := DialAsync(testCtx(t), Config{Server: s.addr})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-a.Proceeding():
	case <-time.After(5 * time.Second):
		t.Fatal("no provisional response")
	}
	code, err := a.Cancel()
	if code != 487 || err != nil {
		t.Fatalf("Cancel = %d, %v; want 487, nil\nsipp:\n%s", code, err, s.out.String())
	}
	p, err := a.Wait()
	var se *StatusError
	if p != nil || !errors.As(err, &se) || se.StatusCode != 487 || !errors.Is(err, errCancelled) {
		t.Errorf("Wait after Cancel = %v, %v; want no phone and a cancelled 487", p, err)
	}
	s.wait(t)
}

// TestDialDeadlineWithoutAnswer checks that a ctx deadline bounds Dial even
// when the server never answers at all (sipgo alone would wait for Timer B).
func TestDialDeadlineWithoutAnswer(t *testing.T) {
	dead, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer dead.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = Dial(ctx, Config{Server: dead.LocalAddr().String()})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Dial = %v, want DeadlineExceeded", err)
	}
	if time.Since(start) > 10*time.Second {
		t.Errorf("Dial took %v after its deadline", time.Since(start))
	}
}

func TestSippMidCall(t *testing.T) {
	for _, transport := range []string{"udp", "tcp"} {
		t.Run(transport, func(t *testing.T) {
			s := startSipp(t, transport, "uas_midcall.xml")
			ctx := testCtx(t)
			p, err := Dial(ctx, Config{Server: s.addr, Transport: transport})
			if err != nil {
				t.Fatalf("Dial: %v\nsipp:\n%s", err, s.out.String())
			}
			if p.Media().Codec() != g711.PCMA || p.Media().TelephoneEvent() != 101 {
				t.Errorf("codec %v, telephone-event %d; want sipp's first choice PCMA and 101", p.Media().Codec(), p.Media().TelephoneEvent())
			}
			// sipp echoes the telephone-events back: 8 packets per press.
			if err := p.SendDigits(ctx, "12", DigitRFC4733); err != nil {
				t.Fatalf("RFC 4733 digits: %v", err)
			}
			deadline := time.Now().Add(3 * time.Second)
			for {
				_, _, events := p.stream.rtpStats()
				if events >= 16 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("%d telephone-event packets echoed, want 16", events)
				}
				time.Sleep(20 * time.Millisecond)
			}
			if err := p.SendDigits(ctx, "5", DigitInfoRelay); err != nil {
				t.Fatalf("INFO dtmf-relay: %v\nsipp:\n%s", err, s.out.String())
			}
			if err := p.SendDigits(ctx, "#", DigitInfo); err != nil {
				t.Fatalf("INFO dtmf: %v\nsipp:\n%s", err, s.out.String())
			}
			if err := p.Hold(ctx); err != nil {
				t.Fatalf("Hold: %v\nsipp:\n%s", err, s.out.String())
			}
			if err := p.Resume(ctx); err != nil {
				t.Fatalf("Resume: %v\nsipp:\n%s", err, s.out.String())
			}
			p.Media().SendTone(1000, -10)
			time.Sleep(100 * time.Millisecond)
			checkTone(t, waitAudio(t, p, time.Now(), 4000), 1000, -10, 1700)
			if err := p.Hangup(ctx); err != nil {
				t.Fatalf("Hangup: %v", err)
			}
			s.wait(t)
		})
	}
}

// TestSippSharedAgent runs two calls through one Agent at once: each must
// get its own echo back (its own RTP socket) and both BYEs must be answered.
func TestSippSharedAgent(t *testing.T) {
	s := startSipp(t, "udp", "uas", "-m", "2")
	agent, err := NewAgent(AgentConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer agent.Close()
	ctx := testCtx(t)
	freqs := []float64{700, 1300}
	phones := make([]*Phone, len(freqs))
	for i := range freqs {
		p, err := Dial(ctx, Config{Server: s.addr, Agent: agent, Caller: fmt.Sprintf("+1555000000%d", i)})
		if err != nil {
			t.Fatalf("Dial %d: %v\nsipp:\n%s", i, err, s.out.String())
		}
		phones[i] = p
	}
	for i, p := range phones {
		p.Media().SendTone(freqs[i], -10)
	}
	time.Sleep(100 * time.Millisecond)
	since := time.Now()
	for i, p := range phones {
		checkTone(t, waitAudio(t, p, since, 4000), freqs[i], -10, freqs[1-i])
		if p.SIPAddr() != agent.SIPAddr("udp") {
			t.Errorf("phone %d SIP address %v, want the agent's %v", i, p.SIPAddr(), agent.SIPAddr("udp"))
		}
	}
	if phones[0].Media().LocalRTP() == phones[1].Media().LocalRTP() {
		t.Error("two phones share an RTP socket")
	}
	for _, p := range phones {
		if err := p.Hangup(ctx); err != nil {
			t.Fatal(err)
		}
	}
}
