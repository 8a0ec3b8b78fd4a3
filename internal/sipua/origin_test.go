package sipua

import (
	"bytes"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/groupbridge/groupbridge/internal/testkit"
)

func TestParseSource(t *testing.T) {
	tests := []struct {
		in   string
		want string // netip.AddrPort's String; "" for an error
	}{
		{"192.0.2.7:5060", "192.0.2.7:5060"},
		{"192.0.2.7", "192.0.2.7:0"},
		{"  192.0.2.7:5060\t", "192.0.2.7:5060"},
		{"[2001:db8::7]:5060", "[2001:db8::7]:5060"},
		{"[2001:db8::7]", "[2001:db8::7]:0"},
		{"2001:db8::7", "[2001:db8::7]:0"},
		{"[::ffff:192.0.2.7]:5060", "192.0.2.7:5060"},
		{"::ffff:192.0.2.7", "192.0.2.7:0"},
		{"127.0.0.1:1", "127.0.0.1:1"},
		{"", ""},
		{"   ", ""},
		{"192.0.2.7:0", ""},
		{"192.0.2.7:65536", ""},
		{"192.0.2.7:", ""},
		{"192.0.2", ""},
		{"192.0.2.7, 198.51.100.1", ""},
		{"192.0.2.7:5060;transport=udp", ""},
		{"sip:192.0.2.7", ""},
		{"host.example.org:5060", ""},
		{"[192.0.2.7]", ""},
		{"[2001:db8::7", ""},
		{"2001:db8::7]", ""},
		{"2001:db8::7:5060:", ""},
		{"[fe80::1%eth0]:5060", ""},
		{"fe80::1%eth0", ""},
		{"0.0.0.0:5060", ""},
		{"[::]:5060", ""},
		{"224.0.0.1:5060", ""},
		{"[ff02::1]", ""},
		{strings.Repeat("1", 65), ""},
	}
	for _, tc := range tests {
		got, err := ParseSource(tc.in)
		switch {
		case tc.want == "" && err == nil:
			t.Errorf("ParseSource(%q) = %v, want an error", tc.in, got)
		case tc.want != "" && (err != nil || got.String() != tc.want):
			t.Errorf("ParseSource(%q) = %v, %v; want %s", tc.in, got, err, tc.want)
		}
	}
}

func TestRawOrigin(t *testing.T) {
	msg := func(headers ...string) []byte {
		return []byte("INVITE sip:room@192.0.2.1 SIP/2.0\r\n" + strings.Join(headers, "\r\n") + "\r\n\r\nx-groupbridge-source: 198.51.100.9\r\n")
	}
	tests := []struct {
		name string
		data []byte
		want string // "" for none
	}{
		{"one", msg("Via: SIP/2.0/UDP 192.0.2.9", "X-Groupbridge-Source: 203.0.113.5:5062"), "203.0.113.5"},
		{"any case, spaces", msg("x-GROUPBRIDGE-source :  203.0.113.5 "), "203.0.113.5"},
		{"IPv6", msg("X-Groupbridge-Source: [2001:db8::5]:5060"), "2001:db8::5"},
		{"bare LF", []byte("INVITE sip:a@b SIP/2.0\nX-Groupbridge-Source: 203.0.113.5\n\n"), "203.0.113.5"},
		{"none (the body's does not count)", msg("Via: SIP/2.0/UDP 192.0.2.9"), ""},
		{"twice", msg("X-Groupbridge-Source: 203.0.113.5", "X-Groupbridge-Source: 203.0.113.5"), ""},
		{"malformed", msg("X-Groupbridge-Source: 203.0.113"), ""},
		{"empty", msg("X-Groupbridge-Source:"), ""},
		{"a longer name", msg("X-Groupbridge-Source-Port: 203.0.113.5"), ""},
		{"too long", msg("X-Groupbridge-Source: " + strings.Repeat(" ", 10) + strings.Repeat("9", 70)), ""},
		{"no line end", []byte("INVITE sip:a@b SIP/2.0"), ""},
	}
	for _, tc := range tests {
		got, ok := rawOrigin(tc.data)
		if ok != (tc.want != "") || (ok && got.String() != tc.want) {
			t.Errorf("%s: rawOrigin = %v, %v; want %q", tc.name, got, ok, tc.want)
		}
	}
}

// FuzzParseSource: the parser never panics, what it accepts is a usable
// source that prints back to itself, and the raw datagram scan agrees with
// it on every value.
func FuzzParseSource(f *testing.F) {
	for _, s := range []string{"192.0.2.7:5060", "192.0.2.7", "[2001:db8::7]:5060", "2001:db8::7", "[::ffff:1.2.3.4]",
		"fe80::1%eth0", "0.0.0.0", "1.2.3.4:0", " 1.2.3.4 ", "[1.2.3.4]", "]", "[", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		ap, err := ParseSource(v)
		if err == nil {
			a := ap.Addr()
			if !a.IsValid() || a.Zone() != "" || a.IsUnspecified() || a.IsMulticast() || a.Is4In6() {
				t.Fatalf("ParseSource(%q) = %v: not a usable source", v, ap)
			}
			again := ap.String()
			if ap.Port() == 0 {
				again = a.String()
			}
			if back, err := ParseSource(again); err != nil || back != ap {
				t.Fatalf("ParseSource(%q) = %v, but %q reads back as %v, %v", v, ap, again, back, err)
			}
		}
		if strings.ContainsAny(v, "\r\n") {
			return // would end the header line early
		}
		data := []byte("OPTIONS sip:a@b SIP/2.0\r\nX-Groupbridge-Source:" + v + "\r\n\r\n")
		raw, ok := rawOrigin(data)
		trimmed := strings.Trim(v, " \t")
		if want := err == nil && len(trimmed) <= maxSourceValue; ok != want || (ok && raw != ap.Addr()) {
			t.Fatalf("rawOrigin(%q) = %v, %v; ParseSource = %v, %v", v, raw, ok, ap, err)
		}
	})
}

// TestOriginScreen drives the origin unit alone: only a proxy's header is
// read, a trusted caller behind the proxy stays exempt, and a malformed
// header from the proxy is answered 400 (an ACK dropped) and logged.
func TestOriginScreen(t *testing.T) {
	proxy := "192.0.2.9:5060"
	trustedNet := netip.MustParsePrefix("10.0.0.0/8")
	tests := []struct {
		name       string
		src        string
		method     sip.RequestMethod
		headers    []string // X-Groupbridge-Source values
		wantOrigin string   // "" for a refusal
		wantExempt bool
		code       int
	}{
		{"proxy names a caller", proxy, sip.INVITE, []string{"203.0.113.5:5060"}, "203.0.113.5", false, 0},
		{"proxy names a trusted PBX", proxy, sip.INVITE, []string{"10.1.1.1"}, "10.1.1.1", true, 0},
		{"proxy's own request", proxy, sip.OPTIONS, nil, "192.0.2.9", false, 0},
		{"another source's header is ignored", "198.51.100.7:5060", sip.INVITE, []string{"10.1.1.1"}, "198.51.100.7", false, 0},
		{"a trusted PBX's header is ignored", "10.0.0.1:5060", sip.INVITE, []string{"203.0.113.5"}, "10.0.0.1", true, 0},
		{"malformed", proxy, sip.INVITE, []string{"203.0.113"}, "", false, 400},
		{"two values", proxy, sip.INVITE, []string{"203.0.113.5, 203.0.113.6"}, "", false, 400},
		{"two headers", proxy, sip.BYE, []string{"203.0.113.5", "203.0.113.5"}, "", false, 400},
		{"malformed ACK is dropped", proxy, sip.ACK, []string{"x"}, "", false, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var logs bytes.Buffer
			trusted := func(a netip.Addr) bool { return trustedNet.Contains(a) }
			o := &originScreen{
				proxies: []netip.Prefix{netip.MustParsePrefix("192.0.2.9/32")},
				trusted: trusted,
				resp:    responder{userAgent: "test", log: slog.New(slog.DiscardHandler)},
				log:     slog.New(slog.NewTextHandler(&logs, nil)),
				clock:   testkit.NewManualClock(),
			}
			req := chainReq{method: tc.method, src: tc.src}
			for _, h := range tc.headers {
				req.extra = append(req.extra, sip.NewHeader(SourceHeader, h))
			}
			r := facts{}
			r, _ = trustScreen{trusted: trusted}.screen(req.build(t, nil, 0), nil, r)
			tx := &answers{}
			r, ok := o.screen(req.build(t, nil, 0), tx, r)
			if ok != (tc.wantOrigin != "") {
				t.Fatalf("passed %v; want %v", ok, tc.wantOrigin != "")
			}
			if ok && (r.origin.String() != tc.wantOrigin || r.originTrusted != tc.wantExempt) {
				t.Errorf("origin %v (trusted %v); want %s (%v)", r.origin, r.originTrusted, tc.wantOrigin, tc.wantExempt)
			}
			if ok && r.src.String()+":5060" != tc.src {
				t.Errorf("src %v changed; want %s's", r.src, tc.src)
			}
			code := 0
			if len(tx.got) == 1 {
				code = tx.got[0].StatusCode
			}
			if len(tx.got) > 1 || code != tc.code {
				t.Errorf("answered %v; want %d", tx.got, tc.code)
			}
			if !ok && !strings.Contains(logs.String(), "proxy=192.0.2.9") {
				t.Errorf("refusal not logged with the proxy:\n%s", logs.String())
			}
		})
	}
}

// TestFloodScreenBehindProxy: datagrams from a proxy are held to the
// bucket of the caller each names, not the proxy's; the proxy's own
// requests and callers that are trusted themselves are not limited;
// scanners are dropped and logged by their own address.
func TestFloodScreenBehindProxy(t *testing.T) {
	proxy := netip.MustParseAddr("192.0.2.9")
	pbx := netip.MustParseAddr("10.0.0.1")
	dgram := func(origin, agent string) []byte {
		h := ""
		if origin != "" {
			h = "X-Groupbridge-Source: " + origin + "\r\n"
		}
		return []byte("INVITE sip:room@example.org SIP/2.0\r\n" + h + "User-Agent: " + agent + "\r\n\r\n")
	}
	tests := []struct {
		name    string
		proxied bool // the proxy is in Proxies
		data    [][]byte
		passed  int
		logged  string // in the log
	}{
		{"each caller its own burst", true, [][]byte{
			dgram("203.0.113.5:5060", "a"), dgram("203.0.113.5:5060", "a"), dgram("203.0.113.5:5061", "a"),
			dgram("203.0.113.6:5060", "a"), dgram("203.0.113.6:5060", "a"),
		}, 4, "source=203.0.113.5"},
		{"the proxy's own requests", true, [][]byte{dgram("", "a"), dgram("", "a"), dgram("", "a")}, 3, ""},
		{"a trusted PBX behind the proxy", true, [][]byte{dgram("10.0.0.1", "a"), dgram("10.0.0.1", "a"), dgram("10.0.0.1", "a")}, 3, ""},
		{"malformed is left to the origin unit", true, [][]byte{dgram("x", "a"), dgram("x", "a"), dgram("x", "a")}, 3, ""},
		{"scanner behind the proxy", true, [][]byte{dgram("203.0.113.7", "friendly-scanner")}, 0, "source=203.0.113.7"},
		{"not a proxy: the header is not read", false, [][]byte{dgram("203.0.113.5", "a"), dgram("203.0.113.6", "a"), dgram("203.0.113.7", "friendly-scanner")}, 3, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var logs bytes.Buffer
			var dropped atomic.Int64
			f := &floodScreen{
				trusted: func(a netip.Addr) bool { return a == proxy || a == pbx },
				limiter: newSourceLimiter(time.Now()),
				events:  Events{RequestDropped: func(string) { dropped.Add(1) }},
				log:     slog.New(slog.NewTextHandler(&logs, nil)),
				clock:   testkit.NewManualClock(),
			}
			if tc.proxied {
				f.proxies = []netip.Prefix{netip.PrefixFrom(proxy, 32)}
			}
			f.configure(Limits{SourceRate: 1, SourceBurst: 2, DropScanners: true}.withDefaults())
			props := sip.TransportReadProps{Transport: "UDP", RemoteAddr: net.UDPAddrFromAddrPort(netip.AddrPortFrom(proxy, 5060))}
			passed := 0
			for _, d := range tc.data {
				if out, _ := f.datagram(props, d); out != nil {
					passed++
				}
			}
			if passed != tc.passed || int(dropped.Load()) != len(tc.data)-tc.passed {
				t.Errorf("passed %d, dropped %d of %d; want %d passed", passed, dropped.Load(), len(tc.data), tc.passed)
			}
			if tc.logged != "" && !strings.Contains(logs.String(), tc.logged) {
				t.Errorf("log lacks %q:\n%s", tc.logged, logs.String())
			}
		})
	}
}
