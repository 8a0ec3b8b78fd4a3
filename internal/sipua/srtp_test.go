package sipua

import (
	"bytes"
	"encoding/base64"
	"log/slog"
	"net/netip"
	"strings"
	"testing"

	"github.com/groupbridge/groupbridge/internal/sipua/dialog"
	"github.com/groupbridge/groupbridge/media/rtpio"
)

// testKey is a recognisable 30-byte master key and salt, and testKey64 its
// base64 as phones write it.
var (
	testKey   = bytes.Repeat([]byte{0xA5, 0x5A, 0x01}, 10)
	testKey64 = base64.StdEncoding.EncodeToString(testKey)
)

// TestSRTPPolicyCalls runs rtp.srtp through the server: require refuses a
// plain offer with 488, off refuses an SRTP-only one, and an SRTP call's
// stream gets the keys (ours from the answer, the caller's from its offer).
func TestSRTPPolicyCalls(t *testing.T) {
	srtpBody := strings.Replace(testSDP, "RTP/AVP", "RTP/SAVP", 1) + "a=crypto:3 AES_CM_128_HMAC_SHA1_80 inline:" + testKey64 + "\r\n"
	tests := []struct {
		name string
		mode SRTPMode
		body string
		code int
	}{
		{"require, plain offer", SRTPRequire, testSDP, 488},
		{"off, SRTP-only offer", SRTPOff, srtpBody, 488},
		{"offer, SRTP offer", SRTPOffer, srtpBody, 200},
		{"require, SRTP offer", SRTPRequire, srtpBody, 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// The policy, over UDP allowed: TestSRTPOnlyOverTLS is the transport's rule.
			s := testServer(t, func(c *Config) { c.SRTP, c.SRTPOverUDP = tt.mode, true })
			p := newPeer(t, loopback, sipAddr(t, s, "udp"))
			id := callID()
			res := p.request(strings.Replace(invite(id, 1), testSDP, tt.body, 1))
			if res == nil || res.StatusCode != tt.code {
				t.Fatalf("INVITE answered %v, want %d", res, tt.code)
			}
			if tt.code != 200 {
				return
			}
			p.send(p.fill(ack(id, 1, res)))
			_, after, ok := strings.Cut(string(res.Body()), "a=crypto:3 AES_CM_128_HMAC_SHA1_80 inline:")
			if !ok {
				t.Fatalf("no a=crypto under the offer's tag:\n%s", res.Body())
			}
			ours, err := base64.StdEncoding.DecodeString(strings.TrimSpace(strings.SplitN(after, "\r\n", 2)[0]))
			if err != nil || len(ours) != rtpio.SRTPKeyLen {
				t.Fatalf("our key %x: %v", ours, err)
			}
			var c *dialog.Call
			for _, call := range s.dlg.All() {
				c = call
			}
			if c == nil {
				t.Fatal("no call")
			}
			got := c.Media().SRTP
			if got == nil || !bytes.Equal(got.Local, ours) || !bytes.Equal(got.Remote, testKey) {
				t.Errorf("call SRTP %+v, want our answered key and the caller's", got)
			}
		})
	}
}

// TestSRTPOnlyOverTLS checks that SDES keys are taken only from offers
// that came over TLS: over UDP an SRTP offer gets plain RTP (rtp.srtp
// offer, with an RTP/AVP alternative) or 488 (an SRTP-only offer, or
// require, late offers included), unless rtp.srtp_over_udp; over TLS the
// same offer is keyed.
func TestSRTPOnlyOverTLS(t *testing.T) {
	srtpOnly := strings.Replace(testSDP, "RTP/AVP", "RTP/SAVP", 1) + "a=crypto:3 AES_CM_128_HMAC_SHA1_80 inline:" + testKey64 + "\r\n"
	// SRTP first, plain RTP as the alternative ("best effort").
	both := srtpOnly + "m=audio 4002 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
	tests := []struct {
		name    string
		mode    SRTPMode
		overUDP bool
		body    string // "" is a late offer
		code    int
		keyed   bool
	}{
		{"offer, SRTP or plain", SRTPOffer, false, both, 200, false},
		{"offer, SRTP only", SRTPOffer, false, srtpOnly, 488, false},
		{"require, SRTP offer", SRTPRequire, false, srtpOnly, 488, false},
		{"require, late offer", SRTPRequire, false, "", 488, false},
		{"offer, SRTP or plain, over UDP allowed", SRTPOffer, true, both, 200, true},
		{"require, late offer, over UDP allowed", SRTPRequire, true, "", 200, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := testServer(t, func(c *Config) {
				c.SRTP, c.SRTPOverUDP = tt.mode, tt.overUDP
				c.Listeners = []Listener{{"udp", netip.AddrPortFrom(loopback, 0)}}
			})
			p := newPeer(t, loopback, sipAddr(t, s, "udp"))
			id := callID()
			inv := invite(id, 1)
			if tt.body == "" {
				inv = strings.Replace(strings.Replace(inv, testSDP, "", 1), "Content-Type: application/sdp\r\n", "", 1)
			} else {
				inv = strings.Replace(inv, testSDP, tt.body, 1)
			}
			res := p.request(inv)
			if res == nil || res.StatusCode != tt.code {
				t.Fatalf("INVITE over UDP answered %v, want %d", res, tt.code)
			}
			if keyed := strings.Contains(string(res.Body()), "a=crypto:"); keyed != tt.keyed {
				t.Errorf("answer keyed %v, want %v:\n%s", keyed, tt.keyed, res.Body())
			}
			if tt.code == 488 {
				if w := res.GetHeader("Warning"); w == nil || !strings.Contains(w.Value(), "TLS") {
					t.Errorf("488 Warning %v does not say SRTP needs TLS", w)
				}
			}
		})
	}
}

// TestSRTPWarnings checks the start-up warnings about keys on the wire.
func TestSRTPWarnings(t *testing.T) {
	tlsCfg, _ := testCert(t)
	udp := Listener{"udp", netip.AddrPortFrom(loopback, 0)}
	tlsL := Listener{"tls", netip.AddrPortFrom(loopback, 0)}
	tests := []struct {
		name      string
		mode      SRTPMode
		overUDP   bool
		listeners []Listener
		want      string // "" for no warning
	}{
		{"offer without TLS", SRTPOffer, false, []Listener{udp}, "no call will be encrypted"},
		{"offer over UDP allowed", SRTPOffer, true, []Listener{udp, tlsL}, "in clear"},
		{"offer with TLS", SRTPOffer, false, []Listener{udp, tlsL}, ""},
		{"off", SRTPOff, false, []Listener{udp}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			newTestServer(t, func(c *Config) {
				c.SRTP, c.SRTPOverUDP, c.Listeners, c.TLS = tt.mode, tt.overUDP, tt.listeners, tlsCfg
				c.Logger = slog.New(slog.NewTextHandler(&buf, nil))
			})
			got := buf.String()
			if tt.want == "" && strings.Contains(got, "SRTP") || tt.want != "" && !strings.Contains(got, tt.want) {
				t.Errorf("log %q, want %q", got, tt.want)
			}
		})
	}
}
