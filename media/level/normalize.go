package level

import "github.com/groupbridge/groupbridge/media/pcm"

// ActiveLevelDBFS measures the active speech level of a recording, in the
// spirit of ITU-T P.56: the mean power of its 20 ms frames, leaving out
// those more than 20 dB below that mean (pauses, breaths, room noise) and
// those under -65 dBFS, found by a few rounds of refinement. A steady tone
// reads as its RMS level. ok is false when no frame is loud enough (a
// silent recording).
func ActiveLevelDBFS(clip []int16) (dbfs float64, ok bool) {
	var frame pcm.Frame
	powers := make([]float64, 0, len(clip)/pcm.FrameSamples+1)
	for i := 0; i < len(clip); i += pcm.FrameSamples {
		n := copy(frame[:], clip[i:])
		clear(frame[n:])
		// A last, partial frame is measured over its own samples.
		powers = append(powers, framePower(&frame)*pcm.FrameSamples/float64(n))
	}
	threshold := speechFloor
	est := 0.0
	for range 8 {
		sum, n := 0.0, 0
		for _, p := range powers {
			if p >= threshold {
				sum += p
				n++
			}
		}
		if n == 0 {
			break
		}
		est = sum / float64(n)
		threshold = max(speechFloor, est*speechGate)
	}
	if est == 0 {
		return FloorDBFS, false
	}
	return powerToDB(est), true
}

// Normalize brings clip, in place, to an active speech level of
// targetDBFS (see ActiveLevelDBFS), so a recording plays like one more
// talker after the AGC. The gain is at most ±60 dB, and peaks the gain
// would push past -1 dBFS pass the AGC's soft limiter instead of
// clipping. It returns the gain applied, and false (leaving clip as it
// was) for a silent recording.
func Normalize(clip []int16, targetDBFS float64) (gainDB float64, ok bool) {
	lv, ok := ActiveLevelDBFS(clip)
	if !ok {
		return 0, false
	}
	gainDB = min(max(targetDBFS-lv, -maxGainRangeDB), maxGainRangeDB)
	if gainDB == 0 {
		return 0, true
	}
	// A fixed gain: both bounds at it, and the AGC never adapts because no
	// frame is said to be talking.
	agc := NewAGC(AGCConfig{TargetDBFS: targetDBFS, MinGainDB: gainDB, MaxGainDB: gainDB})
	var frame pcm.Frame
	for i := 0; i < len(clip); i += pcm.FrameSamples {
		n := copy(frame[:], clip[i:])
		clear(frame[n:])
		agc.Process(&frame, false)
		copy(clip[i:i+n], frame[:n])
	}
	return gainDB, true
}
