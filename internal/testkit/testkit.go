// Package testkit holds what tests in several packages need alike: a log
// sink that many goroutines may write to (LogBuffer), a prompt file
// writer for reload tests (WriteWAV), a clock moved by hand
// (ManualClock), the lookup of outside programs that `make test` requires
// (NeedBinary) and a PostgreSQL server of a test's own (Postgres). Only
// tests import it.
//
// It must not know the bridge's own packages: it imports only the standard
// library and internal/wallclock (which ManualClock implements, and which
// imports nothing of the bridge), so any package's tests can use it
// without an import cycle. media/* tests keep their own (media imports
// only media).
package testkit

import (
	"bytes"
	"encoding/binary"
	"os"
	"sync"
	"testing"
)

// LogBuffer is an io.Writer for a test's logger (slog handlers, a child
// process's output) that is safe for concurrent writes and reads.
type LogBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write appends p.
func (l *LogBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

// String returns everything written so far.
func (l *LogBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// WAV returns samples as an 8 kHz mono 16-bit PCM WAV file, the format
// prompts.dir takes.
func WAV(samples []int16) []byte {
	b := []byte("RIFF\x00\x00\x00\x00WAVEfmt ")
	b = binary.LittleEndian.AppendUint32(b, 16)
	b = binary.LittleEndian.AppendUint16(b, 1) // PCM
	b = binary.LittleEndian.AppendUint16(b, 1) // mono
	b = binary.LittleEndian.AppendUint32(b, 8000)
	b = binary.LittleEndian.AppendUint32(b, 16000) // bytes a second
	b = binary.LittleEndian.AppendUint16(b, 2)     // bytes a frame
	b = binary.LittleEndian.AppendUint16(b, 16)
	b = append(b, "data"...)
	b = binary.LittleEndian.AppendUint32(b, uint32(2*len(samples)))
	for _, v := range samples {
		b = binary.LittleEndian.AppendUint16(b, uint16(v))
	}
	binary.LittleEndian.PutUint32(b[4:], uint32(len(b)-8))
	return b
}

// WriteWAV writes samples to file as WAV does; a failure fails the test.
func WriteWAV(t testing.TB, file string, samples []int16) {
	t.Helper()
	if err := os.WriteFile(file, WAV(samples), 0o600); err != nil {
		t.Fatal(err)
	}
}
