package g711

import (
	"bytes"
	"testing"

	"github.com/groupbridge/groupbridge/media/pcm"
)

func TestSharedEncodesOncePerCodecAndFrame(t *testing.T) {
	var s Shared
	if got := s.Encoded(PCMU); got != nil {
		t.Fatalf("Encoded before Set = %v, want nil", got)
	}
	var f pcm.Frame
	for i := range f {
		f[i] = int16(i * 97)
	}
	s.Set(&f)
	tests := []struct {
		name  string
		codec Codec
	}{{"pcmu", PCMU}, {"pcma", PCMA}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := make([]byte, pcm.FrameSamples)
			tt.codec.Encode(want, f[:])
			got := s.Encoded(tt.codec)
			if !bytes.Equal(got, want) {
				t.Fatalf("Encoded(%v) differs from Encode", tt.codec)
			}
			// A change to the frame without Set is not seen: the cache is
			// per Set, which is what lets every stream share it.
			f[0] ^= 0x7fff
			if again := s.Encoded(tt.codec); !bytes.Equal(again, want) {
				t.Fatalf("Encoded(%v) re-encoded without Set", tt.codec)
			}
			f[0] ^= 0x7fff
		})
	}
	// Set encodes afresh.
	var g pcm.Frame
	g.Silence()
	s.Set(&g)
	if s.Frame() != &g {
		t.Fatalf("Frame() is not the frame last Set")
	}
	want := make([]byte, pcm.FrameSamples)
	PCMA.Encode(want, g[:])
	if got := s.Encoded(PCMA); !bytes.Equal(got, want) {
		t.Fatalf("Encoded after a new Set kept the old frame's bytes")
	}
}

func TestSharedGenerationWrap(t *testing.T) {
	var s Shared
	var a, b pcm.Frame
	a[0], b[0] = 1000, -1000
	s.Set(&a)
	_ = s.Encoded(PCMU)
	s.gen = ^uint32(0) // the next Set wraps
	s.enc[0].gen = 1   // an encoding that would look current after the wrap
	s.Set(&b)
	want := make([]byte, pcm.FrameSamples)
	PCMU.Encode(want, b[:])
	if got := s.Encoded(PCMU); !bytes.Equal(got, want) {
		t.Fatalf("after the counter wrapped, a stale encoding was returned")
	}
}

func BenchmarkSharedEncoded(b *testing.B) {
	var s Shared
	var f pcm.Frame
	s.Set(&f)
	b.ReportAllocs()
	for b.Loop() {
		// One Set per tick, then 10 listeners: one encodes, nine copy.
		s.Set(&f)
		for range 10 {
			_ = s.Encoded(PCMU)
		}
	}
}
