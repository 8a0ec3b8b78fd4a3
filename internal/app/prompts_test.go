package app

import (
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/groupbridge/groupbridge/config"
	"github.com/groupbridge/groupbridge/internal/testkit"
	"github.com/groupbridge/groupbridge/media/prompt"
)

// config cannot import media/prompt; its list of built-in languages must
// still be the compiled-in one.
func TestConfigKnowsTheBuiltinLanguages(t *testing.T) {
	if !slices.Equal(config.BuiltinLanguages, prompt.BuiltinLanguages()) {
		t.Fatalf("config.BuiltinLanguages = %v, prompt has %v", config.BuiltinLanguages, prompt.BuiltinLanguages())
	}
}

// promptsConfig is a valid configuration with a prompts section.
func promptsConfig(t *testing.T, prompts, groupExtra string) *config.Config {
	t.Helper()
	y := "prompts:\n" + prompts + "groups:\n  - {name: a, member_pin: \"4821\", led_by: peer" + groupExtra + "}\n"
	cfg, err := config.Parse([]byte(y))
	if err != nil {
		t.Fatalf("config: %v\n%s", err, y)
	}
	return cfg
}

// recordSet writes a whole set of lang's prompt names into dir/lang,
// each clip one sample holding v, but skip.
func recordSet(t *testing.T, dir, lang string, v int16, skip ...string) {
	t.Helper()
	sub := filepath.Join(dir, lang)
	if err := os.MkdirAll(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, n := range prompt.NamesOf(lang) {
		if n != prompt.HoldMusic && !slices.Contains(skip, n) {
			testkit.WriteWAV(t, filepath.Join(sub, n+".wav"), []int16{v})
		}
	}
}

func TestLoadPromptsLanguages(t *testing.T) {
	dir := t.TempDir()
	recordSet(t, dir, "fr", 7)
	for _, l := range []string{"en", "es", "de"} {
		if err := os.Mkdir(filepath.Join(dir, l), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	testkit.WriteWAV(t, filepath.Join(dir, "goodbye.wav"), []int16{1})       // the default language's
	testkit.WriteWAV(t, filepath.Join(dir, "en", "welcome.wav"), []int16{2}) // en's
	testkit.WriteWAV(t, filepath.Join(dir, "es", "welcome.wav"), []int16{3}) // es's
	testkit.WriteWAV(t, filepath.Join(dir, "de", "welcome.wav"), []int16{4}) // not configured: ignored
	cfg := promptsConfig(t, "  languages: [en, es]\n  dir: "+dir+"\n", ", language: fr")
	set, err := loadPrompts(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if got := set.Languages(); !slices.Equal(got, []string{"en", "es", "fr"}) {
		t.Fatalf("languages %v", got)
	}
	clip := func(lang, name string) int16 {
		c, _ := set.In(lang).Clip(name)
		if len(c) != 1 {
			return -1 // built in
		}
		return c[0]
	}
	for _, tc := range []struct {
		lang, name string
		want       int16
	}{
		{"en", prompt.Goodbye, 1}, {"en", prompt.Welcome, 2}, {"es", prompt.Welcome, 3},
		{"es", prompt.Goodbye, -1}, {"fr", prompt.Welcome, 7}, {"fr", prompt.Goodbye, 7},
	} {
		if got := clip(tc.lang, tc.name); got != tc.want {
			t.Errorf("%s %s = %d, want %d (-1: built in)", tc.lang, tc.name, got, tc.want)
		}
	}
	if notes, err := CheckPrompts(cfg); err != nil || len(notes) != 2 ||
		!strings.Contains(notes[0], filepath.Join(dir, "en")+": 1 of ") || !strings.Contains(notes[1], "goodbye") {
		t.Errorf("CheckPrompts = %q, %v", notes, err)
	}
}

func TestLoadPromptsErrorsNameTheKey(t *testing.T) {
	dir := t.TempDir()
	recordSet(t, dir, "fr", 7, prompt.Goodbye)
	if err := os.Mkdir(filepath.Join(dir, "es"), 0o755); err != nil {
		t.Fatal(err)
	}
	testkit.WriteWAV(t, filepath.Join(dir, "es", "welcom.wav"), []int16{3})
	for _, tc := range []struct {
		name, prompts, group, want string
	}{
		{"incomplete recorded set", "  dir: " + dir + "\n", ", language: fr",
			`groups[0].language: "fr": prompts.dir: ` + filepath.Join(dir, "fr") + `: prompts missing for language "fr": goodbye`},
		{"unknown name", "  languages: [en, es]\n  dir: " + dir + "\n", "",
			`prompts.languages[1]: "es": prompts.dir: ` + filepath.Join(dir, "es", "welcom.wav") + `: unknown prompt name "welcom"`},
		{"no directory for a language", "  language: pt\n  dir: " + dir + "\n", "",
			`prompts.language: "pt": prompts.dir: open ` + filepath.Join(dir, "pt")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := promptsConfig(t, tc.prompts, tc.group)
			_, err := loadPrompts(cfg, slog.New(slog.DiscardHandler))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error = %v, want %q", err, tc.want)
			}
			if _, err := CheckPrompts(cfg); err == nil {
				t.Error("CheckPrompts found no problem")
			}
		})
	}
}

// A reload swaps every language's prompts at once: Spanish added to
// prompts.languages is in the calls' settings (the rooms get the same
// bundle through SetPrompts).
func TestReloadAddsALanguage(t *testing.T) {
	y := testYAML("", "")
	a, _ := startApp(t, y)
	if got := a.settings().Prompts.Languages(); !slices.Equal(got, []string{"en"}) {
		t.Fatalf("languages before %v", got)
	}
	if err := a.Reload(reloadYAML(t, y, "log:\n", "prompts:\n  languages: [en, es]\nlog:\n")); err != nil {
		t.Fatal(err)
	}
	st := a.settings()
	if got := st.Prompts.Languages(); !slices.Equal(got, []string{"en", "es"}) || !slices.Equal(st.Languages, []string{"en", "es"}) {
		t.Fatalf("after the reload: bundle %v, offered %v", got, st.Languages)
	}
}
