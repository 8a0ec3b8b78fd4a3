//go:build linux

package rtpio

import (
	"time"

	"net/netip"
	"sync/atomic"

	"github.com/groupbridge/groupbridge/media/jitter"
)

// Stats are packet counters, either for the whole engine (Engine.Stats) or
// for one stream (embedded in StreamStats).
//
// Every datagram read from an RTP or RTCP socket counts in PacketsIn and
// BytesIn. One read from an RTP socket that is not used for audio or DTMF
// also counts in exactly one of the Dropped reasons ForeignSource,
// Probation, Malformed, UnknownPayloadType, Duplicate, Late, Direction or
// StaleEpoch (a relayed packet accepted but not sent is counted by its
// Relay's RelayStats instead); one
// read from an RTCP socket counts in exactly one of RTCP.Received,
// RTCP.Malformed and RTCP.Foreign. Dropped.SendError counts outgoing
// losses, Concealed frames played without audio.
type Stats struct {
	// PacketsIn and BytesIn count every datagram received (RTP and RTCP),
	// UDP payload bytes only.
	PacketsIn, BytesIn uint64
	// PacketsOut and BytesOut count every datagram the kernel accepted
	// (RTP and RTCP).
	PacketsOut, BytesOut uint64
	// Dropped says why packets or audio were thrown away.
	Dropped Drops
	// RTCP counts control packets.
	RTCP RTCPStats
	// Concealed counts frames ReadFrame returned that were (partly) made
	// up by loss concealment because audio was missing.
	Concealed uint64
	// Lost counts packets never received: sequence gaps in the callers'
	// streams, every payload type counted (RFC 3550 A.3). Engine-wide
	// only; per-stream figures are in Quality().Inbound.
	Lost uint64
	// MeanPlayoutDelay is the mean current jitter-buffer delay over the
	// open streams. Engine-wide only.
	MeanPlayoutDelay time.Duration
}

// RTCPStats counts RTCP datagrams.
type RTCPStats struct {
	// Received: valid compound RTCP from the latched source's address,
	// parsed and used.
	Received uint64
	// Sent: reports (SR or RR, with SDES) the kernel accepted.
	Sent uint64
	// Malformed: datagrams from the latched source's address that are not
	// valid compound RTCP (RFC 3550 A.2) or did not fit the receive
	// buffer; dropped.
	Malformed uint64
	// Foreign: datagrams from any other address, or while no source is
	// known; ignored (those from addresses not allowed at all are logged
	// as strangers', at most once a minute per stream).
	Foreign uint64
}

// Drops counts discarded packets by reason.
type Drops struct {
	// ForeignSource: RTP from an address that is not allowed (neither the
	// SDP address nor Params.Allowed: never accepted), or from another
	// allowed port or SSRC while the latched source is active.
	ForeignSource uint64
	// Probation: RTP from a new allowed source that is not (yet) latched:
	// it needs four in-sequence packets with one SSRC once the latched
	// source has gone quiet.
	Probation uint64
	// Malformed: not RTP version 2, truncated, bad padding or extension,
	// empty or oversized payload.
	Malformed uint64
	// UnknownPayloadType: neither the audio nor the telephone-event payload
	// type (comfort noise, PT 13, lands here too).
	UnknownPayloadType uint64
	// Duplicate: audio whose sequence number, or every sample, the jitter
	// buffer already held or played; on a relayed stream, any packet whose
	// sequence number was already relayed.
	Duplicate uint64
	// Late: audio that arrived after its time to be played had passed (the
	// jitter buffer raises its delay when this happens); on a relayed
	// stream, a packet too far behind the newest to tell (64 packets), or
	// one waiting in its socket when it was linked (Relay, Repoint).
	Late uint64
	// SendError: outgoing datagrams (audio frames and RTCP reports) the
	// kernel refused (a full socket buffer gives EAGAIN or ENOBUFS;
	// sending never blocks).
	SendError uint64
	// Direction: audio received while receiving is turned off.
	Direction uint64
	// SRTPAuth: SRTP or SRTCP that failed authentication (a wrong key, a
	// forged or damaged packet) or was a replay of one already accepted.
	SRTPAuth uint64
	// StaleEpoch: RTP of a relayed stream whose leg was linked at an epoch
	// below the newest its Relay knows (Relay.SetEpoch): media of a room's
	// former owner, from it or on its way to it.
	StaleEpoch uint64
}

// StreamStats are the counters of one stream and its current source.
type StreamStats struct {
	Stats
	// Latched is the source address audio is accepted from and sent to:
	// the SDP address until a NAT-ed source has been latched. It is the
	// zero value when the remote is not known yet.
	Latched netip.AddrPort
	// Playout are the jitter buffer's figures: its current and target
	// depth (CurrentDelay, TargetDelay), the jitter it measured, and its
	// counts of late, duplicate and lost packets, restarts and concealed
	// frames.
	Playout jitter.Stats
}

// add accumulates o into s.
func (s *Stats) add(o Stats) {
	s.PacketsIn += o.PacketsIn
	s.BytesIn += o.BytesIn
	s.PacketsOut += o.PacketsOut
	s.BytesOut += o.BytesOut
	d, od := &s.Dropped, &o.Dropped
	d.ForeignSource += od.ForeignSource
	d.Probation += od.Probation
	d.Malformed += od.Malformed
	d.UnknownPayloadType += od.UnknownPayloadType
	d.Duplicate += od.Duplicate
	d.Late += od.Late
	d.SendError += od.SendError
	d.Direction += od.Direction
	d.SRTPAuth += od.SRTPAuth
	d.StaleEpoch += od.StaleEpoch
	r, or := &s.RTCP, &o.RTCP
	r.Received += or.Received
	r.Sent += or.Sent
	r.Malformed += or.Malformed
	r.Foreign += or.Foreign
	s.Concealed += o.Concealed
}

// drop names a Drops counter without a string or a map on the hot path.
type drop uint8

const (
	dropNone drop = iota
	dropForeignSource
	dropProbation
	dropMalformed
	dropUnknownPayloadType
	dropDuplicate
	dropLate
	dropSendError
	dropDirection
	dropSRTPAuth
	dropStaleEpoch
	numDrops
)

// rtcpCount names an RTCPStats counter.
type rtcpCount uint8

const (
	rtcpReceived rtcpCount = iota
	rtcpSent
	rtcpMalformed
	rtcpForeign
	numRTCPCounts
)

// counters is the live, atomically updated form of Stats. Each stream has
// one and each poller has one that sums its streams; a stream's receive
// side is served by a single poller, so those counters see no contention.
type counters struct {
	packetsIn, bytesIn   atomic.Uint64
	packetsOut, bytesOut atomic.Uint64
	drops                [numDrops]atomic.Uint64
	rtcp                 [numRTCPCounts]atomic.Uint64
	concealed            atomic.Uint64
}

// snapshot reads c into a Stats.
func (c *counters) snapshot() Stats {
	d := func(k drop) uint64 { return c.drops[k].Load() }
	return Stats{
		PacketsIn:  c.packetsIn.Load(),
		BytesIn:    c.bytesIn.Load(),
		PacketsOut: c.packetsOut.Load(),
		BytesOut:   c.bytesOut.Load(),
		Dropped: Drops{
			ForeignSource:      d(dropForeignSource),
			Probation:          d(dropProbation),
			Malformed:          d(dropMalformed),
			UnknownPayloadType: d(dropUnknownPayloadType),
			Duplicate:          d(dropDuplicate),
			Late:               d(dropLate),
			SendError:          d(dropSendError),
			Direction:          d(dropDirection),
			SRTPAuth:           d(dropSRTPAuth),
			StaleEpoch:         d(dropStaleEpoch),
		},
		RTCP: RTCPStats{
			Received:  c.rtcp[rtcpReceived].Load(),
			Sent:      c.rtcp[rtcpSent].Load(),
			Malformed: c.rtcp[rtcpMalformed].Load(),
			Foreign:   c.rtcp[rtcpForeign].Load(),
		},
		Concealed: c.concealed.Load(),
	}
}

// tally is a stream's live figures: its own counters, the sum of its
// poller's streams that every count also goes to, and the time of the
// caller's last sign of life (see Stream.LastActivity).
type tally struct {
	own  counters
	sum  *counters // the poller's; set by newStream
	last atomic.Int64
}

// drop adds one to a drop counter.
func (t *tally) drop(d drop) {
	t.own.drops[d].Add(1)
	t.sum.drops[d].Add(1)
}

// rtcp adds one to an RTCP counter.
func (t *tally) rtcp(k rtcpCount) {
	t.own.rtcp[k].Add(1)
	t.sum.rtcp[k].Add(1)
}

// out records one sent datagram of n bytes.
func (t *tally) out(n int) {
	t.own.packetsOut.Add(1)
	t.own.bytesOut.Add(uint64(n))
	t.sum.packetsOut.Add(1)
	t.sum.bytesOut.Add(uint64(n))
}

// in records one received datagram of n bytes.
func (t *tally) in(n int) {
	t.own.packetsIn.Add(1)
	t.own.bytesIn.Add(uint64(n))
	t.sum.packetsIn.Add(1)
	t.sum.bytesIn.Add(uint64(n))
}

// inOwn and outOwn record a packet carried in a bundle on the stream it
// belongs to only: the poller's sum counts datagrams, and the bundle's
// is counted on the bundle port.
func (t *tally) inOwn(n int) {
	t.own.packetsIn.Add(1)
	t.own.bytesIn.Add(uint64(n))
}

func (t *tally) outOwn(n int) {
	t.own.packetsOut.Add(1)
	t.own.bytesOut.Add(uint64(n))
}

// concealed records one frame of loss concealment.
func (t *tally) concealed() {
	t.own.concealed.Add(1)
	t.sum.concealed.Add(1)
}

// touch records caller activity at now.
func (t *tally) touch(now time.Time) {
	t.last.Store(now.UnixNano())
}
