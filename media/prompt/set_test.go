package prompt

import (
	"errors"
	"go/ast"
	"go/parser"
	"go/token"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/groupbridge/groupbridge/media/pcm"
)

// textNames reads the prompt names from gen/en.txt, the generator's input.
func textNames(t *testing.T) []string {
	t.Helper()
	data, err := os.ReadFile("gen/en.txt")
	if err != nil {
		t.Fatal(err)
	}
	texts, err := parseTexts(data)
	if err != nil {
		t.Fatalf("gen/en.txt: %v", err)
	}
	names := make([]string, len(texts))
	for i, x := range texts {
		names[i] = x.Name
	}
	return names
}

// dBFS returns the RMS and peak level of clip relative to full scale.
func dBFS(clip []int16) (rms, peak float64) {
	var sum float64
	var pk int
	for _, s := range clip {
		v := float64(s)
		sum += v * v
		pk = max(pk, abs(int(s)))
	}
	rms = 20 * math.Log10(math.Sqrt(sum/float64(len(clip)))/32768)
	peak = 20 * math.Log10(float64(pk)/32768)
	return rms, peak
}

func abs(v int) int {
	if v < 0 {
		return -v
	}
	return v
}

func TestBuiltinMatchesTexts(t *testing.T) {
	s, err := Builtin("en")
	if err != nil {
		t.Fatal(err)
	}
	want := append(textNames(t), HoldMusic)
	slices.Sort(want)
	if got := s.Names(); !slices.Equal(got, want) {
		t.Fatalf("built-in prompts differ from gen/en.txt (+hold_music); rerun gen/generate.sh\n got %v\nwant %v", got, want)
	}
	if got := Names(); !slices.Equal(got, want) {
		t.Fatalf("Names() = %v, want %v", got, want)
	}
}

func TestBuiltinPromptsAreSpeech(t *testing.T) {
	for _, lang := range BuiltinLanguages() {
		t.Run(lang, func(t *testing.T) { checkSpeech(t, lang) })
	}
}

func checkSpeech(t *testing.T, lang string) {
	s, err := Builtin(lang)
	if err != nil {
		t.Fatal(err)
	}
	list, err := Texts(lang)
	if err != nil {
		t.Fatal(err)
	}
	for _, text := range list {
		name := text.Name
		clip, ok := s.Clip(name)
		if !ok {
			t.Errorf("%s: missing", name)
			continue
		}
		secs := float64(len(clip)) / pcm.SampleRate
		rms, peak := dBFS(clip)
		// Generated at a -6 dBFS peak; speech then sits around -20 dBFS.
		// A clip outside these bands is silence, clipping or a broken run.
		// Spanish "y" (and) is one short vowel.
		if secs < 0.25 || secs > 40 {
			t.Errorf("%s: %.2f s long, want 0.25..40 s", name, secs)
		}
		if rms < -30 || rms > -14 {
			t.Errorf("%s: RMS %.1f dBFS, want -30..-14", name, rms)
		}
		if peak < -9 || peak > -3 {
			t.Errorf("%s: peak %.1f dBFS, want -9..-3", name, peak)
		}
		// Lead-in and tail are kept short and silent so sentences compose.
		if lead := leadingQuiet(clip); lead > 0.3 {
			t.Errorf("%s: %.2f s of silence before speech, want <= 0.3", name, lead)
		}
	}
}

// leadingQuiet returns the seconds before the first sample above -40 dBFS.
func leadingQuiet(clip []int16) float64 {
	for i, s := range clip {
		if abs(int(s)) > 328 {
			return float64(i) / pcm.SampleRate
		}
	}
	return float64(len(clip)) / pcm.SampleRate
}

func TestHoldMusic(t *testing.T) {
	s, err := Builtin("en")
	if err != nil {
		t.Fatal(err)
	}
	clip, ok := s.Clip(HoldMusic)
	if !ok {
		t.Fatal("hold_music missing")
	}
	if secs := float64(len(clip)) / pcm.SampleRate; secs < 15 || secs > 30 {
		t.Errorf("%.1f s long, want about 20", secs)
	}
	rms, peak := dBFS(clip)
	if rms < -29 || rms > -23 {
		t.Errorf("RMS %.1f dBFS, want about -26", rms)
	}
	if peak > -10 {
		t.Errorf("peak %.1f dBFS, want gentle (< -10)", peak)
	}
	// Loopable: the seam from the last sample to the first is no bigger a
	// step than the music makes anywhere else.
	var maxStep int
	for i := 1; i < len(clip); i++ {
		maxStep = max(maxStep, abs(int(clip[i])-int(clip[i-1])))
	}
	if seam := abs(int(clip[0]) - int(clip[len(clip)-1])); seam > maxStep {
		t.Errorf("loop seam jumps %d, largest step inside is %d", seam, maxStep)
	}
}

// TestNameConstants checks that every exported name constant in names.go
// is a line of gen/en.txt (or hold_music) and every sentence has one.
func TestNameConstants(t *testing.T) {
	file, err := parser.ParseFile(token.NewFileSet(), "names.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	consts := map[string]bool{}
	for _, decl := range file.Decls {
		gen, ok := decl.(*ast.GenDecl)
		if !ok || gen.Tok != token.CONST {
			continue
		}
		for _, spec := range gen.Specs {
			for _, v := range spec.(*ast.ValueSpec).Values {
				lit, ok := v.(*ast.BasicLit)
				if !ok {
					t.Fatalf("names.go: non-literal constant %T", v)
				}
				s, err := strconv.Unquote(lit.Value)
				if err != nil {
					t.Fatal(err)
				}
				consts[s] = true
			}
		}
	}
	texts := map[string]bool{HoldMusic: true}
	for _, n := range textNames(t) {
		texts[n] = true
		if isNumberClip(n) {
			continue
		}
		if !consts[n] {
			t.Errorf("gen/en.txt prompt %q has no constant in names.go", n)
		}
	}
	for c := range consts {
		if !texts[c] {
			t.Errorf("names.go constant %q is not in gen/en.txt", c)
		}
	}
}

func isNumberClip(name string) bool {
	if name == "hundred" {
		return true
	}
	_, err := strconv.Atoi(strings.TrimPrefix(name, "n"))
	return strings.HasPrefix(name, "n") && err == nil
}

func TestBuiltinUnknownLanguage(t *testing.T) {
	for _, lang := range []string{"", "de", "EN", "en-US"} {
		if _, err := Builtin(lang); !errors.Is(err, ErrUnknownLanguage) {
			t.Errorf("Builtin(%q) error = %v, want ErrUnknownLanguage", lang, err)
		}
	}
}

// fakeSet builds a Set whose number clips are one sample holding the
// number, so compositions can be read back.
func fakeSet() *Set {
	s := &Set{lang: "en", clips: map[string][]int16{"hundred": {100}}}
	for n := range 20 {
		s.clips[wordNames[n]] = []int16{int16(n)}
	}
	for n := 20; n < 100; n += 10 {
		s.clips[wordNames[n]] = []int16{int16(n)}
	}
	return s
}

func TestNumber(t *testing.T) {
	s := fakeSet()
	tests := []struct {
		n    int
		want []int16 // 100 stands for "hundred"
	}{
		{0, []int16{0}},
		{7, []int16{7}},
		{13, []int16{13}},
		{19, []int16{19}},
		{20, []int16{20}},
		{21, []int16{20, 1}},
		{47, []int16{40, 7}},
		{90, []int16{90}},
		{99, []int16{90, 9}},
		{100, []int16{1, 100}},
		{101, []int16{1, 100, 1}},
		{112, []int16{1, 100, 12}},
		{250, []int16{2, 100, 50}},
		{999, []int16{9, 100, 90, 9}},
		{1000, []int16{1, 0, 0, 0}},
		{2048, []int16{2, 0, 4, 8}},
		{-5, []int16{5}},
	}
	for _, tc := range tests {
		var got []int16
		for _, c := range s.Number(tc.n) {
			got = append(got, c...)
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("Number(%d) = %v, want %v", tc.n, got, tc.want)
		}
	}
}

func TestNumberBuiltin(t *testing.T) {
	s, err := Builtin("en")
	if err != nil {
		t.Fatal(err)
	}
	for n := range 1000 {
		clips := s.Number(n)
		if len(clips) == 0 || len(clips) > 4 {
			t.Fatalf("Number(%d): %d clips", n, len(clips))
		}
		for i, c := range clips {
			if len(c) == 0 {
				t.Fatalf("Number(%d): clip %d empty", n, i)
			}
		}
	}
}

// writeWAV writes a 16-bit WAV of samples with the given rate into dir.
func writeWAV(t *testing.T, dir, name string, rate uint32, samples ...int16) string {
	t.Helper()
	file := filepath.Join(dir, name)
	b := riff(fmtChunk(formatPCM, 1, rate, 16), chunk{"data", pcm16(samples...)})
	if err := os.WriteFile(file, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return file
}

func TestLoadDirOverrides(t *testing.T) {
	dir := t.TempDir()
	writeWAV(t, dir, "welcome.wav", 8000, 1, 2, 3)
	writeWAV(t, dir, "goodbye.WAV", 8000, 4, 5)
	if err := os.WriteFile(filepath.Join(dir, "README.txt"), []byte("notes"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "old.wav"), 0o755); err != nil {
		t.Fatal(err)
	}

	s, err := Builtin("en")
	if err != nil {
		t.Fatal(err)
	}
	other, err := Builtin("en")
	if err != nil {
		t.Fatal(err)
	}
	builtinWelcome, _ := other.Clip(Welcome)

	n, err := s.LoadDir(dir)
	if err != nil {
		t.Fatalf("LoadDir: %v", err)
	}
	if n != 2 {
		t.Errorf("LoadDir overrode %d prompts, want 2", n)
	}
	if c, _ := s.Clip(Welcome); !slices.Equal(c, []int16{1, 2, 3}) {
		t.Errorf("welcome = %v, want the override", c)
	}
	if c, _ := s.Clip(Goodbye); !slices.Equal(c, []int16{4, 5}) {
		t.Errorf("goodbye = %v, want the override", c)
	}
	if c, _ := s.Clip(Muted); len(c) < 1000 {
		t.Errorf("muted has %d samples, want the built-in clip", len(c))
	}
	// Sets from Builtin are independent.
	if c, _ := other.Clip(Welcome); !slices.Equal(c, builtinWelcome) || len(c) < 1000 {
		t.Error("LoadDir on one Set changed another")
	}
	if fresh, _ := Builtin("en"); fresh != nil {
		if c, _ := fresh.Clip(Welcome); len(c) < 1000 {
			t.Error("LoadDir changed the cached built-in clips")
		}
	}
}

// A volunteer records on a computer at 44.1 kHz stereo: the override is
// converted at load to 8 kHz, as long as the recording and as loud.
func TestLoadDirConvertsRecordings(t *testing.T) {
	dir := t.TempDir()
	const seconds = 2
	var b []byte
	for _, s := range sineAt(44100, 1000, 8000, seconds) {
		b = append(b, pcm16(s, s)...)
	}
	if err := os.WriteFile(filepath.Join(dir, "welcome.wav"), riff(fmtChunk(formatPCM, 2, 44100, 16), chunk{"data", b}), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := Builtin("en")
	if err != nil {
		t.Fatal(err)
	}
	if n, err := s.LoadDir(dir); err != nil || n != 1 {
		t.Fatalf("LoadDir = %d, %v", n, err)
	}
	clip, _ := s.Clip("welcome")
	if len(clip) != seconds*8000 {
		t.Fatalf("%d samples, want %d", len(clip), seconds*8000)
	}
	if d := levelDB(clip) - levelDB(sineAt(8000, 1000, 8000, seconds)); math.Abs(d) > 0.5 {
		t.Fatalf("level changed by %.2f dB", d)
	}
}

func TestLoadDirErrors(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, dir string)
		want  []string // substrings, with {dir} replaced
		is    error
	}{
		{
			name: "wrong format",
			setup: func(t *testing.T, dir string) {
				writeWAV(t, dir, "welcome.wav", 11025, 1, 2)
			},
			want: []string{"prompts.dir: {dir}/welcome.wav: ", "sample rate 11025 Hz, want 8000, 16000"},
			is:   ErrFormat,
		},
		{
			name: "unknown name",
			setup: func(t *testing.T, dir string) {
				writeWAV(t, dir, "welcom.wav", 8000, 1, 2)
			},
			want: []string{`prompts.dir: {dir}/welcom.wav: unknown prompt name "welcom"`},
			is:   ErrUnknownPrompt,
		},
		{
			name: "every problem listed, good files not applied",
			setup: func(t *testing.T, dir string) {
				writeWAV(t, dir, "goodbye.wav", 8000, 1, 2)
				writeWAV(t, dir, "mutd.wav", 8000, 1, 2)
				if err := os.WriteFile(filepath.Join(dir, "muted.wav"), []byte("not a wav"), 0o644); err != nil {
					t.Fatal(err)
				}
			},
			want: []string{"{dir}/mutd.wav: unknown prompt name", "{dir}/muted.wav: unusable WAV file"},
			is:   ErrUnknownPrompt,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			tc.setup(t, dir)
			s, err := Builtin("en")
			if err != nil {
				t.Fatal(err)
			}
			before := map[string][]int16{}
			for _, name := range s.Names() {
				before[name], _ = s.Clip(name)
			}
			n, err := s.LoadDir(dir)
			if err == nil {
				t.Fatalf("LoadDir succeeded (%d), want error", n)
			}
			if n != 0 {
				t.Errorf("LoadDir returned %d with an error, want 0", n)
			}
			for _, w := range tc.want {
				w = strings.ReplaceAll(w, "{dir}", dir)
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if !errors.Is(err, tc.is) {
				t.Errorf("error %v does not wrap %v", err, tc.is)
			}
			for name, clip := range before {
				if c, _ := s.Clip(name); !slices.Equal(c, clip) {
					t.Errorf("%s changed by a failed LoadDir", name)
				}
			}
		})
	}
}

func TestLoadDirMissing(t *testing.T) {
	s, err := Builtin("en")
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "nope")
	if _, err := s.LoadDir(dir); err == nil || !strings.Contains(err.Error(), "prompts.dir: ") ||
		!errors.Is(err, os.ErrNotExist) {
		t.Fatalf("LoadDir(%s) error = %v, want a not-exist error prefixed prompts.dir", dir, err)
	}
}

// TestSetConcurrentReaders is for the race detector: a loaded Set is read
// from many goroutines at once.
func TestSetConcurrentReaders(t *testing.T) {
	s, err := Builtin("en")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for n := range 200 {
				if _, ok := s.Clip(Welcome); !ok {
					t.Error("welcome missing")
				}
				_ = s.Number(n)
				_ = s.Names()
			}
		})
	}
	wg.Wait()
}
