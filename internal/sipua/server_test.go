package sipua

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
)

// TestHangupFromWildcardListener checks that our BYE leaves from a listener
// bound to 0.0.0.0: the socket sipgo knows is keyed by that address, not by
// the address the call came in on.
func TestHangupFromWildcardListener(t *testing.T) {
	for _, listen := range []string{"127.0.0.1:0", "0.0.0.0:0"} {
		t.Run(listen, func(t *testing.T) { testHangupFrom(t, netip.MustParseAddrPort(listen)) })
	}
}

func testHangupFrom(t *testing.T, listen netip.AddrPort) {
	s := testServer(t, func(c *Config) {
		c.Listeners = []Listener{{"udp", listen}}
		c.Handler = HandlerFunc(func(c *Call) { c.Hangup("test") })
	})
	dst := netip.AddrPortFrom(loopback, sipAddr(t, s, "udp").Port())
	p := newPeer(t, loopback, dst)
	id := callID()
	res := p.request(invite(id, 1))
	if res == nil || res.StatusCode != 200 {
		t.Fatalf("INVITE answered %v", res)
	}
	p.send(p.fill(ack(id, 1, res)))
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		m := p.read(time.Until(deadline))
		if m == nil {
			break
		}
		if req, ok := m.(*sip.Request); ok && req.Method == sip.BYE {
			if src := req.Via().Port; src != int(dst.Port()) {
				t.Errorf("BYE's Via names port %d, want the listener's %d", src, dst.Port())
			}
			if p.from.Port() != dst.Port() {
				t.Errorf("BYE came from port %d, want the listener's %d", p.from.Port(), dst.Port())
			}
			return
		}
	}
	t.Fatal("no BYE from a wildcard listener")
}

// TestExternalAddresses checks what a caller behind or in front of NAT is
// told: Contact carries sip.external_address, SDP carries the media
// external address when set, else the SIP one, else the local address.
func TestExternalAddresses(t *testing.T) {
	tests := []struct {
		name           string
		sipExt, rtpExt string
		contact, sdp   string // hosts; "" means 127.0.0.1
	}{
		{"none", "", "", "", ""},
		{"sip only", "203.0.113.1", "", "203.0.113.1", "203.0.113.1"},
		{"both", "203.0.113.1", "198.51.100.7", "203.0.113.1", "198.51.100.7"},
		{"media only", "", "media.example.org", "", "media.example.org"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := testServer(t, func(c *Config) {
				c.ExternalAddress, c.MediaExternalAddress = tt.sipExt, tt.rtpExt
			})
			dst := sipAddr(t, s, "udp")
			p := newPeer(t, loopback, dst)
			id := callID()
			res := p.request(invite(id, 1))
			if res == nil || res.StatusCode != 200 {
				t.Fatalf("INVITE answered %v", res)
			}
			p.send(p.fill(ack(id, 1, res)))
			contact, sdp := tt.contact, tt.sdp
			if contact == "" {
				contact = "127.0.0.1"
			}
			if sdp == "" {
				sdp = "127.0.0.1"
			}
			if c := res.Contact(); c == nil || c.Address.Host != contact || c.Address.Port != int(dst.Port()) {
				t.Errorf("Contact %v, want host %s port %d", c, contact, dst.Port())
			}
			body := string(res.Body())
			if !strings.Contains(body, "\r\nc=IN IP4 "+sdp+"\r\n") && !strings.Contains(body, "\r\nc=IN IP6 "+sdp+"\r\n") {
				t.Errorf("SDP c= is not %s:\n%s", sdp, body)
			}
			if !strings.Contains(body, " IN IP4 "+sdp+"\r\ns=") && !strings.Contains(body, " IN IP6 "+sdp+"\r\ns=") {
				t.Errorf("SDP o= is not %s:\n%s", sdp, body)
			}
		})
	}
}
