package prompt

import (
	"time"

	"github.com/groupbridge/groupbridge/media/pcm"
)

// maxSharedPause bounds the pauses served from the shared zero buffer.
const maxSharedPause = 5 * time.Second

// zeros backs short pauses. Clips are never written to, so every caller
// can share it instead of allocating silence.
var zeros [int(maxSharedPause / time.Second * pcm.SampleRate)]int16

// Pause returns a clip of d of silence, rounded down to whole samples, to
// put between sentences (the Player adds no gaps of its own beyond padding
// each clip to a frame boundary). Up to 5 s it is a slice of a shared
// zero buffer and costs nothing; longer pauses allocate, so cache them. The
// clip must not be modified.
func Pause(d time.Duration) []int16 {
	if d <= 0 {
		return nil
	}
	n := int(d / (time.Second / pcm.SampleRate)) // 125 µs per sample, no overflow
	if d <= maxSharedPause {
		return zeros[:n:n]
	}
	return make([]int16, n)
}

// Player turns a queue of clips into 20 ms frames for one listener, with an
// optional background loop (hold music) underneath whenever the queue is
// empty. It is not safe for concurrent use: its owner drives it from the
// mixing clock and issues Play/Enqueue/Stop from the same goroutine.
//
// The zero Player is idle and ready to use.
type Player struct {
	queue [][]int16 // clips to play; queue[head] is current
	head  int
	pos   int // next sample of queue[head]

	loop    []int16
	loopPos int
}

// Play replaces whatever is playing or queued with clips, starting at the
// next frame. Empty clips are skipped. The background loop, if any, keeps
// its place and resumes when the clips are done.
func (p *Player) Play(clips ...[]int16) {
	p.Stop()
	p.Enqueue(clips...)
}

// Enqueue appends clips after what is already queued. Empty clips are
// skipped. The queue's backing array is reused, so steady use allocates
// nothing once it has grown to the longest sentence.
func (p *Player) Enqueue(clips ...[]int16) {
	if p.head > 0 {
		// Slide pending clips to the front so the array does not creep
		// forward and reallocate while the player is never idle.
		n := copy(p.queue, p.queue[p.head:])
		clear(p.queue[n:])
		p.queue = p.queue[:n]
		p.head = 0
	}
	for _, c := range clips {
		if len(c) > 0 {
			p.queue = append(p.queue, c)
		}
	}
}

// Stop drops every queued clip, including the one playing. The background
// loop is not affected; see StopLoop.
func (p *Player) Stop() {
	clear(p.queue) // drop references so replaced prompt sets can be freed
	p.queue = p.queue[:0]
	p.head = 0
	p.pos = 0
}

// Playing reports whether queued clips remain. The background loop does not
// count: Playing turns false when the last prompt has been framed, which is
// when an IVR may move on.
func (p *Player) Playing() bool { return p.head < len(p.queue) }

// Remaining returns how many samples the queued clips still take to play
// (the loop not counted), so that something else can wait for them. Each
// clip takes whole frames (Next pads its last one), so that is what counts.
func (p *Player) Remaining() int {
	n := 0
	for i := p.head; i < len(p.queue); i++ {
		n += (len(p.queue[i]) + pcm.FrameSamples - 1) / pcm.FrameSamples * pcm.FrameSamples
	}
	return n - p.pos
}

// Loop sets clip as the background loop, played (wrapping without a gap)
// whenever no clip is queued. Setting the loop that is already playing
// keeps its position, so callers may re-assert it freely; an empty clip
// stops the loop.
func (p *Player) Loop(clip []int16) {
	if len(clip) == 0 {
		p.StopLoop()
		return
	}
	if len(p.loop) == len(clip) && &p.loop[0] == &clip[0] {
		return
	}
	p.loop = clip
	p.loopPos = 0
}

// StopLoop removes the background loop.
func (p *Player) StopLoop() {
	p.loop = nil
	p.loopPos = 0
}

// Next fills f with the next 20 ms and reports whether it carries audio.
// A clip that ends inside a frame is padded with silence, and the next clip
// starts on the next frame. With nothing queued it plays the loop; with no
// loop either it silences f and returns false. It never allocates.
func (p *Player) Next(f *pcm.Frame) bool {
	if p.head < len(p.queue) {
		clip := p.queue[p.head]
		n := copy(f[:], clip[p.pos:])
		clear(f[n:])
		p.pos += n
		if p.pos >= len(clip) {
			p.pos = 0
			p.head++
			if p.head == len(p.queue) {
				p.Stop()
			}
		}
		return true
	}
	if len(p.loop) == 0 {
		f.Silence()
		return false
	}
	for n := 0; n < len(f); {
		c := copy(f[n:], p.loop[p.loopPos:])
		n += c
		p.loopPos += c
		if p.loopPos >= len(p.loop) {
			p.loopPos = 0
		}
	}
	return true
}
