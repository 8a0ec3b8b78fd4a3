package app

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"text/template"
	"time"

	"github.com/groupbridge/groupbridge/internal/softphone"
)

// Kamailio in front of three bridges, run from the operators' example
// (config/examples/cluster/kamailio.cfg) with its addresses, ports, paths
// and probe interval rewritten: the dispatcher spreads calls over the
// nodes, its OPTIONS probes take a stopped node out and put it back when it
// answers again, and each node sees the caller's own address in
// X-Groupbridge-Source. The bridges are single nodes (no Redis): what is
// tested here is the proxy's side and the nodes' per-source screening.

// The nodes, each on its own loopback address. Kamailio shares 127.0.0.1
// with node a, on another port; pbxIP is a PBX the nodes trust that is not
// the proxy.
var clusterIPs = []string{"127.0.0.1", "127.0.0.2", "127.0.0.3"}

const (
	proxyIP = "127.0.0.1"
	pbxIP   = "127.0.0.4"
)

// clusterBridge is one node: its YAML on a fixed port, so that it can be
// stopped and started again on the same address.
type clusterBridge struct {
	addr string // ip:port of its SIP listener
	yaml string
	app  *App
	logs *syncBuffer
}

func (b *clusterBridge) start(t *testing.T) {
	t.Helper()
	b.app, b.logs = startApp(t, b.yaml)
}

func (b *clusterBridge) stop(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := b.app.Shutdown(ctx); err != nil {
		t.Errorf("shutdown of %s: %v", b.addr, err)
	}
}

// answered counts the calls the node answered and that are still up or
// ended after the caller's ACK; ended counts every call it took that has
// ended, however early the caller hung up.
func (b *clusterBridge) answered(t *testing.T) int { return b.logs.count(t, "call answered") }
func (b *clusterBridge) ended(t *testing.T) int    { return b.logs.count(t, "call ended") }

// settle waits until count, summed over nodes, reaches want: a node logs
// a call after the caller's Dial returned (once the ACK or BYE arrived).
func settle(t *testing.T, nodes []*clusterBridge, want int, count func(*clusterBridge, *testing.T) int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		n := 0
		for _, b := range nodes {
			n += count(b, t)
		}
		if n >= want || time.Now().After(deadline) {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// startClusterBridges starts the three nodes; limitsYAML goes in their
// limits section.
func startClusterBridges(t *testing.T, limitsYAML string) []*clusterBridge {
	t.Helper()
	var out []*clusterBridge
	for _, ip := range clusterIPs {
		port := freeUDPPort(t)
		lo, hi := rtpRange()
		b := &clusterBridge{addr: net.JoinHostPort(ip, strconv.Itoa(port)), yaml: fmt.Sprintf(`
sip:
  listen: ["udp:%s:%d"]
  # Kamailio, and a PBX beside it that is no proxy.
  trusted: ["%s/32", "%s/32"]
rtp:
  address: %s
  port_min: %d
  port_max: %d
  timeout: 20s
limits:
%s
cluster:
  proxies: ["%s"]
log:
  format: json
admin:
  listen: 127.0.0.1:0
attendance:
  path: %s
groups:
  - name: Circle
    member_pin: "1234"
    facilitator_pin: "654321"
    led_by: peer
`, ip, port, proxyIP, pbxIP, ip, lo, hi, limitsYAML, proxyIP, storePath())}
		b.start(t)
		out = append(out, b)
	}
	return out
}

// startClusterKamailio runs config/examples/cluster/kamailio.cfg in front
// of the nodes: its #!substdef lines point it at a free port on proxyIP,
// at a directory holding a dispatcher.list of the nodes and an
// address.list of pbxIP, and at 1 s probes; it logs to stderr.
func startClusterKamailio(t *testing.T, nodes []*clusterBridge) *kamailioProxy {
	t.Helper()
	bin := kamailioPath(t)
	example, err := os.ReadFile(filepath.Join("..", "..", "config", "examples", "cluster", "kamailio.cfg"))
	if err != nil {
		t.Fatal(err)
	}
	etc := t.TempDir()
	var list strings.Builder
	for _, n := range nodes {
		fmt.Fprintf(&list, "1 sip:%s 0 0\n", n.addr)
	}
	if err := os.WriteFile(filepath.Join(etc, "dispatcher.list"), []byte(list.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(etc, "address.list"), []byte("1 "+pbxIP+" 32 0\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return retryKamailio(t, func() (*kamailioProxy, error) {
		k := &kamailioProxy{front: freeUDPPort(t), log: &syncBuffer{}}
		cfg := rewriteKamailio(t, string(example), map[string]string{
			"GB_PROXY_IP":   proxyIP,
			"GB_PROXY_PORT": strconv.Itoa(k.front),
			"GB_ETC":        etc,
			"GB_PING":       "1",
		}, map[string]string{"log_stderror=no": "log_stderror=yes"})
		tmpl, err := template.New("kamailio.cfg").Parse(cfg)
		if err != nil {
			t.Fatal(err)
		}
		return k, runKamailio(t, bin, k, tmpl, nil)
	})
}

// rewriteKamailio sets the #!substdef values of cfg and replaces whole
// lines, failing the test if one is not there: the example and this test
// must not drift apart silently.
func rewriteKamailio(t *testing.T, cfg string, defs, lines map[string]string) string {
	t.Helper()
	for name, v := range defs {
		re := regexp.MustCompile(`(?m)^#!substdef "!` + name + `![^!]*!g"$`)
		if !re.MatchString(cfg) {
			t.Fatalf("kamailio.cfg has no #!substdef for %s", name)
		}
		cfg = re.ReplaceAllLiteralString(cfg, `#!substdef "!`+name+`!`+v+`!g"`)
	}
	for old, repl := range lines {
		re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(old) + `$`)
		if !re.MatchString(cfg) {
			t.Fatalf("kamailio.cfg has no line %q", old)
		}
		cfg = re.ReplaceAllLiteralString(cfg, repl)
	}
	return cfg
}

// callVia dials through Kamailio from a phone on localIP.
func callVia(t *testing.T, k *kamailioProxy, localIP string) (*softphone.Phone, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	p, err := softphone.Dial(ctx, softphone.Config{Server: k.frontAddr(), LocalIP: localIP, Caller: "+15550100"})
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { hangup(p) })
	return p, nil
}

func hangup(p *softphone.Phone) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = p.Hangup(ctx)
}

// waitKamailio waits until Kamailio's log holds a line matching re.
func waitKamailio(t *testing.T, k *kamailioProxy, d time.Duration, re *regexp.Regexp) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !re.MatchString(k.log.String()) {
		if time.Now().After(deadline) {
			t.Fatalf("no %q in Kamailio's log within %s:\n%s", re, d, tail(k.log.String(), 3000))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Calls are spread over the nodes; a stopped node is taken out by the
// probes (the calls after that go straight to the others, without a
// failover), and put back once it answers again on the same address; a
// draining node is taken out while it is still up.
func TestKamailioClusterSpreadsAndProbes(t *testing.T) {
	kamailioPath(t)
	nodes := startClusterBridges(t, "  setup_per_source: 10")
	k := startClusterKamailio(t, nodes)

	// Round-robin: six calls, two per node.
	var phones []*softphone.Phone
	for i := range 6 {
		p, err := callVia(t, k, fmt.Sprintf("127.0.0.%d", 10+i))
		if err != nil {
			t.Fatalf("call %d through Kamailio: %v", i, err)
		}
		phones = append(phones, p)
	}
	settle(t, nodes, 6, (*clusterBridge).answered)
	for i, n := range nodes {
		if got := n.answered(t); got != 2 {
			t.Errorf("node %d (%s) answered %d of 6 calls, want 2 (round-robin)", i, n.addr, got)
		}
	}
	for _, p := range phones {
		hangup(p)
	}
	settle(t, nodes, 6, (*clusterBridge).ended)

	// Node b stops, and its address swallows packets as a machine that
	// died does (no ICMP error tells Kamailio): the probes take it out.
	down, a, c := nodes[1], nodes[0], nodes[2]
	down.stop(t)
	hole := blackHole(t, down.addr)
	waitKamailio(t, k, 10*time.Second, regexp.MustCompile(`groupbridge node sip:`+regexp.QuoteMeta(down.addr)+` is out`))
	retries := strings.Count(k.log.String(), "did not answer: trying the next")
	before := a.ended(t) + c.ended(t)
	for i := range 4 {
		p, err := callVia(t, k, fmt.Sprintf("127.0.0.%d", 20+i))
		if err != nil {
			t.Fatalf("call %d with node b out: %v", i, err)
		}
		hangup(p)
	}
	settle(t, []*clusterBridge{a, c}, before+4, (*clusterBridge).ended)
	if got := a.ended(t) + c.ended(t) - before; got != 4 {
		t.Errorf("nodes a and c took %d of 4 calls while b was out, want all", got)
	}
	if n := strings.Count(k.log.String(), "did not answer: trying the next"); n != retries || hole.invites() != 0 {
		t.Errorf("Kamailio still sent calls to the stopped node after its probe failed: %d INVITEs reached it, %d failovers",
			hole.invites(), n-retries)
	}

	// Node b starts again on the same address: the probes put it back,
	// and it takes calls again.
	hole.close()
	down.start(t)
	waitKamailio(t, k, 5*time.Second, regexp.MustCompile(`groupbridge node sip:`+regexp.QuoteMeta(down.addr)+` is back`))
	before = a.ended(t) + c.ended(t)
	for i := range 3 {
		p, err := callVia(t, k, fmt.Sprintf("127.0.0.%d", 30+i))
		if err != nil {
			t.Fatalf("call %d after node b came back: %v", i, err)
		}
		hangup(p)
	}
	settle(t, nodes, before+3, (*clusterBridge).ended)
	if got := down.ended(t); got != 1 {
		t.Errorf("node b took %d of 3 calls after it came back, want 1 (round-robin)", got)
	}

	// Node c drains (POST /api/drain): it answers the probes 503, so
	// Kamailio takes it out while it is still up, and the next calls go
	// to a and b without a refusal by c.
	c.app.Drain()
	waitKamailio(t, k, 5*time.Second, regexp.MustCompile(`groupbridge node sip:`+regexp.QuoteMeta(c.addr)+` is out`))
	const drainRefusals = `groupbridge_calls_rejected_total{reason="draining"}`
	refusedBefore := appMetric(t, c.app, drainRefusals)
	before = a.ended(t) + down.ended(t)
	for i := range 2 {
		p, err := callVia(t, k, fmt.Sprintf("127.0.0.%d", 40+i))
		if err != nil {
			t.Fatalf("call %d with node c draining: %v", i, err)
		}
		hangup(p)
	}
	settle(t, []*clusterBridge{a, down}, before+2, (*clusterBridge).ended)
	if got := a.ended(t) + down.ended(t) - before; got != 2 {
		t.Errorf("nodes a and b took %d of 2 calls while c drained, want both", got)
	}
	if got := appMetric(t, c.app, drainRefusals) - refusedBefore; got != 0 {
		t.Errorf("the draining node was still offered %v calls", got)
	}
	k.checkNoBypass(t)
}

// Each node screens the caller's own address that Kamailio names: one call
// in setup per source reaches all three nodes (one each), a fourth from the
// same caller is refused by every node, and another caller is not held to
// the first one's count, as it would be if the nodes counted Kamailio's
// address. A header a caller forges is replaced by Kamailio; one a PBX
// sends straight to a node (it is no proxy) is ignored.
func TestKamailioClusterRealSource(t *testing.T) {
	kamailioPath(t)
	nodes := startClusterBridges(t, "  setup_per_source: 1")
	k := startClusterKamailio(t, nodes)

	const callerA, callerB, callerC = "127.0.0.10", "127.0.0.11", "127.0.0.12"
	for i := range 3 {
		if _, err := callVia(t, k, callerA); err != nil {
			t.Fatalf("call %d from %s: %v", i, callerA, err)
		}
	}
	settle(t, nodes, 3, (*clusterBridge).answered)
	for i, n := range nodes {
		if got := n.answered(t); got != 1 {
			t.Errorf("node %d answered %d of the caller's 3 calls, want 1", i, got)
		}
	}
	// The fourth: each node has this caller's one call in setup and
	// answers 503, which Kamailio, having no node left to try, passes on
	// as 500 (RFC 3261 16.7: a proxy does not forward a 503).
	_, err := callVia(t, k, callerA)
	var se *softphone.StatusError
	if !errors.As(err, &se) || se.StatusCode != 500 {
		t.Fatalf("4th call from %s: %v, want 503 from every node (500 from Kamailio)", callerA, err)
	}
	for i, n := range nodes {
		if got := n.logs.count(t, "call rejected: too many calls in setup", "source", callerA); got != 1 {
			t.Errorf("node %d refused %d calls of source %s, want 1; log:\n%s", i, got, callerA, n.logs.String())
		}
		if got := n.logs.count(t, "call rejected: too many calls in setup", "source", proxyIP); got != 0 {
			t.Errorf("node %d counted Kamailio's address as the source", i)
		}
	}
	if _, err := callVia(t, k, callerB); err != nil {
		t.Fatalf("call from another caller %s: %v", callerB, err)
	}

	// A caller names a trusted PBX as itself: Kamailio replaces the
	// header, so its fourth call is refused like anyone's.
	forged := "X-Groupbridge-Source: " + pbxIP + ":5060\r\n"
	for i, want := range []int{200, 200, 200, 500} {
		if got := rawInvite(t, callerC, k.frontAddr(), forged); got != want {
			t.Fatalf("call %d from %s forging %s: %d, want %d", i, callerC, pbxIP, got, want)
		}
	}
	// A trusted PBX straight to node a, naming the caller whose calls
	// are all refused: the header of a source that is no proxy means
	// nothing, and the PBX's call is its own.
	if got := rawInvite(t, pbxIP, nodes[0].addr, "X-Groupbridge-Source: "+callerA+":5060\r\n"); got != 200 {
		t.Fatalf("PBX's call naming %s straight to a node: %d, want 200", callerA, got)
	}
	k.checkNoBypass(t)
}

// rawInvite sends an INVITE from a socket on localIP to dst with extra
// headers and returns the final status (0 for none within 10 s). An
// answered call is ACKed at once, through the route set the answer names
// (Kamailio's Record-Route); it stays up, at the PIN prompt, until the
// test ends, when it is hung up the same way.
func rawInvite(t *testing.T, localIP, dst, extra string) int {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.ParseIP(localIP)})
	if err != nil {
		t.Fatal(err)
	}
	closed := false
	defer func() {
		if !closed {
			c.Close()
		}
	}()
	to, err := net.ResolveUDPAddr("udp", dst)
	if err != nil {
		t.Fatal(err)
	}
	src := c.LocalAddr().String()
	id := fmt.Sprintf("%d-%d", time.Now().UnixNano(), rawSeq.Add(1))
	from := "From: <sip:+15550199@" + localIP + ">;tag=t" + id + "\r\n"
	callID := "Call-ID: raw-" + id + "@test\r\n"
	send := func(msg string) {
		if _, err := c.WriteToUDP([]byte(msg), to); err != nil {
			t.Fatal(err)
		}
	}
	// final reads until a final response and returns it.
	buf := make([]byte, 65536)
	final := func() (int, string) {
		deadline := time.Now().Add(10 * time.Second)
		for {
			_ = c.SetReadDeadline(deadline)
			n, _, err := c.ReadFromUDP(buf)
			if err != nil {
				return 0, ""
			}
			msg := string(buf[:n])
			line, _, _ := strings.Cut(msg, "\r\n")
			if f := strings.Fields(line); len(f) >= 2 && f[0] == "SIP/2.0" {
				if code, _ := strconv.Atoi(f[1]); code >= 200 {
					return code, msg
				}
			}
		}
	}
	sdp := "v=0\r\no=- 1 1 IN IP4 " + localIP + "\r\ns=-\r\nc=IN IP4 " + localIP + "\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
	send("INVITE sip:groupbridge@" + dst + " SIP/2.0\r\n" +
		"Via: SIP/2.0/UDP " + src + ";branch=z9hG4bK-i" + id + ";rport\r\n" +
		from + "To: <sip:groupbridge@" + dst + ">\r\n" + callID +
		"CSeq: 1 INVITE\r\n" +
		"Contact: <sip:caller@" + src + ">\r\n" +
		"Max-Forwards: 70\r\n" + extra +
		"Content-Type: application/sdp\r\n" +
		"Content-Length: " + strconv.Itoa(len(sdp)) + "\r\n\r\n" + sdp)
	code, res := final()
	if code != 200 {
		return code // a refusal's ACK is the proxy's (or the transaction layer's) to absorb
	}
	// The dialog: the answer's To (with its tag), Contact and Record-Route
	// (reversed: the caller's route set, RFC 3261 12.1.2).
	var toHdr, target string
	var routes []string
	for _, line := range strings.Split(res, "\r\n") {
		name, value, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		value = strings.TrimSpace(value)
		switch strings.ToLower(strings.TrimSpace(name)) {
		case "to", "t":
			toHdr = "To: " + value + "\r\n"
		case "contact", "m":
			target = strings.Trim(strings.SplitN(value, ">", 2)[0], "<")
		case "record-route":
			for _, r := range strings.Split(value, ",") {
				routes = append([]string{"Route: " + strings.TrimSpace(r) + "\r\n"}, routes...)
			}
		}
	}
	if toHdr == "" || target == "" {
		t.Fatalf("200 without To or Contact:\n%s", res)
	}
	inDialog := func(method string, cseq int) string {
		return method + " " + target + " SIP/2.0\r\n" +
			"Via: SIP/2.0/UDP " + src + ";branch=z9hG4bK-" + strings.ToLower(method) + id + ";rport\r\n" +
			from + toHdr + callID + strings.Join(routes, "") +
			"CSeq: " + strconv.Itoa(cseq) + " " + method + "\r\n" +
			"Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
	}
	send(inDialog("ACK", 1))
	closed = true
	t.Cleanup(func() {
		defer c.Close()
		send(inDialog("BYE", 2))
		if code, _ := final(); code != 200 {
			t.Errorf("BYE of an answered call from %s: %d, want 200", localIP, code)
		}
	})
	return 200
}

// hole is a UDP socket that reads and counts what reaches a dead node's
// address and answers nothing.
type hole struct {
	conn *net.UDPConn
	n    atomic.Int64 // INVITEs received
	done chan struct{}
}

func blackHole(t *testing.T, addr string) *hole {
	t.Helper()
	ua, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.ListenUDP("udp", ua)
	if err != nil {
		t.Fatalf("bind the stopped node's address %s: %v", addr, err)
	}
	h := &hole{conn: conn, done: make(chan struct{})}
	go func() {
		defer close(h.done)
		buf := make([]byte, 65536)
		for {
			n, _, err := conn.ReadFromUDP(buf)
			if err != nil {
				return
			}
			if strings.HasPrefix(string(buf[:n]), "INVITE ") {
				h.n.Add(1)
			}
		}
	}()
	t.Cleanup(h.close)
	return h
}

func (h *hole) invites() int64 { return h.n.Load() }

func (h *hole) close() {
	_ = h.conn.Close()
	<-h.done
}
