package config

import (
	"net/netip"
	"slices"
	"testing"
)

func TestParseListener(t *testing.T) {
	tests := []struct {
		in   string
		want Listener
		str  string // String() of the result
	}{
		{"udp:0.0.0.0:5060", Listener{"udp", netip.MustParseAddrPort("0.0.0.0:5060")}, "udp:0.0.0.0:5060"},
		{"tcp:127.0.0.1:0", Listener{"tcp", netip.MustParseAddrPort("127.0.0.1:0")}, "tcp:127.0.0.1:0"},
		{"tls:0.0.0.0:5061", Listener{"tls", netip.MustParseAddrPort("0.0.0.0:5061")}, "tls:0.0.0.0:5061"},
		{"udp:[::1]:5060", Listener{"udp", netip.MustParseAddrPort("[::1]:5060")}, "udp:[::1]:5060"},
		{"udp:[0:0::1]:65535", Listener{"udp", netip.MustParseAddrPort("[::1]:65535")}, "udp:[::1]:65535"},
		{"tcp:[::]:5060", Listener{"tcp", netip.MustParseAddrPort("[::]:5060")}, "tcp:[::]:5060"},
		{"udp:[fe80::1%eth0]:5060", Listener{"udp", netip.MustParseAddrPort("[fe80::1%eth0]:5060")}, "udp:[fe80::1%eth0]:5060"},
		{"udp:127.0.0.1:05060", Listener{"udp", netip.MustParseAddrPort("127.0.0.1:5060")}, "udp:127.0.0.1:5060"},
	}
	for _, tt := range tests {
		got, err := ParseListener(tt.in)
		if err != nil {
			t.Errorf("ParseListener(%q): %v", tt.in, err)
			continue
		}
		if got != tt.want {
			t.Errorf("ParseListener(%q) = %+v, want %+v", tt.in, got, tt.want)
		}
		if got.String() != tt.str {
			t.Errorf("ParseListener(%q).String() = %q, want %q", tt.in, got.String(), tt.str)
		}
		// What String writes, ParseListener reads back.
		if again, err := ParseListener(got.String()); err != nil || again != got {
			t.Errorf("round trip of %q: %+v, %v", tt.in, again, err)
		}
	}
	// The error texts are checked through Validate in TestParseRules; here
	// only that each of these fails.
	for _, bad := range []string{"", "udp", "udp:", "udp:1.2.3.4", "sctp:1.2.3.4:5061", "udp:host:5060",
		"udp:::1:5060", "udp:[1.2.3.4]:5060", "udp:1.2.3.4:65536", "udp:1.2.3.4:-1", "udp:1.2.3.4:+1",
		"udp:1.2.3.4:1_0", "udp:1.2.3.4:000001", "udp:[::1:5060", "udp: 1.2.3.4:5060"} {
		if l, err := ParseListener(bad); err == nil {
			t.Errorf("ParseListener(%q) = %+v, want an error", bad, l)
		}
	}
}

func TestListeners(t *testing.T) {
	s := SIP{Listen: []string{"udp:127.0.0.1:5060", "bogus", "tcp:[::1]:0"}}
	want := []Listener{
		{"udp", netip.MustParseAddrPort("127.0.0.1:5060")},
		{"tcp", netip.MustParseAddrPort("[::1]:0")},
	}
	if got := s.Listeners(); !slices.Equal(got, want) {
		t.Errorf("Listeners() = %v, want %v", got, want)
	}
}
