//go:build linux

package rtpio

import (
	"errors"
	"time"

	"github.com/groupbridge/groupbridge/media/dtmf"
	"github.com/groupbridge/groupbridge/media/pcm"
)

// ErrNotSending is returned by WriteEvent when the stream has nowhere to
// send or sending is off.
var ErrNotSending = errors.New("rtpio: stream is not sending")

// WriteEvent sends one RFC 4733 telephone-event packet of payload type pt
// in the stream's RTP session (its SSRC, the next sequence number): a key
// press of our own, for a call the bridge placed. start marks a press's
// first packet, which carries the marker bit and fixes the timestamp the
// press's later packets keep (RFC 4733 2.5.1). The mixing path never
// calls it; it must not be called concurrently with itself.
func (s *Stream) WriteEvent(pt uint8, ev dtmf.Event, start bool) error {
	s.tx.mu.Lock()
	defer s.tx.mu.Unlock()
	if s.tx.closed || !s.tx.dst.valid() || !s.tx.send {
		return ErrNotSending
	}
	now := time.Now()
	h := &s.tx.hdr
	if s.tx.started {
		h.SequenceNumber++
	}
	if start {
		// The press starts now in media time: audio's clock moved on by
		// the time since its last packet.
		if s.tx.started {
			h.Timestamp += uint32(now.Sub(s.tx.lastSend) / (time.Second / pcm.SampleRate))
		}
		s.tx.eventTS = h.Timestamp
	}
	s.tx.started = true
	s.tx.lastSend = now
	audioPT, audioTS := h.PayloadType, h.Timestamp
	h.PayloadType, h.Marker, h.Timestamp = pt, start, s.tx.eventTS
	buf := s.tx.buf[:]
	n, err := h.MarshalTo(buf)
	h.PayloadType, h.Marker, h.Timestamp = audioPT, false, audioTS
	if err != nil {
		return err
	}
	m, err := ev.MarshalTo(buf[n:])
	if err != nil {
		return err
	}
	out := buf[:n+m]
	if s.tx.srtp != nil {
		if out, err = s.tx.srtp.EncryptRTP(s.tx.enc[:], out, &s.tx.encHdr); err != nil {
			s.c.drop(dropSendError)
			return err
		}
	}
	if errno := sendto(s.fd, out, &s.tx.dst); errno != 0 {
		s.c.drop(dropSendError)
		return errno
	}
	s.tx.sentRTP(m)
	s.c.out(len(out))
	return nil
}
