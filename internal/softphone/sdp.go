package softphone

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/pion/sdp/v3"

	"github.com/groupbridge/groupbridge/media/g711"
)

// Direction is an SDP media direction attribute (RFC 3264 section 5.1),
// always seen from the side that wrote the description.
type Direction string

// The four SDP directions.
const (
	SendRecv Direction = "sendrecv"
	SendOnly Direction = "sendonly"
	RecvOnly Direction = "recvonly"
	Inactive Direction = "inactive"
)

// sends reports whether the writer of a description with direction d sends media.
func (d Direction) sends() bool { return d == SendRecv || d == SendOnly }

// receives reports whether the writer of a description with direction d accepts media.
func (d Direction) receives() bool { return d == SendRecv || d == RecvOnly }

// ErrSDP marks a session description the phone cannot use: unparsable, no
// audio stream, no common codec, no address. Test with errors.Is.
var ErrSDP = errors.New("softphone: unusable SDP")

// sdpOffer is what the phone puts into an SDP body (offer or answer).
type sdpOffer struct {
	addr      netip.AddrPort // RTP address
	sessionID uint64         // o= session id, fixed for the call
	version   uint64         // o= version, bumped on every new description (RFC 3264 section 8)
	codecs    []g711.Codec   // formats in preference order
	eventPT   int            // telephone-event payload type; < 0 leaves it out
	direction Direction
	crypto    *cryptoAttr // non-nil offers RTP/SAVP with this SDES key
}

// srtpSuite is the one SDES crypto suite the phone speaks, the one RFC 4568
// makes mandatory and the bridge answers with.
const srtpSuite = "AES_CM_128_HMAC_SHA1_80"

// srtpKeyLen is the suite's master key (16 bytes) followed by its master
// salt (14 bytes), as the inline key carries them (RFC 4568 section 6.1).
const srtpKeyLen = 30

// cryptoAttr is one SDES a=crypto line of the phone's suite.
type cryptoAttr struct {
	tag int
	key [srtpKeyLen]byte
}

// String renders the attribute value: "1 AES_CM_128_HMAC_SHA1_80 inline:...".
func (c cryptoAttr) String() string {
	return strconv.Itoa(c.tag) + " " + srtpSuite + " inline:" + base64.StdEncoding.EncodeToString(c.key[:])
}

// parseCrypto reads an a=crypto value (RFC 4568 section 9.1). Only the
// phone's suite with a 30-byte inline key counts; an MKI is refused because
// the phone sends none and pion would need it configured, and a lifetime is
// ignored since no test call lives for 2^31 packets.
func parseCrypto(v string) (cryptoAttr, bool) {
	f := strings.Fields(v)
	if len(f) < 3 || f[1] != srtpSuite {
		return cryptoAttr{}, false
	}
	tag, err := strconv.Atoi(f[0])
	if err != nil || tag < 0 || tag > 999999999 {
		return cryptoAttr{}, false
	}
	// Several key-params may follow, separated by ';'; the first inline one is used.
	for kp := range strings.SplitSeq(f[2], ";") {
		b64, ok := strings.CutPrefix(kp, "inline:")
		if !ok {
			continue
		}
		b64, rest, _ := strings.Cut(b64, "|")
		if strings.Contains(rest, ":") { // lifetime|MKI:length, or MKI alone
			return cryptoAttr{}, false
		}
		key, err := base64.StdEncoding.DecodeString(b64)
		if err != nil {
			key, err = base64.RawStdEncoding.DecodeString(b64)
		}
		if err != nil || len(key) != srtpKeyLen {
			return cryptoAttr{}, false
		}
		c := cryptoAttr{tag: tag}
		copy(c.key[:], key)
		return c, true
	}
	return cryptoAttr{}, false
}

// marshal renders o as an SDP body with one audio stream at 20 ms ptime.
func (o sdpOffer) marshal() ([]byte, error) {
	ip := o.addr.Addr().Unmap()
	addrType := "IP4"
	if ip.Is6() {
		addrType = "IP6"
	}
	md := &sdp.MediaDescription{
		MediaName: sdp.MediaName{
			Media:  "audio",
			Port:   sdp.RangedPort{Value: int(o.addr.Port())},
			Protos: []string{"RTP", "AVP"},
		},
	}
	if o.crypto != nil {
		md.MediaName.Protos = []string{"RTP", "SAVP"}
	}
	for _, c := range o.codecs {
		pt := strconv.Itoa(int(c))
		md.MediaName.Formats = append(md.MediaName.Formats, pt)
		md.Attributes = append(md.Attributes, sdp.NewAttribute("rtpmap", pt+" "+c.String()+"/8000"))
	}
	if o.eventPT >= 0 {
		pt := strconv.Itoa(o.eventPT)
		md.MediaName.Formats = append(md.MediaName.Formats, pt)
		md.Attributes = append(md.Attributes,
			sdp.NewAttribute("rtpmap", pt+" telephone-event/8000"),
			// 0-15 are the keypad; 16 (flash) is what most phones also list.
			sdp.NewAttribute("fmtp", pt+" 0-16"))
	}
	if o.crypto != nil {
		md.Attributes = append(md.Attributes, sdp.NewAttribute("crypto", o.crypto.String()))
	}
	md.Attributes = append(md.Attributes,
		sdp.NewAttribute("ptime", "20"),
		sdp.NewPropertyAttribute(string(o.direction)))
	s := &sdp.SessionDescription{
		Origin: sdp.Origin{
			Username:       "-",
			SessionID:      o.sessionID,
			SessionVersion: o.version,
			NetworkType:    "IN",
			AddressType:    addrType,
			UnicastAddress: ip.String(),
		},
		SessionName: "groupbridge softphone",
		ConnectionInformation: &sdp.ConnectionInformation{
			NetworkType: "IN",
			AddressType: addrType,
			Address:     &sdp.Address{Address: ip.String()},
		},
		TimeDescriptions:  []sdp.TimeDescription{{}},
		MediaDescriptions: []*sdp.MediaDescription{md},
	}
	b, err := s.Marshal()
	if err != nil {
		return nil, fmt.Errorf("softphone: marshal SDP: %w", err)
	}
	return b, nil
}

// remoteMedia is what the phone takes from the peer's description.
type remoteMedia struct {
	addr      netip.AddrPort // where to send RTP; port 0 or an unspecified IP means nowhere
	codec     g711.Codec     // the first acceptable audio format
	codecs    []g711.Codec   // every acceptable audio format, in the description's order
	eventPT   int            // telephone-event payload type, -1 when absent
	direction Direction
	savp      bool        // the stream is RTP/SAVP
	crypto    *cryptoAttr // the first usable a=crypto of an RTP/SAVP stream, else nil
}

// parseSDP reads the first audio stream of body. Only G.711 formats listed
// in accept count; the first of them in the description's own order wins,
// which is both how an answer names the chosen codec and how an offerer
// states its preference (RFC 3264 sections 5.1 and 6.1).
func parseSDP(body []byte, accept []g711.Codec) (remoteMedia, error) {
	var s sdp.SessionDescription
	if err := s.Unmarshal(body); err != nil {
		return remoteMedia{}, fmt.Errorf("%w: parse: %w", ErrSDP, err)
	}
	var md *sdp.MediaDescription
	for _, m := range s.MediaDescriptions {
		if m.MediaName.Media == "audio" && m.MediaName.Port.Value != 0 {
			md = m
			break
		}
	}
	if md == nil {
		return remoteMedia{}, fmt.Errorf("%w: no active audio stream", ErrSDP)
	}
	savp := false
	switch p := strings.Join(md.MediaName.Protos, "/"); p {
	case "RTP/AVP":
	case "RTP/SAVP":
		savp = true
	default:
		// RTP/SAVPF, UDP/TLS/RTP/SAVP (DTLS) and friends are not spoken here.
		return remoteMedia{}, fmt.Errorf("%w: audio transport %q is not RTP/AVP or RTP/SAVP", ErrSDP, p)
	}
	if md.MediaName.Port.Value < 0 || md.MediaName.Port.Value > 65535 {
		return remoteMedia{}, fmt.Errorf("%w: audio port %d out of range", ErrSDP, md.MediaName.Port.Value)
	}

	conn := md.ConnectionInformation
	if conn == nil {
		conn = s.ConnectionInformation
	}
	if conn == nil || conn.Address == nil {
		return remoteMedia{}, fmt.Errorf("%w: no connection address", ErrSDP)
	}
	ip, err := netip.ParseAddr(conn.Address.Address)
	if err != nil {
		return remoteMedia{}, fmt.Errorf("%w: connection address %q: %w", ErrSDP, conn.Address.Address, err)
	}

	rm := remoteMedia{
		addr:      netip.AddrPortFrom(ip.Unmap(), uint16(md.MediaName.Port.Value)),
		eventPT:   -1,
		direction: SendRecv,
		savp:      savp,
	}
	if savp {
		for _, a := range md.Attributes {
			if a.Key != "crypto" {
				continue
			}
			if c, ok := parseCrypto(a.Value); ok {
				rm.crypto = &c
				break
			}
		}
	}
	// A media-level direction overrides the session-level one (RFC 3264 section 5.1).
	for _, attrs := range [][]sdp.Attribute{s.Attributes, md.Attributes} {
		for _, a := range attrs {
			switch d := Direction(a.Key); d {
			case SendRecv, SendOnly, RecvOnly, Inactive:
				rm.direction = d
			}
		}
	}
	if ip.IsUnspecified() {
		// c=0.0.0.0 is the RFC 2543 way to put a call on hold.
		rm.direction = Inactive
	}

	rtpmaps := make(map[string]string)
	for _, a := range md.Attributes {
		if a.Key != "rtpmap" {
			continue
		}
		pt, enc, ok := strings.Cut(strings.TrimSpace(a.Value), " ")
		if ok {
			rtpmaps[pt] = strings.ToLower(strings.TrimSpace(enc))
		}
	}
	for _, f := range md.MediaName.Formats {
		n, err := strconv.Atoi(f)
		if err != nil || n < 0 || n > 127 {
			continue
		}
		enc, mapped := rtpmaps[f]
		if enc == "telephone-event/8000" {
			if rm.eventPT < 0 {
				rm.eventPT = n
			}
			continue
		}
		c, ok := g711Format(n, enc, mapped)
		if ok && acceptable(c, accept) && !acceptable(c, rm.codecs) {
			rm.codecs = append(rm.codecs, c)
		}
	}
	if len(rm.codecs) == 0 {
		return remoteMedia{}, fmt.Errorf("%w: no common codec in %q", ErrSDP, md.MediaName.Formats)
	}
	rm.codec = rm.codecs[0]
	return rm, nil
}

// g711Format maps an m= format to a G.711 codec. Static types 0 and 8 need
// no rtpmap (RFC 3551), but an rtpmap, when present, has the last word: a
// peer may remap them, and a dynamic type may carry PCMU or PCMA too. The
// phone only sends with the static numbers, so a dynamic G.711 is refused.
func g711Format(pt int, enc string, mapped bool) (g711.Codec, bool) {
	if !mapped {
		switch pt {
		case int(g711.PCMU):
			return g711.PCMU, true
		case int(g711.PCMA):
			return g711.PCMA, true
		}
		return 0, false
	}
	// Channels may follow the clock rate ("PCMU/8000/1").
	enc = strings.TrimSuffix(enc, "/1")
	switch {
	case pt == int(g711.PCMU) && enc == "pcmu/8000":
		return g711.PCMU, true
	case pt == int(g711.PCMA) && enc == "pcma/8000":
		return g711.PCMA, true
	}
	return 0, false
}

func acceptable(c g711.Codec, list []g711.Codec) bool {
	for _, a := range list {
		if a == c {
			return true
		}
	}
	return false
}
