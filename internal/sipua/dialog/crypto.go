package dialog

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/groupbridge/groupbridge/media/rtpio"
)

// SRTPMode says when calls are encrypted with SRTP (SDES, RFC 4568).
type SRTPMode int

// SRTP policies, as rtp.srtp names them.
const (
	// SRTPOffer (the default) answers SRTP when the caller offers
	// RTP/SAVP with a usable a=crypto, plain RTP otherwise.
	SRTPOffer SRTPMode = iota
	// SRTPOff never encrypts: an offer with only RTP/SAVP gets 488, one
	// with an RTP/AVP alternative is answered on that.
	SRTPOff
	// SRTPRequire refuses (488) offers without usable SRTP, and our own
	// offers (to an INVITE without SDP) are RTP/SAVP.
	SRTPRequire
)

// String returns the rtp.srtp spelling.
func (m SRTPMode) String() string {
	switch m {
	case SRTPOff:
		return "off"
	case SRTPRequire:
		return "require"
	}
	return "offer"
}

// SuiteAES128SHA80 is the only crypto suite we speak: AES counter mode
// with a 128-bit key and an 80-bit HMAC-SHA1 tag (RFC 4568 6.2.1), the
// one every SDES phone supports.
const SuiteAES128SHA80 = "AES_CM_128_HMAC_SHA1_80"

// ErrNoSRTP means the offer's media cannot meet rtp.srtp: answer 488.
var ErrNoSRTP = errors.New("SRTP policy not met")

// Crypto is one a=crypto attribute (RFC 4568): its tag, suite and the
// first key's master key||salt. Lifetime, MKI and session parameters are
// read past and ignored; an MKI would change the packet format, so a key
// with one is refused for AES_CM_128_HMAC_SHA1_80.
type Crypto struct {
	Tag   int
	Suite string
	Key   []byte // rtpio.SRTPKeyLen bytes for SuiteAES128SHA80; nil for other suites
}

// maxCryptoTag is the largest tag RFC 4568 allows (up to 9 digits).
const maxCryptoTag = 999999999

// ParseCrypto reads the value of an a=crypto attribute:
// "TAG SUITE inline:KEY||SALT[|LIFETIME][|MKI:LEN][;inline:...] [PARAMS]".
// Only the first key is used. The error never quotes the key.
func ParseCrypto(v string) (Crypto, error) {
	fields := strings.Fields(v)
	if len(fields) < 3 {
		return Crypto{}, errors.New("crypto: want tag, suite and key parameters")
	}
	tag, err := strconv.Atoi(fields[0])
	if err != nil || tag < 0 || tag > maxCryptoTag || len(fields[0]) > 9 {
		return Crypto{}, errors.New("crypto: tag is not a number of up to 9 digits")
	}
	c := Crypto{Tag: tag, Suite: fields[1]}
	if c.Suite != SuiteAES128SHA80 {
		return c, nil // readable, but not a suite we use
	}
	first, _, _ := strings.Cut(fields[2], ";")
	method, info, ok := strings.Cut(first, ":")
	if !ok || method != "inline" {
		return Crypto{}, errors.New("crypto: key method is not inline")
	}
	keySalt, rest, _ := strings.Cut(info, "|")
	for p := range strings.SplitSeq(rest, "|") {
		if strings.Contains(p, ":") {
			return Crypto{}, errors.New("crypto: keys with an MKI are not supported")
		}
	}
	key, err := base64.StdEncoding.DecodeString(keySalt)
	if err != nil {
		// Some phones leave out the padding.
		key, err = base64.RawStdEncoding.DecodeString(strings.TrimRight(keySalt, "="))
	}
	if err != nil || len(key) != rtpio.SRTPKeyLen {
		return Crypto{}, fmt.Errorf("crypto: key is not %d bytes of base64", rtpio.SRTPKeyLen)
	}
	c.Key = key
	return c, nil
}

// String writes the attribute value for our side: tag, suite and key.
func (c Crypto) String() string {
	return strconv.Itoa(c.Tag) + " " + c.Suite + " inline:" + base64.StdEncoding.EncodeToString(c.Key)
}

// SRTP is a call's negotiated SDES session: the crypto of the peer, whose
// key decrypts what it sends, and our key, which encrypts what we send
// and which our SDP carries under the same tag.
type SRTP struct {
	Tag    int
	Remote []byte
	Local  []byte
}

// Keys returns the rtpio form of s; nil for a nil s (plain RTP).
func (s *SRTP) Keys() *rtpio.SRTPKeys {
	if s == nil {
		return nil
	}
	return &rtpio.SRTPKeys{Local: s.Local, Remote: s.Remote}
}

// newSRTPKey returns a fresh master key and salt from crypto/rand.
func newSRTPKey() ([]byte, error) {
	k := make([]byte, rtpio.SRTPKeyLen)
	if _, err := rand.Read(k); err != nil {
		return nil, fmt.Errorf("SRTP key: %w", err)
	}
	return k, nil
}

// SDES keys travel in the SDP, in clear unless SIP runs over TLS: anyone on
// the path of a UDP or TCP offer can read them and decrypt the call. So
// a=crypto is taken only from offers that came over TLS, unless
// SRTPPolicy.OverUDP says otherwise (rtp.srtp_over_udp).

// errSRTPNeedsTLS refuses an offer under SRTPRequire that did not come over
// TLS.
var errSRTPNeedsTLS = fmt.Errorf("%w: SRTP keys over TLS only, and rtp.srtp is require", ErrNoSRTP)

// SRTPPolicy is rtp.srtp (Mode) and rtp.srtp_over_udp (OverUDP),
// applied to the transport a call's SIP travels on.
type SRTPPolicy struct {
	Mode    SRTPMode
	OverUDP bool
}

// outOfBandPolicy is the policy of a call keyed outside SIP: no SDES.
var outOfBandPolicy = SRTPPolicy{Mode: SRTPOff}

// srtpFor returns the SRTP policy for an offer that came over transport:
// the configured one over TLS (or with SRTPOverUDP); elsewhere SRTPOff for
// SRTPOffer (plain RTP, or 488 to an offer of SRTP only), and
// errSRTPNeedsTLS for SRTPRequire.
func (p SRTPPolicy) srtpFor(transport string) (SRTPMode, error) {
	mode := p.Mode
	switch {
	case mode == SRTPOff || p.OverUDP || strings.EqualFold(transport, "tls"):
		return mode, nil
	case mode == SRTPRequire:
		return mode, errSRTPNeedsTLS
	}
	return SRTPOff, nil
}

// parseOffer reads an offer that came over transport under srtpFor's
// policy.
func (p SRTPPolicy) parseOffer(body []byte, transport string) (Media, error) {
	mode, err := p.srtpFor(transport)
	if err != nil {
		return Media{DTMFPT: -1}, err
	}
	m, err := ParseOfferSRTP(body, mode)
	if err != nil && mode != p.Mode && errors.Is(err, ErrNoSRTP) {
		err = fmt.Errorf("%w: SRTP keys over TLS only, and only SRTP was offered over %s", ErrNoSRTP, strings.ToLower(transport))
	}
	return m, err
}

// readOffer reads the offer of an INVITE or re-INVITE that came over
// transport, none when body is empty (a late offer). Under SRTPRequire
// over a transport keys may not cross, a late offer is refused too: our
// offer's key could not travel.
func (p SRTPPolicy) readOffer(body []byte, transport string) (Media, error) {
	var offer Media
	_, err := p.srtpFor(transport)
	if err == nil && len(body) > 0 {
		offer, err = p.parseOffer(body, transport)
	}
	return offer, err
}

// ParseSRTPMode reads an rtp.srtp value: "off", "offer" or "require".
func ParseSRTPMode(s string) (SRTPMode, error) {
	switch s {
	case "off":
		return SRTPOff, nil
	case "offer":
		return SRTPOffer, nil
	case "require":
		return SRTPRequire, nil
	}
	return SRTPOffer, fmt.Errorf("SRTP mode %q is not off, offer or require", s)
}
