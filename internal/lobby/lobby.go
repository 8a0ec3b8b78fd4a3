// Package lobby is where a call waits before it is in a room: it hears the
// PIN prompts, played on the shared mixing clock (no ticker per call), and
// its key presses drive the IVR state machine.
//
// It must not know PINs, groups or rooms: the app drives it from the IVR's
// actions, and a caller is a pcm.Stream.
package lobby

import (
	"slices"
	"sync"
	"time"

	"github.com/groupbridge/groupbridge/media/pcm"
	"github.com/groupbridge/groupbridge/media/prompt"
)

// Lobby plays prompts to callers who are not in a room. Register it on the
// clock; its Tick serves every caller in it.
type Lobby struct {
	mu      sync.Mutex
	entries []*Entry
	frame   pcm.Frame
	discard pcm.Frame
}

// New returns an empty lobby.
func New() *Lobby { return &Lobby{} }

// Entry is one caller in the lobby.
type Entry struct {
	l        *Lobby
	stream   pcm.Stream
	player   prompt.Player // guarded by l.mu
	playing  bool          // guarded by l.mu
	finished chan struct{} // one signal per completed Play
	failed   chan struct{} // closed when this caller's part of a tick panicked
	fault    any           // the recovered panic; guarded by l.mu
	gone     bool          // guarded by l.mu
	lang     string        // what the caller hears (SetLanguage); guarded by l.mu
}

// Enter adds a caller; it hears silence until Play.
func (l *Lobby) Enter(s pcm.Stream) *Entry {
	e := &Entry{l: l, stream: s, finished: make(chan struct{}, 1), failed: make(chan struct{})}
	l.mu.Lock()
	l.entries = append(l.entries, e)
	l.mu.Unlock()
	return e
}

// Announce plays to every caller in the lobby at once, replacing what
// they hear (the bridge's own news, such as closing for maintenance),
// clips(lang) for a caller of lang (SetLanguage; "" if never set).
func (l *Lobby) Announce(clips func(lang string) [][]int16) {
	l.mu.Lock()
	entries := append([]*Entry(nil), l.entries...)
	l.mu.Unlock()
	for _, e := range entries {
		e.l.mu.Lock()
		lang := e.lang
		e.l.mu.Unlock()
		e.Play(clips(lang)...)
	}
}

// SetLanguage records the language the caller hears, for Announce.
func (e *Entry) SetLanguage(lang string) {
	e.l.mu.Lock()
	defer e.l.mu.Unlock()
	e.lang = lang
}

// Len returns how many callers are in the lobby.
func (l *Lobby) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.entries)
}

// Tick sends every caller its next 20 ms of prompt (or silence) and drains
// what they sent: audio before the room is heard by nobody.
func (l *Lobby) Tick(time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i := 0; i < len(l.entries); {
		i = l.serve(i)
	}
}

// serve runs the callers' part of a tick from index from on and returns
// the index to go on from: len(l.entries), or the one after a caller whose
// part panicked (a bad stream, a bug on one caller's path). That caller is
// served no more and its Failed channel closes, so that its call ends; the
// others' tick goes on. One recover boundary for the whole loop: the
// common case pays a single deferred call per tick. The caller holds l.mu.
func (l *Lobby) serve(from int) (next int) {
	i := from
	defer func() {
		if r := recover(); r != nil {
			e := l.entries[i]
			e.fault = r
			close(e.failed)
			next = i + 1
		}
	}()
	for ; i < len(l.entries); i++ {
		e := l.entries[i]
		if e.fault != nil {
			continue
		}
		e.stream.ReadFrame(&l.discard)
		if e.player.Next(&l.frame) {
			e.playing = true
		} else if e.playing {
			e.playing = false
			select {
			case e.finished <- struct{}{}:
			default:
			}
		}
		e.stream.WriteFrame(&l.frame)
	}
	return i
}

// Failed is closed when this caller's part of a lobby tick panicked: the
// lobby no longer serves it and its call should end.
func (e *Entry) Failed() <-chan struct{} { return e.failed }

// Fault returns the panic recovered from this caller's part of a tick, or
// nil.
func (e *Entry) Fault() any {
	e.l.mu.Lock()
	defer e.l.mu.Unlock()
	return e.fault
}

// Play replaces what the caller hears with clips; Finished signals once
// they have all played.
func (e *Entry) Play(clips ...[]int16) {
	e.l.mu.Lock()
	defer e.l.mu.Unlock()
	e.player.Play(clips...)
	// A completion of what was playing before must not be taken for this one.
	select {
	case <-e.finished:
	default:
	}
	e.playing = e.player.Playing()
	if !e.playing {
		e.finished <- struct{}{}
	}
}

// Stop silences the caller at once (a key press interrupts a prompt).
func (e *Entry) Stop() {
	e.l.mu.Lock()
	defer e.l.mu.Unlock()
	e.player.Stop()
	e.playing = false
	select {
	case <-e.finished:
	default:
	}
}

// Finished receives a value each time everything given to Play has played.
func (e *Entry) Finished() <-chan struct{} { return e.finished }

// Leave takes the caller out of the lobby. After it returns the lobby no
// longer touches the stream.
func (e *Entry) Leave() {
	e.l.mu.Lock()
	defer e.l.mu.Unlock()
	if e.gone {
		return
	}
	e.gone = true
	for i, x := range e.l.entries {
		if x == e {
			e.l.entries = slices.Delete(e.l.entries, i, i+1) // clears the freed end: no ended call stays reachable
			break
		}
	}
}
