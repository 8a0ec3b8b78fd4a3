package dtmf

import (
	"slices"
	"testing"
	"time"
)

func TestPress(t *testing.T) {
	ev := func(d uint16) Event { return Event{Code: 7, Volume: PressVolume, Duration: d} }
	end := func(d uint16) Event { return Event{Code: 7, End: true, Volume: PressVolume, Duration: d} }
	tests := []struct {
		name          string
		samples, step uint16
		want          []Event
	}{
		{"100 ms at 20 ms", 800, 160, []Event{ev(0), ev(160), ev(320), ev(480), ev(640), end(800), end(800), end(800)}},
		{"not a multiple of step", 500, 160, []Event{ev(0), ev(160), ev(320), ev(480), end(500), end(500), end(500)}},
		{"step 0 means 160", 320, 0, []Event{ev(0), ev(160), end(320), end(320), end(320)}},
		{"shorter than a step", 100, 160, []Event{ev(0), end(100), end(100), end(100)}},
		{"zero length", 0, 160, []Event{ev(0), end(0), end(0), end(0)}},
		{"sipp's spacing", 2240, 320, []Event{ev(0), ev(320), ev(640), ev(960), ev(1280), ev(1600), ev(1920), end(2240), end(2240), end(2240)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Press(7, tt.samples, tt.step)
			if !slices.Equal(got, tt.want) {
				t.Fatalf("Press(7, %d, %d)\n got %+v\nwant %+v", tt.samples, tt.step, got, tt.want)
			}
			if cap(got) != len(got) {
				t.Errorf("capacity %d for %d events: size estimate is off", cap(got), len(got))
			}
		})
	}
}

func TestPressMaxDuration(t *testing.T) {
	got := Press(1, 0xffff, 160)
	// 0, 160, ..., 65440 then ends: the last update must not wrap.
	if n := len(got); n != 410+3 {
		t.Fatalf("len = %d; want 413", n)
	}
	for i := 1; i < len(got)-3; i++ {
		if got[i].Duration <= got[i-1].Duration {
			t.Fatalf("duration went from %d to %d at %d", got[i-1].Duration, got[i].Duration, i)
		}
	}
	if last := got[len(got)-1]; !last.End || last.Duration != 0xffff {
		t.Fatalf("last event %+v; want end with duration 65535", last)
	}
}

// A press built by Press must decode as exactly one digit.
func TestPressDecodes(t *testing.T) {
	for code := range uint8(MaxDigitCode + 1) {
		want, _ := EventDigit(code)
		var (
			d   Decoder
			got []byte
			buf [EventLen]byte
		)
		for i, ev := range Press(code, 800, 160) {
			if _, err := ev.MarshalTo(buf[:]); err != nil {
				t.Fatal(err)
			}
			if digit, ok := d.Feed(1, 4000, buf[:], t0.Add(20*ms*time.Duration(i))); ok {
				got = append(got, digit)
			}
		}
		if string(got) != string(want) {
			t.Errorf("code %d decoded as %q; want %q", code, got, want)
		}
	}
}
