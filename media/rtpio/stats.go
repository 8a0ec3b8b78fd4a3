package rtpio

import (
	"net/netip"
	"sync/atomic"
)

// Stats are packet counters, either for the whole engine (Engine.Stats) or
// for one stream (embedded in StreamStats).
//
// Every datagram read from an RTP or RTCP socket counts in PacketsIn and
// BytesIn; one that is not used for audio or DTMF also counts in exactly
// one of the Dropped reasons ForeignSource, Probation, Malformed,
// UnknownPayloadType, Duplicate, Direction or RTCP. Dropped.Overflow and
// Dropped.SendError count other losses (see Drops).
type Stats struct {
	// PacketsIn and BytesIn count every datagram received (RTP and RTCP),
	// UDP payload bytes only.
	PacketsIn, BytesIn uint64
	// PacketsOut and BytesOut count every datagram the kernel accepted.
	PacketsOut, BytesOut uint64
	// Dropped says why packets or audio were thrown away.
	Dropped Drops
}

// Drops counts discarded packets by reason.
type Drops struct {
	// ForeignSource: RTP from an address other than the latched source
	// while that source is active (sent within the last second).
	ForeignSource uint64
	// Probation: RTP from a new source that is not (yet) latched: it needs
	// four in-sequence packets with one SSRC after the latched source has
	// been silent for a second.
	Probation uint64
	// Malformed: not RTP version 2, truncated, bad padding or extension,
	// empty or oversized payload.
	Malformed uint64
	// UnknownPayloadType: neither the audio nor the telephone-event payload
	// type (comfort noise, PT 13, lands here too).
	UnknownPayloadType uint64
	// Duplicate: audio whose sequence number is not newer than the newest
	// already buffered (a duplicate, or too late to be played in order).
	Duplicate uint64
	// Overflow: arrivals that pushed older buffered audio out to keep the
	// receive latency bounded at 120 ms; the packet itself was used (of a
	// packet longer than that, its newest 120 ms).
	Overflow uint64
	// SendError: outgoing frames the kernel refused (a full socket buffer
	// gives EAGAIN or ENOBUFS; sending never blocks).
	SendError uint64
	// Direction: audio received while receiving is turned off.
	Direction uint64
	// RTCP: RTCP packets received; they are counted but not yet parsed.
	RTCP uint64
}

// StreamStats are the counters of one stream and its current source.
type StreamStats struct {
	Stats
	// Latched is the source address audio is accepted from and sent to:
	// the SDP address until a NAT-ed source has been latched. It is the
	// zero value when the remote is not known yet.
	Latched netip.AddrPort
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
	d.Overflow += od.Overflow
	d.SendError += od.SendError
	d.Direction += od.Direction
	d.RTCP += od.RTCP
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
	dropOverflow
	dropSendError
	dropDirection
	dropRTCP
	numDrops
)

// counters is the live, atomically updated form of Stats. Each stream has
// one and each poller has one that sums its streams; a stream's receive
// side is served by a single poller, so those counters see no contention.
type counters struct {
	packetsIn, bytesIn   atomic.Uint64
	packetsOut, bytesOut atomic.Uint64
	drops                [numDrops]atomic.Uint64
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
			Overflow:           d(dropOverflow),
			SendError:          d(dropSendError),
			Direction:          d(dropDirection),
			RTCP:               d(dropRTCP),
		},
	}
}
