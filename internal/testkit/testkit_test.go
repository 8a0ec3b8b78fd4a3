package testkit

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/groupbridge/groupbridge/media/prompt"
)

// TestLogBufferConcurrent: lines written from many goroutines all arrive
// whole (run with -race).
func TestLogBufferConcurrent(t *testing.T) {
	var l LogBuffer
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 50 {
				l.Write([]byte("line\n"))
				_ = l.String()
			}
		}()
	}
	wg.Wait()
	if n := strings.Count(l.String(), "line\n"); n != 400 {
		t.Errorf("%d lines, want 400", n)
	}
}

// TestWAVParses: what WAV writes is what the prompt loader reads back.
func TestWAVParses(t *testing.T) {
	for _, samples := range [][]int16{{0}, {1, -1, 32767, -32768, 1234}} {
		got, err := prompt.ParseWAV(WAV(samples))
		if err != nil {
			t.Fatalf("ParseWAV(WAV(%v)): %v", samples, err)
		}
		if !slices.Equal(got, samples) {
			t.Errorf("ParseWAV(WAV(%v)) = %v", samples, got)
		}
	}
	file := filepath.Join(t.TempDir(), "x.wav")
	WriteWAV(t, file, []int16{7, 8})
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := prompt.ParseWAV(data); err != nil || !slices.Equal(got, []int16{7, 8}) {
		t.Errorf("WriteWAV file reads back as %v, %v", got, err)
	}
}
