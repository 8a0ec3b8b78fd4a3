package app

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/groupbridge/groupbridge/config"
)

// A FIFO or a link to a device in prompts.dir does not hang or exhaust
// the start: New returns at once with an error naming prompts.dir and the
// file.
func TestStartRefusesPromptsThatAreNotFiles(t *testing.T) {
	rows := []struct {
		name  string
		setup func(t *testing.T, file string)
	}{
		{"FIFO", func(t *testing.T, file string) {
			if err := syscall.Mkfifo(file, 0o600); err != nil {
				t.Skipf("mkfifo: %v", err)
			}
			t.Cleanup(func() { // unblock a reader if the check failed
				if f, err := os.OpenFile(file, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
					f.Close()
				}
			})
		}},
		{"link to /dev/zero", func(t *testing.T, file string) {
			if err := os.Symlink("/dev/zero", file); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, row := range rows {
		t.Run(row.name, func(t *testing.T) {
			dir := t.TempDir()
			row.setup(t, filepath.Join(dir, "welcome.wav"))
			y := strings.Replace(testYAML("", ""), "log:\n", "prompts:\n  dir: "+dir+"\nlog:\n", 1)
			cfg, err := config.Parse([]byte(y))
			if err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() {
				a, err := New(cfg, Options{})
				if err == nil {
					_ = a.engine.Close()
				}
				done <- err
			}()
			select {
			case err = <-done:
			case <-time.After(5 * time.Second):
				t.Fatal("New blocked on prompts.dir")
			}
			if err == nil || !strings.Contains(err.Error(), "prompts.dir") || !strings.Contains(err.Error(), "welcome.wav: not a regular file") {
				t.Fatalf("err = %v, want a prompts.dir error naming welcome.wav", err)
			}
		})
	}
}
