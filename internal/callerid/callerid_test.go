package callerid

import (
	"strings"
	"testing"
)

func TestNormalize(t *testing.T) {
	tests := []struct{ in, want string }{
		{"+15551234567", "+15551234567"},
		{"+1 (555) 123-4567", "+15551234567"},
		{"+1.555.123.4567", "+15551234567"},
		{"555-1234", "5551234"},
		{" 0049 30 1234567 ", "0049301234567"},
		{"1042", "1042"},
		{"alice", "alice"},
		{"john.doe", "john.doe"},
		{"1+555", "1+555"}, // a + inside: not a number, kept as a name
		{"++1555", "++1555"},
		{"", ""},
		{"+", ""},
		{"--", ""},
		{"anonymous", ""},
		{"Anonymous", ""},
		{"unknown", ""},
		{"Restricted", ""},
		{"private", ""},
		{"unavailable", ""},
		{strings.Repeat("1", 64), strings.Repeat("1", 64)},
		{strings.Repeat("1", 65), ""},
	}
	for _, tc := range tests {
		if got := Normalize(tc.in); got != tc.want {
			t.Errorf("Normalize(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestAsserted(t *testing.T) {
	tests := []struct {
		name   string
		values []string
		want   string
	}{
		{"sip uri", []string{`<sip:+15551234567@pbx.example.org;user=phone>`}, "+15551234567"},
		{"display name and tel", []string{`"Jane Q" <tel:+1-555-123-4567>`}, "+15551234567"},
		{"tel with parameters", []string{`<tel:5551234;phone-context=+1555>`}, "5551234"},
		{"sips and bare addr-spec", []string{`sips:1042@pbx;transport=tls`}, "1042"},
		{"two uris in one value", []string{`<sip:anonymous@anonymous.invalid>, <tel:+15557654321>`}, "+15557654321"},
		{"two header lines", []string{`<sip:anonymous@anonymous.invalid>`, `<tel:+15557654321>`}, "+15557654321"},
		{"comma inside display name", []string{`"Doe, Jane" <sip:+15551112222@x>`}, "+15551112222"},
		{"quoted pair in display name", []string{`"a \" <sip:1@x>, b" <sip:+15553334444@x>`}, "+15553334444"},
		{"escaped user", []string{`<sip:%2B1%20555%201234567@x>`}, "+15551234567"},
		{"user with password", []string{`<sip:1042:secret@x>`}, "1042"},
		{"user parameters", []string{`<sip:+15551234567;isub=12@x>`}, "+15551234567"},
		{"host only", []string{`<sip:pbx.example.org>`}, ""},
		{"anonymous only", []string{`"Anonymous" <sip:anonymous@anonymous.invalid>`}, ""},
		{"other scheme", []string{`<mailto:a@b>`}, ""},
		{"unclosed angle", []string{`<sip:+15551234567@x`}, ""},
		{"empty", []string{""}, ""},
		{"none", nil, ""},
		{"too long", []string{"<sip:+15551234567@" + strings.Repeat("x", 600) + ">"}, ""},
	}
	for _, tc := range tests {
		if got := Asserted(tc.values); got != tc.want {
			t.Errorf("%s: Asserted(%q) = %q, want %q", tc.name, tc.values, got, tc.want)
		}
	}
}

func TestRemoteParty(t *testing.T) {
	tests := []struct {
		name        string
		values      []string
		want        string
		wantPrivate bool
	}{
		{"calling", []string{`"Jane" <sip:+15551234567@gw>;party=calling;screen=yes;privacy=off`}, "+15551234567", false},
		{"no party parameter", []string{`<sip:5551234@gw>`}, "5551234", false},
		{"privacy full", []string{`<sip:+15551234567@gw>;party=calling;privacy=full`}, "+15551234567", true},
		{"privacy uri", []string{`<sip:+15551234567@gw>;party=calling;privacy="URI"`}, "+15551234567", true},
		{"privacy name only", []string{`<sip:+15551234567@gw>;privacy=name`}, "+15551234567", false},
		{"called party skipped", []string{`<sip:4000@gw>;party=called, <sip:+15559876543@gw>;party=calling`}, "+15559876543", false},
		{"only called", []string{`<sip:4000@gw>;party=called`}, "", false},
		{"addr-spec params are header params", []string{`sip:4000@gw;party=called`}, "", false},
		{"Party in capitals", []string{`<sip:+15551234567@gw>;PARTY=Calling`}, "+15551234567", false},
	}
	for _, tc := range tests {
		got, p := RemoteParty(tc.values)
		if got != tc.want || p != tc.wantPrivate {
			t.Errorf("%s: RemoteParty = %q, %v; want %q, %v", tc.name, got, p, tc.want, tc.wantPrivate)
		}
	}
}

func TestPrivate(t *testing.T) {
	tests := []struct {
		values []string
		want   bool
	}{
		{[]string{"id"}, true},
		{[]string{"ID"}, true},
		{[]string{"header;id"}, true},
		{[]string{"none"}, false},
		{[]string{"session"}, false},
		{[]string{"user; critical"}, true},
		{[]string{"header"}, true},
		{[]string{"none", "id"}, true},
		{[]string{"identity"}, false},
		{nil, false},
	}
	for _, tc := range tests {
		if got := Private(tc.values); got != tc.want {
			t.Errorf("Private(%q) = %v, want %v", tc.values, got, tc.want)
		}
	}
}

// Resolve's order and trust: asserted headers only from an asserting
// source, PAI before Remote-Party-ID before From, and a NoFrom source's
// From names nobody.
func TestResolve(t *testing.T) {
	const (
		from = `"PBX" <sip:+15550000000@pbx>;tag=x`
		pai  = `<sip:+15551111111@pbx>`
		rpid = `<sip:+15552222222@pbx>;party=calling`
	)
	tests := []struct {
		name string
		h    Headers
		want Identity
	}{
		{"untrusted: From only", Headers{From: from, PAI: []string{pai}, RPID: []string{rpid}},
			Identity{Number: "+15550000000", Source: SourceFrom}},
		{"asserting: PAI first", Headers{From: from, PAI: []string{pai}, RPID: []string{rpid}, Assert: true},
			Identity{Number: "+15551111111", Source: SourcePAI}},
		{"asserting: RPID without PAI", Headers{From: from, RPID: []string{rpid}, Assert: true},
			Identity{Number: "+15552222222", Source: SourceRemoteParty}},
		{"asserting: From without either", Headers{From: from, Assert: true},
			Identity{Number: "+15550000000", Source: SourceFrom}},
		{"asserting: anonymous PAI falls through", Headers{From: from, PAI: []string{"<sip:anonymous@anonymous.invalid>"}, Assert: true},
			Identity{Number: "+15550000000", Source: SourceFrom}},
		{"anonymous From with PAI", Headers{From: `"Anonymous" <sip:anonymous@anonymous.invalid>;tag=1`, PAI: []string{pai}, Assert: true},
			Identity{Number: "+15551111111", Source: SourcePAI}},
		{"anonymous From", Headers{From: `<sip:anonymous@anonymous.invalid>;tag=1`},
			Identity{Source: SourceNone}},
		{"Privacy id: kept as the key, marked private", Headers{From: from, PAI: []string{pai}, Privacy: []string{"id"}, Assert: true},
			Identity{Number: "+15551111111", Private: true, Source: SourcePAI}},
		{"Privacy from anyone hides", Headers{From: from, Privacy: []string{"id"}},
			Identity{Number: "+15550000000", Private: true, Source: SourceFrom}},
		{"RPID privacy=full", Headers{From: from, RPID: []string{rpid + ";privacy=full"}, Assert: true},
			Identity{Number: "+15552222222", Private: true, Source: SourceRemoteParty}},
		{"no identity source: anonymous per call", Headers{From: from, NoFrom: true, Assert: true},
			Identity{Source: SourceNoIdentity}},
		{"no identity source that asserts", Headers{From: from, PAI: []string{pai}, NoFrom: true, Assert: true},
			Identity{Number: "+15551111111", Source: SourcePAI}},
		{"no identity, untrusted PAI ignored", Headers{From: from, PAI: []string{pai}, NoFrom: true},
			Identity{Source: SourceNoIdentity}},
		{"separators in From", Headers{From: `<tel:+1-555-000-0000>;tag=1`},
			Identity{Number: "+15550000000", Source: SourceFrom}},
	}
	for _, tc := range tests {
		if got := Resolve(tc.h); got != tc.want {
			t.Errorf("%s: Resolve = %+v, want %+v", tc.name, got, tc.want)
		}
	}
}

// FuzzResolve feeds arbitrary header values: Resolve must not panic, and
// a number it returns is normalised (Normalize leaves it as it is), bounded,
// and for a phone number holds digits only after an optional "+".
func FuzzResolve(f *testing.F) {
	f.Add(`"sipp" <sip:+15551234567@127.0.0.1:5061>;tag=1`, `<tel:+1-555-123-4567>`, `<sip:5551234@gw>;party=calling;privacy=full`, "id", true)
	f.Add(`<sip:anonymous@anonymous.invalid>;tag=1`, `"a, b" <sip:1@x>, <sip:2@y>`, ``, "none", true)
	f.Add(`sip:%2B1%20555@x;tag=1`, `<sip:`, `<<>>;;==,,""`, ";;", false)
	f.Fuzz(func(t *testing.T, from, pai, rpid, privacy string, assert bool) {
		id := Resolve(Headers{From: from, PAI: []string{pai}, RPID: []string{rpid}, Privacy: []string{privacy}, Assert: assert})
		if id.Number == "" {
			if id.Source != SourceNone && id.Source != SourceNoIdentity {
				t.Fatalf("no number but source %q", id.Source)
			}
			return
		}
		if n := Normalize(id.Number); n != id.Number {
			t.Fatalf("Normalize(%q) = %q: not normalised", id.Number, n)
		}
		if len(id.Number) > maxNumberLen {
			t.Fatalf("number of %d bytes", len(id.Number))
		}
		if !assert && id.Source != SourceFrom {
			t.Fatalf("a source that may not assert gave an identity from %q", id.Source)
		}
		d := strings.TrimPrefix(id.Number, "+")
		if strings.Trim(d, "0123456789 -.()") == "" && strings.Trim(d, "0123456789") != "" {
			t.Fatalf("%q: a number with its separators", id.Number)
		}
	})
}
