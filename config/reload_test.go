package config

import (
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// Every key of the file says what a reload does with it: a field added to
// Config (or to a type below it) without a reload tag fails here.
func TestEveryKeyHasAReloadClass(t *testing.T) {
	if problems := reloadProblems(reflect.TypeFor[Config]()); len(problems) > 0 {
		t.Fatalf("config fields without a valid reload class:\n%s", strings.Join(problems, "\n"))
	}
}

// The walk itself finds what it must: a missing tag, a misspelt one, a
// field inside a restart list tagged live, an untagged struct in a list.
func TestReloadProblemsFound(t *testing.T) {
	type inner struct {
		A string `yaml:"a" reload:"live"`
		B string `yaml:"b"`
	}
	type nested struct {
		N int `yaml:"n" reload:"restart"`
	}
	type item struct {
		X      int    `yaml:"x" reload:"restart"`
		Y      int    `yaml:"y" reload:"live"`
		Nested nested `yaml:"nested"`
	}
	type cfg struct {
		Section inner         `yaml:"section"`
		Items   []item        `yaml:"items" reload:"restart"`
		Odd     time.Duration `yaml:"odd" reload:"sometimes"`
		Bare    int           `yaml:"bare"`
	}
	got := reloadProblems(reflect.TypeFor[cfg]())
	want := []string{"section.b", "items.y", "items.nested", "odd", "bare"}
	if len(got) != len(want) {
		t.Fatalf("problems = %q, want one for each of %q", got, want)
	}
	for i, w := range want {
		if !strings.HasPrefix(got[i], w+": ") {
			t.Errorf("problem %d = %q, want one about %s", i, got[i], w)
		}
	}
}

func TestReloadKeysClasses(t *testing.T) {
	keys := ReloadKeys()
	for key, want := range map[string]string{
		"sip.listen":        ReloadRestart,
		"sip.user_agent":    ReloadRestart, // the digest realm too
		"sip.answer_delay":  ReloadLive,
		"sip.register":      ReloadRestart,
		"sip.drop_scanners": ReloadLive,
		"drain_timeout":     ReloadLive,
		"prompts.dir":       ReloadLive,
		"limits.pin_budget": ReloadLive,
		"audio.max_talkers": ReloadRestart,
		"groups":            ReloadLive,
	} {
		if got := keys[key]; got != want {
			t.Errorf("%s: class %q, want %q", key, got, want)
		}
	}
	// Inside a list or an optional section the list is the key.
	for _, key := range []string{"groups.name", "sip.register.user", "sip"} {
		if _, ok := keys[key]; ok {
			t.Errorf("%s listed as a key of its own", key)
		}
	}
}

func TestReloadChanges(t *testing.T) {
	base := func() *Config {
		c := Default()
		c.Groups = []Group{DefaultGroup()}
		return c
	}
	tests := []struct {
		name        string
		change      func(c *Config)
		live, reset []string
	}{
		{"nothing", func(*Config) {}, nil, nil},
		{"groups", func(c *Config) { c.Groups[0].Name = "other" }, []string{"groups"}, nil},
		{"a group added", func(c *Config) { c.Groups = append(c.Groups, DefaultGroup()) }, []string{"groups"}, nil},
		{"listen", func(c *Config) { c.SIP.Listen = []string{"udp:127.0.0.1:5062"} }, nil, []string{"sip.listen"}},
		{"ports", func(c *Config) { c.RTP.PortMin, c.RTP.PortMax = 30000, 30100 }, nil, []string{"rtp.port_min", "rtp.port_max"}},
		{"user agent", func(c *Config) { c.SIP.UserAgent = "bridge-2" }, nil, []string{"sip.user_agent"}},
		{"answer delay", func(c *Config) { c.SIP.AnswerDelay = time.Second }, []string{"sip.answer_delay"}, nil},
		{"drain timeout", func(c *Config) { c.DrainTimeout = 30 * time.Second }, []string{"drain_timeout"}, nil},
		{"register added", func(c *Config) { c.SIP.Register = &Register{Registrar: "sip:192.0.2.1"} }, nil, []string{"sip.register"}},
		{"admin hosts", func(c *Config) { c.Admin.Hosts = []string{"bridge.example.org"} }, nil, []string{"admin.hosts"}},
		{"prompts", func(c *Config) { c.Prompts.Dir = "/srv/prompts" }, []string{"prompts.dir"}, nil},
		{"limits and audio", func(c *Config) { c.Limits.PINBudget = 3; c.Audio.AGC = false },
			[]string{"limits.pin_budget"}, []string{"audio.agc"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			next := base()
			tc.change(next)
			live, restart := ReloadChanges(base(), next)
			if !slices.Equal(live, tc.live) || !slices.Equal(restart, tc.reset) {
				t.Fatalf("ReloadChanges = live %q, restart %q; want %q, %q", live, restart, tc.live, tc.reset)
			}
		})
	}
}

// A field without a tag is reported as needing a restart, never dropped.
func TestReloadChangesUntaggedIsRestart(t *testing.T) {
	type cfg struct {
		Bare int `yaml:"bare"`
	}
	var live, restart []string
	diffReload(reflect.ValueOf(cfg{1}), reflect.ValueOf(cfg{2}), "", &live, &restart)
	if len(live) != 0 || !slices.Equal(restart, []string{"bare"}) {
		t.Fatalf("live %q, restart %q; want the untagged key as restart", live, restart)
	}
}
