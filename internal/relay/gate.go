package relay

import (
	"context"
	"errors"
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
	return sipua.GateResult{Value: admitted{leg, cluster.LegTag(nonce)},
		SRTP: legKeys(answerer, dialler)}, nil
}

// legKeys are an internal leg's SRTP keys, local and remote: both ends
// are ours, so the cheaper AEAD_AES_128_GCM (D31).
func legKeys(local, remote []byte) *rtpio.SRTPKeys {
	return &rtpio.SRTPKeys{Local: local, Remote: remote, Profile: rtpio.SRTPAEADAES128GCM}
}

// admitted is what the Gate keeps of a leg it let in: its signed terms
// and its bundle tag.
type admitted struct {
	leg cluster.Leg
	tag uint32
}

// LegOf is the signed terms of an internal leg the Gate let in.
func LegOf(c *sipua.Call) (cluster.Leg, bool) {
	a, ok := c.Admission().(admitted)
	return a.leg, ok
}

// Bundle makes the owner's audio to a leg the Gate let in go in bundles
// to its dialler's bundle port, when the dialler gave one (D32). Without,
// or when this fails, the audio goes on the leg itself.
func (r *Router) Bundle(c *sipua.Call) error {
	a, ok := c.Admission().(admitted)
	if !ok || a.leg.Downlink == 0 {
		return nil
	}
	s := c.Stream()
	if s == nil {
		return errors.New("relay: bundle: the leg has no media stream")
	}
	return s.SendBundled(a.leg.Downlink, a.tag)
}
