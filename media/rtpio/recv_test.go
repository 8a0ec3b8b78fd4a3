//go:build linux

package rtpio

import (
	"net/netip"
	"testing"
	"time"
	"unsafe"

	"github.com/pion/rtp"
	"golang.org/x/sys/unix"

	"github.com/groupbridge/groupbridge/media/g711"
)

func TestLatchAdmit(t *testing.T) {
	sdp := netip.MustParseAddrPort("192.0.2.10:4000")
	nat := netip.MustParseAddrPort("198.51.100.7:31000")   // the phone's public address, where its SIP came from
	moved := netip.MustParseAddrPort("198.51.100.7:31502") // the same phone after a NAT rebinding
	other := netip.MustParseAddrPort("198.51.100.7:40000") // another device behind the same NAT
	evil := netip.MustParseAddrPort("203.0.113.66:5000")
	sip := []netip.Prefix{netip.MustParsePrefix("198.51.100.7/32")}
	const s = time.Second
	type step struct {
		at   time.Duration // since the start
		from netip.AddrPort
		ssrc uint32
		seq  uint16
		want admission
	}
	tests := []struct {
		name  string
		sdp   netip.AddrPort
		allow []netip.Prefix
		steps []step
		cur   netip.AddrPort // latched source after the steps
	}{
		{"SDP source accepted at once", sdp, nil, []step{
			{0, sdp, 1, 10, admitOK},
			{20 * time.Millisecond, sdp, 1, 11, admitOK},
		}, sdp},
		{"NAT: four in-sequence packets from the SIP address latch", sdp, sip, []step{
			{0, nat, 7, 100, admitProbation},
			{20 * time.Millisecond, nat, 7, 101, admitProbation},
			{40 * time.Millisecond, nat, 7, 102, admitProbation},
			{60 * time.Millisecond, nat, 7, 103, admitLatched},
			{80 * time.Millisecond, nat, 7, 104, admitOK},
			{100 * time.Millisecond, sdp, 1, 1, admitForeign}, // the SDP address lost its trust
		}, nat},
		{"stranger before the caller's first packet", sdp, sip, []step{
			{0, evil, 9, 500, admitStranger},
			{1, evil, 9, 501, admitStranger},
			{2, evil, 9, 502, admitStranger},
			{3, evil, 9, 503, admitStranger},
			{4, evil, 9, 504, admitStranger},
			{5, sdp, 1, 10, admitOK},
		}, sdp},
		{"stranger while the caller talks", sdp, sip, []step{
			{0, sdp, 1, 10, admitOK},
			{1, evil, 9, 500, admitStranger},
			{2, evil, 9, 501, admitStranger},
			{3, evil, 9, 502, admitStranger},
			{4, evil, 9, 503, admitStranger},
			{time.Second - 1, sdp, 1, 11, admitOK},
		}, sdp},
		{"stranger after 1.2 s and 10 s of silence", sdp, sip, []step{
			{0, sdp, 1, 10, admitOK},
			{1200 * time.Millisecond, evil, 9, 500, admitStranger},
			{1220 * time.Millisecond, evil, 9, 501, admitStranger},
			{1240 * time.Millisecond, evil, 9, 502, admitStranger},
			{1260 * time.Millisecond, evil, 9, 503, admitStranger},
			{1280 * time.Millisecond, evil, 9, 504, admitStranger},
			{10 * s, evil, 9, 505, admitStranger},
			{10*s + 20*time.Millisecond, evil, 9, 506, admitStranger},
			{10*s + 40*time.Millisecond, evil, 9, 507, admitStranger},
			{10*s + 60*time.Millisecond, evil, 9, 508, admitStranger},
			{10*s + 80*time.Millisecond, evil, 9, 509, admitStranger},
			{10*s + 100*time.Millisecond, sdp, 1, 11, admitOK},
		}, sdp},
		{"late offer: the SIP address latches", netip.AddrPort{}, sip, []step{
			{0, evil, 9, 1, admitStranger},
			{1, nat, 7, 65534, admitProbation},
			{2, nat, 7, 65535, admitProbation},
			{3, nat, 7, 0, admitProbation}, // sequence wraps
			{4, nat, 7, 1, admitLatched},
		}, nat},
		{"nothing allowed: nothing latches", netip.AddrPort{}, nil, []step{
			{0, nat, 7, 1, admitStranger},
			{1, nat, 7, 2, admitStranger},
			{2, nat, 7, 3, admitStranger},
			{3, nat, 7, 4, admitStranger},
			{4, nat, 7, 5, admitStranger},
		}, netip.AddrPort{}},
		{"hold address (0.0.0.0) allows nothing", netip.MustParseAddrPort("0.0.0.0:4000"), nil, []step{
			{0, netip.MustParseAddrPort("0.0.0.0:4000"), 7, 1, admitStranger},
		}, netip.MustParseAddrPort("0.0.0.0:4000")},
		{"probation restarts on a gap", sdp, sip, []step{
			{0, nat, 7, 100, admitProbation},
			{1, nat, 7, 101, admitProbation},
			{2, nat, 7, 103, admitProbation}, // 102 lost: count starts again at 103
			{3, nat, 7, 104, admitProbation},
			{4, nat, 7, 105, admitProbation},
			{5, nat, 7, 106, admitLatched},
		}, nat},
		{"probation restarts on a new SSRC", sdp, sip, []step{
			{0, nat, 7, 100, admitProbation},
			{1, nat, 7, 101, admitProbation},
			{2, nat, 8, 102, admitProbation},
			{3, nat, 8, 103, admitProbation},
			{4, nat, 8, 104, admitProbation},
			{5, nat, 8, 105, admitLatched},
		}, nat},
		{"probation restarts on a repeat", sdp, sip, []step{
			{0, nat, 7, 100, admitProbation},
			{1, nat, 7, 101, admitProbation},
			{2, nat, 7, 101, admitProbation},
			{3, nat, 7, 102, admitProbation},
			{4, nat, 7, 103, admitProbation},
		}, sdp},
		{"interleaved allowed sources restart each other", sdp, sip, []step{
			{0, nat, 7, 100, admitProbation},
			{1, other, 9, 500, admitProbation},
			{2, nat, 7, 101, admitProbation},
			{3, other, 9, 501, admitProbation},
			{4, nat, 7, 102, admitProbation},
			{5, other, 9, 502, admitProbation},
			{6, nat, 7, 103, admitProbation},
		}, sdp},
		{"NAT rebinding with the same SSRC is followed at once", sdp, sip, []step{
			{0, nat, 7, 100, admitProbation},
			{20 * time.Millisecond, nat, 7, 101, admitProbation},
			{40 * time.Millisecond, nat, 7, 102, admitProbation},
			{60 * time.Millisecond, nat, 7, 103, admitLatched},
			{80 * time.Millisecond, nat, 7, 104, admitOK},
			{100 * time.Millisecond, moved, 7, 107, admitLatched}, // two packets lost in the NAT
			{120 * time.Millisecond, moved, 7, 108, admitOK},
			{121 * time.Millisecond, nat, 7, 105, admitForeign}, // a straggler of the old mapping
			{140 * time.Millisecond, moved, 7, 109, admitOK},
		}, moved},
		{"a rebinding must continue the sequence", sdp, nil, []step{
			{0, sdp, 7, 100, admitOK},
			{20 * time.Millisecond, netip.AddrPortFrom(sdp.Addr(), 4002), 7, 100, admitForeign}, // a copy, not a continuation
			{40 * time.Millisecond, netip.AddrPortFrom(sdp.Addr(), 4002), 7, 99, admitForeign},
			{60 * time.Millisecond, netip.AddrPortFrom(sdp.Addr(), 4002), 7, 100 + maxSeqAhead + 1, admitForeign},
			{80 * time.Millisecond, netip.AddrPortFrom(sdp.Addr(), 4002), 8, 101, admitForeign}, // another SSRC
			{100 * time.Millisecond, netip.AddrPortFrom(sdp.Addr(), 4002), 7, 100 + maxSeqAhead, admitLatched},
		}, netip.AddrPortFrom(sdp.Addr(), 4002)},
		{"another port of an allowed address: only after a second of quiet", sdp, sip, []step{
			{0, sdp, 1, 10, admitOK},
			{999 * time.Millisecond, other, 9, 1, admitForeign},
			{time.Second, other, 9, 2, admitProbation},
			{time.Second + 1, other, 9, 3, admitProbation},
			{time.Second + 2, other, 9, 4, admitProbation},
			{time.Second + 3, other, 9, 5, admitLatched},
			{time.Second + 4, sdp, 1, 11, admitForeign},
		}, other},
		{"the latched source's return ends probation", sdp, sip, []step{
			{0, sdp, 1, 10, admitOK},
			{2 * s, nat, 7, 1, admitProbation},
			{2*s + 1, nat, 7, 2, admitProbation},
			{2*s + 2, sdp, 1, 11, admitOK},
			{2*s + 3, nat, 7, 3, admitForeign},
		}, sdp},
		{"a new SSRC from the same address once the old one is quiet (PBX transfer)", sdp, nil, []step{
			{0, sdp, 1, 10, admitOK},
			{20 * time.Millisecond, sdp, 1, 11, admitOK},
			{40 * time.Millisecond, sdp, 2, 5000, admitProbation},
			{60 * time.Millisecond, sdp, 2, 5001, admitProbation},
			{80 * time.Millisecond, sdp, 2, 5002, admitProbation},
			{100 * time.Millisecond, sdp, 2, 5003, admitLatched},
			{120 * time.Millisecond, sdp, 2, 5004, admitOK},
			{140 * time.Millisecond, sdp, 1, 12, admitProbation}, // the old stream is now the newcomer
			{160 * time.Millisecond, sdp, 2, 5005, admitOK},
		}, sdp},
		{"a new SSRC from the same address while the old one sends", sdp, nil, []step{
			{0, sdp, 1, 10, admitOK},
			{1, sdp, 2, 5000, admitProbation},
			{2, sdp, 2, 5001, admitProbation},
			{3, sdp, 1, 11, admitOK},
			{4, sdp, 2, 5002, admitProbation},
			{5, sdp, 2, 5003, admitProbation},
			{6, sdp, 2, 5004, admitProbation},
			{7, sdp, 1, 12, admitOK},
		}, sdp},
	}
	start := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var l latch
			l.reset(tt.sdp, tt.allow)
			for i, st := range tt.steps {
				if got := l.admit(st.from, st.ssrc, st.seq, start.Add(st.at)); got != st.want {
					t.Fatalf("step %d (%s ssrc %d seq %d): got %d, want %d", i, st.from, st.ssrc, st.seq, got, st.want)
				}
			}
			if l.cur != tt.cur {
				t.Errorf("latched %s, want %s", l.cur, tt.cur)
			}
		})
	}
}

// A new allowed set keeps a latched source that is still allowed and
// falls back to the SDP address when it is not.
func TestLatchSetAllowed(t *testing.T) {
	sdp := netip.MustParseAddrPort("192.0.2.10:4000")
	nat := netip.MustParseAddrPort("198.51.100.7:31000")
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	var l latch
	l.reset(sdp, []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24")})
	for i := range probationPackets {
		l.admit(nat, 7, uint16(i), now)
	}
	if l.cur != nat {
		t.Fatalf("latched %s, want %s", l.cur, nat)
	}
	l.setAllowed([]netip.Prefix{netip.MustParsePrefix("198.51.100.7/32")})
	if l.cur != nat {
		t.Errorf("still allowed: latched %s, want %s", l.cur, nat)
	}
	if got := l.admit(nat, 7, probationPackets, now); got != admitOK {
		t.Errorf("still allowed: packet %d, want admitOK", got)
	}
	l.setAllowed(nil)
	if l.cur != sdp {
		t.Errorf("no longer allowed: latched %s, want the SDP address %s", l.cur, sdp)
	}
	if got := l.admit(nat, 7, probationPackets+1, now); got != admitStranger {
		t.Errorf("no longer allowed: packet %d, want admitStranger", got)
	}
}

func TestAllowedNets(t *testing.T) {
	in := []netip.Prefix{
		netip.MustParsePrefix("::ffff:192.0.2.0/120"),
		netip.MustParsePrefix("198.51.100.7/32"),
		netip.MustParsePrefix("2001:db8::/32"),
	}
	got := allowedNets(in)
	want := []netip.Prefix{
		netip.MustParsePrefix("192.0.2.0/24"),
		netip.MustParsePrefix("198.51.100.7/32"),
		netip.MustParsePrefix("2001:db8::/32"),
	}
	if len(got) != len(want) {
		t.Fatalf("allowedNets = %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("allowedNets = %v, want %v", got, want)
		}
	}
	got[0] = netip.Prefix{}
	if in[0] != netip.MustParsePrefix("::ffff:192.0.2.0/120") {
		t.Error("allowedNets shares the caller's slice")
	}
}

func TestValidRTPAgreesWithPion(t *testing.T) {
	pkt := func(mod func([]byte) []byte) []byte {
		b, _ := (&rtp.Packet{Header: rtpHeader(0, 1, 2, 3), Payload: make([]byte, 20)}).Marshal()
		return mod(b)
	}
	tests := []struct {
		name string
		b    []byte
		ok   bool
	}{
		{"plain", pkt(func(b []byte) []byte { return b }), true},
		{"header only", pkt(func(b []byte) []byte { return b[:12] }), true},
		{"short", pkt(func(b []byte) []byte { return b[:11] }), false},
		{"version 0", pkt(func(b []byte) []byte { b[0] &^= 0xc0; return b }), false},
		{"version 3", pkt(func(b []byte) []byte { b[0] |= 0xc0; return b }), false},
		{"csrc fits", pkt(func(b []byte) []byte { b[0] |= 5; return b }), true},
		{"csrc too long", pkt(func(b []byte) []byte { b[0] |= 6; return b }), false},
		{"extension fits", pkt(func(b []byte) []byte { b[0] |= 0x10; b[14], b[15] = 0, 4; return b }), true},
		{"extension too long", pkt(func(b []byte) []byte { b[0] |= 0x10; b[14], b[15] = 0, 5; return b }), false},
		{"padding fits", pkt(func(b []byte) []byte { b[0] |= 0x20; b[len(b)-1] = 20; return b }), true},
		{"padding zero", pkt(func(b []byte) []byte { b[0] |= 0x20; b[len(b)-1] = 0; return b }), false},
		{"padding too long", pkt(func(b []byte) []byte { b[0] |= 0x20; b[len(b)-1] = 21; return b }), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := validRTP(tt.b); got != tt.ok {
				t.Errorf("validRTP = %v, want %v", got, tt.ok)
			}
			var p rtp.Packet
			if err := p.Unmarshal(tt.b); (err == nil) != tt.ok && tt.b[0]>>6 == 2 {
				t.Errorf("pion disagrees: %v", err)
			}
		})
	}
}

// TestHandleCountsEachPacketOnce drives handle directly: every packet is
// either used or counted under exactly one drop reason.
func TestHandleCountsEachPacketOnce(t *testing.T) {
	s := bareStream(Params{Remote: netip.MustParseAddrPort("127.0.0.1:5000"), Codec: g711.PCMU, DTMFPT: 101})
	caller := netip.MustParseAddrPort("127.0.0.1:5000")
	p := s.p
	now := time.Now()
	var b [200]byte
	h := rtpHeader(0, 1, 160, 77)
	n, _ := h.MarshalTo(b[:])
	good := b[:n+160]
	tests := []struct {
		name string
		pkt  []byte
		from netip.AddrPort
		drop drop
	}{
		{"audio", good, caller, dropNone},
		{"duplicate", good, caller, dropDuplicate},
		{"foreign", good, netip.MustParseAddrPort("127.0.0.1:5001"), dropForeignSource},
		{"malformed", good[:5], caller, dropMalformed},
		{"unknown pt", append([]byte{0x80, 13}, good[2:]...), caller, dropUnknownPayloadType},
		{"dtmf", append([]byte{0x80, 101}, good[2:16]...), caller, dropNone},
	}
	for _, tt := range tests {
		before := dropsOf(&s.c.own)
		s.rx.mu.Lock()
		s.handle(p, tt.pkt, tt.from, now)
		s.rx.mu.Unlock()
		after := dropsOf(&s.c.own)
		for k := range after {
			want := before[k]
			if drop(k) == tt.drop && tt.drop != dropNone {
				want++
			}
			if after[k] != want {
				t.Errorf("%s: drop counter %d went from %d to %d", tt.name, k, before[k], after[k])
			}
		}
	}
	if got := s.Stats().Playout.Accepted; got != 1 {
		t.Errorf("buffered %d packets, want the one audio packet", got)
	}
}

// dropsOf reads every drop counter.
func dropsOf(c *counters) (d [numDrops]uint64) {
	for k := range d {
		d[k] = c.drops[k].Load()
	}
	return d
}

func TestAddrPortFromRaw(t *testing.T) {
	tests := []struct {
		name string
		fill func(*unix.RawSockaddrAny)
		want netip.AddrPort
	}{
		{"ipv4", func(r *unix.RawSockaddrAny) {
			sa := (*unix.RawSockaddrInet4)(unsafe.Pointer(r))
			sa.Family = unix.AF_INET
			sa.Addr = [4]byte{192, 0, 2, 1}
			*(*[2]byte)(unsafe.Pointer(&sa.Port)) = [2]byte{0x9c, 0x40} // 40000, network order
		}, netip.MustParseAddrPort("192.0.2.1:40000")},
		{"ipv6", func(r *unix.RawSockaddrAny) {
			sa := (*unix.RawSockaddrInet6)(unsafe.Pointer(r))
			sa.Family = unix.AF_INET6
			sa.Addr = netip.MustParseAddr("2001:db8::7").As16()
			*(*[2]byte)(unsafe.Pointer(&sa.Port)) = [2]byte{0x13, 0xc4} // 5060
		}, netip.MustParseAddrPort("[2001:db8::7]:5060")},
		{"ipv4-mapped from a dual-stack socket", func(r *unix.RawSockaddrAny) {
			sa := (*unix.RawSockaddrInet6)(unsafe.Pointer(r))
			sa.Family = unix.AF_INET6
			sa.Addr = netip.MustParseAddr("::ffff:198.51.100.9").As16()
			*(*[2]byte)(unsafe.Pointer(&sa.Port)) = [2]byte{0, 9}
		}, netip.MustParseAddrPort("198.51.100.9:9")},
		{"unknown family", func(r *unix.RawSockaddrAny) { r.Addr.Family = unix.AF_UNIX }, netip.AddrPort{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var r unix.RawSockaddrAny
			tt.fill(&r)
			if got := addrPortFromRaw(&r); got != tt.want {
				t.Errorf("got %s, want %s", got, tt.want)
			}
		})
	}
}

func TestSetDst(t *testing.T) {
	v4 := netip.MustParseAddrPort("192.0.2.1:4000")
	v6 := netip.MustParseAddrPort("[2001:db8::1]:4000")
	tests := []struct {
		name   string
		local  string
		remote netip.AddrPort
		want   unix.Sockaddr // nil: unreachable
	}{
		{"v4 on v4", "127.0.0.1", v4, &unix.SockaddrInet4{Port: 4000, Addr: [4]byte{192, 0, 2, 1}}},
		{"v6 on v4", "127.0.0.1", v6, nil},
		{"v6 on v6", "::1", v6, &unix.SockaddrInet6{Port: 4000, Addr: v6.Addr().As16()}},
		{"v4 on a v6 address", "::1", v4, nil},
		{"v4 on dual stack is mapped", "::", v4, &unix.SockaddrInet6{Port: 4000, Addr: netip.MustParseAddr("::ffff:192.0.2.1").As16()}},
		{"none", "127.0.0.1", netip.AddrPort{}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := bareStream(pcmu(netip.AddrPort{}))
			s.e.cfg.Address = netip.MustParseAddr(tt.local)
			if s.e.cfg.Address.Is6() {
				s.e.family = unix.AF_INET6
			}
			s.tx.setDst(s.e, tt.remote)
			dst := sockaddrOf(&s.tx.dst)
			switch want := tt.want.(type) {
			case nil:
				if dst != nil {
					t.Errorf("destination %#v, want none", dst)
				}
			case *unix.SockaddrInet4:
				got, ok := dst.(*unix.SockaddrInet4)
				if !ok || got.Port != want.Port || got.Addr != want.Addr {
					t.Errorf("destination %#v, want %#v", dst, want)
				}
			case *unix.SockaddrInet6:
				got, ok := dst.(*unix.SockaddrInet6)
				if !ok || got.Port != want.Port || got.Addr != want.Addr {
					t.Errorf("destination %#v, want %#v", dst, want)
				}
			}
		})
	}
}

// sockaddrOf decodes a kernel-form destination for comparison: nil when
// unset.
func sockaddrOf(r *rawAddr) unix.Sockaddr {
	switch {
	case !r.valid():
		return nil
	case r.sa.Family == unix.AF_INET:
		sa := (*unix.RawSockaddrInet4)(unsafe.Pointer(&r.sa))
		return &unix.SockaddrInet4{Port: int(netToHost16(sa.Port)), Addr: sa.Addr}
	default:
		return &unix.SockaddrInet6{Port: int(netToHost16(r.sa.Port)), Addr: r.sa.Addr}
	}
}

// Dropping a stranger's packet allocates nothing: a spray at a call's
// port costs what any dropped packet costs (the log line comes at most
// once a minute).
func TestStrangerDropAllocatesNothing(t *testing.T) {
	caller := netip.MustParseAddrPort("127.0.0.1:5000")
	s := bareStream(Params{Remote: caller, Allowed: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}, Codec: g711.PCMU, DTMFPT: 101})
	var b [200]byte
	h := rtpHeader(0, 1, 160, 77)
	n, _ := h.MarshalTo(b[:])
	pkt := b[:n+160]
	stranger := netip.MustParseAddrPort("127.0.0.2:6000")
	now := time.Now()
	handle := func() {
		s.rx.mu.Lock()
		s.handle(s.p, pkt, stranger, now)
		s.rx.mu.Unlock()
	}
	handle() // the first of the burst is logged
	if allocs := testing.AllocsPerRun(100, handle); allocs != 0 {
		t.Errorf("a stranger's packet allocates %v times", allocs)
	}
	if got := s.c.own.snapshot().Dropped.ForeignSource; got != 102 {
		t.Errorf("%d foreign-source drops, want 102", got)
	}
}
