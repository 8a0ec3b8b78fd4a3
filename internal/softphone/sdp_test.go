package softphone

import (
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/groupbridge/groupbridge/media/g711"
)

func TestOfferMarshal(t *testing.T) {
	addr := netip.MustParseAddrPort("127.0.0.1:40000")
	cases := []struct {
		name    string
		offer   sdpOffer
		want    []string // lines that must appear, in this order
		without []string // substrings that must not appear
	}{
		{
			name:  "default offer",
			offer: sdpOffer{addr: addr, sessionID: 7, version: 1, codecs: []g711.Codec{g711.PCMU, g711.PCMA}, eventPT: 101, direction: SendRecv},
			want: []string{
				"v=0", "o=- 7 1 IN IP4 127.0.0.1", "c=IN IP4 127.0.0.1", "t=0 0",
				"m=audio 40000 RTP/AVP 0 8 101", "a=rtpmap:0 PCMU/8000", "a=rtpmap:8 PCMA/8000",
				"a=rtpmap:101 telephone-event/8000", "a=fmtp:101 0-16", "a=ptime:20", "a=sendrecv",
			},
		},
		{
			name:  "linphone event type, PCMA first, on hold",
			offer: sdpOffer{addr: addr, sessionID: 7, version: 3, codecs: []g711.Codec{g711.PCMA, g711.PCMU}, eventPT: 96, direction: SendOnly},
			want:  []string{"o=- 7 3 IN IP4 127.0.0.1", "m=audio 40000 RTP/AVP 8 0 96", "a=rtpmap:96 telephone-event/8000", "a=sendonly"},
		},
		{
			name:    "no telephone-event",
			offer:   sdpOffer{addr: addr, codecs: []g711.Codec{g711.PCMU}, eventPT: -1, direction: SendRecv},
			want:    []string{"m=audio 40000 RTP/AVP 0", "a=rtpmap:0 PCMU/8000"},
			without: []string{"telephone-event", "fmtp"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b, err := tc.offer.marshal()
			if err != nil {
				t.Fatal(err)
			}
			lines := strings.Split(strings.TrimRight(string(b), "\r\n"), "\r\n")
			at := 0
			for _, w := range tc.want {
				i := slices.Index(lines[at:], w)
				if i < 0 {
					t.Fatalf("line %q missing or out of order in:\n%s", w, b)
				}
				at += i + 1
			}
			for _, w := range tc.without {
				if strings.Contains(string(b), w) {
					t.Errorf("offer contains %q:\n%s", w, b)
				}
			}
			// What the phone writes, the phone (and so any parser) reads back.
			rm, err := parseSDP(b, tc.offer.codecs)
			if err != nil {
				t.Fatalf("parse own offer: %v", err)
			}
			if rm.addr != addr || rm.codec != tc.offer.codecs[0] || rm.eventPT != tc.offer.eventPT || rm.direction != tc.offer.direction {
				t.Errorf("parsed back %+v", rm)
			}
		})
	}
}

func TestParseSDP(t *testing.T) {
	const head = "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\n"
	both := []g711.Codec{g711.PCMU, g711.PCMA}
	cases := []struct {
		name   string
		body   string
		accept []g711.Codec
		want   remoteMedia
		err    bool
	}{
		{
			name:   "PCMU with telephone-event",
			body:   head + "m=audio 20000 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n",
			accept: both,
			want:   remoteMedia{addr: netip.MustParseAddrPort("10.0.0.1:20000"), codec: g711.PCMU, codecs: []g711.Codec{g711.PCMU}, eventPT: 101, direction: SendRecv},
		},
		{
			name:   "static types need no rtpmap, answer order wins",
			body:   head + "m=audio 20000 RTP/AVP 8 0\r\n",
			accept: both,
			want:   remoteMedia{addr: netip.MustParseAddrPort("10.0.0.1:20000"), codec: g711.PCMA, codecs: []g711.Codec{g711.PCMA, g711.PCMU}, eventPT: -1, direction: SendRecv},
		},
		{
			name:   "only accepted codecs count",
			body:   head + "m=audio 20000 RTP/AVP 8 0\r\n",
			accept: []g711.Codec{g711.PCMU},
			want:   remoteMedia{addr: netip.MustParseAddrPort("10.0.0.1:20000"), codec: g711.PCMU, codecs: []g711.Codec{g711.PCMU}, eventPT: -1, direction: SendRecv},
		},
		{
			name:   "media-level c= and direction override session level",
			body:   "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\na=sendonly\r\nm=audio 20000 RTP/AVP 0 96\r\nc=IN IP4 10.0.0.2\r\na=rtpmap:96 telephone-event/8000\r\na=recvonly\r\n",
			accept: both,
			want:   remoteMedia{addr: netip.MustParseAddrPort("10.0.0.2:20000"), codec: g711.PCMU, codecs: []g711.Codec{g711.PCMU}, eventPT: 96, direction: RecvOnly},
		},
		{
			name:   "c=0.0.0.0 is the old hold",
			body:   "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 0.0.0.0\r\nt=0 0\r\nm=audio 20000 RTP/AVP 0\r\n",
			accept: both,
			want:   remoteMedia{addr: netip.MustParseAddrPort("0.0.0.0:20000"), codec: g711.PCMU, codecs: []g711.Codec{g711.PCMU}, eventPT: -1, direction: Inactive},
		},
		{
			name:   "rejected video stream is skipped, rtpmap channels allowed",
			body:   head + "m=video 0 RTP/AVP 96\r\nm=audio 20000 RTP/AVP 18 8\r\na=rtpmap:18 G729/8000\r\na=rtpmap:8 PCMA/8000/1\r\n",
			accept: both,
			want:   remoteMedia{addr: netip.MustParseAddrPort("10.0.0.1:20000"), codec: g711.PCMA, codecs: []g711.Codec{g711.PCMA}, eventPT: -1, direction: SendRecv},
		},
		{
			name:   "remapped static type is not G.711",
			body:   head + "m=audio 20000 RTP/AVP 0\r\na=rtpmap:0 opus/48000/2\r\n",
			accept: both,
			err:    true,
		},
		{name: "no common codec", body: head + "m=audio 20000 RTP/AVP 18\r\n", accept: both, err: true},
		{name: "no audio", body: head + "m=video 20000 RTP/AVP 96\r\n", accept: both, err: true},
		{name: "audio rejected", body: head + "m=audio 0 RTP/AVP 0\r\n", accept: both, err: true},
		{name: "DTLS-SRTP", body: head + "m=audio 20000 UDP/TLS/RTP/SAVP 0\r\n", accept: both, err: true},
		{name: "SAVPF", body: head + "m=audio 20000 RTP/SAVPF 0\r\n", accept: both, err: true},
		{name: "no connection", body: "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 20000 RTP/AVP 0\r\n", accept: both, err: true},
		{name: "hostname connection", body: "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 pbx.example\r\nt=0 0\r\nm=audio 20000 RTP/AVP 0\r\n", accept: both, err: true},
		{name: "garbage", body: "hello", accept: both, err: true},
		{name: "empty", body: "", accept: both, err: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseSDP([]byte(tc.body), tc.accept)
			if tc.err {
				if !errors.Is(err, ErrSDP) {
					t.Fatalf("parseSDP = %+v, %v; want an ErrSDP", got, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.addr != tc.want.addr || got.codec != tc.want.codec || !slices.Equal(got.codecs, tc.want.codecs) ||
				got.eventPT != tc.want.eventPT || got.direction != tc.want.direction {
				t.Errorf("parseSDP =\n %+v\nwant\n %+v", got, tc.want)
			}
		})
	}
}

func TestAnswerDirection(t *testing.T) {
	for offer, want := range map[Direction]Direction{SendRecv: SendRecv, SendOnly: RecvOnly, RecvOnly: SendOnly, Inactive: Inactive} {
		if got := answerDirection(offer); got != want {
			t.Errorf("answerDirection(%s) = %s, want %s", offer, got, want)
		}
	}
}

func FuzzParseSDP(f *testing.F) {
	f.Add([]byte("v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\nm=audio 20000 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na=sendonly\r\n"))
	f.Add([]byte("v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 1 RTP/AVP 8\r\nc=IN IP6 ::1\r\n"))
	f.Add([]byte("v=0\r\nm=audio 99999 RTP/AVP 0\r\n"))
	f.Add([]byte("v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\nm=audio 20000 RTP/SAVP 0\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:" + testKeyB64 + "\r\n"))
	f.Fuzz(func(t *testing.T, body []byte) {
		rm, err := parseSDP(body, []g711.Codec{g711.PCMU, g711.PCMA})
		if err != nil {
			if !errors.Is(err, ErrSDP) {
				t.Fatalf("error %v is not an ErrSDP", err)
			}
			return
		}
		if !rm.codec.Valid() || rm.codecs[0] != rm.codec || rm.eventPT > 127 || (rm.crypto != nil && !rm.savp) {
			t.Fatalf("accepted nonsense: %+v", rm)
		}
	})
}

// testKey is 30 bytes 0..29; testKeyB64 is its inline form.
var testKey = func() (k [srtpKeyLen]byte) {
	for i := range k {
		k[i] = byte(i)
	}
	return k
}()

const testKeyB64 = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd"

func TestOfferMarshalSRTP(t *testing.T) {
	o := sdpOffer{
		addr: netip.MustParseAddrPort("127.0.0.1:4000"), sessionID: 1, version: 1,
		codecs: []g711.Codec{g711.PCMU}, eventPT: 101, direction: SendRecv,
		crypto: &cryptoAttr{tag: 1, key: testKey},
	}
	b, err := o.marshal()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"m=audio 4000 RTP/SAVP 0 101\r\n", "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:" + testKeyB64 + "\r\n"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("offer lacks %q:\n%s", want, b)
		}
	}
	// What the phone writes, it reads back.
	rm, err := parseSDP(b, []g711.Codec{g711.PCMU})
	if err != nil {
		t.Fatal(err)
	}
	if !rm.savp || rm.crypto == nil || *rm.crypto != *o.crypto {
		t.Errorf("round trip = savp %v crypto %+v, want %+v", rm.savp, rm.crypto, o.crypto)
	}
	o.crypto = nil
	if b, _ = o.marshal(); !strings.Contains(string(b), "RTP/AVP") || strings.Contains(string(b), "crypto") {
		t.Errorf("plain offer:\n%s", b)
	}
}

func TestParseSDPCrypto(t *testing.T) {
	const head = "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\n"
	cases := []struct {
		name    string
		body    string
		savp    bool
		wantTag int // -1: no usable crypto
	}{
		{"plain", head + "m=audio 2000 RTP/AVP 0\r\n", false, -1},
		{"plain ignores crypto", head + "m=audio 2000 RTP/AVP 0\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:" + testKeyB64 + "\r\n", false, -1},
		{"savp", head + "m=audio 2000 RTP/SAVP 0\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:" + testKeyB64 + "\r\n", true, 1},
		{"savp without crypto", head + "m=audio 2000 RTP/SAVP 0\r\n", true, -1},
		{"other suite skipped", head + "m=audio 2000 RTP/SAVP 0\r\na=crypto:1 AES_CM_128_HMAC_SHA1_32 inline:" + testKeyB64 + "\r\na=crypto:2 AES_CM_128_HMAC_SHA1_80 inline:" + testKeyB64 + "\r\n", true, 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rm, err := parseSDP([]byte(tc.body), []g711.Codec{g711.PCMU})
			if err != nil {
				t.Fatal(err)
			}
			if rm.savp != tc.savp {
				t.Errorf("savp = %v, want %v", rm.savp, tc.savp)
			}
			switch {
			case tc.wantTag < 0 && rm.crypto != nil:
				t.Errorf("crypto = %+v, want none", rm.crypto)
			case tc.wantTag >= 0 && (rm.crypto == nil || rm.crypto.tag != tc.wantTag || rm.crypto.key != testKey):
				t.Errorf("crypto = %+v, want tag %d and the test key", rm.crypto, tc.wantTag)
			}
		})
	}
}

func TestParseCrypto(t *testing.T) {
	cases := []struct {
		in string
		ok bool
	}{
		{"1 AES_CM_128_HMAC_SHA1_80 inline:" + testKeyB64, true},
		{"1 AES_CM_128_HMAC_SHA1_80 inline:" + testKeyB64 + "|2^31", true},
		{"1 AES_CM_128_HMAC_SHA1_80 inline:" + testKeyB64 + " UNENCRYPTED_SRTCP", true},
		{"1 AES_CM_128_HMAC_SHA1_80 inline:" + testKeyB64 + "|2^20|1:4", false},          // MKI
		{"1 AES_CM_128_HMAC_SHA1_80 inline:" + testKeyB64 + "|1:4", false},               // MKI without lifetime
		{"1 AES_CM_128_HMAC_SHA1_80 inline:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBka", false}, // 27 bytes
		{"1 AES_CM_128_HMAC_SHA1_80 inline:!!!notbase64!!!", false},
		{"1 AES_CM_128_HMAC_SHA1_80 " + testKeyB64, false},
		{"x AES_CM_128_HMAC_SHA1_80 inline:" + testKeyB64, false},
		{"1 AES_256_CM_HMAC_SHA1_80 inline:" + testKeyB64, false},
		{"1 AES_CM_128_HMAC_SHA1_80", false},
		{"", false},
	}
	for _, tc := range cases {
		c, ok := parseCrypto(tc.in)
		if ok != tc.ok {
			t.Errorf("parseCrypto(%q) ok = %v, want %v", tc.in, ok, tc.ok)
			continue
		}
		if ok && (c.tag != 1 || c.key != testKey) {
			t.Errorf("parseCrypto(%q) = %+v", tc.in, c)
		}
	}
}

func FuzzParseCrypto(f *testing.F) {
	f.Add("1 AES_CM_128_HMAC_SHA1_80 inline:" + testKeyB64 + "|2^31")
	f.Add("2 AES_CM_128_HMAC_SHA1_80 inline:" + testKeyB64 + "|2^20|1:4;inline:" + testKeyB64)
	f.Add("1 AES_CM_128_HMAC_SHA1_32 inline:x")
	f.Fuzz(func(t *testing.T, v string) {
		c, ok := parseCrypto(v)
		if !ok {
			return
		}
		// What was accepted must render to something that reads back the same.
		back, ok := parseCrypto(c.String())
		if !ok || back != c {
			t.Fatalf("parseCrypto(%q) = %+v, which reads back as %+v, %v", v, c, back, ok)
		}
	})
}
