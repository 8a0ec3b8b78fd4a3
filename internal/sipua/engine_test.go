package sipua

import (
	"context"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/groupbridge/groupbridge/internal/testports"
	"github.com/groupbridge/groupbridge/media/g711"
	"github.com/groupbridge/groupbridge/media/rtpio"
)

// relayed is one caller of the ordinary server with the internal leg its
// handler placed for it.
type relayed struct{ caller, leg *Call }

// TestTwoServersOneEngine runs a node's two servers on one RTP engine, as
// a cluster node does: the ordinary one answers a phone and places an
// internal leg to the other, an internal listener (OnlyTrusted, a Gate
// that keys the leg); the handler ends the phone's call with the leg's
// reason. Each server counts its own calls, the streams take distinct
// ports, and either server may be shut down first while the other goes
// on with the shared engine.
func TestTwoServersOneEngine(t *testing.T) {
	for _, tc := range []struct {
		name          string
		internalFirst bool
	}{
		{"internal listener shut down first", true},
		{"ordinary server shut down first", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lo := testports.Range(t, 40)
			engine, err := rtpio.NewEngine(rtpio.Config{Address: loopback, PortMin: lo, PortMax: lo + 39})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = engine.Close() }) // after both servers' shutdown
			callerKeys, calleeKeys := legKeys(0x21)
			internalCalls := make(chan *Call, 2)
			internal := testServer(t, func(c *Config) {
				c.Media = engine
				c.OnlyTrusted = true
				c.Trusted = []netip.Prefix{netip.PrefixFrom(loopback, 32)}
				c.Gate = func(r GateRequest) (GateResult, error) {
					if r.Header("X-Groupbridge-Leg") != "leg:"+r.CallID {
						return GateResult{}, &Refusal{Code: 403}
					}
					return GateResult{Value: "seat", SRTP: calleeKeys}, nil
				}
				c.Handler = HandlerFunc(func(call *Call) { internalCalls <- call; <-call.Context().Done() })
			})
			relays := make(chan relayed, 2)
			var self atomic.Pointer[Server] // the ordinary server, for its handler to dial from
			var internalDown atomic.Bool
			ordinary := testServer(t, func(c *Config) {
				c.Media = engine
				c.Handler = HandlerFunc(func(call *Call) {
					if internalDown.Load() {
						call.Hangup("no-leg")
						return
					}
					ctx, cancel := context.WithTimeout(call.Context(), 5*time.Second)
					defer cancel()
					leg, err := self.Load().Dial(ctx, target(t, internal), DialOptions{Codecs: []g711.Codec{call.Codec()},
						Sign: func(callID string, _ []byte) ([]Header, *rtpio.SRTPKeys, error) {
							return []Header{{Name: "X-Groupbridge-Leg", Value: "leg:" + callID}}, callerKeys, nil
						}})
					if err != nil {
						call.Hangup("no-leg")
						return
					}
					relays <- relayed{call, leg}
					select {
					case <-leg.Context().Done():
						call.Hangup(leg.RemoteReason())
					case <-call.Context().Done():
						leg.Hangup(call.EndReason())
					}
				})
			})
			self.Store(ordinary)
			phone := testServer(t, nil) // its own engine: a phone elsewhere

			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			out, err := phone.Dial(ctx, target(t, ordinary), DialOptions{})
			if err != nil {
				t.Fatalf("the phone's Dial: %v", err)
			}
			var r relayed
			var in *Call
			select {
			case r = <-relays:
			case <-time.After(5 * time.Second):
				t.Fatal("no internal leg placed")
			}
			select {
			case in = <-internalCalls:
			case <-time.After(3 * time.Second):
				t.Fatal("the internal listener's handler got no call")
			}
			if in.Admission() != "seat" {
				t.Errorf("the internal call's Admission() = %v", in.Admission())
			}
			if o, i := ordinary.ActiveCalls(), internal.ActiveCalls(); o != 2 || i != 1 {
				t.Errorf("ActiveCalls() = %d (ordinary) and %d (internal); want 2 (the caller and its leg) and 1", o, i)
			}
			ports := map[uint16]bool{}
			for _, c := range []*Call{r.caller, r.leg, in} {
				ports[c.Stream().LocalAddr().Port()] = true
			}
			if len(ports) != 3 {
				t.Errorf("the three streams on the shared engine use ports %v; want three", ports)
			}
			if got := toneShare(r.leg.Stream(), in.Stream(), 1000, time.Second); got < 0.8 {
				t.Errorf("the leg's tone heard in %.0f%% of blocks at the owner; want at least 80%%", 100*got)
			}

			first, second := ordinary, internal
			// The end of the first server's calls reaches the far ends
			// with its reason: the phone through the relay's handler.
			lost, want := in, "shutdown"
			if tc.internalFirst {
				first, second = internal, ordinary
				lost = out
			}
			sctx, scancel := context.WithTimeout(context.Background(), 3*time.Second)
			defer scancel()
			internalDown.Store(tc.internalFirst)
			if err := first.Shutdown(sctx); err != nil {
				t.Fatalf("the first server's Shutdown: %v", err)
			}
			select {
			case <-lost.Context().Done():
			case <-time.After(3 * time.Second):
				t.Fatal("the far end's call did not end")
			}
			if got := lost.RemoteReason(); got != want {
				t.Errorf("the far end's RemoteReason() = %q; want %q", got, want)
			}
			waitFor(t, "both servers' calls to end", func() bool { return first.ActiveCalls() == 0 && second.ActiveCalls() == 0 })
			if tc.internalFirst {
				// The ordinary server goes on with the shared engine: a
				// new caller is answered (and let go, having no leg).
				c, err := phone.Dial(ctx, target(t, ordinary), DialOptions{})
				if err != nil {
					t.Fatalf("after the internal listener's shutdown, the ordinary server refused a call: %v", err)
				}
				<-c.Context().Done()
				if got := c.RemoteReason(); got != "no-leg" {
					t.Errorf("the call without a leg ended with %q; want no-leg", got)
				}
			}
			if err := second.Shutdown(sctx); err != nil {
				t.Fatalf("the second server's Shutdown: %v", err)
			}
		})
	}
}
