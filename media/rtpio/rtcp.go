//go:build linux

package rtpio

import (
	"encoding/binary"
	"math/rand/v2"
	"net/netip"
	"time"

	"github.com/pion/rtcp"

	"github.com/groupbridge/groupbridge/media/pcm"
)

// RTCP (RFC 3550 section 6) is received on the odd port of each pair and
// sent from it. Reports are sent by WriteFrame, which the mixing clock calls
// every 20 ms anyway: one time comparison per frame decides whether a
// report is due, so no goroutine or timer exists per stream.

const (
	// defaultRTCPInterval is the mean time between our reports. RFC 3550
	// 6.2 derives the interval from the session bandwidth; for a two-party
	// audio session that gives far less than the recommended 5 s minimum,
	// so the minimum is what applies.
	defaultRTCPInterval = 5 * time.Second
	// rtcpBufSize holds our largest compound report: an SR with one
	// report block (52 bytes) and an SDES CNAME chunk (28 bytes).
	rtcpBufSize = 128
	// maxReportBlocks is what the 5-bit report count field can carry.
	maxReportBlocks = 31
	// srHistory is how many of our own sender reports are remembered to
	// match the LSR field of the peer's reports: a peer echoes the latest
	// SR it received, which is at most a few intervals old.
	srHistory = 4
	// ntpEpochOffset is the number of seconds from 1900 (NTP's epoch) to
	// 1970 (Unix's).
	ntpEpochOffset = 2208988800
	// seqMod, maxDropout and maxMisorder are the constants of RFC 3550
	// A.1's sequence number bookkeeping.
	seqMod      = 1 << 16
	maxDropout  = 3000
	maxMisorder = 100
	// maxTransitStep bounds one step of the jitter estimator: a timestamp
	// jump of more than 3 s (a sender that restarted its clock) is a
	// discontinuity, not jitter, and would otherwise dominate the
	// estimate for minutes.
	maxTransitStep = 3 * pcm.SampleRate
	// cnameLen is the length of the random CNAME (RFC 7022: 96 random
	// bits, base64-encoded).
	cnameLen = 16
)

// Quality is a stream's reception quality in both directions (RFC 3550
// 6.4), kept for metrics and operator views.
type Quality struct {
	// Outbound is the peer's view of the audio we send, from the report
	// blocks about our SSRC in its sender and receiver reports.
	Outbound OutboundQuality
	// Inbound is our own view of the audio we receive from the latched
	// source: the figures our report blocks carry.
	Inbound InboundQuality
}

// OutboundQuality is what the peer reports about the audio we send.
type OutboundQuality struct {
	// Reports counts the report blocks about our stream received so far.
	// While it is zero none of the other fields is known.
	Reports uint64
	// LastReport is when the latest of them arrived; zero if none did.
	LastReport time.Time
	// FractionLost is the share of our packets the peer lost in the
	// interval before its latest report, from 0 to 1 (the 8-bit field of
	// the report divided by 256).
	FractionLost float64
	// CumulativeLost is the number of our packets (not bytes) the peer
	// lost since it started receiving. Duplicates count as received, so
	// it can be negative.
	CumulativeLost int64
	// Jitter is the interarrival jitter the peer measured (RFC 3550
	// 6.4.1), converted from timestamp units (1/8000 s) to a duration.
	Jitter time.Duration
	// RTT is the round-trip time computed from the latest report that
	// echoed one of our sender reports: its arrival time minus the time we
	// sent that SR (LSR) minus the time the peer held it (DLSR, which has a
	// resolution of 1/65536 s). It stays zero until measured; it is never
	// measured while we send no audio, because only senders send SRs.
	RTT time.Duration
}

// InboundQuality is our view of the audio we receive, per RFC 3550
// appendix A.3 and A.8. The figures describe one source (SSRC) and start
// over when it changes.
type InboundQuality struct {
	// SSRC is the source the figures describe; zero with all figures zero
	// until a packet arrives.
	SSRC uint32
	// Expected is the number of packets (of any payload type: audio,
	// telephone-event, comfort noise share one sequence) from the first
	// sequence number received to the highest, extended over wrap-around.
	Expected uint64
	// Received counts the packets received, duplicates and late ones
	// included, as RFC 3550 A.3 counts them.
	Received uint64
	// Lost is Expected minus Received; negative when duplicates outnumber
	// losses.
	Lost int64
	// FractionLost is the share of packets lost in the interval before our
	// latest report, from 0 to 1 (what that report carried, in steps of
	// 1/256).
	FractionLost float64
	// Jitter is the interarrival jitter estimate of RFC 3550 A.8, computed
	// on audio packets from the time the poller read them (the arrival time
	// of a packet that waited in the socket buffer is when it was read).
	Jitter time.Duration
}

// sentSR is one sender report of ours, remembered for RTT measurement.
type sentSR struct {
	lsr uint32 // the middle 32 bits of its NTP timestamp, as echoed in LSR
	at  time.Time
}

// rxStats is the receive bookkeeping of RFC 3550 appendix A.1, A.3 and
// A.8 for the current source, plus the peer's latest sender report.
type rxStats struct {
	ok       bool // a packet has been seen from ssrc
	ssrc     uint32
	maxSeq   uint16
	cycles   uint64 // sequence number wraps, shifted left by 16
	baseSeq  uint32
	badSeq   uint32 // the sequence number that would confirm a restart
	received uint64
	// lostDone totals the losses of the streams counted before the
	// latest restart (a new SSRC or a sequence jump), for Engine.Stats.
	lostDone uint64

	expectedPrior, receivedPrior uint64 // at our previous report
	fraction                     uint8  // carried by our latest report

	transit     uint32 // arrival minus RTP timestamp of the last audio packet
	haveTransit bool
	jitter      uint32 // in 1/16 timestamp units, as in A.8

	// The peer's latest SR, echoed in our report block (LSR, DLSR).
	srSSRC uint32
	lsr    uint32
	lsrAt  time.Time // zero: no SR received
}

// restart begins counting at seq (RFC 3550 A.1 init_seq).
func (r *rxStats) restart(seq uint16) {
	r.baseSeq = uint32(seq)
	r.maxSeq = seq
	r.badSeq = seqMod + 1 // matches no 16-bit number
	r.cycles = 0
	r.received = 0
	r.expectedPrior, r.receivedPrior = 0, 0
	r.haveTransit = false
}

// packet records one RTP packet of any payload type from the accepted
// source (RFC 3550 A.1 update_seq, without its probation: latching already
// did that).
func (r *rxStats) packet(ssrc uint32, seq uint16) {
	if !r.ok || ssrc != r.ssrc {
		*r = rxStats{ok: true, ssrc: ssrc, srSSRC: r.srSSRC, lsr: r.lsr, lsrAt: r.lsrAt, lostDone: r.lost()}
		r.restart(seq)
		r.received = 1
		return
	}
	switch udelta := seq - r.maxSeq; {
	case udelta < maxDropout: // in order, with a permissible gap
		if seq < r.maxSeq {
			r.cycles += seqMod
		}
		r.maxSeq = seq
	case int(udelta) <= seqMod-maxMisorder: // a very large jump
		if uint32(seq) != r.badSeq {
			// Wait for the next packet: two in sequence mean the sender
			// restarted its sequence without telling us.
			r.badSeq = (uint32(seq) + 1) & (seqMod - 1)
			return
		}
		r.lostDone = r.lost()
		r.restart(seq)
	default: // a duplicate or a reordered packet
	}
	r.received++
}

// arrival updates the jitter estimate with an audio packet's RTP
// timestamp ts and its arrival time at, both in timestamp units (RFC 3550
// A.8).
func (r *rxStats) arrival(ts, at uint32) {
	transit := at - ts
	if r.haveTransit {
		d := int64(int32(transit - r.transit))
		if d < 0 {
			d = -d
		}
		if d <= maxTransitStep {
			r.jitter += uint32(d) - (r.jitter+8)>>4
		}
	}
	r.transit, r.haveTransit = transit, true
}

// expected is the number of packets expected so far (RFC 3550 A.3).
func (r *rxStats) expected() uint64 {
	return r.cycles + uint64(r.maxSeq) - uint64(r.baseSeq) + 1
}

// lost is the number of packets never received, over every stream of the
// source since the start: each stream's expected minus received (RFC 3550
// A.3, all payload types), a stream where duplicates outnumber losses
// counting none.
func (r *rxStats) lost() uint64 {
	if !r.ok {
		return r.lostDone
	}
	return r.lostDone + uint64(max(int64(r.expected())-int64(r.received), 0))
}

// heard reports whether packets arrived since our previous report: only
// then does our report carry a block about the source (RFC 3550 6.4).
func (r *rxStats) heard() bool {
	return r.ok && r.received != r.receivedPrior
}

// writeBlock writes the report block about the source into b (24 bytes)
// and starts a new reporting interval.
func (r *rxStats) writeBlock(b []byte, now time.Time) {
	expected := r.expected()
	lost := int64(expected) - int64(r.received)
	expInt := int64(expected - r.expectedPrior)
	lostInt := expInt - int64(r.received-r.receivedPrior)
	r.expectedPrior, r.receivedPrior = expected, r.received
	r.fraction = 0
	if expInt > 0 && lostInt > 0 {
		r.fraction = uint8(min(lostInt<<8/expInt, 255))
	}
	// The cumulative count is a signed 24-bit field: clamp, do not wrap.
	lost = max(min(lost, 0x7fffff), -0x800000)
	var lsr, dlsr uint32
	if !r.lsrAt.IsZero() && r.srSSRC == r.ssrc {
		lsr = r.lsr
		dlsr = uint32(min(max(now.Sub(r.lsrAt).Seconds(), 0)*65536, 0xffffffff))
	}
	binary.BigEndian.PutUint32(b[0:], r.ssrc)
	binary.BigEndian.PutUint32(b[4:], uint32(r.fraction)<<24|uint32(lost)&0xffffff)
	binary.BigEndian.PutUint32(b[8:], uint32(r.cycles)+uint32(r.maxSeq))
	binary.BigEndian.PutUint32(b[12:], r.jitter>>4)
	binary.BigEndian.PutUint32(b[16:], lsr)
	binary.BigEndian.PutUint32(b[20:], dlsr)
}

// quality returns the inbound figures.
func (r *rxStats) quality() InboundQuality {
	if !r.ok {
		return InboundQuality{}
	}
	e := r.expected()
	return InboundQuality{
		SSRC:         r.ssrc,
		Expected:     e,
		Received:     r.received,
		Lost:         int64(e) - int64(r.received),
		FractionLost: float64(r.fraction) / 256,
		Jitter:       tsDuration(r.jitter >> 4),
	}
}

// tsDuration converts timestamp units (1/8000 s) to a duration.
func tsDuration(units uint32) time.Duration {
	return time.Duration(units) * (time.Second / pcm.SampleRate)
}

// ntpTime is t as a 64-bit NTP timestamp: seconds since 1900 and a 32-bit
// binary fraction.
func ntpTime(t time.Time) uint64 {
	sec := uint64(t.Unix() + ntpEpochOffset)
	frac := uint64(t.Nanosecond()) << 32 / uint64(time.Second)
	return sec<<32 | frac
}

// rtcpFindings is what a received compound packet says that we use.
type rtcpFindings struct {
	sr     bool // it holds a sender report
	srSSRC uint32
	srNTP  uint64

	block     rtcp.ReceptionReport // the last report block about our SSRC
	haveBlock bool
}

// parseRTCP checks a compound RTCP datagram (RFC 3550 A.2: version 2,
// lengths that add up to the datagram, the first packet an SR or RR,
// padding only on the last) and parses its sender and receiver reports
// with pion/rtcp into the poller's reused structs, so that nothing is
// allocated. Other packet types (SDES, BYE, APP, XR, feedback) are checked
// for shape only. It reports false for a malformed datagram.
func (p *poller) parseRTCP(pkt []byte, ours uint32) (f rtcpFindings, ok bool) {
	if len(pkt) == 0 {
		return f, false
	}
	for i := 0; len(pkt) > 0; i++ {
		var h rtcp.Header
		if err := h.Unmarshal(pkt); err != nil {
			return f, false
		}
		n := (int(h.Length) + 1) * 4
		if n > len(pkt) {
			return f, false
		}
		sub := pkt[:n]
		pkt = pkt[n:]
		if h.Padding {
			// The last octet counts the padding octets, itself included.
			pad := int(sub[n-1])
			if len(pkt) != 0 || pad == 0 || pad > n-4 {
				return f, false
			}
			sub = sub[:n-pad]
		}
		if i == 0 && h.Type != rtcp.TypeSenderReport && h.Type != rtcp.TypeReceiverReport {
			return f, false
		}
		var reports []rtcp.ReceptionReport
		switch h.Type {
		case rtcp.TypeSenderReport:
			p.sr.Reports, p.sr.ProfileExtensions = p.sr.Reports[:0], nil
			if err := p.sr.Unmarshal(sub); err != nil {
				return f, false
			}
			f.sr, f.srSSRC, f.srNTP = true, p.sr.SSRC, p.sr.NTPTime
			reports = p.sr.Reports
		case rtcp.TypeReceiverReport:
			p.rr.Reports, p.rr.ProfileExtensions = p.rr.Reports[:0], nil
			if err := p.rr.Unmarshal(sub); err != nil {
				return f, false
			}
			reports = p.rr.Reports
		}
		for _, b := range reports {
			if b.SSRC == ours {
				f.block, f.haveBlock = b, true
			}
		}
	}
	return f, true
}

// handleRTCP processes one datagram received on the RTCP port. Only RTCP
// from the latched source's address is used (from any port: RTCP comes
// from a different one than RTP, and NATs map it on their own), so a
// stranger can neither keep a dead call open nor feed it false figures;
// datagrams from addresses that are not allowed at all are logged as
// strangers' (Stream.stranger).
// truncated says the datagram did not fit the receive buffer. The caller
// holds s.rx.mu.
func (s *Stream) handleRTCP(p *poller, pkt []byte, truncated bool, from netip.AddrPort, now time.Time) {
	if cur := s.rx.latch.cur; !cur.IsValid() || from.Addr() != cur.Addr() {
		s.c.rtcp(rtcpForeign)
		if !s.rx.latch.allowed(from.Addr()) {
			s.stranger(from, now)
		}
		return
	}
	if s.rx.srtp != nil && !truncated {
		dec, err := s.rx.srtp.DecryptRTCP(p.dec[:], pkt, &p.rtcpHdr)
		if err != nil {
			s.c.drop(dropSRTPAuth)
			return
		}
		pkt = dec
	}
	f, ok := p.parseRTCP(pkt, s.ssrc)
	if truncated || !ok {
		s.c.rtcp(rtcpMalformed)
		return
	}
	s.c.rtcp(rtcpReceived)
	s.c.touch(now)

	s.tx.mu.Lock()
	if s.tx.dst.valid() && from.Addr() == s.tx.remote.Addr() {
		s.tx.rtcpSeen = from // answer where RTCP really comes from
	}
	s.tx.mu.Unlock()

	s.q.mu.Lock()
	defer s.q.mu.Unlock()
	if f.sr {
		s.q.in.srSSRC, s.q.in.lsr, s.q.in.lsrAt = f.srSSRC, uint32(f.srNTP>>16), now
	}
	if !f.haveBlock {
		return
	}
	b := &f.block
	o := &s.q.out
	o.Reports++
	o.LastReport = now
	o.FractionLost = float64(b.FractionLost) / 256
	o.CumulativeLost = int64(int32(b.TotalLost<<8) >> 8) // sign-extend 24 bits
	o.Jitter = tsDuration(b.Jitter)
	if b.LastSenderReport == 0 {
		return // the peer has not received an SR of ours yet
	}
	for _, sr := range s.q.sent {
		if sr.at.IsZero() || sr.lsr != b.LastSenderReport {
			continue
		}
		held := time.Duration(float64(b.Delay) / 65536 * float64(time.Second))
		// DLSR is truncated to 1/65536 s by the peer, which can only make
		// the result larger; a peer that rounds up can make it a few
		// microseconds negative on a LAN.
		if rtt := now.Sub(sr.at) - held; rtt >= -time.Millisecond {
			o.RTT = max(rtt, 0)
		}
		break
	}
}

// rtcpDue runs from WriteFrame when the report time has come: the first
// call only schedules the first report (after half an interval, RFC 3550
// 6.2), later calls send one and schedule the next. The caller holds
// s.tx.mu and has checked that there is a destination.
func (s *Stream) rtcpDue(now time.Time) {
	wait := time.Duration(float64(s.e.rtcpInterval) * (0.5 + rand.Float64()))
	if s.tx.nextRTCP.IsZero() {
		s.tx.nextRTCP = now.Add(wait / 2)
		return
	}
	s.tx.nextRTCP = now.Add(wait)
	s.sendRTCP(now)
}

// sendRTCP builds our compound report in the stream's buffer by hand
// (pion's Marshal allocates) and sends it to the peer's RTCP address: an
// SR if we sent audio since the previous report, else an RR; a report
// block about the source we receive if it sent since the previous report;
// and an SDES with our CNAME, which RFC 3550 6.1 requires in every
// compound packet. The caller holds s.tx.mu.
func (s *Stream) sendRTCP(now time.Time) {
	b := s.tx.rtcpBuf[:]
	sender := s.tx.sentSinceReport
	s.tx.sentSinceReport = false
	hdr := 8 // RR: header and SSRC
	if sender {
		hdr = 28 // SR: plus the sender info
	}
	count := 0

	s.q.mu.Lock()
	if s.q.in.heard() {
		s.q.in.writeBlock(b[hdr:hdr+24], now)
		count = 1
	}
	if sender {
		ntp := ntpTime(now)
		copy(s.q.sent[1:], s.q.sent[:srHistory-1])
		s.q.sent[0] = sentSR{lsr: uint32(ntp >> 16), at: now}
		elapsed := uint32(now.Sub(s.tx.lastSend) / (time.Second / pcm.SampleRate))
		binary.BigEndian.PutUint64(b[8:], ntp)
		binary.BigEndian.PutUint32(b[16:], s.tx.hdr.Timestamp+elapsed)
		binary.BigEndian.PutUint32(b[20:], s.tx.rtpPackets)
		binary.BigEndian.PutUint32(b[24:], s.tx.rtpOctets)
	}
	s.q.mu.Unlock()

	n := hdr + 24*count
	b[0] = 0x80 | byte(count)
	b[1] = byte(rtcp.TypeReceiverReport)
	if sender {
		b[1] = byte(rtcp.TypeSenderReport)
	}
	binary.BigEndian.PutUint16(b[2:], uint16(n/4-1))
	binary.BigEndian.PutUint32(b[4:], s.ssrc)

	// SDES: one chunk with our SSRC and the CNAME item, ended by at least
	// one null octet and padded with nulls to a 32-bit boundary.
	sdes := b[n:]
	cname := s.e.cname
	chunk := 4 + 2 + len(cname)
	end := (chunk + 4) &^ 3
	sdes[0] = 0x81
	sdes[1] = byte(rtcp.TypeSourceDescription)
	binary.BigEndian.PutUint16(sdes[2:], uint16(end/4))
	binary.BigEndian.PutUint32(sdes[4:], s.ssrc)
	sdes[8] = byte(rtcp.SDESCNAME)
	sdes[9] = byte(len(cname))
	copy(sdes[10:], cname)
	clear(sdes[4+chunk : 4+end])
	n += 4 + end

	dst := s.tx.rtcpDst(s.e.family)
	if dst == nil {
		return
	}
	out := b[:n]
	if s.tx.srtp != nil {
		var err error
		if out, err = s.tx.srtp.EncryptRTCP(s.tx.rtcpEnc[:], out, &s.tx.rtcpHdr); err != nil {
			s.c.drop(dropSendError)
			return
		}
	}
	if sendto(s.rtcpFd, out, dst) != 0 {
		s.c.drop(dropSendError)
		return
	}
	s.c.rtcp(rtcpSent)
	s.c.out(len(out))
}

// rtcpDst returns where reports go, as an address of family: the
// address the peer's RTCP comes from once seen, else the RTP
// destination's port plus one (RFC 3550 11). The caller holds t.mu and
// has checked that t.dst is valid.
func (t *sender) rtcpDst(family int) *rawAddr {
	a := t.rtcpSeen
	if !a.IsValid() {
		r := t.remote
		if r.Port() == 65535 {
			return nil
		}
		a = netip.AddrPortFrom(r.Addr(), r.Port()+1)
	}
	t.rtcpDstRaw.set(family, a)
	if !t.rtcpDstRaw.valid() {
		return nil
	}
	return &t.rtcpDstRaw
}

// Quality returns the stream's reception quality in both directions.
func (s *Stream) Quality() Quality {
	s.q.mu.Lock()
	defer s.q.mu.Unlock()
	return Quality{Outbound: s.q.out, Inbound: s.q.in.quality()}
}
