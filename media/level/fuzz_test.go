package level

import (
	"encoding/binary"
	"math"
	"testing"

	"github.com/groupbridge/groupbridge/media/pcm"
)

// FuzzPipeline feeds arbitrary caller audio (which is outside input: any
// bytes a peer sends decode to some samples) through Talker, AGC and Gate and
// checks the promises that must hold for every signal: the output never
// exceeds the limiter's ceiling, the gain stays within its bounds, a closed
// gate leaves exact silence, and the reported level is finite.
func FuzzPipeline(f *testing.F) {
	seed := func(frames []pcm.Frame) []byte {
		var b []byte
		for _, fr := range frames {
			for _, s := range fr {
				b = binary.LittleEndian.AppendUint16(b, uint16(s))
			}
		}
		return b
	}
	// Seeds stay a few frames long: the fuzzer minimises every new input it
	// keeps, which for kilobytes of audio takes most of a run.
	f.Add(seed(render(toneSeg(-30, 2), quiet(1))), -2.0, 6.0)
	f.Add(seed(render(toneSeg(0, 2))), 0.0, 0.0)
	f.Add(seed(render(noiseSeg(-3, 1), toneSeg(-45, 1))), -6.0, 20.0)
	f.Add([]byte{0xff, 0x7f, 0x00, 0x80}, -1.0, 12.0)
	f.Add([]byte{0xff, 0x7f, 0x00, 0x80}, -400.0, 1e300)

	f.Fuzz(func(t *testing.T, data []byte, limiter, maxGain float64) {
		cfg := AGCConfig{LimiterDBFS: limiter, MaxGainDB: maxGain}
		norm := cfg.withDefaults()
		ceiling := int(32767 * math.Pow(10, norm.LimiterDBFS/20))
		p := pipeline{NewTalker(TalkerConfig{}), NewAGC(cfg), NewGate()}
		// Repeat short inputs so the stages get past their onsets (a tone
		// must last OnFrames before the talkspurt, the gate's hold and the
		// gain's adaptation start).
		for rep := 0; rep < 8 && len(data) > 0; rep++ {
			for off := 0; off < len(data); off += 2 * pcm.FrameSamples {
				var fr pcm.Frame
				for i := range fr {
					j := off + 2*i
					if j+1 < len(data) {
						fr[i] = int16(binary.LittleEndian.Uint16(data[j:]))
					}
				}
				open := p.process(&fr)
				for i, s := range fr {
					if v := int(s); v > ceiling || -v > ceiling {
						t.Fatalf("sample %d = %d beyond ceiling %d (limiter %v)", i, s, ceiling, norm.LimiterDBFS)
					}
				}
				if !open && fr != (pcm.Frame{}) {
					t.Fatal("closed gate left sound")
				}
				if g := p.agc.GainDB(); g < norm.MinGainDB || g > norm.MaxGainDB || math.IsNaN(g) {
					t.Fatalf("gain %v outside [%v, %v]", g, norm.MinGainDB, norm.MaxGainDB)
				}
				if l := p.talker.LevelDBFS(); math.IsNaN(l) || math.IsInf(l, 0) || l < FloorDBFS {
					t.Fatalf("level %v", l)
				}
			}
		}
	})
}
