package dialog

import (
	"strings"
	"testing"
)

func TestParseReason(t *testing.T) {
	for _, tc := range []struct {
		name   string
		values []string
		want   string
	}{
		{"ours", []string{`SIP;cause=200;text="removed"`}, "removed"},
		{"none", nil, ""},
		{"no text", []string{"SIP;cause=200"}, ""},
		{"spaces and case", []string{` sip ; cause=200 ; TEXT = "closed" `}, "closed"},
		{"a token text", []string{"SIP;text=closed;cause=200"}, "closed"},
		{"SIP preferred over Q.850, one header", []string{`Q.850;cause=16;text="Normal call clearing", SIP;cause=200;text="removed"`}, "removed"},
		{"SIP preferred over Q.850, two headers", []string{`Q.850;cause=16;text="Normal call clearing"`, `SIP;cause=200;text="removed"`}, "removed"},
		{"Q.850 alone", []string{`Q.850;cause=16;text="Normal call clearing"`}, "Normal call clearing"},
		{"quoted separators", []string{`SIP;cause=200;text="a;b,c"`}, "a_b_c"},
		{"escaped quote", []string{`SIP;text="say \"bye\""`}, "say _bye_"},
		{"unterminated quote", []string{`SIP;text="open`}, "open"},
		{"line break and header", []string{"SIP;text=\"x\r\nVia: y\""}, "x__Via_ y"},
		{"too long", []string{`SIP;text="` + strings.Repeat("a", 100) + `"`}, strings.Repeat("a", maxReasonText)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := ParseReason(tc.values); got != tc.want {
				t.Errorf("ParseReason(%q) = %q; want %q", tc.values, got, tc.want)
			}
		})
	}
}

// TestReasonHeaderRoundTrip: what our BYE says reads back the same, once
// cleaned.
func TestReasonHeaderRoundTrip(t *testing.T) {
	for _, why := range []string{"removed", "closed", "rtp-timeout", `a"b\c`, "x\r\ny", strings.Repeat("z", 80)} {
		h := reasonHeader(why)
		if h == nil {
			t.Fatalf("no header for %q", why)
		}
		if got, want := ParseReason([]string{h.Value()}), CleanReason(why); got != want {
			t.Errorf("%q went as %q and reads back %q; want %q", why, h.Value(), got, want)
		}
	}
	if h := reasonHeader("  "); h != nil {
		t.Errorf("an empty reason gave %v", h)
	}
}

func FuzzParseReason(f *testing.F) {
	f.Add(`SIP;cause=200;text="removed"`)
	f.Add(`Q.850;cause=16;text="Normal", SIP;text=x`)
	f.Add(`SIP;text="a\"b`)
	f.Add(`;;,,"`)
	f.Fuzz(func(t *testing.T, v string) {
		got := ParseReason([]string{v})
		if len(got) > maxReasonText || CleanReason(got) != got {
			t.Fatalf("ParseReason(%q) = %q: not clean", v, got)
		}
	})
}
