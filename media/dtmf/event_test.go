package dtmf

import (
	"bytes"
	"errors"
	"testing"
)

func TestEventCodeDigit(t *testing.T) {
	tests := []struct {
		digit byte
		code  uint8
	}{
		{'0', 0}, {'1', 1}, {'5', 5}, {'9', 9}, {'*', 10}, {'#', 11},
		{'A', 12}, {'B', 13}, {'C', 14}, {'D', 15},
	}
	for _, tt := range tests {
		code, ok := EventCode(tt.digit)
		if !ok || code != tt.code {
			t.Errorf("EventCode(%q) = %d, %v; want %d, true", tt.digit, code, ok, tt.code)
		}
		digit, ok := EventDigit(tt.code)
		if !ok || digit != tt.digit {
			t.Errorf("EventDigit(%d) = %q, %v; want %q, true", tt.code, digit, ok, tt.digit)
		}
	}
	for _, lower := range []byte("abcd") {
		code, ok := EventCode(lower)
		if want := lower - 'a' + 12; !ok || code != want {
			t.Errorf("EventCode(%q) = %d, %v; want %d, true", lower, code, ok, want)
		}
	}
	for _, bad := range []byte("E/: +\x00\xff") {
		if code, ok := EventCode(bad); ok {
			t.Errorf("EventCode(%q) = %d, true; want false", bad, code)
		}
	}
	for _, bad := range []uint8{16, 17, 64, 255} {
		if digit, ok := EventDigit(bad); ok {
			t.Errorf("EventDigit(%d) = %q, true; want false", bad, digit)
		}
	}
}

func TestEventMarshalParse(t *testing.T) {
	tests := []struct {
		name string
		ev   Event
		wire []byte
	}{
		{"sipp first packet", Event{Code: 1, Volume: 10}, []byte{0x01, 0x0a, 0x00, 0x00}},
		{"end", Event{Code: 11, End: true, Volume: 10, Duration: 800}, []byte{0x0b, 0x8a, 0x03, 0x20}},
		{"loudest max duration", Event{Code: 15, Duration: 0xffff}, []byte{0x0f, 0x00, 0xff, 0xff}},
		{"quietest flash", Event{Code: 16, End: true, Volume: 63, Duration: 160}, []byte{0x10, 0xbf, 0x00, 0xa0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf [8]byte
			n, err := tt.ev.MarshalTo(buf[:])
			if err != nil || n != EventLen {
				t.Fatalf("MarshalTo = %d, %v; want 4, nil", n, err)
			}
			if !bytes.Equal(buf[:n], tt.wire) {
				t.Fatalf("MarshalTo wrote % x; want % x", buf[:n], tt.wire)
			}
			got, err := ParseEvent(tt.wire)
			if err != nil || got != tt.ev {
				t.Fatalf("ParseEvent(% x) = %+v, %v; want %+v", tt.wire, got, err, tt.ev)
			}
		})
	}
}

func TestParseEventIgnoresRAndExtra(t *testing.T) {
	// R bit set, then a second (redundant or following) event that must
	// not influence the result.
	wire := []byte{0x05, 0xca, 0x01, 0x40, 0x07, 0x00, 0x00, 0xa0}
	got, err := ParseEvent(wire)
	want := Event{Code: 5, End: true, Volume: 10, Duration: 320}
	if err != nil || got != want {
		t.Fatalf("ParseEvent = %+v, %v; want %+v", got, err, want)
	}
}

func TestEventErrors(t *testing.T) {
	for n := range EventLen {
		if _, err := ParseEvent(make([]byte, n)); !errors.Is(err, ErrShortEvent) {
			t.Errorf("ParseEvent(%d bytes) error = %v; want ErrShortEvent", n, err)
		}
		if _, err := (Event{}).MarshalTo(make([]byte, n)); !errors.Is(err, ErrShortEvent) {
			t.Errorf("MarshalTo(%d bytes) error = %v; want ErrShortEvent", n, err)
		}
	}
	if _, err := ParseEvent(nil); !errors.Is(err, ErrShortEvent) {
		t.Errorf("ParseEvent(nil) error = %v; want ErrShortEvent", err)
	}
	buf := []byte{0xee, 0xee, 0xee, 0xee}
	if n, err := (Event{Volume: 64}).MarshalTo(buf); !errors.Is(err, ErrVolume) || n != 0 {
		t.Errorf("MarshalTo(volume 64) = %d, %v; want 0, ErrVolume", n, err)
	}
	if !bytes.Equal(buf, []byte{0xee, 0xee, 0xee, 0xee}) {
		t.Errorf("failed MarshalTo wrote into the buffer: % x", buf)
	}
}

func TestMarshalToAllocs(t *testing.T) {
	var buf [EventLen]byte
	ev := Event{Code: 3, End: true, Volume: 10, Duration: 480}
	if n := testing.AllocsPerRun(100, func() { _, _ = ev.MarshalTo(buf[:]) }); n != 0 {
		t.Fatalf("MarshalTo allocates %v times per call", n)
	}
}

func FuzzParseEvent(f *testing.F) {
	f.Add([]byte{0x01, 0x0a, 0x00, 0x00})
	f.Add([]byte{0x0b, 0x8a, 0x03, 0x20})
	f.Add([]byte{0x10, 0xff, 0xff, 0xff, 0x00})
	f.Add([]byte{0x05})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		ev, err := ParseEvent(b)
		if len(b) < EventLen {
			if err == nil {
				t.Fatalf("ParseEvent accepted %d bytes", len(b))
			}
			return
		}
		if err != nil {
			t.Fatalf("ParseEvent(% x): %v", b[:EventLen], err)
		}
		if ev.Volume > MaxVolume {
			t.Fatalf("volume %d out of range", ev.Volume)
		}
		var out [EventLen]byte
		if _, err := ev.MarshalTo(out[:]); err != nil {
			t.Fatalf("MarshalTo(%+v): %v", ev, err)
		}
		// Only the R bit (0x40) may differ: it is dropped on parse.
		in := [EventLen]byte(b[:EventLen])
		in[1] &^= 0x40
		if out != in {
			t.Fatalf("round trip % x -> %+v -> % x", b[:EventLen], ev, out)
		}
	})
}
