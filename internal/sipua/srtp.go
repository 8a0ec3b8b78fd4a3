package sipua

import (
	"log/slog"

	"github.com/groupbridge/groupbridge/internal/sipua/dialog"
)

// The SRTP policy (rtp.srtp, rtp.srtp_over_udp) is the dialog layer's to
// apply to each offer (dialog.SRTPPolicy); the server names it in its
// Config and says at start what it means for its listeners.

// SRTPMode says when calls are encrypted with SRTP (SDES, RFC 4568).
type SRTPMode = dialog.SRTPMode

// SRTP policies, as rtp.srtp names them (dialog.SRTPOff, ...).
const (
	SRTPOffer   = dialog.SRTPOffer
	SRTPOff     = dialog.SRTPOff
	SRTPRequire = dialog.SRTPRequire
)

// ParseSRTPMode reads an rtp.srtp value: "off", "offer" or "require".
func ParseSRTPMode(s string) (SRTPMode, error) { return dialog.ParseSRTPMode(s) }

// warnSRTP says at start what the SRTP policy and the listeners mean for
// keys on the wire.
func warnSRTP(p dialog.SRTPPolicy, log *slog.Logger, listeners []Listener) {
	if p.Mode == dialog.SRTPOff {
		return
	}
	var tls, clear bool
	for _, l := range listeners {
		if l.Transport == "tls" {
			tls = true
		} else {
			clear = true
		}
	}
	switch {
	case clear && p.OverUDP:
		log.Warn("SRTP keys are exchanged in clear over udp/tcp SIP: anyone on the path can decrypt those calls",
			"key", "rtp.srtp_over_udp", "srtp", p.Mode.String())
	case !tls:
		log.Warn("SRTP needs SIP over TLS (a tls: listener in sip.listen): no call will be encrypted",
			"key", "rtp.srtp", "srtp", p.Mode.String())
	}
}
