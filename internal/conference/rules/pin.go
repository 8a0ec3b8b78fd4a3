package rules

import (
	"time"

	"github.com/groupbridge/groupbridge/internal/group"
	"github.com/groupbridge/groupbridge/media/prompt"
)

// maxPINDigits is the longest PIN the configuration allows (config:
// facilitator_pin is 6-10 digits). Entry keeps one digit more, so an
// overlong entry stays wrong, and drops the rest.
const maxPINDigits = 10

// maxPINTries is how many wrong facilitator PINs a member may type in one
// call; after them *# is a facilitator key again for that call.
const maxPINTries = 3

// pinState is the keypad's part that keeps one member's facilitator PIN
// entry (*#): the digits while typed, overwritten as soon as they are
// handed over or the entry ends, the wrong PINs in this call, and whether
// a CheckPIN is out. Each caller has one, as they have a menu.
type pinState struct {
	pin      [maxPINDigits + 1]byte
	nPIN     int
	pinTries int  // wrong PINs in this call
	pinAsked bool // a CheckPIN is out, waiting for PINChecked
}

// clearPIN overwrites the PIN digits being typed.
func (p *pinState) clearPIN() {
	clear(p.pin[:])
	p.nPIN = 0
}

// typePIN keeps one more digit; past the longest PIN it drops the rest.
func (p *pinState) typePIN(digit byte) {
	if p.nPIN < len(p.pin) {
		p.pin[p.nPIN] = digit
		p.nPIN++
	}
}

// handOver returns a copy of the digits typed, for the engine, and
// overwrites them here; a CheckPIN is out from now on.
func (p *pinState) handOver() []byte {
	digits := make([]byte, p.nPIN)
	copy(digits, p.pin[:p.nPIN])
	p.clearPIN()
	p.pinAsked = true
	return digits
}

// answered takes in the engine's answer: false when no CheckPIN was out.
func (p *pinState) answered() bool {
	if !p.pinAsked {
		return false
	}
	p.pinAsked = false
	return true
}

// exhausted reports whether this call may try no more PINs.
func (p *pinState) exhausted() bool { return p.pinTries >= maxPINTries }

// failed counts a PIN that was not right; one that got the caller blocked
// ends the tries for the call.
func (p *pinState) failed(v PINVerdict) {
	if v == PINBlocked {
		p.pinTries = maxPINTries
		return
	}
	p.pinTries++
}

// askPIN is a member's *#: it starts facilitator PIN entry, unless no PIN
// could make them one here.
func (k *keypad) askPIN(out []Effect, c *caller, now time.Time) []Effect {
	if !k.s.cfg.HasFacilitatorPIN || c.exhausted() || c.placement == Waiting {
		return append(out, say(c.seat, true, prompt.FacilitatorOnly))
	}
	c.clearPIN()
	k.setKey(c, keyPINEntry, now.Add(k.s.cfg.MenuTimeout))
	return append(out, say(c.seat, true, prompt.EnterFacilitatorPIN))
}

// submitPIN ends PIN entry with '#': the digits go to the engine (the one
// effect that carries digits) and are overwritten here.
func (k *keypad) submitPIN(out []Effect, c *caller) []Effect {
	k.setKey(c, keyIdle, time.Time{})
	return append(out, Effect{Kind: CheckPIN, Seat: c.seat, Digits: c.handOver()})
}

// pinChecked carries out the engine's verdict on c's PIN (see Key).
func (k *keypad) pinChecked(out []Effect, c *caller, v PINVerdict, now time.Time) []Effect {
	s := k.s
	if v != PINRight {
		c.failed(v)
		return append(out, say(c.seat, true, prompt.PINWrong))
	}
	if c.role == group.Facilitator { // made one meanwhile
		return out
	}
	out, err := actions[ActMakeFacilitator].do(s, out, c, byKeypad, now)
	if err != nil { // moved to waiting meanwhile
		return append(out, say(c.seat, true, prompt.Cancelled))
	}
	return s.seats.sayFacilitators(out, c.seat, prompt.Caller, num(c.seat), prompt.IsFacilitator)
}
