package config

import (
	"bytes"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

func TestDefault(t *testing.T) {
	want := &Config{
		SIP: SIP{
			Listen:         []string{"udp:0.0.0.0:5060", "tcp:0.0.0.0:5060"},
			UserAgent:      "groupbridge",
			Trusted:        []string{"127.0.0.0/8", "::1/128"},
			AssertIdentity: []string{"trusted"},
			DropScanners:   true,
		},
		RTP: RTP{
			Address:     "0.0.0.0",
			PortMin:     10000,
			PortMax:     20000,
			Timeout:     30 * time.Second,
			HoldTimeout: time.Hour,
			SRTP:        SRTPOffer,
		},
		Audio:   Audio{JitterMin: 20 * time.Millisecond, JitterMax: 200 * time.Millisecond, MaxTalkers: 4, AGC: true},
		Log:     Log{Format: "text", Callers: "tag"},
		Prompts: Prompts{Language: "en", ReadingsMax: 10 * time.Minute},
		Admin:   Admin{Listen: "127.0.0.1:8080"},
		Limits: Limits{PINFailureAlarm: 60, SourceRate: 10, SourceBurst: 20, MaxCalls: 1000, MaxCall: 4 * time.Hour,
			SetupPerSource: 10, SetupPerUser: 10,
			PINBudget: 6, PINBudgetBridge: 30, PINQueue: 40, KnownCallers: 30,
			TCPPerSource: 20, TCPIdle: 30 * time.Second, TLSHandshake: 10 * time.Second},
		Attendance:   Attendance{Path: "groupbridge-data/attendance.db", Keep: 400},
		DrainTimeout: 10 * time.Second,
	}
	if got := Default(); !reflect.DeepEqual(got, want) {
		t.Fatalf("Default() = %+v\nwant %+v", got, want)
	}
	// Default has no groups, so on its own it must not validate.
	assertErrors(t, Default().Validate(), "groups: at least one group is required")
	// Each call returns a fresh value: a caller editing one must not edit the next.
	d := Default()
	d.SIP.Listen[0] = "changed"
	d.SIP.Trusted[0] = "changed"
	if Default().SIP.Listen[0] == "changed" || Default().SIP.Trusted[0] == "changed" {
		t.Fatal("Default shares a slice between calls")
	}
	if got := DefaultRegister(); got != (Register{Expires: 300 * time.Second}) {
		t.Errorf("DefaultRegister() = %+v", got)
	}
}

func TestDefaultGroup(t *testing.T) {
	want := Group{LedBy: "peer", MaxMembers: 30, ShareMinutes: 3, EndGrace: 2 * time.Minute,
		OpenEarly: 15 * time.Minute, Overrun: 15 * time.Minute}
	if got := DefaultGroup(); !reflect.DeepEqual(got, want) {
		t.Fatalf("DefaultGroup() = %+v, want %+v", got, want)
	}
}

func TestEmbedded(t *testing.T) {
	c, err := Embedded()
	if err != nil {
		t.Fatalf("Embedded: %v", err)
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("embedded config does not validate: %v", err)
	}
	wantListeners := []Listener{
		{Transport: "udp", Addr: netip.MustParseAddrPort("127.0.0.1:5060")},
		{Transport: "tcp", Addr: netip.MustParseAddrPort("127.0.0.1:5060")},
	}
	if got := c.SIP.Listeners(); !slices.Equal(got, wantListeners) {
		t.Errorf("listeners = %v, want %v", got, wantListeners)
	}
	if c.RTP.Address != "127.0.0.1" {
		t.Errorf("rtp.address = %q, want 127.0.0.1", c.RTP.Address)
	}
	if len(c.Groups) != 1 {
		t.Fatalf("embedded config has %d groups, want 1", len(c.Groups))
	}
	want := DefaultGroup()
	want.Name, want.MemberPIN, want.FacilitatorPIN, want.LedBy = "Demo group", "1234", "654321", "peer"
	if !reflect.DeepEqual(c.Groups[0], want) {
		t.Errorf("demo group = %+v, want %+v", c.Groups[0], want)
	}
	// Everything the file does not set comes from code.
	d := Default()
	if c.SIP.UserAgent != d.SIP.UserAgent || c.RTP.PortMin != d.RTP.PortMin || c.RTP.PortMax != d.RTP.PortMax ||
		c.RTP.Timeout != d.RTP.Timeout || c.RTP.HoldTimeout != d.RTP.HoldTimeout || c.Log != d.Log || !reflect.DeepEqual(c.Prompts, d.Prompts) {
		t.Errorf("embedded config changes a code default: %+v", c)
	}
	// EmbeddedYAML hands out a copy.
	b := EmbeddedYAML()
	b[0] = 'X'
	if EmbeddedYAML()[0] == 'X' {
		t.Error("EmbeddedYAML returns the embedded slice itself")
	}
}

// commentedKey matches a commented-out "key: value" line of default.yaml.
var commentedKey = regexp.MustCompile(`(?m)^(\s*)# ([a-z_]+: .*)$`)

// exampleLine matches a commented-out line of an example value: three spaces
// after the #, below a commented key at the same indentation.
var exampleLine = regexp.MustCompile(`^(\s*)#   (.*)$`)

// withExamples uncomments the "# key: value" lines of data and, where such
// a line is followed by example lines, replaces its value by the example.
func withExamples(data []byte) []byte {
	var out []string
	keyIndent := "-" // indentation of the commented key above, or "-" for none
	keyAt := -1      // its line in out, until its first example line replaces its value
	for _, line := range strings.Split(string(data), "\n") {
		if m := exampleLine.FindStringSubmatch(line); m != nil && m[1] == keyIndent {
			if keyAt >= 0 {
				key, _, _ := strings.Cut(out[keyAt], ":")
				out[keyAt] = key + ":"
				keyAt = -1
			}
			out = append(out, m[1]+"  "+m[2])
			continue
		}
		keyIndent, keyAt = "-", -1
		if m := commentedKey.FindStringSubmatch(line); m != nil {
			keyIndent, keyAt = m[1], len(out)
			line = m[1] + m[2]
		}
		out = append(out, line)
	}
	return []byte(strings.Join(out, "\n"))
}

// TestEmbeddedDocumentsDefaults uncomments the "# key: value" lines of the
// embedded file: the result must parse to the same configuration, so the
// comments show the true code defaults. With the example values filled in,
// it must still parse and mention every key of the schema, so that `config
// default` documents each key a later change adds.
func TestEmbeddedDocumentsDefaults(t *testing.T) {
	full := commentedKey.ReplaceAll(EmbeddedYAML(), []byte("$1$2"))
	got, err := Parse(full)
	if err != nil {
		t.Fatalf("uncommented default.yaml does not parse: %v\n%s", err, full)
	}
	want, err := Embedded()
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("a commented default in default.yaml differs from the code:\n got %+v\nwant %+v", got, want)
	}

	examples := withExamples(EmbeddedYAML())
	// The admin.tls example names files the check reads: a pair of this
	// test's own stands in for them.
	tmp := t.TempDir()
	writePair(t, tmp, "admin-cert.pem", "admin-key.pem")
	examples = bytes.ReplaceAll(examples, []byte("/etc/groupbridge/admin-"), []byte(tmp+"/admin-"))
	ex, err := Parse(examples)
	if err != nil {
		t.Fatalf("default.yaml with its examples does not parse: %v\n%s", err, examples)
	}
	if ex.SIP.Register == nil || len(ex.SIP.Users) == 0 || !ex.Cluster.Clustered() {
		t.Errorf("the examples of sip.register, sip.users and cluster were not read:\n%s", examples)
	}

	var doc yaml.Node
	if err := yaml.Unmarshal(examples, &doc); err != nil {
		t.Fatal(err)
	}
	inFile := map[string]bool{}
	collectKeys(doc.Content[0], "", inFile)
	schema := map[string]bool{}
	schemaKeys(reflect.TypeFor[Config](), "", schema)
	for k := range schema {
		if !inFile[k] {
			t.Errorf("default.yaml does not mention %s, not even in a comment", k)
		}
	}
	for k := range inFile {
		if !schema[k] {
			t.Errorf("default.yaml mentions %s, which is not in the schema", k)
		}
	}
}

func collectKeys(n *yaml.Node, path string, out map[string]bool) {
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			p := strings.TrimPrefix(path+"."+n.Content[i].Value, ".")
			out[p] = true
			collectKeys(n.Content[i+1], p, out)
		}
	case yaml.SequenceNode:
		for _, item := range n.Content {
			collectKeys(item, path+"[]", out)
		}
	}
}

func schemaKeys(t reflect.Type, path string, out map[string]bool) {
	for f := range t.Fields() {
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		p := strings.TrimPrefix(path+"."+name, ".")
		out[p] = true
		switch {
		case f.Type.Kind() == reflect.Struct:
			schemaKeys(f.Type, p, out)
		case f.Type.Kind() == reflect.Pointer && f.Type.Elem().Kind() == reflect.Struct:
			schemaKeys(f.Type.Elem(), p, out)
		case f.Type.Kind() == reflect.Slice && f.Type.Elem().Kind() == reflect.Struct:
			schemaKeys(f.Type.Elem(), p+"[]", out)
		}
	}
}

func TestParseKeepsDefaults(t *testing.T) {
	c, err := Parse([]byte(`
rtp:
  port_max: 30000
groups:
  - name: Tuesday Grief Circle
    member_pin: "4821"
  - name: Thursday
    number: "+1002"
    member_pin: "4822"
    facilitator_pin: "917355"
    led_by: facilitator
    max_members: 12
    share_minutes: 5
    end_grace: 0
    timezone: Europe/Madrid
    meets: ["Thu 18:00-19:00"]
    open_early: 5m
    overrun: 0s
`))
	if err != nil {
		t.Fatal(err)
	}
	d := Default()
	if !slices.Equal(c.SIP.Listen, d.SIP.Listen) || c.RTP.PortMin != 10000 || c.RTP.PortMax != 30000 {
		t.Errorf("defaults not kept around an explicit key: %+v", c)
	}
	if !reflect.DeepEqual(c.Groups[0], Group{Name: "Tuesday Grief Circle", MemberPIN: "4821", LedBy: "peer", MaxMembers: 30, ShareMinutes: 3, EndGrace: 2 * time.Minute,
		OpenEarly: 15 * time.Minute, Overrun: 15 * time.Minute}) {
		t.Errorf("group defaults not applied: %+v", c.Groups[0])
	}
	want := Group{Name: "Thursday", Number: "+1002", MemberPIN: "4822", FacilitatorPIN: "917355", LedBy: "facilitator", MaxMembers: 12, ShareMinutes: 5, EndGrace: 0,
		Timezone: "Europe/Madrid", Meets: []string{"Thu 18:00-19:00"}, OpenEarly: 5 * time.Minute, Overrun: 0}
	if !reflect.DeepEqual(c.Groups[1], want) {
		t.Errorf("explicit group values not kept: %+v, want %+v", c.Groups[1], want)
	}
	if g := c.Group("THURSDAY"); g != &c.Groups[1] {
		t.Errorf("Group(THURSDAY) = %p, want %p", g, &c.Groups[1])
	}
	if g := c.Group("nope"); g != nil {
		t.Errorf("Group(nope) = %+v, want nil", g)
	}
}

// TestPINLiteralText checks YAML's number quirks cannot change a PIN: an
// unquoted 0123 would be octal 83 to a YAML int, and 1234 is an int.
func TestPINLiteralText(t *testing.T) {
	tests := []struct{ in, want string }{
		{`0123`, "0123"},
		{`01234567`, "01234567"},
		{`1234`, "1234"},
		{`"0042"`, "0042"},
		{`'9999'`, "9999"},
		{`0012345678`, "0012345678"},
	}
	for _, tt := range tests {
		c, err := Parse([]byte("groups:\n  - name: g\n    member_pin: " + tt.in + "\n"))
		if err != nil {
			t.Errorf("member_pin: %s: %v", tt.in, err)
			continue
		}
		if got := c.Groups[0].MemberPIN; got != tt.want {
			t.Errorf("member_pin: %s gave %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestMergeAndAlias(t *testing.T) {
	c, err := Parse([]byte(`
groups:
  - &base
    name: A
    member_pin: "1111"
    max_members: 5
    led_by: facilitator
    facilitator_pin: "111111"
  - <<: *base
    name: B
    member_pin: "2222"
    facilitator_pin: "222222"
  - <<: [{share_minutes: 7, max_members: 8}, *base]
    name: C
    member_pin: "3333"
    facilitator_pin: "333333"
`))
	if err != nil {
		t.Fatal(err)
	}
	b := c.Groups[1]
	if b.Name != "B" || b.MemberPIN != "2222" || b.MaxMembers != 5 || b.LedBy != "facilitator" {
		t.Errorf("merged group B = %+v", b)
	}
	// In a list of merges the earlier mapping wins.
	cg := c.Groups[2]
	if cg.MaxMembers != 8 || cg.ShareMinutes != 7 || cg.LedBy != "facilitator" {
		t.Errorf("merged group C = %+v", cg)
	}
}

func TestLoadFile(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(good, []byte("groups:\n  - name: g\n    member_pin: \"4821\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bad, []byte("sip:\n  lisen: []\ngroups: []\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := LoadFile(good)
	if err != nil || len(c.Groups) != 1 {
		t.Fatalf("LoadFile(good) = %v, %v", c, err)
	}

	_, err = LoadFile(bad)
	want := bad + ": sip.lisen: unknown key\n" + bad + ": groups: at least one group is required"
	if err == nil || err.Error() != want {
		t.Errorf("LoadFile(bad) error:\n%v\nwant:\n%s", err, want)
	}
	var errs Errors
	if !errors.As(err, &errs) || len(errs) != 2 {
		t.Errorf("errors.As(Errors) on LoadFile error: %v", errs)
	}
	var fe *FileError
	if !errors.As(err, &fe) || fe.File != bad {
		t.Errorf("errors.As(*FileError) = %v", fe)
	}

	missing := filepath.Join(dir, "missing.yaml")
	_, err = LoadFile(missing)
	if err == nil || !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), missing) {
		t.Errorf("LoadFile(missing) = %v, want a not-exist error naming the file", err)
	}
}

// TestGroupUnmarshalYAML covers decoding a Group with yaml.v3 directly.
func TestGroupUnmarshalYAML(t *testing.T) {
	var gs []Group
	if err := yaml.Unmarshal([]byte("- name: a\n  member_pin: 0123\n  max_members: 4\n"), &gs); err != nil {
		t.Fatal(err)
	}
	want := DefaultGroup()
	want.Name, want.MemberPIN, want.MaxMembers = "a", "0123", 4
	if len(gs) != 1 || !reflect.DeepEqual(gs[0], want) {
		t.Errorf("got %+v, want %+v", gs, want)
	}

	var g Group
	err := yaml.Unmarshal([]byte("name: a\npin: 1\nmember_pin: [98765]\n"), &g)
	var errs Errors
	if !errors.As(err, &errs) {
		t.Fatalf("error %v is not Errors", err)
	}
	assertErrors(t, errs, "pin: unknown key", "member_pin: expected a PIN, found a list")
}

func TestErrorsFormat(t *testing.T) {
	errs := Errors{{Path: "a.b", Message: "one"}, {Message: "whole file"}}
	if got := errs.Error(); got != "a.b: one\nwhole file" {
		t.Errorf("Errors.Error() = %q", got)
	}
}

func TestMaskQuoted(t *testing.T) {
	tests := []struct{ in, want string }{
		{"abc", "abc"},
		{"unknown anchor 'secret' referenced", "unknown anchor '…' referenced"},
		{"'a' and 'b'", "'…' and '…'"},
		{"it's open", "it's open"},
	}
	for _, tt := range tests {
		if got := maskQuoted(tt.in); got != tt.want {
			t.Errorf("maskQuoted(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestSIPAccess checks what the lead wires into sipua: the trusted prefixes
// and the register section with its defaults.
func TestSIPAccess(t *testing.T) {
	c, err := Parse([]byte(`
sip:
  trusted: ["10.0.0.0/8", "192.0.2.7", "2001:db8::/32", "::1"]
  users: [{name: alice, password: "correct horse"}]
  register: {registrar: "sip:pbx.example.org:5060", user: "1042", password: secret}
rtp: {external_address: 203.0.113.9, media_sources: ["203.0.113.16/28", "198.51.100.9"]}
` + okGroups))
	if err != nil {
		t.Fatal(err)
	}
	want := []netip.Prefix{
		netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.0.2.7/32"),
		netip.MustParsePrefix("2001:db8::/32"), netip.MustParsePrefix("::1/128"),
	}
	if got := c.SIP.TrustedPrefixes(); !slices.Equal(got, want) {
		t.Errorf("TrustedPrefixes() = %v, want %v", got, want)
	}
	if len(c.SIP.Users) != 1 || c.SIP.Users[0] != (User{Name: "alice", Password: "correct horse"}) {
		t.Errorf("users = %+v", c.SIP.Users)
	}
	wantReg := Register{Registrar: "sip:pbx.example.org:5060", User: "1042", Password: "secret", Expires: 300 * time.Second}
	if c.SIP.Register == nil || *c.SIP.Register != wantReg {
		t.Errorf("register = %+v, want %+v", c.SIP.Register, wantReg)
	}
	if c.RTP.ExternalAddress != "203.0.113.9" {
		t.Errorf("rtp.external_address = %q", c.RTP.ExternalAddress)
	}
	wantMedia := []netip.Prefix{netip.MustParsePrefix("203.0.113.16/28"), netip.MustParsePrefix("198.51.100.9/32")}
	if got := c.RTP.MediaSourcePrefixes(); !slices.Equal(got, wantMedia) {
		t.Errorf("MediaSourcePrefixes() = %v, want %v", got, wantMedia)
	}

	// Nobody trusted is not the same as "not set": the result is not nil.
	c, err = Parse([]byte("sip: {trusted: []}\n" + okGroups))
	if err != nil {
		t.Fatal(err)
	}
	if got := c.SIP.TrustedPrefixes(); got == nil || len(got) != 0 {
		t.Errorf("TrustedPrefixes() of an empty list = %#v, want an empty non-nil slice", got)
	}
	// The default trusts loopback only, and registers nowhere.
	c, err = Parse([]byte(okGroups))
	if err != nil {
		t.Fatal(err)
	}
	if got := c.SIP.TrustedPrefixes(); !slices.Equal(got, []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}) {
		t.Errorf("default TrustedPrefixes() = %v", got)
	}
	if c.SIP.Register != nil {
		t.Errorf("default register = %+v, want nil", c.SIP.Register)
	}
	// Identity headers: by default from every trusted source; a list
	// narrows that; From names somebody unless no_identity says otherwise.
	if p, all := c.SIP.AssertPrefixes(); !all || len(p) != 0 || len(c.SIP.NoIdentityPrefixes()) != 0 {
		t.Errorf("default AssertPrefixes() = %v, %v; NoIdentityPrefixes() = %v", p, all, c.SIP.NoIdentityPrefixes())
	}
	c, err = Parse([]byte(`sip: {assert_identity: ["10.0.0.5", "2001:db8::/64"], no_identity: ["192.0.2.0/24"]}` + "\n" + okGroups))
	if err != nil {
		t.Fatal(err)
	}
	p, all := c.SIP.AssertPrefixes()
	if all || !slices.Equal(p, []netip.Prefix{netip.MustParsePrefix("10.0.0.5/32"), netip.MustParsePrefix("2001:db8::/64")}) {
		t.Errorf("AssertPrefixes() = %v, %v", p, all)
	}
	if got := c.SIP.NoIdentityPrefixes(); !slices.Equal(got, []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}) {
		t.Errorf("NoIdentityPrefixes() = %v", got)
	}
}

func TestMaskDigits(t *testing.T) {
	tests := []struct{ in, want string }{
		{"abc", "abc"},
		{"a123b", "a123b"},
		{"member_pin:98765", "member_pin:####"},
		{"line 1234: unknown anchor '98765'", "line 1234: unknown anchor '####'"},
		{"1234", "####"},
		{"12 3456789 0", "12 #### 0"},
	}
	for _, tt := range tests {
		if got := maskDigits(tt.in); got != tt.want {
			t.Errorf("maskDigits(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// assertErrors checks that err holds exactly the wanted lines, in any order.
func assertErrors(t *testing.T, err error, want ...string) {
	t.Helper()
	var got []string
	if err != nil {
		var errs Errors
		if !errors.As(err, &errs) {
			t.Fatalf("error %v (%T) is not config.Errors", err, err)
		}
		for _, e := range errs {
			got = append(got, e.Error())
		}
	}
	slices.Sort(got)
	want = slices.Clone(want)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("errors:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}
