// Package g711 is an allocation-free G.711 (PCMU/PCMA) frame codec.
//
// zaf/g711's whole-buffer helpers allocate on every call, which the RTP path
// cannot afford at 50 packets per second per caller. Its per-sample functions
// are exact, so this package tabulates them once at start-up: decoding is a
// 256-entry lookup and encoding a lookup on the bits G.711 actually keeps
// (14 for u-law, 13 for A-law).
package g711

import (
	"fmt"

	zaf "github.com/zaf/g711"
)

// Codec names a G.711 law by its static RTP payload type.
type Codec uint8

const (
	// PCMU is G.711 u-law, RTP payload type 0.
	PCMU Codec = 0
	// PCMA is G.711 A-law, RTP payload type 8.
	PCMA Codec = 8
)

// String returns the SDP encoding name.
func (c Codec) String() string {
	switch c {
	case PCMU:
		return "PCMU"
	case PCMA:
		return "PCMA"
	}
	return fmt.Sprintf("Codec(%d)", uint8(c))
}

// Valid reports whether c is one of the two G.711 laws.
func (c Codec) Valid() bool { return c == PCMU || c == PCMA }

var (
	ulawEnc [1 << 14]byte // indexed by uint16(sample) >> 2
	alawEnc [1 << 13]byte // indexed by uint16(sample) >> 3
	ulawDec [256]int16
	alawDec [256]int16
)

func init() {
	for i := range ulawEnc {
		ulawEnc[i] = zaf.EncodeUlawFrame(int16(uint16(i) << 2))
	}
	for i := range alawEnc {
		alawEnc[i] = zaf.EncodeAlawFrame(int16(uint16(i) << 3))
	}
	for i := range 256 {
		ulawDec[i] = zaf.DecodeUlawFrame(uint8(i))
		alawDec[i] = zaf.DecodeAlawFrame(uint8(i))
	}
}

// EncodeUlawSample encodes one linear sample to u-law.
func EncodeUlawSample(s int16) byte { return ulawEnc[uint16(s)>>2] }

// EncodeAlawSample encodes one linear sample to A-law.
func EncodeAlawSample(s int16) byte { return alawEnc[uint16(s)>>3] }

// DecodeUlawSample decodes one u-law byte.
func DecodeUlawSample(b byte) int16 { return ulawDec[b] }

// DecodeAlawSample decodes one A-law byte.
func DecodeAlawSample(b byte) int16 { return alawDec[b] }

// Encode writes len(src) encoded bytes to dst, which must be at least as long.
// It returns the number of bytes written.
func (c Codec) Encode(dst []byte, src []int16) int {
	dst = dst[:len(src)]
	if c == PCMA {
		for i, s := range src {
			dst[i] = alawEnc[uint16(s)>>3]
		}
		return len(src)
	}
	for i, s := range src {
		dst[i] = ulawEnc[uint16(s)>>2]
	}
	return len(src)
}

// Decode writes len(src) linear samples to dst, which must be at least as
// long. It returns the number of samples written.
func (c Codec) Decode(dst []int16, src []byte) int {
	dst = dst[:len(src)]
	table := &ulawDec
	if c == PCMA {
		table = &alawDec
	}
	for i, b := range src {
		dst[i] = table[b]
	}
	return len(src)
}

// Silence returns the encoded byte for a zero sample.
func (c Codec) Silence() byte {
	if c == PCMA {
		return alawEnc[0]
	}
	return ulawEnc[0]
}
