package soak

import (
	"os"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestCompare(t *testing.T) {
	base := Figures{Goroutines: 100, OpenFiles: 20, HeapLive: 10 << 20}
	lim := Limits{Goroutines: 2, OpenFiles: 0, HeapFraction: 0.10}
	tests := []struct {
		name string
		end  Figures
		want []string // substrings, one per expected complaint, in order
	}{
		{"same", base, nil},
		{"less of everything", Figures{Goroutines: 90, OpenFiles: 10, HeapLive: 5 << 20}, nil},
		{"goroutines within slack", Figures{Goroutines: 102, OpenFiles: 20, HeapLive: 10 << 20}, nil},
		{"goroutines past slack", Figures{Goroutines: 103, OpenFiles: 20, HeapLive: 10 << 20}, []string{"goroutines: 103"}},
		{"one more file", Figures{Goroutines: 100, OpenFiles: 21, HeapLive: 10 << 20}, []string{"open files: 21"}},
		{"heap at the limit", Figures{Goroutines: 100, OpenFiles: 20, HeapLive: 11 << 20}, nil},
		{"heap past the limit", Figures{Goroutines: 100, OpenFiles: 20, HeapLive: 11<<20 + 1<<10}, []string{"live heap"}},
		{"all three", Figures{Goroutines: 500, OpenFiles: 400, HeapLive: 100 << 20}, []string{"goroutines", "open files", "live heap"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := Compare(base, tc.end, lim)
			if len(got) != len(tc.want) {
				t.Fatalf("Compare = %q, want %d complaints %q", got, len(tc.want), tc.want)
			}
			for i, w := range tc.want {
				if !strings.Contains(got[i], w) {
					t.Errorf("complaint %d = %q, want it to say %q", i, got[i], w)
				}
			}
		})
	}
}

func TestGrowth(t *testing.T) {
	tests := []struct {
		base, end uint64
		want      float64
	}{
		{0, 10, 0},
		{100, 110, 0.10},
		{100, 50, -0.5},
		{100, 100, 0},
	}
	for _, tc := range tests {
		if got := Growth(tc.base, tc.end); got < tc.want-1e-9 || got > tc.want+1e-9 {
			t.Errorf("Growth(%d, %d) = %v, want %v", tc.base, tc.end, got, tc.want)
		}
	}
}

// sink keeps a value reachable from a package variable, so the collector
// cannot free it before Measure looks.
var sink []byte

// Measure sees what the process holds: a goroutine, a file and a heap
// allocation each show, and are gone again once released.
func TestMeasure(t *testing.T) {
	before, err := Measure()
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	started := make(chan struct{})
	go func() { close(started); <-stop }()
	<-started
	f, err := os.Open("/proc/self/stat")
	if err != nil {
		t.Fatal(err)
	}
	sink = make([]byte, 32<<20)
	held, err := Measure()
	if err != nil {
		t.Fatal(err)
	}
	if held.Goroutines < before.Goroutines+1 {
		t.Errorf("goroutines %d with one more running, before %d", held.Goroutines, before.Goroutines)
	}
	if held.OpenFiles != before.OpenFiles+1 {
		t.Errorf("open files %d with one more open, before %d", held.OpenFiles, before.OpenFiles)
	}
	if held.HeapLive < before.HeapLive+32<<20 {
		t.Errorf("live heap %s with 32 MiB more held, before %s", MiB(held.HeapLive), MiB(before.HeapLive))
	}
	close(stop)
	_ = f.Close()
	sink = nil
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before.Goroutines && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	after, err := Measure()
	if err != nil {
		t.Fatal(err)
	}
	if bad := Compare(before, after, Limits{HeapFraction: 0.5}); len(bad) > 0 {
		t.Errorf("after release: %q", bad)
	}
}

func TestTally(t *testing.T) {
	tests := []struct {
		name   string
		writes []string
		msg    string
		out    string
		reason string
		want   int
	}{
		{"one record", []string{`{"level":"INFO","msg":"call joined","outcome":"joined"}` + "\n"}, "call joined", "", "", 1},
		{"outcome filter", []string{
			`{"level":"INFO","msg":"call not admitted","outcome":"wrong-pin"}` + "\n" +
				`{"level":"INFO","msg":"call not admitted","outcome":"pin-blocked"}` + "\n"},
			"call not admitted", "wrong-pin", "", 1},
		{"reason filter", []string{
			`{"level":"INFO","msg":"call ended","reason":"rtp-timeout"}` + "\n" +
				`{"level":"INFO","msg":"call ended","reason":"bye"}` + "\n" +
				`{"level":"INFO","msg":"call ended","reason":"bye"}` + "\n"},
			"call ended", "", "bye", 2},
		{"any outcome", []string{
			`{"level":"INFO","msg":"call not admitted","outcome":"a"}` + "\n" +
				`{"level":"INFO","msg":"call not admitted","outcome":"b"}` + "\n"},
			"call not admitted", "", "", 2},
		{"split across writes", []string{`{"level":"INFO","msg":"call `, `joined"}`, "\n"}, "call joined", "", "", 1},
		{"unfinished line not counted", []string{`{"level":"INFO","msg":"call joined"}`}, "call joined", "", "", 0},
		{"not JSON", []string{"hello\n"}, "(not JSON)", "", "", 1},
		{"blank lines ignored", []string{"\n\n"}, "(not JSON)", "", "", 0},
		{"oversized partial dropped", []string{strings.Repeat("x", maxPartial+1)}, "(not JSON)", "", "", 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tl := NewTally()
			for _, w := range tc.writes {
				if n, err := tl.Write([]byte(w)); n != len(w) || err != nil {
					t.Fatalf("Write = %d, %v", n, err)
				}
			}
			if got := tl.Count(tc.msg, tc.out, tc.reason); got != tc.want {
				t.Errorf("Count(%q, %q, %q) = %d, want %d; lines %q", tc.msg, tc.out, tc.reason, got, tc.want, tl.Lines())
			}
		})
	}
}

func TestTallyLevelAndLines(t *testing.T) {
	tl := NewTally()
	_, _ = tl.Write([]byte(`{"level":"ERROR","msg":"panic in call handler"}` + "\n" +
		`{"level":"INFO","msg":"call ended","reason":"bye"}` + "\n" +
		`{"level":"INFO","msg":"call ended","reason":"bye"}` + "\n" +
		`{"level":"INFO","msg":"listening"}` + "\n"))
	if got := tl.Level("ERROR"); got != 1 {
		t.Errorf("Level(ERROR) = %d, want 1", got)
	}
	got := tl.Lines("call ", "panic")
	want := []string{"      2  INFO call ended reason=bye", "      1  ERROR panic in call handler"}
	if !slices.Equal(got, want) {
		t.Errorf("Lines = %q, want %q", got, want)
	}
	if n := len(tl.Lines()); n != 3 {
		t.Errorf("Lines() has %d kinds, want 3", n)
	}
}

func TestGauge(t *testing.T) {
	now := time.Unix(1000, 0)
	g := NewGauge(func() time.Time { return now })
	step := func(d time.Duration) { now = now.Add(d) }
	g.Up() // 1 up from t=0
	step(2 * time.Second)
	g.Up() // 2 up from t=2
	step(3 * time.Second)
	g.Down() // 1 up from t=5
	step(time.Second)
	n, peak, cs := g.Read()
	// 1*2 + 2*3 + 1*1 = 9 caller-seconds.
	if n != 1 || peak != 2 || cs != 9 {
		t.Errorf("Read = %d up, peak %d, %v caller-seconds; want 1, 2, 9", n, peak, cs)
	}
	g.Down()
	step(time.Hour)
	if n, peak, cs := g.Read(); n != 0 || peak != 2 || cs != 9 {
		t.Errorf("after all down: %d up, peak %d, %v caller-seconds; want 0, 2, 9", n, peak, cs)
	}
}

func TestProcessCPU(t *testing.T) {
	c0, err := ProcessCPU()
	if err != nil {
		t.Fatal(err)
	}
	// Burn a little CPU; bounded by time, never asserted on a figure.
	x := uint64(1)
	for end := time.Now().Add(50 * time.Millisecond); time.Now().Before(end); {
		for range 1000 {
			x = x*6364136223846793005 + 1442695040888963407
		}
	}
	c1, err := ProcessCPU()
	if err != nil {
		t.Fatal(err)
	}
	if c1 <= c0 || x == 0 {
		t.Errorf("process CPU did not advance: %v then %v", c0, c1)
	}
}
