// Package prompt holds the bridge's spoken prompts and the player that feeds
// them, frame by frame, into a caller's audio.
//
// The built-in prompts are generated at 8 kHz by gen/generate.sh from
// gen/<lang>.txt and embedded in the binary: English by festival (HTS
// voice), Spanish by espeak-ng. An operator may override any of them with
// their own recordings (Set.LoadDir), or bring a whole set in a language
// that has none built in (Recorded). A Set speaks one language, numbers
// and times included (lang.go); Bundle joins the sets of every configured
// language into one value that a reload swaps whole.
package prompt

import (
	"embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

//go:embed en/*.wav es/*.wav
var builtinFS embed.FS

// ErrUnknownLanguage is returned by Builtin for a language with no
// built-in prompt set.
var ErrUnknownLanguage = errors.New("no built-in prompts for language")

// ErrUnknownPrompt is wrapped in LoadDir errors for a WAV file whose name is
// not a prompt: almost always a typo that would otherwise be ignored.
var ErrUnknownPrompt = errors.New("unknown prompt name")

// ErrNotRegular is wrapped in LoadDir errors for a prompt that is not a
// regular file inside the directory: a FIFO, a device, or a symbolic link
// that leads out of it.
var ErrNotRegular = errors.New("not a regular file inside prompts.dir")

// ErrTooLarge is wrapped in LoadDir errors for a file over MaxFileSize.
var ErrTooLarge = errors.New("file too large for a prompt")

// MaxFileSize bounds one prompt file: 10 MB is over ten minutes of 16-bit
// 8 kHz audio (hold music included), far more than a spoken prompt, and
// keeps a misplaced large file from filling memory at every reload.
const MaxFileSize = 10 << 20

// Set is a collection of named prompt clips (8 kHz linear samples). Fill it
// with Builtin and optionally LoadDir, then share it: it is never changed
// after loading, so any number of goroutines may read it at once. The
// clips returned by Clip and Number are shared and must not be modified.
type Set struct {
	lang  string
	clips map[string][]int16
	lib   *library // the other languages of a Bundle; nil for a lone Set
}

// builtinSets parses each embedded set once; Builtin hands out copies of
// the map so LoadDir on one Set never leaks into another.
var builtinSets = func() map[string]func() (map[string][]int16, error) {
	sets := map[string]func() (map[string][]int16, error){}
	for _, lang := range builtinLanguages {
		sets[lang] = sync.OnceValues(func() (map[string][]int16, error) {
			return parseEmbedded(builtinFS, lang)
		})
	}
	return sets
}()

func parseEmbedded(fsys fs.FS, dir string) (map[string][]int16, error) {
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil, fmt.Errorf("read built-in prompts %s: %w", dir, err)
	}
	clips := make(map[string][]int16, len(entries))
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), ".wav")
		if !ok {
			continue
		}
		data, err := fs.ReadFile(fsys, path.Join(dir, e.Name()))
		if err != nil {
			return nil, fmt.Errorf("read built-in prompt %s/%s: %w", dir, e.Name(), err)
		}
		clip, err := ParseWAV(data)
		if err != nil {
			return nil, fmt.Errorf("built-in prompt %s/%s: %w", dir, e.Name(), err)
		}
		clips[name] = clip
	}
	return clips, nil
}

// Builtin returns a new Set with the embedded prompts of language (see
// BuiltinLanguages). Each call returns an independent Set, so one may be
// overridden with LoadDir while another is in use. Every language has
// the English hold music unless it brings its own.
func Builtin(language string) (*Set, error) {
	parse, ok := builtinSets[language]
	if !ok {
		return nil, fmt.Errorf("%w %q (have: %s)", ErrUnknownLanguage, language, strings.Join(builtinLanguages, ", "))
	}
	base, err := parse()
	if err != nil {
		return nil, err
	}
	clips := make(map[string][]int16, len(base)+1)
	for k, v := range base {
		clips[k] = v
	}
	if _, ok := clips[HoldMusic]; !ok {
		en, err := builtinSets["en"]()
		if err != nil {
			return nil, err
		}
		clips[HoldMusic] = en[HoldMusic]
	}
	return &Set{lang: language, clips: clips}, nil
}

// Names returns the sorted names of every built-in English prompt,
// including the number clips (n0..n19, n20..n90, hundred) and hold_music.
// It returns nil only if the embedded set is damaged, which the package
// tests rule out. NamesOf gives another language's.
func Names() []string {
	s, err := Builtin("en")
	if err != nil {
		return nil
	}
	return s.Names()
}

// Language returns the language s speaks ("en", "es", or a recorded
// set's code).
func (s *Set) Language() string { return s.lang }

// Clip returns the samples of the named prompt. The slice is shared and
// must not be modified.
func (s *Set) Clip(name string) ([]int16, bool) {
	c, ok := s.clips[name]
	return c, ok
}

// Names returns the sorted names of the clips in s.
func (s *Set) Names() []string {
	names := make([]string, 0, len(s.clips))
	for k := range s.clips {
		names = append(names, k)
	}
	slices.Sort(names)
	return names
}

// LoadDir overrides prompts of s with the operator's recordings in dir:
// every "<name>.wav" whose name is a prompt of s replaces it. Files that are
// not WAVs, and subdirectories, are ignored. A WAV with an unknown name or an
// unusable format fails the whole load and is named in the error (all such
// files are listed, not just the first); on error s is left unchanged. It
// returns how many prompts were overridden. Call it before s is shared:
// LoadDir is the one method that modifies a Set.
//
// Only regular files inside dir are read, each at most MaxFileSize: a
// symbolic link may point within dir but not out of it, and a FIFO or a
// device is refused without being read, so it can neither hang the start
// nor fill memory. Errors name the file and the problem, never its bytes.
func (s *Set) LoadDir(dir string) (int, error) {
	loaded, err := readDir(dir, func(name string) bool { _, ok := s.clips[name]; return ok })
	if err != nil {
		return 0, err
	}
	for k, v := range loaded {
		s.clips[k] = v
	}
	return len(loaded), nil
}

// readDir reads every "<name>.wav" in dir whose name is known, and fails
// (naming each file) on any other WAV or a file it cannot use.
func readDir(dir string, known func(name string) bool) (map[string][]int16, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("prompts.dir: %w", err)
	}
	defer root.Close()
	entries, err := fs.ReadDir(root.FS(), ".")
	if err != nil {
		return nil, fmt.Errorf("prompts.dir: %w", err)
	}
	loaded := make(map[string][]int16)
	var errs []error
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		ext := filepath.Ext(e.Name())
		if !strings.EqualFold(ext, ".wav") {
			continue
		}
		file := filepath.Join(dir, e.Name())
		name := strings.TrimSuffix(e.Name(), ext)
		if !known(name) {
			errs = append(errs, fmt.Errorf("prompts.dir: %s: %w %q", file, ErrUnknownPrompt, name))
			continue
		}
		data, err := readFile(root, e.Name(), e.Type()&fs.ModeSymlink != 0, MaxFileSize)
		if errors.Is(err, errIsDir) {
			continue
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("prompts.dir: %s: %w", file, err))
			continue
		}
		clip, err := ParseWAV(data)
		if err != nil {
			errs = append(errs, fmt.Errorf("prompts.dir: %s: %w", file, err))
			continue
		}
		loaded[name] = clip
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return loaded, nil
}

// errIsDir marks a "<name>.wav" that is a directory (through a link):
// ignored like any subdirectory.
var errIsDir = errors.New("a directory")

// readFile reads name in root if it is a regular file of at most limit
// bytes; link tells that the directory lists name as a symbolic link.
// O_NONBLOCK makes opening a FIFO return at once instead of waiting for a
// writer; the type is then checked on the opened file, so nothing can be
// swapped in between the check and the read.
func readFile(root *os.Root, name string, link bool, limit int64) ([]byte, error) {
	f, err := root.OpenFile(name, os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_NOCTTY, 0)
	if err != nil {
		var pe *fs.PathError
		if link && errors.As(err, &pe) && !errors.Is(err, fs.ErrNotExist) {
			// The root refuses a link that leads out of the directory.
			return nil, fmt.Errorf("%w: a symbolic link: %v", ErrNotRegular, pe.Err)
		}
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	switch {
	case fi.IsDir():
		return nil, errIsDir
	case !fi.Mode().IsRegular():
		return nil, fmt.Errorf("%w: %s", ErrNotRegular, fileType(fi.Mode()))
	case fi.Size() > limit:
		return nil, fmt.Errorf("%w: %d bytes, at most %d", ErrTooLarge, fi.Size(), limit)
	}
	// The limit holds even for a file that grows while it is read.
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%w: more than %d bytes", ErrTooLarge, limit)
	}
	return data, nil
}

// fileType names a file type that is not a regular file.
func fileType(m fs.FileMode) string {
	switch {
	case m&fs.ModeNamedPipe != 0:
		return "a FIFO"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a device"
	case m&fs.ModeSocket != 0:
		return "a socket"
	default:
		return "type " + m.Type().String()
	}
}

// Number returns the clips that speak n in s's language, for 0..999 (see
// speechOf); outside that range it reads the digits one by one (there is
// no "minus" clip; a sign is not spoken). Play the result with
// Player.Play(s.Number(n)...).
func (s *Set) Number(n int) [][]int16 {
	clips := make([][]int16, 0, 5)
	if n < 0 || n >= 1000 {
		for _, d := range strconv.Itoa(n) {
			if d >= '0' && d <= '9' {
				clips = s.appendClip(clips, wordNames[d-'0'])
			}
		}
		return clips
	}
	return speechOf(s.lang).number(s, clips, n)
}

// appendClip appends the named clip if s has it; a Set from Builtin or
// Recorded always has every number clip, and LoadDir can only replace
// them.
func (s *Set) appendClip(dst [][]int16, name string) [][]int16 {
	if c, ok := s.clips[name]; ok {
		dst = append(dst, c)
	}
	return dst
}
