package dialog

import (
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/groupbridge/groupbridge/internal/sipua/sipmsg"
	"github.com/groupbridge/groupbridge/internal/wallclock"
)

// The wait for the ACK of a 2xx, written once for every INVITE a dialog
// answers (the first one and re-INVITEs) so the two cannot drift.

// ackEnd is why a wait for an ACK stopped.
type ackEnd int

const (
	ackReceived   ackEnd = iota // the ACK came
	ackSendFailed               // the 2xx could not be sent at all
	ackTimedOut                 // ackTimeout passed without it
	ackCallEnded                // the call ended meanwhile (a BYE may overtake its ACK)
	ackCancelled                // a CANCEL came before the 2xx went out
	ackShutdown                 // the server is closing
)

// ackStops are the events that end a wait for an ACK besides the ACK
// itself. A nil channel never fires.
type ackStops struct {
	ended, cancelled, shutdown <-chan struct{}
}

// ackTimeout is how long a 2xx waits for its ACK: 64*T1, the bound of a
// server INVITE transaction (RFC 3261 13.3.1.4). Tests that wait it out
// move the layer's clock (Config.Clock).
const ackTimeout = 64 * sipmsg.T1

// awaitAck retransmits a 2xx with resend until the ACK arrives on acked:
// over UDP at T1, doubling up to T2 (RFC 3261 13.3.1.4), not at all over a
// reliable transport, which retransmits by itself. It gives up after
// timeout (64*T1 by default) or when one of stops fires. One timer serves
// every retransmission.
func awaitAck(clk wallclock.Clock, timeout time.Duration, reliable bool, resend func(),
	acked <-chan *sip.Request, stops ackStops) (*sip.Request, ackEnd) {
	interval := sipmsg.T1
	retrans := clk.NewTimer(interval)
	defer retrans.Stop()
	deadline := clk.NewTimer(timeout)
	defer deadline.Stop()
	for {
		select {
		case ack := <-acked:
			return ack, ackReceived
		case <-retrans.C():
			if !reliable {
				resend()
				interval = min(2*interval, sipmsg.T2)
			}
			retrans.Reset(interval)
		case <-deadline.C():
			return nil, ackTimedOut
		case <-stops.ended:
			return nil, ackCallEnded
		case <-stops.cancelled:
			return nil, ackCancelled
		case <-stops.shutdown:
			return nil, ackShutdown
		}
	}
}
