package app

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"
)

// floodHeapBound is how much the bridge's live heap may grow over its
// baseline from a 20 s, 300 INVITEs a second flood: the per-source table
// and the transactions of the few answered requests, nothing that grows
// with the flood's length.
const floodHeapBound = 64 << 20

// heapInUse is the heap in use after a forced collection.
func heapInUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

// A flood from an untrusted address does not keep the PBX's callers out:
// sipp sends INVITEs at 300 a second for 20 s from 127.0.0.2 while
// sip.trusted holds only the PBX's address, 127.0.0.1, from which two
// callers join a room during the flood and hear each other. The source's
// requests beyond limits.source_rate are dropped and counted, and the
// heap stays within floodHeapBound of what it was before.
func TestFloodFromUntrustedSource(t *testing.T) {
	sipp := sippPath(t)
	const (
		rate     = 300
		duration = 20 * time.Second
		calls    = rate * int(duration/time.Second)
	)
	a, logs := startApp(t, testYAML(`  trusted: ["127.0.0.1/32"]`, ""))
	base := heapInUse()

	dir := t.TempDir()
	sf, err := filepath.Abs(filepath.Join("..", "..", "testdata", "sipp", "flood_invite.xml"))
	if err != nil {
		t.Fatal(err)
	}
	args := []string{
		"-sf", sf, "-s", "groupbridge",
		"-i", "127.0.0.2", "-p", strconv.Itoa(freeUDPPort(t)), "-mp", strconv.Itoa(freeUDPPort(t)),
		"-r", strconv.Itoa(rate), "-rp", "1000", "-m", strconv.Itoa(calls), "-l", "2000",
		"-nr", "-nostdin", "-timeout", "28s",
		"-trace_err", "-error_file", filepath.Join(dir, "errors.log"),
		sipAddr(t, a, "udp"),
	}
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, sipp, args...)
	cmd.Dir = dir
	var out []byte
	var runErr error
	done := make(chan struct{})
	start := time.Now()
	go func() {
		defer close(done)
		out, runErr = cmd.CombinedOutput()
	}()

	// During the flood: two callers from the trusted address join a room
	// and hear each other, and the heap is sampled.
	var mu sync.Mutex
	peak := base
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			select {
			case <-done:
				return
			case <-time.After(time.Second):
			}
			h := heapInUse()
			mu.Lock()
			peak = max(peak, h)
			mu.Unlock()
		}
	}()
	time.Sleep(2 * time.Second) // the flood is on
	phones := joinRoom(t, a, logs, 7100, "1234", "1234")
	talker, listener := phones[0], phones[1]
	talker.Media().SendTone(440, -20)
	listener.Media().SendSilence()
	time.Sleep(time.Second) // the join chime over
	during := levelOver(listener, 2*time.Second, 440)
	if time.Since(start) > duration {
		t.Errorf("the callers joined and were heard only %v after the flood began: it was over by then", time.Since(start).Round(time.Second))
	}
	<-done
	<-sampled
	elapsed := time.Since(start)
	// sipp's exit status is 1 when some calls "failed" (a dropped INVITE
	// is one, by design); anything else means it did not run.
	if ee, ok := runErr.(*exec.ExitError); runErr != nil && (!ok || ee.ExitCode() != 1) {
		errs, _ := os.ReadFile(filepath.Join(dir, "errors.log"))
		t.Fatalf("sipp: %v\n%s\nerrors:\n%s", runErr, tail(string(out), 3000), tail(string(errs), 2000))
	}
	after := heapInUse()

	dropped := appMetric(t, a, `groupbridge_sip_requests_dropped_total{reason="rate-limited"}`)
	rejected := appMetric(t, a, `groupbridge_calls_rejected_total{reason="rate-limited"}`)
	mu.Lock()
	growth, peakGrowth := int64(after)-int64(base), int64(peak)-int64(base)
	mu.Unlock()
	t.Logf("flood: %d INVITEs at %d/s from 127.0.0.2 over %v; %v requests dropped as rate-limited (%v INVITEs); "+
		"listener heard the talker at %.1f dBFS mid-flood; heap in use %.1f MiB before, %.1f MiB after (%+.1f MiB; peak %+.1f MiB; bound %d MiB)",
		calls, rate, elapsed.Round(100*time.Millisecond), dropped, rejected, during,
		float64(base)/(1<<20), float64(after)/(1<<20), float64(growth)/(1<<20), float64(peakGrowth)/(1<<20), floodHeapBound>>20)

	if during < audible {
		t.Errorf("mid-flood the listener hears the talker at %.1f dBFS, want above %.0f", during, audible)
	}
	// Everything above the bucket (20, then 10 a second) is dropped: most
	// of the flood, whatever the machine's speed.
	if dropped < float64(calls)/2 {
		t.Errorf("%v requests dropped as rate-limited, want most of the %d INVITEs", dropped, calls)
	}
	if rejected > dropped || rejected < dropped/2 {
		t.Errorf("%v dropped INVITEs counted as rejected calls, of %v drops", rejected, dropped)
	}
	if growth > floodHeapBound || peakGrowth > floodHeapBound {
		t.Errorf("heap grew by %.1f MiB (peak %.1f MiB), bound %d MiB", float64(growth)/(1<<20), float64(peakGrowth)/(1<<20), floodHeapBound>>20)
	}
	// After the flood the callers are still in the room and hear each other.
	if lv := levelOver(listener, 500*time.Millisecond, 440); lv < audible {
		t.Errorf("after the flood the listener hears the talker at %.1f dBFS", lv)
	}
	select {
	case <-talker.Done():
		t.Error("the talker's call ended during the flood")
	case <-listener.Done():
		t.Error("the listener's call ended during the flood")
	default:
	}
	// Hang up here, so that the app's stop has no call to say goodbye to.
	hctx, hcancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer hcancel()
	for _, p := range phones {
		_ = p.Hangup(hctx)
	}
	logs.waitCount(t, 5*time.Second, 2, "call ended")
}
