package prompt

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/groupbridge/groupbridge/media/g711"
	"github.com/groupbridge/groupbridge/media/pcm"
	"github.com/groupbridge/groupbridge/media/resample"
)

// ErrFormat is wrapped by every ParseWAV error, so callers can tell a bad
// recording from an I/O failure.
var ErrFormat = errors.New("unusable WAV file")

// WAVE format tags this reader understands.
const (
	formatPCM        = 1
	formatALaw       = 6
	formatULaw       = 7
	formatExtensible = 0xFFFE
)

// wavFormat is the part of the "fmt " chunk that decides how to decode.
type wavFormat struct {
	tag        uint16
	channels   uint16
	sampleRate uint32
	blockAlign uint16
	bits       uint16
}

// rates are the sample rates a recording may have: what phones and
// computers record at. 11025 Hz and other rarities are refused rather than
// guessed at.
var rates = []uint32{8000, 16000, 22050, 32000, 44100, 48000}

// resamplers holds one filter per rate, designed on first use.
var resamplers = func() map[uint32]func() (*resample.Resampler, error) {
	m := make(map[uint32]func() (*resample.Resampler, error), len(rates))
	for _, r := range rates {
		m[r] = sync.OnceValues(func() (*resample.Resampler, error) { return resample.New(int(r), pcm.SampleRate) })
	}
	return m
}()

// ParseWAV decodes a RIFF/WAVE file into 8 kHz mono linear samples: the
// form every prompt and reading is kept in, converted once at load so
// the mixing clock never resamples. It accepts 16-bit PCM at 8, 16, 22.05,
// 32, 44.1 or 48 kHz and 8-bit G.711 (A-law or u-law) at 8 kHz, mono or
// stereo (the channels are averaged); other rates are filtered and
// resampled (package resample). Anything else (24-bit or float samples,
// 8-bit linear PCM, 11.025 kHz, compressed formats) is refused with an
// error that names what was found. Chunks other than "fmt " and "data"
// (LIST, fact, cue ...) are skipped. It never panics on malformed input.
func ParseWAV(data []byte) ([]int16, error) {
	format, body, err := parseRIFF(data)
	if err != nil {
		return nil, err
	}
	return convert(format, body)
}

// convert decodes checked audio bytes to 8 kHz mono.
func convert(format wavFormat, body []byte) ([]int16, error) {
	mono := decode(format, body)
	if format.sampleRate == pcm.SampleRate {
		return mono, nil
	}
	r, err := resamplers[format.sampleRate]()
	if err != nil { // the listed rates all have a filter
		return nil, fmt.Errorf("%w: %v", ErrFormat, err)
	}
	out := r.Convert(mono)
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: data chunk holds no audio", ErrFormat)
	}
	return out, nil
}

// parseRIFF finds and checks the format and the audio bytes of a WAV file.
func parseRIFF(data []byte) (wavFormat, []byte, error) {
	var none wavFormat
	if len(data) < 12 {
		return none, nil, fmt.Errorf("%w: %d bytes is too short for a RIFF header", ErrFormat, len(data))
	}
	// The messages describe what is wrong, never the bytes found: a file
	// put in the wrong place may hold anything.
	if string(data[0:4]) != "RIFF" {
		return none, nil, fmt.Errorf("%w: does not start with \"RIFF\" (not a WAV file)", ErrFormat)
	}
	if string(data[8:12]) != "WAVE" {
		return none, nil, fmt.Errorf("%w: RIFF type is not \"WAVE\"", ErrFormat)
	}

	var (
		format  wavFormat
		haveFmt bool
		body    []byte
		haveDat bool
	)
	// The RIFF size field is ignored: writers that stream often leave it
	// wrong, and the real bound is the bytes we hold.
	rest := data[12:]
	for len(rest) >= 8 && !(haveFmt && haveDat) {
		id := string(rest[0:4])
		size := uint64(binary.LittleEndian.Uint32(rest[4:8]))
		rest = rest[8:]
		if size > uint64(len(rest)) {
			return none, nil, fmt.Errorf("%w: a chunk at byte %d declares %d bytes but only %d remain (truncated file?)",
				ErrFormat, len(data)-len(rest)-8, size, len(rest))
		}
		chunk := rest[:size]
		// Chunks are word aligned: an odd-sized chunk is followed by one pad
		// byte that is not counted in its size. A missing final pad byte is
		// tolerated.
		skip := size + size&1
		if skip > uint64(len(rest)) {
			skip = uint64(len(rest))
		}
		rest = rest[skip:]

		switch id {
		case "fmt ":
			f, err := parseFmt(chunk)
			if err != nil {
				return none, nil, err
			}
			format, haveFmt = f, true
		case "data":
			if !haveDat {
				body, haveDat = chunk, true
			}
		}
	}
	if !haveFmt {
		return none, nil, fmt.Errorf("%w: no \"fmt \" chunk", ErrFormat)
	}
	if !haveDat {
		return none, nil, fmt.Errorf("%w: no \"data\" chunk", ErrFormat)
	}
	if err := format.check(); err != nil {
		return none, nil, err
	}
	if len(body) == 0 {
		return none, nil, fmt.Errorf("%w: data chunk holds no audio", ErrFormat)
	}
	if len(body)%int(format.blockAlign) != 0 {
		return none, nil, fmt.Errorf("%w: data chunk of %d bytes is not a whole number of %d-byte samples",
			ErrFormat, len(body), format.blockAlign)
	}
	return format, body, nil
}

// decode turns checked audio bytes into mono samples at the file's rate.
// Stereo is averaged, rounding half up: at most half a step of error, the
// size of the quantisation already in the file.
func decode(f wavFormat, body []byte) []int16 {
	frames := len(body) / int(f.blockAlign)
	out := make([]int16, frames)
	stereo := f.channels == 2
	switch f.tag {
	case formatALaw, formatULaw:
		dec := g711.DecodeUlawSample
		if f.tag == formatALaw {
			dec = g711.DecodeAlawSample
		}
		for i := range out {
			if stereo {
				out[i] = int16((int32(dec(body[2*i])) + int32(dec(body[2*i+1])) + 1) >> 1)
			} else {
				out[i] = dec(body[i])
			}
		}
	default: // 16-bit PCM, guaranteed by check
		for i := range out {
			if stereo {
				l := int32(int16(binary.LittleEndian.Uint16(body[4*i:])))
				r := int32(int16(binary.LittleEndian.Uint16(body[4*i+2:])))
				out[i] = int16((l + r + 1) >> 1)
			} else {
				out[i] = int16(binary.LittleEndian.Uint16(body[2*i:]))
			}
		}
	}
	return out
}

// parseFmt reads a "fmt " chunk, resolving WAVE_FORMAT_EXTENSIBLE to the
// real format tag carried in the first two bytes of its sub-format GUID.
func parseFmt(c []byte) (wavFormat, error) {
	if len(c) < 16 {
		return wavFormat{}, fmt.Errorf("%w: fmt chunk of %d bytes, want at least 16", ErrFormat, len(c))
	}
	f := wavFormat{
		tag:        binary.LittleEndian.Uint16(c[0:2]),
		channels:   binary.LittleEndian.Uint16(c[2:4]),
		sampleRate: binary.LittleEndian.Uint32(c[4:8]),
		blockAlign: binary.LittleEndian.Uint16(c[12:14]),
		bits:       binary.LittleEndian.Uint16(c[14:16]),
	}
	if f.tag == formatExtensible {
		// cbSize(2) validBits(2) channelMask(4) subFormat GUID(16).
		if len(c) < 40 {
			return wavFormat{}, fmt.Errorf("%w: extensible fmt chunk of %d bytes, want 40", ErrFormat, len(c))
		}
		f.tag = binary.LittleEndian.Uint16(c[24:26])
	}
	return f, nil
}

// check reports every way f differs from what the bridge can play, so an
// operator fixes a recording in one go instead of one error at a time.
func (f wavFormat) check() error {
	var problems []string
	var wantBits uint16
	switch f.tag {
	case formatPCM:
		wantBits = 16
		switch f.bits {
		case 16:
		case 8:
			problems = append(problems, "8-bit linear PCM, want 16-bit (or 8-bit A-law/u-law at 8000 Hz)")
		default:
			problems = append(problems, fmt.Sprintf("%d-bit PCM, want 16-bit", f.bits))
		}
		if !slices.Contains(rates, f.sampleRate) {
			problems = append(problems, fmt.Sprintf("sample rate %d Hz, want 8000, 16000, 22050, 32000, 44100 or 48000", f.sampleRate))
		}
	case formatALaw, formatULaw:
		wantBits = 8
		if f.bits != 8 {
			problems = append(problems, fmt.Sprintf("%d-bit G.711, want 8-bit", f.bits))
		}
		if f.sampleRate != pcm.SampleRate {
			problems = append(problems, fmt.Sprintf("G.711 at %d Hz, want %d", f.sampleRate, pcm.SampleRate))
		}
	default:
		return fmt.Errorf("%w: %s, want PCM (1), A-law (6) or u-law (7)", ErrFormat, tagName(f.tag))
	}
	if f.channels != 1 && f.channels != 2 {
		problems = append(problems, fmt.Sprintf("%d channels, want mono or stereo", f.channels))
	}
	if len(problems) > 0 {
		return fmt.Errorf("%w: %s", ErrFormat, strings.Join(problems, "; "))
	}
	if want := f.channels * wantBits / 8; f.blockAlign != want {
		return fmt.Errorf("%w: block align %d, want %d for %d-channel %d-bit", ErrFormat, f.blockAlign, want, f.channels, wantBits)
	}
	return nil
}

// tagName names a WAVE format tag for error messages.
func tagName(tag uint16) string {
	switch tag {
	case 2:
		return "format 2 (MS ADPCM)"
	case 3:
		return "format 3 (IEEE float)"
	case 0x11:
		return "format 0x11 (IMA ADPCM)"
	case 0x31:
		return "format 0x31 (GSM 6.10)"
	case 0x55:
		return "format 0x55 (MP3)"
	default:
		return fmt.Sprintf("format %#x", tag)
	}
}
