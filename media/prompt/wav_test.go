package prompt

import (
	"encoding/binary"
	"errors"
	"math"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/groupbridge/groupbridge/media/g711"
)

// chunk is one RIFF chunk for building test files.
type chunk struct {
	id   string
	body []byte
}

// riff assembles a RIFF/WAVE file, adding the pad byte after odd chunks.
func riff(chunks ...chunk) []byte {
	var b []byte
	b = append(b, "RIFF\x00\x00\x00\x00WAVE"...)
	for _, c := range chunks {
		b = append(b, c.id...)
		b = binary.LittleEndian.AppendUint32(b, uint32(len(c.body)))
		b = append(b, c.body...)
		if len(c.body)%2 == 1 {
			b = append(b, 0)
		}
	}
	binary.LittleEndian.PutUint32(b[4:8], uint32(len(b)-8))
	return b
}

// fmtChunk builds a plain 16-byte "fmt " chunk.
func fmtChunk(tag, channels uint16, rate uint32, bits uint16) chunk {
	align := channels * bits / 8
	var b []byte
	b = binary.LittleEndian.AppendUint16(b, tag)
	b = binary.LittleEndian.AppendUint16(b, channels)
	b = binary.LittleEndian.AppendUint32(b, rate)
	b = binary.LittleEndian.AppendUint32(b, rate*uint32(align))
	b = binary.LittleEndian.AppendUint16(b, align)
	b = binary.LittleEndian.AppendUint16(b, bits)
	return chunk{"fmt ", b}
}

// extensibleFmt builds a WAVE_FORMAT_EXTENSIBLE "fmt " chunk whose
// sub-format is sub.
func extensibleFmt(sub, channels uint16, rate uint32, bits uint16) chunk {
	c := fmtChunk(formatExtensible, channels, rate, bits)
	b := binary.LittleEndian.AppendUint16(c.body, 22)                            // cbSize
	b = binary.LittleEndian.AppendUint16(b, bits)                                // valid bits
	b = binary.LittleEndian.AppendUint32(b, 4)                                   // channel mask: front centre
	b = binary.LittleEndian.AppendUint16(b, sub)                                 // GUID data1 low half
	b = append(b, "\x00\x00\x00\x00\x10\x00\x80\x00\x00\xaa\x00\x38\x9b\x71"...) // rest of KSDATAFORMAT GUID
	return chunk{"fmt ", b}
}

func pcm16(samples ...int16) []byte {
	var b []byte
	for _, s := range samples {
		b = binary.LittleEndian.AppendUint16(b, uint16(s))
	}
	return b
}

var testSamples = []int16{0, 1, -1, 1000, -1000, 32767, -32768, 12345}

func TestParseWAV(t *testing.T) {
	law := []byte{0x00, 0x7f, 0x80, 0xff, 0x55, 0xd5, 0x12}
	ulaw := make([]int16, len(law))
	alaw := make([]int16, len(law))
	for i, b := range law {
		ulaw[i] = g711.DecodeUlawSample(b)
		alaw[i] = g711.DecodeAlawSample(b)
	}
	good := fmtChunk(formatPCM, 1, 8000, 16)
	data := chunk{"data", pcm16(testSamples...)}
	full := riff(good, data)

	tests := []struct {
		name    string
		in      []byte
		want    []int16
		wantErr string // substring; "" means success
	}{
		{"pcm16", full, testSamples, ""},
		{"ulaw", riff(fmtChunk(formatULaw, 1, 8000, 8), chunk{"data", law}), ulaw, ""},
		{"alaw", riff(fmtChunk(formatALaw, 1, 8000, 8), chunk{"data", law}), alaw, ""},
		{"extensible pcm", riff(extensibleFmt(formatPCM, 1, 8000, 16), data), testSamples, ""},
		{"extensible ulaw", riff(extensibleFmt(formatULaw, 1, 8000, 8), chunk{"data", law}), ulaw, ""},
		{"odd LIST chunk skipped", riff(good, chunk{"LIST", []byte("INFOx")}, data), testSamples, ""},
		{"fact and cue skipped", riff(chunk{"fact", []byte{1, 2, 3, 4}}, good, chunk{"cue ", nil}, data), testSamples, ""},
		{"data before fmt", riff(data, good), testSamples, ""},
		{"chunk after data", riff(good, data, chunk{"LIST", []byte("abc")}), testSamples, ""},
		{"trailing junk ignored", append(slices.Clone(full), 1, 2, 3), testSamples, ""},
		{"odd ulaw data without final pad byte", func() []byte {
			b := riff(fmtChunk(formatULaw, 1, 8000, 8), chunk{"data", law[:3]})
			return b[:len(b)-1]
		}(), ulaw[:3], ""},

		{"stereo averaged", riff(fmtChunk(formatPCM, 2, 8000, 16), chunk{"data", pcm16(100, 200, -32768, -32768, 32767, -32768, 3, 4)}),
			[]int16{150, -32768, 0, 4}, ""},
		{"stereo ulaw averaged", riff(fmtChunk(formatULaw, 2, 8000, 8), chunk{"data", law[:4]}),
			[]int16{-16062, 16062}, ""}, // (-32124+0)/2 and (32124+0)/2, rounded up

		{"11.025 kHz", riff(fmtChunk(formatPCM, 1, 11025, 16), data), nil, "sample rate 11025 Hz, want 8000, 16000, 22050, 32000, 44100 or 48000"},
		{"11.025 kHz 3 channels lists both", riff(fmtChunk(formatPCM, 3, 11025, 16), data), nil, "sample rate 11025 Hz, want 8000, 16000, 22050, 32000, 44100 or 48000; 3 channels, want mono or stereo"},
		{"8-bit pcm", riff(fmtChunk(formatPCM, 1, 8000, 8), chunk{"data", law}), nil, "8-bit linear PCM, want 16-bit"},
		{"24-bit pcm", riff(fmtChunk(formatPCM, 1, 8000, 24), chunk{"data", law[:6]}), nil, "24-bit PCM, want 16-bit"},
		{"24-bit pcm at 48 kHz", riff(fmtChunk(formatPCM, 2, 48000, 24), chunk{"data", law[:6]}), nil, "24-bit PCM, want 16-bit"},
		{"ulaw at 16 kHz", riff(fmtChunk(formatULaw, 1, 16000, 8), chunk{"data", law}), nil, "G.711 at 16000 Hz, want 8000"},
		{"mp3", riff(fmtChunk(0x55, 2, 44100, 0), data), nil, "format 0x55 (MP3)"},
		{"ima adpcm", riff(fmtChunk(0x11, 1, 8000, 4), data), nil, "format 0x11 (IMA ADPCM)"},
		{"16-bit ulaw", riff(fmtChunk(formatULaw, 1, 8000, 16), data), nil, "16-bit G.711, want 8-bit"},
		{"float", riff(fmtChunk(3, 1, 8000, 32), data), nil, "format 3 (IEEE float)"},
		{"extensible float", riff(extensibleFmt(3, 1, 8000, 32), data), nil, "format 3 (IEEE float)"},
		{"short extensible", riff(fmtChunk(formatExtensible, 1, 8000, 16), data), nil, "extensible fmt chunk of 16 bytes"},
		{"bad block align", func() []byte {
			c := fmtChunk(formatPCM, 1, 8000, 16)
			binary.LittleEndian.PutUint16(c.body[12:], 4)
			return riff(c, data)
		}(), nil, "block align 4, want 2"},
		{"truncated data", full[:len(full)-3], nil, "truncated"},
		{"truncated header", full[:20], nil, "truncated"},
		{"odd sample bytes", riff(good, chunk{"data", []byte{1, 2, 3}}), nil, "not a whole number of 2-byte samples"},
		{"no data chunk", riff(good, chunk{"LIST", []byte("INFO")}), nil, `no "data" chunk`},
		{"no fmt chunk", riff(data), nil, `no "fmt " chunk`},
		{"short fmt", riff(chunk{"fmt ", []byte{1, 0, 1, 0}}, data), nil, "fmt chunk of 4 bytes"},
		{"empty data", riff(good, chunk{"data", nil}), nil, "holds no audio"},
		{"not riff", []byte("RIFX\x00\x00\x00\x00WAVEfmt "), nil, `does not start with "RIFF"`},
		{"not wave", []byte("RIFF\x00\x00\x00\x00AVI \x00"), nil, `RIFF type is not "WAVE"`},
		{"binary junk", []byte("\x00\x01\xff\x7fsome bytes"), nil, `does not start with "RIFF"`},
		{"empty", nil, nil, "too short"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseWAV(tc.in)
			if tc.wantErr != "" {
				if err == nil {
					t.Fatalf("ParseWAV succeeded with %d samples, want error containing %q", len(got), tc.wantErr)
				}
				if !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %q, want it to contain %q", err, tc.wantErr)
				}
				if !errors.Is(err, ErrFormat) {
					t.Fatalf("error %q does not wrap ErrFormat", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseWAV: %v", err)
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("samples %v, want %v", got, tc.want)
			}
		})
	}
}

// sineAt is seconds of a sine of freq Hz at rate, peak amp.
func sineAt(rate int, freq, amp float64, seconds float64) []int16 {
	out := make([]int16, int(float64(rate)*seconds))
	for i := range out {
		out[i] = int16(math.Round(amp * math.Sin(2*math.Pi*freq*float64(i)/float64(rate))))
	}
	return out
}

// levelDB is the RMS level of x in dBFS (a full-scale sine is 0), leaving
// out the first and last tenth.
func levelDB(x []int16) float64 {
	x = x[len(x)/10 : len(x)-len(x)/10]
	var sum float64
	for _, s := range x {
		sum += float64(s) * float64(s)
	}
	return 10 * math.Log10(max(sum/float64(len(x))/(32767.0*32767.0/2), 1e-20))
}

// wavOf is samples as a 16-bit WAV at rate, each sample in every channel.
func wavOf(rate uint32, channels uint16, samples []int16) []byte {
	var b []byte
	for _, s := range samples {
		for range channels {
			b = binary.LittleEndian.AppendUint16(b, uint16(s))
		}
	}
	return riff(fmtChunk(formatPCM, channels, rate, 16), chunk{"data", b})
}

// Every rate and channel count a person's recorder makes comes out at
// 8 kHz with a 1 kHz tone's level kept within 0.5 dB; a 4.5 kHz tone,
// which would fold into the telephone band, comes out at least 50 dB down.
func TestParseWAVConverts(t *testing.T) {
	for _, rate := range []uint32{8000, 16000, 22050, 32000, 44100, 48000} {
		for _, ch := range []uint16{1, 2} {
			in := sineAt(int(rate), 1000, 16000, 1)
			got, err := ParseWAV(wavOf(rate, ch, in))
			if err != nil {
				t.Fatalf("%d Hz %d ch: %v", rate, ch, err)
			}
			if len(got) != 8000 {
				t.Errorf("%d Hz %d ch: %d samples from 1 s, want 8000", rate, ch, len(got))
			}
			if d := levelDB(got) - levelDB(in); math.Abs(d) > 0.5 {
				t.Errorf("%d Hz %d ch: 1 kHz tone changed by %.2f dB", rate, ch, d)
			}
			if rate == 8000 {
				continue
			}
			high := sineAt(int(rate), 4500, 16000, 1)
			got, err = ParseWAV(wavOf(rate, ch, high))
			if err != nil {
				t.Fatal(err)
			}
			if d := levelDB(high) - levelDB(got); d < 50 {
				t.Errorf("%d Hz %d ch: 4.5 kHz tone only %.1f dB down, want 50", rate, ch, d)
			}
		}
	}
}

// A file that is not a prompt may hold anything (a config with PINs, a
// key): no error repeats its bytes, wherever they are.
func TestParseWAVErrorsHoldNoContent(t *testing.T) {
	const secret = "PIN=4821"
	fmtOK := fmtChunk(formatPCM, 1, 8000, 16)
	rows := map[string][]byte{
		"header":      []byte(secret + "\x00\x00\x00\x00WAVE"),
		"RIFF type":   []byte("RIFF\x00\x00\x00\x00" + secret),
		"chunk id":    append(riff(fmtOK), "PIN=\xff\xff\x00\x00"...),
		"text file":   []byte("member_pin: \"482193\"\nfacilitator_pin: \"4821930\"\n"),
		"short file":  []byte(secret),
		"PIN as type": []byte("RIFF\x00\x00\x00\x00PIN=fmt "),
	}
	for name, data := range rows {
		_, err := ParseWAV(data)
		if err == nil {
			t.Fatalf("%s: parsed", name)
		}
		for _, s := range []string{"PIN", "4821", "member_pin"} {
			if strings.Contains(err.Error(), s) {
				t.Errorf("%s: error %q repeats %q", name, err, s)
			}
		}
	}
}

func FuzzParseWAV(f *testing.F) {
	data := chunk{"data", pcm16(testSamples...)}
	f.Add(riff(fmtChunk(formatPCM, 1, 8000, 16), data))
	f.Add(riff(fmtChunk(formatULaw, 1, 8000, 8), chunk{"data", []byte{1, 2, 3}}))
	f.Add(riff(fmtChunk(formatALaw, 1, 8000, 8), chunk{"LIST", []byte("odd")}, chunk{"data", []byte{1}}))
	f.Add(riff(extensibleFmt(formatPCM, 1, 8000, 16), data))
	f.Add(riff(fmtChunk(formatPCM, 2, 44100, 16), data))
	f.Add(riff(fmtChunk(formatPCM, 1, 22050, 16), data))
	f.Add(riff(fmtChunk(formatULaw, 2, 8000, 8), chunk{"data", []byte{1, 2, 3, 4}}))
	f.Add(riff(extensibleFmt(formatPCM, 2, 48000, 16), data))
	f.Add(riff(fmtChunk(formatPCM, 1, 11025, 16), data))
	f.Add([]byte("RIFF\xff\xff\xff\xffWAVEdata\xff\xff\xff\xff"))
	f.Add([]byte{})
	if b, err := os.ReadFile("en/goodbye.wav"); err == nil {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		got, err := ParseWAV(in)
		if err != nil {
			if got != nil {
				t.Fatalf("returned %d samples along with error %v", len(got), err)
			}
			if !errors.Is(err, ErrFormat) {
				t.Fatalf("error %v does not wrap ErrFormat", err)
			}
			return
		}
		if len(got) == 0 {
			t.Fatal("success with no samples")
		}
		if len(got) > len(in) {
			t.Fatalf("%d samples from %d bytes", len(got), len(in))
		}
	})
}

func BenchmarkParseWAV(b *testing.B) {
	in, err := os.ReadFile("en/welcome.wav")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(in)))
	for b.Loop() {
		if _, err := ParseWAV(in); err != nil {
			b.Fatal(err)
		}
	}
}
