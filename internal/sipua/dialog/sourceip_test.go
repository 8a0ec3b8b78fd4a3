package dialog

import (
	"net/netip"
	"testing"
)

func TestCallSourceIP(t *testing.T) {
	tests := []struct {
		source string
		want   netip.Addr
	}{
		{"127.0.0.7:5060", netip.MustParseAddr("127.0.0.7")},
		{"[2001:db8::1]:5061", netip.MustParseAddr("2001:db8::1")},
		{"[::ffff:192.0.2.1]:5060", netip.MustParseAddr("192.0.2.1")},
		{"", netip.Addr{}},
		{"not an address", netip.Addr{}},
	}
	for _, tc := range tests {
		if got := (&Call{source: tc.source}).SourceIP(); got != tc.want {
			t.Errorf("SourceIP(%q) = %v, want %v", tc.source, got, tc.want)
		}
	}
}
