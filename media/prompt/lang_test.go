package prompt

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// Every built-in language has every prompt: the same names but for the
// words of its own way of speaking numbers, and a WAV for each line of its
// gen/<lang>.txt (and nothing else).
func TestEveryLanguageHasEveryPrompt(t *testing.T) {
	shared := func(lang string) []string {
		words := speechOf(lang).words
		var names []string
		for _, n := range NamesOf(lang) {
			if !slices.Contains(words, n) {
				names = append(names, n)
			}
		}
		return names
	}
	want := shared("en")
	if len(want) < 50 {
		t.Fatalf("English has only %d prompts", len(want))
	}
	for _, lang := range BuiltinLanguages() {
		s, err := Builtin(lang)
		if err != nil {
			t.Fatal(err)
		}
		if got := s.Names(); !slices.Equal(got, NamesOf(lang)) {
			t.Errorf("%s: the embedded WAVs differ from gen/%s.txt (+hold_music); rerun gen/generate.sh %s\n got %v\nwant %v",
				lang, lang, lang, got, NamesOf(lang))
		}
		got := shared(lang)
		for _, n := range want {
			if !slices.Contains(got, n) {
				t.Errorf("%s: no prompt %q (add it to gen/%s.txt and run gen/generate.sh %s)", lang, n, lang, lang)
			}
		}
		for _, n := range got {
			if !slices.Contains(want, n) {
				t.Errorf("%s: prompt %q is not an English prompt", lang, n)
			}
		}
		for _, w := range speechOf(lang).words {
			if _, ok := s.Clip(w); !ok {
				t.Errorf("%s: number word %q missing", lang, w)
			}
		}
		if s.Language() != lang {
			t.Errorf("Builtin(%q).Language() = %q", lang, s.Language())
		}
	}
}

func TestNumberSpanish(t *testing.T) {
	s, err := Builtin("es")
	if err != nil {
		t.Fatal(err)
	}
	// Names the clips Number returned, by looking each up in the set.
	byClip := map[*int16]string{}
	for _, n := range s.Names() {
		c, _ := s.Clip(n)
		byClip[&c[0]] = n
	}
	tests := []struct {
		n    int
		want string
	}{
		{0, "n0"},
		{1, "n1"},
		{15, "n15"},
		{21, "n21"},      // veintiuno
		{29, "n29"},      // veintinueve
		{30, "n30"},      // treinta
		{31, "n30 y n1"}, // treinta y uno
		{47, "n40 y n7"},
		{99, "n90 y n9"},
		{100, "n100"},          // cien
		{101, "ciento n1"},     // ciento uno
		{112, "ciento n12"},    // ciento doce
		{123, "ciento n23"},    // ciento veintitrés
		{200, "n200"},          // doscientos
		{250, "n200 n50"},      // doscientos cincuenta
		{342, "n300 n40 y n2"}, // trescientos cuarenta y dos
		{999, "n900 n90 y n9"},
		{1000, "n1 n0 n0 n0"},
		{-5, "n5"},
	}
	for _, tc := range tests {
		var got []string
		for _, c := range s.Number(tc.n) {
			got = append(got, byClip[&c[0]])
		}
		if g := strings.Join(got, " "); g != tc.want {
			t.Errorf("Number(%d) = %q, want %q", tc.n, g, tc.want)
		}
	}
	for n := range 1000 {
		if len(s.Number(n)) == 0 {
			t.Fatalf("Number(%d): nothing", n)
		}
	}
}

func TestTexts(t *testing.T) {
	es, err := Texts("es")
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(es, func(x Text) bool { return x.Name == LanguageOffer })
	if i < 0 || es[i].Text != "Para español, oprima estrella" {
		t.Errorf("es language_offer: %+v", es)
	}
	if _, err := Texts("fr"); !errors.Is(err, ErrUnknownLanguage) {
		t.Errorf("Texts(fr) error = %v", err)
	}
	// A recorded language has English's names.
	if !slices.Equal(NamesOf("fr"), NamesOf("en")) {
		t.Error("NamesOf(fr) is not English's")
	}
}

func TestBundle(t *testing.T) {
	en, _ := Builtin("en")
	es, _ := Builtin("es")
	b := Bundle(en, es)
	if b.Language() != "en" || b.In("es").Language() != "es" || b.In("es").In("en") != b {
		t.Fatal("In does not reach each language")
	}
	if b.In("de") != b || b.In("es").In("de") != b {
		t.Error("an unknown language does not fall back to the default")
	}
	if got := b.In("es").Languages(); !slices.Equal(got, []string{"en", "es"}) {
		t.Errorf("Languages() = %v", got)
	}
	if en.In("es") != en || !slices.Equal(en.Languages(), []string{"en"}) {
		t.Error("a lone Set is not its own library")
	}
}

func TestRecorded(t *testing.T) {
	dir := t.TempDir()
	for _, n := range NamesOf("fr") {
		if n != HoldMusic && n != Goodbye {
			writeWAV(t, dir, n+".wav", 8000, 1, 2, 3)
		}
	}
	_, err := Recorded("fr", dir)
	if !errors.Is(err, ErrIncomplete) || !strings.Contains(err.Error(), `for language "fr": goodbye`) {
		t.Fatalf("incomplete set: error = %v", err)
	}
	writeWAV(t, dir, "goodbye.wav", 8000, 4)
	s, err := Recorded("fr", dir)
	if err != nil {
		t.Fatal(err)
	}
	if c, _ := s.Clip(Goodbye); !slices.Equal(c, []int16{4}) || s.Language() != "fr" {
		t.Errorf("goodbye = %v, language %q", c, s.Language())
	}
	if _, ok := s.Clip(HoldMusic); !ok {
		t.Error("no built-in hold music")
	}
	if err := os.WriteFile(filepath.Join(dir, "welcom.wav"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Recorded("fr", dir); !errors.Is(err, ErrUnknownPrompt) {
		t.Errorf("extra name: error = %v", err)
	}
}

func TestTimeSpanish(t *testing.T) {
	s, err := Builtin("es")
	if err != nil {
		t.Fatal(err)
	}
	byClip := map[*int16]string{}
	for _, n := range s.Names() {
		c, _ := s.Clip(n)
		byClip[&c[0]] = n
	}
	for _, tc := range []struct {
		day          time.Weekday
		hour, minute int
		want         string
	}{
		{time.Tuesday, 19, 30, "tuesday a_las n7 y media de_la_tarde"}, // el martes a las siete y media de la tarde
		{time.Tuesday, 19, 0, "tuesday a_las n7 de_la_tarde"},
		{time.Thursday, 13, 15, "thursday a_la_una y cuarto de_la_tarde"},
		{time.Friday, 1, 5, "friday a_la_una y n5 de_la_madrugada"},
		{time.Sunday, 9, 45, "sunday a_las n9 y n40 y n5 de_la_manana"},
		{time.Saturday, 20, 21, "saturday a_las n8 y n21 de_la_noche"},
		{time.Monday, 12, 30, "monday a_las n12 y media de_la_tarde"},
		{time.Wednesday, 0, 10, "wednesday a_las n12 y n10 de_la_madrugada"},
		{time.Thursday, 12, 0, "thursday a noon"}, // a mediodía
		{time.Tuesday, 0, 0, "monday a midnight"}, // el lunes a medianoche
		{time.Friday, 24, 0, ""},
	} {
		var got []string
		for _, c := range s.Time(tc.day, tc.hour, tc.minute) {
			got = append(got, byClip[&c[0]])
		}
		if g := strings.Join(got, " "); g != tc.want {
			t.Errorf("Time(%v, %d, %d) = %q, want %q", tc.day, tc.hour, tc.minute, g, tc.want)
		}
	}
}
