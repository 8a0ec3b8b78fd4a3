package main

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/groupbridge/groupbridge/config"
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
	tests := []struct {
		name     string
		file     string
		code     int
		want     []string
		mustNot  []string
		toStdout bool
	}{
		{"valid", good, 0, []string{"ok (1 groups)"}, nil, true},
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
