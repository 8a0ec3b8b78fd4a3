package sipua

import (
	"log/slog"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/groupbridge/groupbridge/internal/testkit"
)

// inDialog is a request inside the call id that res answered, from
// whichever peer sends it (its own Via and Contact), with an optional SDP
// body.
func inDialog(method, id string, cseq int, res *sip.Response, sdp string) string {
	msg := method + " sip:groupbridge@{dst} SIP/2.0\r\n" +
		"Via: SIP/2.0/UDP {src};branch=z9hG4bK-{rand};rport\r\n" +
		"From: <sip:alice@127.0.0.1>;tag=f" + id + "\r\n" + res.To().String() + "\r\n" +
		"Call-ID: " + id + "\r\nCSeq: " + strconv.Itoa(cseq) + " " + method + "\r\n" +
		"Contact: <sip:alice@{src}>\r\nMax-Forwards: 70\r\n"
	switch {
	case sdp != "":
		msg += "Content-Type: application/sdp\r\n\r\n" + sdp
	case method == "INFO":
		msg += "Content-Type: application/dtmf-relay\r\n\r\nSignal=5\r\nDuration=160\r\n"
	default:
		msg += "\r\n"
	}
	return msg
}

// dropCounter records Events.RequestDropped.
type dropCounter struct {
	mu sync.Mutex
	n  map[string]int
}

func (d *dropCounter) hook(reason string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.n == nil {
		d.n = map[string]int{}
	}
	d.n[reason]++
}

func (d *dropCounter) get(reason string) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.n[reason]
}

// oneCall answers one call from p and returns it with the 200.
func oneCall(t *testing.T, p *peer, calls <-chan *Call, id string, extra ...string) (*Call, *sip.Response) {
	t.Helper()
	res := p.request(invite(id, 1, extra...))
	if res == nil || res.StatusCode != 200 {
		t.Fatalf("INVITE answered %v, want 200", res)
	}
	p.send(p.fill(ack(id, 1, res)))
	select {
	case c := <-calls:
		return c, res
	case <-time.After(5 * time.Second):
		t.Fatal("handler never ran")
	}
	return nil, nil
}

// TestInDialogFromStrangers checks that knowing a trusted call's Call-ID
// and tags is not enough: a re-INVITE, BYE, INFO or OPTIONS from another
// address is dropped and counted, the media stays where it was, and
// another trusted address (a carrier's second SBC) may still hang up.
func TestInDialogFromStrangers(t *testing.T) {
	var drops dropCounter
	calls := make(chan *Call, 1)
	s := testServer(t, func(c *Config) {
		c.Trusted = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32"), netip.MustParsePrefix("127.0.0.3/32")}
		c.Events.RequestDropped = drops.hook
		c.Handler = HandlerFunc(func(c *Call) { calls <- c; <-c.Context().Done() })
	})
	dst := sipAddr(t, s, "udp")
	pbx := newPeer(t, loopback, dst)
	id := callID()
	call, res := oneCall(t, pbx, calls, id)
	before := call.Media().Addr

	stranger := newPeer(t, netip.MustParseAddr("127.0.0.2"), dst)
	moved := "v=0\r\no=- 1 2 IN IP4 127.0.0.2\r\ns=-\r\nc=IN IP4 127.0.0.2\r\nt=0 0\r\nm=audio 4002 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
	for i, m := range []string{
		inDialog("INVITE", id, 10, res, moved),
		inDialog("INFO", id, 11, res, ""),
		inDialog("OPTIONS", id, 12, res, ""),
		inDialog("BYE", id, 13, res, ""),
	} {
		stranger.send(stranger.fill(m))
		if got := stranger.read(300 * time.Millisecond); got != nil {
			t.Errorf("request %d from a stranger answered: %v", i, got)
		}
	}
	stranger.send(stranger.fill(ack(id, 10, res)))
	after := call.Media().Addr
	if after != before {
		t.Errorf("media moved from %v to %v by a stranger", before, after)
	}
	if r := call.EndReason(); r != "" || s.ActiveCalls() != 1 {
		t.Fatalf("call ended (%q) by a stranger", r)
	}
	for deadline := time.Now().Add(time.Second); drops.get(DropNotDialogPeer) < 5 && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond) // the ACK gets no answer to wait for
	}
	if n := drops.get(DropNotDialogPeer); n != 5 {
		t.Errorf("%d drops counted as %s, want 5", n, DropNotDialogPeer)
	}
	// The stranger's CSeq did not count: the peer's next request is in order.
	if r := pbx.request(inDialog("INFO", id, 2, res, "")); r == nil || r.StatusCode != 200 {
		t.Errorf("the peer's INFO answered %v, want 200", r)
	}
	// Another trusted address ends the call.
	sbc := newPeer(t, netip.MustParseAddr("127.0.0.3"), dst)
	if r := sbc.request(inDialog("BYE", id, 3, res, "")); r == nil || r.StatusCode != 200 {
		t.Fatalf("BYE from another trusted address answered %v, want 200", r)
	}
	select {
	case <-call.Context().Done():
	case <-time.After(2 * time.Second):
	}
	if r := call.EndReason(); r != "remote-bye" {
		t.Errorf("end reason %q, want remote-bye", r)
	}
}

// TestInDialogAuthenticatedNewAddress checks that in a digest-authenticated
// call a request from a new address is challenged: another account's
// answer is refused, the call's own account's is taken.
func TestInDialogAuthenticatedNewAddress(t *testing.T) {
	calls := make(chan *Call, 1)
	bob := User{Name: "bob", Password: "battery staple"}
	s := testServer(t, func(c *Config) {
		untrusted(alice, bob)(c)
		c.Handler = HandlerFunc(func(c *Call) { calls <- c; <-c.Context().Done() })
	})
	dst := sipAddr(t, s, "udp")
	uri := "sip:groupbridge@" + dst.String()
	p := newPeer(t, loopback, dst)
	id := callID()
	res := p.request(invite(id, 1))
	if res == nil || res.StatusCode != 401 {
		t.Fatalf("INVITE answered %v, want 401", res)
	}
	auth := answer(t, res, "", "alice", "correct horse", "INVITE", uri)
	res = p.request(invite(id, 2, auth))
	if res == nil || res.StatusCode != 200 {
		t.Fatalf("INVITE with credentials answered %v, want 200", res)
	}
	p.send(p.fill(ack(id, 2, res)))
	var call *Call
	select {
	case call = <-calls:
	case <-time.After(5 * time.Second):
		t.Fatal("handler never ran")
	}

	q := newPeer(t, netip.MustParseAddr("127.0.0.2"), dst)
	ch := q.request(inDialog("BYE", id, 10, res, ""))
	if ch == nil || ch.StatusCode != 401 {
		t.Fatalf("BYE from a new address answered %v, want 401", ch)
	}
	withAuth := func(cseq int, ch *sip.Response, user, password string) string {
		m := inDialog("BYE", id, cseq, res, "")
		return m[:len(m)-2] + answer(t, ch, "", user, password, "BYE", uri) + "\r\n"
	}
	if r := q.request(withAuth(11, ch, "bob", "battery staple")); r == nil || r.StatusCode != 403 {
		t.Errorf("BYE with another account's credentials answered %v, want 403", r)
	}
	if call.EndReason() != "" {
		t.Fatal("the call ended before its own account answered")
	}
	ch = q.request(inDialog("BYE", id, 12, res, ""))
	if ch == nil || ch.StatusCode != 401 {
		t.Fatalf("BYE from a new address answered %v, want 401", ch)
	}
	if r := q.request(withAuth(13, ch, "alice", "correct horse")); r == nil || r.StatusCode != 200 {
		t.Fatalf("BYE with the call's account answered %v, want 200", r)
	}
	select {
	case <-call.Context().Done():
	case <-time.After(2 * time.Second):
	}
	if r := call.EndReason(); r != "remote-bye" {
		t.Errorf("end reason %q, want remote-bye", r)
	}
}

// TestInfoDigitQueuedBeforeAnswer checks that a key sent by SIP INFO is
// already queued for the handler when its 200 arrives: phones send the
// next key on our answer, and sipgo serves each request on a goroutine of
// its own, so a digit pushed after the answer could overtake or be
// overtaken by the next one and turn a right PIN into a wrong one.
func TestInfoDigitQueuedBeforeAnswer(t *testing.T) {
	calls := make(chan *Call, 1)
	s := testServer(t, func(c *Config) {
		c.Handler = HandlerFunc(func(c *Call) { calls <- c; <-c.Context().Done() })
	})
	pbx := newPeer(t, loopback, sipAddr(t, s, "udp"))
	id := callID()
	call, res := oneCall(t, pbx, calls, id)
	const keys = "0123456789*#0123456789*#0123456789*#0123456789*#"
	for i := range len(keys) {
		info := inDialog("INFO", id, 2+i, res, "")
		info = strings.Replace(info, "Signal=5", "Signal="+keys[i:i+1], 1)
		if r := pbx.request(info); r == nil || r.StatusCode != 200 {
			t.Fatalf("INFO %d answered %v, want 200", i, r)
		}
		select {
		case d := <-call.Digits():
			if d != keys[i] {
				t.Fatalf("key %d: got %q, want %q", i, d, keys[i])
			}
		default:
			t.Fatalf("key %d (%q) answered 200 before it was queued", i, keys[i])
		}
	}
}

// TestByeBeforeAckLogsEnd checks that a call answered and then ended by
// a BYE that overtook its ACK (each request is served on a goroutine of
// its own) is logged as ended, like any answered call: an operator
// following a call, and the tests that wait for the line, saw nothing.
func TestByeBeforeAckLogsEnd(t *testing.T) {
	var logs testkit.LogBuffer
	s := testServer(t, func(c *Config) {
		c.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	})
	pbx := newPeer(t, loopback, sipAddr(t, s, "udp"))
	id := callID()
	res := pbx.request(invite(id, 1))
	if res == nil || res.StatusCode != 200 {
		t.Fatalf("INVITE answered %v, want 200", res)
	}
	if r := pbx.request(inDialog("BYE", id, 2, res, "")); r == nil || r.StatusCode != 200 {
		t.Fatalf("BYE answered %v, want 200", r)
	}
	for deadline := time.Now().Add(3 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if l := logs.String(); strings.Contains(l, `msg="call ended"`) {
			if !strings.Contains(l, "reason=remote-bye") {
				t.Errorf("call ended without reason remote-bye:\n%s", l)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no \"call ended\" line for a call ended by a BYE before its ACK:\n%s", logs.String())
		}
	}
}
