package app

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/groupbridge/groupbridge/internal/softphone"
	"github.com/groupbridge/groupbridge/media/g711"
	"github.com/groupbridge/groupbridge/media/tone"
)

// Media sources (issue 10, sections 1 and 7): the bridge takes a call's
// media only from the addresses its signalling named (the SDP address and
// where its SIP came from), follows a caller's NAT rebinding and a PBX's
// new stream within them, and never hands a call's audio to anyone else,
// however long the caller is silent. The caller and the PBX are at
// 127.0.0.1, strangers at other loopback addresses.

// loopbackUDP binds a UDP socket on ip (a 127.x address) or skips the test
// where the loopback has no such address.
func loopbackUDP(t *testing.T, ip string) *net.UDPConn {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.ParseIP(ip)})
	if err != nil {
		t.Skipf("cannot bind %s on the loopback: %v", ip, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// sprayer is a stranger sending a loud tone as well-formed RTP (one SSRC,
// in sequence, 20 ms apart: it would pass any probation) at a call's
// bridge port, with an RTCP report now and then at the port above, and
// counting every datagram it receives back.
type sprayer struct {
	conn       *net.UDPConn
	sent, got  atomic.Int64
	stopOnce   sync.Once
	stopped    chan struct{}
	wg         sync.WaitGroup
	dst, rtcpD *net.UDPAddr
}

func spray(t *testing.T, ip string, dst *net.UDPAddr, freq float64) *sprayer {
	t.Helper()
	s := &sprayer{
		conn:    loopbackUDP(t, ip),
		stopped: make(chan struct{}),
		dst:     dst,
		rtcpD:   &net.UDPAddr{IP: dst.IP, Port: dst.Port + 1},
	}
	s.wg.Add(2)
	go func() { // receiver
		defer s.wg.Done()
		buf := make([]byte, 2048)
		for {
			if _, _, err := s.conn.ReadFromUDP(buf); err != nil {
				return
			}
			s.got.Add(1)
		}
	}()
	go func() { // sender
		defer s.wg.Done()
		sine := tone.NewSine(freq, -6)
		var frame [160]int16
		payload := make([]byte, 160)
		start := time.Now()
		for i := 0; ; i++ {
			select {
			case <-s.stopped:
				return
			default:
			}
			sine.Read(frame[:])
			g711.PCMU.Encode(payload, frame[:])
			if _, err := s.conn.WriteToUDP(rtpPacket(0x80, 0, uint16(i), uint32(i)*160, 0xbadbad, payload), s.dst); err != nil {
				return
			}
			if i%50 == 0 { // an RTCP receiver report
				_, _ = s.conn.WriteToUDP([]byte{0x80, 201, 0, 1, 0, 0xba, 0xdb, 0xad}, s.rtcpD)
			}
			s.sent.Add(1)
			pace(start, i)
		}
	}()
	t.Cleanup(s.stop)
	return s
}

// stop ends the spray and waits for both goroutines.
func (s *sprayer) stop() {
	s.stopOnce.Do(func() {
		close(s.stopped)
		_ = s.conn.Close()
		s.wg.Wait()
	})
}

// countRTP counts the datagrams conn receives until it is closed (at the
// end of the test).
func countRTP(t *testing.T, conn *net.UDPConn) *atomic.Int64 {
	t.Helper()
	var n atomic.Int64
	var wg sync.WaitGroup
	t.Cleanup(func() { _ = conn.Close(); wg.Wait() })
	_ = conn.SetReadDeadline(time.Time{}) // rtpArrives may have set one
	wg.Add(1)
	go func() {
		defer wg.Done()
		buf := make([]byte, 2048)
		for {
			if _, _, err := conn.ReadFromUDP(buf); err != nil {
				return
			}
			n.Add(1)
		}
	}()
	return &n
}

// maxLevel is the highest level of freq in any 100 ms block of what p
// received since from.
func maxLevel(p *softphone.Phone, since time.Time, freq float64) float64 {
	s := p.Media().Received(since)
	high := -200.0
	for i := 0; i+800 <= len(s); i += 800 {
		high = max(high, tone.LevelDBFS(s[i:i+800], freq))
	}
	return high
}

// A stranger (127.0.0.2) spraying well-formed RTP at a call's port before
// the caller's first packet, while it talks, and through 1.2 s and 10 s of
// its silence never receives a packet and is never heard by the room; the
// caller keeps receiving the room all along. Its packets are counted as
// foreign, and logged once (at most once a minute) with the call's id.
func TestE2EStrangerNeverTakesACallsAudio(t *testing.T) {
	t.Parallel()
	// rtp.timeout above the 10 s of silence below.
	a, logs := startApp(t, strings.Replace(testYAML("", ""), "timeout: 10s", "timeout: 60s", 1))
	listener := dial(t, a, softphone.Config{Caller: "+15550007001"})
	enter(t, logs, listener, "1234", softphone.DigitRFC4733, 1)
	listener.Media().SendTone(440, -20)

	callerRTP := loopbackUDP(t, "127.0.0.1")
	received := countRTP(t, callerRTP)
	c := dialRaw(t, a, "+15550007002", callerRTP, true)
	foreign := func() float64 {
		return metricValue(t, scrape(t, a), `groupbridge_rtp_dropped_total{reason="foreign-source"}`)
	}
	before := foreign()
	stranger := spray(t, "127.0.0.2", c.media, 1000)

	time.Sleep(600 * time.Millisecond) // before the caller's first packet
	c.keys("1234#")
	id := waitJoined(t, logs, "+15550007002")
	joined := time.Now()
	c.sendTone(0) // the caller talks (silence, so the 1 kHz can only be the stranger's)
	time.Sleep(4 * time.Second)
	c.stopRTP()
	quiet := time.Now()
	time.Sleep(1200 * time.Millisecond)
	atQuiet12 := received.Load()
	time.Sleep(time.Until(quiet.Add(10500 * time.Millisecond)))
	stranger.stop()
	end := time.Now()

	t.Logf("the stranger sent %d packets and received %d; the caller received %d", stranger.sent.Load(), stranger.got.Load(), received.Load())
	if n := stranger.got.Load(); n != 0 {
		t.Errorf("the stranger received %d datagrams of the call", n)
	}
	// From 4 s after the join: the join chime is over even on a loaded
	// machine (its onset reaches -33 dBFS at 1 kHz).
	if l := maxLevel(listener, joined.Add(4*time.Second), 1000); l > -50 {
		s := listener.Media().Received(joined.Add(4 * time.Second))
		var b strings.Builder
		for i := 0; i+800 <= len(s); i += 800 {
			fmt.Fprintf(&b, " %.0f", tone.LevelDBFS(s[i:i+800], 1000))
		}
		t.Errorf("the room heard the stranger's 1 kHz at %.1f dBFS (100 ms blocks:%s)", l, b.String())
	}
	if got := received.Load() - atQuiet12; got < int64(end.Sub(quiet)/(40*time.Millisecond)) {
		t.Errorf("the silent caller received %d packets from 1.2 s to 10.5 s of its silence; want the room's audio all along", got)
	}
	if got, sent := foreign()-before, float64(stranger.sent.Load()); got < sent*0.9 {
		t.Errorf("rtp_dropped_total{reason=foreign-source} rose by %v for %v packets from the stranger", got, sent)
	}
	const logMsg = "rtpio: dropped media from an address the call did not name"
	if n := logs.count(t, logMsg); n != 1 {
		t.Errorf("%d log lines about the stranger in %v, want 1 (at most one a minute)", n, end.Sub(joined))
	}
	if n := logs.count(t, logMsg, "call", id); n != 1 {
		t.Errorf("the stranger's log line does not name the call %s:\n%s", id, logs.String())
	}
	for _, line := range strings.Split(logs.String(), "\n") {
		if strings.Contains(line, logMsg) && strings.Contains(line, "5550007002") {
			t.Errorf("the stranger's log line names the caller: %s", line)
		}
	}

	// Control: the caller's own 1 kHz is heard, so the check above can tell.
	c.sendTone(1000)
	start := time.Now()
	time.Sleep(1500 * time.Millisecond)
	if l := maxLevel(listener, start.Add(500*time.Millisecond), 1000); l < -30 {
		t.Fatalf("the caller's own 1 kHz is heard at %.1f dBFS only: the check above cannot tell", l)
	}
}

// natRebinding: a caller whose NAT moves it to a new port mid-call (same
// address, same SSRC, the sequence going on) is followed at once: the room
// goes on hearing it and it goes on hearing the room, at its new port.
// Before, the bridge took a second of silence from the old port and four
// packets of probation, and the caller lost over a second each way.
func natRebinding(t *testing.T, a *App, logs *syncBuffer, cfg func(caller string) softphone.Config) {
	pa := dial(t, a, cfg("+15550007101"))
	pb := dial(t, a, cfg("+15550007102"))
	enter(t, logs, pa, "1234", softphone.DigitRFC4733, 1)
	enter(t, logs, pb, "1234", softphone.DigitRFC4733, 2)
	pa.Media().SendTone(440, -20)
	pb.Media().SendTone(1000, -20)
	time.Sleep(2500 * time.Millisecond) // join prompts and chimes
	old := pa.Media().LocalRTP()
	at := time.Now()
	moved, err := pa.Media().RebindRTP()
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(2500 * time.Millisecond)
	t.Logf("caller a moved from %s to %s", old, moved)
	since := at.Add(-time.Second)
	if frac, gap := heard(pb, since, 440); frac < 0.9 || gap > 300*time.Millisecond {
		t.Errorf("b hears a around the rebinding in %.0f%% of 100 ms blocks, longest gap %v; want it all along", 100*frac, gap)
	}
	if frac, gap := heard(pa, since, 1000); frac < 0.9 || gap > 300*time.Millisecond {
		t.Errorf("a hears b around the rebinding in %.0f%% of 100 ms blocks, longest gap %v; want it all along", 100*frac, gap)
	}
	if n := logs.count(t, "rtpio: latched new media source", "source", moved.String()); n != 1 {
		t.Errorf("%d log lines latching %s, want 1", n, moved)
	}
}

func TestE2ENATRebindingFollowed(t *testing.T) {
	t.Parallel()
	a, logs := startApp(t, testYAML("", ""))
	natRebinding(t, a, logs, func(caller string) softphone.Config { return softphone.Config{Caller: caller} })
}

func TestE2ENATRebindingFollowedSRTP(t *testing.T) {
	t.Parallel()
	a, logs := startApp(t, tlsSRTPYAML(t, "require"))
	natRebinding(t, a, logs, func(caller string) softphone.Config {
		return softphone.Config{Transport: "tls", TLSConfig: testTLS(), SRTP: true, Caller: caller}
	})
}

// sdpAt is a PCMU offer with media at ip:port.
func sdpAt(ip string, port int) string {
	return fmt.Sprintf("v=0\r\no=- 1 %d IN IP4 %s\r\ns=-\r\nc=IN IP4 %s\r\nt=0 0\r\nm=audio %d RTP/AVP 0\r\na=sendrecv\r\n",
		time.Now().UnixNano()%1000000, ip, ip, port)
}

// toneFrom sends a -20 dBFS tone as PCMU from conn to dst with its own
// SSRC every 20 ms, until the returned stop is called.
func toneFrom(t *testing.T, conn *net.UDPConn, dst *net.UDPAddr, freq float64, ssrc uint32) (stop func()) {
	t.Helper()
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		sine := tone.NewSine(freq, -20)
		var frame [160]int16
		payload := make([]byte, 160)
		start := time.Now()
		for i := 0; i < 3000; i++ {
			select {
			case <-done:
				return
			default:
			}
			sine.Read(frame[:])
			g711.PCMU.Encode(payload, frame[:])
			if _, err := conn.WriteToUDP(rtpPacket(0x80, 0, uint16(1000+i), uint32(i)*160, ssrc, payload), dst); err != nil {
				return
			}
			pace(start, i)
		}
	}()
	var once sync.Once
	stop = func() { once.Do(func() { close(done); wg.Wait() }) }
	t.Cleanup(stop)
	return stop
}

// A re-INVITE from the caller that moves its media to another address
// (127.0.0.3, as a PBX handing the call to another media server or direct
// media to a phone) is followed both ways; a stranger (127.0.0.2) spraying
// the port meanwhile still gets nothing, even while the moved caller is
// silent.
func TestE2EReinviteMovesMediaToAnotherAddress(t *testing.T) {
	t.Parallel()
	a, logs := startApp(t, testYAML("", ""))
	listener := dial(t, a, softphone.Config{Caller: "+15550007201"})
	enter(t, logs, listener, "1234", softphone.DigitRFC4733, 1)
	listener.Media().SendTone(440, -20)

	oldRTP := loopbackUDP(t, "127.0.0.1")
	newRTP := loopbackUDP(t, "127.0.0.3")
	d := newRawDialog(t, sipAddr(t, a, "udp"))
	d.invite(sdpAt("127.0.0.1", oldRTP.LocalAddr().(*net.UDPAddr).Port))
	m := answerPort.FindStringSubmatch(d.answer)
	if m == nil {
		t.Fatalf("200 without an audio port:\n%s", d.answer)
	}
	port, _ := strconv.Atoi(m[1])
	bridge := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port}
	for _, k := range []byte("1234#") {
		d.info(k)
		time.Sleep(150 * time.Millisecond)
	}
	logs.waitCount(t, 10*time.Second, 2, "call joined")
	stopOld := toneFrom(t, oldRTP, bridge, 1000, 0x01d)
	time.Sleep(1500 * time.Millisecond)
	stopOld()

	d.invite(sdpAt("127.0.0.3", newRTP.LocalAddr().(*net.UDPAddr).Port))
	moved := time.Now()
	stranger := spray(t, "127.0.0.2", bridge, 1700)
	if !rtpArrives(newRTP, 2*time.Second) {
		t.Fatal("no RTP at the address of the re-INVITE")
	}
	back := countRTP(t, newRTP)
	stopNew := toneFrom(t, newRTP, bridge, 1000, 0x0e3)
	time.Sleep(2 * time.Second)
	stopNew()
	if frac, _ := heard(listener, moved.Add(500*time.Millisecond), 1000); frac < 0.9 {
		t.Errorf("the room hears the moved caller in %.0f%% of 100 ms blocks, want all along", 100*frac)
	}
	time.Sleep(1500 * time.Millisecond) // the moved caller is silent
	stranger.stop()
	if n := stranger.got.Load(); n != 0 {
		t.Errorf("the stranger received %d datagrams of the call", n)
	}
	if l := maxLevel(listener, moved, 1700); l > -50 {
		t.Errorf("the room heard the stranger's 1.7 kHz at %.1f dBFS", l)
	}
	n := back.Load()
	time.Sleep(time.Second)
	if got := back.Load() - n; got < 25 {
		t.Errorf("the moved caller received %d packets in a second after its silence, want the room's audio", got)
	}
}

// A PBX that restarts its stream (a transfer: a new SSRC, new sequence
// numbers and timestamps, from the same address and port) is taken after a
// few packets: the room goes on hearing the call.
func TestE2ESSRCChangeFromSamePBX(t *testing.T) {
	t.Parallel()
	a, logs := startApp(t, testYAML("", ""))
	listener := dial(t, a, softphone.Config{Caller: "+15550007301"})
	enter(t, logs, listener, "1234", softphone.DigitRFC4733, 1)
	listener.Media().SendSilence()
	c := dialRaw(t, a, "+15550007302", nil, true)
	c.keys("1234#")
	waitJoined(t, logs, "+15550007302")
	c.sendTone(1000)
	time.Sleep(2 * time.Second)
	c.stopRTP()
	time.Sleep(100 * time.Millisecond) // the transfer's pause
	at := time.Now()
	c.sendTone(1000) // a new SSRC, sequence and timestamps
	time.Sleep(2 * time.Second)
	frac, gap := heard(listener, at.Add(-time.Second), 1000)
	if frac < 0.85 || gap > 400*time.Millisecond {
		t.Errorf("the room hears the PBX around its new stream in %.0f%% of 100 ms blocks, longest gap %v; want it all along", 100*frac, gap)
	}
	if l := maxLevel(listener, at.Add(time.Second), 1000); l < -30 {
		t.Errorf("the PBX's new stream is heard at %.1f dBFS only", l)
	}
}

// rtp.media_sources lets media come from an address the signalling never
// named: here a phone behind a proxy (SIP from 127.0.0.1, the proxy) whose
// SDP holds a private address (192.0.2.10) while its media comes from
// 127.0.0.4. Listed, that address is latched and hears the room; not
// listed, it is a stranger like any other.
func TestE2EMediaSourcesAllowsAListedAddress(t *testing.T) {
	t.Parallel()
	for _, listed := range []bool{true, false} {
		t.Run(fmt.Sprintf("listed=%v", listed), func(t *testing.T) {
			y := testYAML("", "")
			if listed {
				y = strings.Replace(y, "rtp:\n", "rtp:\n  media_sources: [127.0.0.4/32]\n", 1)
			}
			a, logs := startApp(t, y)
			listener := dial(t, a, softphone.Config{Caller: "+15550007401"})
			enter(t, logs, listener, "1234", softphone.DigitRFC4733, 1)
			listener.Media().SendTone(440, -20)

			media := loopbackUDP(t, "127.0.0.4")
			d := newRawDialog(t, sipAddr(t, a, "udp"))
			d.invite(sdpAt("192.0.2.10", 4000))
			m := answerPort.FindStringSubmatch(d.answer)
			if m == nil {
				t.Fatalf("200 without an audio port:\n%s", d.answer)
			}
			port, _ := strconv.Atoi(m[1])
			for _, k := range []byte("1234#") {
				d.info(k)
				time.Sleep(150 * time.Millisecond)
			}
			logs.waitCount(t, 10*time.Second, 2, "call joined")
			back := countRTP(t, media)
			start := time.Now()
			stop := toneFrom(t, media, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port}, 1000, 0x4ed1a)
			time.Sleep(4 * time.Second)
			stop()
			// From 3 s after the join: the room's prompt about it is over.
			l := maxLevel(listener, start.Add(3*time.Second), 1000)
			t.Logf("the room hears 127.0.0.4's 1 kHz at %.1f dBFS; 127.0.0.4 received %d packets", l, back.Load())
			if listed && (l < -30 || back.Load() < 50) {
				t.Errorf("listed in rtp.media_sources, 127.0.0.4 is heard at %.1f dBFS and received %d packets; want heard and the room's audio", l, back.Load())
			}
			if !listed && (l > -50 || back.Load() != 0) {
				t.Errorf("not listed, 127.0.0.4 is heard at %.1f dBFS and received %d packets; want neither", l, back.Load())
			}
		})
	}
}
