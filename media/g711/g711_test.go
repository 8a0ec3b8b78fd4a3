package g711

import (
	"testing"

	"github.com/groupbridge/groupbridge/media/pcm"
	zaf "github.com/zaf/g711"
)

// The tables must agree with zaf/g711 for every possible input, not a sample.
func TestEncodeMatchesZafForEveryInput(t *testing.T) {
	for v := -32768; v <= 32767; v++ {
		s := int16(v)
		if got, want := EncodeUlawSample(s), zaf.EncodeUlawFrame(s); got != want {
			t.Fatalf("u-law encode %d: got %#x, want %#x", s, got, want)
		}
		if got, want := EncodeAlawSample(s), zaf.EncodeAlawFrame(s); got != want {
			t.Fatalf("A-law encode %d: got %#x, want %#x", s, got, want)
		}
	}
}

func TestDecodeMatchesZafForEveryInput(t *testing.T) {
	for b := 0; b < 256; b++ {
		if got, want := DecodeUlawSample(byte(b)), zaf.DecodeUlawFrame(byte(b)); got != want {
			t.Fatalf("u-law decode %#x: got %d, want %d", b, got, want)
		}
		if got, want := DecodeAlawSample(byte(b)), zaf.DecodeAlawFrame(byte(b)); got != want {
			t.Fatalf("A-law decode %#x: got %d, want %d", b, got, want)
		}
	}
}

func TestFrameRoundTrip(t *testing.T) {
	for _, c := range []Codec{PCMU, PCMA} {
		t.Run(c.String(), func(t *testing.T) {
			var in, out pcm.Frame
			for i := range in {
				in[i] = int16((i - 80) * 300)
			}
			var enc [pcm.FrameSamples]byte
			if n := c.Encode(enc[:], in[:]); n != pcm.FrameSamples {
				t.Fatalf("Encode wrote %d", n)
			}
			c.Decode(out[:], enc[:])
			for i := range in {
				d := int(in[i]) - int(out[i])
				if d < 0 {
					d = -d
				}
				// G.711 keeps at least 4 bits of mantissa: error under 1/16 + step.
				if lim := abs(int(in[i]))/16 + 16; d > lim {
					t.Fatalf("sample %d: in %d out %d", i, in[i], out[i])
				}
			}
		})
	}
}

func abs(v int) int {
	if v < 0 {
		return -v
	}
	return v
}

func TestCodecNames(t *testing.T) {
	tests := []struct {
		c     Codec
		name  string
		valid bool
	}{{PCMU, "PCMU", true}, {PCMA, "PCMA", true}, {Codec(9), "Codec(9)", false}}
	for _, tc := range tests {
		if tc.c.String() != tc.name || tc.c.Valid() != tc.valid {
			t.Errorf("%d: got %q/%v", tc.c, tc.c.String(), tc.c.Valid())
		}
	}
}

func BenchmarkEncodeFrame(b *testing.B) {
	for _, c := range []Codec{PCMU, PCMA} {
		b.Run(c.String(), func(b *testing.B) {
			var f pcm.Frame
			for i := range f {
				f[i] = int16(i * 97)
			}
			var out [pcm.FrameSamples]byte
			b.ReportAllocs()
			for b.Loop() {
				c.Encode(out[:], f[:])
			}
		})
	}
}

func BenchmarkDecodeFrame(b *testing.B) {
	for _, c := range []Codec{PCMU, PCMA} {
		b.Run(c.String(), func(b *testing.B) {
			var in [pcm.FrameSamples]byte
			for i := range in {
				in[i] = byte(i)
			}
			var f pcm.Frame
			b.ReportAllocs()
			for b.Loop() {
				c.Decode(f[:], in[:])
			}
		})
	}
}
