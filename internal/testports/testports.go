// Package testports gives tests UDP and TCP ports of their own.
//
// A bridge binds an RTP port pair only when a call comes, so a test cannot
// hold its range from the moment it picks it: a range checked free and
// released can be taken before the first call by another test's bridge,
// in this process, in another package's test binary or in another checkout
// on the same machine. A test whose whole range is one pair then gets 503
// for its first call. Here ports are owned instead:
//
//   - The ports from 20000 up to the kernel's ephemeral range (where
//     sockets bound to port 0 land) are cut into blocks of 50. A block
//     belongs to whoever holds an exclusive flock on its file in the
//     temporary directory; the kernel drops the lock when the file is
//     closed or the process ends, however it ends.
//   - Range takes consecutive blocks for one test, checks that nothing
//     else has their ports bound (a block with a port taken by some other
//     program is passed over) and gives them back when the test ends.
//   - Shared takes one pool per process, for bridges that may share ports
//     within the process because the RTP pool skips a port already bound.
//
// What is left is a program outside these tests binding a fixed port in
// the window after the check; nothing on a test machine is expected to.
package testports

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"

	"golang.org/x/sys/unix"
)

const (
	blockSize = 50
	floor     = 20000
	// minWindow is the least room worth using below or above the
	// ephemeral range.
	minWindow = 4000
	// sharedSize is the pool Shared cuts ranges from.
	sharedSize = 1000
	// smallRun is the most blocks take places at random (see take).
	smallRun = 2
)

// Range returns the first of n consecutive ports, even, that belong to t
// until it ends (with the rest of their last block of 50).
func Range(t testing.TB, n int) int {
	t.Helper()
	files, lo, err := take(n)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { release(files) })
	return lo
}

// Port returns a port that belongs to t until it ends; so do the next 49
// (sipp's media port uses the one two above it).
func Port(t testing.TB) int { return Range(t, 1) }

var shared struct {
	sync.Mutex
	lo    int
	files []*os.File
}

// Shared returns the first of n consecutive ports, even, from a pool of
// 1000 that this process owns until it exits. Ranges from it may overlap
// each other, never another process's or a Range: for a bridge whose RTP
// pool passes over a port another bridge of the process has bound. It
// panics when no pool can be had, as a test helper without a testing.TB.
func Shared(n int) int {
	if n > sharedSize {
		panic(fmt.Sprintf("testports: %d ports are more than the shared pool's %d", n, sharedSize))
	}
	shared.Lock()
	defer shared.Unlock()
	if shared.files == nil {
		files, lo, err := take(sharedSize)
		if err != nil {
			panic(err)
		}
		shared.files, shared.lo = files, lo
	}
	return shared.lo + 2*rand.IntN((sharedSize-n)/2+1)
}

// window is the span of ports [lo, hi) tests own blocks in: above 20000
// and below the kernel's ephemeral ports, or above them when they start
// too low to leave room.
func window() (lo, hi int) {
	lo, hi = floor, 32768
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return lo, hi
	}
	var first, last int
	if _, err := fmt.Sscan(string(b), &first, &last); err != nil {
		return lo, hi
	}
	switch {
	case first-floor >= minWindow:
		return floor, first
	case 65536-(last+1) >= minWindow:
		return (last + 2) &^ 1, 65536
	default:
		return floor, 65536 // no room outside: the check below still holds
	}
}

// take locks a run of blocks that holds n ports all free now.
//
// A run of one or two blocks (a SIP port, a small RTP range) is looked
// for from a random place in the lower three quarters of the window: a
// port a test just gave back is then unlikely to be the next test's, so a
// late retransmission of the old test's SIP meets nobody. Longer runs (an
// engine of hundreds of pairs, a shared pool) are looked for from the top
// down, where the small ones seldom are: random small runs all over the
// window fragmented it until several test binaries at once left no run of
// 40 blocks.
func take(n int) ([]*os.File, int, error) {
	if n < 1 {
		return nil, 0, fmt.Errorf("testports: %d ports asked for", n)
	}
	dir := filepath.Join(os.TempDir(), "groupbridge-testports")
	if err := os.MkdirAll(dir, 0o777); err != nil {
		return nil, 0, fmt.Errorf("testports: %w", err)
	}
	_ = os.Chmod(dir, 0o1777) // shared by everyone who runs the tests here
	lo, hi := window()
	return takeIn(dir, lo, hi, n)
}

// takeIn is take within the ports [lo, hi), lo even, with the locks in dir.
func takeIn(dir string, lo, hi, n int) ([]*os.File, int, error) {
	blocks := (hi - lo) / blockSize
	k := (n + blockSize - 1) / blockSize
	if k > blocks {
		return nil, 0, fmt.Errorf("testports: %d ports do not fit in %d-%d", n, lo, hi-1)
	}
	order := make([]int, 0, blocks)
	if k <= smallRun {
		low := max(1, blocks*3/4)
		start := rand.IntN(low)
		for i := range low {
			order = append(order, (start+i)%low)
		}
		for b := low; b < blocks; b++ {
			order = append(order, b)
		}
	} else {
		for b := blocks - k; b >= 0; b-- {
			order = append(order, b)
		}
	}
	for _, b := range order {
		if b+k > blocks {
			continue
		}
		base := lo + b*blockSize
		files, ok := lock(dir, base, k)
		if !ok {
			continue
		}
		if free(base, k*blockSize) {
			return files, base, nil
		}
		release(files)
	}
	return nil, 0, errors.New("testports: no run of " + strconv.Itoa(k) + " free port blocks between " +
		strconv.Itoa(lo) + " and " + strconv.Itoa(hi-1) + " (other tests hold them, or " + dir + " is not writable)")
}

// lock takes the k blocks from base on, all or none.
func lock(dir string, base, k int) ([]*os.File, bool) {
	files := make([]*os.File, 0, k)
	for j := range k {
		name := filepath.Join(dir, strconv.Itoa(base+j*blockSize))
		f, err := os.OpenFile(name, os.O_CREATE|os.O_RDWR, 0o666)
		if err != nil {
			release(files)
			return nil, false
		}
		_ = f.Chmod(0o666)
		if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
			_ = f.Close()
			release(files)
			return nil, false
		}
		files = append(files, f)
	}
	return files, true
}

// release gives blocks back: closing the file drops its lock.
func release(files []*os.File) {
	for _, f := range files {
		_ = f.Close()
	}
}

// free reports whether UDP and TCP can bind each of n ports from base on
// 127.0.0.1 now.
func free(base, n int) bool {
	ip := net.IPv4(127, 0, 0, 1)
	for p := base; p < base+n; p++ {
		u, err := net.ListenUDP("udp4", &net.UDPAddr{IP: ip, Port: p})
		if err != nil {
			return false
		}
		_ = u.Close()
		l, err := net.ListenTCP("tcp4", &net.TCPAddr{IP: ip, Port: p})
		if err != nil {
			return false
		}
		_ = l.Close()
	}
	return true
}
