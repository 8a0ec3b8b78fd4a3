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
	// before another port of an allowed address may start probation.
	relatchSilence = time.Second
	// maxSeqAhead bounds how far ahead of the stream a packet with its SSRC
	// from a new port may be for a NAT rebinding to be followed: the few
	// packets lost while the NAT made its new mapping, and the same order
	// as RFC 3550's misorder allowance.
	maxSeqAhead = 100
	// strangerLogEvery spaces the log lines about strangers' packets of one
	// stream: a spray at a call's port is one line a minute, not thousands.
	strangerLogEvery = time.Minute
)

// handle processes one received RTP datagram of s. pkt aliases the
// poller's receive buffer, so everything kept is copied (decoded) before
// returning. now is the arrival time the jitter buffer and the RTCP
// statistics see. The caller holds s.rx.mu.
func (s *Stream) handle(p *poller, pkt []byte, from netip.AddrPort, now time.Time) {
	// Checking the header shape first keeps garbage off pion's error path,
	// which builds an error with fmt (an allocation) per packet.
	if !validRTP(pkt) {
		s.c.drop(dropMalformed)
		return
	}
	if s.rx.srtp != nil {
		// Authenticate before anything else looks at the packet, latching
		// included: a stranger without the key cannot take the stream over.
		dec, err := s.rx.srtp.DecryptRTP(p.dec[:], pkt, &p.hdr)
		if err != nil {
			s.c.drop(dropSRTPAuth)
			return
		}
		pkt = dec
	}
	if err := p.pkt.Unmarshal(pkt); err != nil {
		s.c.drop(dropMalformed)
		return
	}
	h := &p.pkt.Header
	switch s.rx.latch.admit(from, h.SSRC, h.SequenceNumber, now) {
	case admitStranger:
		s.c.drop(dropForeignSource)
		s.stranger(from, now)
		return
	case admitForeign:
		s.c.drop(dropForeignSource)
		return
	case admitProbation:
		s.c.drop(dropProbation)
		return
	case admitLatched:
		s.latched(from)
	}
	s.accept(p, h, p.pkt.Payload, now)
}

// accept takes one packet of s's source, authenticated and admitted (by
// handle, or inside a bundle that its owner node sent): it relays it or
// hands it to the digit decoder or the jitter buffer. The caller holds
// s.rx.mu.
func (s *Stream) accept(p *poller, h *rtp.Header, payload []byte, now time.Time) {
	// Any payload from the accepted source proves the caller is there,
	// including comfort noise from phones that suppress silence.
	s.c.touch(now)

	// Every payload type shares the source's sequence numbers, so all
	// count for loss; only audio timestamps follow the sampling clock, so
	// only audio feeds the jitter estimate.
	s.q.mu.Lock()
	s.q.in.packet(h.SSRC, h.SequenceNumber)
	if h.PayloadType == s.rx.audioPT {
		s.q.in.arrival(h.Timestamp, uint32(now.Sub(s.epoch)/(time.Second/pcm.SampleRate)))
	}
	s.q.mu.Unlock()

	if l := s.rx.link; l != nil {
		s.forward(p, l, h, payload, now)
		return
	}
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
		s.c.drop(dropUnknownPayloadType)
	}
}

// audio decodes one accepted audio payload into the poller's scratch
// space and hands it to the jitter buffer, which places it by timestamp:
// reordered packets fall into place, and the buffer alone decides what is
// a duplicate or too late, so its verdict is what is counted.
func (s *Stream) audio(p *poller, h *rtp.Header, payload []byte, now time.Time) {
	if len(payload) == 0 || len(payload) > maxPayload {
		s.c.drop(dropMalformed)
		return
	}
	if !s.rx.recv {
		s.c.drop(dropDirection)
		return
	}
	samples := p.pcm[:len(payload)] // G.711: one byte per sample
	s.rx.codec.Decode(samples, payload)
	s.play.mu.Lock()
	r := s.play.buf.Push(h.SSRC, h.SequenceNumber, h.Timestamp, h.Marker, samples, now)
	s.play.mu.Unlock()
	switch r {
	case jitter.Duplicate:
		s.c.drop(dropDuplicate)
	case jitter.Late:
		s.c.drop(dropLate)
	case jitter.Invalid: // cannot happen: the length was checked above
		s.c.drop(dropMalformed)
	}
}

// latched switches sending to a newly latched source. The caller holds
// s.rx.mu; tx.mu nests inside it.
func (s *Stream) latched(from netip.AddrPort) {
	s.tx.mu.Lock()
	if from != s.tx.remote {
		s.tx.setDst(s.e, from)
	}
	s.tx.mu.Unlock()
	s.log.Info("rtpio: latched new media source", "port", s.port, "source", from, "sdp", s.rx.sdp)
}

// stranger notes an RTP or RTCP packet from an address that is not
// allowed. The first of a burst is logged, then at most one line per
// strangerLogEvery with the number dropped since: an attack is visible
// without flooding the log. Nothing of the packet is logged. The caller
// holds s.rx.mu.
func (s *Stream) stranger(from netip.AddrPort, now time.Time) {
	s.rx.strangers++
	if !s.rx.strangerLog.IsZero() && now.Sub(s.rx.strangerLog) < strangerLogEvery {
		return
	}
	s.log.Warn("rtpio: dropped media from an address the call did not name",
		"port", s.port, "source", from, "packets", s.rx.strangers)
	s.rx.strangerLog, s.rx.strangers = now, 0
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
	admitLatched                    // a new current source: probation passed, or a NAT rebinding followed
	admitForeign                    // an allowed address, but not the current source
	admitStranger                   // an address the call's signalling never named
	admitProbation                  // a candidate source still on probation
)

// latch decides which source a stream accepts (docs/DECISIONS.md, D3).
// Only allowed addresses are ever considered: the SDP address and the
// prefixes the SIP layer allows (the address the call's SIP came from,
// rtp.media_sources). Anyone else is a stranger, however long the caller
// is silent.
//
// Within the allowed addresses the SDP address is trusted at once, until
// another source has been latched. A packet from a new port with the
// current SSRC, its sequence number a little ahead, is a NAT rebinding and
// is followed at once. Any other new source (a new port, or a new SSRC from
// the current address as when a PBX transfers the call) is latched after
// probationPackets consecutive in-sequence packets with one SSRC, and only
// once the current source has gone quiet: for a new SSRC from the current
// address nothing from the old SSRC may arrive during probation; for a new
// port the current source must have been silent for relatchSilence (or
// never have sent, as when a NAT rewrote the caller's address).
type latch struct {
	sdp   netip.AddrPort // the SDP address; zero when none
	sdpIP netip.Addr     // its IP, always allowed; invalid when none or unspecified
	allow []netip.Prefix // further allowed networks

	cur     netip.AddrPort // accepted source; zero when none is known
	curLast time.Time      // last packet from cur; zero if it never sent
	known   bool           // ssrc and seq hold cur's stream (a packet was accepted)
	ssrc    uint32
	seq     uint16 // the highest sequence number accepted from ssrc

	cand     netip.AddrPort // source on probation
	candSSRC uint32
	candSeq  uint16
	candN    int // in-sequence packets seen from cand; 0 = no candidate
}

// reset trusts the SDP address sdp (possibly zero), allows it and the
// networks of allow (kept, not copied), and forgets everything learnt.
func (l *latch) reset(sdp netip.AddrPort, allow []netip.Prefix) {
	*l = latch{sdp: sdp, cur: sdp, allow: allow}
	if a := sdp.Addr(); sdp.IsValid() && !a.IsUnspecified() {
		l.sdpIP = a
	}
}

// setAllowed replaces the allowed networks. What was learnt stays as long
// as the current source is still allowed.
func (l *latch) setAllowed(allow []netip.Prefix) {
	l.allow = allow
	if l.cur.IsValid() && !l.allowed(l.cur.Addr()) {
		l.reset(l.sdp, allow)
	}
}

// allowed reports whether media may come from a.
func (l *latch) allowed(a netip.Addr) bool {
	if a == l.sdpIP {
		return a.IsValid()
	}
	return inNets(l.allow, a)
}

// admit rules on a packet from source from.
func (l *latch) admit(from netip.AddrPort, ssrc uint32, seq uint16, now time.Time) admission {
	if !l.allowed(from.Addr()) {
		return admitStranger
	}
	if from == l.cur && (!l.known || ssrc == l.ssrc) {
		l.accept(ssrc, seq, now)
		return admitOK
	}
	if l.known && ssrc == l.ssrc && from != l.cur {
		// The same stream from a new port: a NAT rebinding, followed at
		// once if it goes on where the stream was. A packet of the old
		// port that arrives late is behind, and so foreign.
		if d := seq - l.seq; d >= 1 && d <= maxSeqAhead {
			l.cur = from
			l.accept(ssrc, seq, now)
			return admitLatched
		}
	}
	// A new SSRC from the current address goes on probation at once: the
	// old SSRC is quiet as long as it sends nothing meanwhile (accept ends
	// probation). Another port waits for a second of silence.
	if from != l.cur && !l.curLast.IsZero() && now.Sub(l.curLast) < relatchSilence {
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
	l.cur = from
	l.known = false
	l.accept(ssrc, seq, now)
	return admitLatched
}

// accept records a packet of the current source; it ends any probation,
// since the current source is plainly not quiet.
func (l *latch) accept(ssrc uint32, seq uint16, now time.Time) {
	if !l.known || int16(seq-l.seq) > 0 {
		l.seq = seq
	}
	l.known, l.ssrc, l.curLast, l.candN = true, ssrc, now, 0
}
