package app

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"text/template"
	"time"

	"github.com/groupbridge/groupbridge/internal/testkit"
)

// Interop with a real SIP proxy: Kamailio (Debian's kamailio package, which
// `make test` installs) started by the test on loopback in front of the
// bridge, record-routing every call. The configuration lives in
// testdata/kamailio; it logs one "gbtest" line per request and reply it
// handles, which is how these tests see that in-dialog requests really
// crossed the proxy: sipp would accept a BYE that bypassed it.

// kamailioPath finds the kamailio binary; Debian installs it in /usr/sbin,
// which an unprivileged user's PATH usually lacks.
func kamailioPath(t *testing.T) string {
	t.Helper()
	return testkit.NeedBinary(t, "kamailio", "/usr/sbin/kamailio")
}

// kamailioProxy is one Kamailio run by a test. Callers send to front;
// Kamailio relays to the bridge from back, which advertises route, so a
// call gets two Record-Route headers: route's first and front's second as
// the bridge sees them.
type kamailioProxy struct {
	front, back, route int
	log                *syncBuffer
}

// routeAddr is the address of the Record-Route towards the bridge.
func (k *kamailioProxy) routeAddr() string { return "127.0.0.1:" + strconv.Itoa(k.route) }

// frontAddr is where callers send their INVITEs.
func (k *kamailioProxy) frontAddr() string { return "127.0.0.1:" + strconv.Itoa(k.front) }

// startKamailio runs Kamailio in the foreground relaying calls for
// "groupbridge" to the bridge's listener at bridge ("udp" or "tcp"
// transport), waits until it answers OPTIONS and stops it (by PID) when
// the test ends.
func startKamailio(t *testing.T, transport, bridge string) *kamailioProxy {
	t.Helper()
	bin := kamailioPath(t)
	_, bp, err := net.SplitHostPort(bridge)
	if err != nil {
		t.Fatalf("bridge address %q: %v", bridge, err)
	}
	bridgePort, _ := strconv.Atoi(bp)
	tmpl, err := template.ParseFiles(filepath.Join("..", "..", "testdata", "kamailio", "proxy.cfg.tmpl"))
	if err != nil {
		t.Fatalf("kamailio template: %v", err)
	}
	return retryKamailio(t, func() (*kamailioProxy, error) {
		return tryKamailio(t, bin, tmpl, transport, bridgePort)
	})
}

func tryKamailio(t *testing.T, bin string, tmpl *template.Template, transport string, bridgePort int) (*kamailioProxy, error) {
	t.Helper()
	k := &kamailioProxy{front: freeUDPPort(t), back: freeUDPPort(t), route: freeUDPPort(t), log: &syncBuffer{}}
	return k, runKamailio(t, bin, k, tmpl, struct {
		FrontPort, BackPort, RoutePort, BridgePort int
		BridgeTransport                            string
	}{k.front, k.back, k.route, bridgePort, transport})
}

// retryKamailio starts Kamailio with try up to three times: its ports are
// the test's own (testports), but a program outside the tests may still
// bind one of them before Kamailio does.
func retryKamailio(t *testing.T, try func() (*kamailioProxy, error)) *kamailioProxy {
	t.Helper()
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		k, err := try()
		if err == nil {
			return k
		}
		lastErr = err
		t.Logf("kamailio start attempt %d: %v", attempt+1, err)
	}
	t.Fatalf("kamailio did not start: %v", lastErr)
	return nil
}

// runKamailio writes the configuration from tmpl and data into a fresh
// directory, starts Kamailio on it, waits until it answers OPTIONS on
// k.front and stops it by PID when the test ends (its log is shown if the
// test failed).
func runKamailio(t *testing.T, bin string, k *kamailioProxy, tmpl *template.Template, data any) error {
	t.Helper()
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "kamailio.cfg")
	f, err := os.Create(cfgPath)
	if err != nil {
		return fmt.Errorf("write config: %w", err)
	}
	err = tmpl.Execute(f, data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write config: %w", err)
	}
	pidFile := filepath.Join(dir, "kamailio.pid")
	// -DD: stay in the foreground (children still fork); -E: log to
	// stderr; -n 1: one worker per socket; -m/-M: a few MB of memory is
	// plenty for a test; -Y/-w: runtime files in the test's directory.
	cmd := exec.Command(bin, "-f", cfgPath, "-DD", "-E", "-n", "1", "-m", "32", "-M", "4",
		"-P", pidFile, "-Y", dir, "-w", dir)
	cmd.Stdout = k.log
	cmd.Stderr = k.log
	// Its own process group, so that no worker outlives a main process
	// that had to be killed.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", bin, err)
	}
	// exited is closed once the main process is reaped: from then on its
	// PID may belong to someone else and must not be signalled.
	exited := make(chan struct{})
	var waitErr error
	go func() {
		waitErr = cmd.Wait()
		close(exited)
	}()
	stop := func() {
		select {
		case <-exited:
			return
		default:
		}
		pid := cmd.Process.Pid
		_ = syscall.Kill(pid, syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			t.Errorf("kamailio (pid %d) ignored SIGTERM; killing its process group", pid)
			_ = syscall.Kill(-pid, syscall.SIGKILL)
			<-exited
		}
	}

	if err := k.waitReady(cmd.Process.Pid, pidFile, exited, &waitErr); err != nil {
		stop()
		return fmt.Errorf("%w; kamailio log:\n%s", err, tail(k.log.String(), 3000))
	}
	t.Cleanup(func() {
		stop()
		if t.Failed() {
			t.Logf("kamailio log:\n%s", k.log.String())
		}
	})
	return nil
}

// waitReady sends OPTIONS to the front socket until Kamailio answers 200,
// and checks that the PID file names the process the test started.
// waitErr is read only once exited is closed.
func (k *kamailioProxy) waitReady(pid int, pidFile string, exited <-chan struct{}, waitErr *error) error {
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("probe socket: %w", err)
	}
	defer conn.Close()
	local := conn.LocalAddr().String()
	to, err := net.ResolveUDPAddr("udp", k.frontAddr())
	if err != nil {
		return fmt.Errorf("resolve %s: %w", k.frontAddr(), err)
	}
	buf := make([]byte, 4096)
	deadline := time.Now().Add(10 * time.Second)
	for i := 0; time.Now().Before(deadline); i++ {
		select {
		case <-exited:
			return fmt.Errorf("kamailio exited before answering: %v", *waitErr)
		default:
		}
		probe := fmt.Sprintf("OPTIONS sip:%s SIP/2.0\r\n"+
			"Via: SIP/2.0/UDP %s;branch=z9hG4bKready%d;rport\r\n"+
			"From: <sip:probe@%s>;tag=probe%d\r\n"+
			"To: <sip:%s>\r\n"+
			"Call-ID: ready-%d@127.0.0.1\r\n"+
			"CSeq: %d OPTIONS\r\n"+
			"Max-Forwards: 70\r\n"+
			"Content-Length: 0\r\n\r\n",
			k.frontAddr(), local, i, local, i, k.frontAddr(), i, i+1)
		if _, err := conn.WriteTo([]byte(probe), to); err != nil {
			return fmt.Errorf("send OPTIONS: %w", err)
		}
		_ = conn.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		n, _, err := conn.ReadFrom(buf)
		if err != nil || !strings.HasPrefix(string(buf[:n]), "SIP/2.0 200 ") {
			continue
		}
		b, err := os.ReadFile(pidFile)
		if err != nil {
			return fmt.Errorf("kamailio answers but wrote no PID file: %w", err)
		}
		if got, _ := strconv.Atoi(strings.TrimSpace(string(b))); got != pid {
			return fmt.Errorf("PID file says %q, the test started %d", strings.TrimSpace(string(b)), pid)
		}
		return nil
	}
	return errors.New("no 200 for OPTIONS within 10 s")
}

// proxyEvent is one "gbtest" line of the Kamailio configuration: a request
// (method, the port it reached, its source, its Route URIs in order and
// its Request-URI) or a reply (code, method, port, source).
type proxyEvent struct {
	kind, method, src string
	rcv, code         int
	routes            []string // host:port of each Route URI, in order
	ruri              string
}

var (
	proxyRequestRE = regexp.MustCompile(`gbtest request method=(\S+) rcv=(\d+) src=(\S+) routes=(.*) ruri=(\S+)\s*$`)
	proxyReplyRE   = regexp.MustCompile(`gbtest reply code=(\d+) method=(\S+) rcv=(\d+) src=(\S+)\s*$`)
)

// events parses what Kamailio has logged so far.
func (k *kamailioProxy) events(t *testing.T) []proxyEvent {
	t.Helper()
	var out []proxyEvent
	for _, line := range strings.Split(k.log.String(), "\n") {
		if m := proxyRequestRE.FindStringSubmatch(line); m != nil {
			rcv, _ := strconv.Atoi(m[2])
			out = append(out, proxyEvent{kind: "request", method: m[1], rcv: rcv, src: m[3],
				routes: routeHostPorts(m[4]), ruri: m[5]})
		} else if m := proxyReplyRE.FindStringSubmatch(line); m != nil {
			code, _ := strconv.Atoi(m[1])
			rcv, _ := strconv.Atoi(m[3])
			out = append(out, proxyEvent{kind: "reply", code: code, method: m[2], rcv: rcv, src: m[4]})
		}
	}
	return out
}

// routeHostPorts turns Kamailio's "<sip:a:1;lr>,<sip:b:2;lr>" (or <null>)
// into ["a:1", "b:2"].
func routeHostPorts(s string) []string {
	if s == "<null>" || s == "" {
		return nil
	}
	var out []string
	for _, r := range strings.Split(s, ",") {
		r = strings.TrimSpace(r)
		r = strings.TrimPrefix(r, "<")
		if i := strings.IndexAny(r, ";>"); i >= 0 {
			r = r[:i]
		}
		r = strings.TrimPrefix(r, "sip:")
		if i := strings.LastIndex(r, "@"); i >= 0 {
			r = r[i+1:]
		}
		out = append(out, r)
	}
	return out
}

func TestRouteHostPorts(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{"<null>", nil},
		{"<sip:127.0.0.1:5070;r2=on;lr;ftag=abc>", []string{"127.0.0.1:5070"}},
		{"<sip:127.0.0.1:5072;r2=on;lr;ftag=x>, <sip:127.0.0.1:5070;r2=on;lr;ftag=x>",
			[]string{"127.0.0.1:5072", "127.0.0.1:5070"}},
		{"<sip:u@proxy.example:5060;lr>,<sip:10.0.0.1;lr>", []string{"proxy.example:5060", "10.0.0.1"}},
	} {
		if got := routeHostPorts(tc.in); fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("routeHostPorts(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// find returns the events of kind and method.
func find(evs []proxyEvent, kind, method string) []proxyEvent {
	var out []proxyEvent
	for _, e := range evs {
		if e.kind == kind && e.method == method {
			out = append(out, e)
		}
	}
	return out
}

// checkNoBypass fails the test if Kamailio saw an in-dialog request that did
// not name it in Route (the configuration logs "gbtest no-route").
func (k *kamailioProxy) checkNoBypass(t *testing.T) {
	t.Helper()
	if strings.Contains(k.log.String(), "gbtest no-route") {
		t.Errorf("an in-dialog request reached Kamailio without a Route naming it; log:\n%s", k.log.String())
	}
}

// proxyTransports are the transports between Kamailio and the bridge; the
// caller always talks UDP to Kamailio.
var proxyTransports = []string{"udp", "tcp"}

// A caller reaches the room through a record-routing proxy, types the
// member PIN and hangs up; ACK and BYE follow the route set through the
// proxy to the bridge.
func TestKamailioCallerHangsUpThroughProxy(t *testing.T) {
	sippPath(t)
	kamailioPath(t)
	needRoot(t)
	for _, transport := range proxyTransports {
		t.Run(transport, func(t *testing.T) {
			a, logs := startApp(t, testYAML("", ""))
			bridge := sipAddr(t, a, transport)
			k := startKamailio(t, transport, bridge)

			runSipp(t, "proxy_join_member.xml", k.frontAddr(), "-m", "1", "-timeout", "20s")

			if n := logs.count(t, "call joined", "role", "member", "group", "Circle"); n != 1 {
				t.Fatalf("%d member joins through the proxy, want 1; log:\n%s", n, logs.String())
			}
			logs.waitCount(t, 5*time.Second, 1, "call ended", "reason", "remote-bye")
			if n := logs.count(t, "call answered", "transport", transport); n != 1 {
				t.Errorf("%d calls answered over %s, want 1; log:\n%s", n, transport, logs.String())
			}

			evs := k.events(t)
			// The INVITE came to the front with no Route (a first hop) ...
			if inv := find(evs, "request", "INVITE"); len(inv) != 1 || inv[0].rcv != k.front || len(inv[0].routes) != 0 {
				t.Errorf("INVITEs seen by the proxy: %+v, want one on the front socket %d without Route", inv, k.front)
			}
			// ... the bridge's 200 came back: over UDP to the proxy's Via
			// sent-by, the advertised route socket (RFC 3261 18.2.2, no
			// rport); over TCP on the connection the INVITE came on ...
			replies := k.route
			if transport == "tcp" {
				replies = k.back
			}
			if !hasReply(evs, "INVITE", 200, replies, bridge) {
				t.Errorf("no 200 for the INVITE from the bridge %s on proxy socket %d: %+v", bridge, replies, evs)
			}
			// ... and the caller's ACK and BYE crossed the proxy on the
			// route set sipp learnt from the bridge's 200 (its
			// Record-Route, reversed) to the bridge's Contact.
			wantRoutes := fmt.Sprint([]string{k.frontAddr(), k.routeAddr()})
			for _, m := range []string{"ACK", "BYE"} {
				got := find(evs, "request", m)
				if len(got) == 0 {
					t.Errorf("the caller's %s did not cross the proxy; log:\n%s", m, k.log.String())
					continue
				}
				e := got[0]
				if e.rcv != k.front || fmt.Sprint(e.routes) != wantRoutes {
					t.Errorf("%s at the proxy: socket %d, routes %v; want socket %d, routes %s", m, e.rcv, e.routes, k.front, wantRoutes)
				}
				if !strings.Contains(e.ruri, "@"+bridge) {
					t.Errorf("%s Request-URI %q is not the bridge's Contact at %s", m, e.ruri, bridge)
				}
			}
			if !hasReply(evs, "BYE", 200, replies, bridge) {
				t.Errorf("the bridge's 200 for the BYE did not cross the proxy: %+v", evs)
			}
			k.checkNoBypass(t)
		})
	}
}

// The bridge hangs up (no media for rtp.timeout) on a caller who came
// through a record-routing proxy: its BYE must go to the first route (the
// proxy's back socket) with both Route headers in order and the caller's
// Contact as Request-URI, and the caller's 200 must come back the same way.
func TestKamailioBridgeHangsUpThroughProxy(t *testing.T) {
	sippPath(t)
	kamailioPath(t)
	for _, transport := range proxyTransports {
		t.Run(transport, func(t *testing.T) {
			cfg := strings.Replace(testYAML("", ""), "timeout: 10s", "timeout: 2s", 1)
			a, logs := startApp(t, cfg)
			bridge := sipAddr(t, a, transport)
			k := startKamailio(t, transport, bridge)

			runSipp(t, "proxy_no_media.xml", k.frontAddr(), "-m", "1", "-timeout", "15s")
			logs.waitCount(t, 5*time.Second, 1, "call ended", "reason", "rtp-timeout")

			evs := k.events(t)
			if ack := find(evs, "request", "ACK"); len(ack) == 0 || ack[0].rcv != k.front {
				t.Errorf("the caller's ACK did not cross the proxy: %+v", ack)
			}
			byes := find(evs, "request", "BYE")
			if len(byes) == 0 {
				t.Fatalf("the bridge's BYE did not reach the proxy; kamailio log:\n%s\nbridge log:\n%s", k.log.String(), logs.String())
			}
			wantRoutes := fmt.Sprint([]string{k.routeAddr(), k.frontAddr()})
			// A retransmission is possible; every copy must look the same.
			for _, e := range byes {
				// Over UDP the BYE must leave from the listening socket
				// (where the proxy's answers and the next requests come
				// back); over TCP the bridge may open a new connection.
				if transport == "udp" && e.src != bridge {
					t.Errorf("BYE at the proxy from %s, want the bridge's listener %s", e.src, bridge)
				}
				if e.rcv != k.route {
					t.Errorf("the bridge sent its BYE to proxy socket %d, want the first route's %d (the INVITE came from %d)", e.rcv, k.route, k.back)
				}
				if fmt.Sprint(e.routes) != wantRoutes {
					t.Errorf("BYE Route headers %v, want %s (the INVITE's Record-Route, in order)", e.routes, wantRoutes)
				}
				if !strings.HasPrefix(e.ruri, "sip:sipp@127.0.0.1:") {
					t.Errorf("BYE Request-URI %q, want the caller's Contact sip:sipp@127.0.0.1:...", e.ruri)
				}
			}
			if !hasReply(evs, "BYE", 200, k.front, "") {
				t.Errorf("the caller's 200 for the BYE did not come back through the proxy: %+v", evs)
			}
			k.checkNoBypass(t)
		})
	}
}

// hasReply tells whether the proxy saw a reply code to method on socket
// rcv, from src when src is set.
func hasReply(evs []proxyEvent, method string, code, rcv int, src string) bool {
	for _, r := range find(evs, "reply", method) {
		if r.code == code && r.rcv == rcv && (src == "" || r.src == src) {
			return true
		}
	}
	return false
}
