package app

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/groupbridge/groupbridge/internal/softphone"
	"github.com/groupbridge/groupbridge/internal/testkit"
	"github.com/groupbridge/groupbridge/media/g711"
	"github.com/groupbridge/groupbridge/media/prompt"
)

// Hearing a prompt, for every end-to-end test that listens for words:
// what a phone received is compared with the committed prompt WAV as it
// sounds after G.711 coding. A prompt reaches its listener sample for
// sample, so each voiced 20 ms piece of it is found exactly, in order; a
// piece missing (a packet lost, a mixing tick skipped on a starved
// machine) costs only itself. Exact matching is also cheap: a test that
// polls for a prompt must not take the CPU the bridge under test needs.

// piece is the 20 ms unit of matching.
const piece = 160

// heardFrac is the fraction (0..1) of clip's voiced pieces that rx holds,
// in order, from about its first piece found on, and where in rx the
// first piece found starts (-1 when none is found).
func heardFrac(rx []int16, codec g711.Codec, clip []int16) (frac float64, first int) {
	enc := make([]byte, len(clip))
	dec := make([]int16, len(clip))
	codec.Encode(enc, clip)
	codec.Decode(dec, enc)
	found, pieces, from := 0, 0, 0
	first = -1
	for i := 0; i+piece <= len(dec); i += piece {
		p := dec[i : i+piece]
		if !slices.ContainsFunc(p, func(v int16) bool { return v > 100 || v < -100 }) {
			continue // a quiet piece would match any pause
		}
		pieces++
		if j := indexOf(rx[from:], p); j >= 0 {
			if found == 0 {
				first = from + j
			}
			found++
			from += j + piece
		}
	}
	if pieces == 0 {
		return 0, -1
	}
	return float64(found) / float64(pieces), first
}

// indexOf is where clip first appears in heard, sample for sample; -1 if
// it does not.
func indexOf(heard, clip []int16) int {
	for i := 0; i+len(clip) <= len(heard); i++ {
		if heard[i] == clip[0] && slices.Equal(heard[i:i+len(clip)], clip) {
			return i
		}
	}
	return -1
}

// clipsIn reports whether each clip is in heard (match of it or more), in
// order: each starts after the first piece found of the one before.
func clipsIn(heard []int16, codec g711.Codec, clips ...[]int16) bool {
	at := 0
	for _, clip := range clips {
		frac, first := heardFrac(heard[at:], codec, clip)
		if frac < match {
			return false
		}
		at += first + piece
	}
	return true
}

// builtinClip returns a committed prompt of a language.
func builtinClip(t *testing.T, lang, name string) []int16 {
	t.Helper()
	s, err := prompt.Builtin(lang)
	if err != nil {
		t.Fatal(err)
	}
	c, ok := s.Clip(name)
	if !ok {
		t.Fatalf("%s has no prompt %s", lang, name)
	}
	return c
}

// A prompt is heard when this much of it is found; another prompt, or
// the same words in another language, stays below noMatch.
const (
	match   = 0.9
	noMatch = 0.3
)

// waitHeard waits up to d for p to have received lang's prompt name
// since since, and fails the test if it does not.
func waitHeard(t *testing.T, p *softphone.Phone, since time.Time, d time.Duration, lang, name string) {
	t.Helper()
	clip := builtinClip(t, lang, name)
	deadline := time.Now().Add(d)
	c := 0.0
	for time.Now().Before(deadline) {
		time.Sleep(250 * time.Millisecond)
		if c, _ = heardFrac(p.Media().Received(since), p.Media().Codec(), clip); c >= match {
			return
		}
	}
	if dir := os.Getenv("LANG_DEBUG_DIR"); dir != "" {
		testkit.WriteWAV(t, filepath.Join(dir, fmt.Sprintf("%s-%s-%s.wav", t.Name(), lang, name)), p.Media().Received(since))
	}
	t.Fatalf("%s %s not heard within %v (%.0f%% of it found)", lang, name, d, 100*c)
}

// notHeard fails if p received lang's prompt name since since.
func notHeard(t *testing.T, p *softphone.Phone, since time.Time, lang, name string) {
	t.Helper()
	if c, _ := heardFrac(p.Media().Received(since), p.Media().Codec(), builtinClip(t, lang, name)); c > noMatch {
		t.Errorf("%s %s heard (%.0f%% of it found), want only the other language", lang, name, 100*c)
	}
}
