//go:build linux

package rtpio

import (
	"errors"
	"testing"

	"github.com/groupbridge/groupbridge/media/dtmf"
	"github.com/groupbridge/groupbridge/media/pcm"
)

// TestWriteEvent: a key press goes out in the stream's own RTP session
// (one SSRC, consecutive sequence numbers), every packet of the press with
// its start's timestamp and the marker on the first only, and audio goes
// on with its own payload type afterwards.
func TestWriteEvent(t *testing.T) {
	e := testEngine(t, 4)
	p := newPeer(t, loop4)
	s, err := e.Open(pcmu(p.addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var f pcm.Frame
	s.WriteFrame(&f)
	audio, _ := p.recv()
	press := dtmf.Press(5, 480, 0)
	for i, ev := range press {
		if err := s.WriteEvent(101, ev, i == 0); err != nil {
			t.Fatalf("WriteEvent %d: %v", i, err)
		}
	}
	s.WriteFrame(&f)
	seq, ts := audio.SequenceNumber, uint32(0)
	for i, want := range press {
		pkt, _ := p.recv()
		seq++
		got, err := dtmf.ParseEvent(pkt.Payload)
		switch {
		case err != nil:
			t.Fatalf("packet %d: %v", i, err)
		case pkt.PayloadType != 101 || pkt.SSRC != audio.SSRC || pkt.SequenceNumber != seq:
			t.Fatalf("packet %d: pt %d ssrc %x seq %d; want 101, %x, %d", i, pkt.PayloadType, pkt.SSRC, pkt.SequenceNumber, audio.SSRC, seq)
		case pkt.Marker != (i == 0):
			t.Errorf("packet %d: marker %v", i, pkt.Marker)
		case got != want:
			t.Errorf("packet %d: event %+v; want %+v", i, got, want)
		}
		if i == 0 {
			ts = pkt.Timestamp
		} else if pkt.Timestamp != ts {
			t.Errorf("packet %d: timestamp %d; want the press's %d", i, pkt.Timestamp, ts)
		}
	}
	after, _ := p.recv()
	if after.PayloadType != 0 || after.SequenceNumber != seq+1 || after.Marker {
		t.Errorf("audio after the press: pt %d seq %d marker %v; want 0, %d, false", after.PayloadType, after.SequenceNumber, after.Marker, seq+1)
	}

	for _, tc := range []struct {
		name  string
		setup func()
	}{
		{"sending off", func() { s.SetDirection(false, true) }},
		{"closed", func() { _ = s.Close() }},
	} {
		tc.setup()
		if err := s.WriteEvent(101, press[0], true); !errors.Is(err, ErrNotSending) {
			t.Errorf("%s: WriteEvent = %v; want ErrNotSending", tc.name, err)
		}
	}
}
