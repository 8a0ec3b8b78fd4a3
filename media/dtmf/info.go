package dtmf

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
)

// MaxInfoBody bounds the DTMF INFO bodies ParseInfo reads. Real ones are
// under 40 bytes; anything near this size is not a key press, and the cap
// keeps the work per request small whatever a peer sends.
const MaxInfoBody = 1024

var (
	// ErrNotDTMF means the INFO body is not a DTMF content type; a SIP
	// server answers such an INFO with 415 Unsupported Media Type.
	ErrNotDTMF = errors.New("dtmf: content type is not application/dtmf-relay or application/dtmf")
	// ErrInfoBody means a DTMF INFO body is malformed (answer 400).
	ErrInfoBody = errors.New("dtmf: malformed DTMF INFO body")
	// ErrNotDigit means a well-formed INFO carries an event that is not a
	// keypad digit, such as Signal=16 (hook flash); a server can accept
	// the request and ignore it.
	ErrNotDigit = errors.New("dtmf: INFO event is not a keypad digit")
)

// ParseInfo returns the digit carried by a SIP INFO request with the given
// Content-Type header value and body.
//
// Two formats exist in the field. application/dtmf-relay (Cisco's, which
// linphone and most gateways send) has "key=value" lines, e.g.
// "Signal=1\r\nDuration=250"; keys are case-insensitive, lines end in CRLF
// or LF, spaces around keys and values are allowed, keys other than Signal
// are ignored (Duration only matters for tone playout, which the bridge
// does not do). application/dtmf is the bare digit. In both, the value is
// a digit ('0'-'9', '*', '#', 'A'-'D' in either case) or its RFC 4733
// event code 0-15, as some gateways send Signal=10 for '*' and 11 for '#'.
// The media type is matched case-insensitively and parameters after ';'
// are ignored.
//
// Errors wrap ErrNotDTMF (other content types, including none), ErrNotDigit
// (event codes 16-255) or ErrInfoBody (anything malformed, and bodies over
// MaxInfoBody). Error text never contains body bytes: digits in an INFO
// may be a PIN.
func ParseInfo(contentType string, body []byte) (byte, error) {
	mt, _, _ := strings.Cut(contentType, ";")
	mt = strings.TrimSpace(mt)
	relay := strings.EqualFold(mt, "application/dtmf-relay")
	if !relay && !strings.EqualFold(mt, "application/dtmf") {
		return 0, fmt.Errorf("dtmf: INFO content type %.40q: %w", mt, ErrNotDTMF)
	}
	if len(body) > MaxInfoBody {
		return 0, fmt.Errorf("dtmf: %s body of %d bytes, limit %d: %w", mt, len(body), MaxInfoBody, ErrInfoBody)
	}
	if !relay {
		digit, err := parseSignal(bytes.TrimSpace(body))
		if err != nil {
			return 0, fmt.Errorf("dtmf: application/dtmf body: %w", err)
		}
		return digit, nil
	}
	return parseRelay(body)
}

// parseRelay reads an application/dtmf-relay body.
func parseRelay(body []byte) (byte, error) {
	var (
		digit byte
		found bool
	)
	for n := 1; len(body) > 0; n++ {
		var line []byte
		line, body, _ = bytes.Cut(body, []byte{'\n'})
		line = bytes.TrimSpace(line) // also drops the CR of CRLF
		if len(line) == 0 {
			continue
		}
		key, val, ok := bytes.Cut(line, []byte{'='})
		if !ok {
			return 0, fmt.Errorf("dtmf: dtmf-relay line %d (%d bytes) is not key=value: %w", n, len(line), ErrInfoBody)
		}
		if !bytes.EqualFold(bytes.TrimSpace(key), []byte("signal")) {
			continue
		}
		d, err := parseSignal(bytes.TrimSpace(val))
		if err != nil {
			return 0, fmt.Errorf("dtmf: dtmf-relay line %d Signal: %w", n, err)
		}
		if found && d != digit {
			// Two different keys in one INFO: taking either would
			// silently drop the other.
			return 0, fmt.Errorf("dtmf: dtmf-relay line %d: second Signal with a different value: %w", n, ErrInfoBody)
		}
		digit, found = d, true
	}
	if !found {
		return 0, fmt.Errorf("dtmf: dtmf-relay body has no Signal line: %w", ErrInfoBody)
	}
	return digit, nil
}

// parseSignal reads one digit or a decimal event code.
func parseSignal(v []byte) (byte, error) {
	if len(v) == 0 {
		return 0, fmt.Errorf("empty value: %w", ErrInfoBody)
	}
	if len(v) == 1 {
		if code, ok := EventCode(v[0]); ok {
			return digits[code], nil // normalises 'a'-'d'
		}
		return 0, fmt.Errorf("1-byte value is not a digit: %w", ErrInfoBody)
	}
	// Event codes are at most 255: three decimal digits.
	code := 0
	for _, c := range v {
		if c < '0' || c > '9' || len(v) > 3 {
			return 0, fmt.Errorf("%d-byte value is not a digit or event code: %w", len(v), ErrInfoBody)
		}
		code = code*10 + int(c-'0')
	}
	if code > 255 {
		return 0, fmt.Errorf("event code above 255: %w", ErrInfoBody)
	}
	digit, ok := EventDigit(uint8(code))
	if !ok {
		return 0, fmt.Errorf("event code above 15: %w", ErrNotDigit)
	}
	return digit, nil
}
