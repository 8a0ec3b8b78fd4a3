package dialog

import (
	"net/netip"
	"slices"
	"testing"

	"github.com/emiago/sipgo/sip"
)

// TestMediaAllowed: a call's media may come from the address its SIP came
// from (one address, unmapped), the caller's own address a proxy named,
// and the configured sources, nothing else.
func TestMediaAllowed(t *testing.T) {
	lan := netip.MustParsePrefix("10.0.0.0/8")
	tests := []struct {
		name    string
		source  string
		origin  netip.Addr
		sources []netip.Prefix
		want    []netip.Prefix
	}{
		{"source only", "192.0.2.7:5060", netip.Addr{}, nil, []netip.Prefix{netip.MustParsePrefix("192.0.2.7/32")}},
		{"mapped IPv4", "[::ffff:192.0.2.7]:5060", netip.Addr{}, nil, []netip.Prefix{netip.MustParsePrefix("192.0.2.7/32")}},
		{"IPv6", "[2001:db8::1]:5060", netip.Addr{}, nil, []netip.Prefix{netip.MustParsePrefix("2001:db8::1/128")}},
		{"with sources", "192.0.2.7:5060", netip.Addr{}, []netip.Prefix{lan}, []netip.Prefix{netip.MustParsePrefix("192.0.2.7/32"), lan}},
		{"unreadable source", "", netip.Addr{}, []netip.Prefix{lan}, []netip.Prefix{lan}},
		{"behind a proxy", "192.0.2.7:5060", netip.MustParseAddr("198.51.100.4"), []netip.Prefix{lan},
			[]netip.Prefix{netip.MustParsePrefix("192.0.2.7/32"), netip.MustParsePrefix("198.51.100.4/32"), lan}},
		{"behind a proxy, IPv6", "192.0.2.7:5060", netip.MustParseAddr("2001:db8::4"), nil,
			[]netip.Prefix{netip.MustParsePrefix("192.0.2.7/32"), netip.MustParsePrefix("2001:db8::4/128")}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := mediaAllowed(tc.source, tc.origin, tc.sources); !slices.Equal(got, tc.want) {
				t.Errorf("mediaAllowed(%q, %v) = %v, want %v", tc.source, tc.origin, got, tc.want)
			}
		})
	}
}

// TestDialDestination: a placed call goes to an IP address (no DNS on
// the call path), on the URI's port or the transport's default.
func TestDialDestination(t *testing.T) {
	tests := []struct {
		uri, transport string
		want           string // "" for an error
	}{
		{"sip:room@192.0.2.7:5070", "udp", "192.0.2.7:5070"},
		{"sip:room@192.0.2.7", "udp", "192.0.2.7:5060"},
		{"sip:room@192.0.2.7", "tls", "192.0.2.7:5061"},
		{"sip:room@[2001:db8::1]", "tcp", "[2001:db8::1]:5060"},
		{"sip:room@bridge.example.org", "udp", ""},
	}
	for _, tc := range tests {
		var u sip.Uri
		if err := sip.ParseUri(tc.uri, &u); err != nil {
			t.Fatal(err)
		}
		got, err := DialDestination(u, tc.transport)
		switch {
		case tc.want == "" && err == nil:
			t.Errorf("%s: %v, want an error", tc.uri, got)
		case tc.want != "" && (err != nil || got.String() != tc.want):
			t.Errorf("%s over %s: %v, %v; want %s", tc.uri, tc.transport, got, err, tc.want)
		}
	}
}

// TestDialedNumber: the user part of a sip URI, the number of a tel URI.
func TestDialedNumber(t *testing.T) {
	for _, tc := range []struct{ uri, want string }{
		{"sip:4711@192.0.2.7", "4711"},
		{"sip:192.0.2.7", ""},
		{"tel:+15551234567;phone-context=example.org", "+15551234567"},
	} {
		var u sip.Uri
		if err := sip.ParseUri(tc.uri, &u); err != nil {
			t.Fatal(err)
		}
		if got := DialedNumber(&u); got != tc.want {
			t.Errorf("DialedNumber(%s) = %q, want %q", tc.uri, got, tc.want)
		}
	}
}
