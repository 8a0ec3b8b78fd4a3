package dialog

import (
	"bytes"
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"github.com/groupbridge/groupbridge/media/g711"
	"github.com/groupbridge/groupbridge/media/rtpio"
)

// testKey is a recognisable 30-byte master key and salt, and testKey64 its
// base64 as phones write it.
var (
	testKey   = bytes.Repeat([]byte{0xA5, 0x5A, 0x01}, 10)
	testKey64 = base64.StdEncoding.EncodeToString(testKey)
)

func TestParseCrypto(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		tag     int
		suite   string
		key     bool // a usable key was read
		wantErr bool
	}{
		{"plain", "1 AES_CM_128_HMAC_SHA1_80 inline:" + testKey64, 1, SuiteAES128SHA80, true, false},
		{"lifetime", "2 AES_CM_128_HMAC_SHA1_80 inline:" + testKey64 + "|2^31", 2, SuiteAES128SHA80, true, false},
		{"lifetime in decimal", "3 AES_CM_128_HMAC_SHA1_80 inline:" + testKey64 + "|2147483648", 3, SuiteAES128SHA80, true, false},
		{"session params", "1 AES_CM_128_HMAC_SHA1_80 inline:" + testKey64 + " KDR=0 UNENCRYPTED_SRTCP", 1, SuiteAES128SHA80, true, false},
		{"second key ignored", "1 AES_CM_128_HMAC_SHA1_80 inline:" + testKey64 + ";inline:" + testKey64, 1, SuiteAES128SHA80, true, false},
		{"no padding", "1 AES_CM_128_HMAC_SHA1_80 inline:" + strings.TrimRight(testKey64, "="), 1, SuiteAES128SHA80, true, false},
		{"other suite read, no key", "4 AES_CM_128_HMAC_SHA1_32 inline:" + testKey64, 4, "AES_CM_128_HMAC_SHA1_32", false, false},
		{"MKI", "1 AES_CM_128_HMAC_SHA1_80 inline:" + testKey64 + "|2^20|1:4", 0, "", false, true},
		{"short key", "1 AES_CM_128_HMAC_SHA1_80 inline:" + base64.StdEncoding.EncodeToString(testKey[:16]), 0, "", false, true},
		{"not base64", "1 AES_CM_128_HMAC_SHA1_80 inline:!!!!", 0, "", false, true},
		{"not inline", "1 AES_CM_128_HMAC_SHA1_80 uri:" + testKey64, 0, "", false, true},
		{"bad tag", "x AES_CM_128_HMAC_SHA1_80 inline:" + testKey64, 0, "", false, true},
		{"negative tag", "-1 AES_CM_128_HMAC_SHA1_80 inline:" + testKey64, 0, "", false, true},
		{"tag too long", "1234567890 AES_CM_128_HMAC_SHA1_80 inline:" + testKey64, 0, "", false, true},
		{"missing key", "1 AES_CM_128_HMAC_SHA1_80", 0, "", false, true},
		{"empty", "", 0, "", false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := ParseCrypto(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if err != nil {
				if strings.Contains(err.Error(), strings.TrimRight(testKey64, "=")[:8]) {
					t.Errorf("error %q quotes the key", err)
				}
				return
			}
			if c.Tag != tt.tag || c.Suite != tt.suite || (c.Key != nil) != tt.key {
				t.Errorf("got %+v", c)
			}
			if tt.key && !bytes.Equal(c.Key, testKey) {
				t.Errorf("key %x, want %x", c.Key, testKey)
			}
		})
	}
}

// savp is an offer of RTP/SAVP with crypto attributes, and both is the
// "best effort" offer of an RTP/SAVP stream followed by an RTP/AVP one.
func savp(crypto ...string) string {
	s := strings.Replace(offer("0 101", "a=rtpmap:101 telephone-event/8000"), "RTP/AVP", "RTP/SAVP", 1)
	for _, c := range crypto {
		s += "a=crypto:" + c + "\r\n"
	}
	return s
}

func both() string {
	return savp("1 AES_CM_128_HMAC_SHA1_80 inline:"+testKey64) +
		"m=audio 4002 RTP/AVP 8\r\na=rtpmap:8 PCMA/8000\r\n"
}

func TestParseOfferSRTP(t *testing.T) {
	good := "1 AES_CM_128_HMAC_SHA1_80 inline:" + testKey64
	tests := []struct {
		name    string
		body    string
		mode    SRTPMode
		srtp    bool // SRTP chosen
		tag     int
		port    uint16
		wantErr error
	}{
		{"offer: plain", offer("0"), SRTPOffer, false, 0, 4000, nil},
		{"offer: SRTP", savp(good), SRTPOffer, true, 1, 4000, nil},
		{"offer: unusable suite first, usable after", savp("1 AES_CM_128_HMAC_SHA1_32 inline:"+testKey64, "5 AES_CM_128_HMAC_SHA1_80 inline:"+testKey64), SRTPOffer, true, 5, 4000, nil},
		{"offer: SAVP without crypto", savp(), SRTPOffer, false, 0, 0, ErrNoSRTP},
		{"offer: only a suite we lack", savp("1 AEAD_AES_256_GCM inline:" + testKey64), SRTPOffer, false, 0, 0, ErrNoSRTP},
		{"offer: best effort picks SRTP", both(), SRTPOffer, true, 1, 4000, nil},
		{"require: plain refused", offer("0"), SRTPRequire, false, 0, 0, ErrNoSRTP},
		{"require: SRTP", savp(good), SRTPRequire, true, 1, 4000, nil},
		{"require: best effort", both(), SRTPRequire, true, 1, 4000, nil},
		{"off: SRTP-only refused", savp(good), SRTPOff, false, 0, 0, ErrNoSRTP},
		{"off: best effort takes RTP/AVP", both(), SRTPOff, false, 0, 4002, nil},
		{"off: plain", offer("0"), SRTPOff, false, 0, 4000, nil},
		{"DTLS refused", strings.Replace(offer("0"), "RTP/AVP", "UDP/TLS/RTP/SAVP", 1), SRTPOffer, false, 0, 0, ErrNoCommonCodec},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := ParseOfferSRTP([]byte(tt.body), tt.mode)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if (m.SRTP != nil) != tt.srtp || m.Addr.Port() != tt.port {
				t.Fatalf("got %+v, want SRTP %v port %d", m, tt.srtp, tt.port)
			}
			if !tt.srtp {
				return
			}
			if m.SRTP.Tag != tt.tag || !bytes.Equal(m.SRTP.Remote, testKey) || len(m.SRTP.Local) != rtpio.SRTPKeyLen || bytes.Equal(m.SRTP.Local, testKey) {
				t.Fatalf("SRTP %+v", m.SRTP)
			}
			if k := m.SRTP.Keys(); !bytes.Equal(k.Local, m.SRTP.Local) || !bytes.Equal(k.Remote, testKey) {
				t.Errorf("Keys %+v", k)
			}
		})
	}
}

// TestSRTPAnswer checks our answer: RTP/SAVP with our key under the
// offer's tag, other offered streams rejected in place, and that a peer
// reading it gets our key back.
func TestSRTPAnswer(t *testing.T) {
	l := Local{Host: "127.0.0.1", Port: 10002, SessionID: 7, Version: 1}
	m, err := ParseOfferSRTP([]byte(both()), SRTPOffer)
	if err != nil {
		t.Fatal(err)
	}
	body := string(BuildAnswer(l, m))
	lines := strings.Split(strings.TrimSpace(body), "\r\n")
	var ms []string
	for _, ln := range lines {
		if strings.HasPrefix(ln, "m=") {
			ms = append(ms, ln)
		}
	}
	want := []string{"m=audio 10002 RTP/SAVP 0 101", "m=audio 0 RTP/AVP 8"}
	if strings.Join(ms, "|") != strings.Join(want, "|") {
		t.Errorf("m= lines %q, want %q\n%s", ms, want, body)
	}
	wantCrypto := "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:" + base64.StdEncoding.EncodeToString(m.SRTP.Local) + "\r\n"
	if !strings.Contains(body, wantCrypto) {
		t.Errorf("answer lacks %q:\n%s", wantCrypto, body)
	}
	// The caller reads our answer as an answer to its own offer.
	back, err := ParseOfferSRTP([]byte(body), SRTPRequire)
	if err != nil || back.SRTP == nil || !bytes.Equal(back.SRTP.Remote, m.SRTP.Local) || back.Codec != g711.PCMU {
		t.Fatalf("our answer reads back as %+v, %v", back, err)
	}

	// Our late offer under require, and the answer to it.
	key := bytes.Repeat([]byte{7}, rtpio.SRTPKeyLen)
	l.OfferKey = key
	off := string(BuildOffer(l))
	if !strings.Contains(off, "m=audio 10002 RTP/SAVP 0 8 101\r\n") || !strings.Contains(off, "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:"+base64.StdEncoding.EncodeToString(key)+"\r\n") {
		t.Errorf("SRTP offer:\n%s", off)
	}
	ans, err := ParseAnswer([]byte(savp("1 AES_CM_128_HMAC_SHA1_80 inline:"+testKey64)), key)
	if err != nil || !bytes.Equal(ans.SRTP.Local, key) || !bytes.Equal(ans.SRTP.Remote, testKey) {
		t.Errorf("ParseAnswer = %+v, %v", ans.SRTP, err)
	}
	if _, err := ParseAnswer([]byte(savp("2 AES_CM_128_HMAC_SHA1_80 inline:"+testKey64)), key); !errors.Is(err, ErrNoSRTP) {
		t.Errorf("answer under another tag: %v, want ErrNoSRTP", err)
	}
	if _, err := ParseAnswer([]byte(offer("0")), key); !errors.Is(err, ErrNoSRTP) {
		t.Errorf("plain answer to an SRTP offer: %v, want ErrNoSRTP", err)
	}
}

func FuzzParseCrypto(f *testing.F) {
	f.Add("1 AES_CM_128_HMAC_SHA1_80 inline:" + testKey64 + "|2^31|1:4")
	f.Add("1 AES_CM_128_HMAC_SHA1_80 inline:" + testKey64 + ";inline:x KDR=1")
	f.Add("99 AES_CM_128_HMAC_SHA1_32 inline:" + testKey64)
	f.Add("1 AES_CM_128_HMAC_SHA1_80 inline:")
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ParseCrypto(s)
		if err != nil {
			return
		}
		if c.Tag < 0 || c.Tag > maxCryptoTag {
			t.Fatalf("tag %d", c.Tag)
		}
		if c.Key == nil {
			return
		}
		if c.Suite != SuiteAES128SHA80 || len(c.Key) != rtpio.SRTPKeyLen {
			t.Fatalf("key of %d bytes for %s", len(c.Key), c.Suite)
		}
		// What we write for a key must read back as the same key.
		back, err := ParseCrypto(c.String())
		if err != nil || back.Tag != c.Tag || !bytes.Equal(back.Key, c.Key) {
			t.Fatalf("%q reads back as %+v, %v", c.String(), back, err)
		}
	})
}

func TestParseSRTPMode(t *testing.T) {
	for _, m := range []SRTPMode{SRTPOff, SRTPOffer, SRTPRequire} {
		if got, err := ParseSRTPMode(m.String()); err != nil || got != m {
			t.Errorf("ParseSRTPMode(%q) = %v, %v", m.String(), got, err)
		}
	}
	if _, err := ParseSRTPMode("Require"); err == nil {
		t.Error("ParseSRTPMode took a capitalised value")
	}
}
