//go:build linux

package rtpio

import (
	"errors"
	"net"
	"net/netip"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/groupbridge/groupbridge/media/g711"
	"github.com/groupbridge/groupbridge/media/pcm"
)

func pcmu(remote netip.AddrPort) Params {
	return Params{Remote: remote, Codec: g711.PCMU, AudioPT: 0, DTMFPT: 101}
}

func TestNewEngineValidates(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		ok   bool
	}{
		{"no address", Config{PortMin: 30000, PortMax: 30001}, false},
		{"reversed range", Config{Address: loop4, PortMin: 30002, PortMax: 30000}, false},
		{"port zero", Config{Address: loop4, PortMin: 0, PortMax: 10}, false},
		{"port above 65535", Config{Address: loop4, PortMin: 65534, PortMax: 65536}, false},
		{"no pair: single even port", Config{Address: loop4, PortMin: 30000, PortMax: 30000}, false},
		{"no pair: odd then even", Config{Address: loop4, PortMin: 30001, PortMax: 30002}, false},
		{"negative pollers", Config{Address: loop4, PortMin: 30000, PortMax: 30001, Pollers: -1}, false},
		{"zoned address", Config{Address: netip.MustParseAddr("fe80::1%lo"), PortMin: 30000, PortMax: 30001}, false},
		{"one pair", Config{Address: loop4, PortMin: 30000, PortMax: 30001}, true},
		{"odd start", Config{Address: loop4, PortMin: 30001, PortMax: 30004, Pollers: 1}, true},
		{"negative jitter delay", Config{Address: loop4, PortMin: 30000, PortMax: 30001, JitterMin: -time.Millisecond}, false},
		{"jitter range reversed", Config{Address: loop4, PortMin: 30000, PortMax: 30001, JitterMin: 100 * time.Millisecond, JitterMax: 50 * time.Millisecond}, false},
		{"jitter delay above the buffer's limit", Config{Address: loop4, PortMin: 30000, PortMax: 30001, JitterMax: 2 * time.Second}, false},
		{"jitter range", Config{Address: loop4, PortMin: 30000, PortMax: 30001, JitterMin: 40 * time.Millisecond, JitterMax: 300 * time.Millisecond}, true},
		{"jitter minimum only", Config{Address: loop4, PortMin: 30000, PortMax: 30001, JitterMin: 300 * time.Millisecond}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := NewEngine(tt.cfg)
			if (err == nil) != tt.ok {
				t.Fatalf("NewEngine(%+v) error = %v, want ok=%v", tt.cfg, err, tt.ok)
			}
			if e != nil {
				if err := e.Close(); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
	e, err := NewEngine(Config{Address: loop4, PortMin: 30001, PortMax: 30006})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if e.firstPort != 30002 || e.pairs != 2 || len(e.pollers) != defaultPollers {
		t.Errorf("range 30001-30006: first %d pairs %d pollers %d; want 30002, 2, %d", e.firstPort, e.pairs, len(e.pollers), defaultPollers)
	}
}

func TestOpenRejectsBadParams(t *testing.T) {
	e := testEngine(t, 1)
	tests := []struct {
		name string
		p    Params
	}{
		{"not g711", Params{Codec: 9, AudioPT: 9, DTMFPT: -1}},
		{"audio pt above 127", Params{Codec: g711.PCMU, AudioPT: 128, DTMFPT: -1}},
		{"dtmf pt below -1", Params{Codec: g711.PCMU, DTMFPT: -2}},
		{"dtmf pt above 127", Params{Codec: g711.PCMU, DTMFPT: 128}},
		{"dtmf pt equals audio", Params{Codec: g711.PCMA, AudioPT: 8, DTMFPT: 8}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if s, err := e.Open(tt.p); err == nil {
				_ = s.Close()
				t.Fatalf("Open(%+v) succeeded", tt.p)
			}
		})
	}
}

func TestOpenExhaustsAndReturnsPorts(t *testing.T) {
	e := testEngine(t, 2)
	a, err := e.Open(pcmu(netip.AddrPort{}))
	if err != nil {
		t.Fatal(err)
	}
	b, err := e.Open(pcmu(netip.AddrPort{}))
	if err != nil {
		t.Fatal(err)
	}
	got := []int{int(a.LocalAddr().Port()), int(b.LocalAddr().Port())}
	slices.Sort(got)
	if want := []int{e.firstPort, e.firstPort + 2}; !slices.Equal(got, want) || a.LocalAddr().Addr() != loop4 {
		t.Errorf("streams at %s and %s, want ports %v of %s", a.LocalAddr(), b.LocalAddr(), want, loop4)
	}
	if _, err := e.Open(pcmu(netip.AddrPort{})); !errors.Is(err, ErrNoPorts) {
		t.Fatalf("third Open: %v, want ErrNoPorts", err)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	c, err := e.Open(pcmu(netip.AddrPort{}))
	if err != nil {
		t.Fatalf("Open after Close: %v", err)
	}
	if c.LocalAddr() != a.LocalAddr() {
		t.Errorf("reopened at %s, want the freed %s (the only free pair, however recently freed)", c.LocalAddr(), a.LocalAddr())
	}
	// The freed ports are bound again by the new stream.
	if _, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(c.LocalAddr())); err == nil {
		t.Errorf("port %s not bound by the reopened stream", c.LocalAddr())
	}
}

// A just-freed pair is handed out again only when no other is free.
func TestOpenRestsFreedPorts(t *testing.T) {
	e := testEngine(t, 3)
	seen := map[int]bool{}
	for i := range 6 {
		s, err := e.Open(pcmu(netip.AddrPort{}))
		if err != nil {
			t.Fatal(err)
		}
		port := int(s.LocalAddr().Port())
		if i < 3 && seen[port] {
			t.Fatalf("open %d: port %d handed out again while another pair had never been used", i, port)
		}
		seen[port] = true
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// Ports are picked at random: the order of a run of calls is neither the
// order of the range nor the same twice. With 200 pairs, 20 calls in
// ascending order (1/20!), or two engines agreeing on all 20, has a chance
// below 1e-18.
func TestOpenPicksPortsAtRandom(t *testing.T) {
	run := func() []int {
		e := testEngine(t, 200)
		var ports []int
		for range 20 {
			s, err := e.Open(pcmu(netip.AddrPort{}))
			if err != nil {
				t.Fatal(err)
			}
			ports = append(ports, int(s.LocalAddr().Port()))
			if p := ports[len(ports)-1]; p%2 != 0 || p < e.firstPort || p >= e.firstPort+2*e.pairs {
				t.Fatalf("port %d is not an even port of the range", p)
			}
		}
		return ports
	}
	a, b := run(), run()
	if slices.IsSorted(a) {
		t.Errorf("ports handed out in order: %v", a)
	}
	if slices.Equal(a, b) {
		t.Errorf("two engines handed out the same ports: %v", a)
	}
}

func TestRandomWalkVisitsEveryIndexOnce(t *testing.T) {
	for _, n := range []int{1, 2, 3, 4, 6, 12, 97, 1000} {
		for range 20 {
			start, step := randomWalk(n)
			seen := make([]bool, n)
			for k := range n {
				i := (start + k*step) % n
				if seen[i] {
					t.Fatalf("n=%d start=%d step=%d: index %d visited twice", n, start, step, i)
				}
				seen[i] = true
			}
		}
	}
}

func TestOpenSkipsTakenPorts(t *testing.T) {
	e := testEngine(t, 3)
	take := func(port int) {
		c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(loop4, uint16(port))))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
	}
	take(e.firstPort)     // RTP port of the first pair
	take(e.firstPort + 3) // RTCP port of the second pair
	s, err := e.Open(pcmu(netip.AddrPort{}))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := int(s.LocalAddr().Port()), e.firstPort+4; got != want {
		t.Fatalf("stream at port %d, want %d (the only pair nobody holds)", got, want)
	}
	if _, err := e.Open(pcmu(netip.AddrPort{})); !errors.Is(err, ErrNoPorts) {
		t.Fatalf("second Open: %v, want ErrNoPorts", err)
	}
}

func TestOpenReportsBindFailure(t *testing.T) {
	// 192.0.2.1 (TEST-NET-1) is not a local address: binding fails with
	// EADDRNOTAVAIL, which is a configuration error, not a busy port.
	e, err := NewEngine(Config{Address: netip.MustParseAddr("192.0.2.1"), PortMin: 30000, PortMax: 30003})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	_, err = e.Open(pcmu(netip.AddrPort{}))
	if err == nil || errors.Is(err, ErrNoPorts) {
		t.Fatalf("Open on a foreign address: %v, want a bind error", err)
	}
}

func TestEngineCloseLeavesNoGoroutines(t *testing.T) {
	before := runtime.NumGoroutine()
	lo, hi := freeRange(t, loop4, 4)
	e, err := NewEngine(Config{Address: loop4, PortMin: lo, PortMax: hi, Pollers: 3})
	if err != nil {
		t.Fatal(err)
	}
	p := newPeer(t, loop4)
	var streams []*Stream
	for range 4 {
		s, err := e.Open(pcmu(p.addr()))
		if err != nil {
			t.Fatal(err)
		}
		streams = append(streams, s)
		p.send(s.LocalAddr(), 0, tone(g711.PCMU, 160, 0))
		s.WriteFrame(frameOf(1))
	}
	for _, s := range streams {
		waitIn(t, s, 1)
	}
	if got := e.Stats().PacketsIn; got != 4 {
		t.Errorf("engine PacketsIn = %d, want 4", got)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	if err := e.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	// Pollers have returned when Close returns; only the runtime's own
	// bookkeeping may lag, hence the short wait.
	waitFor(t, "goroutines to exit", func() bool { return runtime.NumGoroutine() <= before })
	for _, s := range streams {
		if err := s.Close(); err != nil {
			t.Errorf("stream Close after engine Close: %v", err)
		}
		s.WriteFrame(frameOf(2)) // a no-op, not a write to a closed descriptor
	}
	if _, err := e.Open(pcmu(netip.AddrPort{})); !errors.Is(err, ErrClosed) {
		t.Errorf("Open after Close: %v, want ErrClosed", err)
	}
	// The ports are free again.
	for port := lo; port <= hi; port++ {
		c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(loop4, uint16(port))))
		if err != nil {
			t.Fatalf("port %d still bound after Close: %v", port, err)
		}
		_ = c.Close()
	}
}

// TestCloseDuringTraffic closes streams while peers spray them, the clock
// reads and writes, and control calls land; run with -race.
func TestCloseDuringTraffic(t *testing.T) {
	const n = 8
	e := testEngine(t, n*2)
	sprayer := newPeer(t, loop4)
	caller := newPeer(t, loop4)
	var streams []*Stream
	for range n {
		s, err := e.Open(pcmu(caller.addr()))
		if err != nil {
			t.Fatal(err)
		}
		streams = append(streams, s)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(3)
	go func() { // the network: RTP and RTCP to every stream, as long as the test runs
		defer wg.Done()
		pkt := marshal(t, rtpHeader(0, 1, 1, 1), tone(g711.PCMU, 160, 0))
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			for _, s := range streams {
				dst := s.LocalAddr()
				pkt[3] = byte(i) // new sequence numbers, so audio is buffered
				_, _ = caller.conn.WriteToUDPAddrPort(pkt, dst)
				_, _ = sprayer.conn.WriteToUDPAddrPort(pkt, dst)
				_, _ = sprayer.conn.WriteToUDPAddrPort(pkt, netip.AddrPortFrom(dst.Addr(), dst.Port()+1))
			}
		}
	}()
	go func() { // the mixing clock, without the pacing
		defer wg.Done()
		var f pcm.Frame
		for {
			select {
			case <-stop:
				return
			default:
			}
			for _, s := range streams {
				s.ReadFrame(&f)
				s.WriteFrame(&f)
			}
		}
	}()
	go func() { // signalling
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			s := streams[i%n]
			s.SetDirection(i%3 != 0, i%2 == 0)
			p := pcmu(caller.addr())
			if i%4 == 0 {
				p.Codec, p.AudioPT = g711.PCMA, 8
			}
			s.Update(p)
			_ = s.Stats()
			_ = s.LastActivity()
			time.Sleep(100 * time.Microsecond)
		}
	}()
	time.Sleep(50 * time.Millisecond)
	var cw sync.WaitGroup
	for _, s := range streams {
		cw.Add(2)
		for range 2 { // two closers per stream: Close must be idempotent under a race
			go func() {
				defer cw.Done()
				if err := s.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
			}()
		}
		time.Sleep(5 * time.Millisecond)
	}
	cw.Wait()
	close(stop)
	wg.Wait()
	if e.Stats().PacketsIn == 0 {
		t.Error("no traffic reached the streams")
	}
	// Every pair is free again: the engine can open all of them.
	for range n * 2 {
		s, err := e.Open(pcmu(caller.addr()))
		if err != nil {
			t.Fatalf("Open after closing everything: %v", err)
		}
		defer s.Close()
	}
}

func TestIPv6(t *testing.T) {
	loop6 := netip.MustParseAddr("::1")
	c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(loop6, 0)))
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	_ = c.Close()
	e := testEngineOn(t, loop6, 1)
	p := newPeer(t, loop6)
	s, err := e.Open(pcmu(p.addr()))
	if err != nil {
		t.Fatal(err)
	}
	if got := s.LocalAddr().Addr(); got != loop6 {
		t.Errorf("LocalAddr %s, want on ::1", s.LocalAddr())
	}
	p.send(s.LocalAddr(), 0, idPayload(g711.PCMU, 3, 320))
	waitIn(t, s, 1)
	var played []int16
	var f pcm.Frame
	for range 10 { // the clock: the packet plays when its delay is up
		s.ReadFrame(&f)
		played = append(played, f[:]...)
		time.Sleep(pcm.FrameDuration)
	}
	if ids := idsPlayed(g711.PCMU, played); !slices.Equal(ids, []int{3}) {
		t.Errorf("IPv6 audio played as %v", ids)
	}
	s.WriteFrame(frameOf(0))
	pkt, from := p.recv()
	if from != s.LocalAddr() || pkt.PayloadType != 0 {
		t.Errorf("IPv6 packet from %s PT %d", from, pkt.PayloadType)
	}
	if st := s.Stats(); st.Latched != p.addr() || st.PacketsOut != 1 {
		t.Errorf("stats %+v, want latched to %s and 1 packet out", st, p.addr())
	}
}

// TestAddressFamilyMismatch: an IPv6 remote on IPv4 sockets is
// unreachable, so WriteFrame sends nothing instead of failing each frame.
func TestAddressFamilyMismatch(t *testing.T) {
	e := testEngine(t, 1)
	s, err := e.Open(pcmu(netip.MustParseAddrPort("[2001:db8::1]:4000")))
	if err != nil {
		t.Fatal(err)
	}
	s.WriteFrame(frameOf(0))
	if st := s.Stats(); st.PacketsOut != 0 || st.Dropped.SendError != 0 {
		t.Errorf("stats %+v, want nothing sent and no send error", st.Stats)
	}
}

func equalSamples(a, b []int16) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
