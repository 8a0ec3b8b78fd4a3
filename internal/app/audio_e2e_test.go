package app

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/groupbridge/groupbridge/internal/softphone"
	"github.com/groupbridge/groupbridge/media/pcm"
	"github.com/groupbridge/groupbridge/media/tone"
)

// Audio on real phone networks: impairment, in-band keypad tones.

// A talker behind 5% loss and 40 ms jitter (which also reorders) is heard
// without holes: the bridge's jitter buffer reorders and its concealment
// fills the losses (media/jitter TestNoGapUnderLossAndJitter plays the
// same network through the buffer alone). Judged on the listener's RTP timestamps, over a 6 s
// window in which the machine kept up (machineKeptUp): a talker starved of
// CPU in this process skips the frames it could not send on time, and
// the holes they leave measure the machine, not the jitter buffer.
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
	talker.Media().SendTone(1000, -20)
	settle := 3 * time.Second // join prompts over, jitter buffer adapted
	const tries = 3
	for try := 1; ; try++ {
		// The settling counts: a stall just before the window leaves the
		// jitter buffer adapting in it.
		mark := stallMark(a, talker)
		time.Sleep(settle)
		start := time.Now()
		time.Sleep(6 * time.Second)
		if why := mark.since(); why != "" {
			if try == tries {
				t.Skipf("no window in %d where the machine kept up (%s): nothing to judge the bridge by", tries, why)
			}
			t.Logf("window %d not judged: %s", try, why)
			settle = 2 * time.Second
			continue
		}
		got := listener.Media().Received(start)
		trim := 200 * 8 // 200 ms each end: packets in flight are not losses
		if len(got) < 2*trim+8000 {
			t.Fatalf("received only %d samples", len(got))
		}
		got = got[trim : len(got)-trim]
		// Scaled: the bridge moves its delay by time-scaling, which shifts
		// the tone's pitch by up to 2.5% while it does; a 1 kHz Goertzel
		// alone takes that for a hole.
		frac, gap := softphone.ScaledToneBlocks(got, 1000, 50*time.Millisecond, -30)
		sent, dropped, _, reordered := talker.Media().ImpairStats()
		t.Logf("impairment: %d sent, %d dropped, %d reordered; tone in %.1f%% of 50 ms blocks, longest gap %v",
			sent, dropped, reordered, 100*frac, gap)
		if frac < 0.95 {
			t.Errorf("tone above -30 dBFS in %.1f%% of 50 ms blocks, want at least 95%%", 100*frac)
		}
		if gap > 60*time.Millisecond {
			t.Errorf("longest gap %v, want at most 60 ms", gap)
		}
		if t.Failed() {
			// What the bridge saw of the talker's stream, to tell the
			// jitter buffer, the latch and the key filter apart.
			var lines []string
			for _, l := range strings.Split(scrape(t, a), "\n") {
				if strings.HasPrefix(l, "groupbridge_rtp_") || strings.HasPrefix(l, "groupbridge_jitter") ||
					strings.HasPrefix(l, "groupbridge_mixer_") || strings.HasPrefix(l, "groupbridge_dtmf") {
					lines = append(lines, l)
				}
			}
			t.Logf("bridge metrics:\n%s\nlog:\n%s", strings.Join(lines, "\n"), logs.String())
		}
		return
	}
}

// stalls is what machineKeptUp compares: the bridge's late clock ticks
// and each phone's frames sent late or never.
type stalls struct {
	a      *App
	phones []*softphone.Phone
	clock  int64
	late   []int
	skip   []int
}

// stallMark notes the stalls so far of a's mixing clock (none when a is
// nil) and of phones.
func stallMark(a *App, phones ...*softphone.Phone) stalls {
	s := stalls{a: a, phones: phones}
	if a != nil {
		_, s.clock, _ = a.clock.Stats()
	}
	for _, p := range phones {
		l, k := p.Media().SendStalls()
		s.late, s.skip = append(s.late, l), append(s.skip, k)
	}
	return s
}

// since says how the machine fell behind since the mark, "" if it kept
// up: the mixing clock started no tick a period late and no phone sent a
// frame more than a frame late or skipped one. Any of these starves the
// audio for reasons outside the bridge's jitter buffer and mixing.
func (s stalls) since() string {
	now := stallMark(s.a, s.phones...)
	var why []string
	if n := now.clock - s.clock; n > 0 {
		why = append(why, fmt.Sprintf("the mixing clock fell a tick behind %d times", n))
	}
	for i := range s.phones {
		if l, k := now.late[i]-s.late[i], now.skip[i]-s.skip[i]; l > 0 || k > 0 {
			why = append(why, fmt.Sprintf("phone %d sent %d frames late and skipped %d", i+1, l, k))
		}
	}
	return strings.Join(why, "; ")
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
	x.Media().SendTone(440, -20)
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
	during := l.Media().Received(start)
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

// A talker who starts after silence is heard from the start (issue 11,
// section 8): each 200 ms tone burst, beginning 7 ms into a frame after
// silence, is heard by the listener for at least 190 ms. Judged on how
// long the tone lasts in what the listener received (laid out by RTP
// timestamp), not on when it arrived, so the jitter buffer's delay does not
// enter; a burst during which the machine fell behind is not judged and is
// sent again. Before the gate opened on the first loud frame, about 35 ms
// of each burst were cut. A talker without telephone-event goes through the
// in-band key filter's delay line as well.
func TestSpeechOnsetsNotCut(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		event  int
		digits softphone.DigitMode
	}{
		{"telephone-event", 0, softphone.DigitRFC4733},
		{"in-band key filter", -1, softphone.DigitInfoRelay},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			a, logs := startApp(t, testYAML("", ""))
			talker := dial(t, a, softphone.Config{Caller: "+15552000021", TelephoneEvent: tc.event})
			listener := dial(t, a, softphone.Config{Caller: "+15552000022"})
			enter(t, logs, talker, "1234", tc.digits, 1)
			enter(t, logs, listener, "1234", softphone.DigitRFC4733, 2)
			time.Sleep(3 * time.Second) // join prompts and chimes over
			onsetBursts(t, a, talker, listener)
		})
	}
}

// onsetBursts sends tone bursts after silence from talker and checks that
// listener hears each for nearly as long as it was sent.
func onsetBursts(t *testing.T, a *App, talker, listener *softphone.Phone) {
	t.Helper()

	const (
		burst  = 200 * time.Millisecond
		lead   = 56 // 7 ms of silence: the onset falls inside a frame
		block  = 40 // 5 ms: the resolution of the judgement
		want   = 190 * time.Millisecond
		bursts = 4
	)
	samples := make([]int16, lead+int(burst*pcm.SampleRate/time.Second))
	tone.NewSine(1000, -20).Read(samples[lead:])
	judged := 0
	for try := 0; judged < bursts && try < 3*bursts; try++ {
		mark := stallMark(a, talker)
		start := time.Now()
		talker.Media().SendSamples(samples)
		time.Sleep(burst + 800*time.Millisecond) // the burst, the way through, and quiet
		if why := mark.since(); why != "" {
			t.Logf("burst %d not judged: %s", try+1, why)
			continue
		}
		got := listener.Media().Received(start)
		blocks := 0
		for i := 0; i+block <= len(got); i += block {
			if tone.LevelDBFS(got[i:i+block], 1000) > -35 {
				blocks++
			}
		}
		heard := time.Duration(blocks) * block * time.Second / pcm.SampleRate
		t.Logf("burst %d: %v sent, tone heard for %v", try+1, burst, heard)
		if heard < want || heard > burst+2*block*time.Second/pcm.SampleRate {
			t.Errorf("burst %d: tone heard for %v of %v sent, want at least %v (and no more than the burst)", try+1, heard, burst, want)
		}
		judged++
	}
	if judged == 0 {
		t.Skip("no burst during which the machine kept up: nothing to judge the bridge by")
	}
}
