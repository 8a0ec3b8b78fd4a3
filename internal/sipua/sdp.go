package sipua

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

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
}

// maxSDP bounds the body we try to parse; real offers are well under 4 kB.
const maxSDP = 16 << 10

// ParseOffer reads a peer's offer (or, with the same rules, its answer to our
// offer) and chooses the first PCMU or PCMA format in the peer's order of
// preference, plus telephone-event at 8000 Hz when present.
func ParseOffer(body []byte) (Media, error) {
	m := Media{DTMFPT: -1}
	if len(body) == 0 || len(body) > maxSDP {
		return m, fmt.Errorf("%w: body of %d bytes", ErrBadSDP, len(body))
	}
	var sd sdp.SessionDescription
	if err := sd.UnmarshalString(string(body)); err != nil {
		return m, fmt.Errorf("%w: %v", ErrBadSDP, shorten(err.Error()))
	}
	sessionDir, _ := directionOf(sd.Attributes)
	var audio *sdp.MediaDescription
	for _, md := range sd.MediaDescriptions {
		if md.MediaName.Media == "audio" && md.MediaName.Port.Value != 0 {
			audio = md
			break
		}
	}
	if audio == nil {
		return m, fmt.Errorf("%w: no active audio stream", ErrNoCommonCodec)
	}
	proto := strings.Join(audio.MediaName.Protos, "/")
	if proto != "RTP/AVP" {
		return m, fmt.Errorf("%w: transport %q (want RTP/AVP)", ErrNoCommonCodec, shorten(proto))
	}
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

// shorten keeps error texts from peers' bodies short in our errors and logs.
func shorten(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}

// Local describes our side for an answer or an offer.
type Local struct {
	Host      string // our RTP address (IP, or the external host name) as the peer must see it
	Port      uint16 // our RTP port
	SessionID uint64
	Version   uint64
}

// BuildAnswer writes our answer to an offer whose choice is m.
func BuildAnswer(l Local, m Media) []byte {
	dir := m.Direction.Reverse()
	if m.Hold {
		dir = Inactive
	}
	var b strings.Builder
	writeHeader(&b, l)
	writeMedia(&b, l, []rtpmapEntry{{m.AudioPT, m.Codec}}, m.DTMFPT)
	b.WriteString("a=" + dir.String() + "\r\n")
	return []byte(b.String())
}

// OfferDTMFPT is the telephone-event payload type of our own offers.
const OfferDTMFPT = 101

// BuildOffer writes our offer for an INVITE that came without one: PCMU,
// PCMA and telephone-event.
func BuildOffer(l Local) []byte {
	var b strings.Builder
	writeHeader(&b, l)
	writeMedia(&b, l, []rtpmapEntry{{0, g711.PCMU}, {8, g711.PCMA}}, OfferDTMFPT)
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

func writeMedia(b *strings.Builder, l Local, audio []rtpmapEntry, dtmfPT int) {
	fmt.Fprintf(b, "m=audio %d RTP/AVP", l.Port)
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
