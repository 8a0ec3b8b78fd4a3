package sipua

import (
	"net/netip"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
)

func TestSetupTable(t *testing.T) {
	tab := newSetupTable()
	a, b := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2")
	six := netip.MustParseAddr("2001:db8::1")
	steps := []struct {
		name   string
		src    netip.Addr
		user   string
		reason string // "" when admitted
	}{
		{"first of a", a, "", ""},
		{"second of a", a, "", ""},
		{"third of a", a, "", RejectSetupPerSource},
		{"b as alice", b, "alice", ""},
		{"b as alice again", b, "alice", ""},
		{"b's third", b, "bob", RejectSetupPerSource},
		{"trusted as alice", netip.Addr{}, "alice", ""},
		{"alice's fourth", netip.Addr{}, "alice", RejectSetupPerUser},
		{"an IPv6 host", six, "", ""},
		{"the same /64", netip.MustParseAddr("2001:db8::2"), "", ""},
		{"the same /64's third", netip.MustParseAddr("2001:db8::ffff"), "", RejectSetupPerSource},
	}
	var holds []*setupHold
	for _, st := range steps {
		h, reason := tab.reserve(st.src, st.user, 2, 3)
		if reason != st.reason || (reason == "") != (h != nil) {
			t.Fatalf("%s: reserve = %v, %q; want reason %q", st.name, h, reason, st.reason)
		}
		if h != nil {
			holds = append(holds, h)
		}
	}
	holds[0].release()
	holds[0].release() // once only
	if h, reason := tab.reserve(a, "", 2, 3); h == nil {
		t.Fatalf("after a release: %q", reason)
	} else {
		holds = append(holds, h)
	}
	if _, reason := tab.reserve(a, "", 2, 3); reason != RejectSetupPerSource {
		t.Errorf("a double release freed two places: %q", reason)
	}
	if h, reason := tab.reserve(netip.Addr{}, "", 2, 3); h != nil || reason != "" {
		t.Errorf("a trusted call without account was counted: %v %q", h, reason)
	}
	if h, reason := tab.reserve(a, "", 0, 0); h != nil || reason != "" {
		t.Errorf("caps off, yet counted: %v %q", h, reason)
	}
	for _, h := range holds {
		h.release()
	}
	if s, u := tab.size(); s != 0 || u != 0 {
		t.Errorf("after every release: %d sources, %d users left", s, u)
	}
	(*setupHold)(nil).release() // a trusted call's
}

// TestSetupCaps checks that calls in setup (never ACKed) and calls not
// yet admitted count against the setup caps of their source and account,
// that a trusted PBX still gets its calls answered, and that an admitted
// or ended call gives its place back.
func TestSetupCaps(t *testing.T) {
	calls := make(chan *Call, 8)
	var rejected dropCounter
	s := testServer(t, func(c *Config) {
		c.Events.CallRejected = rejected.hook
		c.Trusted = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
		c.Users = []User{alice}
		c.Limits = Limits{SetupPerSource: 2, SetupPerUser: 3}
		c.Handler = HandlerFunc(func(c *Call) { calls <- c; <-c.Context().Done() })
	})
	dst := sipAddr(t, s, "udp")
	uri := "sip:groupbridge@" + dst.String()
	// call places an authenticated call from p and returns its 200 (or
	// the refusal); acked says whether the call is ACKed.
	call := func(p *peer, acked bool) (*sip.Response, string) {
		t.Helper()
		id := callID()
		res := p.request(invite(id, 1))
		if res == nil || res.StatusCode != 401 {
			t.Fatalf("INVITE answered %v, want 401", res)
		}
		res = p.request(invite(id, 2, answer(t, res, "", "alice", "correct horse", "INVITE", uri)))
		if acked && res != nil && res.StatusCode == 200 {
			p.send(p.fill(ack(id, 2, res)))
		}
		return res, id
	}
	src2 := newPeer(t, netip.MustParseAddr("127.0.0.2"), dst)
	// Two INVITEs never ACKed: the 200 is answered, the ports are held.
	for i := range 2 {
		if res, _ := call(src2, false); res == nil || res.StatusCode != 200 {
			t.Fatalf("call %d in setup answered %v", i, res)
		}
	}
	if res, _ := call(src2, true); res == nil || res.StatusCode != 503 || res.GetHeader("Retry-After") == nil {
		t.Fatalf("a third call of one source answered %v, want 503 with Retry-After", res)
	}
	if n := rejected.get(RejectSetupPerSource); n != 1 {
		t.Errorf("%d rejections counted as %s, want 1", n, RejectSetupPerSource)
	}
	// The trusted PBX is not capped.
	pbx := newPeer(t, loopback, dst)
	for i := range 3 {
		id := callID()
		res := pbx.request(invite(id, 1))
		if res == nil || res.StatusCode != 200 {
			t.Fatalf("trusted call %d answered %v", i, res)
		}
		pbx.send(pbx.fill(ack(id, 1, res)))
		<-calls
	}
	// The account: a third call from another source is its third.
	src3 := newPeer(t, netip.MustParseAddr("127.0.0.3"), dst)
	res, _ := call(src3, true)
	if res == nil || res.StatusCode != 200 {
		t.Fatalf("the account's third call answered %v", res)
	}
	c3 := <-calls
	src4 := newPeer(t, netip.MustParseAddr("127.0.0.4"), dst)
	if res, _ := call(src4, true); res == nil || res.StatusCode != 503 {
		t.Fatalf("the account's fourth call answered %v, want 503", res)
	}
	if n := rejected.get(RejectSetupPerUser); n != 1 {
		t.Errorf("%d rejections counted as %s, want 1", n, RejectSetupPerUser)
	}
	// Admitted into a room: its place is free for the next call.
	c3.Admitted()
	if res, _ := call(src4, true); res == nil || res.StatusCode != 200 {
		t.Fatalf("a call after another was admitted answered %v, want 200", res)
	}
	// An ended call gives its place back too.
	(<-calls).Hangup("test")
	deadline := time.Now().Add(2 * time.Second)
	for {
		res, _ := call(src4, true)
		if res != nil && res.StatusCode == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a call after one ended answered %v, want 200", res)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
