package dialog

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/groupbridge/groupbridge/internal/sipua/sipmsg"
	"github.com/groupbridge/groupbridge/internal/wallclock"
	"github.com/groupbridge/groupbridge/media/dtmf"
)

// DigitMode is how SendDigits carries key presses.
type DigitMode int

const (
	// DigitRFC4733 sends telephone-events in the call's RTP stream.
	DigitRFC4733 DigitMode = iota
	// DigitInfo sends one SIP INFO (application/dtmf-relay) a key.
	DigitInfo
)

// ErrNoTelephoneEvent is returned by SendDigits in DigitRFC4733 mode when
// the peer's SDP has no telephone-event.
var ErrNoTelephoneEvent = errors.New("dialog: the peer takes no telephone-event")

// Key press timing: 100 ms a key, 100 ms between keys, as a phone does.
const (
	pressSamples = 800
	pressGap     = 100 * time.Millisecond
	eventStep    = time.Duration(dtmf.DefaultStep) * time.Second / 8000
)

// SendDigits presses the keys of digits ('0'-'9', '*', '#', 'A'-'D') in
// the call, one after another, in the given mode. An INFO waits for its
// 2xx; any other answer stops the keys with an *AnswerError.
func (c *Call) SendDigits(ctx context.Context, digits string, mode DigitMode) error {
	u := uac{c.layer}
	for i := 0; i < len(digits); i++ {
		code, ok := dtmf.EventCode(digits[i])
		if !ok {
			return fmt.Errorf("dialog: %q is not a key", digits[i])
		}
		var err error
		if mode == DigitInfo {
			err = u.sendInfoDigit(ctx, c, digits[i])
		} else {
			err = u.sendEventDigit(ctx, c, code)
		}
		if err != nil {
			return err
		}
		if err := sleep(ctx, u.d.cfg.Clock, pressGap); err != nil {
			return err
		}
	}
	return nil
}

// sendEventDigit sends one press as RFC 4733 telephone-events: updates
// every 20 ms, then the three end packets back to back.
func (u uac) sendEventDigit(ctx context.Context, c *Call, code uint8) error {
	c.mu.Lock()
	pt := c.media.DTMFPT
	c.mu.Unlock()
	if pt < 0 {
		return ErrNoTelephoneEvent
	}
	for i, ev := range dtmf.Press(code, pressSamples, dtmf.DefaultStep) {
		if err := c.stream.WriteEvent(uint8(pt), ev, i == 0); err != nil {
			return fmt.Errorf("dialog: key press: %w", err)
		}
		if !ev.End {
			if err := sleep(ctx, u.d.cfg.Clock, eventStep); err != nil {
				return err
			}
		}
	}
	return nil
}

// sendInfoDigit sends one press as an INFO and waits for its answer.
func (u uac) sendInfoDigit(ctx context.Context, c *Call, digit byte) error {
	d := u.d
	req := d.inDialogRequest(c, sip.INFO, c.localCSeq.Add(1))
	req.AppendHeader(sip.NewHeader("Content-Type", "application/dtmf-relay"))
	req.SetBody([]byte(fmt.Sprintf("Signal=%c\r\nDuration=%d\r\n", digit, pressSamples/8)))
	ctx, cancel := context.WithTimeout(ctx, 64*sipmsg.T1)
	defer cancel()
	res, err := d.RoundTrip(ctx, req)
	if err != nil {
		return fmt.Errorf("dialog: key press: %w", err)
	}
	if !res.IsSuccess() {
		return &AnswerError{Code: res.StatusCode, Reason: res.Reason}
	}
	return nil
}

// sleep waits d on clk, or less if ctx ends first.
func sleep(ctx context.Context, clk wallclock.Clock, d time.Duration) error {
	t := clk.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C():
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
