package callflow

import (
	"slices"
	"testing"

	"github.com/groupbridge/groupbridge/media/prompt"
)

// The welcome's offers: one line per other offered language, in that
// language, with its key (its place in prompts.languages) in its words.
func TestAppendOffers(t *testing.T) {
	en, err := prompt.Builtin("en")
	if err != nil {
		t.Fatal(err)
	}
	es, err := prompt.Builtin("es")
	if err != nil {
		t.Fatal(err)
	}
	b := prompt.Bundle(en, es)
	line := func(set *prompt.Set, key int) [][]int16 {
		c, _ := set.Clip(prompt.LanguageOffer)
		return append(append([][]int16{c}, set.Number(key)...), nil) // nil: the pause
	}
	for _, tc := range []struct {
		name      string
		speak     *prompt.Set
		languages []string
		want      [][]int16
	}{
		{"English welcome offers Spanish as 2", b, []string{"en", "es"}, line(b.In("es"), 2)},
		{"Spanish welcome offers English as 1", b.In("es"), []string{"en", "es"}, line(b, 1)},
		{"Spanish first", b, []string{"es", "en"}, line(b.In("es"), 1)},
		{"a language not loaded is not offered", b, []string{"en", "fr"}, nil},
		{"one language, no offer", b, []string{"en"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := appendOffers(nil, tc.speak, tc.languages)
			if len(got) != len(tc.want) {
				t.Fatalf("%d clips, want %d", len(got), len(tc.want))
			}
			for i := range got {
				if tc.want[i] == nil {
					continue // the pause after the line
				}
				if !slices.Equal(got[i], tc.want[i]) {
					t.Errorf("clip %d is not the expected one", i)
				}
			}
		})
	}
}
