//go:build linux

package rtpio

import (
	"encoding/binary"
	"net/netip"
	"time"

	"github.com/pion/rtp"

	"github.com/groupbridge/groupbridge/media/jitter"
	"github.com/groupbridge/groupbridge/media/pcm"
)

const (
	// maxPayload is the largest audio payload accepted: one second of
	// G.711 (one byte per sample). Longer ptimes exist nowhere in practice.
	maxPayload = 8000
	// probationPackets is how many consecutive in-sequence packets with
	// one SSRC a new source must send before it is latched (Asterisk's
	// strictrtp probation uses the same order of magnitude).
	probationPackets = 4
	// relatchSilence is how long the latched source must have been silent
	// before another source may start probation.
	relatchSilence = time.Second
)

// handle processes one received RTP datagram of s. pkt aliases the
// poller's receive buffer, so everything kept is copied (decoded) before
// returning. now is the arrival time the jitter buffer and the RTCP
// statistics see. The caller holds s.rx.mu.
func (s *Stream) handle(p *poller, pkt []byte, from netip.AddrPort, now time.Time) {
	// Checking the header shape first keeps garbage off pion's error path,
	// which builds an error with fmt (an allocation) per packet.
	if !validRTP(pkt) {
		s.count(dropMalformed)
		return
	}
	if s.rx.srtp != nil {
		// Authenticate before anything else looks at the packet, latching
		// included: a stranger without the key cannot take the stream over.
		dec, err := s.rx.srtp.DecryptRTP(p.dec[:], pkt, &p.hdr)
		if err != nil {
			s.count(dropSRTPAuth)
			return
		}
		pkt = dec
	}
	if err := p.pkt.Unmarshal(pkt); err != nil {
		s.count(dropMalformed)
		return
	}
	h := &p.pkt.Header
	switch s.rx.latch.admit(from, h.SSRC, h.SequenceNumber, now) {
	case admitForeign:
		s.count(dropForeignSource)
		return
	case admitProbation:
		s.count(dropProbation)
		return
	case admitLatched:
		s.latched(from)
	}
	// Any payload from the accepted source proves the caller is there,
	// including comfort noise from phones that suppress silence.
	s.touch(now)

	// Every payload type shares the source's sequence numbers, so all
	// count for loss; only audio timestamps follow the sampling clock, so
	// only audio feeds the jitter estimate.
	s.q.mu.Lock()
	s.q.in.packet(h.SSRC, h.SequenceNumber)
	if h.PayloadType == s.rx.audioPT {
		s.q.in.arrival(h.Timestamp, uint32(now.Sub(s.epoch)/(time.Second/pcm.SampleRate)))
	}
	s.q.mu.Unlock()

	payload := p.pkt.Payload
	switch pt := h.PayloadType; {
	case s.rx.dtmfPT >= 0 && int(pt) == s.rx.dtmfPT:
		// Digits are decoded by (SSRC, timestamp), outside the sequence
		// rules that audio follows: replayed captures reuse sequence
		// numbers and must still be heard.
		if d, ok := s.rx.dtmf.Feed(h.SSRC, h.Timestamp, payload, now); ok && s.rx.onDigit != nil {
			p.digits[p.nDigits] = d
			p.nDigits++
		}
	case pt == s.rx.audioPT:
		s.audio(p, h, payload, now)
	default:
		s.count(dropUnknownPayloadType)
	}
}

// audio decodes one accepted audio payload into the poller's scratch
// space and hands it to the jitter buffer, which places it by timestamp:
// reordered packets fall into place, and the buffer alone decides what is
// a duplicate or too late, so its verdict is what is counted.
func (s *Stream) audio(p *poller, h *rtp.Header, payload []byte, now time.Time) {
	if len(payload) == 0 || len(payload) > maxPayload {
		s.count(dropMalformed)
		return
	}
	if !s.rx.recv {
		s.count(dropDirection)
		return
	}
	samples := p.pcm[:len(payload)] // G.711: one byte per sample
	s.rx.codec.Decode(samples, payload)
	s.play.mu.Lock()
	r := s.play.buf.Push(h.SSRC, h.SequenceNumber, h.Timestamp, h.Marker, samples, now)
	s.play.mu.Unlock()
	switch r {
	case jitter.Duplicate:
		s.count(dropDuplicate)
	case jitter.Late:
		s.count(dropLate)
	case jitter.Invalid: // cannot happen: the length was checked above
		s.count(dropMalformed)
	}
}

// latched switches sending to a newly latched source. The caller holds
// s.rx.mu; tx.mu nests inside it.
func (s *Stream) latched(from netip.AddrPort) {
	s.tx.mu.Lock()
	s.setDst(from)
	s.tx.mu.Unlock()
	s.e.log.Info("rtpio: latched new media source", "port", s.port, "source", from, "sdp", s.rx.sdp)
}

// validRTP checks what pion's parser would reject, without allocating: RTP
// version 2 and a datagram long enough for its CSRC list, header
// extension and padding.
func validRTP(b []byte) bool {
	if len(b) < rtpHeaderLen || b[0]>>6 != 2 {
		return false
	}
	n := rtpHeaderLen + 4*int(b[0]&0x0f)
	if len(b) < n {
		return false
	}
	if b[0]&0x10 != 0 { // extension
		if len(b) < n+4 {
			return false
		}
		n += 4 + 4*int(binary.BigEndian.Uint16(b[n+2:]))
		if len(b) < n {
			return false
		}
	}
	if b[0]&0x20 != 0 { // padding: the last byte counts the padding bytes
		pad := int(b[len(b)-1])
		if pad == 0 || len(b)-pad < n {
			return false
		}
	}
	return true
}

// admission is latch.admit's verdict on a packet.
type admission uint8

const (
	admitOK        admission = iota // from the current source
	admitLatched                    // completed probation: now the current source
	admitForeign                    // another source while the current one is active
	admitProbation                  // a candidate source still on probation
)

// latch decides which source address a stream accepts
// (docs/DECISIONS.md, D3). The SDP address is trusted at once. Another source is
// considered only when the current one has been silent for a second (or
// has never sent, as when a NAT rewrote the caller's address), and is
// latched after probationPackets consecutive in-sequence packets with one
// SSRC. A stranger spraying the port while the caller talks is therefore
// never accepted and never sent to.
//
// Two sources taking turns restart each other's probation, so an attacker
// interleaving packets with a caller behind NAT can delay latching, but
// never hear anything.
type latch struct {
	cur     netip.AddrPort // accepted source; zero when none is known
	curLast time.Time      // last packet from cur; zero if it never sent

	cand     netip.AddrPort // source on probation
	candSSRC uint32
	candSeq  uint16
	candN    int // in-sequence packets seen from cand; 0 = no candidate
}

// reset trusts the SDP address sdp (possibly zero) and forgets probation.
func (l *latch) reset(sdp netip.AddrPort) {
	*l = latch{cur: sdp}
}

// admit rules on a packet from source from.
func (l *latch) admit(from netip.AddrPort, ssrc uint32, seq uint16, now time.Time) admission {
	if l.cur.IsValid() && from == l.cur {
		l.curLast = now
		l.candN = 0
		return admitOK
	}
	if !l.curLast.IsZero() && now.Sub(l.curLast) < relatchSilence {
		return admitForeign
	}
	if l.candN > 0 && from == l.cand && ssrc == l.candSSRC && seq == l.candSeq+1 {
		l.candN++
		l.candSeq = seq
	} else {
		l.cand, l.candSSRC, l.candSeq, l.candN = from, ssrc, seq, 1
	}
	if l.candN < probationPackets {
		return admitProbation
	}
	l.cur, l.curLast, l.candN = from, now, 0
	return admitLatched
}
