package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/groupbridge/groupbridge/config"
	"github.com/groupbridge/groupbridge/media/prompt"
)

func run(args ...string) (stdout, stderr string, code int) {
	var out, errb bytes.Buffer
	root := newRoot(&out, &errb)
	root.SetArgs(args)
	err := root.Execute()
	var ee exitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		code = ee.code
	default:
		errb.WriteString(err.Error())
		code = 1
	}
	return out.String(), errb.String(), code
}

func TestConfigDefaultPrintsEmbedded(t *testing.T) {
	out, _, code := run("config", "default")
	if code != 0 || out != string(config.EmbeddedYAML()) {
		t.Fatalf("code %d, output differs from the embedded file", code)
	}
}

func TestConfigCheck(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	if err := os.WriteFile(good, config.EmbeddedYAML(), 0o600); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte(`
rtp: {port_min: 30000, port_max: 20000}
groups:
  - name: A
    member_pin: "12"
    facilitator_pin: "55512"
    led_by: boss
`), 0o600); err != nil {
		t.Fatal(err)
	}
	// A group whose readings are an 11.025 kHz WAV and a file not there.
	if err := os.MkdirAll(filepath.Join(dir, "prompts", "readings"), 0o700); err != nil {
		t.Fatal(err)
	}
	odd := []byte("RIFF\x2c\x00\x00\x00WAVEfmt \x10\x00\x00\x00\x01\x00\x01\x00\x11\x2b\x00\x00\x22\x56\x00\x00\x02\x00\x10\x00data\x04\x00\x00\x00\x01\x00\x02\x00")
	if err := os.WriteFile(filepath.Join(dir, "prompts", "readings", "preamble.wav"), odd, 0o600); err != nil {
		t.Fatal(err)
	}
	badReading := filepath.Join(dir, "reading.yaml")
	if err := os.WriteFile(badReading, []byte(`
prompts: {dir: `+filepath.Join(dir, "prompts")+`}
groups:
  - name: A
    member_pin: "4821"
    greeting: hello.wav
    readings: [{key: 1, file: preamble.wav}]
`), 0o600); err != nil {
		t.Fatal(err)
	}
	// A bad reading and two languages with no prompts at all: one run
	// names all three.
	several := filepath.Join(dir, "several.yaml")
	if err := os.WriteFile(several, []byte(`
prompts: {dir: `+filepath.Join(dir, "prompts")+`, languages: [en, xx]}
groups:
  - {name: A, member_pin: "4821", language: fr, readings: [{key: 1, file: preamble.wav}]}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	// A volunteer's Spanish set in the making, and a French one with a typo.
	langDir := filepath.Join(dir, "voices")
	for _, sub := range []string{"es", "fr"} {
		if err := os.MkdirAll(filepath.Join(langDir, sub), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	wav := []byte("RIFF\x26\x00\x00\x00WAVEfmt \x10\x00\x00\x00\x01\x00\x01\x00\x40\x1f\x00\x00\x80\x3e\x00\x00\x02\x00\x10\x00data\x02\x00\x00\x00\x01\x00")
	for _, f := range []string{"es/welcome.wav", "fr/welcom.wav"} {
		if err := os.WriteFile(filepath.Join(langDir, f), wav, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	spanish := filepath.Join(dir, "spanish.yaml")
	french := filepath.Join(dir, "french.yaml")
	for file, langs := range map[string]string{spanish: "[en, es]", french: "[en, fr]"} {
		if err := os.WriteFile(file, []byte(`
prompts: {languages: `+langs+`, dir: `+langDir+`}
groups:
  - {name: A, member_pin: "4821", led_by: peer}
`), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// attendance.dsn holds a password: neither a good nor a broken one
	// is ever shown.
	dsnGood := filepath.Join(dir, "dsn-good.yaml")
	dsnBad := filepath.Join(dir, "dsn-bad.yaml")
	for file, dsn := range map[string]string{
		dsnGood: "postgres://gb:pw-7f3a9c@pg7.example.com/gb",
		dsnBad:  "host=pg7.example.com password=pw-7f3a9c",
	} {
		if err := os.WriteFile(file, []byte("attendance: {dsn: \""+dsn+"\"}\ngroups:\n  - {name: A, member_pin: \"482193\"}\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// cluster.redis holds a password and cluster.secret is one: the
	// check shows the first redacted and never the second.
	clusterGood := filepath.Join(dir, "cluster-good.yaml")
	clusterBad := filepath.Join(dir, "cluster-bad.yaml")
	for file, redis := range map[string]string{
		clusterGood: "redis://gb:pw-c1u5t3r@192.0.2.5:6379/0",
		clusterBad:  "http://gb:pw-c1u5t3r@192.0.2.5:6379/0",
	} {
		if err := os.WriteFile(file, []byte("cluster:\n  node: a\n  redis: \""+redis+"\"\n  listen: 192.0.2.11:5070\n  peers: [192.0.2.0/24]\n  secret: \"cs-0123456789-abcdefghij-klmnopqrstu\"\n  proxies: [192.0.2.9]\ngroups:\n  - {name: A, member_pin: \"482193\"}\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name     string
		file     string
		code     int
		want     []string
		mustNot  []string
		toStdout bool
	}{
		{"a cluster", clusterGood, 0, []string{"ok (1 groups)", "cluster: node a, listen 192.0.2.11:5070, peers 192.0.2.0/24, redis redis://gb:xxxxx@192.0.2.5:6379/0, lease 5s, fallback refuse, behind proxies 192.0.2.9"},
			[]string{"pw-c1u5t3r", "cs-0123456789"}, true},
		{"a broken cluster.redis", clusterBad, 1, []string{"cluster.redis: must be a redis:// or rediss:// URL with a user and password"}, []string{"pw-c1u5t3r", "cs-0123456789"}, false},
		{"a DSN", dsnGood, 0, []string{"ok (1 groups)"}, []string{"pw-7f3a9c", "pg7.example.com"}, true},
		{"a broken DSN", dsnBad, 1, []string{"attendance.dsn: must be a postgres:// or postgresql:// URL"}, []string{"pw-7f3a9c", "pg7.example.com"}, false},
		{"valid", good, 0, []string{"ok (1 groups)"}, nil, true},
		{"a partial Spanish set", spanish, 0, []string{"ok (1 groups)",
			"prompts: " + filepath.Join(langDir, "es") + ": 1 of "}, nil, true},
		{"a French set with a typo", french, 1, []string{
			`prompts.languages[1]: "fr": prompts.dir: ` + filepath.Join(langDir, "fr", "welcom.wav") + `: unknown prompt name "welcom"`,
		}, nil, false},
		{"bad reading", badReading, 1, []string{
			"groups[0].greeting: " + filepath.Join(dir, "prompts", "readings", "hello.wav") + ": missing (no such file)",
			"groups[0].readings[0].file: " + filepath.Join(dir, "prompts", "readings", "preamble.wav") + ": unusable WAV file: sample rate 11025 Hz",
		}, []string{"4821"}, false},
		{"readings and languages at once", several, 1, []string{
			"groups[0].readings[0].file: " + filepath.Join(dir, "prompts", "readings", "preamble.wav") + ": unusable WAV file",
			`prompts.languages[1]: "xx"`,
			`groups[0].language: "fr"`,
		}, []string{"4821"}, false},
		{"every problem", bad, 1, []string{
			"rtp.port_min: 30000 is above rtp.port_max: 20000",
			"groups[0].member_pin: must be 4-10 digits",
			"groups[0].facilitator_pin",
			`groups[0].led_by: "boss"`,
		}, []string{"55512"}, false},
		{"missing file", filepath.Join(dir, "nope.yaml"), 1, []string{"nope.yaml"}, nil, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, code := run("config", "check", tc.file)
			if code != tc.code {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tc.code, out, errOut)
			}
			text := errOut
			if tc.toStdout {
				text = out
			}
			for _, w := range tc.want {
				if !strings.Contains(text, w) {
					t.Errorf("output lacks %q:\n%s", w, text)
				}
			}
			for _, m := range tc.mustNot {
				if strings.Contains(out+errOut, m) {
					t.Errorf("output shows the secret %q", m)
				}
			}
		})
	}
}

func TestVersion(t *testing.T) {
	out, _, code := run("version")
	if code != 0 || !strings.HasPrefix(out, "groupbridge ") {
		t.Fatalf("version: %q (%d)", out, code)
	}
}

func TestServeRejectsBadConfig(t *testing.T) {
	_, errOut, code := run("serve", "--config", filepath.Join(t.TempDir(), "missing.yaml"))
	if code != 1 || errOut == "" {
		t.Fatalf("serve with a missing file: code %d, stderr %q", code, errOut)
	}
}

// A configuration that other users may read holds PINs: `config check`
// warns on stderr and still succeeds.
func TestConfigCheckWarnsOnReadableFile(t *testing.T) {
	file := filepath.Join(t.TempDir(), "gb.yaml")
	if err := os.WriteFile(file, config.EmbeddedYAML(), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, row := range []struct {
		mode os.FileMode
		warn bool
	}{{0o600, false}, {0o644, true}, {0o604, true}, {0o640, false}} {
		if err := os.Chmod(file, row.mode); err != nil {
			t.Fatal(err)
		}
		out, errOut, code := run("config", "check", file)
		if code != 0 || !strings.Contains(out, "ok (1 groups)") {
			t.Errorf("%04o: exit %d, stdout %q", row.mode, code, out)
		}
		warned := strings.Contains(errOut, "warning: "+file+" is readable by every user")
		// The demo's 4-digit member PIN adds its own warning
		// (TestConfigCheckPINGuessing); only the file mode matters here.
		if warned != row.warn || (!row.warn && strings.Contains(errOut, "readable")) {
			t.Errorf("%04o: stderr %q, want a warning: %v", row.mode, errOut, row.warn)
		}
		if strings.Contains(errOut, "1234") || strings.Contains(errOut, "654321") {
			t.Errorf("%04o: the warning shows a PIN: %q", row.mode, errOut)
		}
	}
}

// serve logs the same warning at start and runs on.
func TestServeWarnsOnReadableFile(t *testing.T) {
	for _, row := range []struct {
		mode os.FileMode
		warn bool
	}{{0o644, true}, {0o600, false}} {
		file := filepath.Join(t.TempDir(), "gb.yaml")
		if err := os.WriteFile(file, []byte(configYAML(groupA)), row.mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(file, row.mode); err != nil { // past the umask
			t.Fatal(err)
		}
		p := start(t, file)
		p.wait(t, 10*time.Second, "listening")
		if row.warn {
			r := p.wait(t, 5*time.Second, "configuration file permissions")
			if r["level"] != "WARN" || !strings.Contains(fmt.Sprint(r["problem"]), file+" is readable by every user") {
				t.Errorf("%04o: %v", row.mode, r)
			}
		}
		if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		<-p.done
		if n := p.count("configuration file permissions"); (n == 1) != row.warn || n > 1 {
			t.Errorf("%04o: %d warnings", row.mode, n)
		}
		if p.err != nil {
			t.Errorf("%04o: exit %v", row.mode, p.err)
		}
	}
}

// config check prints the expected time to guess a PIN from each number
// at limits.pin_budget and warns, by key and never by value, about PINs
// to lengthen when a number holds under 30 days; warnings keep exit 0.
func TestConfigCheckPINGuessing(t *testing.T) {
	dir := t.TempDir()
	three := ""
	for i, p := range [][2]string{{"482193", "917355"}, {"503817", "226491"}, {"771502", "390648"}} {
		three += fmt.Sprintf("  - {name: G%d, member_pin: %q, facilitator_pin: %q, led_by: peer}\n", i, p[0], p[1])
	}
	tests := []struct {
		name     string
		yaml     string
		out      []string
		warn     []string
		noWarn   bool
		mustNotC []string
	}{
		{"the demo: a 4-digit member PIN", string(config.EmbeddedYAML()),
			[]string{"at limits.pin_budget 6 wrong PINs a minute", "the shared access number (any number no group claims), 2 PINs: 13.9 hours"},
			[]string{"warning: PINs reachable from the shared access number (any number no group claims) can be guessed in 13.9 hours on average (under 30 days): lengthen groups[0].member_pin to 6 digits or more"},
			false, []string{"1234", "654321"}},
		{"6-digit PINs on the group's own number", "groups:\n  - {name: A, number: \"1001\", member_pin: \"482193\", facilitator_pin: \"917355\", led_by: peer}\n",
			[]string{"the shared access number (any number no group claims), 2 PINs: 38.6 days", "groups[0].number, 2 PINs: 38.6 days"},
			nil, true, []string{"482193", "917355"}},
		{"three groups of 6-digit PINs on the shared number", "groups:\n" + three,
			[]string{"6 PINs: 16.5 days"},
			[]string{"lengthen groups[0].member_pin, groups[0].facilitator_pin, groups[1].member_pin, groups[1].facilitator_pin, groups[2].member_pin, groups[2].facilitator_pin to 7 digits or more"},
			false, []string{"482193", "390648"}},
		{"the same at a budget of 1 a minute", "limits: {pin_budget: 1}\ngroups:\n" + three,
			[]string{"at limits.pin_budget 1 wrong PINs a minute", "6 PINs: 99.2 days"},
			nil, true, nil},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			file := filepath.Join(dir, fmt.Sprintf("c%d.yaml", i))
			if err := os.WriteFile(file, []byte(tc.yaml), 0o600); err != nil {
				t.Fatal(err)
			}
			out, errOut, code := run("config", "check", file)
			if code != 0 {
				t.Fatalf("exit %d, want 0 (warnings are not errors)\nstdout: %s\nstderr: %s", code, out, errOut)
			}
			for _, w := range tc.out {
				if !strings.Contains(out, w) {
					t.Errorf("stdout lacks %q:\n%s", w, out)
				}
			}
			for _, w := range tc.warn {
				if !strings.Contains(errOut, w) {
					t.Errorf("stderr lacks %q:\n%s", w, errOut)
				}
			}
			if tc.noWarn && strings.Contains(errOut, "warning: PINs") {
				t.Errorf("warned about PINs that hold over 30 days:\n%s", errOut)
			}
			for _, s := range tc.mustNotC {
				if strings.Contains(out+errOut, s) {
					t.Errorf("output shows the PIN %q", s)
				}
			}
		})
	}
}

// prompts list prints every prompt of the language, name|words, so a
// volunteer can record a whole set; a language without built-ins gets
// English's names to translate.
func TestPromptsList(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want []string
		n    int // name|text lines
	}{
		{[]string{"prompts", "list"}, []string{"welcome|Welcome. Please enter your group PIN, then press pound.\n", "n19|nineteen\n"}, len(prompt.NamesOf("en")) - 1},
		{[]string{"prompts", "list", "--lang", "es"}, []string{"language_offer|Para español, oprima estrella\n", "n21|veintiuno\n"}, len(prompt.NamesOf("es")) - 1},
		{[]string{"prompts", "list", "--lang", "fr"}, []string{"# fr has no built-in prompts", "goodbye|Goodbye.\n"}, len(prompt.NamesOf("fr")) - 1},
	} {
		out, _, code := run(tc.args...)
		if code != 0 {
			t.Fatalf("%v: exit %d", tc.args, code)
		}
		for _, w := range tc.want {
			if !strings.Contains(out, w) {
				t.Errorf("%v: no %q in\n%s", tc.args, w, out)
			}
		}
		n := 0
		for _, line := range strings.Split(out, "\n") {
			if strings.Contains(line, "|") && !strings.HasPrefix(line, "#") {
				n++
			}
		}
		if n != tc.n {
			t.Errorf("%v: %d prompts listed, want %d", tc.args, n, tc.n)
		}
	}
}
