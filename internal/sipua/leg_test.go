package sipua

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/groupbridge/groupbridge/internal/testports"
	"github.com/groupbridge/groupbridge/media/g711"
	"github.com/groupbridge/groupbridge/media/rtpio"
	"github.com/groupbridge/groupbridge/media/tone"
)

// Calls keyed outside SIP, as between two nodes: the caller's
// DialOptions.Sign adds a header and gives SRTP keys, the callee's
// Config.Gate checks the header against the exact offer and Call-ID the
// signer saw and gives the same keys the other way round.

// tapAddr is where the caller's SDP says its media is, so that what the
// callee sends passes the tap (mediaTap) on its way; the caller's media
// socket is on callerMedia, from which the callee takes nothing (neither
// its SDP address nor its SIP's), so that what the callee hears passed
// the tap too.
var (
	tapAddr     = netip.MustParseAddr("127.0.0.5")
	callerMedia = netip.MustParseAddr("127.0.0.7")
)

// mediaTap sits between two RTP streams on loopback and keeps a copy of
// every payload it forwards, by direction: it listens on tapAddr at the
// caller's RTP port, which the caller's SDP names, forwards what comes
// from the callee to the caller's real socket, and, once the caller has
// latched the tap, what comes from the caller to the callee.
type mediaTap struct {
	conn   *net.UDPConn
	caller netip.AddrPort // the caller's real RTP socket

	mu     sync.Mutex
	callee netip.AddrPort // learnt from its first packet
	seen   map[bool][][]byte
}

func newMediaTap(t *testing.T, callerPort uint16) *mediaTap {
	t.Helper()
	conn, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(tapAddr, callerPort)))
	if err != nil {
		t.Fatalf("tap: %v", err)
	}
	m := &mediaTap{conn: conn, caller: netip.AddrPortFrom(callerMedia, callerPort), seen: map[bool][][]byte{}}
	done := make(chan struct{})
	t.Cleanup(func() { _ = conn.Close(); <-done })
	go func() {
		defer close(done)
		buf := make([]byte, 2048)
		for {
			n, from, err := conn.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			fromCaller := from == m.caller
			m.mu.Lock()
			if !fromCaller && !m.callee.IsValid() {
				m.callee = from
			}
			to := m.caller
			if fromCaller {
				to = m.callee
			}
			m.seen[fromCaller] = append(m.seen[fromCaller], append([]byte(nil), buf[:n]...))
			m.mu.Unlock()
			if to.IsValid() {
				_, _ = conn.WriteToUDPAddrPort(buf[:n], to)
			}
		}
	}()
	return m
}

// packets returns the RTP packets (not RTCP) the tap saw from the caller
// or from the callee, and how many of them carry a plain tone of hz: a
// G.711 payload whose energy is at hz. Ciphertext reads as noise.
func (m *mediaTap) packets(fromCaller bool, codec g711.Codec, hz float64) (rtp, plain int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	samples := make([]int16, 160)
	for _, p := range m.seen[fromCaller] {
		if len(p) < 12+160 || p[0]>>6 != 2 || p[1]&0x7f != uint8(codec) {
			continue // RTCP, or not audio
		}
		rtp++
		codec.Decode(samples, p[12:12+160])
		level := tone.LevelDBFS(samples, hz)
		if level > -30 && level > tone.RMSDBFS(samples)-3 {
			plain++
		}
	}
	return rtp, plain
}

// legKeys are two distinct AEAD_AES_128_GCM keys (the internal legs'
// profile) and their reverse, for the caller and the callee of one leg.
func legKeys(seed byte) (caller, callee *rtpio.SRTPKeys) {
	return legKeysOf(seed, rtpio.SRTPAEADAES128GCM)
}

// legKeysOf is legKeys under profile p.
func legKeysOf(seed byte, p rtpio.SRTPProfile) (caller, callee *rtpio.SRTPKeys) {
	a := bytes.Repeat([]byte{seed}, p.KeyLen())
	b := bytes.Repeat([]byte{seed + 1}, p.KeyLen())
	return &rtpio.SRTPKeys{Local: a, Remote: b, Profile: p}, &rtpio.SRTPKeys{Local: b, Remote: a, Profile: p}
}

// sdpPort reads the port of an SDP's m=audio line.
func sdpPort(t *testing.T, sdp []byte) uint16 {
	t.Helper()
	_, rest, ok := strings.Cut(string(sdp), "m=audio ")
	port, err := strconv.Atoi(strings.Fields(rest)[0])
	if !ok || err != nil {
		t.Fatalf("no m=audio port in %q", sdp)
	}
	return uint16(port)
}

func TestDialSign(t *testing.T) {
	callerKeys, calleeKeys := legKeys(0x11)
	_, otherKeys := legKeys(0x51)
	cmCaller, cmCallee := legKeysOf(0x31, rtpio.SRTPAES128CMSHA80)
	// The callee keyed with the same bytes under the other profile.
	_, cmOther := legKeysOf(0x11, rtpio.SRTPAES128CMSHA80)
	for _, tc := range []struct {
		name       string
		signKeys   *rtpio.SRTPKeys
		gateKeys   *rtpio.SRTPKeys
		heard      bool // the tones pass both ways
		plainOnTap bool // the tap reads them in clear
	}{
		{"keys agreed", callerKeys, calleeKeys, true, false},
		{"AES-CM keys agreed", cmCaller, cmCallee, true, false},
		{"no keys (the tap's control)", nil, nil, true, true},
		{"the callee's keys wrong", callerKeys, otherKeys, false, false},
		{"the callee's profile wrong", callerKeys, cmOther, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lo := testports.Range(t, 20)
			media, err := rtpio.NewEngine(rtpio.Config{Address: callerMedia, PortMin: lo, PortMax: lo + 19})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = media.Close() }) // after the server's shutdown
			a := testServer(t, func(c *Config) {
				c.Media = media
				c.MediaExternalAddress = tapAddr.String()
				c.MediaSources = []netip.Prefix{netip.PrefixFrom(tapAddr, 32)}
			})
			type signed struct {
				callID string
				sdp    []byte
			}
			signedCh, gatedCh := make(chan signed, 1), make(chan signed, 1)
			b, calls := callee(t, func(c *Config) {
				c.Gate = func(r GateRequest) (GateResult, error) {
					gatedCh <- signed{r.CallID, bytes.Clone(r.Body)}
					if r.Header("X-Groupbridge-Leg") != "signed:"+r.CallID {
						return GateResult{}, &Refusal{Code: 403, Reason: "Bad Leg"}
					}
					return GateResult{Value: "leg", SRTP: tc.gateKeys}, nil
				}
			})
			var tap *mediaTap
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			out, err := a.Dial(ctx, target(t, b), DialOptions{Sign: func(callID string, sdp []byte) ([]Header, *rtpio.SRTPKeys, error) {
				signedCh <- signed{callID, bytes.Clone(sdp)}
				tap = newMediaTap(t, sdpPort(t, sdp))
				return []Header{{Name: "X-Groupbridge-Leg", Value: "signed:" + callID}}, tc.signKeys, nil
			}})
			if err != nil {
				t.Fatalf("Dial: %v", err)
			}
			defer out.Hangup("done")
			var in *Call
			select {
			case in = <-calls:
			case <-time.After(3 * time.Second):
				t.Fatal("the callee's handler got no call")
			}
			s, g := <-signedCh, <-gatedCh
			if s.callID != g.callID || !bytes.Equal(s.sdp, g.sdp) {
				t.Errorf("the gate saw Call-ID %q and offer %q; the signer %q and %q", g.callID, g.sdp, s.callID, s.sdp)
			}
			if strings.Contains(string(s.sdp), "a=crypto") || strings.Contains(string(s.sdp), "RTP/SAVP") {
				t.Errorf("a signed offer carries SDES: %q", s.sdp)
			}
			if in.Admission() != "leg" || out.Media().SRTP != nil || in.Media().SRTP != nil {
				t.Errorf("Admission %v, SDES sessions %v and %v; want the gate's value and no SDES", in.Admission(), out.Media().SRTP, in.Media().SRTP)
			}
			// The callee speaks first: the caller latches the tap and
			// sends through it from then on.
			toneShare(in.Stream(), out.Stream(), 600, 300*time.Millisecond)
			toCallee := toneShare(out.Stream(), in.Stream(), 1000, 1500*time.Millisecond)
			toCaller := toneShare(in.Stream(), out.Stream(), 600, 1500*time.Millisecond)
			if heard := toCallee >= 0.8 && toCaller >= 0.8; heard != tc.heard {
				t.Errorf("tones heard in %.0f%% (to the callee) and %.0f%% (to the caller) of blocks; want heard %v",
					100*toCallee, 100*toCaller, tc.heard)
			}
			if !tc.heard {
				if toCallee > 0.1 || toCaller > 0.1 {
					t.Errorf("with wrong keys, tones heard in %.0f%% and %.0f%% of blocks", 100*toCallee, 100*toCaller)
				}
				if in.Stream().Stats().Dropped.SRTPAuth == 0 || out.Stream().Stats().Dropped.SRTPAuth == 0 {
					t.Error("with wrong keys, no SRTP authentication failure counted")
				}
				return
			}
			for _, fromCaller := range []bool{false, true} {
				hz := 600.0
				if fromCaller {
					hz = 1000
				}
				rtp, plain := tap.packets(fromCaller, out.Codec(), hz)
				if rtp < 20 {
					t.Errorf("the tap saw %d audio packets from the caller=%v; want the call's", rtp, fromCaller)
				}
				if wantPlain := tc.plainOnTap; (plain > rtp/2) != wantPlain || !wantPlain && plain > 0 {
					t.Errorf("the tap read %d of %d packets from the caller=%v in clear; want in clear %v", plain, rtp, fromCaller, wantPlain)
				}
			}
		})
	}
}

// TestDialSignRefused: Sign's error, bad keys or a header Dial writes
// itself stop the call before anything is sent.
func TestDialSignRefused(t *testing.T) {
	good, _ := legKeys(1)
	for _, tc := range []struct {
		name    string
		headers []Header
		keys    *rtpio.SRTPKeys
		err     error
	}{
		{"sign fails", nil, nil, errors.New("no secret")},
		{"short keys", nil, &rtpio.SRTPKeys{Local: good.Local, Remote: good.Remote[:16], Profile: good.Profile}, nil},
		{"AES-CM-long keys under GCM", nil, &rtpio.SRTPKeys{Local: make([]byte, 30), Remote: make([]byte, 30), Profile: good.Profile}, nil},
		{"GCM-long keys under AES-CM", nil, &rtpio.SRTPKeys{Local: good.Local, Remote: good.Remote}, nil},
		{"an unknown profile", nil, &rtpio.SRTPKeys{Local: good.Local, Remote: good.Remote, Profile: 9}, nil},
		{"a header of Dial's", []Header{{Name: "Call-ID", Value: "x"}}, good, nil},
		{"a header with a line break", []Header{{Name: "X-Leg", Value: "a\r\nVia: x"}}, good, nil},
		{"a header name that is not a token", []Header{{Name: "X Leg", Value: "a"}}, good, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := testServer(t, nil)
			b, _ := callee(t, func(c *Config) {
				c.Gate = func(GateRequest) (GateResult, error) {
					t.Error("an INVITE reached the callee")
					return GateResult{}, nil
				}
			})
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_, err := a.Dial(ctx, target(t, b), DialOptions{Sign: func(string, []byte) ([]Header, *rtpio.SRTPKeys, error) {
				return tc.headers, tc.keys, tc.err
			}})
			if err == nil || tc.err != nil && !errors.Is(err, tc.err) {
				t.Fatalf("Dial error = %v; want a refusal (%v)", err, tc.err)
			}
			if n := a.ActiveCalls(); n != 0 {
				t.Errorf("ActiveCalls() = %d after a refused Dial", n)
			}
			time.Sleep(100 * time.Millisecond) // an INVITE sent would reach the gate meanwhile
		})
	}
}

// TestDialOffer: DialOptions.Codecs and DTMFPT shape the offer, and the
// callee answers with what was offered.
func TestDialOffer(t *testing.T) {
	for _, tc := range []struct {
		name      string
		codecs    []g711.Codec
		dtmfPT    int
		mline     string // the offer's format list
		codec     g711.Codec
		calleePT  int // the callee's telephone-event type
		callerPT  int // the caller's
		noRtpmaps []string
	}{
		{"default", nil, 0, "0 8 101", g711.PCMU, 101, 101, nil},
		{"PCMA without telephone-event", []g711.Codec{g711.PCMA}, -1, "8", g711.PCMA, -1, -1, []string{"PCMU", "telephone-event"}},
		{"PCMU with telephone-event 96", []g711.Codec{g711.PCMU}, 96, "0 96", g711.PCMU, 96, 96, []string{"PCMA"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := testServer(t, nil)
			offers := make(chan []byte, 1)
			b, calls := callee(t, func(c *Config) {
				c.Gate = func(r GateRequest) (GateResult, error) { offers <- bytes.Clone(r.Body); return GateResult{}, nil }
			})
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			out, err := a.Dial(ctx, target(t, b), DialOptions{Codecs: tc.codecs, DTMFPT: tc.dtmfPT})
			if err != nil {
				t.Fatalf("Dial: %v", err)
			}
			defer out.Hangup("done")
			in := <-calls
			offer := string(<-offers)
			if !strings.Contains(offer, "RTP/AVP "+tc.mline+"\r\n") {
				t.Errorf("offer %q; want formats %q", offer, tc.mline)
			}
			for _, n := range tc.noRtpmaps {
				if strings.Contains(offer, n) {
					t.Errorf("offer %q names %s", offer, n)
				}
			}
			if in.Codec() != tc.codec || out.Codec() != tc.codec {
				t.Errorf("codecs %v (callee) and %v (caller); want %v", in.Codec(), out.Codec(), tc.codec)
			}
			if in.Media().DTMFPT != tc.calleePT || out.Media().DTMFPT != tc.callerPT {
				t.Errorf("telephone-event types %d (callee) and %d (caller); want %d and %d",
					in.Media().DTMFPT, out.Media().DTMFPT, tc.calleePT, tc.callerPT)
			}
		})
	}
	t.Run("refused options", func(t *testing.T) {
		a := testServer(t, nil)
		b, _ := callee(t, nil)
		for _, o := range []DialOptions{
			{DTMFPT: 128},
			{DTMFPT: -2},
			{DTMFPT: 8},
			{Codecs: []g711.Codec{3}},
			{Codecs: []g711.Codec{g711.PCMA, g711.PCMA}},
		} {
			if _, err := a.Dial(context.Background(), target(t, b), o); err == nil {
				t.Errorf("Dial with %+v succeeded", o)
			}
		}
	})
}

// TestByeReason: a BYE says why (Hangup's reason), either way, and the
// other end reads it (RemoteReason) while its EndReason stays remote-bye.
func TestByeReason(t *testing.T) {
	for _, tc := range []struct {
		name       string
		callerEnds bool
		reason     string
		want       string
	}{
		{"owner removes the caller", false, "removed", "removed"},
		{"relay ends the leg", true, "caller-hung-up", "caller-hung-up"},
		{"a reason that needs cleaning", false, `bad"reason` + "\r\n", "bad_reason"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := testServer(t, nil)
			b, calls := callee(t, nil)
			out, in := dial(t, a, b, calls)
			ender, other := in, out
			if tc.callerEnds {
				ender, other = out, in
			}
			ender.Hangup(tc.reason)
			select {
			case <-other.Context().Done():
			case <-time.After(3 * time.Second):
				t.Fatal("the other end did not see the BYE")
			}
			if got := other.RemoteReason(); got != tc.want || other.EndReason() != "remote-bye" {
				t.Errorf("RemoteReason() = %q, EndReason() = %q; want %q and remote-bye", got, other.EndReason(), tc.want)
			}
			if got := ender.RemoteReason(); got != "" {
				t.Errorf("the ender's RemoteReason() = %q; want none", got)
			}
		})
	}
}

// TestDialSilentCallee: a callee that says nothing at all, as a dead or
// stopped node, costs Dial no more than its context or ring timeout (not
// Timer B's 32 s); what the callee says later is still dealt with: a
// provisional answer gets a CANCEL, a 2xx an ACK and a BYE.
func TestDialSilentCallee(t *testing.T) {
	for _, tc := range []struct {
		name    string
		ring    time.Duration // 0: the context ends instead
		later   int           // what the callee answers after Dial gave up; 0: nothing
		want    error
		expects []sip.RequestMethod
	}{
		{"context ends", 0, 0, context.DeadlineExceeded, nil},
		{"ring timeout", 300 * time.Millisecond, 0, ErrRingTimeout, nil},
		{"rings after", 0, 180, context.DeadlineExceeded, []sip.RequestMethod{sip.CANCEL}},
		{"answers after", 0, 200, context.DeadlineExceeded, []sip.RequestMethod{sip.ACK, sip.BYE}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := testServer(t, nil)
			p := newPeer(t, loopback, sipAddr(t, a, "udp"))
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			defer cancel()
			if tc.ring > 0 {
				ctx = context.Background()
			}
			start := time.Now()
			_, err := a.Dial(ctx, "sip:room@"+p.addr().String(), DialOptions{RingTimeout: tc.ring})
			if took := time.Since(start); !errors.Is(err, tc.want) || took > 2*time.Second {
				t.Fatalf("Dial = %v after %v; want %v within the bound", err, took, tc.want)
			}
			if n := a.ActiveCalls(); n != 0 {
				t.Errorf("ActiveCalls() = %d after Dial gave up", n)
			}
			var inv *sip.Request
			for inv == nil {
				m := p.read(time.Second)
				if m == nil {
					t.Fatal("the INVITE never came")
				}
				inv, _ = m.(*sip.Request)
			}
			if tc.later == 0 {
				return
			}
			res := sip.NewResponseFromRequest(inv, tc.later, "Later", nil)
			res.To().Params.Add("tag", "late")
			if tc.later == 200 {
				res.AppendHeader(&sip.ContactHeader{Address: sip.Uri{Scheme: "sip", Host: "127.0.0.1", Port: int(p.addr().Port())}})
				res.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
				res.SetBody([]byte(testSDP))
			}
			p.send(res.String())
			for _, want := range tc.expects {
				var got *sip.Request
				for got == nil {
					m := p.read(2 * time.Second)
					if m == nil {
						t.Fatalf("no %s after the late %d", want, tc.later)
					}
					if r, ok := m.(*sip.Request); ok && r.Method != sip.INVITE {
						got = r
					}
				}
				if got.Method != want {
					t.Fatalf("got %s after the late %d; want %s", got.Method, tc.later, want)
				}
				if got.Method == sip.BYE {
					if r := got.GetHeader("Reason"); r == nil || !strings.Contains(r.Value(), `text="not-answered"`) {
						t.Errorf("the BYE's Reason is %v", r)
					}
				}
				if got.Method != sip.ACK {
					p.send(sip.NewResponseFromRequest(got, 200, "OK", nil).String())
				}
			}
			waitFor(t, "the call table to stay empty", func() bool { return a.ActiveCalls() == 0 })
		})
	}
}
