package softphone

import (
	"net"
	"net/netip"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// cmsg builds one control message with the given level, type and data.
func cmsg(level, typ int32, data []byte) []byte {
	b := make([]byte, unix.CmsgSpace(len(data)))
	h := (*unix.Cmsghdr)(unsafe.Pointer(&b[0]))
	h.Level, h.Type = level, typ
	h.SetLen(unix.CmsgLen(len(data)))
	copy(b[unix.CmsgSpace(0):], data)
	return b
}

func timespecBytes(sec, nsec int64) []byte {
	ts := unix.Timespec{Sec: sec, Nsec: nsec}
	return unsafe.Slice((*byte)(unsafe.Pointer(&ts)), unsafe.Sizeof(ts))
}

func TestKernelTimestamp(t *testing.T) {
	stamp := cmsg(unix.SOL_SOCKET, unix.SCM_TIMESTAMPNS, timespecBytes(1700000000, 123456789))
	other := cmsg(unix.IPPROTO_IP, unix.IP_TTL, []byte{64, 0, 0, 0})
	tests := []struct {
		name string
		oob  []byte
		want time.Time
		ok   bool
	}{
		{"timestamp", stamp, time.Unix(1700000000, 123456789), true},
		{"after another message", append(append([]byte{}, other...), stamp...), time.Unix(1700000000, 123456789), true},
		{"none", nil, time.Time{}, false},
		{"only another message", other, time.Time{}, false},
		{"truncated data", stamp[:unix.CmsgSpace(0)+4], time.Time{}, false},
		{"header only", stamp[:unix.CmsgSpace(0)-1], time.Time{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Copy into a fresh (aligned) buffer, as the receive loop's is.
			oob := make([]byte, len(tt.oob))
			copy(oob, tt.oob)
			got, ok := kernelTimestamp(oob)
			if ok != tt.ok || !got.Equal(tt.want) {
				t.Fatalf("kernelTimestamp = %v, %v; want %v, %v", got, ok, tt.want, tt.ok)
			}
		})
	}
}

// TestKernelTimestampOnLoopback: a real datagram carries a receive time
// between its sending and its reading.
func TestKernelTimestampOnLoopback(t *testing.T) {
	conn, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.1:0")))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if !enableTimestamps(conn) {
		t.Skip("SO_TIMESTAMPNS refused by this kernel")
	}
	before := time.Now()
	if _, err := conn.WriteToUDPAddrPort([]byte("x"), conn.LocalAddr().(*net.UDPAddr).AddrPort()); err != nil {
		t.Fatal(err)
	}
	buf, oob := make([]byte, 16), make([]byte, 64)
	_, oobn, _, _, err := conn.ReadMsgUDPAddrPort(buf, oob)
	if err != nil {
		t.Fatal(err)
	}
	after := time.Now()
	at, ok := kernelTimestamp(oob[:oobn])
	if !ok {
		t.Fatal("no receive timestamp on the datagram")
	}
	if at.Before(before.Add(-time.Millisecond)) || at.After(after.Add(time.Millisecond)) {
		t.Fatalf("receive time %v not between %v and %v", at, before, after)
	}
}
