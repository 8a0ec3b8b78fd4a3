package prompt

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A group's recordings are read with the prompts' care, converted to
// 8 kHz, and refused with the reason when they are not usable.
func TestLoadRecording(t *testing.T) {
	tests := []struct {
		name   string
		setup  func(t *testing.T, dir string)
		maxLen time.Duration
		is     error  // nil: loads
		want   string // error substring
	}{
		{name: "44.1 kHz", maxLen: time.Minute, setup: func(t *testing.T, dir string) {
			writeWAV(t, dir, "r.wav", 44100, sineAt(44100, 500, 8000, 2)...)
		}},
		{name: "missing", maxLen: time.Minute, setup: func(*testing.T, string) {}, is: fs.ErrNotExist},
		{name: "not a WAV", maxLen: time.Minute, setup: func(t *testing.T, dir string) {
			if err := os.WriteFile(filepath.Join(dir, "r.wav"), []byte("ID3\x03mp3 bytes"), 0o644); err != nil {
				t.Fatal(err)
			}
		}, is: ErrFormat, want: `does not start with "RIFF"`},
		{name: "11.025 kHz", maxLen: time.Minute, setup: func(t *testing.T, dir string) {
			writeWAV(t, dir, "r.wav", 11025, 1, 2, 3)
		}, is: ErrFormat, want: "sample rate 11025 Hz"},
		{name: "too long", maxLen: time.Second, setup: func(t *testing.T, dir string) {
			writeWAV(t, dir, "r.wav", 48000, make([]int16, 48000*2)...)
		}, is: ErrTooLong, want: "recording too long: 2s, at most 1s"},
		{name: "too large", maxLen: time.Second, setup: func(t *testing.T, dir string) {
			file := writeWAV(t, dir, "r.wav", 8000, 1, 2)
			if err := os.Truncate(file, 2<<20); err != nil {
				t.Fatal(err)
			}
		}, is: ErrTooLarge},
		{name: "link out of the directory", maxLen: time.Minute, setup: func(t *testing.T, dir string) {
			outside := writeWAV(t, t.TempDir(), "x.wav", 8000, 1, 2)
			symlink(t, outside, filepath.Join(dir, "r.wav"))
		}, is: ErrNotRegular},
		{name: "FIFO", maxLen: time.Minute, setup: func(t *testing.T, dir string) {
			if err := syscall.Mkfifo(filepath.Join(dir, "r.wav"), 0o644); err != nil {
				t.Skipf("mkfifo: %v", err)
			}
		}, is: ErrNotRegular, want: "a FIFO"},
		{name: "directory", maxLen: time.Minute, setup: func(t *testing.T, dir string) {
			if err := os.Mkdir(filepath.Join(dir, "r.wav"), 0o755); err != nil {
				t.Fatal(err)
			}
		}, is: ErrNotRegular, want: "a directory"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			tc.setup(t, dir)
			root, err := os.OpenRoot(dir)
			if err != nil {
				t.Fatal(err)
			}
			defer root.Close()
			clip, err := LoadRecording(root, "r.wav", tc.maxLen)
			if tc.is == nil {
				if err != nil {
					t.Fatal(err)
				}
				if len(clip) != 16000 {
					t.Fatalf("%d samples, want 16000", len(clip))
				}
				return
			}
			if !errors.Is(err, tc.is) {
				t.Fatalf("error %v, want %v", err, tc.is)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q, want it to contain %q", err, tc.want)
			}
		})
	}
}

// Ten minutes of 48 kHz stereo 16-bit fits the default limit.
func TestRecordingSizeLimit(t *testing.T) {
	if got, want := RecordingSizeLimit(10*time.Minute), int64(600*48000*4); got < want || got > want+2<<20 {
		t.Fatalf("limit %d for 10m, want just over %d", got, want)
	}
}
