package dialog

import (
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/groupbridge/groupbridge/internal/sipua/sipmsg"
	"github.com/groupbridge/groupbridge/internal/testkit"
)

// TestAwaitAck drives the one ACK wait with a hand-moved clock: over UDP
// the 2xx goes again at T1, 2*T1, ... capped at T2; over TCP never; the
// wait ends with the ACK, at the timeout or when a stop fires.
func TestAwaitAck(t *testing.T) {
	const timeout = 32 * time.Second
	tests := []struct {
		name     string
		reliable bool
		// what happens after the resends: "ack", "timeout", "ended",
		// "cancelled" or "shutdown"
		finish     string
		steps      int // clock steps (of the next retransmission interval) before finish
		wantResend []time.Duration
		want       ackEnd
	}{
		{"udp ack after backoff", false, "ack", 5, []time.Duration{500, 1500, 3500, 7500, 11500}, ackReceived},
		{"udp timeout", false, "timeout", 0, nil, ackTimedOut},
		{"tcp never resends", true, "ack", 5, nil, ackReceived},
		{"bye overtakes ack", false, "ended", 1, []time.Duration{500}, ackCallEnded},
		{"cancel", false, "cancelled", 0, nil, ackCancelled},
		{"shutdown", true, "shutdown", 2, nil, ackShutdown},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clk := testkit.NewManualClock()
			start := clk.Now()
			resent := make(chan time.Duration, 64)
			acked := make(chan *sip.Request, 1)
			ended, cancelled, shutdown := make(chan struct{}), make(chan struct{}), make(chan struct{})
			type result struct {
				ack *sip.Request
				end ackEnd
			}
			done := make(chan result, 1)
			go func() {
				ack, end := awaitAck(clk, timeout, tc.reliable, func() { resent <- clk.Now().Sub(start) }, acked,
					ackStops{ended: ended, cancelled: cancelled, shutdown: shutdown})
				done <- result{ack, end}
			}()
			<-clk.Made() // the retransmission timer
			<-clk.Made() // the deadline
			interval := sipmsg.T1
			for range tc.steps {
				clk.Advance(interval)
				<-clk.Made() // the retransmission timer, reset
				if !tc.reliable {
					interval = min(2*interval, sipmsg.T2)
				}
			}
			var got []time.Duration
			for len(resent) > 0 {
				got = append(got, (<-resent)/time.Millisecond)
			}
			if len(got) != len(tc.wantResend) {
				t.Fatalf("resent at %v ms; want %v ms", got, tc.wantResend)
			}
			for i := range got {
				if got[i] != tc.wantResend[i] {
					t.Fatalf("resent at %v ms; want %v ms", got, tc.wantResend)
				}
			}
			ack := &sip.Request{}
			switch tc.finish {
			case "ack":
				acked <- ack
			case "timeout":
				clk.Advance(timeout)
			case "ended":
				close(ended)
			case "cancelled":
				close(cancelled)
			case "shutdown":
				close(shutdown)
			}
			r := <-done
			if r.end != tc.want {
				t.Fatalf("end = %d; want %d", r.end, tc.want)
			}
			if (r.ack == ack) != (tc.want == ackReceived) {
				t.Errorf("ack returned = %v; want it only when received", r.ack)
			}
		})
	}
}
