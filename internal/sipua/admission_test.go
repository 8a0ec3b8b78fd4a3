package sipua

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
)

// TestGate runs Config.Gate on INVITEs from a raw peer: it sees the
// request's source, Call-ID, headers and exact body; nothing is answered
// before its verdict; a refusal's code and reason (or 403) is the only
// answer; what it admits reaches the handler's call as Admission.
func TestGate(t *testing.T) {
	for _, tc := range []struct {
		name   string
		err    error
		code   int
		reason string
	}{
		{"admitted", nil, 200, "OK"},
		{"refusal", &Refusal{Code: 486, Reason: "Busy Here"}, 486, "Busy Here"},
		{"wrapped refusal without a reason", fmt.Errorf("leg: %w", &Refusal{Code: 603}), 603, "Decline"},
		{"any other error", errors.New("bad signature"), 403, "Forbidden"},
		{"refusal with a code out of range", &Refusal{Code: 200, Reason: "OK"}, 403, "Forbidden"},
		{"refusal with a line break", &Refusal{Code: 480, Reason: "gone\r\nVia: x"}, 480, "goneVia: x"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			type seen struct {
				req    GateRequest
				header string
				left   time.Time // when the gate returned
			}
			gated := make(chan seen, 1)
			var rejected []string
			var mu sync.Mutex
			s, calls := callee(t, func(c *Config) {
				c.Gate = func(r GateRequest) (GateResult, error) {
					// Long enough that an answer sent before the verdict
					// would be read before it; short of sipgo's own 100
					// Trying (200 ms).
					time.Sleep(30 * time.Millisecond)
					gated <- seen{req: r, header: r.Header("x-groupbridge-leg"), left: time.Now()}
					return GateResult{Value: "seat 7"}, tc.err
				}
				c.Events.CallRejected = func(reason string) { mu.Lock(); rejected = append(rejected, reason); mu.Unlock() }
			})
			p := newPeer(t, loopback, sipAddr(t, s, "udp"))
			id := callID()
			p.send(p.fill(invite(id, 1, "X-Groupbridge-Leg: token-1\r\n")))
			first := p.read(3 * time.Second)
			read := time.Now()
			var g seen
			select {
			case g = <-gated:
			case <-time.After(3 * time.Second):
				t.Fatal("the gate was not asked")
			}
			if first == nil || read.Before(g.left) {
				t.Fatalf("first answer %v read before the gate returned", first)
			}
			if g.req.CallID != id || g.header != "token-1" || !bytes.Equal(g.req.Body, []byte(testSDP)) || g.req.Source != p.addr() {
				t.Errorf("the gate saw Call-ID %q, header %q, source %v, body %q; want %q, token-1, %v and %q",
					g.req.CallID, g.header, g.req.Source, g.req.Body, id, p.addr(), testSDP)
			}
			res, _ := first.(*sip.Response)
			if tc.code != 200 {
				if res == nil || res.StatusCode != tc.code || res.Reason != tc.reason {
					t.Fatalf("the first answer is %v; want only %d %s", first, tc.code, tc.reason)
				}
				p.send(p.fill(ack(id, 1, res)))
				if m := p.read(300 * time.Millisecond); m != nil {
					t.Errorf("after the refusal: %v", m)
				}
				mu.Lock()
				defer mu.Unlock()
				if len(rejected) != 1 || rejected[0] != RejectGate {
					t.Errorf("CallRejected told %q; want [%s]", rejected, RejectGate)
				}
				select {
				case <-calls:
					t.Error("the handler got a refused call")
				default:
				}
				return
			}
			if res == nil || res.StatusCode != 100 {
				t.Fatalf("the first answer is %v; want 100 Trying", first)
			}
			if res = p.final(); res == nil || res.StatusCode != 200 {
				t.Fatalf("INVITE answered %v; want 200", res)
			}
			p.send(p.fill(ack(id, 1, res)))
			select {
			case c := <-calls:
				if got := c.Admission(); got != "seat 7" {
					t.Errorf("Admission() = %v; want the gate's value", got)
				}
			case <-time.After(3 * time.Second):
				t.Fatal("the handler got no call")
			}
		})
	}
}

// TestOnlyTrusted: a server for trusted sources only answers nothing to
// anyone else, over UDP or TCP, and counts what it dropped; a trusted
// source is served.
func TestOnlyTrusted(t *testing.T) {
	trusted := netip.MustParseAddr("127.0.0.3")
	var mu sync.Mutex
	drops := map[string]int{}
	gated := 0
	s := testServer(t, func(c *Config) {
		c.OnlyTrusted = true
		c.Trusted = []netip.Prefix{netip.PrefixFrom(trusted, 32)}
		c.Listeners = append(c.Listeners, Listener{"tcp", netip.AddrPortFrom(loopback, 0)})
		c.Events.RequestDropped = func(reason string) { mu.Lock(); drops[reason]++; mu.Unlock() }
		c.Gate = func(GateRequest) (GateResult, error) { mu.Lock(); gated++; mu.Unlock(); return GateResult{}, nil }
	})
	options := "OPTIONS sip:groupbridge@{dst} SIP/2.0\r\n" +
		"Via: SIP/2.0/UDP {src};branch=z9hG4bK-{rand};rport\r\n" +
		"From: <sip:probe@{srcip}>;tag=p{rand}\r\n" +
		"To: <sip:groupbridge@{dst}>\r\n" +
		"Call-ID: {rand}@probe\r\n" +
		"CSeq: 1 OPTIONS\r\n" +
		"Max-Forwards: 70\r\n\r\n"
	for _, tc := range []struct {
		name   string
		from   netip.Addr
		msg    string
		answer bool
	}{
		{"stranger's OPTIONS", loopback, options, false},
		{"stranger's INVITE", loopback, invite(callID(), 1), false},
		{"trusted OPTIONS", trusted, options, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newPeer(t, tc.from, sipAddr(t, s, "udp"))
			p.send(p.fill(tc.msg))
			m := p.read(500 * time.Millisecond)
			if got := m != nil; got != tc.answer {
				t.Errorf("answered %v (%v); want answered %v", got, m, tc.answer)
			}
		})
	}
	t.Run("stranger's TCP connection", func(t *testing.T) {
		conn, err := net.Dial("tcp", sipAddr(t, s, "tcp").String())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		msg := strings.NewReplacer("{dst}", sipAddr(t, s, "tcp").String(), "{src}", conn.LocalAddr().String(),
			"{srcip}", "127.0.0.1", "{rand}", "1", "UDP", "TCP").Replace(options)
		_, _ = conn.Write([]byte(strings.Replace(msg, "\r\n\r\n", "\r\nContent-Length: 0\r\n\r\n", 1)))
		_ = conn.SetReadDeadline(time.Now().Add(time.Second))
		buf := make([]byte, 512)
		if n, err := conn.Read(buf); err == nil {
			t.Errorf("a stranger's connection was answered: %q", buf[:n])
		}
	})
	mu.Lock()
	defer mu.Unlock()
	if drops[DropUntrusted] < 3 {
		t.Errorf("RequestDropped told %v; want %s for each of the stranger's datagrams and its connection", drops, DropUntrusted)
	}
	if gated != 0 {
		t.Errorf("the gate was asked %d times about strangers", gated)
	}
}
