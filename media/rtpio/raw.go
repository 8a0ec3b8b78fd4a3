//go:build linux

package rtpio

import (
	"net/netip"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The per-packet system calls below are issued as raw system calls, not
// through unix.Sendto and friends, for two reasons. The library forms
// allocate (a Sockaddr per received packet) or convert an interface per
// send. And every descriptor here is non-blocking, so each call returns at
// once: announcing it to the Go scheduler (entersyscall/exitsyscall) would
// only cost time, and each exit from an announced system call wakes the
// runtime's monitor thread when the process was idle, which then polls
// every 20 µs for a millisecond. At 100,000 packets a second those wake-ups
// cost more CPU than the packets.

// rawAddr is a destination in the kernel's own form, built when the
// destination changes so that each send hands it straight to sendto(2).
type rawAddr struct {
	sa  unix.RawSockaddrInet6 // room for either family
	len uint32                // 0: unset
}

// set fills r with a in family (unix.AF_INET or unix.AF_INET6); an address
// the family cannot carry leaves r unset.
func (r *rawAddr) set(family int, a netip.AddrPort) {
	*r = rawAddr{}
	ip := a.Addr()
	switch {
	case family == unix.AF_INET && ip.Is4():
		sa := (*unix.RawSockaddrInet4)(unsafe.Pointer(&r.sa))
		sa.Family = unix.AF_INET
		sa.Port = hostToNet16(a.Port())
		sa.Addr = ip.As4()
		r.len = unix.SizeofSockaddrInet4
	case family == unix.AF_INET6:
		r.sa.Family = unix.AF_INET6
		r.sa.Port = hostToNet16(a.Port())
		r.sa.Addr = ip.As16() // an IPv4 address as ::ffff:a.b.c.d
		r.len = unix.SizeofSockaddrInet6
	}
}

// valid reports whether r holds an address.
func (r *rawAddr) valid() bool { return r.len != 0 }

// sendto sends b to the datagram socket fd's peer to, without blocking.
func sendto(fd int, b []byte, to *rawAddr) unix.Errno {
	if len(b) == 0 || !to.valid() {
		return unix.EINVAL
	}
	_, _, errno := unix.RawSyscall6(unix.SYS_SENDTO, uintptr(fd),
		uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)), unix.MSG_DONTWAIT,
		uintptr(unsafe.Pointer(&to.sa)), uintptr(to.len))
	return errno
}

// recvfrom reads one datagram from fd into b and its source into rsa,
// without blocking. The returned length is the datagram's real length
// (MSG_TRUNC), which may exceed len(b).
func recvfrom(fd int, b []byte, rsa *unix.RawSockaddrAny, salen *uint32) (int, unix.Errno) {
	*salen = unix.SizeofSockaddrAny
	n, _, errno := unix.RawSyscall6(unix.SYS_RECVFROM, uintptr(fd),
		uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)), unix.MSG_TRUNC|unix.MSG_DONTWAIT,
		uintptr(unsafe.Pointer(rsa)), uintptr(unsafe.Pointer(salen)))
	if errno != 0 {
		return 0, errno
	}
	return int(n), 0
}

// epollReady collects the ready events of epfd without waiting
// (epoll_pwait with a zero timeout and no signal mask).
func epollReady(epfd int, events []unix.EpollEvent) (int, unix.Errno) {
	n, _, errno := unix.RawSyscall6(unix.SYS_EPOLL_PWAIT, uintptr(epfd),
		uintptr(unsafe.Pointer(&events[0])), uintptr(len(events)), 0, 0, 0)
	if errno != 0 {
		return 0, errno
	}
	return int(n), 0
}

// hostToNet16 stores a port in network byte order: the same byte swap as
// netToHost16, which is its own inverse.
func hostToNet16(v uint16) uint16 { return netToHost16(v) }
