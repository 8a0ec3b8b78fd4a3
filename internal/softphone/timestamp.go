package softphone

import (
	"net"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// enableTimestamps asks the kernel to attach each datagram's receive time
// (SO_TIMESTAMPNS) and reports whether it agreed.
func enableTimestamps(conn *net.UDPConn) bool {
	raw, err := conn.SyscallConn()
	if err != nil {
		return false
	}
	var serr error
	if err := raw.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1)
	}); err != nil {
		return false
	}
	return serr == nil
}

// cmsgHdrLen is the size of a control message header, after which the
// data starts (aligned like the header).
var cmsgHdrLen = unix.CmsgSpace(0)

// kernelTimestamp finds the SCM_TIMESTAMPNS control message in oob and
// returns its time. It walks the messages by hand because
// unix.ParseSocketControlMessage allocates per packet. oob must be aligned
// for a unix.Cmsghdr, as a buffer from make is.
func kernelTimestamp(oob []byte) (time.Time, bool) {
	for len(oob) >= cmsgHdrLen {
		h := (*unix.Cmsghdr)(unsafe.Pointer(&oob[0]))
		clen := int(h.Len)
		if clen < cmsgHdrLen || clen > len(oob) {
			return time.Time{}, false
		}
		if h.Level == unix.SOL_SOCKET && h.Type == unix.SCM_TIMESTAMPNS && clen >= cmsgHdrLen+int(unsafe.Sizeof(unix.Timespec{})) {
			ts := (*unix.Timespec)(unsafe.Pointer(&oob[cmsgHdrLen]))
			return time.Unix(ts.Unix()), true
		}
		next := unix.CmsgSpace(clen - cmsgHdrLen)
		if next > len(oob) {
			break
		}
		oob = oob[next:]
	}
	return time.Time{}, false
}
