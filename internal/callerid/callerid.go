// Package callerid reads who is calling from an INVITE's identity headers:
// P-Asserted-Identity (RFC 3325), Remote-Party-ID (the draft many PBXs and
// trunks still send), Privacy (RFC 3323) and From. The values come from
// outside: parsing is bounded, never panics, and an unreadable value gives
// no number rather than an error.
//
// Whether a source may assert an identity is the caller's decision
// (Headers.Assert); this package only applies it.
package callerid

import (
	"net/url"
	"strings"
)

// Source tells which header an identity came from.
type Source string

// The sources of an identity.
const (
	SourceNone Source = "none" // a withheld or missing number
	// SourceNoIdentity: the source's From names nobody (Headers.NoFrom)
	// and no header asserted anyone: anonymous for this call only.
	SourceNoIdentity  Source = "no-identity"
	SourceFrom        Source = "from"
	SourcePAI         Source = "p-asserted-identity"
	SourceRemoteParty Source = "remote-party-id"
)

// Bounds on outside input.
const (
	maxValues    = 8   // entries looked at, per header
	maxValueLen  = 512 // longer values are not read at all
	maxNumberLen = 64  // a longer user part names nobody
)

// Headers are an INVITE's identity headers, as their raw values.
type Headers struct {
	From    string   // the From header's value
	PAI     []string // P-Asserted-Identity values
	RPID    []string // Remote-Party-ID values
	Privacy []string // Privacy values
	// Assert is set for a source inside the trust domain (RFC 3325): its
	// P-Asserted-Identity and Remote-Party-ID are believed.
	Assert bool
	// NoFrom is set for a source whose From names nobody (a PBX that puts
	// one number in every From): without an asserted identity the caller
	// is anonymous for this call only.
	NoFrom bool
}

// Identity is who a call is from.
type Identity struct {
	// Number is the normalised number (or SIP user name) that identifies
	// the caller; "" when nobody is named.
	Number string
	// Private is set when the caller asked to withhold their identity
	// (Privacy: id, header or user; Remote-Party-ID privacy=full or uri):
	// Number still tells callers apart but is never shown.
	Private bool
	// Source is the header Number came from.
	Source Source
}

// Resolve picks the identity: from an asserting source P-Asserted-Identity
// first, then Remote-Party-ID, then From; from any other source From only.
func Resolve(h Headers) Identity {
	private := Private(h.Privacy)
	if h.Assert {
		if n := Asserted(h.PAI); n != "" {
			return Identity{Number: n, Private: private, Source: SourcePAI}
		}
		if n, p := RemoteParty(h.RPID); n != "" {
			return Identity{Number: n, Private: private || p, Source: SourceRemoteParty}
		}
	}
	if h.NoFrom {
		return Identity{Source: SourceNoIdentity}
	}
	n := ""
	if v := firstAddress(h.From); v != nil {
		n = v.number
	}
	if n == "" {
		return Identity{Source: SourceNone}
	}
	return Identity{Number: n, Private: private, Source: SourceFrom}
}

// Asserted returns the number of the first P-Asserted-Identity entry that
// names someone, or "". RFC 3325 allows one sip/sips and one tel URI;
// either may come first.
func Asserted(values []string) string {
	for _, a := range addresses(values) {
		if a.number != "" {
			return a.number
		}
	}
	return ""
}

// RemoteParty returns the calling party's number from Remote-Party-ID
// values, and whether it asks to be withheld (privacy=full or uri). An
// entry for another party (party=called) is skipped; one without a party
// parameter is the calling party.
func RemoteParty(values []string) (number string, private bool) {
	for _, a := range addresses(values) {
		if p, ok := a.params["party"]; ok && !strings.EqualFold(p, "calling") {
			continue
		}
		if a.number == "" {
			continue
		}
		pv := strings.ToLower(a.params["privacy"])
		return a.number, pv == "full" || pv == "uri"
	}
	return "", false
}

// Private reports whether Privacy values (RFC 3323: priv-values separated
// by ";") ask to withhold the caller's identity: "id" (RFC 3325), "header"
// or "user".
func Private(values []string) bool {
	for i, v := range values {
		if i == maxValues {
			break
		}
		if len(v) > maxValueLen {
			continue
		}
		for _, f := range strings.FieldsFunc(v, func(r rune) bool { return r == ';' || r == ',' }) {
			switch strings.ToLower(strings.TrimSpace(f)) {
			case "id", "header", "user":
				return true
			}
		}
	}
	return false
}

// Normalize returns a caller's user part as its identity: a phone number
// without visual separators (spaces, "-", ".", "(", ")"), keeping a
// leading "+", so "+1 (555) 123-4567" and "+15551234567" are one caller.
// A user part that is not a number (a SIP user name) is kept as it is;
// one that names nobody ("anonymous" and the like) or is too long to be a
// number gives "".
func Normalize(user string) string {
	user = strings.TrimSpace(user)
	if len(user) > maxNumberLen || anonymous(user) {
		return ""
	}
	d := strings.TrimPrefix(user, "+")
	plus := len(d) < len(user)
	var b strings.Builder
	for i := 0; i < len(d); i++ {
		switch c := d[i]; {
		case c >= '0' && c <= '9':
			b.WriteByte(c)
		case c == ' ' || c == '-' || c == '.' || c == '(' || c == ')':
		default:
			return user // not a number: a user name
		}
	}
	if b.Len() == 0 {
		return "" // separators only
	}
	if plus {
		return "+" + b.String()
	}
	return b.String()
}

// anonymous reports whether a user part stands for "no number".
func anonymous(u string) bool {
	switch strings.ToLower(u) {
	case "", "anonymous", "unknown", "restricted", "private", "unavailable", "withheld":
		return true
	}
	return false
}

// address is one name-addr or addr-spec of a header value.
type address struct {
	number string            // the URI's user part, normalised; "" if none
	params map[string]string // header parameters after the URI, keys lower-case
}

// addresses parses up to maxValues entries of a comma-separated header
// (several header lines count as one list).
func addresses(values []string) []address {
	var out []address
	for _, v := range values {
		if len(v) > maxValueLen {
			continue
		}
		for _, e := range splitList(v) {
			if len(out) == maxValues {
				return out
			}
			if a := parseAddress(e); a != nil {
				out = append(out, *a)
			}
		}
	}
	return out
}

// firstAddress parses a header that holds one address (From).
func firstAddress(v string) *address {
	if len(v) > maxValueLen {
		return nil
	}
	for _, e := range splitList(v) {
		return parseAddress(e)
	}
	return nil
}

// splitList splits a header value at the commas that separate entries:
// not inside a quoted display name or a <URI>.
func splitList(v string) []string {
	var out []string
	quoted, angle, start := false, false, 0
	for i := 0; i < len(v); i++ {
		switch c := v[i]; {
		case quoted && c == '\\':
			i++ // quoted-pair
		case c == '"' && !angle:
			quoted = !quoted
		case quoted:
		case c == '<':
			angle = true
		case c == '>':
			angle = false
		case c == ',' && !angle:
			out = append(out, v[start:i])
			start = i + 1
		}
	}
	return append(out, v[start:])
}

// parseAddress reads `"Name" <uri>;params` or `uri;params`; nil when no
// URI is there.
func parseAddress(e string) *address {
	e = strings.TrimSpace(e)
	var uri, rest string
	if i := openAngle(e); i >= 0 {
		j := strings.IndexByte(e[i:], '>')
		if j < 0 {
			return nil
		}
		uri, rest = e[i+1:i+j], e[i+j+1:]
	} else {
		// addr-spec: parameters after the URI belong to the header.
		uri, rest, _ = strings.Cut(e, ";")
		if rest != "" {
			rest = ";" + rest
		}
	}
	uri = strings.TrimSpace(uri)
	if uri == "" {
		return nil
	}
	return &address{number: Normalize(uriUser(uri)), params: params(rest)}
}

// openAngle returns the index of the "<" that opens the URI, skipping a
// quoted display name, or -1.
func openAngle(e string) int {
	quoted := false
	for i := 0; i < len(e); i++ {
		switch c := e[i]; {
		case quoted && c == '\\':
			i++
		case c == '"':
			quoted = !quoted
		case !quoted && c == '<':
			return i
		}
	}
	return -1
}

// uriUser returns the user part of a sip:, sips: or tel: URI, with its
// escapes decoded; "" for another scheme or no user part.
func uriUser(uri string) string {
	scheme, rest, ok := strings.Cut(uri, ":")
	if !ok {
		return ""
	}
	var user string
	switch strings.ToLower(scheme) {
	case "tel":
		// RFC 3966: the number, then ";" parameters.
		user, _, _ = strings.Cut(rest, ";")
	case "sip", "sips":
		at := strings.LastIndexByte(rest, '@')
		if at < 0 {
			return "" // a host only
		}
		user = rest[:at]
		user, _, _ = strings.Cut(user, ":") // user:password
		user, _, _ = strings.Cut(user, ";") // user=phone style parameters
	default:
		return ""
	}
	if u, err := url.PathUnescape(user); err == nil {
		user = u
	}
	return user
}

// params reads ";key=value;flag" header parameters; keys lower-case,
// quotes around a value removed.
func params(s string) map[string]string {
	m := map[string]string{}
	for _, p := range strings.Split(s, ";") {
		k, v, _ := strings.Cut(strings.TrimSpace(p), "=")
		k = strings.ToLower(strings.TrimSpace(k))
		if k == "" || len(m) >= 16 {
			continue
		}
		m[k] = strings.Trim(strings.TrimSpace(v), `"`)
	}
	return m
}
