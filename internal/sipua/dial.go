package sipua

import (
	"context"
	"fmt"
	"strings"

	"github.com/emiago/sipgo/sip"
	"github.com/groupbridge/groupbridge/internal/logging"
	"github.com/groupbridge/groupbridge/internal/sipua/dialog"
)

// Placing a call: the UAC side of the dialog layer (package dialog), from
// one of the server's listening sockets. It knows nothing of PINs, groups
// or policy; whoever dials decides what the call is for.

// The dialog layer's names for placing calls and pressing keys, as the
// server's users see them.
type (
	// DialOptions are how a call is placed (dialog.DialOptions).
	DialOptions = dialog.DialOptions
	// AnswerError is a final answer other than 2xx to a call we placed
	// or to a key press sent as INFO.
	AnswerError = dialog.AnswerError
	// DigitMode is how Call.SendDigits carries key presses.
	DigitMode = dialog.DigitMode
	// Header is one header line DialOptions.Sign adds to the INVITE.
	Header = dialog.Header
)

// Key press modes, ring timeout and the errors of placed calls.
const (
	DigitRFC4733       = dialog.DigitRFC4733
	DigitInfo          = dialog.DigitInfo
	DefaultRingTimeout = dialog.DefaultRingTimeout
)

var (
	// ErrRingTimeout: nobody answered within DialOptions.RingTimeout.
	ErrRingTimeout = dialog.ErrRingTimeout
	// ErrNoTelephoneEvent: SendDigits in DigitRFC4733 mode to a peer
	// whose SDP has no telephone-event.
	ErrNoTelephoneEvent = dialog.ErrNoTelephoneEvent
)

// Dial places a call to target, a sip: URI whose host is an IP address
// ("sip:room@192.0.2.7:5060"), from the server's listener of
// opts.Transport, and returns it once answered and ACKed. This is the
// one way groupbridge calls out (another node, a test's callee); the
// dialog layer does the work (dialog.Layer.Dial). The call is not given
// to the Handler: the caller of Dial owns it, ends it with Hangup and
// learns of the callee's BYE from its Context; its media is released when
// it ends.
//
// Until the answer, cancelling ctx (or the ring timeout) CANCELs the
// INVITE: the error then wraps ctx's error (or ErrRingTimeout) and the
// callee's final answer, normally 487; a callee that has not answered at
// all (a dead node) costs no more than ctx: Dial returns at once and the
// INVITE is seen to in the background. A final answer of 3xx to 6xx gives
// an *AnswerError.
func (s *Server) Dial(ctx context.Context, target string, opts DialOptions) (*Call, error) {
	var uri sip.Uri
	if err := sip.ParseUri(target, &uri); err != nil {
		return nil, fmt.Errorf("sipua: dial %q: %w", target, err)
	}
	transport := strings.ToLower(opts.Transport)
	if transport == "" {
		transport = "udp"
	}
	dst, err := dialog.DialDestination(uri, transport)
	if err != nil {
		return nil, err
	}
	local, err := s.socks.localFor(transport, dst.Addr())
	if err != nil {
		return nil, fmt.Errorf("sipua: dial: %w", err)
	}
	c := &Call{label: logging.MaskCaller(dialog.DialedNumber(&uri))}
	// c.Call is set by bind, before the dialog is in the table: the
	// callee's BYE may reach the peer screen before Dial returns.
	bind := func(dc *dialog.Call) any { c.Call = dc; return c }
	if _, err := s.dlg.Dial(ctx, uri, transport, dst, dialog.Socket{Host: local.host, Port: local.port, Sock: local.sock}, opts, bind); err != nil {
		return nil, err
	}
	s.log.Info("call placed", "call", c.ID(), "callee", c.label, "transport", transport, "codec", c.Codec().String())
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		<-c.Context().Done()
		s.release(c)
		s.logEnded(c)
	}()
	return c, nil
}
