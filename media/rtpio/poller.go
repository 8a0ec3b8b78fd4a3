package rtpio

import (
	"fmt"
	"net/netip"
	"runtime/debug"
	"time"
	"unsafe"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"golang.org/x/sys/unix"
)

const (
	// recvBufSize holds a whole second of G.711 (8,000 payload bytes) plus
	// any header; larger datagrams are truncated by the kernel, detected
	// with MSG_TRUNC and counted as malformed.
	recvBufSize = 16 << 10
	// maxEvents is how many ready sockets one epoll_wait returns at most;
	// the rest are reported by the next call (epoll is level-triggered).
	maxEvents = 128
	// drainLimit caps the packets read from one socket per readiness
	// event, so a port sprayed at line rate cannot starve the other
	// streams of its poller: epoll reports it again on the next round.
	drainLimit = 64
	// maxDigits caps the digits collected in one drain; they are handed to
	// OnDigit after the stream's receive lock is released.
	maxDigits = 16
	// wakeSlot marks the shutdown eventfd in epoll event data.
	wakeSlot = -1
	// pollerRetry is the pause after an unexpected epoll_wait error, so a
	// persistent failure logs and retries instead of spinning a core.
	pollerRetry = 10 * time.Millisecond
)

// poller is one epoll instance and the goroutine that serves it. All its
// scratch space is reused for every packet, so receiving allocates nothing.
type poller struct {
	e        *Engine
	id       int
	epfd     int
	counters counters // the sum of this poller's streams, for Engine.Stats

	events [maxEvents]unix.EpollEvent
	buf    [recvBufSize]byte
	rsa    unix.RawSockaddrAny
	salen  uint32
	pkt    rtp.Packet
	// dec receives decrypted SRTP and SRTCP; hdr and rtcpHdr are pion's
	// scratch headers, kept here so that decryption allocates nothing.
	dec     [recvBufSize]byte
	hdr     rtp.Header
	rtcpHdr rtcp.Header
	sr      rtcp.SenderReport   // reused by parseRTCP; Reports has room for 31
	rr      rtcp.ReceiverReport // likewise
	// pcm receives each audio payload decoded, on its way to a jitter
	// buffer: one per poller rather than per stream, because a poller
	// handles one packet at a time and thousands of streams would each
	// hold 16 KB for it.
	pcm [maxPayload]int16

	digits  [maxDigits]byte
	nDigits int
}

// newPoller creates the epoll instance and registers the shutdown eventfd.
func newPoller(e *Engine, id, wakeFd int) (*poller, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("rtpio: epoll_create1 for poller %d: %w", id, err)
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: wakeSlot}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, wakeFd, &ev); err != nil {
		_ = unix.Close(epfd)
		return nil, fmt.Errorf("rtpio: register eventfd with poller %d: %w", id, err)
	}
	return newPollerState(e, id, epfd), nil
}

// newPollerState builds a poller's state around an epoll instance, with
// the report slices sized for the most blocks an RTCP packet can carry, so
// that parsing RTCP never grows them.
func newPollerState(e *Engine, id, epfd int) *poller {
	p := &poller{e: e, id: id, epfd: epfd}
	p.sr.Reports = make([]rtcp.ReceptionReport, 0, maxReportBlocks)
	p.rr.Reports = make([]rtcp.ReceptionReport, 0, maxReportBlocks)
	return p
}

// run serves the epoll instance until the engine shuts down. A panic while
// serving a stream closes that stream (it ends that call) and the poller
// carries on with the others.
func (p *poller) run() {
	defer p.e.wg.Done()
	for {
		if p.loop() {
			return
		}
	}
}

// loop waits for and serves readiness events. It returns true on shutdown
// and false after recovering from a panic.
func (p *poller) loop() (done bool) {
	var cur *Stream
	defer func() {
		if r := recover(); r != nil {
			p.e.log.Error("rtpio: poller recovered from panic; closing the stream it was serving",
				"poller", p.id, "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
			if cur != nil {
				_ = cur.Close()
			}
			done = false
		}
	}()
	for {
		n, err := unix.EpollWait(p.epfd, p.events[:], -1)
		if err != nil {
			if err == unix.EINTR {
				continue
			}
			if p.e.isClosed() {
				return true
			}
			p.e.log.Error("rtpio: epoll_wait failed; retrying", "poller", p.id, "err", err)
			time.Sleep(pollerRetry)
			continue
		}
		// One clock reading per wake-up: the packets of one batch arrived
		// within microseconds of each other, far below what latching and
		// timeouts resolve.
		now := time.Now()
		for i := range n {
			ev := &p.events[i]
			if ev.Fd == wakeSlot {
				return true
			}
			slot := int(ev.Fd)
			if slot < 0 || slot >= len(p.e.slots) {
				continue
			}
			s := p.e.slots[slot].Load()
			if s == nil || s.gen != uint32(ev.Pad)>>1 {
				continue // closed since this event was queued
			}
			cur = s
			p.service(s, ev.Pad&1 == 1, now)
			cur = nil
		}
	}
}

// service drains one ready socket of s and then delivers the digits it
// decoded, outside the lock so that OnDigit may call back into the stream.
func (p *poller) service(s *Stream, isRTCP bool, now time.Time) {
	onDigit := p.drain(s, isRTCP, now)
	if onDigit == nil {
		return
	}
	for _, d := range p.digits[:p.nDigits] {
		onDigit(d)
	}
}

// drain reads packets from one of s's sockets until it would block, under
// the stream's receive lock: Close takes the same lock before closing the
// sockets, so a descriptor is never read after it was closed (and possibly
// reused by another stream). It returns the OnDigit callback when digits
// were decoded.
func (p *poller) drain(s *Stream, isRTCP bool, now time.Time) func(byte) {
	s.rx.mu.Lock()
	defer s.rx.mu.Unlock()
	if s.rx.closed {
		return nil
	}
	p.nDigits = 0
	fd := s.fd
	if isRTCP {
		fd = s.rtcpFd
	}
	for range drainLimit {
		n, from, errno := p.recv(fd)
		if errno == unix.EAGAIN {
			break
		}
		if errno != 0 {
			// EINTR, or a pending socket error that this call consumed:
			// try again (bounded by drainLimit).
			continue
		}
		s.countIn(n)
		switch {
		case isRTCP:
			s.handleRTCP(p, p.buf[:min(n, len(p.buf))], n > len(p.buf), from, now)
		case n > len(p.buf):
			s.count(dropMalformed) // truncated: MSG_TRUNC reports the real length
		default:
			s.handle(p, p.buf[:n], from, now)
		}
		if p.nDigits == len(p.digits) {
			break // deliver these first; epoll reports the rest again
		}
	}
	if p.nDigits == 0 {
		return nil
	}
	return s.rx.onDigit
}

// recv reads one datagram into p.buf with recvfrom(2). It calls the system
// call directly because unix.Recvfrom allocates a Sockaddr per packet. The
// returned length is the datagram's real length (MSG_TRUNC), which may
// exceed len(p.buf).
func (p *poller) recv(fd int) (int, netip.AddrPort, unix.Errno) {
	p.salen = unix.SizeofSockaddrAny
	r, _, errno := unix.Syscall6(unix.SYS_RECVFROM, uintptr(fd),
		uintptr(unsafe.Pointer(&p.buf[0])), uintptr(len(p.buf)), unix.MSG_TRUNC,
		uintptr(unsafe.Pointer(&p.rsa)), uintptr(unsafe.Pointer(&p.salen)))
	if errno != 0 {
		return 0, netip.AddrPort{}, errno
	}
	return int(r), addrPortFromRaw(&p.rsa), 0
}

// addrPortFromRaw converts a kernel socket address without allocating.
// IPv4-mapped IPv6 sources (dual-stack sockets) are unmapped so that they
// compare equal to the IPv4 address a peer announced in SDP.
func addrPortFromRaw(rsa *unix.RawSockaddrAny) netip.AddrPort {
	switch rsa.Addr.Family {
	case unix.AF_INET:
		sa := (*unix.RawSockaddrInet4)(unsafe.Pointer(rsa))
		return netip.AddrPortFrom(netip.AddrFrom4(sa.Addr), netToHost16(sa.Port))
	case unix.AF_INET6:
		sa := (*unix.RawSockaddrInet6)(unsafe.Pointer(rsa))
		return netip.AddrPortFrom(netip.AddrFrom16(sa.Addr).Unmap(), netToHost16(sa.Port))
	}
	return netip.AddrPort{}
}

// netToHost16 reads a port stored in network byte order.
func netToHost16(v uint16) uint16 {
	b := (*[2]byte)(unsafe.Pointer(&v))
	return uint16(b[0])<<8 | uint16(b[1])
}
