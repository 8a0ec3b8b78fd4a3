package sipua

import (
	"bufio"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
)

var lt0 = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

// The token bucket: a burst at once, then the rate; sources apart.
func TestTokenBucket(t *testing.T) {
	type wave struct {
		at time.Duration // after the start
		n  int           // requests at that instant
	}
	// every returns n waves of one request, step apart.
	every := func(step time.Duration, n int) []wave {
		out := make([]wave, n)
		for i := range out {
			out[i] = wave{time.Duration(i) * step, 1}
		}
		return out
	}
	tests := []struct {
		name  string
		rate  float64
		burst int
		waves []wave
		want  int // allowed in all
	}{
		{"a burst at once", 10, 20, []wave{{0, 40}}, 20},
		{"then the rate", 10, 20, []wave{{0, 40}, {time.Second, 40}}, 30},
		{"refills to the burst, no more", 10, 20, []wave{{0, 20}, {time.Minute, 40}}, 40},
		{"steady under the rate", 10, 1, every(100*time.Millisecond, 50), 50},
		{"twice the rate: half", 10, 1, every(50*time.Millisecond, 100), 50},
		{"slow rate", 0.5, 1, every(time.Second, 10), 5},
		{"off", 0, 0, []wave{{0, 1000}}, 1000},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l := newSourceLimiter(time.Now())
			l.epoch = lt0
			lim := Limits{SourceRate: tc.rate, SourceBurst: tc.burst}.withDefaults()
			l.configure(lim.SourceRate, float64(lim.SourceBurst), lim.MaxSources)
			src := netip.MustParseAddr("192.0.2.1")
			other := netip.MustParseAddr("192.0.2.2")
			got := 0
			for _, w := range tc.waves {
				for range w.n {
					if l.allow(src, lt0.Add(w.at)) {
						got++
					}
				}
			}
			if got != tc.want {
				t.Errorf("allowed %d, want %d", got, tc.want)
			}
			// Another source has its own bucket, full.
			if !l.allow(other, lt0.Add(tc.waves[len(tc.waves)-1].at)) {
				t.Error("another source was refused")
			}
		})
	}
}

// The per-source table never grows past its bound, however many sources
// (spoofed ones, say) send; idle entries are forgotten; while it is full,
// new sources share one bucket.
func TestSourceTableBounded(t *testing.T) {
	tests := []struct {
		name     string
		max      int
		sources  int
		spread   time.Duration // between two sources' requests
		wantSize int
		wantOver bool // some requests went to the shared bucket
	}{
		{"under the bound", 100, 50, 0, 50, false},
		{"at once, many more than the bound", 100, 10_000, 0, 100, true},
		// Each entry is idle (full again) 2 s after its request: a slow
		// enough stream of new sources is served by sweeping.
		{"idle ones make room", 100, 1_000, 50 * time.Millisecond, 100, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l := newSourceLimiter(time.Now())
			l.epoch = lt0
			l.configure(10, 20, tc.max)
			now := lt0
			for i := range tc.sources {
				src := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
				l.allow(src, now)
				now = now.Add(tc.spread)
				if n, _ := l.size(); n > tc.max {
					t.Fatalf("table holds %d sources, bound %d", n, tc.max)
				}
			}
			n, over := l.size()
			if n > tc.wantSize || (tc.spread == 0 && n != tc.wantSize) {
				t.Errorf("table holds %d sources, want %d", n, tc.wantSize)
			}
			if (over > 0) != tc.wantOver {
				t.Errorf("%d requests went to the shared bucket; want some: %v", over, tc.wantOver)
			}
			// A sweep once every bucket is full again empties the table.
			l.sweep(now.Add(3 * time.Second))
			if n, _ := l.size(); n != 0 {
				t.Errorf("%d sources left after a sweep of idle ones", n)
			}
		})
	}
	// While full, the shared bucket holds the new sources to one rate.
	l := newSourceLimiter(time.Now())
	l.epoch = lt0
	l.configure(10, 20, 10)
	allowed := 0
	for i := range 1000 {
		if l.allow(netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}), lt0) {
			allowed++
		}
	}
	if want := 10 + 20; allowed != want {
		t.Errorf("%d of 1000 new sources' requests allowed at once, want %d (one each for the 10 in the table, and the shared bucket's 20)", allowed, want)
	}
}

// scannerCase is a request and whether it is a scanner's.
type scannerCase struct {
	name    string
	headers string // header lines after Via, each ending in \r\n
	want    bool
}

var scannerCases = []scannerCase{
	{"friendly-scanner", "User-Agent: friendly-scanner\r\n", true},
	{"sipvicious in From", "From: \"sipvicious\"<sip:100@192.0.2.1>;tag=1\r\n", true},
	{"sipvicious as From user", "From: <sip:sipvicious@192.0.2.1>;tag=1\r\n", true},
	{"compact From", "f: \"friendly-scanner\"<sip:100@192.0.2.1>;tag=1\r\n", true},
	{"case folded", "USER-AGENT: SIPVicious 0.3.4\r\n", true},
	{"sipcli with version", "User-Agent: sipcli/v1.8\r\n", true},
	{"sip-scan", "User-Agent: sip-scan\r\n", true},
	{"sundayddr", "User-Agent: sundayddr\r\n", true},
	{"iWar", "User-Agent: iWar\r\n", true},
	{"VaxSIPUserAgent", "User-Agent: VaxSIPUserAgent/3.1\r\n", true},
	{"pplsip", "User-Agent: pplsip\r\n", true},
	{"SIPBomber", "User-Agent: SIPBomber 0.1\r\n", true},
	{"space before the colon", "User-Agent : friendly-scanner\r\n", true},
	{"Asterisk", "User-Agent: Asterisk PBX 20.5.0\r\n", false},
	{"FreeSWITCH", "User-Agent: FreeSWITCH-mod_sofia/1.10.9\r\n", false},
	{"Zoiper", "User-Agent: Z 5.6.1 v2.10.19.9\r\n", false},
	{"linphone", "User-Agent: Linphone Desktop/5.2.1 (belle-sip/5.2.94)\r\n", false},
	{"baresip", "User-Agent: baresip v3.4.0 (x86_64/linux)\r\n", false},
	{"sipp", "User-Agent: sipp\r\n", false},
	{"no User-Agent", "", false},
	// A person's name that holds a short User-Agent fragment is a caller.
	{"a name holding iwar", "From: \"Diwara Kone\"<sip:+15550001@192.0.2.1>;tag=1\r\n", false},
	// The host is nobody's name.
	{"scanner word in the host only", "From: <sip:100@sipvicious.example.org>;tag=1\r\n", false},
	// Only the start of a value is read: a scanner name hidden after
	// 256 bytes of padding is not looked for.
	{"beyond the scanned bytes", "User-Agent: " + strings.Repeat("x", 300) + "friendly-scanner\r\n", false},
	{"in the body only", "Content-Type: text/plain\r\n\r\nUser-Agent: friendly-scanner\r\n", false},
}

// request builds an OPTIONS request with the given header lines (a From
// is added when they have none).
func scannerRequestText(headers string) string {
	from := "From: <sip:alice@192.0.2.1>;tag=f1\r\n"
	if strings.Contains(strings.ToLower(headers), "from:") || strings.HasPrefix(headers, "f:") {
		from = ""
	}
	head, body, _ := strings.Cut(headers, "\r\n\r\n")
	if body != "" {
		head += "\r\n"
	}
	return "OPTIONS sip:groupbridge@192.0.2.9 SIP/2.0\r\n" +
		"Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK-1\r\n" + from +
		"To: <sip:groupbridge@192.0.2.9>\r\nCall-ID: 1@test\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\n" +
		head + fmt.Sprintf("Content-Length: %d\r\n\r\n", len(body)) + body
}

// Scanners are known by their User-Agent or From, the same way in a raw
// datagram and in a parsed request.
func TestScannerMatching(t *testing.T) {
	for _, tc := range scannerCases {
		t.Run(tc.name, func(t *testing.T) {
			text := scannerRequestText(tc.headers)
			if got := rawScanner([]byte(text)); got != tc.want {
				t.Errorf("rawScanner = %v, want %v\n%s", got, tc.want, text)
			}
			msg, err := sip.ParseMessage([]byte(text))
			if err != nil {
				t.Fatalf("test request does not parse: %v\n%s", err, text)
			}
			if got := scannerRequest(msg.(*sip.Request)); got != tc.want {
				t.Errorf("scannerRequest = %v, want %v", got, tc.want)
			}
		})
	}
	for _, junk := range []string{"", "\n", "OPTIONS", "INVITE sip:x SIP/2.0\r\nUser-Agent", "x\r\n:\r\n: friendly-scanner"} {
		if rawScanner([]byte(junk)) {
			t.Errorf("rawScanner(%q) = true", junk)
		}
	}
}

// The datagram screen runs on every UDP packet: it allocates nothing.
func TestScreenDoesNotAllocate(t *testing.T) {
	data := []byte(scannerRequestText("User-Agent: Asterisk PBX 20.5.0\r\n"))
	if a := testing.AllocsPerRun(1000, func() { rawScanner(data) }); a != 0 {
		t.Errorf("rawScanner: %v allocations per call", a)
	}
	l := newSourceLimiter(time.Now())
	l.configure(1e9, 1e9, 10)
	src := netip.MustParseAddr("192.0.2.1")
	l.allow(src, time.Now())
	if a := testing.AllocsPerRun(1000, func() { l.allow(src, time.Now()) }); a != 0 {
		t.Errorf("allow for a known source: %v allocations per call", a)
	}
}

// events collects the drop and rejection events of a server.
type events struct {
	mu       sync.Mutex
	dropped  map[string]int
	rejected map[string]int
}

func (e *events) hooks(c *Config) {
	e.dropped, e.rejected = map[string]int{}, map[string]int{}
	c.Events.RequestDropped = func(r string) { e.mu.Lock(); e.dropped[r]++; e.mu.Unlock() }
	c.Events.CallRejected = func(r string) { e.mu.Lock(); e.rejected[r]++; e.mu.Unlock() }
}

func (e *events) counts(reason string) (dropped, rejected int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.dropped[reason], e.rejected[reason]
}

// options is an OPTIONS template for the raw peer.
const optionsMsg = "OPTIONS sip:groupbridge@{dst} SIP/2.0\r\n" +
	"Via: SIP/2.0/UDP {src};branch=z9hG4bK-{rand};rport\r\n" +
	"From: <sip:alice@{srcip}>;tag=f{rand}\r\nTo: <sip:groupbridge@{dst}>\r\n" +
	"Call-ID: {rand}@test\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\n\r\n"

// Over UDP, an untrusted source past its burst is dropped unanswered and
// counted; a trusted one is never limited.
func TestRateLimitUDP(t *testing.T) {
	var ev events
	s := testServer(t, func(c *Config) {
		c.Trusted = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
		c.Limits = Limits{SourceRate: 1, SourceBurst: 5}
		ev.hooks(c)
	})
	dst := sipAddr(t, s, "udp")
	for _, tc := range []struct {
		name string
		ip   string
		want int // answered of 20
	}{
		{"untrusted", "127.0.0.2", 5},
		{"trusted", "127.0.0.1", 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newPeer(t, netip.MustParseAddr(tc.ip), dst)
			for range 20 {
				p.send(p.fill(optionsMsg))
			}
			got := 0
			for p.read(time.Second) != nil {
				got++
			}
			// The refill adds one a second: allow for it on a slow machine.
			if got < tc.want || got > tc.want+2 {
				t.Errorf("%d of 20 OPTIONS answered, want %d", got, tc.want)
			}
		})
	}
	if d, _ := ev.counts(DropRateLimited); d < 13 {
		t.Errorf("%d requests counted as rate-limited, want at least 13", d)
	}
}

// Over TCP the same limits apply per request, and a scanner's request is
// dropped unanswered while a phone's is answered.
func TestScreenTCP(t *testing.T) {
	var ev events
	s := testServer(t, func(c *Config) {
		c.Listeners = append(c.Listeners, Listener{"tcp", netip.AddrPortFrom(loopback, 0)})
		c.Trusted = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
		c.Limits = Limits{SourceRate: 1, SourceBurst: 3, DropScanners: true}
		ev.hooks(c)
	})
	dst := sipAddr(t, s, "tcp")
	conn, err := net.DialTCP("tcp", net.TCPAddrFromAddrPort(netip.AddrPortFrom(netip.MustParseAddr("127.0.0.3"), 0)), net.TCPAddrFromAddrPort(dst))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	src := conn.LocalAddr().String()
	msg := func(i int, ua string) string {
		return "OPTIONS sip:groupbridge@" + dst.String() + " SIP/2.0\r\n" +
			"Via: SIP/2.0/TCP " + src + fmt.Sprintf(";branch=z9hG4bK-tcp%d\r\n", i) +
			"From: <sip:alice@127.0.0.3>;tag=f1\r\nTo: <sip:groupbridge@" + dst.String() + ">\r\n" +
			fmt.Sprintf("Call-ID: tcp%d@test\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\n", i) +
			"User-Agent: " + ua + "\r\nContent-Length: 0\r\n\r\n"
	}
	// A scanner first (it takes a token and is dropped), then more phone
	// requests than the bucket holds. Requests are handled concurrently,
	// so the phone's wait until the scanner's drop is counted.
	if _, err := conn.Write([]byte(msg(0, "friendly-scanner"))); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if d, _ := ev.counts(DropScanner); d > 0 {
			break
		}
	}
	var b strings.Builder
	for i := 1; i <= 6; i++ {
		b.WriteString(msg(i, "Linphone"))
	}
	if _, err := conn.Write([]byte(b.String())); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(conn)
	var answered []string
	for {
		_ = conn.SetReadDeadline(time.Now().Add(time.Second))
		line, err := r.ReadString('\n')
		if err != nil {
			break
		}
		if strings.HasPrefix(line, "Call-ID:") {
			answered = append(answered, strings.TrimSpace(strings.TrimPrefix(line, "Call-ID:")))
		}
	}
	for _, id := range answered {
		if id == "tcp0@test" {
			t.Error("the scanner's request was answered")
		}
	}
	// 3 tokens: the scanner's and two phone requests (a refill may add one).
	if len(answered) < 2 || len(answered) > 3 {
		t.Errorf("answered %v, want 2 of the phone's requests", answered)
	}
	if d, _ := ev.counts(DropScanner); d != 1 {
		t.Errorf("%d scanner drops counted, want 1", d)
	}
	if d, _ := ev.counts(DropRateLimited); d < 3 {
		t.Errorf("%d rate-limited drops counted, want at least 3", d)
	}
}

// A UDP scanner INVITE gets nothing back and counts as a rejected call;
// with DropScanners off it is answered like any other.
func TestScannerDroppedUDP(t *testing.T) {
	for _, on := range []bool{true, false} {
		t.Run(fmt.Sprint("drop_scanners=", on), func(t *testing.T) {
			var ev events
			s := testServer(t, func(c *Config) {
				c.Trusted = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
				c.Limits = Limits{DropScanners: on}
				ev.hooks(c)
			})
			p := newPeer(t, loopback, sipAddr(t, s, "udp"))
			p.send(p.fill(invite(callID(), 1, "User-Agent: friendly-scanner\r\n")))
			m := p.read(time.Second)
			if on && m != nil {
				t.Fatalf("a scanner's INVITE was answered: %v", m)
			}
			if !on && m == nil {
				t.Fatal("with drop_scanners off, the INVITE was not answered")
			}
			d, r := ev.counts(DropScanner)
			if want := map[bool]int{true: 1, false: 0}[on]; d != want || r != want {
				t.Errorf("scanner drops %d, rejected calls %d; want %d each", d, r, want)
			}
		})
	}
}

// Beyond MaxCalls an INVITE gets 503 with Retry-After, trusted or not;
// SetLimits raises the cap for the next call.
func TestMaxCalls(t *testing.T) {
	var ev events
	s := testServer(t, func(c *Config) {
		c.Limits = Limits{MaxCalls: 1}
		ev.hooks(c)
	})
	p := newPeer(t, loopback, sipAddr(t, s, "udp"))
	id := callID()
	res := p.request(invite(id, 1))
	if res == nil || res.StatusCode != 200 {
		t.Fatalf("first INVITE answered %v", res)
	}
	p.send(p.fill(ack(id, 1, res)))
	res = p.request(invite(callID(), 1))
	if res == nil || res.StatusCode != 503 {
		t.Fatalf("INVITE beyond max_calls answered %v, want 503", res)
	}
	if h := res.GetHeader("Retry-After"); h == nil || h.Value() != "30" {
		t.Errorf("Retry-After = %v, want 30", h)
	}
	if _, r := ev.counts(RejectMaxCalls); r != 1 {
		t.Errorf("%d max-calls rejections counted, want 1", r)
	}
	s.SetLimits(Limits{MaxCalls: 2})
	if res := p.request(invite(callID(), 1)); res == nil || res.StatusCode != 200 {
		t.Fatalf("INVITE after raising max_calls answered %v, want 200", res)
	}
}

// A call that lasts MaxCall is hung up with a BYE and the end reason
// max-call.
func TestMaxCallEndsTheCall(t *testing.T) {
	reasons := make(chan string, 1)
	s := testServer(t, func(c *Config) {
		c.Limits = Limits{MaxCall: time.Second}
		c.Handler = HandlerFunc(func(c *Call) {
			<-c.Context().Done()
			reasons <- c.EndReason()
		})
	})
	p := newPeer(t, loopback, sipAddr(t, s, "udp"))
	id := callID()
	res := p.request(invite(id, 1))
	if res == nil || res.StatusCode != 200 {
		t.Fatalf("INVITE answered %v", res)
	}
	start := time.Now()
	p.send(p.fill(ack(id, 1, res)))
	// RTP stays away, but the RTP timeout (30 s) is far off.
	var bye *sip.Request
	for bye == nil && time.Since(start) < 5*time.Second {
		if req, ok := p.read(5 * time.Second).(*sip.Request); ok && req.Method == sip.BYE {
			bye = req
		}
	}
	if bye == nil {
		t.Fatal("no BYE within 5 s of a 1 s max_call")
	}
	select {
	case r := <-reasons:
		if r != EndMaxCall {
			t.Errorf("end reason %q, want %q", r, EndMaxCall)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("handler did not see the call end")
	}
}
