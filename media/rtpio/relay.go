//go:build linux

package rtpio

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/pion/rtp"
	"golang.org/x/sys/unix"

	"github.com/groupbridge/groupbridge/media/dtmf"
	"github.com/groupbridge/groupbridge/media/g711"
	"github.com/groupbridge/groupbridge/media/jitter"
	"github.com/groupbridge/groupbridge/media/pcm"
)

// ErrRelayStopped is returned by Relay.Repoint after Relay.Stop.
var ErrRelayStopped = errors.New("rtpio: relay stopped")

// Relay joins a caller's stream to an internal leg's stream (a call to the
// room's owner node): every RTP packet one of them accepts is sent out of
// the other as it arrives, on the poller goroutine that received it, with
// no jitter buffer, decoding or mixing, so the hop adds microseconds
// (docs/DECISIONS.md, D24).
//
// A packet is forwarded after everything a stream checks today (SRTP,
// latching and probation, payload type, duplicates), its payload
// unchanged. It leaves with the sending stream's SSRC and SRTP context,
// its sequence number and timestamp shifted into the sending stream's by
// offsets, fixed at a source's first packet and again after a source
// restart, a Repoint or a packet the stream sent of its own, so that what
// each stream sends stays continuous.
// Telephone-events go out under the sending stream's telephone-event type
// (dropped when it has none) and are not reported to OnDigit: the owner
// decodes them. RTCP stays per stream: reports about what each stream
// received, and its sender reports, sent with relayed packets.
//
// A link forwards live audio only: the datagrams already waiting in a
// stream's socket when it is linked (Relay, Repoint) are discarded, so a
// node that resumes after a stall does not send the owner seconds of
// stale audio in a burst.
//
// While relayed a stream plays nothing (ReadFrame returns false). Its
// WriteFrame still sends, continuing the same sequence, so the relay node
// can play a prompt to the caller while no leg sends (a failover gap);
// while the other side sends, writing would put two audio streams under
// one SSRC.
//
// Lock order: Engine.relayMu, then one stream's rx.mu (never two), then
// its play.mu, or the tx.mu of it or of its relay partner (never two),
// then q.mu. Two pollers relaying in opposite directions at once each hold
// one rx.mu and wait only for a tx.mu, which nobody holds while waiting
// for anything but q.mu, so they cannot deadlock.
type Relay struct {
	e     *Engine
	epoch atomic.Int64
	n     [numRelayCounts]atomic.Uint64

	// caller, leg and stopped are guarded by e.relayMu.
	caller, leg *Stream
	stopped     bool
}

// RelayStats counts what a Relay did, since Engine.Relay.
type RelayStats struct {
	// ToLeg and ToCaller count packets (audio and telephone-events) the
	// kernel accepted, each way.
	ToLeg, ToCaller uint64
	// Unsent counts packets accepted but not sent: the other stream is
	// closed, not sending, has no address yet, was re-negotiated to
	// another codec, or the kernel refused the packet (also counted as
	// that stream's SendError).
	Unsent uint64
	// EventsDropped counts telephone-events not sent because the other
	// stream negotiated no telephone-event.
	EventsDropped uint64
	// StaleEpoch counts packets dropped, either way, because the leg was
	// linked at an epoch below the relay's (SetEpoch); they are also the
	// receiving stream's Dropped.StaleEpoch.
	StaleEpoch uint64
}

// relayCount names a RelayStats counter.
type relayCount uint8

const (
	relayToLeg relayCount = iota
	relayToCaller
	relayUnsent
	relayEventsDropped
	relayStale
	numRelayCounts
)

// relayLink is one direction of a relay, held by the receiving stream
// (rx.link) and used under its rx.mu by the poller that serves it. A new
// link is made for each Relay and Repoint, so it starts unsynchronised.
type relayLink struct {
	r     *Relay
	to    *Stream // the stream packets leave from
	epoch int64   // the leg's epoch
	toLeg bool

	// The source's stream, for dropping duplicates: its SSRC, the highest
	// sequence number seen and a bitmap of the relayWindow below it.
	known bool
	ssrc  uint32
	high  uint16
	seen  uint64

	// The mapping into to's sequence and timestamp, valid while synced
	// and while to's sequence number is still lastSeq (the stream sent
	// nothing of its own since). lastDur is the duration of the last
	// audio relayed, in samples.
	synced  bool
	seqOff  uint16
	tsOff   uint32
	lastSeq uint16
	lastDur uint32
}

const (
	// relayWindow is how far behind the newest packet a source's packet
	// may arrive and still be relayed once (1.28 s of 20 ms packets).
	relayWindow = 64
	// relayMaxJump is the sequence jump, either way, taken for a source
	// that restarted (a replayed capture, a reset endpoint) rather than
	// for loss or reordering: the mapping is then set again.
	relayMaxJump = maxSeqAhead
)

// Relay links caller and leg, two open streams of this engine with the same
// codec that are in no other relay, and returns the Relay; epoch is the
// room's epoch the leg was dialled at. From then on both streams relay
// instead of playing.
func (e *Engine) Relay(caller, leg *Stream, epoch int64) (*Relay, error) {
	e.relayMu.Lock()
	defer e.relayMu.Unlock()
	if err := e.relayable(caller, "caller"); err != nil {
		return nil, err
	}
	if err := e.relayable(leg, "leg"); err != nil {
		return nil, err
	}
	if caller == leg {
		return nil, errors.New("rtpio: relay: the caller and the leg are the same stream")
	}
	if err := sameCodec(caller, leg); err != nil {
		return nil, err
	}
	r := &Relay{e: e, caller: caller, leg: leg}
	r.epoch.Store(epoch)
	caller.relay, leg.relay = r, r
	r.attach(leg, caller, epoch, false)
	r.attach(caller, leg, epoch, true)
	return r, nil
}

// relayable checks that s can join a relay. The caller holds e.relayMu.
func (e *Engine) relayable(s *Stream, role string) error {
	switch {
	case s == nil:
		return fmt.Errorf("rtpio: relay: no %s stream", role)
	case s.e != e:
		return fmt.Errorf("rtpio: relay: the %s stream (port %d) belongs to another engine", role, s.port)
	case s.relay != nil:
		return fmt.Errorf("rtpio: relay: the %s stream (port %d) is already relayed", role, s.port)
	}
	s.rx.mu.Lock()
	closed := s.rx.closed
	s.rx.mu.Unlock()
	if closed {
		return fmt.Errorf("rtpio: relay: the %s stream (port %d) is closed", role, s.port)
	}
	return nil
}

// sameCodec refuses streams of different codecs: payloads pass unchanged.
func sameCodec(a, b *Stream) error {
	ca, cb := a.codec(), b.codec()
	if ca != cb {
		return fmt.Errorf("rtpio: relay: the caller's codec %v is not the leg's %v", ca, cb)
	}
	return nil
}

// codec is the stream's negotiated codec.
func (s *Stream) codec() g711.Codec {
	s.rx.mu.Lock()
	defer s.rx.mu.Unlock()
	return s.rx.codec
}

// attach makes from relay to to. Its jitter buffer and in-band key filter
// start again empty, so that nothing from before plays when the relay
// ends, and what waits in its socket is discarded (flush). The caller
// holds e.relayMu.
func (r *Relay) attach(from, to *Stream, epoch int64, toLeg bool) {
	l := &relayLink{r: r, to: to, epoch: epoch, toLeg: toLeg}
	from.rx.mu.Lock()
	defer from.rx.mu.Unlock()
	from.flush()
	from.rx.link = l
	pl := &from.play
	pl.mu.Lock()
	defer pl.mu.Unlock()
	pl.relayed = true
	pl.buf.Reset()
	if pl.filter != nil {
		pl.filter = dtmf.NewFilter(inbandDelay)
		for i := range pl.kinds {
			pl.kinds[i] = jitter.Silence
		}
		pl.n = 0
	}
}

// flushLimit bounds the datagrams flush reads: a kernel queue holds a few
// hundred, and a port sprayed at line rate must not hold a Relay call.
const flushLimit = 2048

// flush discards the RTP datagrams queued on s's socket, counted as Late.
// They came while nothing relayed them, for the room of frame mode: after
// a stall of this node (a paused process, a starved CPU) seconds of them
// wait there, which the poller reads a packet a look. Relayed, they would
// reach the owner as a burst of stale audio that its jitter buffer can
// only cut in jumps and then time-scale away over seconds, the caller's
// voice pitch-shifted meanwhile. The caller holds s.rx.mu.
func (s *Stream) flush() {
	if s.rx.closed {
		return
	}
	var b [rtpHeaderLen]byte // only the lengths are counted
	var rsa unix.RawSockaddrAny
	var salen uint32
	for range flushLimit {
		n, errno := recvfrom(s.fd, b[:], &rsa, &salen)
		if errno == unix.EAGAIN {
			return
		}
		if errno != 0 {
			continue // EINTR, or a pending socket error this read consumed
		}
		s.c.in(n)
		s.c.drop(dropLate)
	}
}

// detach returns s to frame mode. The caller holds e.relayMu.
func detach(s *Stream) {
	s.relay = nil
	s.rx.mu.Lock()
	defer s.rx.mu.Unlock()
	s.rx.link = nil
	s.play.mu.Lock()
	s.play.relayed = false
	s.play.mu.Unlock()
}

// Repoint moves the relay to a new leg (a new owner after a failover),
// linked at epoch, which may not be below the relay's. The caller stream
// keeps its SSRC and sequence, and its timestamps go on from where they
// were by the time that passed, fixed at the new leg's first packet. The
// old leg returns to frame mode; the caller of Repoint closes it.
func (r *Relay) Repoint(leg *Stream, epoch int64) error {
	e := r.e
	e.relayMu.Lock()
	defer e.relayMu.Unlock()
	if r.stopped {
		return ErrRelayStopped
	}
	if leg == r.leg {
		return errors.New("rtpio: relay: repoint to the leg already relayed")
	}
	if err := e.relayable(leg, "leg"); err != nil {
		return err
	}
	if err := sameCodec(r.caller, leg); err != nil {
		return err
	}
	if cur := r.epoch.Load(); epoch < cur {
		return fmt.Errorf("rtpio: relay: repoint to a leg of epoch %d, below the relay's %d", epoch, cur)
	}
	detach(r.leg)
	r.leg = leg
	leg.relay = r
	r.SetEpoch(epoch)
	r.attach(leg, r.caller, epoch, false)
	r.attach(r.caller, leg, epoch, true)
	return nil
}

// SetEpoch records the room's newest epoch the relay node knows. From then
// on a leg linked at a lower epoch relays nothing either way (counted as
// StaleEpoch). Epochs never go back: a lower one is ignored.
func (r *Relay) SetEpoch(epoch int64) {
	for {
		cur := r.epoch.Load()
		if epoch <= cur || r.epoch.CompareAndSwap(cur, epoch) {
			return
		}
	}
}

// Epoch returns the relay's epoch: the highest of Engine.Relay's, Repoint's
// and SetEpoch's.
func (r *Relay) Epoch() int64 { return r.epoch.Load() }

// Stop unlinks both streams, which return to frame mode. It is idempotent
// and safe while either stream closes; a closed stream relays nothing.
func (r *Relay) Stop() {
	r.e.relayMu.Lock()
	defer r.e.relayMu.Unlock()
	if r.stopped {
		return
	}
	r.stopped = true
	detach(r.caller)
	detach(r.leg)
}

// Stats returns the relay's counters.
func (r *Relay) Stats() RelayStats {
	return RelayStats{
		ToLeg:         r.n[relayToLeg].Load(),
		ToCaller:      r.n[relayToCaller].Load(),
		Unsent:        r.n[relayUnsent].Load(),
		EventsDropped: r.n[relayEventsDropped].Load(),
		StaleEpoch:    r.n[relayStale].Load(),
	}
}

// forward relays one accepted RTP packet of s over l. The checks are the
// ones handle and audio make for a stream in frame mode; the jitter
// buffer's duplicate check is the link's own window here. The caller
// holds s.rx.mu.
func (s *Stream) forward(p *poller, l *relayLink, h *rtp.Header, payload []byte, now time.Time) {
	r := l.r
	if l.epoch < r.epoch.Load() {
		s.c.drop(dropStaleEpoch)
		r.n[relayStale].Add(1)
		return
	}
	event := false
	switch pt := h.PayloadType; {
	case s.rx.dtmfPT >= 0 && int(pt) == s.rx.dtmfPT:
		if len(payload) < dtmf.EventLen || len(payload) > maxPayload {
			s.c.drop(dropMalformed)
			return
		}
		event = true
	case pt == s.rx.audioPT:
		if len(payload) == 0 || len(payload) > maxPayload {
			s.c.drop(dropMalformed)
			return
		}
		if !s.rx.recv {
			s.c.drop(dropDirection)
			return
		}
	default:
		s.c.drop(dropUnknownPayloadType)
		return
	}
	if d := l.admit(h.SSRC, h.SequenceNumber); d != dropNone {
		s.c.drop(d)
		return
	}
	r.n[p.relaySend(l, s.rx.codec, h, event, payload, now)].Add(1)
}

// admit is the duplicate check of the source's packet seq: dropNone to
// relay it, dropDuplicate for one already relayed, dropLate for one too
// far behind to tell. A new SSRC or a jump of more than relayMaxJump
// starts the source afresh and the mapping with it.
func (l *relayLink) admit(ssrc uint32, seq uint16) drop {
	if !l.known || ssrc != l.ssrc {
		l.known, l.ssrc, l.high, l.seen, l.synced = true, ssrc, seq, 1, false
		return dropNone
	}
	switch d := int(int16(seq - l.high)); {
	case d > relayMaxJump || d < -relayMaxJump:
		l.high, l.seen, l.synced = seq, 1, false
	case d > 0:
		l.high = seq
		if d >= relayWindow {
			l.seen = 1
		} else {
			l.seen = l.seen<<d | 1
		}
	case d <= -relayWindow:
		return dropLate
	default:
		bit := uint64(1) << -d
		if l.seen&bit != 0 {
			return dropDuplicate
		}
		l.seen |= bit
	}
	return dropNone
}

// relaySend sends one packet out of l.to and returns what to count:
// relayToLeg or relayToCaller when the kernel took it, relayEventsDropped
// for a telephone-event the stream cannot send, relayUnsent otherwise. The packet is built in p.out
// and encrypted into p.dec (payload, which may lie in p.dec, is copied
// first). The caller holds the receiving stream's rx.mu; to's tx.mu is
// taken here, released by a deferred call so that a panic (which the
// poller recovers from) cannot leave it held.
func (p *poller) relaySend(l *relayLink, codec g711.Codec, h *rtp.Header, event bool, payload []byte, now time.Time) relayCount {
	to := l.to
	t := &to.tx
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed || !t.send || !t.dst.valid() || t.codec != codec {
		return relayUnsent
	}
	pt := t.hdr.PayloadType
	if event {
		if t.dtmfPT < 0 {
			return relayEventsDropped
		}
		pt = uint8(t.dtmfPT)
	}
	marker := h.Marker
	if !l.synced || t.hdr.SequenceNumber != l.lastSeq {
		// Go on from what the stream sent last, by the time since.
		seq, ts := t.hdr.SequenceNumber, t.hdr.Timestamp
		if !t.started {
			marker = marker || !event
		} else {
			gap := now.Sub(t.lastSend)
			adv := uint32(max(gap, 0) / (time.Second / pcm.SampleRate))
			dur := uint32(pcm.FrameSamples) // WriteFrame's, or unknown
			if l.lastDur > 0 && t.hdr.SequenceNumber == l.lastSeq {
				dur = l.lastDur // this link sent last
			}
			seq++
			ts += max(adv, dur)
			marker = marker || !event && gap > markerGap
		}
		l.seqOff, l.tsOff, l.synced = seq-h.SequenceNumber, ts-h.Timestamp, true
	}
	seq, ts := h.SequenceNumber+l.seqOff, h.Timestamp+l.tsOff
	if !t.started || int16(seq-t.hdr.SequenceNumber) > 0 {
		t.hdr.SequenceNumber = seq
	}
	if !t.started || int32(ts-t.hdr.Timestamp) > 0 {
		t.hdr.Timestamp = ts
	}
	t.started = true
	t.lastSend = now
	l.lastSeq = t.hdr.SequenceNumber
	if !event {
		l.lastDur = uint32(len(payload))
	}

	b := p.out[:]
	b[0] = 0x80 // version 2, no padding, extension or CSRC
	b[1] = pt
	if marker {
		b[1] |= 0x80
	}
	binary.BigEndian.PutUint16(b[2:], seq)
	binary.BigEndian.PutUint32(b[4:], ts)
	binary.BigEndian.PutUint32(b[8:], t.hdr.SSRC)
	n := rtpHeaderLen + copy(b[rtpHeaderLen:], payload)
	out := b[:n]
	if t.srtp != nil {
		var err error
		if out, err = t.srtp.EncryptRTP(p.dec[:], out, &p.hdr); err != nil {
			to.c.drop(dropSendError)
			return relayUnsent
		}
	}
	if sendto(to.fd, out, &t.dst) != 0 {
		to.c.drop(dropSendError)
		return relayUnsent
	}
	t.sentRTP(len(payload))
	to.c.out(len(out))
	if !now.Before(t.nextRTCP) {
		to.rtcpDue(now)
	}
	if l.toLeg {
		return relayToLeg
	}
	return relayToCaller
}
