package conference

import (
	"log/slog"
	"time"

	"github.com/groupbridge/groupbridge/internal/conference/rules"
	"github.com/groupbridge/groupbridge/internal/readings"
	"github.com/groupbridge/groupbridge/media/pcm"
	"github.com/groupbridge/groupbridge/media/prompt"
)

// readingPlayer is the room's part that plays the group's readings: the
// files as loaded when the session started (a reload does not change a
// live session's), and the one that plays, mixed into the room's sum like
// one more talker.
type readingPlayer struct {
	files  *readings.Group
	rules  *rules.Readings // the session's, told when a reading ends
	player prompt.Player
	frame  pcm.Frame
	log    *slog.Logger
	group  string // the group's name, for logs
}

// next returns the room-wide sound for this tick's mix: the next 20 ms of
// the reading that plays (with the comfort noise, if any), or noise alone.
// The mixer adds it for everyone in the room and subtracts it from
// nobody: the reading is nobody's own voice. It tells the rules when the
// reading has played to its end.
func (p *readingPlayer) next(noise *pcm.Frame) *pcm.Frame {
	if !p.player.Playing() {
		return noise
	}
	p.player.Next(&p.frame)
	if noise != nil {
		p.frame.Add(noise)
	}
	if !p.player.Playing() {
		p.rules.Ended()
	}
	return &p.frame
}

// play starts reading key, replacing one that plays, after lead samples
// (what the caller whose arrival opened the session is being told), so
// the two do not talk over each other.
func (p *readingPlayer) play(key, lead int) {
	clip := p.files.Reading(key)
	if clip == nil { // the rules only know keys the group has
		p.rules.Ended()
		return
	}
	p.player.Play(prompt.Pause(time.Duration(lead)*time.Second/pcm.SampleRate), clip)
	p.log.Info("reading started", "group", p.group, "key", key)
}

// stop stops the reading that plays.
func (p *readingPlayer) stop() {
	p.player.Stop()
	p.log.Info("reading stopped", "group", p.group)
}
