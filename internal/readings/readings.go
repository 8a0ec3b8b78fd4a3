// Package readings loads the groups' own recordings: each group's greeting
// (played to a caller before joining) and its readings (played to the room
// by a facilitator's **K), from prompts.dir/readings/ only, so that a
// reading can never replace a built-in prompt.
//
// A Library is loaded once per start or reload, off the mixing clock:
// every file converted to 8 kHz mono (media/prompt) and brought to the
// room's speech level, the AGC's target (media/level), so a reading plays
// like one more talker. It is never changed afterwards, so rooms and calls
// share it without locks.
//
// It must not know calls or rooms; it takes group.Group values and names
// configuration keys in its errors.
package readings

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/groupbridge/groupbridge/internal/group"
	"github.com/groupbridge/groupbridge/media/level"
	"github.com/groupbridge/groupbridge/media/prompt"
)

// Subdir is the directory inside prompts.dir the files are read from.
const Subdir = "readings"

// Group is one group's recordings. The clips are shared: never modify
// them.
type Group struct {
	// Greeting is played to each caller before joining; nil for none.
	Greeting []int16
	// Opening is the key of the reading that opens a session; 0 for none.
	Opening int
	clips   [10][]int16 // by key 1-9
}

// Reading returns reading key (1-9), or nil when the group has none.
// A nil *Group has none.
func (g *Group) Reading(key int) []int16 {
	if g == nil || key < 1 || key > 9 {
		return nil
	}
	return g.clips[key]
}

// Library is every group's recordings, by group name.
type Library struct {
	groups map[string]*Group
	files  map[fileID][]int16 // what each file became, for the next Load to reuse
}

// fileID tells a file apart from any other, or from itself changed: a
// reload reuses a clip only while its file is the same (same inode, size
// and modification time) and the same limit applies.
type fileID struct {
	name   string
	dev    uint64
	ino    uint64
	size   int64
	mtime  int64
	maxLen time.Duration
}

// For returns the named group's recordings, or nil when it has none. A
// nil *Library has none.
func (l *Library) For(name string) *Group {
	if l == nil {
		return nil
	}
	return l.groups[name]
}

// Load reads the greeting and readings of groups from dir/readings/, each
// at most maxLen long, and returns them ready to play. A file several
// keys name is read once. Every problem is reported, not only the first,
// each naming the key (groups[i].readings[j].file), the file and the
// reason (missing, not a WAV, an unsupported format, too long, silent).
// With no group naming a file it reads nothing, and dir may be "".
//
// prev, when not nil, is the library in use: a file unchanged since it was
// loaded is taken from it instead of being read and converted again, so a
// reload that changes a PIN does not spend seconds on ten-minute readings.
func Load(dir string, maxLen time.Duration, groups []group.Group, prev *Library) (*Library, error) {
	lib := &Library{groups: map[string]*Group{}, files: map[fileID][]int16{}}
	l := loader{dir: dir, maxLen: maxLen, cache: map[string][]int16{}, lib: lib}
	if prev != nil {
		l.prev = prev.files
	}
	defer l.close()
	for i, g := range groups {
		at := func(key string) string { return fmt.Sprintf("groups[%d].%s", i, key) }
		var rg Group
		if g.Greeting != "" {
			rg.Greeting = l.clip(at("greeting"), g.Greeting)
		}
		for j, r := range g.Readings {
			if r.Key >= 1 && r.Key <= 9 { // config validated the keys
				rg.clips[r.Key] = l.clip(at(fmt.Sprintf("readings[%d].file", j)), r.File)
			}
		}
		if g.Greeting == "" && len(g.Readings) == 0 {
			continue
		}
		rg.Opening = g.OpeningReading
		lib.groups[g.Name] = &rg
	}
	if len(l.errs) > 0 {
		return nil, errors.Join(l.errs...)
	}
	return lib, nil
}

// loader reads files once each and collects the problems.
type loader struct {
	dir     string
	maxLen  time.Duration
	root    *os.Root
	opened  bool
	rootErr error
	cache   map[string][]int16
	prev    map[fileID][]int16 // the library in use's clips
	lib     *Library           // being loaded: records each file's clip
	failed  map[string]string  // file -> reason, so a bad file named twice fails twice alike
	errs    []error
}

func (l *loader) close() {
	if l.root != nil {
		l.root.Close()
	}
}

// clip returns file's samples, or records why not under key.
func (l *loader) clip(key, file string) []int16 {
	if c, ok := l.cache[file]; ok {
		return c
	}
	shown := filepath.Join(l.dir, Subdir) + string(filepath.Separator) + file
	if l.dir == "" {
		l.errs = append(l.errs, fmt.Errorf("%s: %s: prompts.dir is not set (files are read from prompts.dir/%s/)", key, file, Subdir))
		return nil
	}
	if reason, ok := l.failed[file]; ok {
		l.errs = append(l.errs, fmt.Errorf("%s: %s: %s", key, shown, reason))
		return nil
	}
	c, err := l.load(file)
	if err != nil {
		reason := describe(err)
		if l.failed == nil {
			l.failed = map[string]string{}
		}
		l.failed[file] = reason
		l.errs = append(l.errs, fmt.Errorf("%s: %s: %s", key, shown, reason))
		return nil
	}
	l.cache[file] = c
	return c
}

func (l *loader) load(file string) ([]int16, error) {
	if !l.opened {
		l.opened = true
		l.root, l.rootErr = os.OpenRoot(filepath.Join(l.dir, Subdir))
	}
	if l.rootErr != nil {
		return nil, fmt.Errorf("%w: %w", errNoDir, l.rootErr)
	}
	id, known := l.identify(file)
	if c, ok := l.prev[id]; known && ok {
		l.lib.files[id] = c
		return c, nil
	}
	c, err := prompt.LoadRecording(l.root, file, l.maxLen)
	if err != nil {
		return nil, err
	}
	if _, ok := level.Normalize(c, level.DefaultTargetDBFS); !ok {
		return nil, errSilent
	}
	if known {
		l.lib.files[id] = c
	}
	return c, nil
}

// identify returns what tells file apart (following a link inside the
// directory); false when it cannot be told, and then it is always read.
func (l *loader) identify(file string) (fileID, bool) {
	fi, err := l.root.Stat(file)
	if err != nil || !fi.Mode().IsRegular() {
		return fileID{}, false
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fileID{}, false
	}
	return fileID{name: file, dev: uint64(st.Dev), ino: st.Ino, size: fi.Size(),
		mtime: fi.ModTime().UnixNano(), maxLen: l.maxLen}, true
}

var errSilent = errors.New("silent: nothing louder than -65 dBFS")

// errNoDir marks a file that could not be read because prompts.dir/readings/
// itself could not be opened.
var errNoDir = errors.New("directory")

// describe says why a file was refused in the operator's words.
func describe(err error) string {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if errors.Is(err, errNoDir) {
			return "missing (no directory prompts.dir/" + Subdir + "/)"
		}
		return "missing (no such file)"
	case errors.Is(err, prompt.ErrTooLong):
		return err.Error() + " (prompts.readings_max)"
	case errors.Is(err, prompt.ErrFormat), errors.Is(err, prompt.ErrNotRegular),
		errors.Is(err, prompt.ErrTooLarge), errors.Is(err, errSilent):
		return err.Error()
	}
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

// NewGroup returns recordings made in memory (tests, tools): the greeting,
// the opening key and readings by key 1-9; other keys are left out.
func NewGroup(greeting []int16, opening int, byKey map[int][]int16) *Group {
	g := &Group{Greeting: greeting, Opening: opening}
	for k, c := range byKey {
		if k >= 1 && k <= 9 {
			g.clips[k] = c
		}
	}
	return g
}

// NewLibrary returns a Library of groups made in memory, by group name.
func NewLibrary(groups map[string]*Group) *Library {
	return &Library{groups: groups}
}
