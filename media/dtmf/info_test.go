package dtmf

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func TestParseInfo(t *testing.T) {
	const relay = "application/dtmf-relay"
	tests := []struct {
		name  string
		ctype string
		body  string
		want  byte
		err   error // nil: want is the digit
	}{
		{"linphone", relay, "Signal=1\r\nDuration=250\r\n", '1', nil},
		{"linphone no final CRLF", relay, "Signal=1\r\nDuration=250", '1', nil},
		{"Cisco spaces", relay, "Signal= 5\r\nDuration= 160\r\n", '5', nil},
		{"LF only, duration first", relay, "Duration=160\nSignal=#\n", '#', nil},
		{"lower-case key", relay, "signal=*\r\nduration=100", '*', nil},
		{"upper-case key and spaces around =", relay, "  SIGNAL = 9 \r\n", '9', nil},
		{"numeric star", relay, "Signal=10\r\nDuration=160", '*', nil},
		{"numeric pound", relay, "Signal=11\r\nDuration=160", '#', nil},
		{"numeric D", relay, "Signal=15", 'D', nil},
		{"leading zero", relay, "Signal=07", '7', nil},
		{"letter A", relay, "Signal=A", 'A', nil},
		{"lower-case letter", relay, "Signal=c", 'C', nil},
		{"blank lines and other keys", relay, "\r\n\r\nVolume=10\r\nSignal=0\r\n\r\n", '0', nil},
		{"same Signal twice", relay, "Signal=4\r\nSignal=4\r\n", '4', nil},
		{"content type case and parameters", "Application/DTMF-Relay; charset=utf-8", "Signal=2", '2', nil},
		{"content type with spaces", "  application/dtmf-relay  ", "Signal=2", '2', nil},
		{"application/dtmf digit", "application/dtmf", "5", '5', nil},
		{"application/dtmf with whitespace", "application/dtmf", " \r\n#\r\n", '#', nil},
		{"application/dtmf numeric code", "application/dtmf", "11\r\n", '#', nil},
		{"application/dtmf upper case", "APPLICATION/DTMF", "3", '3', nil},
		{"application/dtmf star", "application/dtmf;foo=bar", "*", '*', nil},

		{"flash is not a digit", relay, "Signal=16\r\nDuration=160", 0, ErrNotDigit},
		{"application/dtmf flash", "application/dtmf", "16", 0, ErrNotDigit},
		{"code 255", "application/dtmf", "255", 0, ErrNotDigit},
		{"code 256", "application/dtmf", "256", 0, ErrInfoBody},
		{"four-digit value", relay, "Signal=1234", 0, ErrInfoBody},
		{"empty relay body", relay, "", 0, ErrInfoBody},
		{"no Signal", relay, "Duration=160\r\n", 0, ErrInfoBody},
		{"empty Signal", relay, "Signal=\r\nDuration=160", 0, ErrInfoBody},
		{"bad Signal letter", relay, "Signal=E", 0, ErrInfoBody},
		{"negative code", relay, "Signal=-1", 0, ErrInfoBody},
		{"line without =", relay, "Signal 5\r\n", 0, ErrInfoBody},
		{"two different Signals", relay, "Signal=1\r\nSignal=2\r\n", 0, ErrInfoBody},
		{"digits run together", "application/dtmf", "1 2", 0, ErrInfoBody},
		{"empty application/dtmf", "application/dtmf", "", 0, ErrInfoBody},
		{"whitespace only", "application/dtmf", " \r\n", 0, ErrInfoBody},
		{"garbage", "application/dtmf", "\x00\xff\xfe", 0, ErrInfoBody},
		{"dtmf-relay sent as application/dtmf", "application/dtmf", "Signal=5", 0, ErrInfoBody},
		{"huge body", relay, "Signal=5\r\n" + strings.Repeat("X=Y\r\n", 1000), 0, ErrInfoBody},
		{"SDP", "application/sdp", "v=0\r\n", 0, ErrNotDTMF},
		{"no content type", "", "", 0, ErrNotDTMF},
		{"similar name", "application/dtmf-relayx", "Signal=5", 0, ErrNotDTMF},
		{"text/plain", "text/plain", "5", 0, ErrNotDTMF},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseInfo(tt.ctype, []byte(tt.body))
			if tt.err == nil {
				if err != nil || got != tt.want {
					t.Fatalf("ParseInfo(%q, %q) = %q, %v; want %q", tt.ctype, tt.body, got, err, tt.want)
				}
				return
			}
			if !errors.Is(err, tt.err) {
				t.Fatalf("ParseInfo(%q, %q) = %q, %v; want error %v", tt.ctype, tt.body, got, err, tt.err)
			}
			if got != 0 {
				t.Errorf("digit %q returned with error", got)
			}
		})
	}
}

// Error text must not carry body bytes: an INFO digit may be part of a PIN.
func TestParseInfoErrorsHideBody(t *testing.T) {
	tests := []struct {
		ctype, body string
		secrets     []string
	}{
		{"application/dtmf-relay", "Signal=9876", []string{"9876", "987"}},
		{"application/dtmf-relay", "Signal=4\r\nSignal=7", []string{"'4'", "'7'", `"4"`, `"7"`}},
		{"application/dtmf-relay", "secret 4321", []string{"secret", "4321"}},
		{"application/dtmf-relay", "Signal=123", []string{"123"}},
		{"application/dtmf", "4321", []string{"4321", "432"}},
		{"application/dtmf", "Q", []string{"Q"}},
	}
	for _, tt := range tests {
		_, err := ParseInfo(tt.ctype, []byte(tt.body))
		if err == nil {
			t.Fatalf("ParseInfo(%q, %q) accepted", tt.ctype, tt.body)
		}
		for _, s := range tt.secrets {
			if strings.Contains(err.Error(), s) {
				t.Errorf("error %q for body %q contains %q", err, tt.body, s)
			}
		}
	}
}

func FuzzParseInfo(f *testing.F) {
	f.Add("application/dtmf-relay", []byte("Signal=1\r\nDuration=250\r\n"))
	f.Add("application/dtmf-relay", []byte("Signal= 5\r\nDuration= 160\r\n"))
	f.Add("application/dtmf-relay", []byte("signal=10\nduration=100"))
	f.Add("application/dtmf", []byte(" # \r\n"))
	f.Add("application/dtmf;x=y", []byte("11"))
	f.Add("application/sdp", []byte("v=0"))
	f.Add("", []byte{})
	f.Fuzz(func(t *testing.T, ctype string, body []byte) {
		orig := bytes.Clone(body)
		digit, err := ParseInfo(ctype, body)
		if !bytes.Equal(body, orig) {
			t.Fatal("ParseInfo modified the body")
		}
		if err != nil {
			if !errors.Is(err, ErrNotDTMF) && !errors.Is(err, ErrInfoBody) && !errors.Is(err, ErrNotDigit) {
				t.Fatalf("error %v wraps no sentinel", err)
			}
			if digit != 0 {
				t.Fatalf("digit %q with error %v", digit, err)
			}
			// Allow the content type (at most 40 runes, quoted) and
			// fixed text; a long body must not leak through.
			if len(err.Error()) > 400 {
				t.Fatalf("error text of %d bytes", len(err.Error()))
			}
			return
		}
		if _, ok := EventCode(digit); !ok || (digit >= 'a' && digit <= 'd') {
			t.Fatalf("ParseInfo returned %q, not a canonical digit", digit)
		}
		if len(body) > MaxInfoBody {
			t.Fatalf("accepted a %d-byte body", len(body))
		}
	})
}
