package dialog

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/groupbridge/groupbridge/internal/logging"
	"github.com/groupbridge/groupbridge/internal/sipua/sipmsg"
	"github.com/groupbridge/groupbridge/media/g711"
	"github.com/pion/sdp/v3"
)

// Direction is an SDP media direction, seen from the side that wrote it.
type Direction int

// Media directions of RFC 3264.
const (
	SendRecv Direction = iota
	SendOnly
	RecvOnly
	Inactive
)

// String returns the SDP attribute name.
func (d Direction) String() string {
	switch d {
	case SendOnly:
		return "sendonly"
	case RecvOnly:
		return "recvonly"
	case Inactive:
		return "inactive"
	}
	return "sendrecv"
}

// Reverse returns the direction the answerer states for an offer's direction.
func (d Direction) Reverse() Direction {
	switch d {
	case SendOnly:
		return RecvOnly
	case RecvOnly:
		return SendOnly
	}
	return d
}

// WeSend reports whether, for a peer that declared d, we may send it media.
func (d Direction) WeSend() bool { return d == SendRecv || d == RecvOnly }

// WeReceive reports whether, for a peer that declared d, its media is meant
// to be heard. A peer's sendonly is its hold (often music): it is received
// for liveness but never mixed, so only sendrecv counts.
func (d Direction) WeReceive() bool { return d == SendRecv }

// Errors that decide the SIP answer to an offer.
var (
	// ErrNoCommonCodec means the offer has no PCMU or PCMA audio: answer 488.
	ErrNoCommonCodec = errors.New("no common codec: PCMU or PCMA required")
	// ErrBadSDP means the body could not be read as SDP: answer 400/488.
	ErrBadSDP = errors.New("malformed SDP")
)

// Media is what one side's SDP says about its audio stream.
type Media struct {
	Addr      netip.AddrPort // where to send RTP; zero Port for a disabled stream
	Codec     g711.Codec     // chosen codec
	AudioPT   uint8          // its payload type
	DTMFPT    int            // telephone-event payload type, -1 if none
	Direction Direction      // as declared by the peer
	Hold      bool           // c=0.0.0.0 (RFC 2543 hold)
	// SRTP is the SDES session when the chosen stream is RTP/SAVP; nil
	// for plain RTP. ParseOfferSRTP fills Remote and Tag and a fresh
	// Local key; the answer carries Local under the same tag.
	SRTP *SRTP

	// index is the chosen m= line and lines all the offer's m= lines, so
	// that the answer rejects the others in place (RFC 3264 6).
	index int
	lines []mline
}

// mline is what an answer repeats of an offered m= line it rejects.
type mline struct {
	media, proto, format string
}

// maxSDP bounds the body we try to parse; real offers are well under 4 kB.
const maxSDP = 16 << 10

// SDP transport protocols of plain and SDES-keyed audio.
const (
	protoAVP  = "RTP/AVP"
	protoSAVP = "RTP/SAVP"
)

// ParseOffer reads a peer's offer (or, with the same rules, its answer to
// our offer) with SRTP off: see ParseOfferSRTP.
func ParseOffer(body []byte) (Media, error) {
	return ParseOfferSRTP(body, SRTPOff)
}

// ParseOfferSRTP reads a peer's offer (or its answer to our offer) and
// chooses an audio stream by the SRTP policy mode: an RTP/SAVP one with an
// AES_CM_128_HMAC_SHA1_80 a=crypto when mode allows and one is offered,
// else an RTP/AVP one unless mode is SRTPRequire. In that stream it picks
// the first PCMU or PCMA format in the peer's order of preference, plus
// telephone-event at 8000 Hz when present. For an SRTP choice it draws our
// own fresh key (crypto/rand). A policy that no stream meets gives an
// error wrapping ErrNoSRTP.
func ParseOfferSRTP(body []byte, mode SRTPMode) (Media, error) {
	m := Media{DTMFPT: -1}
	if len(body) == 0 || len(body) > maxSDP {
		return m, fmt.Errorf("%w: body of %d bytes", ErrBadSDP, len(body))
	}
	var sd sdp.SessionDescription
	if err := sd.UnmarshalString(string(body)); err != nil {
		// pion quotes the offending text, which may hold a caller's
		// number or a PIN: the same redaction as library log lines.
		return m, fmt.Errorf("%w: %v", ErrBadSDP, sipmsg.Shorten(logging.RedactDigits(err.Error())))
	}
	lines := make([]mline, len(sd.MediaDescriptions))
	for i, md := range sd.MediaDescriptions {
		lines[i] = mline{md.MediaName.Media, strings.Join(md.MediaName.Protos, "/"), "0"}
		if len(md.MediaName.Formats) > 0 {
			lines[i].format = md.MediaName.Formats[0]
		}
	}
	// The first usable stream of each kind, in the offer's order.
	var plain, secure *Media
	var firstErr error
	sawSAVP := false
	for i, md := range sd.MediaDescriptions {
		if md.MediaName.Media != "audio" || md.MediaName.Port.Value == 0 {
			continue
		}
		proto := lines[i].proto
		var crypto *Crypto
		switch {
		case proto == protoAVP && plain == nil && mode != SRTPRequire:
		case proto == protoSAVP && secure == nil && mode != SRTPOff:
			sawSAVP = true
			if crypto = usableCrypto(md.Attributes); crypto == nil {
				if firstErr == nil {
					firstErr = fmt.Errorf("%w: no %s a=crypto with a usable key", ErrNoSRTP, SuiteAES128SHA80)
				}
				continue
			}
		case proto == protoSAVP:
			sawSAVP = true
			continue
		default:
			if firstErr == nil && proto != protoAVP {
				firstErr = fmt.Errorf("%w: transport %q (want RTP/AVP or RTP/SAVP)", ErrNoCommonCodec, sipmsg.Shorten(logging.RedactDigits(proto)))
			}
			continue
		}
		got, err := parseAudio(&sd, md)
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		got.index = i
		if crypto != nil {
			got.SRTP = &SRTP{Tag: crypto.Tag, Remote: crypto.Key}
			secure = &got
		} else {
			plain = &got
		}
	}
	chosen := secure
	if chosen == nil {
		chosen = plain
	}
	switch {
	case chosen != nil:
	case mode == SRTPRequire:
		return m, fmt.Errorf("%w: rtp.srtp is require and no RTP/SAVP stream with a usable a=crypto was offered", ErrNoSRTP)
	case mode == SRTPOff && sawSAVP:
		return m, fmt.Errorf("%w: rtp.srtp is off and only RTP/SAVP was offered", ErrNoSRTP)
	case firstErr != nil:
		return m, firstErr
	default:
		return m, fmt.Errorf("%w: no active audio stream", ErrNoCommonCodec)
	}
	if chosen.SRTP != nil {
		key, err := newSRTPKey()
		if err != nil {
			return m, err
		}
		chosen.SRTP.Local = key
	}
	chosen.lines = lines
	return *chosen, nil
}

// ParseAnswer reads the peer's answer to our offer, which carried
// offerKey (nil for a plain RTP/AVP offer): SRTP must then be answered
// with a usable a=crypto under OfferCryptoTag, and our key goes in the
// result's SRTP.Local.
func ParseAnswer(body, offerKey []byte) (Media, error) {
	if offerKey == nil {
		return ParseOffer(body)
	}
	m, err := ParseOfferSRTP(body, SRTPRequire)
	if err != nil {
		return m, err
	}
	if m.SRTP.Tag != OfferCryptoTag {
		return Media{DTMFPT: -1}, fmt.Errorf("%w: answer's a=crypto tag %d is not our offer's %d", ErrNoSRTP, m.SRTP.Tag, OfferCryptoTag)
	}
	m.SRTP.Local = offerKey
	return m, nil
}

// usableCrypto returns the first a=crypto of attrs with our suite and a
// readable key, or nil.
func usableCrypto(attrs []sdp.Attribute) *Crypto {
	for _, a := range attrs {
		if a.Key != "crypto" {
			continue
		}
		if c, err := ParseCrypto(a.Value); err == nil && c.Key != nil {
			return &c
		}
	}
	return nil
}

// parseAudio reads one audio m= section: its address, codec, telephone-event
// and direction.
func parseAudio(sd *sdp.SessionDescription, audio *sdp.MediaDescription) (Media, error) {
	m := Media{DTMFPT: -1}
	sessionDir, _ := directionOf(sd.Attributes)
	conn := audio.ConnectionInformation
	if conn == nil {
		conn = sd.ConnectionInformation
	}
	if conn == nil || conn.Address == nil {
		return m, fmt.Errorf("%w: no connection address", ErrBadSDP)
	}
	ip, err := netip.ParseAddr(conn.Address.Address)
	if err != nil {
		// A host name in c= is legal but rare; we do not resolve names on the
		// media path.
		return m, fmt.Errorf("%w: connection address is not an IP", ErrBadSDP)
	}
	port := audio.MediaName.Port.Value
	if port <= 0 || port > 65535 {
		return m, fmt.Errorf("%w: media port %d", ErrBadSDP, port)
	}
	m.Addr = netip.AddrPortFrom(ip.Unmap(), uint16(port))
	m.Hold = ip.IsUnspecified()

	rtpmap := map[int]string{}
	for _, a := range audio.Attributes {
		if a.Key != "rtpmap" {
			continue
		}
		ptStr, enc, ok := strings.Cut(a.Value, " ")
		pt, err := strconv.Atoi(ptStr)
		if !ok || err != nil {
			continue
		}
		rtpmap[pt] = strings.ToLower(strings.TrimSpace(enc))
	}
	found := false
	for _, f := range audio.MediaName.Formats {
		pt, err := strconv.Atoi(f)
		if err != nil || pt < 0 || pt > 127 {
			continue
		}
		enc, mapped := rtpmap[pt]
		switch {
		case !found && (enc == "pcmu/8000" || enc == "pcmu/8000/1" || (!mapped && pt == 0)):
			m.Codec, m.AudioPT, found = g711.PCMU, uint8(pt), true
		case !found && (enc == "pcma/8000" || enc == "pcma/8000/1" || (!mapped && pt == 8)):
			m.Codec, m.AudioPT, found = g711.PCMA, uint8(pt), true
		case m.DTMFPT < 0 && enc == "telephone-event/8000":
			m.DTMFPT = pt
		}
	}
	if !found {
		return m, ErrNoCommonCodec
	}
	m.Direction = sessionDir
	if d, ok := directionOf(audio.Attributes); ok {
		m.Direction = d
	}
	return m, nil
}

func directionOf(attrs []sdp.Attribute) (Direction, bool) {
	for _, a := range attrs {
		switch a.Key {
		case "sendrecv":
			return SendRecv, true
		case "sendonly":
			return SendOnly, true
		case "recvonly":
			return RecvOnly, true
		case "inactive":
			return Inactive, true
		}
	}
	return SendRecv, false
}

// Local describes our side for an answer or an offer.
type Local struct {
	Host      string // our RTP address (IP, or the external host name) as the peer must see it
	Port      uint16 // our RTP port
	SessionID uint64
	Version   uint64
	// OfferKey, when set, makes BuildOffer offer RTP/SAVP with this key
	// (a=crypto tag OfferCryptoTag) instead of RTP/AVP.
	OfferKey []byte
	// Codecs, when set, are the audio formats BuildOffer offers, in
	// order; nil offers PCMU and PCMA.
	Codecs []g711.Codec
	// DTMFPT is the telephone-event payload type BuildOffer offers: 0 is
	// OfferDTMFPT, -1 offers none.
	DTMFPT int
}

// BuildAnswer writes our answer to an offer whose choice is m: the chosen
// stream (RTP/SAVP with our a=crypto under the offer's tag when m.SRTP is
// set) in its place, every other offered m= line rejected with port 0.
func BuildAnswer(l Local, m Media) []byte {
	dir := m.Direction.Reverse()
	if m.Hold {
		dir = Inactive
	}
	var b strings.Builder
	writeHeader(&b, l)
	for i, ml := range m.lines {
		if i == m.index {
			continue
		}
		if i > m.index {
			break
		}
		fmt.Fprintf(&b, "m=%s 0 %s %s\r\n", ml.media, ml.proto, ml.format)
	}
	proto := protoAVP
	if m.SRTP != nil {
		proto = protoSAVP
	}
	writeMedia(&b, l, proto, []rtpmapEntry{{m.AudioPT, m.Codec}}, m.DTMFPT)
	if m.SRTP != nil {
		b.WriteString("a=crypto:" + Crypto{Tag: m.SRTP.Tag, Suite: SuiteAES128SHA80, Key: m.SRTP.Local}.String() + "\r\n")
	}
	b.WriteString("a=" + dir.String() + "\r\n")
	for i := m.index + 1; i < len(m.lines); i++ {
		ml := m.lines[i]
		fmt.Fprintf(&b, "m=%s 0 %s %s\r\n", ml.media, ml.proto, ml.format)
	}
	return []byte(b.String())
}

// OfferDTMFPT is the telephone-event payload type of our own offers.
const OfferDTMFPT = 101

// OfferCryptoTag is the a=crypto tag of our own SRTP offers.
const OfferCryptoTag = 1

// BuildOffer writes our offer, for an INVITE that came without one or
// for one of ours: PCMU, PCMA and telephone-event (or l.Codecs and
// l.DTMFPT), over RTP/SAVP when l.OfferKey is set.
func BuildOffer(l Local) []byte {
	audio := []rtpmapEntry{{0, g711.PCMU}, {8, g711.PCMA}}
	if len(l.Codecs) > 0 {
		audio = make([]rtpmapEntry, len(l.Codecs))
		for i, c := range l.Codecs {
			audio[i] = rtpmapEntry{uint8(c), c}
		}
	}
	dtmfPT := l.DTMFPT
	if dtmfPT == 0 {
		dtmfPT = OfferDTMFPT
	}
	var b strings.Builder
	writeHeader(&b, l)
	proto := protoAVP
	if l.OfferKey != nil {
		proto = protoSAVP
	}
	writeMedia(&b, l, proto, audio, dtmfPT)
	if l.OfferKey != nil {
		b.WriteString("a=crypto:" + Crypto{Tag: OfferCryptoTag, Suite: SuiteAES128SHA80, Key: l.OfferKey}.String() + "\r\n")
	}
	b.WriteString("a=sendrecv\r\n")
	return []byte(b.String())
}

func writeHeader(b *strings.Builder, l Local) {
	ipv := "IP4"
	if a, err := netip.ParseAddr(l.Host); err == nil && a.Is6() && !a.Is4In6() {
		ipv = "IP6"
	}
	fmt.Fprintf(b, "v=0\r\no=groupbridge %d %d IN %s %s\r\ns=groupbridge\r\nc=IN %s %s\r\nt=0 0\r\n",
		l.SessionID, l.Version, ipv, l.Host, ipv, l.Host)
}

// rtpmapEntry is one audio format of an m= line.
type rtpmapEntry struct {
	pt    uint8
	codec g711.Codec
}

func writeMedia(b *strings.Builder, l Local, proto string, audio []rtpmapEntry, dtmfPT int) {
	fmt.Fprintf(b, "m=audio %d %s", l.Port, proto)
	for _, e := range audio {
		fmt.Fprintf(b, " %d", e.pt)
	}
	if dtmfPT >= 0 {
		fmt.Fprintf(b, " %d", dtmfPT)
	}
	b.WriteString("\r\n")
	for _, e := range audio {
		fmt.Fprintf(b, "a=rtpmap:%d %s/8000\r\n", e.pt, e.codec)
	}
	if dtmfPT >= 0 {
		fmt.Fprintf(b, "a=rtpmap:%d telephone-event/8000\r\na=fmtp:%d 0-15\r\n", dtmfPT, dtmfPT)
	}
	b.WriteString("a=ptime:20\r\n")
}
