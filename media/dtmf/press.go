package dtmf

// DefaultStep is the duration increment between a press's update packets:
// 160 timestamp units, one packet per 20 ms at 8 kHz.
const DefaultStep = 160

// PressVolume is the volume Press puts in its events (-10 dBm0, what
// sipp's captures and most phones send).
const PressVolume = 10

// Press returns the telephone-events a phone sends for one key press of
// durationSamples timestamp units (800 is 100 ms at 8 kHz): a first packet
// with duration 0, updates whose duration grows by step, and three
// identical end packets carrying the full duration, as RFC 4733 section
// 2.5.1.4 recommends so the end survives loss.
//
// The caller sends one event per RTP packet, spacing the updates by step
// (the end packets may go back to back), keeps the same RTP timestamp (the
// press's start) for all of them, sets the marker bit on the first packet
// only, and gives every packet its own sequence number.
//
// A step of 0 means DefaultStep. Every event has Volume PressVolume; code
// is not checked, so non-digit events such as flash (16) can be sent too.
func Press(code uint8, durationSamples uint16, step uint16) []Event {
	if step == 0 {
		step = DefaultStep
	}
	n := (int(durationSamples)+int(step)-1)/int(step) + 3
	if durationSamples == 0 {
		n = 4 // the start packet, then the ends
	}
	evs := make([]Event, 0, n)
	// int, not uint16, so the last increment cannot wrap past 65535.
	d := 0
	for {
		evs = append(evs, Event{Code: code, Volume: PressVolume, Duration: uint16(d)})
		d += int(step)
		if d >= int(durationSamples) {
			break
		}
	}
	end := Event{Code: code, End: true, Volume: PressVolume, Duration: durationSamples}
	return append(evs, end, end, end)
}
