package app

import (
	"testing"
	"time"

	"github.com/groupbridge/groupbridge/internal/softphone"
)

// Audio on real phone networks: impairment, in-band keypad tones.

// A talker behind 5% loss and 40 ms jitter (which also reorders) is heard
// without holes: the bridge's jitter buffer reorders and its concealment
// fills the losses. Judged on the listener's RTP timestamps.
func TestImpairedTalkerHeardWithoutGaps(t *testing.T) {
	t.Parallel()
	a, logs := startApp(t, testYAML("", ""))
	talker := dial(t, a, softphone.Config{
		Caller:         "+15552000001",
		TelephoneEvent: -1, // digits by INFO: the impairment would eat RFC 4733 packets too
		Impair:         &softphone.Impairment{Seed: 20261125, Loss: 0.05, Jitter: 40 * time.Millisecond},
	})
	listener := dial(t, a, softphone.Config{Caller: "+15552000002"})
	enter(t, logs, talker, "1234", softphone.DigitInfoRelay, 1)
	enter(t, logs, listener, "1234", softphone.DigitRFC4733, 2)
	talker.SendTone(1000, -20)
	time.Sleep(3 * time.Second) // join prompts over, jitter buffer adapted
	start := time.Now()
	_, lateBefore, _ := a.clock.Stats()
	time.Sleep(6 * time.Second)
	_, lateAfter, _ := a.clock.Stats()
	got := listener.Received(start)
	trim := 200 * 8 // 200 ms each end: packets in flight are not losses
	if len(got) < 2*trim+8000 {
		t.Fatalf("received only %d samples", len(got))
	}
	got = got[trim : len(got)-trim]
	frac, gap := softphone.ToneBlocks(got, 1000, 50*time.Millisecond, -30)
	sent, dropped, _, reordered := talker.ImpairStats()
	t.Logf("impairment: %d sent, %d dropped, %d reordered; tone in %.1f%% of 50 ms blocks, longest gap %v",
		sent, dropped, reordered, 100*frac, gap)
	if frac < 0.95 {
		t.Errorf("tone above -30 dBFS in %.1f%% of 50 ms blocks, want at least 95%%", 100*frac)
	}
	switch {
	case gap <= 60*time.Millisecond:
	case lateAfter > lateBefore:
		// The whole process (talker, listener and bridge) was starved for
		// more than a 20 ms tick: the gap measures the machine, not the
		// jitter buffer. The share of blocks heard is still judged.
		t.Logf("longest gap %v not judged: the mixing clock fell more than a tick behind %d times (machine overloaded)",
			gap, lateAfter-lateBefore)
	default:
		t.Errorf("longest gap %v, want at most 60 ms", gap)
	}
}

// A caller whose phone did not negotiate telephone-event types its PIN and
// *6 as tones in the audio: the bridge detects them, and the room never
// hears them.
func TestInbandDigitsDetectedAndRemoved(t *testing.T) {
	t.Parallel()
	a, logs := startApp(t, testYAML("", ""))
	x := dial(t, a, softphone.Config{Caller: "+15552000011", TelephoneEvent: -1})
	l := dial(t, a, softphone.Config{Caller: "+15552000012"})
	enter(t, logs, l, "1234", softphone.DigitRFC4733, 1)
	enter(t, logs, x, "1234", softphone.DigitInband, 2)
	x.SendTone(440, -20)
	time.Sleep(3 * time.Second)
	if lv := levelOver(l, time.Second, 440); lv < audible {
		t.Fatalf("in-band caller not heard before *6 (%.1f dBFS)", lv)
	}
	start := time.Now()
	keys := func() {
		t.Helper()
		ctx, cancel := testContext(20 * time.Second)
		defer cancel()
		if err := x.SendDigits(ctx, "*6", softphone.DigitInband); err != nil {
			t.Fatal(err)
		}
	}
	keys()
	end := time.Now()
	time.Sleep(1500 * time.Millisecond)
	// The key tones (* = 941+1209 Hz, 6 = 770+1477 Hz) reach the room at
	// least 30 dB below what was sent (about -12 dBFS per tone).
	during := l.Received(start)
	n := int(end.Sub(start).Seconds()*8000) + 1600
	if len(during) > n {
		during = during[:n]
	}
	for _, f := range []float64{941, 1209, 770, 1477} {
		if lv := levels2(during, f); lv > -42 {
			t.Errorf("the room hears the %v Hz key tone at %.1f dBFS", f, lv)
		}
	}
	if lv := levelOver(l, time.Second, 440); lv > gone {
		t.Errorf("in-band *6 did not mute the caller: heard at %.1f dBFS", lv)
	}
}
