package g711

import "github.com/groupbridge/groupbridge/media/pcm"

// Shared is one 20 ms frame that many streams send, such as the mix that
// every listener who is not talking hears in a room. Each codec's encoding
// is made once per frame, by the first stream that needs it, and every
// other stream copies those bytes: in a room of 500 listeners that is one
// encoding instead of 500.
//
// A Shared is not safe for concurrent use: the room that owns it sets it
// and has it sent from one goroutine. Its zero value holds no frame.
type Shared struct {
	frame *pcm.Frame
	gen   uint32 // bumped by Set; an encoding is current when its gen matches
	enc   [2]sharedEncoding
}

// sharedEncoding is one codec's bytes for the frame of generation gen.
type sharedEncoding struct {
	gen uint32
	b   [pcm.FrameSamples]byte
}

// Set makes f the frame to send from now on. f is read, not copied, so it
// must stay unchanged until the next Set.
func (s *Shared) Set(f *pcm.Frame) {
	s.frame = f
	s.gen++
	if s.gen == 0 {
		// After 2^32 frames (2.7 years of ticks) the counter wraps: forget
		// the cache, so that an old encoding can never pass as current.
		s.enc = [2]sharedEncoding{}
		s.gen = 1
	}
}

// Frame returns the frame last Set, or nil.
func (s *Shared) Frame() *pcm.Frame { return s.frame }

// Encoded returns the frame's encoding under c (which must be Valid),
// encoding it on first use. The bytes stay valid until the next Set; they
// must not be modified. It returns nil before the first Set.
func (s *Shared) Encoded(c Codec) []byte {
	if s.frame == nil {
		return nil
	}
	e := &s.enc[0]
	if c == PCMA {
		e = &s.enc[1]
	}
	if e.gen != s.gen {
		c.Encode(e.b[:], s.frame[:])
		e.gen = s.gen
	}
	return e.b[:]
}
