package rtpio

import (
	"sync"

	"github.com/groupbridge/groupbridge/media/g711"
	"github.com/groupbridge/groupbridge/media/pcm"
)

const (
	// ringSamples is the receive buffer's capacity: 300 ms.
	ringSamples = 300 * pcm.SampleRate / 1000
	// maxBuffered bounds the receive latency: 120 ms. Audio beyond it
	// pushes the oldest samples out; a caller whose clock runs fast or who
	// sent a burst is then at most this far behind the room.
	maxBuffered = 120 * pcm.SampleRate / 1000
	// prefill is how much audio must be buffered before playing starts,
	// and restarts after an underrun: 40 ms rides out ordinary jitter.
	prefill = 40 * pcm.SampleRate / 1000
)

// playout is the stand-in receive buffer between a stream's poller (push)
// and the mixing clock (pop): a FIFO of decoded samples with a prefill and
// a latency cap. It plays packets in arrival order and does no loss
// concealment; the adaptive jitter buffer of media/jitter is meant to take
// its place behind the same two methods.
type playout struct {
	mu      sync.Mutex
	ring    [ringSamples]int16
	r, n    int  // read index and number of buffered samples
	playing bool // prefill reached since the last underrun
}

// push decodes payload (G.711, one byte per sample) into the buffer. It
// reports whether older audio, or the start of an over-long payload, was
// thrown away to stay within maxBuffered.
func (b *playout) push(c g711.Codec, payload []byte) (overflow bool) {
	if len(payload) > maxBuffered {
		payload = payload[len(payload)-maxBuffered:]
		overflow = true
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if excess := b.n + len(payload) - maxBuffered; excess > 0 {
		b.r = (b.r + excess) % ringSamples
		b.n -= excess
		overflow = true
	}
	w := (b.r + b.n) % ringSamples
	first := min(len(payload), ringSamples-w)
	c.Decode(b.ring[w:w+first], payload[:first])
	c.Decode(b.ring[:len(payload)-first], payload[first:])
	b.n += len(payload)
	return overflow
}

// pop moves the next frame into f. It returns false and silences f while
// prefilling or on an underrun.
func (b *playout) pop(f *pcm.Frame) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.playing && b.n < prefill || b.n < pcm.FrameSamples {
		b.playing = false
		f.Silence()
		return false
	}
	b.playing = true
	first := copy(f[:], b.ring[b.r:min(b.r+pcm.FrameSamples, ringSamples)])
	copy(f[first:], b.ring[:pcm.FrameSamples-first])
	b.r = (b.r + pcm.FrameSamples) % ringSamples
	b.n -= pcm.FrameSamples
	return true
}

// buffered returns the number of samples waiting (for tests).
func (b *playout) buffered() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.n
}
