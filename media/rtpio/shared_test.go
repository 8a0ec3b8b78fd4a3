//go:build linux

package rtpio

import (
	"testing"
	"time"

	"github.com/groupbridge/groupbridge/media/g711"
	"github.com/groupbridge/groupbridge/media/pcm"
)

// TestWriteSharedPerCodec sends one shared frame to a PCMU and a PCMA
// listener: each gets the frame under its own codec, with its own
// sequence numbers, exactly as WriteFrame would have sent it.
func TestWriteSharedPerCodec(t *testing.T) {
	e := testEngine(t, 2)
	var sh g711.Shared
	type listener struct {
		s *Stream
		p *peer
		c g711.Codec
	}
	var ls []listener
	for _, c := range codecs {
		p := newPeer(t, loop4)
		s, err := e.Open(Params{Remote: p.addr(), Codec: c.codec, AudioPT: c.pt, DTMFPT: -1})
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, listener{s, p, c.codec})
	}
	// Before the first Set there is nothing to send.
	for _, l := range ls {
		l.s.WriteShared(&sh)
		if st := l.s.Stats(); st.PacketsOut != 0 {
			t.Fatalf("%v: sent %d packets before the shared frame was set", l.c, st.PacketsOut)
		}
	}
	for k := range 3 {
		sh.Set(frameOf(k))
		for _, l := range ls {
			l.s.WriteShared(&sh)
		}
	}
	for _, l := range ls {
		var first uint16
		for k := range 3 {
			pkt, _ := l.p.recv()
			want := make([]byte, pcm.FrameSamples)
			l.c.Encode(want, frameOf(k)[:])
			if string(pkt.Payload) != string(want) {
				t.Fatalf("%v packet %d: payload is not the shared frame's encoding", l.c, k)
			}
			if k == 0 {
				first = pkt.SequenceNumber
			} else if pkt.SequenceNumber != first+uint16(k) {
				t.Errorf("%v packet %d: seq %d, want %d", l.c, k, pkt.SequenceNumber, first+uint16(k))
			}
		}
	}
}

// BenchmarkWriteShared is BenchmarkWriteFrame for a listener of the
// room's common mix: the encoding is shared, only the copy and the send
// are per listener.
func BenchmarkWriteShared(b *testing.B) {
	e := testEngine(b, 1)
	p := newPeer(b, loop4)
	go func() {
		buf := make([]byte, 1500)
		for {
			if _, err := p.conn.Read(buf); err != nil {
				return
			}
		}
	}()
	s, err := e.Open(pcmu(p.addr()))
	if err != nil {
		b.Fatal(err)
	}
	var sh g711.Shared
	sh.Set(frameOf(1))
	b.ReportAllocs()
	for b.Loop() {
		s.WriteShared(&sh)
	}
}

// TestEngineTickReadsWhatArrived: the clock's Tick reads every packet
// already in a socket at once, not at the pollers' next look, so a frame
// that arrived just before a mix is in the jitter buffer for it.
func TestEngineTickReadsWhatArrived(t *testing.T) {
	e := testEngine(t, 1)
	p := newPeer(t, loop4)
	s, err := e.Open(pcmu(p.addr()))
	if err != nil {
		t.Fatal(err)
	}
	for k := range 20 {
		// Loopback delivers into the socket before sendto returns.
		p.sendSeq(s.LocalAddr(), 0, uint16(k), tone(g711.PCMU, pcm.FrameSamples, k))
		e.Tick(time.Now())
		if got := s.c.own.packetsIn.Load(); got != uint64(k+1) {
			t.Fatalf("after packet %d and a tick, %d packets read", k+1, got)
		}
	}
}
