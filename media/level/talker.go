package level

import "github.com/groupbridge/groupbridge/media/pcm"

// Talker defaults. The on threshold sits well below normal speech on a phone
// line (around -20 dBFS active level) yet above the background of a quiet
// room; the 10 dB gap to the off threshold is the hysteresis that keeps a
// talker from flapping on the quiet ends of words. Three frames (60 ms)
// confirm a talkspurt, so clicks and single-packet bursts never count as
// talk (the Gate still passes those frames: see Voice); 25 frames (500 ms)
// bridge the pauses between words so a sentence stays one talkspurt.
const (
	DefaultOnDBFS    = -40.0
	DefaultOffDBFS   = -50.0
	DefaultOnFrames  = 3
	DefaultOffFrames = 25
)

// Time constants of the smoothed level reported by LevelDBFS, in frames. It
// rises quickly (40 ms) so a new talker is ranked at once and falls slowly
// (300 ms) so a talker's rank does not collapse between syllables, which
// would make the choice of loudest talkers flap.
const (
	levelRiseFrames = 2.0
	levelFallFrames = 15.0
)

var (
	levelRise = smoothing(levelRiseFrames)
	levelFall = smoothing(levelFallFrames)
)

// TalkerConfig sets a Talker's thresholds. A zero field takes its default
// (DefaultOnDBFS and so on), so TalkerConfig{} is the recommended setting.
type TalkerConfig struct {
	// OnDBFS is the frame RMS level at or above which a frame counts toward
	// starting to talk.
	OnDBFS float64
	// OffDBFS is the frame RMS level below which a frame counts toward
	// stopping. If it is above OnDBFS it is lowered to OnDBFS (no
	// hysteresis) rather than letting the two thresholds cross.
	OffDBFS float64
	// OnFrames is how many consecutive frames at or above OnDBFS start a
	// talkspurt.
	OnFrames int
	// OffFrames is how many consecutive frames below OffDBFS end one.
	OffFrames int
}

// withDefaults fills zero (or unusable) fields and repairs crossed thresholds.
func (c TalkerConfig) withDefaults() TalkerConfig {
	if c.OnDBFS == 0 || !finite(c.OnDBFS) {
		c.OnDBFS = DefaultOnDBFS
	}
	if c.OffDBFS == 0 || !finite(c.OffDBFS) {
		c.OffDBFS = DefaultOffDBFS
	}
	c.OffDBFS = min(c.OffDBFS, c.OnDBFS)
	if c.OnFrames <= 0 {
		c.OnFrames = DefaultOnFrames
	}
	if c.OffFrames <= 0 {
		c.OffFrames = DefaultOffFrames
	}
	return c
}

// Voice is what a Talker makes of the last frame, for the Gate.
type Voice uint8

const (
	// Quiet: no talkspurt, and the frame is not part of a possible start of
	// one.
	Quiet Voice = iota
	// Onset: not (yet) a talkspurt, but the frame is at or above the on
	// threshold, or above the off threshold within OnFrames-1 frames of
	// one that was. It may be a word's first syllable or a click; the Gate
	// passes it either way, because waiting for confirmation would cut the
	// word's start (docs/DECISIONS.md D11).
	Onset
	// Talkspurt: a confirmed talkspurt, its hangover included.
	Talkspurt
)

// Talker decides whether one caller is talking, from the level of each frame
// with hysteresis: talking starts after OnFrames consecutive frames at or
// above OnDBFS and stops after OffFrames consecutive frames below OffDBFS.
// A frame between the two thresholds keeps the current state and restarts
// the count toward a change, so steady background noise between the
// thresholds neither starts nor ends a talkspurt.
//
// The zero value is not usable; call NewTalker.
type Talker struct {
	onPower, offPower   float64 // thresholds as normalised powers: no log per frame
	onFrames, offFrames int
	talking             bool
	run                 int     // consecutive frames in favour of changing state
	grace               int     // frames an onset stays open above offPower
	voice               Voice   // the last frame's Voice
	level               float64 // smoothed normalised power for LevelDBFS
}

// NewTalker returns a Talker that is not talking, configured by cfg (zero
// fields take their defaults).
func NewTalker(cfg TalkerConfig) *Talker {
	cfg = cfg.withDefaults()
	return &Talker{
		onPower:   dbToPower(cfg.OnDBFS),
		offPower:  dbToPower(cfg.OffDBFS),
		onFrames:  cfg.OnFrames,
		offFrames: cfg.OffFrames,
	}
}

// Process takes the next frame from the caller and returns whether the
// caller is talking after it and whether that state changed with this frame.
// Feed it every frame period: the frame the caller sent, or a silent frame
// (or nil, which counts as silence) when none arrived, because frames are
// the Talker's only clock. f is not modified.
func (t *Talker) Process(f *pcm.Frame) (talking, changed bool) {
	var p float64
	if f != nil {
		p = framePower(f)
	}
	if p > t.level {
		t.level += levelRise * (p - t.level)
	} else {
		t.level += levelFall * (p - t.level)
		if t.level < floorPower {
			t.level = 0 // stop decaying into subnormals during long silence
		}
	}

	var toward bool // this frame argues for leaving the current state
	var need int
	if t.talking {
		toward, need = p < t.offPower, t.offFrames
	} else {
		toward, need = p >= t.onPower, t.onFrames
	}
	changed = false
	switch {
	case !toward:
		t.run = 0
	case t.run+1 < need:
		t.run++
	default:
		t.run = 0
		t.talking = !t.talking
		changed = true
	}
	t.follow(p)
	return t.talking, changed
}

// follow sets the Voice of a frame of power p, after the talking state.
// The grace after a loud frame keeps a word's quieter second frame (a
// consonant before its vowel) in; it is counted from the last loud frame,
// so noise between the thresholds is never passed for long.
func (t *Talker) follow(p float64) {
	switch {
	case t.talking:
		t.voice, t.grace = Talkspurt, 0
	case p >= t.onPower:
		t.voice, t.grace = Onset, t.onFrames-1
	case t.grace > 0 && p >= t.offPower:
		t.voice = Onset
		t.grace--
	default:
		t.voice, t.grace = Quiet, 0
	}
}

// Voice reports what the last Process made of its frame: Talkspurt while
// Talking, Onset for a frame that may start one, else Quiet.
func (t *Talker) Voice() Voice { return t.voice }

// Talking reports the state after the last Process.
func (t *Talker) Talking() bool { return t.talking }

// LevelDBFS returns the caller's smoothed RMS level in dBFS (FloorDBFS for
// silence): quick to rise, slow to fall, for ranking talkers when only the
// loudest few are mixed. It follows every frame, talking or not, so a caller
// who falls silent sinks in the ranking by about 15 dB a second.
func (t *Talker) LevelDBFS() float64 { return powerToDB(t.level) }
