//go:build linux

package rtpio

import (
	"bytes"
	"fmt"

	"github.com/pion/srtp/v3"
)

// SRTPProfile is the SRTP protection profile of a stream's keys.
type SRTPProfile uint8

const (
	// SRTPAES128CMSHA80 is AES_CM_128_HMAC_SHA1_80 (RFC 3711), what SDES
	// callers use; the zero value, so keys that name no profile keep it.
	SRTPAES128CMSHA80 SRTPProfile = iota
	// SRTPAEADAES128GCM is AEAD_AES_128_GCM (RFC 7714): both ends must
	// be ours (the cluster's internal legs), and it costs about half as
	// much CPU per packet on a CPU with AES and carry-less multiply
	// instructions (D31).
	SRTPAEADAES128GCM
)

// SRTPKeyLen is the length of an AES_CM_128_HMAC_SHA1_80 master key and
// salt together (16 + 14 bytes), as SDES (RFC 4568) carries them.
const SRTPKeyLen = 30

// srtpGCMKeyLen is AEAD_AES_128_GCM's master key and salt (16 + 12).
const srtpGCMKeyLen = 28

// srtpTagLen is the longest authentication tag of any profile (GCM's 16
// bytes; HMAC-SHA1-80's is 10), and srtcpTrailerLen the SRTCP index (4
// bytes) with it: what SRTP adds to a packet at most, for sizing buffers
// (pion grows, so allocates, a buffer that is too short).
const (
	srtpTagLen      = 16
	srtcpTrailerLen = 4 + srtpTagLen
)

// KeyLen is the length of one master key and salt of p, or 0 for a
// profile rtpio does not know.
func (p SRTPProfile) KeyLen() int {
	switch p {
	case SRTPAES128CMSHA80:
		return SRTPKeyLen
	case SRTPAEADAES128GCM:
		return srtpGCMKeyLen
	}
	return 0
}

// tagLen is the authentication tag p adds to each SRTP packet (the SRTCP
// index comes on top for SRTCP).
func (p SRTPProfile) tagLen() int {
	if p == SRTPAEADAES128GCM {
		return 16
	}
	return 10
}

// pion is p's pion profile.
func (p SRTPProfile) pion() srtp.ProtectionProfile {
	if p == SRTPAEADAES128GCM {
		return srtp.ProtectionProfileAeadAes128Gcm
	}
	return srtp.ProtectionProfileAes128CmHmacSha1_80
}

// String is p's name as the RFCs spell it.
func (p SRTPProfile) String() string {
	switch p {
	case SRTPAES128CMSHA80:
		return "AES_CM_128_HMAC_SHA1_80"
	case SRTPAEADAES128GCM:
		return "AEAD_AES_128_GCM"
	}
	return fmt.Sprintf("SRTPProfile(%d)", uint8(p))
}

// srtpReplayWindow is how far back an SRTP packet may arrive and still be
// accepted once; older or repeated ones are refused before the jitter
// buffer sees them (RFC 3711 3.3.2 asks for at least 64).
const srtpReplayWindow = 128

// SRTPKeys are the master keys of one call's SRTP session: Local
// encrypts what we send (for SDES the key our SDP answer carried), Remote
// decrypts what the peer sends (the key of its offer). Each is
// Profile.KeyLen() bytes, the master key (16) followed by the master salt.
type SRTPKeys struct {
	Local  []byte
	Remote []byte
	// Profile is the protection profile of both directions; the zero
	// value is AES_CM_128_HMAC_SHA1_80, as SDES negotiates.
	Profile SRTPProfile
}

// Validate checks that rtpio knows the profile and that both keys have
// its length. Stream Open and Update refuse keys that fail it.
func (k *SRTPKeys) Validate() error {
	n := k.Profile.KeyLen()
	if n == 0 {
		return fmt.Errorf("rtpio: unknown SRTP profile %v", k.Profile)
	}
	if len(k.Local) != n || len(k.Remote) != n {
		return fmt.Errorf("rtpio: %v SRTP keys are %d and %d bytes, want %d", k.Profile, len(k.Local), len(k.Remote), n)
	}
	return nil
}

// equal reports whether a and b (either may be nil) are the same keys.
func (k *SRTPKeys) equal(o *SRTPKeys) bool {
	if k == nil || o == nil {
		return k == o
	}
	return k.Profile == o.Profile && bytes.Equal(k.Local, o.Local) && bytes.Equal(k.Remote, o.Remote)
}

// newSRTPContext builds the context for one direction from a master key
// and salt of profile p (already validated). The replay window applies to
// decryption only.
func newSRTPContext(p SRTPProfile, keySalt []byte) (*srtp.Context, error) {
	c, err := srtp.CreateContext(keySalt[:16], keySalt[16:], p.pion(),
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
	if err = keys.Validate(); err != nil {
		return nil, nil, err
	}
	if out, err = newSRTPContext(keys.Profile, keys.Local); err != nil {
		return nil, nil, err
	}
	if in, err = newSRTPContext(keys.Profile, keys.Remote); err != nil {
		return nil, nil, err
	}
	return out, in, nil
}
