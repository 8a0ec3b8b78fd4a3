package dialog

import (
	"strings"

	"github.com/emiago/sipgo/sip"
)

// Why a call ended, told to the peer. Our BYE carries the reason given to
// Hangup in an RFC 3326 Reason header, `Reason: SIP;cause=200;text="removed"`,
// and the text of the peer's BYE's Reason is kept (Call.RemoteReason).
// Between two groupbridge nodes that is how the owner of a room tells the
// node relaying a caller why the leg ended ("removed", "closed"), so that
// the relay ends the caller's own call for the same reason. A PBX may log
// it or ignore it; cause 200 says the call ended normally.

// maxReasonText bounds a reason's text, ours and the peer's.
const maxReasonText = 64

// CleanReason returns s as a reason's text may carry it: letters, digits,
// '-', '_', '.' and spaces, every other byte replaced by '_', at most
// maxReasonText bytes. Nothing else may reach a header or a log line: the
// peer's text is outside input.
func CleanReason(s string) string {
	if len(s) > maxReasonText {
		s = s[:maxReasonText]
	}
	s = strings.TrimSpace(s)
	b := []byte(s)
	for i, c := range b {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_', c == '.', c == ' ':
		default:
			b[i] = '_'
		}
	}
	return string(b)
}

// reasonHeader is our BYE's Reason header for why; nil for an empty why.
func reasonHeader(why string) sip.Header {
	text := CleanReason(why)
	if text == "" {
		return nil
	}
	return sip.NewHeader("Reason", `SIP;cause=200;text="`+text+`"`)
}

// ParseReason returns the text of the Reason header values (RFC 3326:
// `protocol *(;param)`, comma-separated values, several headers), cleaned
// by CleanReason: the SIP protocol's text when there is one, else the
// first text of another protocol (Q.850), else "".
func ParseReason(values []string) string {
	first := ""
	for _, v := range values {
		for _, rv := range splitQuoted(v, ',') {
			params := splitQuoted(rv, ';')
			text, ok := "", false
			for _, p := range params[1:] {
				name, val, _ := strings.Cut(p, "=")
				if strings.EqualFold(strings.TrimSpace(name), "text") {
					text, ok = unquote(strings.TrimSpace(val)), true
					break
				}
			}
			if !ok {
				continue
			}
			text = CleanReason(text)
			if strings.EqualFold(strings.TrimSpace(params[0]), "SIP") {
				return text
			}
			if first == "" {
				first = text
			}
		}
	}
	return first
}

// splitQuoted splits s at sep outside double quotes (a backslash escapes
// the next byte inside them).
func splitQuoted(s string, sep byte) []string {
	var out []string
	quoted, start := false, 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case quoted && c == '\\':
			i++
		case c == '"':
			quoted = !quoted
		case !quoted && c == sep:
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}

// unquote returns a quoted-string's content with its escapes undone, or
// a token as it is.
func unquote(s string) string {
	if len(s) < 2 || s[0] != '"' {
		return s
	}
	s = s[1:]
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\\' && i+1 < len(s):
			i++
			b.WriteByte(s[i])
		case c == '"':
			return b.String()
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}
