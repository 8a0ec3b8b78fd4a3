//go:build linux

package rtpio

import (
	"bytes"
	"fmt"

	"github.com/pion/srtp/v3"
)

// SRTPKeyLen is the length of an AES_CM_128_HMAC_SHA1_80 master key and
// salt together (16 + 14 bytes), as SDES (RFC 4568) carries them.
const SRTPKeyLen = 30

// srtpTagLen is the HMAC-SHA1-80 authentication tag, and srtcpTrailerLen
// the SRTCP index (4 bytes) with that tag, which SRTP adds to each packet.
const (
	srtpTagLen      = 10
	srtcpTrailerLen = 4 + srtpTagLen
)

// srtpReplayWindow is how far back an SRTP packet may arrive and still be
// accepted once; older or repeated ones are refused before the jitter
// buffer sees them (RFC 3711 3.3.2 asks for at least 64).
const srtpReplayWindow = 128

// SRTPKeys are the SDES master keys of one call's SRTP session
// (AES_CM_128_HMAC_SHA1_80): Local encrypts what we send and is the key
// our SDP answer carried, Remote decrypts what the caller sends and is
// the key of its offer. Each is SRTPKeyLen bytes, the master key followed
// by the master salt.
type SRTPKeys struct {
	Local  []byte
	Remote []byte
}

func (k *SRTPKeys) validate() error {
	if len(k.Local) != SRTPKeyLen || len(k.Remote) != SRTPKeyLen {
		return fmt.Errorf("rtpio: SRTP keys are %d and %d bytes, want %d", len(k.Local), len(k.Remote), SRTPKeyLen)
	}
	return nil
}

// equal reports whether a and b (either may be nil) are the same keys.
func (k *SRTPKeys) equal(o *SRTPKeys) bool {
	if k == nil || o == nil {
		return k == o
	}
	return bytes.Equal(k.Local, o.Local) && bytes.Equal(k.Remote, o.Remote)
}

// newSRTPContext builds the context for one direction from a 30-byte
// master key and salt. The replay window applies to decryption only.
func newSRTPContext(keySalt []byte) (*srtp.Context, error) {
	c, err := srtp.CreateContext(keySalt[:16], keySalt[16:], srtp.ProtectionProfileAes128CmHmacSha1_80,
		srtp.SRTPReplayProtection(srtpReplayWindow), srtp.SRTCPReplayProtection(srtpReplayWindow))
	if err != nil {
		return nil, fmt.Errorf("rtpio: SRTP context: %w", err)
	}
	return c, nil
}

// srtpContexts builds the send and receive contexts for keys; both nil
// for plain RTP.
func srtpContexts(keys *SRTPKeys) (out, in *srtp.Context, err error) {
	if keys == nil {
		return nil, nil, nil
	}
	if out, err = newSRTPContext(keys.Local); err != nil {
		return nil, nil, err
	}
	if in, err = newSRTPContext(keys.Remote); err != nil {
		return nil, nil, err
	}
	return out, in, nil
}
