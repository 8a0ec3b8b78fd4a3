package conference

import (
	"strconv"
	"sync/atomic"
	"time"

	"github.com/groupbridge/groupbridge/media/prompt"
)

// phraseTail separates one spoken phrase from the next.
const phraseTail = 300 * time.Millisecond

// speaker is the room's part that turns the rules' phrases into audio, in
// each listener's language, from the conference's prompts as they are when
// the phrase is said (a reload swaps them whole). A phrase for the room is
// rendered once per language heard, not once per listener.
type speaker struct {
	prompts  *atomic.Pointer[prompt.Set] // the conference's
	rendered []rendering                 // scratch: one phrase, once per language heard
	phraseIn *prompt.Set                 // the prompts of the phrase being rendered
}

// rendering is one phrase in one language.
type rendering struct {
	set   *prompt.Set
	clips [][]int16
}

// to returns phrase for one listener, in lang.
func (s *speaker) to(lang string, phrase []string) [][]int16 {
	return s.speak(s.prompts.Load().In(lang), phrase)
}

// newPhrase forgets the last phrase's renderings and takes the current
// prompts for the next, so a reload never mixes two sets in one phrase.
func (s *speaker) newPhrase() {
	clear(s.rendered)
	s.rendered = s.rendered[:0]
	s.phraseIn = s.prompts.Load()
}

// phraseFor returns phrase in lang, rendering it only for the first
// listener of each language since newPhrase. Listeners share the clips
// (players copy only the slice headers).
func (s *speaker) phraseFor(lang string, phrase []string) [][]int16 {
	set := s.phraseIn.In(lang)
	for _, x := range s.rendered {
		if x.set == set {
			return x.clips
		}
	}
	clips := s.speak(set, phrase)
	s.rendered = append(s.rendered, rendering{set: set, clips: clips})
	return clips
}

// speak turns a phrase (prompt names, numbers as digits) into clips of
// prompts (one language's set).
func (s *speaker) speak(prompts *prompt.Set, phrase []string) [][]int16 {
	clips := make([][]int16, 0, len(phrase)+2)
	for _, w := range phrase {
		if n, err := strconv.Atoi(w); err == nil && w != "" && w[0] >= '0' && w[0] <= '9' {
			clips = append(clips, prompts.Number(n)...)
			continue
		}
		if c, ok := prompts.Clip(w); ok {
			clips = append(clips, c)
		}
	}
	clips = append(clips, prompt.Pause(phraseTail))
	return clips
}
