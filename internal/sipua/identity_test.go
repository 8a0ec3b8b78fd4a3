package sipua

import (
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"
)

// identityInvite is an INVITE from the user part from, with extra header
// lines.
func identityInvite(callID string, cseq int, from string, extra ...string) string {
	return strings.Replace(invite(callID, cseq, extra...), "From: <sip:alice@{srcip}>", "From: <sip:"+from+"@{srcip}>", 1)
}

// Who a call is from: identity headers count only from a trusted source
// that AssertIdentity names, never from a caller who authenticated; a
// NoIdentity source's From names nobody; Privacy hides what is shown.
func TestCallIdentity(t *testing.T) {
	const (
		from    = "+15550000000" // the PBX's fixed number
		pai     = "P-Asserted-Identity: <tel:+1-555-111-1111>\r\n"
		rpid    = "Remote-Party-ID: <sip:+15552222222@pbx>;party=calling\r\n"
		privacy = "Privacy: id\r\n"
	)
	here := netip.MustParsePrefix("127.0.0.1/32")
	other := netip.MustParsePrefix("192.0.2.0/24")
	tests := []struct {
		name        string
		mod         func(*Config)
		auth        bool // authenticate as alice (an untrusted source)
		extra       []string
		want        string
		wantPrivate bool
		wantNoID    bool
		wantLabel   string
	}{
		{"every trusted source asserts: PAI", func(c *Config) { c.AssertTrusted = true }, false,
			[]string{pai, rpid}, "+15551111111", false, false, "+1•••••1111"},
		{"RPID without PAI", func(c *Config) { c.AssertTrusted = true }, false,
			[]string{rpid}, "+15552222222", false, false, "+1•••••2222"},
		{"listed source asserts", func(c *Config) { c.AssertIdentity = []netip.Prefix{here} }, false,
			[]string{pai}, "+15551111111", false, false, "+1•••••1111"},
		{"unlisted source: From only", func(c *Config) { c.AssertIdentity = []netip.Prefix{other} }, false,
			[]string{pai, rpid}, from, false, false, "+1•••••0000"},
		{"authenticated caller never asserts", func(c *Config) {
			untrusted(alice)(c)
			c.AssertTrusted = true
			c.AssertIdentity = []netip.Prefix{here}
		}, true, []string{pai, rpid}, from, false, false, "+1•••••0000"},
		{"Privacy id: the key stays, nothing shown", func(c *Config) { c.AssertTrusted = true }, false,
			[]string{pai, privacy}, "+15551111111", true, false, "anonymous"},
		{"no identity source", func(c *Config) { c.NoIdentity = []netip.Prefix{here} }, false,
			nil, "", false, true, "anonymous"},
		{"no identity source that asserts", func(c *Config) {
			c.NoIdentity = []netip.Prefix{here}
			c.AssertTrusted = true
		}, false, []string{pai}, "+15551111111", false, false, "+1•••••1111"},
		{"a label hook names the caller", func(c *Config) {
			c.CallerLabel = func(c *Call) string { return "tag-of-" + strconv.Itoa(len(c.Caller())) }
		}, false, nil, from, false, false, "tag-of-12"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			calls := make(chan *Call, 1)
			s := testServer(t, func(c *Config) {
				tc.mod(c)
				c.Handler = HandlerFunc(func(c *Call) { calls <- c; <-c.Context().Done() })
			})
			dst := sipAddr(t, s, "udp")
			p := newPeer(t, loopback, dst)
			id, cseq := callID(), 1
			res := p.request(identityInvite(id, cseq, from, tc.extra...))
			if tc.auth {
				if res == nil || res.StatusCode != 401 {
					t.Fatalf("INVITE answered %v, want 401", res)
				}
				cseq++
				creds := answer(t, res, "", "alice", "correct horse", "INVITE", "sip:groupbridge@"+dst.String())
				res = p.request(identityInvite(id, cseq, from, append(tc.extra, creds)...))
			}
			if res == nil || res.StatusCode != 200 {
				t.Fatalf("INVITE answered %v", res)
			}
			p.send(p.fill(ack(id, cseq, res)))
			var c *Call
			select {
			case c = <-calls:
			case <-time.After(5 * time.Second):
				t.Fatal("no call")
			}
			if c.Caller() != tc.want || c.CallerPrivate() != tc.wantPrivate || c.NoIdentity() != tc.wantNoID || c.Label() != tc.wantLabel {
				t.Errorf("Caller, CallerPrivate, NoIdentity, Label = %q, %v, %v, %q; want %q, %v, %v, %q",
					c.Caller(), c.CallerPrivate(), c.NoIdentity(), c.Label(), tc.want, tc.wantPrivate, tc.wantNoID, tc.wantLabel)
			}
			c.Hangup("test")
		})
	}
}
