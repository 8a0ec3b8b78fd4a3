package softphone

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/groupbridge/groupbridge/media/dtmf"
	"github.com/groupbridge/groupbridge/media/pcm"
	"github.com/groupbridge/groupbridge/media/tone"
)

// DigitMode is how SendDigits carries key presses.
type DigitMode int

const (
	// DigitRFC4733 sends telephone-events in the RTP stream with the payload
	// type of the bridge's answer: per key a first packet of duration 0 with
	// the marker bit, updates every 20 ms, then three end packets, all with
	// the press's start timestamp and each with its own sequence number.
	// Audio pauses during a press and resumes in the gap between keys.
	DigitRFC4733 DigitMode = iota
	// DigitInfoRelay sends one SIP INFO per key with an application/dtmf-relay
	// body ("Signal=5\r\nDuration=100\r\n"), as Cisco and linphone do.
	DigitInfoRelay
	// DigitInfo sends one SIP INFO per key with an application/dtmf body ("5").
	DigitInfo
	// DigitInband plays each key as its dual tone in the audio (for peers that
	// signal nothing), replacing the audio during the press.
	DigitInband
)

func (m DigitMode) String() string {
	switch m {
	case DigitRFC4733:
		return "rfc4733"
	case DigitInfoRelay:
		return "info-dtmf-relay"
	case DigitInfo:
		return "info-dtmf"
	case DigitInband:
		return "inband"
	}
	return "DigitMode(" + strconv.Itoa(int(m)) + ")"
}

// ErrNoTelephoneEvent is returned by SendDigits in DigitRFC4733 mode when the
// bridge's answer accepted no telephone-event payload type.
var ErrNoTelephoneEvent = errors.New("softphone: answer has no telephone-event")

// dtmfRows and dtmfCols are the ITU-T Q.23 frequencies; digits index them
// by their RFC 4733 event code.
var (
	dtmfRows = [4]float64{697, 770, 852, 941}
	dtmfCols = [4]float64{1209, 1336, 1477, 1633}
	// keypad position (row, column) of event codes 0-15: 0-9, *, #, A-D.
	dtmfPos = [16][2]uint8{
		{3, 1}, {0, 0}, {0, 1}, {0, 2}, {1, 0}, {1, 1}, {1, 2}, {2, 0}, {2, 1}, {2, 2},
		{3, 0}, {3, 2}, {0, 3}, {1, 3}, {2, 3}, {3, 3},
	}
)

// SendDigits presses the keys in digits ('0'-'9', '*', '#', 'A'-'D'), each
// held Config.DigitDuration with Config.DigitGap between them, and returns
// when the last one has been sent (INFO: answered with 2xx). Cancelling ctx
// stops after the key under way has been released properly. A non-2xx
// answer to an INFO is returned as a *StatusError.
func (p *Phone) SendDigits(ctx context.Context, digits string, mode DigitMode) error {
	codes := make([]uint8, len(digits))
	for i := range len(digits) {
		c, ok := dtmf.EventCode(digits[i])
		if !ok {
			return fmt.Errorf("softphone: %q is not a keypad digit", digits[i])
		}
		codes[i] = c
	}
	select {
	case <-p.done:
		return ErrEnded
	default:
	}
	if len(codes) == 0 {
		return nil
	}
	p.digitMu.Lock()
	defer p.digitMu.Unlock()
	switch mode {
	case DigitRFC4733, DigitInband:
		return p.playDigits(ctx, codes, mode)
	case DigitInfoRelay, DigitInfo:
		return p.infoDigits(ctx, digits, mode)
	}
	return fmt.Errorf("softphone: unknown digit mode %d", int(mode))
}

// playDigits hands a digit plan to the RTP sender and waits for it.
func (p *Phone) playDigits(ctx context.Context, codes []uint8, mode DigitMode) error {
	if mode == DigitRFC4733 && p.stream.mediaParams().eventPT < 0 {
		return ErrNoTelephoneEvent
	}
	plan := newDigitPlan(codes, mode, frameTicks(p.cfg.DigitDuration), frameTicks(p.cfg.DigitGap))
	done, err := p.stream.play(plan)
	if err != nil {
		return err
	}
	select {
	case <-done:
	case <-ctx.Done():
		p.stream.cancelPlan(plan)
		<-done
		return fmt.Errorf("softphone: digits: %w", ctx.Err())
	}
	select {
	case <-p.done:
		return ErrEnded
	default:
		return nil
	}
}

// newDigitPlan prepares the presses of codes for the sender: each held
// pressTicks frames, with gapTicks frames of ordinary audio between them.
func newDigitPlan(codes []uint8, mode DigitMode, pressTicks, gapTicks int) *digitPlan {
	plan := &digitPlan{mode: mode, pressTicks: pressTicks, gapTicks: gapTicks, done: make(chan struct{})}
	if mode == DigitRFC4733 {
		dur := uint16(pressTicks * pcm.FrameSamples)
		for _, c := range codes {
			plan.presses = append(plan.presses, dtmf.Press(c, dur, dtmf.DefaultStep))
		}
		return plan
	}
	for _, c := range codes {
		pos := dtmfPos[c]
		plan.tones = append(plan.tones, [2]*tone.Sine{
			tone.NewSine(dtmfRows[pos[0]], inbandDBFS),
			tone.NewSine(dtmfCols[pos[1]], inbandDBFS),
		})
	}
	return plan
}

// infoBody returns the Content-Type and body of one INFO key press.
func infoBody(digit byte, mode DigitMode, d time.Duration) (string, []byte) {
	if mode == DigitInfo {
		return "application/dtmf", []byte{digit}
	}
	return "application/dtmf-relay",
		[]byte("Signal=" + string(digit) + "\r\nDuration=" + strconv.Itoa(int(d.Milliseconds())) + "\r\n")
}

// infoDigits sends one INFO per key, each after the previous one's 2xx,
// paced like key presses.
func (p *Phone) infoDigits(ctx context.Context, digits string, mode DigitMode) error {
	step := p.cfg.DigitDuration + p.cfg.DigitGap
	start := time.Now()
	for i := range len(digits) {
		if i > 0 {
			t := time.NewTimer(time.Until(start.Add(time.Duration(i) * step)))
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return fmt.Errorf("softphone: digits: %w", ctx.Err())
			case <-p.done:
				t.Stop()
				return ErrEnded
			}
		}
		ct, body := infoBody(digits[i], mode, p.cfg.DigitDuration)
		if err := p.info(ctx, ct, body); err != nil {
			return err
		}
	}
	return nil
}

// info sends one in-dialog INFO and waits for its final answer.
func (p *Phone) info(ctx context.Context, contentType string, body []byte) error {
	p.sipMu.Lock()
	defer p.sipMu.Unlock()
	select {
	case <-p.done:
		return ErrEnded
	default:
	}
	res, err := p.sess.Do(ctx, p.inDialog(sip.INFO, contentType, body))
	if err != nil {
		return fmt.Errorf("softphone: INFO: %w", err)
	}
	if !res.IsSuccess() {
		return &StatusError{Method: "INFO", StatusCode: res.StatusCode, Reason: res.Reason}
	}
	return nil
}
