package app

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/groupbridge/groupbridge/internal/softphone"
	"github.com/groupbridge/groupbridge/media/prompt"
)

// End-to-end checks of languages, judged by comparing what a phone
// received with the committed prompt WAVs (through G.711, a prompt played
// alone correlates above 0.99 with its WAV; another prompt stays far
// below).

// heardAt is how well the best-matching stretch of rx matches clip: the
// normalised correlation of the whole clip there (0..1). Places are
// found by the clip's first 200 ms of speech (several prompts may start
// with the same word), then each is scored over all of the clip.
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
	var keyE int64
	for _, v := range key {
		keyE += int64(v) * int64(v)
	}
	// Every other offset is enough to find a place (speech at 8 kHz
	// changes little from one sample to the next); each place found is
	// then scored at the offsets around it. Integer sums keep the scan
	// cheap, since e2e tests judge audio in real time on a shared CPU.
	best := 0.0
	for off := 0; off+probe <= len(rx); off += 2 {
		w := rx[off : off+probe]
		var dot, winE int64
		for i, v := range key {
			r := int64(w[i])
			dot += int64(v) * r
			winE += r * r
		}
		if winE < keyE/1000 || dot <= 0 {
			continue // silence cannot hold the clip
		}
		if float64(dot)/math.Sqrt(float64(keyE)*float64(winE)) > 0.6 {
			for d := -1; d <= 1; d++ {
				best = max(best, clipNCC(clip, rx, off+d-lead))
			}
		}
	}
	return best
}

// clipNCC is the normalised correlation of clip with rx from start on; 0 if
// rx does not hold all of it there.
func clipNCC(clip, rx []int16, start int) float64 {
	if start < 0 || start+len(clip) > len(rx) {
		return 0
	}
	var dot, ce, re float64
	for i, v := range clip {
		r := float64(rx[start+i])
		dot += float64(v) * r
		ce += float64(v) * float64(v)
		re += r * r
	}
	if ce == 0 || re == 0 {
		return 0
	}
	return dot / math.Sqrt(ce*re)
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

// Matches: a prompt heard whole; other speech stays below noMatch.
const (
	match   = 0.95
	noMatch = 0.6
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
	t.Fatalf("%s %s not heard within %v (best correlation %.2f)", lang, name, d, c)
}

// notHeard fails if p received lang's prompt name since since.
func notHeard(t *testing.T, p *softphone.Phone, since time.Time, lang, name string) {
	t.Helper()
	if c := heardAt(p.Media().Received(since), builtinClip(t, lang, name)); c > noMatch {
		t.Errorf("%s %s heard (correlation %.2f), want only the other language", lang, name, c)
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
