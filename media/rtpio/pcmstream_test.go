//go:build linux

package rtpio

import "github.com/groupbridge/groupbridge/media/pcm"

// A Stream is what the lobby and the rooms play to and hear from.
var _ pcm.Stream = (*Stream)(nil)
