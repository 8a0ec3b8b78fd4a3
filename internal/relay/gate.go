package relay

import (
	"context"
	"time"

	"github.com/groupbridge/groupbridge/internal/cluster"
	"github.com/groupbridge/groupbridge/internal/sipua"
	"github.com/groupbridge/groupbridge/media/rtpio"
)

// Gate checks an internal leg before it is answered (sipua.Config.Gate of
// the internal listener): its signature, freshness and nonce, and that
// this node owns its room. A leg that passes carries its cluster.Leg as
// the call's Admission and is keyed for SRTP from its nonce.
func (r *Router) Gate(req sipua.GateRequest) (sipua.GateResult, error) {
	ctx, cancel := context.WithTimeout(r.ctx, time.Second)
	defer cancel()
	leg, nonce, err := r.cfg.Signer.Verify(ctx, req.Header(LegHeader), req.CallID, req.Body)
	if err != nil {
		// Never the header: it names the caller's identity.
		r.cfg.Log.Warn("internal leg refused", "source", req.Source.String(), "error", err.Error())
		return sipua.GateResult{}, &sipua.Refusal{Code: 403, Reason: "Forbidden"}
	}
	r.saw(leg.Room, leg.Epoch)
	if _, ok := r.Owns(leg.Room); !ok {
		// The dialler's look-up is out of date: it looks again.
		return sipua.GateResult{}, &sipua.Refusal{Code: 480, Reason: "Not This Room's Node"}
	}
	dialler, answerer := r.cfg.Signer.LegKeys(nonce)
	return sipua.GateResult{Value: leg, SRTP: &rtpio.SRTPKeys{Local: answerer, Remote: dialler}}, nil
}

// LegOf is the signed terms of an internal leg the Gate let in.
func LegOf(c *sipua.Call) (cluster.Leg, bool) {
	leg, ok := c.Admission().(cluster.Leg)
	return leg, ok
}
