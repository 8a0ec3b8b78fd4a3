package prompt

import (
	"bufio"
	"bytes"
	"embed"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// builtinLanguages are the languages with an embedded set, the default
// first.
var builtinLanguages = []string{"en", "es"}

// BuiltinLanguages returns the languages whose prompts are compiled in.
func BuiltinLanguages() []string { return slices.Clone(builtinLanguages) }

// IsBuiltin reports whether lang has a compiled-in prompt set.
func IsBuiltin(lang string) bool { return slices.Contains(builtinLanguages, lang) }

// ErrIncomplete is wrapped in Recorded errors for a language without
// built-in prompts whose directory lacks some of them.
var ErrIncomplete = errors.New("prompts missing")

//go:embed gen/*.txt
var textsFS embed.FS

// Text is one prompt of a generator text file: its name and what it says.
type Text struct {
	Name, Text string
}

// texts parses gen/<lang>.txt once per language.
var texts sync.Map // lang -> func() ([]Text, error)

// Texts returns the prompts of a built-in language in the order of its
// gen/<lang>.txt, with their words: what a volunteer reads to record a set.
// hold_music is music, not a line of text, and is not among them.
func Texts(lang string) ([]Text, error) {
	if !IsBuiltin(lang) {
		return nil, fmt.Errorf("%w %q (have: %s)", ErrUnknownLanguage, lang, strings.Join(builtinLanguages, ", "))
	}
	f, _ := texts.LoadOrStore(lang, sync.OnceValues(func() ([]Text, error) {
		data, err := textsFS.ReadFile("gen/" + lang + ".txt")
		if err != nil {
			return nil, err
		}
		return parseTexts(data)
	}))
	list, err := f.(func() ([]Text, error))()
	return slices.Clone(list), err
}

// parseTexts reads "name|text" lines, skipping blank lines and comments.
func parseTexts(data []byte) ([]Text, error) {
	var list []Text
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, text, ok := strings.Cut(line, "|")
		if !ok || name == "" || text == "" {
			return nil, fmt.Errorf("malformed prompt line %q", line)
		}
		list = append(list, Text{Name: name, Text: text})
	}
	return list, sc.Err()
}

// NamesOf returns the sorted prompt names a set in lang has: those of its
// built-in set, or, for a language without one, those of English (a
// recorded set speaks numbers and times the English way, in its own
// words). hold_music is among them.
func NamesOf(lang string) []string {
	if !IsBuiltin(lang) {
		lang = "en"
	}
	list, err := Texts(lang)
	if err != nil {
		return nil
	}
	names := []string{HoldMusic}
	for _, t := range list {
		names = append(names, t.Name)
	}
	slices.Sort(names)
	return names
}

// Recorded returns the set of a language without built-in prompts, read
// from dir (prompts.dir/<lang>/): every name of NamesOf(lang) must be
// there, but hold_music, which defaults to the built-in one. Errors name
// each file or missing prompt.
func Recorded(lang, dir string) (*Set, error) {
	names := NamesOf(lang)
	loaded, err := readDir(dir, func(name string) bool { _, ok := slices.BinarySearch(names, name); return ok })
	if err != nil {
		return nil, err
	}
	var missing []string
	for _, n := range names {
		if _, ok := loaded[n]; !ok && n != HoldMusic {
			missing = append(missing, n)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("prompts.dir: %s: %w for language %q: %s", dir, ErrIncomplete, lang, strings.Join(missing, ", "))
	}
	if _, ok := loaded[HoldMusic]; !ok {
		en, err := Builtin("en")
		if err != nil {
			return nil, err
		}
		loaded[HoldMusic], _ = en.Clip(HoldMusic)
	}
	return &Set{lang: lang, clips: loaded}, nil
}

// library is the sets of every configured language, shared by the Sets of
// one Bundle.
type library struct {
	sets  map[string]*Set
	order []string
	def   *Set
}

// Bundle joins the sets of several languages into one value: it returns
// def's set, from which In reaches every other. The sets must speak
// different languages and must not be changed afterwards.
func Bundle(def *Set, others ...*Set) *Set {
	lib := &library{sets: map[string]*Set{}}
	for _, s := range append([]*Set{def}, others...) {
		if _, dup := lib.sets[s.lang]; dup {
			continue
		}
		c := &Set{lang: s.lang, clips: s.clips, lib: lib}
		lib.sets[s.lang] = c
		lib.order = append(lib.order, s.lang)
	}
	lib.def = lib.sets[def.lang]
	return lib.def
}

// In returns the set of lang from s's Bundle, or the Bundle's default set
// when it has no such language (s itself for a lone Set).
func (s *Set) In(lang string) *Set {
	if s.lib == nil {
		return s
	}
	if x, ok := s.lib.sets[lang]; ok {
		return x
	}
	return s.lib.def
}

// Languages returns the languages of s's Bundle, the default first (s's
// own for a lone Set).
func (s *Set) Languages() []string {
	if s.lib == nil {
		return []string{s.lang}
	}
	return slices.Clone(s.lib.order)
}

// speech is how a language puts words together.
type speech struct {
	// words are the clips only this way of speaking uses (number words,
	// joiners); every language has all other prompts.
	words []string
	// number appends the clips that speak n, 0 <= n <= 999.
	number func(s *Set, dst [][]int16, n int) [][]int16
	// time appends the clips that say hour:minute after a weekday, other
	// than noon and midnight (Set.Time). Every language has one.
	time func(s *Set, dst [][]int16, hour, minute int) [][]int16
	// atWord is the clip between a weekday and noon or midnight ("at").
	atWord string
}

// speechOf returns lang's way of speaking; a language without built-in
// prompts speaks the English way (its recorded set has English's names).
func speechOf(lang string) *speech {
	if lang == "es" {
		return &spanish
	}
	return &english
}

// wordNames holds "n<k>" for every k below 1000 that some language has a
// single word for (n0..n29, the tens, the hundreds).
var wordNames = func() (names [1000]string) {
	for n := range names {
		if n < 30 || n < 100 && n%10 == 0 || n%100 == 0 {
			names[n] = "n" + strconv.Itoa(n)
		}
	}
	return names
}()

// wordList names n0..n<last> and the tens up to n90, then more.
func wordList(last int, more ...string) []string {
	var names []string
	for n := 0; n < 100; n++ {
		if n <= last || n%10 == 0 {
			names = append(names, wordNames[n])
		}
	}
	return append(names, more...)
}

// english speaks an American English cardinal: 47 is n40+n7 ("forty
// seven"), 112 is n1+hundred+n12 ("one hundred twelve").
var english = speech{words: wordList(19, "hundred", At, Oh, AM, PM), atWord: At, number: func(s *Set, clips [][]int16, n int) [][]int16 {
	if h := n / 100; h > 0 {
		clips = s.appendClip(clips, wordNames[h])
		clips = s.appendClip(clips, "hundred")
		n %= 100
		if n == 0 {
			return clips
		}
	}
	if n < 20 {
		return s.appendClip(clips, wordNames[n])
	}
	clips = s.appendClip(clips, wordNames[n/10*10])
	if n%10 != 0 {
		clips = s.appendClip(clips, wordNames[n%10])
	}
	return clips
}}

// spanish speaks a Spanish cardinal: one word up to 29 (veintitrés), then
// tens joined by "y" (treinta y uno), "cien" alone, "ciento" before more
// (ciento doce), and a word for each other hundred (doscientos cincuenta).
var spanish = speech{words: wordList(29, "y", "n100", "ciento", "n200", "n300", "n400", "n500", "n600", "n700", "n800", "n900",
	esA, esALaUna, esALas, esCuarto, esMedia, esMadrugada, esManana, esTarde, esNoche), atWord: esA,
	number: func(s *Set, clips [][]int16, n int) [][]int16 {
		h, r := n/100, n%100
		switch {
		case h == 1 && r == 0:
			return s.appendClip(clips, "n100")
		case h == 1:
			clips = s.appendClip(clips, "ciento")
		case h > 1:
			clips = s.appendClip(clips, wordNames[h*100])
		}
		if h > 0 && r == 0 {
			return clips
		}
		if r < 30 {
			return s.appendClip(clips, wordNames[r])
		}
		clips = s.appendClip(clips, wordNames[r/10*10])
		if r%10 != 0 {
			clips = s.appendClip(clips, "y")
			clips = s.appendClip(clips, wordNames[r%10])
		}
		return clips
	}}
