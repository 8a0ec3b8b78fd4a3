package prompt

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"
)

// ErrTooLong is wrapped by LoadRecording errors for a recording longer
// than its limit.
var ErrTooLong = errors.New("recording too long")

// RecordingSizeLimit is the largest file LoadRecording reads for a
// recording of at most maxLen: maxLen of the largest format accepted
// (48 kHz stereo 16-bit, 192,000 bytes a second) plus 1 MiB for headers
// and metadata chunks. Ten minutes is about 116 MB.
func RecordingSizeLimit(maxLen time.Duration) int64 {
	const perSecond = 48000 * 2 * 2
	return int64(maxLen/time.Millisecond)*perSecond/1000 + 1<<20
}

// LoadRecording reads the WAV file name inside root (a group's greeting or
// reading) and returns it as 8 kHz mono samples (see ParseWAV). With the
// same care as LoadDir: only a regular file inside root (a symbolic link
// may not lead out of it; a FIFO or a device is refused without being
// read), at most RecordingSizeLimit(maxLen) bytes. A recording longer than
// maxLen is refused (ErrTooLong) before it is converted. Errors say what
// is wrong, never the file's bytes; a missing file wraps fs.ErrNotExist.
func LoadRecording(root *os.Root, name string, maxLen time.Duration) ([]int16, error) {
	fi, err := root.Lstat(name)
	if err != nil {
		return nil, err
	}
	data, err := readFile(root, name, fi.Mode()&fs.ModeSymlink != 0, RecordingSizeLimit(maxLen))
	if errors.Is(err, errIsDir) {
		return nil, fmt.Errorf("%w: a directory", ErrNotRegular)
	}
	if err != nil {
		return nil, err
	}
	format, body, err := parseRIFF(data)
	if err != nil {
		return nil, err
	}
	frames := int64(len(body) / int(format.blockAlign))
	if d := time.Duration(frames) * time.Second / time.Duration(format.sampleRate); d > maxLen {
		return nil, fmt.Errorf("%w: %s, at most %s", ErrTooLong, d.Round(time.Second), maxLen)
	}
	return convert(format, body)
}
