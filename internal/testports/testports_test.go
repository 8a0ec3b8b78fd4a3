package testports

import (
	"net"
	"os"
	"testing"
)

// testWindow is a span of two blocks that is free now, for the tests to
// search in with their own lock directory.
func testWindow(t *testing.T) int {
	t.Helper()
	lo, hi := window()
	for base := hi - 2*blockSize; base >= lo; base -= 2 * blockSize {
		if free(base, 2*blockSize) {
			return base
		}
	}
	t.Fatal("no two free blocks")
	return 0
}

// A block is owned by one holder at a time, across processes (the flock
// belongs to the open file, so a second open in this process stands for
// another process), and comes free again when it is released; a block
// with a port another program has bound is passed over; a range larger
// than a block takes consecutive blocks.
func TestTakeOwnsBlocks(t *testing.T) {
	dir := t.TempDir()
	lo := testWindow(t)
	hi := lo + 2*blockSize

	a, pa, err := takeIn(dir, lo, hi, 2)
	if err != nil {
		t.Fatal(err)
	}
	b, pb, err := takeIn(dir, lo, hi, blockSize)
	if err != nil {
		t.Fatal(err)
	}
	if pa == pb || pa%2 != 0 || pb%2 != 0 {
		t.Fatalf("two holders got blocks %d and %d", pa, pb)
	}
	if _, p, err := takeIn(dir, lo, hi, 1); err == nil {
		t.Fatalf("a third holder got block %d while both were held", p)
	}
	release(a)
	c, pc, err := takeIn(dir, lo, hi, 1)
	if err != nil || pc != pa {
		t.Fatalf("after release got %d, %v; want %d", pc, err, pa)
	}
	release(b)
	release(c)

	if _, _, err := takeIn(dir, lo, hi, 2*blockSize+1); err == nil {
		t.Error("a range larger than the window was given")
	}
	d, pd, err := takeIn(dir, lo, hi, blockSize+1)
	if err != nil || pd != lo {
		t.Fatalf("two blocks: got %d, %v; want %d", pd, err, lo)
	}
	release(d)

	// Another program binds one port of the first block (UDP, then TCP):
	// only the second block is given.
	for _, network := range []string{"udp4", "tcp4"} {
		l, err := listen(network, lo+7)
		if err != nil {
			t.Fatal(err)
		}
		for range 5 {
			f, p, err := takeIn(dir, lo, hi, 1)
			if err != nil || p != lo+blockSize {
				t.Fatalf("%s port %d bound: got block %d, %v; want %d", network, lo+7, p, err, lo+blockSize)
			}
			release(f)
		}
		_ = l.Close()
	}
}

func listen(network string, port int) (interface{ Close() error }, error) {
	ip := net.IPv4(127, 0, 0, 1)
	if network == "udp4" {
		return net.ListenUDP(network, &net.UDPAddr{IP: ip, Port: port})
	}
	return net.ListenTCP(network, &net.TCPAddr{IP: ip, Port: port})
}

// Range's blocks go back when the test ends; Shared's pool stays with the
// process, and the ranges it gives lie in it.
func TestRangeAndShared(t *testing.T) {
	var lo int
	t.Run("holder", func(t *testing.T) {
		lo = Range(t, 120)
		if lo%2 != 0 {
			t.Errorf("range starts at odd port %d", lo)
		}
		dir := os.TempDir() + "/groupbridge-testports"
		if _, ok := lock(dir, lo, 3); ok {
			t.Fatalf("blocks from %d could be locked again while the test holds them", lo)
		}
	})
	files, ok := lock(os.TempDir()+"/groupbridge-testports", lo, 3)
	if !ok {
		t.Fatalf("blocks from %d are still held after the test ended", lo)
	}
	release(files)

	for range 20 {
		p := Shared(200)
		if p%2 != 0 || p < shared.lo || p+200 > shared.lo+sharedSize {
			t.Fatalf("Shared(200) = %d, outside the pool at %d", p, shared.lo)
		}
	}
	if _, ok := lock(os.TempDir()+"/groupbridge-testports", shared.lo, 1); ok {
		t.Error("the shared pool's first block is not held")
	}
}

// Small runs taken at random leave the window's top quarter to long runs:
// with a single block held in every other place of the lower three
// quarters, a run of a quarter of the window is still there.
func TestSmallRunsLeaveLongRuns(t *testing.T) {
	const blocks = 24
	dir := t.TempDir()
	lo, hi := window()
	base := -1
	for b := hi - blocks*blockSize; b >= lo; b -= blockSize {
		if free(b, blocks*blockSize) {
			base = b
			break
		}
	}
	if base < 0 {
		t.Skip("no 24 free blocks on this machine now")
	}
	top := base + blocks*blockSize
	for range blocks * 3 / 4 / 2 {
		files, p, err := takeIn(dir, base, top, 1)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { release(files) })
		if p >= base+blocks*3/4*blockSize {
			t.Fatalf("a small run at %d, in the top quarter from %d", p, base+blocks*3/4*blockSize)
		}
	}
	files, p, err := takeIn(dir, base, top, blocks/4*blockSize)
	if err != nil {
		t.Fatalf("no long run left: %v", err)
	}
	release(files)
	if p != top-blocks/4*blockSize {
		t.Errorf("long run at %d, want the top one at %d", p, top-blocks/4*blockSize)
	}
}
