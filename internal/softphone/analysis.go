package softphone

import (
	"math"
	"time"

	"github.com/groupbridge/groupbridge/media/jitter"
	"github.com/groupbridge/groupbridge/media/pcm"
	"github.com/groupbridge/groupbridge/media/tone"
)

// ToneBlocks judges how well a steady tone came through: it splits samples
// (8 kHz) into consecutive blocks of the given duration, measures the level
// of freqHz in each (Goertzel, tone.LevelDBFS) and returns the fraction of
// blocks whose level is above thresholdDBFS and the longest run of
// consecutive blocks that are not, as a duration. A hole in the audio
// shorter than a block can go unnoticed when it straddles two blocks that
// each keep enough tone; a block is the resolution of the judgement.
//
// Feed it Media.Received, which lays audio out by RTP timestamp (loss
// becomes zeros at its place in media time, reordering and duplicates are
// undone), so that the verdict depends on the media and not on when the
// test's goroutines ran.
//
// A trailing part shorter than a block is not judged. With no whole block
// (or a block shorter than one sample) the fraction and the gap are 0, so a
// test that demands a fraction fails rather than passes on no audio.
func ToneBlocks(samples []int16, freqHz float64, block time.Duration, thresholdDBFS float64) (fractionAbove float64, longestGap time.Duration) {
	return toneBlocks(samples, []float64{freqHz}, block, thresholdDBFS)
}

// ScaledToneBlocks is ToneBlocks for a tone that went through the bridge's
// adaptive jitter buffer, which moves its delay by time-scaling audio by
// up to 2.5% (1.25% shrinking): a tone's pitch then shifts by as much for
// as long as the move takes, a few hundred milliseconds for a 10 ms step,
// though nothing stopped. A block counts the tone at freqHz or at any of
// those shifts. Tones to tell apart must then lie more than 5% apart.
func ScaledToneBlocks(samples []int16, freqHz float64, block time.Duration, thresholdDBFS float64) (fractionAbove float64, longestGap time.Duration) {
	freqs := []float64{freqHz}
	for _, k := range jitter.SpeechScales {
		for _, d := range []float64{-float64(k), float64(k)} {
			freqs = append(freqs, freqHz*pcm.FrameSamples/(pcm.FrameSamples+d))
		}
	}
	return toneBlocks(samples, freqs, block, thresholdDBFS)
}

// toneBlocks is ToneBlocks with the tone's level the highest at any of
// freqs.
func toneBlocks(samples []int16, freqs []float64, block time.Duration, thresholdDBFS float64) (fractionAbove float64, longestGap time.Duration) {
	n := int(block * pcm.SampleRate / time.Second)
	if n < 1 || len(samples) < n {
		return 0, 0
	}
	blocks := len(samples) / n
	above, run, longest := 0, 0, 0
	for i := range blocks {
		lv := math.Inf(-1)
		for _, f := range freqs {
			lv = max(lv, tone.LevelDBFS(samples[i*n:(i+1)*n], f))
		}
		if lv > thresholdDBFS {
			above++
			run = 0
			continue
		}
		run++
		longest = max(longest, run)
	}
	// Whole samples, so that a block that is not a whole number of samples
	// reports what was measured.
	perBlock := time.Duration(n) * time.Second / pcm.SampleRate
	return float64(above) / float64(blocks), time.Duration(longest) * perBlock
}
