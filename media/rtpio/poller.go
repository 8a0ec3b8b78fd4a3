//go:build linux

package rtpio

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
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
	// drainLimit is the datagrams read from one socket per readiness
	// report. One: at 20 ms pacing a socket almost always holds a single
	// packet, and reading on until EAGAIN would cost a second recvfrom
	// per packet; the level-triggered epoll reports a socket that still
	// holds data again in the same round. It also keeps a port sprayed at
	// line rate from starving the other streams of its poller.
	drainLimit = 1
	// maxDigits caps the digits collected in one drain; they are handed to
	// OnDigit after the stream's receive lock is released.
	maxDigits = 16
	// batchWindow is how long a poller waits between looks at its
	// sockets while it has streams, so that one wake-up serves the
	// packets of many callers: at 20 ms pacing a wake-up per packet costs
	// more than the packet. Audio waits at most this long in the socket,
	// which the jitter buffer and the 20 ms mixing clock do not notice.
	// (It does not back off while the streams are silent: a later look
	// would delay the first packet of every talkspurt, and a look at
	// sockets with nothing to read costs one system call.)
	batchWindow = 2 * time.Millisecond
	// maxRounds bounds the epoll_wait rounds of one look, so that a flood
	// on many sockets cannot keep a poller from ever sleeping.
	maxRounds = 64
	// pollerRetry is the pause after an unexpected epoll_wait error, so a
	// persistent failure logs and retries instead of spinning a core.
	pollerRetry = 10 * time.Millisecond
)

// poller is one epoll instance and the goroutine that serves it. All its
// scratch space is reused for every packet, so receiving allocates nothing.
//
// The goroutine never blocks in epoll_wait. It looks at its sockets with
// non-blocking epoll_wait calls every batchWindow and sleeps in between.
// Blocking in epoll_wait would make it a goroutine in a system call, which
// keeps the runtime's monitor thread waking every 20 µs to take its
// processor back; handing the epoll descriptor to Go's network poller
// instead wakes a thread per arriving packet. Either cost more CPU than
// the packets themselves (BENCHMARKS.md has the profiles).
type poller struct {
	e    *Engine
	id   int
	epfd int
	// streams counts the streams registered here; kick wakes the
	// goroutine when the first one arrives.
	streams atomic.Int32
	kick    chan struct{}
	// mu makes looks exclusive (they share the scratch space below): the
	// poller's own, every batchWindow, and the clock's, just before each
	// mix (Engine.Tick). closed is set under it when epfd is closed.
	mu       sync.Mutex
	closed   bool
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
	// out builds each relayed packet (see Relay) before it is encrypted
	// into dec or sent.
	out [rtpHeaderLen + maxPayload]byte

	// bplain, bnonce and bhdr are for bundles (see bundle.go): the
	// decrypted datagram, its nonce and each entry's header.
	bplain [bundleMax]byte
	bnonce [12]byte
	bhdr   rtp.Header

	digits  [maxDigits]byte
	nDigits int
}

// newPoller creates the epoll instance.
func newPoller(e *Engine, id int) (*poller, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("rtpio: epoll_create1 for poller %d: %w", id, err)
	}
	return newPollerState(e, id, epfd), nil
}

// close releases the epoll instance.
func (p *poller) close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	return unix.Close(p.epfd)
}

// newPollerState builds a poller's state around an epoll instance, with
// the report slices sized for the most blocks an RTCP packet can carry, so
// that parsing RTCP never grows them.
func newPollerState(e *Engine, id, epfd int) *poller {
	p := &poller{e: e, id: id, epfd: epfd, kick: make(chan struct{}, 1)}
	p.sr.Reports = make([]rtcp.ReceptionReport, 0, maxReportBlocks)
	p.rr.Reports = make([]rtcp.ReceptionReport, 0, maxReportBlocks)
	return p
}

// run serves the epoll instance until the engine shuts down: a look at the
// sockets every batchWindow, and no looking at all while it has no streams. A
// panic while serving a stream closes that stream (it ends that call) and
// the poller carries on with the others.
func (p *poller) run() {
	defer p.e.wg.Done()
	timer := time.NewTimer(batchWindow)
	defer timer.Stop()
	for {
		if p.streams.Load() == 0 {
			select {
			case <-p.e.stop:
				return
			case <-p.kick:
			}
		}
		p.look()
		timer.Reset(batchWindow)
		select {
		case <-p.e.stop:
			return
		case <-timer.C:
		}
	}
}

// look serves the sockets that are ready now, unless the poller is closed.
func (p *poller) look() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.closed {
		p.serve()
	}
}

// serve is look's work and the recover boundary for the streams' receive
// paths. The caller holds p.mu.
func (p *poller) serve() {
	var cur *Stream
	defer func() {
		if r := recover(); r != nil {
			// Like the clock: neither the value nor the stack (its
			// arguments), which may hold packet bytes this package cannot
			// redact. The type and the place find the bug.
			p.e.log.Error("rtpio: poller recovered from panic; closing the stream it was serving",
				"poller", p.id, "panic", fmt.Sprintf("%T", r), "at", panicSite())
			if cur != nil {
				_ = cur.Close()
			}
		}
	}()
	p.serveReady(&cur)
}

// panicSite names the function and line that panicked, for a deferred
// recover: the first frame below runtime.gopanic outside the runtime.
func panicSite() string {
	var pcs [32]uintptr
	frames := runtime.CallersFrames(pcs[:runtime.Callers(2, pcs[:])])
	panicking := false
	for {
		f, more := frames.Next()
		switch {
		case f.Function == "runtime.gopanic":
			panicking = true
		case panicking && !strings.HasPrefix(f.Function, "runtime."):
			return fmt.Sprintf("%s %s:%d", f.Function, filepath.Base(f.File), f.Line)
		}
		if !more {
			return "unknown"
		}
	}
}

// serveReady serves the ready sockets, polling without blocking until none
// is left (or for maxRounds rounds). cur names the stream being
// served, for the panic handler. Between full rounds it yields the
// processor: under a flood the sockets may never all be empty, and the
// mixing clock must still run.
func (p *poller) serveReady(cur **Stream) {
	for range maxRounds {
		n, err := epollReady(p.epfd, p.events[:])
		if err != 0 {
			if err != unix.EINTR {
				p.e.log.Error("rtpio: epoll_wait failed", "poller", p.id, "err", err)
				time.Sleep(pollerRetry)
			}
			return
		}
		if n == 0 {
			return
		}
		// One clock reading per round: the packets of one round arrived
		// within a batch window of each other, far below what latching
		// and timeouts resolve.
		now := time.Now()
		for i := range n {
			ev := &p.events[i]
			slot := int(ev.Fd)
			if slot < 0 || slot >= len(p.e.slots) {
				continue
			}
			s := p.e.slots[slot].Load()
			if s == nil || s.gen != uint32(ev.Pad)>>1 {
				continue // closed since this event was queued
			}
			*cur = s
			p.service(s, ev.Pad&1 == 1, now)
			*cur = nil
		}
		if n < len(p.events) {
			return
		}
		runtime.Gosched()
	}
}

// service drains one ready socket of s and then delivers the digits it
// decoded, outside the lock so that OnDigit may call back into the stream.
func (p *poller) service(s *Stream, isRTCP bool, now time.Time) {
	if s.bnd != nil {
		if !isRTCP {
			p.serveBundles(s, now)
		}
		return
	}
	p.deliverDigits(p.drain(s, isRTCP, now))
}

// deliverDigits hands the digits the last drain decoded to onDigit (nil:
// none), after the stream's locks are released.
func (p *poller) deliverDigits(onDigit func(byte)) {
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
		s.c.in(n)
		switch {
		case isRTCP:
			s.handleRTCP(p, p.buf[:min(n, len(p.buf))], n > len(p.buf), from, now)
		case n > len(p.buf):
			s.c.drop(dropMalformed) // truncated: MSG_TRUNC reports the real length
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

// recv reads one datagram into p.buf (see recvfrom in raw.go). The
// returned length is the datagram's real length, which may exceed
// len(p.buf).
func (p *poller) recv(fd int) (int, netip.AddrPort, unix.Errno) {
	n, errno := recvfrom(fd, p.buf[:], &p.rsa, &p.salen)
	if errno != 0 {
		return 0, netip.AddrPort{}, errno
	}
	return n, addrPortFromRaw(&p.rsa), 0
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
