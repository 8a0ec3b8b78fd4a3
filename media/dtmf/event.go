// Package dtmf turns keypad presses into digits and back.
//
// Key presses reach the bridge as RFC 4733 telephone-events inside the RTP
// stream (Event, Decoder, and Press for senders) or as SIP INFO requests
// (ParseInfo). Digits are the bytes '0'-'9', '*', '#' and 'A'-'D', which
// are RFC 4733 event codes 0-15.
// In-band key tones (callers who send neither) go to Detector and Filter.
package dtmf

import (
	"errors"
	"fmt"
)

// EventLen is the size of one RFC 4733 telephone-event payload.
const EventLen = 4

// MaxVolume is the largest volume the 6-bit field carries; the value is the
// power level in -dBm0, so 0 is loudest and 63 quietest.
const MaxVolume = 63

// MaxDigitCode is the highest event code that is a keypad digit ('D').
// Codes above it (16 is hook flash) are valid events but not digits.
const MaxDigitCode = 15

// digits is indexed by event code (RFC 4733 section 3.2, table 3).
const digits = "0123456789*#ABCD"

// EventCode returns the RFC 4733 event code of a keypad digit. Lower-case
// 'a'-'d' are accepted because some SIP INFO senders write them that way.
func EventCode(digit byte) (uint8, bool) {
	switch {
	case digit >= '0' && digit <= '9':
		return digit - '0', true
	case digit == '*':
		return 10, true
	case digit == '#':
		return 11, true
	case digit >= 'A' && digit <= 'D':
		return digit - 'A' + 12, true
	case digit >= 'a' && digit <= 'd':
		return digit - 'a' + 12, true
	}
	return 0, false
}

// EventDigit returns the keypad digit for an RFC 4733 event code, or false
// for codes that are not digits (flash and the rest of the registry).
func EventDigit(code uint8) (byte, bool) {
	if code > MaxDigitCode {
		return 0, false
	}
	return digits[code], true
}

var (
	// ErrShortEvent means a telephone-event payload or buffer is shorter
	// than EventLen bytes.
	ErrShortEvent = errors.New("dtmf: telephone-event shorter than 4 bytes")
	// ErrVolume means an Event's Volume does not fit the 6-bit field.
	ErrVolume = errors.New("dtmf: telephone-event volume above 63")
)

// Event is one RFC 4733 telephone-event payload (section 2.3):
//
//	 0                   1                   2                   3
//	|     event     |E|R| volume    |          duration             |
//
// Duration counts RTP timestamp units (samples at 8 kHz) since the event's
// RTP timestamp, which stays the same for every packet of one key press.
type Event struct {
	// Code is the event code; 0-15 are the keypad digits (see EventDigit).
	Code uint8
	// End is the E bit: set on the final packet(s) of the event.
	End bool
	// Volume is the power level in -dBm0 (0-63); the R bit beside it is
	// reserved, sent as zero and ignored on receipt.
	Volume uint8
	// Duration is the event's length so far in timestamp units.
	Duration uint16
}

// MarshalTo writes e's 4-byte payload to the start of b and returns the
// number of bytes written. It does not allocate, so senders can build
// packets in a reused buffer.
func (e Event) MarshalTo(b []byte) (int, error) {
	if len(b) < EventLen {
		return 0, fmt.Errorf("dtmf: marshal event into %d-byte buffer: %w", len(b), ErrShortEvent)
	}
	if e.Volume > MaxVolume {
		return 0, fmt.Errorf("dtmf: marshal event with volume %d: %w", e.Volume, ErrVolume)
	}
	b[0] = e.Code
	b[1] = e.Volume
	if e.End {
		b[1] |= 0x80
	}
	b[2] = byte(e.Duration >> 8)
	b[3] = byte(e.Duration)
	return EventLen, nil
}

// ParseEvent decodes the first telephone-event in b. RFC 4733 allows
// several events per packet (and RFC 2198 redundancy wraps older ones in
// front); the bridge only needs the current event, so bytes after the first
// four are ignored. The R bit is ignored as the RFC requires.
func ParseEvent(b []byte) (Event, error) {
	e, ok := parseEvent(b)
	if !ok {
		return Event{}, fmt.Errorf("dtmf: parse %d-byte telephone-event: %w", len(b), ErrShortEvent)
	}
	return e, nil
}

// parseEvent is ParseEvent without the error value, so the per-packet
// decoder path never allocates, even on hostile input.
func parseEvent(b []byte) (Event, bool) {
	if len(b) < EventLen {
		return Event{}, false
	}
	return Event{
		Code:     b[0],
		End:      b[1]&0x80 != 0,
		Volume:   b[1] & MaxVolume,
		Duration: uint16(b[2])<<8 | uint16(b[3]),
	}, true
}
