package logging

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"
)

func TestMaskCaller(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", "anonymous"},
		{"+15551234567", "+1•••••4567"},
		{"15551234567", "1•••••4567"},
		{"+442071234567", "+4•••••4567"},
		{"1001", "•••01"},
		{"12", "•••"},
		{"alice", "a•••"},
		{"anonymous", "a•••"},
		{"+1-555", "+•••"},
	}
	for _, tc := range tests {
		if got := MaskCaller(tc.in); got != tc.want {
			t.Errorf("MaskCaller(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestRedactDigits(t *testing.T) {
	tests := []struct{ in, want string }{
		{"no digits", "no digits"},
		{"port 506", "port 506"},
		{"From: <sip:+15551234567@host>", "From: <sip:+#…#@host>"},
		{"Signal=1234", "Signal=#…#"},
		{"1234", "#…#"},
		{"a 12 b 34567 c", "a 12 b #…# c"},
	}
	for _, tc := range tests {
		if got := RedactDigits(tc.in); got != tc.want {
			t.Errorf("RedactDigits(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	long := strings.Repeat("x", 1000)
	if got := RedactDigits(long); len(got) > 400 {
		t.Errorf("not bounded: %d bytes", len(got))
	}
}

func TestLibraryLoggerRedacts(t *testing.T) {
	for _, format := range []string{"text", "json"} {
		var buf bytes.Buffer
		base, err := New(format, &buf, slog.LevelDebug)
		if err != nil {
			t.Fatal(err)
		}
		lib := Library(base, slog.LevelWarn, "sipgo")
		raw := "INVITE sip:4821@x SIP/2.0\r\nFrom: <sip:+15551234567@h>"
		lib.Error("failed to parse", "data", raw, "error", errors.New("bad header From: +15551234567"),
			slog.Group("g", "pin", "917355"), "port", 5060)
		lib.Info("dropped below warn", "x", "+15551234567")
		lib.With("caller", "+15551234567").Warn("with attrs")
		out := buf.String()
		for _, secret := range []string{"15551234567", "4821", "917355", "dropped below warn"} {
			if strings.Contains(out, secret) {
				t.Errorf("%s: log contains %q:\n%s", format, secret, out)
			}
		}
		if !strings.Contains(out, "failed to parse") || !strings.Contains(out, "with attrs") {
			t.Errorf("%s: expected lines missing:\n%s", format, out)
		}
	}
	if _, err := New("xml", &bytes.Buffer{}, nil); err == nil {
		t.Fatal("format xml accepted")
	}
}
