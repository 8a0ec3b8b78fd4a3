package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// --cpuprofile writes a profile pprof can read (gzip) when stopped, and
// a path it cannot create is an error naming the flag.
func TestStartCPUProfile(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name, file, errHas string
	}{
		{"writes", filepath.Join(dir, "cpu.pprof"), ""},
		{"bad path", filepath.Join(dir, "missing", "cpu.pprof"), "--cpuprofile"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			stop, err := startCPUProfile(tc.file)
			if tc.errHas != "" {
				if err == nil || !strings.Contains(err.Error(), tc.errHas) {
					t.Fatalf("err = %v, want one naming %q", err, tc.errHas)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			stop()
			b, err := os.ReadFile(tc.file)
			if err != nil {
				t.Fatal(err)
			}
			if len(b) < 2 || b[0] != 0x1f || b[1] != 0x8b {
				t.Fatalf("profile is not gzip (%d bytes)", len(b))
			}
		})
	}
}
