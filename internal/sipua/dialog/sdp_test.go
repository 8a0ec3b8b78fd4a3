package dialog

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/groupbridge/groupbridge/media/g711"
)

func offer(formats string, extra ...string) string {
	s := "v=0\r\no=- 1 1 IN IP4 192.0.2.10\r\ns=-\r\nc=IN IP4 192.0.2.10\r\nt=0 0\r\nm=audio 4000 RTP/AVP " + formats + "\r\n"
	for _, e := range extra {
		s += e + "\r\n"
	}
	return s
}

func TestParseOffer(t *testing.T) {
	tests := []struct {
		name    string
		body    string
		codec   g711.Codec
		pt      uint8
		dtmf    int
		dir     Direction
		hold    bool
		wantErr error
	}{
		{"PCMU only", offer("0"), g711.PCMU, 0, -1, SendRecv, false, nil},
		{"PCMA only", offer("8"), g711.PCMA, 8, -1, SendRecv, false, nil},
		{"PCMU then PCMA", offer("0 8"), g711.PCMU, 0, -1, SendRecv, false, nil},
		{"PCMA then PCMU", offer("8 0"), g711.PCMA, 8, -1, SendRecv, false, nil},
		{"opus first, PCMA after", offer("111 8 0", "a=rtpmap:111 opus/48000/2"), g711.PCMA, 8, -1, SendRecv, false, nil},
		{"telephone-event 101", offer("0 101", "a=rtpmap:101 telephone-event/8000", "a=fmtp:101 0-16"), g711.PCMU, 0, 101, SendRecv, false, nil},
		{"linphone telephone-event 96", offer("8 96", "a=rtpmap:96 telephone-event/8000"), g711.PCMA, 8, 96, SendRecv, false, nil},
		{"16 kHz telephone-event ignored", offer("0 97", "a=rtpmap:97 telephone-event/16000"), g711.PCMU, 0, -1, SendRecv, false, nil},
		{"dynamic PT mapped to PCMU", offer("98", "a=rtpmap:98 PCMU/8000"), g711.PCMU, 98, -1, SendRecv, false, nil},
		{"sendonly is hold", offer("0", "a=sendonly"), g711.PCMU, 0, -1, SendOnly, false, nil},
		{"inactive", offer("0", "a=inactive"), g711.PCMU, 0, -1, Inactive, false, nil},
		{"recvonly", offer("0", "a=recvonly"), g711.PCMU, 0, -1, RecvOnly, false, nil},
		{"old hold c=0.0.0.0", strings.Replace(offer("0"), "c=IN IP4 192.0.2.10", "c=IN IP4 0.0.0.0", 1), g711.PCMU, 0, -1, SendRecv, true, nil},
		{"no common codec", offer("9 18", "a=rtpmap:9 G722/8000", "a=rtpmap:18 G729/8000"), 0, 0, -1, SendRecv, false, ErrNoCommonCodec},
		{"PCMU name at wrong rate", offer("0", "a=rtpmap:0 PCMU/16000"), 0, 0, -1, SendRecv, false, ErrNoCommonCodec},
		{"SRTP profile with SRTP off", strings.Replace(offer("0"), "RTP/AVP", "RTP/SAVP", 1), 0, 0, -1, SendRecv, false, ErrNoSRTP},
		{"video only", strings.Replace(offer("0"), "m=audio", "m=video", 1), 0, 0, -1, SendRecv, false, ErrNoCommonCodec},
		{"garbage", "hello", 0, 0, -1, SendRecv, false, ErrBadSDP},
		{"empty", "", 0, 0, -1, SendRecv, false, ErrBadSDP},
		{"no c= line", strings.Replace(offer("0"), "c=IN IP4 192.0.2.10\r\n", "", 1), 0, 0, -1, SendRecv, false, ErrBadSDP},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, err := ParseOffer([]byte(tc.body))
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err = %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if m.Codec != tc.codec || m.AudioPT != tc.pt || m.DTMFPT != tc.dtmf || m.Direction != tc.dir || m.Hold != tc.hold {
				t.Fatalf("got %+v", m)
			}
			if !tc.hold && m.Addr != netip.MustParseAddrPort("192.0.2.10:4000") {
				t.Fatalf("addr %v", m.Addr)
			}
		})
	}
}

func TestBuildAnswerRoundTrip(t *testing.T) {
	tests := []struct {
		name    string
		offer   Media
		wantDir string
	}{
		{"sendrecv with DTMF", Media{Codec: g711.PCMA, AudioPT: 8, DTMFPT: 101, Direction: SendRecv}, "a=sendrecv"},
		{"caller holds", Media{Codec: g711.PCMU, AudioPT: 0, DTMFPT: -1, Direction: SendOnly}, "a=recvonly"},
		{"caller recvonly", Media{Codec: g711.PCMU, AudioPT: 0, DTMFPT: -1, Direction: RecvOnly}, "a=sendonly"},
		{"inactive", Media{Codec: g711.PCMU, AudioPT: 0, DTMFPT: 96, Direction: Inactive}, "a=inactive"},
		{"c=0.0.0.0 hold", Media{Codec: g711.PCMU, AudioPT: 0, DTMFPT: -1, Hold: true}, "a=inactive"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			body := BuildAnswer(Local{Host: "127.0.0.1", Port: 10002, SessionID: 7, Version: 1}, tc.offer)
			s := string(body)
			if !strings.Contains(s, tc.wantDir+"\r\n") || !strings.Contains(s, "a=ptime:20\r\n") {
				t.Fatalf("answer:\n%s", s)
			}
			got, err := ParseOffer(body)
			if err != nil {
				t.Fatalf("our own answer does not parse: %v\n%s", err, s)
			}
			if got.Codec != tc.offer.Codec || got.DTMFPT != tc.offer.DTMFPT || got.Addr.Port() != 10002 {
				t.Fatalf("round trip %+v", got)
			}
		})
	}
}

func TestBuildOfferLate(t *testing.T) {
	body := BuildOffer(Local{Host: "::1", Port: 10004, SessionID: 1, Version: 1})
	s := string(body)
	for _, want := range []string{"c=IN IP6 ::1", "m=audio 10004 RTP/AVP 0 8 101", "a=rtpmap:0 PCMU/8000", "a=rtpmap:8 PCMA/8000", "a=rtpmap:101 telephone-event/8000"} {
		if !strings.Contains(s, want) {
			t.Errorf("offer lacks %q:\n%s", want, s)
		}
	}
	m, err := ParseOffer(body)
	if err != nil || m.Codec != g711.PCMU || m.DTMFPT != 101 {
		t.Fatalf("parse own offer: %+v %v", m, err)
	}
}

// TestBuildOfferFormats: Local.Codecs and Local.DTMFPT choose what our
// offer carries, and the offer reads back as offered.
func TestBuildOfferFormats(t *testing.T) {
	for _, tc := range []struct {
		name   string
		codecs []g711.Codec
		dtmfPT int
		mline  string
		absent []string
		codec  g711.Codec
		readPT int
	}{
		{"default", nil, 0, "m=audio 10004 RTP/AVP 0 8 101\r\n", nil, g711.PCMU, 101},
		{"PCMA alone, no events", []g711.Codec{g711.PCMA}, -1, "m=audio 10004 RTP/AVP 8\r\n", []string{"PCMU", "telephone-event", "fmtp"}, g711.PCMA, -1},
		{"PCMA then PCMU, events 96", []g711.Codec{g711.PCMA, g711.PCMU}, 96, "m=audio 10004 RTP/AVP 8 0 96\r\n", []string{"101"}, g711.PCMA, 96},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := string(BuildOffer(Local{Host: "127.0.0.1", Port: 10004, SessionID: 1, Version: 1, Codecs: tc.codecs, DTMFPT: tc.dtmfPT}))
			if !strings.Contains(body, tc.mline) {
				t.Errorf("offer lacks %q:\n%s", tc.mline, body)
			}
			for _, a := range tc.absent {
				if strings.Contains(body, a) {
					t.Errorf("offer holds %q:\n%s", a, body)
				}
			}
			m, err := ParseOffer([]byte(body))
			if err != nil || m.Codec != tc.codec || m.DTMFPT != tc.readPT {
				t.Errorf("reads back as %v, events %d (%v); want %v, %d", m.Codec, m.DTMFPT, err, tc.codec, tc.readPT)
			}
		})
	}
}

func FuzzParseOffer(f *testing.F) {
	f.Add([]byte(offer("0 8 101", "a=rtpmap:101 telephone-event/8000")))
	f.Add([]byte(offer("8", "a=sendonly")))
	f.Add([]byte("v=0\r\n"))
	f.Add([]byte(strings.Replace(offer("0"), "4000", "99999", 1)))
	f.Add([]byte(both()))
	f.Fuzz(func(t *testing.T, b []byte) {
		if m, err := ParseOfferSRTP(b, SRTPOffer); err == nil && m.SRTP != nil {
			ans := BuildAnswer(Local{Host: "127.0.0.1", Port: 1000, SessionID: 1, Version: 1}, m)
			if back, err := ParseOfferSRTP(ans, SRTPRequire); err != nil || back.SRTP.Tag != m.SRTP.Tag {
				t.Fatalf("SRTP answer to accepted offer does not parse: %v\n%s", err, ans)
			}
		}
		m, err := ParseOffer(b)
		if err == nil {
			if !m.Codec.Valid() {
				t.Fatalf("accepted offer with codec %v", m.Codec)
			}
			// Whatever we accept, our answer to it must parse again.
			if _, err := ParseOffer(BuildAnswer(Local{Host: "127.0.0.1", Port: 1000, SessionID: 1, Version: 1}, m)); err != nil && !m.Hold {
				t.Fatalf("answer to accepted offer does not parse: %v", err)
			}
		}
	})
}

// A malformed offer's error goes to the log and the Warning header: the
// text pion quotes from the offer loses its digit runs, which may be a
// caller's number or a PIN.
func TestParseOfferErrorRedacted(t *testing.T) {
	const secret = "5557654321"
	bodies := []string{
		"v=0\r\no=- +1" + secret + " 73915\r\nm=audio x RTP/AVP zz\r\n",
		"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP+1" + secret + " 0\r\n",
		"v=1" + secret + "\r\n",
		"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/X" + secret + " 0\r\na=rtpmap:0 PCMU/8000\r\n",
	}
	for _, b := range bodies {
		_, err := ParseOfferSRTP([]byte(b), SRTPOffer)
		if err == nil {
			t.Fatalf("%q parsed", b)
		}
		for i := 0; i+4 <= len(secret); i++ {
			if strings.Contains(err.Error(), secret[i:i+4]) {
				t.Errorf("error %q holds the offer's digits %q", err, secret[i:i+4])
			}
		}
	}
}
