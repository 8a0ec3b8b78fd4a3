package dtmf

import "time"

// RepressGap is how long after the last packet of an event a packet with
// the same SSRC, RTP timestamp and code must arrive to count as a new key
// press instead of a late or duplicated packet of the old one.
//
// Why it exists: sipp plays digits from fixed captures, so pressing the
// same key twice replays byte-identical packets (same SSRC, timestamp,
// sequence numbers and durations); only arrival time tells the two presses
// apart. Real phones send an event's packets every 20-50 ms and its end
// packets back to back, so 100 ms of silence on one event means a new press,
// while reordering or jitter within one event stays well below it.
const RepressGap = 100 * time.Millisecond

// Decoder turns a stream's RFC 4733 telephone-event payloads into key
// presses. The zero value is ready to use. A Decoder belongs to one RTP
// stream (one call leg) and is not safe for concurrent use.
//
// Events are told apart by (SSRC, RTP timestamp, event code), never by
// sequence number: sipp's per-digit captures carry fixed sequence numbers,
// so a PIN played digit by digit can run backwards in sequence. The
// decoder therefore sits outside the audio jitter buffer's late-packet
// rules.
//
// State is the current event plus the one before it, so a late packet of
// the previous key that arrives after the next key has begun is still
// recognised as old instead of being counted again. Nothing older is kept:
// a stale key cannot block anything.
type Decoder struct {
	cur, prev track
}

// track is what the decoder remembers about one event.
type track struct {
	valid  bool
	ended  bool   // an end packet was seen since the last press was reported
	code   uint8  // event code (0-15)
	maxDur uint16 // largest duration seen since the last press was reported
	ssrc   uint32
	ts     uint32    // RTP timestamp: the event's start, fixed for all its packets
	last   time.Time // arrival of the latest packet of this event
}

func (t *track) is(ssrc, ts uint32, code uint8) bool {
	return t.valid && t.ssrc == ssrc && t.ts == ts && t.code == code
}

// Feed takes the payload of one telephone-event RTP packet (the caller has
// already matched the payload type negotiated for telephone-event, 101 for
// most phones and 96 for linphone) with the packet's SSRC and RTP
// timestamp and its arrival time. It returns the digit when this packet
// begins a key press, so a digit is reported once per press, at the first
// packet that reaches us (lowest latency; an event whose start packets were
// all lost is reported at its first end packet).
//
// Payloads shorter than 4 bytes and events that are not digits (hook flash
// and the rest of the registry) are ignored and leave the state untouched.
// Only the first event of a multi-event payload is looked at.
//
// A packet continues the current press when it carries the same SSRC,
// timestamp and code, unless it is a non-end packet arriving more than
// RepressGap after the event's last packet and either the event has ended
// or its duration did not grow past the largest seen (a replayed capture:
// a continuing press after a loss gap reports a larger duration). A packet with the same code
// whose timestamp falls inside the span the current, unended event has
// already covered continues it too: that is how RFC 4733 section 2.5.1.3
// splits presses longer than the 16-bit duration into segments.
//
// Feed does not allocate.
func (d *Decoder) Feed(ssrc, timestamp uint32, payload []byte, now time.Time) (digit byte, ok bool) {
	ev, ok := parseEvent(payload)
	if !ok {
		return 0, false
	}
	digit, ok = EventDigit(ev.Code)
	if !ok {
		return 0, false
	}
	switch {
	case d.cur.is(ssrc, timestamp, ev.Code):
		return digit, d.cur.update(ev, now)
	case d.prev.is(ssrc, timestamp, ev.Code):
		if !d.prev.update(ev, now) {
			return 0, false
		}
		// The earlier key was pressed again: it is now the current
		// event, the one it replaces becomes the remembered one.
		d.cur, d.prev = d.prev, d.cur
		return digit, true
	case d.continuesSegment(ssrc, timestamp, ev.Code):
		// The old segment is over; remembering it as ended means its
		// late packets are absorbed like any ended event's.
		d.cur.ended = true
		d.prev = d.cur
		d.cur = track{valid: true, ended: ev.End, code: ev.Code, maxDur: ev.Duration, ssrc: ssrc, ts: timestamp, last: now}
		return 0, false
	}
	// A new timestamp (or SSRC) is a new press even when the current
	// event's end packets never arrived.
	d.prev = d.cur
	d.cur = track{valid: true, ended: ev.End, code: ev.Code, maxDur: ev.Duration, ssrc: ssrc, ts: timestamp, last: now}
	return digit, true
}

// update applies a packet of t's own event and reports whether it starts a
// new press of the same key.
func (t *track) update(ev Event, now time.Time) bool {
	repress := !ev.End && now.Sub(t.last) > RepressGap && (t.ended || ev.Duration <= t.maxDur)
	if now.After(t.last) {
		t.last = now
	}
	if repress {
		t.ended = false
		t.maxDur = ev.Duration
		return true
	}
	if ev.End {
		t.ended = true
	}
	t.maxDur = max(t.maxDur, ev.Duration)
	return false
}

// continuesSegment reports whether an event with a new timestamp is the
// next segment of the current, still running event: same stream and code,
// starting no later than the duration the current event has reached.
func (d *Decoder) continuesSegment(ssrc, timestamp uint32, code uint8) bool {
	c := &d.cur
	if !c.valid || c.ended || c.ssrc != ssrc || c.code != code {
		return false
	}
	delta := timestamp - c.ts // modulo 2^32, as RTP timestamps wrap
	return delta != 0 && delta <= uint32(c.maxDur)
}

// Reset forgets all events, for example when the stream is re-negotiated.
func (d *Decoder) Reset() { *d = Decoder{} }
