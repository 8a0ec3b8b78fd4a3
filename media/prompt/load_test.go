package prompt

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// LoadDir reads only regular files inside prompts.dir, each at most
// MaxFileSize, never blocks on a FIFO and never repeats a file's bytes.
func TestLoadDirRefusesWhatIsNotAPrompt(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, dir string)
		is    error    // nil: the load succeeds
		want  []string // substrings of the error, {dir} replaced
	}{
		{
			name: "symlink to a WAV outside",
			setup: func(t *testing.T, dir string) {
				outside := writeWAV(t, t.TempDir(), "welcome.wav", 8000, 1, 2)
				symlink(t, outside, filepath.Join(dir, "welcome.wav"))
			},
			is:   ErrNotRegular,
			want: []string{"prompts.dir: {dir}/welcome.wav: not a regular file inside prompts.dir: a symbolic link"},
		},
		{
			name: "relative symlink climbing out",
			setup: func(t *testing.T, dir string) {
				sub := filepath.Join(dir, "sub")
				if err := os.Mkdir(sub, 0o755); err != nil {
					t.Fatal(err)
				}
				writeWAV(t, filepath.Dir(dir), "outside.wav", 8000, 1, 2)
				symlink(t, "../../outside.wav", filepath.Join(sub, "x"))
				symlink(t, "sub/x", filepath.Join(dir, "goodbye.wav"))
			},
			is:   ErrNotRegular,
			want: []string{"{dir}/goodbye.wav: not a regular file"},
		},
		{
			name: "symlink to /dev/zero",
			setup: func(t *testing.T, dir string) {
				symlink(t, "/dev/zero", filepath.Join(dir, "welcome.wav"))
			},
			is:   ErrNotRegular,
			want: []string{"{dir}/welcome.wav: not a regular file"},
		},
		{
			name: "FIFO",
			setup: func(t *testing.T, dir string) {
				fifo := filepath.Join(dir, "welcome.wav")
				if err := syscall.Mkfifo(fifo, 0o644); err != nil {
					t.Skipf("mkfifo: %v", err)
				}
				// Without the fix the load waits for a writer: be one at
				// the end, so a failed test does not leave it blocked.
				t.Cleanup(func() {
					if f, err := os.OpenFile(fifo, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
						f.Close()
					}
				})
			},
			is:   ErrNotRegular,
			want: []string{"{dir}/welcome.wav: not a regular file inside prompts.dir: a FIFO"},
		},
		{
			name: "oversized (sparse)",
			setup: func(t *testing.T, dir string) {
				file := writeWAV(t, dir, "hold_music.wav", 8000, 1, 2)
				if err := os.Truncate(file, 1<<30); err != nil {
					t.Fatal(err)
				}
			},
			is:   ErrTooLarge,
			want: []string{"{dir}/hold_music.wav: file too large for a prompt: 1073741824 bytes, at most 10485760"},
		},
		{
			name: "one byte over the limit",
			setup: func(t *testing.T, dir string) {
				file := writeWAV(t, dir, "goodbye.wav", 8000, 1, 2)
				if err := os.Truncate(file, MaxFileSize+1); err != nil {
					t.Fatal(err)
				}
			},
			is: ErrTooLarge,
		},
		{
			name: "bad content is not echoed",
			setup: func(t *testing.T, dir string) {
				data := "PIN=482193\ngroups:\n  - name: Tuesday\n    member_pin: \"482193\"\n"
				if err := os.WriteFile(filepath.Join(dir, "welcome.wav"), []byte(data), 0o644); err != nil {
					t.Fatal(err)
				}
			},
			is:   ErrFormat,
			want: []string{"{dir}/welcome.wav: unusable WAV file"},
		},
		{
			name: "symlink inside the directory is followed",
			setup: func(t *testing.T, dir string) {
				if err := os.Mkdir(filepath.Join(dir, "recordings"), 0o755); err != nil {
					t.Fatal(err)
				}
				writeWAV(t, filepath.Join(dir, "recordings"), "hello", 8000, 7, 8)
				symlink(t, "recordings/hello", filepath.Join(dir, "welcome.wav"))
			},
		},
		{
			name: "a linked directory is ignored like a directory",
			setup: func(t *testing.T, dir string) {
				if err := os.Mkdir(filepath.Join(dir, "old"), 0o755); err != nil {
					t.Fatal(err)
				}
				symlink(t, "old", filepath.Join(dir, "goodbye.wav"))
			},
		},
		{
			name: "a FIFO that is not a .wav is never opened",
			setup: func(t *testing.T, dir string) {
				if err := syscall.Mkfifo(filepath.Join(dir, "notes"), 0o644); err != nil {
					t.Skipf("mkfifo: %v", err)
				}
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			tc.setup(t, dir)
			s, err := Builtin("en")
			if err != nil {
				t.Fatal(err)
			}
			before, _ := s.Clip(Welcome)
			type result struct {
				n   int
				err error
			}
			done := make(chan result, 1)
			start := time.Now()
			go func() {
				n, err := s.LoadDir(dir)
				done <- result{n, err}
			}()
			var r result
			select {
			case r = <-done:
			case <-time.After(5 * time.Second):
				t.Fatal("LoadDir blocked")
			}
			if d := time.Since(start); d > time.Second {
				t.Errorf("LoadDir took %v", d)
			}
			if tc.is == nil {
				if r.err != nil {
					t.Fatalf("LoadDir: %v", r.err)
				}
				return
			}
			if r.err == nil {
				t.Fatalf("LoadDir succeeded (%d)", r.n)
			}
			if !errors.Is(r.err, tc.is) {
				t.Errorf("error %q does not wrap %v", r.err, tc.is)
			}
			for _, w := range tc.want {
				if w = strings.ReplaceAll(w, "{dir}", dir); !strings.Contains(r.err.Error(), w) {
					t.Errorf("error %q does not contain %q", r.err, w)
				}
			}
			for _, secret := range []string{"PIN=", "482193", "member_pin", "Tuesday"} {
				if strings.Contains(r.err.Error(), secret) {
					t.Errorf("error %q repeats the file's %q", r.err, secret)
				}
			}
			if c, _ := s.Clip(Welcome); len(c) != len(before) {
				t.Error("a failed LoadDir changed the set")
			}
		})
	}
}

// The linked recording inside the directory is the one loaded.
func TestLoadDirFollowsLinksInside(t *testing.T) {
	dir := t.TempDir()
	writeWAV(t, dir, "take2", 8000, 7, 8, 9)
	symlink(t, "take2", filepath.Join(dir, "welcome.wav"))
	s, err := Builtin("en")
	if err != nil {
		t.Fatal(err)
	}
	if n, err := s.LoadDir(dir); err != nil || n != 1 {
		t.Fatalf("LoadDir: %d, %v", n, err)
	}
	if c, _ := s.Clip(Welcome); len(c) != 3 || c[0] != 7 {
		t.Errorf("welcome = %v", c)
	}
}

func symlink(t *testing.T, target, link string) {
	t.Helper()
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
}
