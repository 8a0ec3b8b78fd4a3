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

// TestFloodScreen drives the flood screen on its own, with a hand-moved
// clock: trusted sources are never screened, an untrusted one is held to
// its bucket and dropped as a scanner, and the drops are logged once a
// minute with their count.
func TestFloodScreen(t *testing.T) {
	trustedIP := netip.MustParseAddr("10.0.0.1")
	stranger := netip.MustParseAddr("192.0.2.9")
	invite := []byte("INVITE sip:room@example.org SIP/2.0\r\nUser-Agent: Zoiper\r\n\r\n")
	scanner := []byte("OPTIONS sip:100@example.org SIP/2.0\r\nUser-Agent: friendly-scanner\r\n\r\n")
	tests := []struct {
		name    string
		src     netip.Addr
		data    []byte
		n       int     // datagrams sent at one instant
		rate    float64 // limits.source_rate
		burst   int
		scan    bool // limits.drop_scanners
		passed  int
		dropped map[string]int // Events.RequestDropped by reason
		rejects int            // Events.CallRejected
		lines   int            // log lines
	}{
		{"trusted is never limited", trustedIP, invite, 10, 1, 2, true, 10, map[string]int{}, 0, 0},
		{"untrusted held to its burst", stranger, invite, 10, 1, 3, false, 3, map[string]int{DropRateLimited: 7}, 7, 1},
		{"limits off", stranger, invite, 10, 0, 0, false, 10, map[string]int{}, 0, 0},
		{"scanner dropped", stranger, scanner, 4, 0, 0, true, 0, map[string]int{DropScanner: 4}, 0, 1},
		{"scanner passes when off", stranger, scanner, 4, 0, 0, false, 4, map[string]int{}, 0, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var logs bytes.Buffer
			var rejects atomic.Int64
			dropped := map[string]int{}
			f := &floodScreen{
				trusted: func(a netip.Addr) bool { return a == trustedIP },
				limiter: newSourceLimiter(time.Now()),
				events: Events{
					RequestDropped: func(r string) { dropped[r]++ },
					CallRejected:   func(string) { rejects.Add(1) },
				},
				log:   slog.New(slog.NewTextHandler(&logs, nil)),
				clock: testkit.NewManualClock(),
			}
			f.configure(Limits{SourceRate: tc.rate, SourceBurst: tc.burst, DropScanners: tc.scan}.withDefaults())
			props := sip.TransportReadProps{Transport: "UDP", RemoteAddr: net.UDPAddrFromAddrPort(netip.AddrPortFrom(tc.src, 5060))}
			passed := 0
			for range tc.n {
				if out, _ := f.datagram(props, tc.data); out != nil {
					passed++
				}
			}
			if passed != tc.passed {
				t.Errorf("passed %d of %d; want %d", passed, tc.n, tc.passed)
			}
			if len(dropped) != len(tc.dropped) {
				t.Errorf("dropped %v; want %v", dropped, tc.dropped)
			}
			for r, n := range tc.dropped {
				if dropped[r] != n {
					t.Errorf("dropped %v; want %v", dropped, tc.dropped)
				}
			}
			if int(rejects.Load()) != tc.rejects {
				t.Errorf("CallRejected %d times; want %d", rejects.Load(), tc.rejects)
			}
			if got := strings.Count(logs.String(), "\n"); got != tc.lines {
				t.Errorf("%d log lines; want %d:\n%s", got, tc.lines, logs.String())
			}
		})
	}
}

// TestCountedLog: one line a minute, speaking for every event since the
// last one.
func TestCountedLog(t *testing.T) {
	var l countedLog
	t0 := time.Unix(1_700_000_000, 0)
	steps := []struct {
		at     time.Duration
		ok     bool
		counts int64
	}{
		{0, true, 1},
		{time.Second, false, 0},
		{30 * time.Second, false, 0},
		{61 * time.Second, true, 3},
		{62 * time.Second, false, 0},
	}
	for _, s := range steps {
		ok, n := l.note(t0.Add(s.at))
		if ok != s.ok || n != s.counts {
			t.Errorf("at %v: note = %v, %d; want %v, %d", s.at, ok, n, s.ok, s.counts)
		}
	}
}
