package config

import (
	"bufio"
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"io/fs"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The example directories that ship, each with the groupbridge side of one
// way of running next to a PBX.
var exampleDirs = []string{"asterisk", "freeswitch", "freepbx", "register"}

// The cluster example's nodes, each a groupbridge.yaml of its own.
var clusterNodes = []string{"node-a", "node-b", "node-c"}

// exampleConfig reports whether path is a groupbridge configuration of the
// examples, and its key: the directory for a groupbridge.yaml, or
// cluster/node-x for a node of the cluster example.
func exampleConfig(path string) (string, bool) {
	dir, name := filepath.Base(filepath.Dir(path)), filepath.Base(path)
	switch {
	case name == "groupbridge.yaml":
		return dir, true
	case dir == "cluster" && strings.HasPrefix(name, "node-") && strings.HasSuffix(name, ".yaml"):
		return "cluster/" + strings.TrimSuffix(name, ".yaml"), true
	}
	return "", false
}

// loadExamples parses every groupbridge configuration under examples/,
// keyed as exampleConfig says, and fails the test on any that does not
// parse and validate.
func loadExamples(t *testing.T) map[string]*Config {
	t.Helper()
	out := make(map[string]*Config)
	err := filepath.WalkDir("examples", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		key, ok := exampleConfig(path)
		if !ok {
			return nil
		}
		c, err := LoadFile(path)
		if err != nil {
			t.Errorf("%v", err)
			return nil
		}
		out[key] = c
		return nil
	})
	if err != nil {
		t.Fatalf("walking examples: %v", err)
	}
	return out
}

func TestExamplesParse(t *testing.T) {
	got := loadExamples(t)
	for _, dir := range exampleDirs {
		if _, ok := got[dir]; !ok {
			t.Errorf("examples/%s/groupbridge.yaml is missing or invalid", dir)
		}
	}
	for _, n := range clusterNodes {
		if _, ok := got["cluster/"+n]; !ok {
			t.Errorf("examples/cluster/%s.yaml is missing or invalid", n)
		}
	}
}

// secretLine matches a line of an example that sets a secret.
var secretLine = regexp.MustCompile(`^\s*-?\s*(member_pin|facilitator_pin|password|token|secret):\s*"([^"]*)"(.*)$`)

// TestExampleSecrets keeps example PINs and passwords recognisable as
// examples: each is marked so in a comment, none is the demo's, and none is
// shared between examples (copying two examples must not merge two groups).
// The nodes of the cluster example are one example: they share their
// groups and the cluster secret.
func TestExampleSecrets(t *testing.T) {
	demo, err := Embedded()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]string{}
	for _, g := range demo.Groups {
		seen[g.MemberPIN] = "default.yaml"
		seen[g.FacilitatorPIN] = "default.yaml"
	}
	files, err := filepath.Glob("examples/*/groupbridge.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no example files (%v)", err)
	}
	nodes, err := filepath.Glob("examples/cluster/node-*.yaml")
	if err != nil || len(nodes) != len(clusterNodes) {
		t.Fatalf("cluster nodes %q (%v), want %d", nodes, err, len(clusterNodes))
	}
	files = append(files, nodes...)
	secrets := 0
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for n, line := range strings.Split(string(data), "\n") {
			m := secretLine.FindStringSubmatch(line)
			if m == nil {
				continue
			}
			secrets++
			// Messages name the place, never the value.
			at := f + ":" + strconv.Itoa(n+1) + " " + m[1]
			if !strings.Contains(m[3], "# example") {
				t.Errorf("%s: no \"# example\" comment", at)
			}
			if first, dup := seen[m[2]]; dup && filepath.Dir(first) != filepath.Dir(f) {
				t.Errorf("%s: same value as in %s", at, first)
			}
			seen[m[2]] = at
		}
	}
	// Every example has at least two groups with both PINs.
	if secrets < 4*(len(exampleDirs)+len(clusterNodes)) {
		t.Errorf("found %d secrets in the examples; the pattern missed some", secrets)
	}
}

// Documentation (RFC 5737) and other addresses an example may name.
var allowedPrefixes = []netip.Prefix{
	netip.MustParsePrefix("192.0.2.0/24"),
	netip.MustParsePrefix("198.51.100.0/24"),
	netip.MustParsePrefix("203.0.113.0/24"),
	netip.MustParsePrefix("127.0.0.0/8"),
	netip.MustParsePrefix("0.0.0.0/32"),
}

var ipv4 = regexp.MustCompile(`\b\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}\b`)

// TestExampleAddresses keeps real addresses out of the examples: a reader
// must change every one, and a copied example must never reach a stranger.
func TestExampleAddresses(t *testing.T) {
	walkExampleFiles(t, func(path string, data []byte) {
		for _, s := range ipv4.FindAllString(string(data), -1) {
			a, err := netip.ParseAddr(s)
			if err != nil {
				continue // a version number, not an address
			}
			if !slices.ContainsFunc(allowedPrefixes, func(p netip.Prefix) bool { return p.Contains(a) }) {
				t.Errorf("%s: %s is not a documentation address (RFC 5737)", path, s)
			}
		}
	})
}

// TestExampleXML checks that every XML file (the FreeSWITCH ones) is well
// formed: FreeSWITCH refuses a whole configuration over one broken file.
func TestExampleXML(t *testing.T) {
	n := 0
	walkExampleFiles(t, func(path string, data []byte) {
		if filepath.Ext(path) != ".xml" {
			return
		}
		n++
		d := xml.NewDecoder(bytes.NewReader(data))
		for {
			_, err := d.Token()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Errorf("%s: %v", path, err)
				break
			}
		}
	})
	if n == 0 {
		t.Error("no XML files under examples/")
	}
}

func walkExampleFiles(t *testing.T, fn func(path string, data []byte)) {
	t.Helper()
	err := filepath.WalkDir("examples", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		fn(path, data)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestExamplePBXSides checks that each PBX side points at the address its
// groupbridge.yaml listens on, that the groupbridge side trusts a peer
// beyond loopback (the PBX), and that the numbers the PBX routes to
// groupbridge reach every group's number.
func TestExamplePBXSides(t *testing.T) {
	cfgs := loadExamples(t)
	tests := []struct {
		name     string
		dir      string
		file     string
		target   *regexp.Regexp // groupbridge's address in the PBX file
		route    *regexp.Regexp // the PBX's pattern of numbers sent to groupbridge
		matchFor func(pattern, number string) bool
	}{
		{"asterisk aor contact", "asterisk", "pjsip.conf", regexp.MustCompile(`(?m)^contact=sip:([^\s;]+)`), nil, nil},
		{"asterisk identify", "asterisk", "pjsip.conf", regexp.MustCompile(`(?m)^match=(\S+)`), nil, nil},
		{"asterisk dialplan", "asterisk", "extensions.conf", nil, regexp.MustCompile(`(?m)^exten => ([^,]+),1,[^\n]*\n\s*same => n,Dial\(PJSIP/\$\{EXTEN\}@groupbridge`), asteriskMatch},
		{"freepbx aor contact", "freepbx", "pjsip_custom.conf", regexp.MustCompile(`(?m)^contact=sip:([^\s;]+)`), nil, nil},
		{"freepbx identify", "freepbx", "pjsip_custom.conf", regexp.MustCompile(`(?m)^match=(\S+)`), nil, nil},
		{"freepbx outbound route", "freepbx", "README.md", nil, regexp.MustCompile("match pattern `([^`]+)`"), freePBXMatch},
		{"freeswitch gateway", "freeswitch", "sip_profiles/external/groupbridge.xml", regexp.MustCompile(`name="proxy" value="([^"]+)"`), nil, nil},
		{"freeswitch dialplan", "freeswitch", "dialplan/default/50_groupbridge.xml", nil, regexp.MustCompile(`expression="([^"]+)"`), regexpMatch},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := cfgs[tc.dir]
			if cfg == nil {
				t.Fatalf("examples/%s/groupbridge.yaml did not load", tc.dir)
			}
			data, err := os.ReadFile(filepath.Join("examples", tc.dir, tc.file))
			if err != nil {
				t.Fatal(err)
			}
			if !trustsBeyondLoopback(cfg) {
				t.Errorf("sip.trusted holds only loopback: the PBX's calls would get 403")
			}
			if tc.target != nil {
				ms := tc.target.FindAllSubmatch(data, -1)
				if len(ms) == 0 {
					t.Fatalf("%v not found", tc.target)
				}
				for _, m := range ms {
					if !listensOn(cfg, string(m[1])) {
						t.Errorf("%s is not an address in sip.listen %v", m[1], cfg.SIP.Listen)
					}
				}
			}
			if tc.route != nil {
				var patterns []string
				for _, m := range tc.route.FindAllSubmatch(data, -1) {
					patterns = append(patterns, string(m[1]))
				}
				if len(patterns) == 0 {
					t.Fatalf("%v not found", tc.route)
				}
				for _, g := range cfg.Groups {
					if g.Number == "" {
						continue
					}
					if !slices.ContainsFunc(patterns, func(p string) bool { return tc.matchFor(p, g.Number) }) {
						t.Errorf("group %q: number %s is routed by none of %q", g.Name, g.Number, patterns)
					}
				}
			}
		})
	}
}

func trustsBeyondLoopback(c *Config) bool {
	for _, p := range c.SIP.TrustedPrefixes() {
		if !p.Addr().IsLoopback() {
			return true
		}
	}
	return false
}

// listensOn reports whether addr (host or host:port, port 5060 when left
// out) is one of c's SIP listen addresses.
func listensOn(c *Config, addr string) bool {
	if !strings.Contains(addr, ":") {
		addr += ":5060"
	}
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return false
	}
	for _, l := range c.SIP.Listeners() {
		if l.Addr == ap {
			return true
		}
	}
	return false
}

// asteriskMatch reports whether an Asterisk extension pattern matches a
// number: a literal, or after "_" the letters X (0-9), Z (1-9), N (2-9),
// [...] classes and a final "." (one or more of anything).
func asteriskMatch(pattern, number string) bool {
	if !strings.HasPrefix(pattern, "_") {
		return pattern == number
	}
	p := pattern[1:]
	i := 0
	for len(p) > 0 {
		c := p[0]
		p = p[1:]
		if c == '.' {
			return i < len(number)
		}
		if i >= len(number) {
			return false
		}
		d := number[i]
		i++
		switch c {
		case 'X', 'x':
			if d < '0' || d > '9' {
				return false
			}
		case 'Z', 'z':
			if d < '1' || d > '9' {
				return false
			}
		case 'N', 'n':
			if d < '2' || d > '9' {
				return false
			}
		case '[':
			end := strings.IndexByte(p, ']')
			if end < 0 || !classHas(p[:end], d) {
				return false
			}
			p = p[end+1:]
		default:
			if c != d {
				return false
			}
		}
	}
	return i == len(number)
}

// classHas reports whether d is in an Asterisk [...] class such as 1-3 or 12.
func classHas(class string, d byte) bool {
	for j := 0; j < len(class); j++ {
		if j+2 < len(class) && class[j+1] == '-' {
			if d >= class[j] && d <= class[j+2] {
				return true
			}
			j += 2
			continue
		}
		if class[j] == d {
			return true
		}
	}
	return false
}

// freePBXMatch matches FreePBX dial patterns, which are Asterisk patterns
// without the leading "_".
func freePBXMatch(pattern, number string) bool { return asteriskMatch("_"+pattern, number) }

func regexpMatch(pattern, number string) bool {
	re, err := regexp.Compile(pattern)
	return err == nil && re.MatchString(number)
}

func TestAsteriskMatch(t *testing.T) {
	tests := []struct {
		pattern, number string
		want            bool
	}{
		{"4000", "4000", true},
		{"4000", "4001", false},
		{"_400[12]", "4001", true},
		{"_400[12]", "4002", true},
		{"_400[12]", "4003", false},
		{"_400[1-3]", "4003", true},
		{"_400X", "4009", true},
		{"_400X", "40091", false},
		{"_400X", "400", false},
		{"_NXX", "199", false},
		{"_ZXX", "199", true},
		{"_X.", "4", false}, // "." is one or more more
		{"_X.", "45", true},
		{"_X.", "", false},
		{"_+X.", "+15555550101", true},
	}
	for _, tc := range tests {
		if got := asteriskMatch(tc.pattern, tc.number); got != tc.want {
			t.Errorf("asteriskMatch(%q, %q) = %v, want %v", tc.pattern, tc.number, got, tc.want)
		}
	}
}

const unitFile = "systemd/groupbridge.service"

// readUnit returns the unit's directives, each key with every value it is
// given, in order (a unit may repeat a key, like SystemCallFilter).
func readUnit(t *testing.T) map[string][]string {
	t.Helper()
	f, err := os.Open(unitFile)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := make(map[string][]string)
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' || line[0] == ';' || line[0] == '[' {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Errorf("%s: %q is not key=value", unitFile, line)
			continue
		}
		out[k] = append(out[k], v)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestSystemdUnit(t *testing.T) {
	unit := readUnit(t)
	want := map[string]string{
		"ExecStart":               "/usr/local/bin/groupbridge serve --config /etc/groupbridge/groupbridge.yaml",
		"ExecReload":              "/bin/kill -HUP $MAINPID",
		"KillSignal":              "SIGTERM",
		"Restart":                 "on-failure",
		"User":                    "groupbridge",
		"AmbientCapabilities":     "", // ports 5060 and 10000+ need no privilege
		"CapabilityBoundingSet":   "",
		"NoNewPrivileges":         "yes",
		"ProtectSystem":           "strict",
		"ProtectHome":             "yes",
		"PrivateTmp":              "yes",
		"PrivateDevices":          "yes",
		"RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX",
		"MemoryDenyWriteExecute":  "yes",
		"LockPersonality":         "yes",
		"StateDirectory":          "groupbridge",
		"StateDirectoryMode":      "0700",
		"WorkingDirectory":        "/var/lib/groupbridge",
	}
	for k, v := range want {
		got, ok := unit[k]
		if !ok {
			t.Errorf("%s: no %s=", unitFile, k)
			continue
		}
		if got[len(got)-1] != v {
			t.Errorf("%s: %s=%s, want %s=%s", unitFile, k, got[len(got)-1], k, v)
		}
	}
	if !slices.Contains(unit["SystemCallFilter"], "@system-service") {
		t.Errorf("%s: no SystemCallFilter=@system-service", unitFile)
	}

	// systemd must not kill the process while it is still saying goodbye:
	// the stop timeout covers drain_timeout (calls hung up, registration
	// removed) plus slack for closing the sockets.
	const slack = 5 * time.Second
	stop, err := time.ParseDuration(lastValue(unit, "TimeoutStopSec"))
	if err != nil {
		t.Fatalf("%s: TimeoutStopSec: %v", unitFile, err)
	}
	drains := []time.Duration{Default().DrainTimeout}
	for dir, c := range loadExamples(t) {
		if c.DrainTimeout+slack >= stop {
			t.Errorf("examples/%s: drain_timeout %s + %s slack is not below TimeoutStopSec %s", dir, c.DrainTimeout, slack, stop)
		}
		drains = append(drains, c.DrainTimeout)
	}
	if slices.Max(drains)+slack >= stop {
		t.Errorf("TimeoutStopSec %s leaves no room after drain_timeout %s", stop, slices.Max(drains))
	}

	// ProtectSystem=strict leaves only the state directory writable: the
	// examples keep attendance there.
	for dir, c := range loadExamples(t) {
		if c.Attendance.DSN == "" && filepath.Dir(c.Attendance.Path) != "/var/lib/groupbridge" {
			t.Errorf("examples/%s: attendance.path %s is outside the unit's StateDirectory /var/lib/groupbridge", dir, c.Attendance.Path)
		}
	}

	// Two sockets per call (RTP, RTCP) across the default port range, and
	// room for SIP over TCP.
	nofile, err := strconv.Atoi(lastValue(unit, "LimitNOFILE"))
	d := Default()
	if need := (d.RTP.PortMax - d.RTP.PortMin + 1) + 1024; err != nil || nofile < need {
		t.Errorf("%s: LimitNOFILE=%s, want a number of at least %d", unitFile, lastValue(unit, "LimitNOFILE"), need)
	}

	users, err := os.ReadFile("systemd/groupbridge.sysusers")
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`(?m)^u groupbridge `).Match(users) {
		t.Errorf("systemd/groupbridge.sysusers does not create the user groupbridge")
	}
}

func lastValue(unit map[string][]string, key string) string {
	v := unit[key]
	if len(v) == 0 {
		return ""
	}
	return v[len(v)-1]
}

// TestSystemdVerify runs systemd-analyze verify on the unit where systemd
// is installed, with ExecStart pointed at an executable that exists (the
// test binary), since verify checks that it does.
func TestSystemdVerify(t *testing.T) {
	tool, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze is not installed")
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(unitFile)
	if err != nil {
		t.Fatal(err)
	}
	data = bytes.ReplaceAll(data, []byte("/usr/local/bin/groupbridge"), []byte(self))
	path := filepath.Join(t.TempDir(), "groupbridge.service")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(tool, "verify", path).CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}
