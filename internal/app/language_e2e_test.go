package app

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/groupbridge/groupbridge/internal/softphone"
	"github.com/groupbridge/groupbridge/internal/testkit"
	"github.com/groupbridge/groupbridge/media/prompt"
)

// End-to-end checks of languages, judged by comparing what a phone
// received with the committed prompt WAVs. Through G.711 a quarter second
// of a prompt played alone correlates above 0.99 with its WAV, and
// another language's speech far below; a prompt counts as heard when
// nearly all its quarter seconds are found in order. Each may come a
// little later than the one before: a mixing tick the starved test CPU
// skipped leaves a gap in the received audio, which must not be taken
// for another prompt.

// heardAt is the fraction (0..1) of clip's voiced quarter seconds found
// in rx, in order, at the best place. Places are found by the clip's
// first 200 ms of speech (several prompts may start with the same word).
func heardAt(rx, clip []int16) float64 {
	lead := 0
	for lead < len(clip) && abs16(clip[lead]) < 328 { // -40 dBFS
		lead++
	}
	const probe = 1600
	if len(clip)-lead < probe || len(rx) < probe {
		return 0
	}
	key := clip[lead : lead+probe]
	best := 0.0
	// Every other offset is enough to find a place (speech at 8 kHz
	// changes little from one sample to the next). Integer sums keep the
	// scan cheap, since e2e tests judge audio in real time on a shared CPU.
	for off := 0; off+probe <= len(rx); off += 2 {
		if corr(key, rx[off:off+probe]) > 0.6 {
			best = max(best, chunksFound(clip, rx, off-lead))
			off += probe / 2 // the same place, a sample further
		}
	}
	return best
}

// chunksFound is the fraction of clip's voiced quarter seconds found in
// rx from about start on, each no earlier than the last one's place
// (a gap delays what follows; nothing comes early).
func chunksFound(clip, rx []int16, start int) float64 {
	const (
		chunk = 2000          // a quarter second
		slack = 80            // 10 ms either way at each step
		late  = 4000          // a gap of up to half a second before a chunk
		found = 0.9           // correlation of a chunk found
		quiet = chunk * 10737 // the energy of a chunk below -50 dBFS: a pause
	)
	shift, matched, total := 0, 0, 0
	for i := 0; i+chunk <= len(clip); i += chunk {
		c := clip[i : i+chunk]
		var e int64
		for _, v := range c {
			e += int64(v) * int64(v)
		}
		if e < quiet {
			continue
		}
		total++
		look := func(from, to, step int) (float64, int) {
			bc, bd := 0.0, 0
			for d := from; d <= to; d += step {
				pos := start + i + d
				if pos < 0 || pos+chunk > len(rx) {
					continue
				}
				if x := corr(c, rx[pos:pos+chunk]); x > bc {
					bc, bd = x, d
				}
			}
			return bc, bd
		}
		bc, bd := look(shift-slack, shift+slack, 1)
		if bc < found {
			_, d := look(shift, shift+late, 2)
			bc, bd = look(d-2, d+2, 1)
		}
		if bc >= found {
			matched++
			shift = bd
		}
	}
	if total == 0 {
		return 0
	}
	return float64(matched) / float64(total)
}

// corr is the normalised correlation of a with b (as long as a).
func corr(a, b []int16) float64 {
	var dot, ae, be int64
	for i, v := range a {
		w := int64(b[i])
		dot += int64(v) * w
		ae += int64(v) * int64(v)
		be += w * w
	}
	if ae == 0 || be == 0 || dot <= 0 {
		return 0
	}
	return float64(dot) / math.Sqrt(float64(ae)*float64(be))
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
		time.Sleep(time.Second)
		if c = heardAt(p.Media().Received(since), clip); c >= match {
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
	if c := heardAt(p.Media().Received(since), builtinClip(t, lang, name)); c > noMatch {
		t.Errorf("%s %s heard (%.0f%% of it found), want only the other language", lang, name, 100*c)
	}
}

// languagesYAML offers English and Spanish on the shared number.
func languagesYAML() string {
	return strings.Replace(testYAML("", peerGroup), "log:\n", "prompts:\n  languages: [en, es]\nlog:\n", 1)
}

// On a number no group claims, the English welcome offers Spanish in
// Spanish; a caller who presses *2 hears the Spanish welcome, and after
// the PIN the room greets them in Spanish.
func TestE2ECallerChoosesSpanish(t *testing.T) {
	t.Parallel()
	a, logs := startApp(t, languagesYAML())
	t0 := time.Now()
	p := dial(t, a, softphone.Config{Caller: "+15550700001"})
	waitHeard(t, p, t0, 15*time.Second, "en", prompt.Welcome)
	waitHeard(t, p, t0, 10*time.Second, "es", prompt.LanguageOffer)

	t1 := time.Now()
	keys(t, p, "*2")
	waitHeard(t, p, t1, 12*time.Second, "es", prompt.Welcome)
	notHeard(t, p, t1, "en", prompt.Welcome)

	t2 := time.Now()
	enter(t, logs, p, "1234", softphone.DigitRFC4733, 1)
	waitHeard(t, p, t2, 10*time.Second, "es", prompt.YouAreCaller)
	waitHeard(t, p, t2, 10*time.Second, "es", prompt.FirstHere)
	notHeard(t, p, t2, "en", prompt.YouAreCaller)
}

// A caller who types a PIN straight away hears the group's language:
// Spanish for a group with language: es, though the welcome was English.
func TestE2EPINStraightAwayGetsGroupLanguage(t *testing.T) {
	t.Parallel()
	groups := strings.Replace(peerGroup, "led_by: peer\n", "led_by: peer\n    language: es\n", 1)
	y := strings.Replace(testYAML("", groups), "log:\n", "prompts:\n  languages: [en, es]\nlog:\n", 1)
	a, logs := startApp(t, y)
	t0 := time.Now()
	p := dial(t, a, softphone.Config{Caller: "+15550700011"})
	enter(t, logs, p, "1234", softphone.DigitRFC4733, 1)
	waitHeard(t, p, t0, 10*time.Second, "es", prompt.YouAreCaller)
	notHeard(t, p, t0, "en", prompt.YouAreCaller)
}

// An English and a Spanish facilitator in one room each hear a third
// caller's *9, "Caller 3 raised a hand.", in their own language.
func TestE2ERoomAnnouncementInEachLanguage(t *testing.T) {
	t.Parallel()
	a, logs := startApp(t, languagesYAML())
	en := dial(t, a, softphone.Config{Caller: "+15550700021"})
	es := dial(t, a, softphone.Config{Caller: "+15550700022"})
	member := dial(t, a, softphone.Config{Caller: "+15550700023"})
	enter(t, logs, en, "654321", softphone.DigitRFC4733, 1)
	keys(t, es, "*2")
	enter(t, logs, es, "654321", softphone.DigitRFC4733, 2)
	enter(t, logs, member, "1234", softphone.DigitRFC4733, 3)
	time.Sleep(5 * time.Second) // the greetings end

	t1 := time.Now()
	keys(t, member, "*9")
	waitHeard(t, en, t1, 10*time.Second, "en", prompt.RaisedAHand)
	waitHeard(t, es, t1, 10*time.Second, "es", prompt.RaisedAHand)
	waitHeard(t, en, t1, time.Second, "en", prompt.Caller)
	waitHeard(t, es, t1, time.Second, "es", prompt.Caller)
	notHeard(t, en, t1, "es", prompt.RaisedAHand)
	notHeard(t, es, t1, "en", prompt.RaisedAHand)
}

// On a group's own number the group's language is spoken from the first
// word, and no other language is offered.
func TestE2EGroupNumberSpeaksItsLanguage(t *testing.T) {
	t.Parallel()
	groups := strings.Replace(peerGroup, "led_by: peer\n", "led_by: peer\n    number: \"4003\"\n    language: es\n", 1)
	y := strings.Replace(testYAML("", groups), "log:\n", "prompts:\n  languages: [en, es]\nlog:\n", 1)
	a, _ := startApp(t, y)
	t0 := time.Now()
	p := dial(t, a, softphone.Config{Caller: "+15550700031", Dialed: "4003"})
	waitHeard(t, p, t0, 12*time.Second, "es", prompt.Welcome)
	time.Sleep(2 * time.Second) // where an offer would follow
	notHeard(t, p, t0, "en", prompt.Welcome)
	notHeard(t, p, t0, "en", prompt.LanguageOffer)
}
