package app

import (
	"strings"
	"testing"
	"time"

	"github.com/groupbridge/groupbridge/internal/softphone"
	"github.com/groupbridge/groupbridge/media/prompt"
)

// End-to-end checks of languages, judged by comparing what a phone
// received with the committed prompt WAVs (heard_test.go).

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
