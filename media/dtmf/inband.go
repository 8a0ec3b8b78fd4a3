package dtmf

import (
	"math"

	"github.com/groupbridge/groupbridge/media/pcm"
)

// In-band detection: key tones inside the audio (ITU-T Q.23 frequencies,
// Q.24 receiver tolerances) for callers who did not negotiate
// telephone-event.
//
// Analysis. Each 20 ms frame is cut into eight chunks of 2.5 ms; a
// Goertzel recurrence per chunk gives the chunk's complex spectrum at the
// eight DTMF frequencies and at their second harmonics. Every 2.5 ms the
// last six chunks are combined, each turned by the phase its position
// calls for, into the exact DFT of a 15 ms window: a window sliding in
// 2.5 ms steps for the cost of one Goertzel pass over the samples. At 120
// samples the rectangular window's first null lies one bin (66.7 Hz) from
// each frequency, near the neighbouring rows (73-89 Hz away, which a tone
// leaks into at -13.7 dB at worst), and any row is four bins or more from
// any column.
//
// Windows and runs. A window hits a key when its strongest row and column
// pass every per-window test: level, 8 dB above the other rows and
// columns, half the window's energy between them, second harmonics 10 dB
// down, a loose twist. Hits of one key form a run. A run becomes a key
// press when the tone has lasted long enough and the run's averaged
// measurements pass the strict tests: frequency within MaxDeviation,
// level, twist, the pair carrying most of the energy,
// and nothing where a voice would have its next partials.
//
// Duration is measured to 2.5 ms rather than to a block. A window counts
// towards it ("strong") when its tone power is within strongDB of the
// run's strongest window, which takes a window at least ~70% covered by
// the tone (~60% for a tone 1.5% off frequency). A tone of T samples gives
// about (T − 0.42·120)/20 strong windows. minStrong = 10 accepts every
// tone of 40 ms at any offset to the frames (it has at least 10 wholly
// covered windows) and rejects every tone of 23 ms or less (it has at most
// 8 strong windows even if windows only 55% covered counted).
//
// Talk-off. Speech gives a false press when two of a voice's partials sit
// on a row and a column for 40 ms with little else around. The dangerous
// case is '*': 941 and 1209 Hz are the closest pair, so a voice at 235 Hz
// (4th and 5th harmonics, both within 1.4%) or 314 Hz (3rd and 4th, within
// 1.9%) puts two adjacent harmonics on it. Frequency tolerance cannot help
// there, so the strict tests also look for the partials such a voice has
// on either side, at 2·f_row − f_col and 2·f_col − f_row, where a pair of
// pure key tones has nothing.
//
// Cost. Most windows of what a caller sends (silence, line noise, most of
// speech) cannot pass the per-window tests, and cheap tests implied by
// them say so before any spectral analysis: the window's energy, then a
// bound on the strongest column's and row's power from the chunks'
// magnitudes (see classifyWindow). A chunk's Goertzel outputs are computed
// only when a window needs them. None of this changes a result: a window
// these tests reject could not have hit.

const (
	chunkLen    = 20                          // samples per chunk: 2.5 ms, the window hop
	winChunks   = 6                           // chunks per analysis window
	winLen      = chunkLen * winChunks        // 120 samples, 15 ms
	halfLen     = winLen / 2                  // the frequency estimate compares the window's halves
	frameChunks = pcm.FrameSamples / chunkLen // 8

	nTones = 8          // 4 rows then 4 columns
	nBins  = 2 * nTones // the tones and their second harmonics
)

// Frequencies of ITU-T Q.23: rows (low group) then columns (high group).
var toneHz = [nTones]float64{697, 770, 852, 941, 1209, 1336, 1477, 1633}

// keypad maps row*4+column to the digit.
const keypad = "123A456B789C*0#D"

// Thresholds. Levels are tone powers in dBm0 with 0 dBm0 taken as
// refDBFS below a full-scale sine (G.711: a full-scale sine is +3.14 dBm0).
const (
	refDBFS = -3.14

	// MinLevelDBm0 is the weakest tone (each of the pair, measured over
	// the run after correcting for the frequency offset) that is accepted:
	// Q.24 asks for acceptance at -25 dBm0 and administrations reject
	// below -35 to -55; the threshold sits midway between -25 and -35 so
	// that level errors of a few dB (G.711, a lossy line) move nothing.
	MinLevelDBm0 = -30.0
	// hitLevelDBm0 is the looser per-window floor: windows only partly
	// covered by a quiet tone, or a tone 1.5% off frequency, still count
	// as hits, and the strict level test is made over the whole run.
	hitLevelDBm0 = -38.0

	// MaxDeviation is the largest relative frequency offset accepted for
	// either tone, measured over the run. Q.24 asks to accept ±1.5% and
	// reject ±3.5%; 2.5% is the middle.
	MaxDeviation = 0.025

	// NormalTwistDB is how much weaker the column (high-group) tone may be
	// than the row tone, the usual case after a line's high-frequency
	// loss: 8 dB must pass, 10 dB must not.
	NormalTwistDB = 9.0
	// ReverseTwistDB is how much stronger the column tone may be than the
	// row tone: 4 dB must pass, 10 dB must not; 7 dB leaves equal room
	// either side of the measurement.
	ReverseTwistDB = 7.0
	// hitTwistSlackDB widens both twist limits for single windows, whose
	// levels are not corrected for frequency offset (up to 2 dB at 1.5%).
	hitTwistSlackDB = 4.0

	// relativeDB is how far the strongest row (column) must stand above
	// every other row (column): the neighbour a tone leaks into most
	// (852 and 941 Hz, 1.34 bins apart) reads 13.7 dB down, speech and
	// music usually spread over several rows.
	relativeDB = 8.0
	// energyShare is the smallest part of the window's energy the two
	// tones must carry. A clean pair 1.5% off frequency with 4 dB reverse
	// twist still carries 70% of a fully covered window; speech spreads
	// its energy over many harmonics and formants.
	energyShare = 0.5
	// harmonicDB is how far below each tone its second harmonic must be.
	// Key tones are nearly pure (harmonics 20-30 dB down even through
	// G.711 at -25 dBm0), the partials of a voice are harmonics of one
	// fundamental and come with their octaves.
	harmonicDB = 10.0
	// harmonicNearHz: a row's second harmonic closer than this to the
	// detected column (e.g. 2×697 = 1394 Hz next to 1336 Hz) is not
	// tested, as the column's own leakage would read as a harmonic.
	harmonicNearHz = 150.0

	// minShare is the least part of the energy of the windows wholly
	// inside the tone that the pair must carry once corrected for its
	// frequency offset: a clean pair gives 0.9-1.0 and still 0.83 with
	// white noise only 10 dB down; the voices that came closest to a
	// press in the talk-off tests gave 0.6-0.8.
	minShare = 0.8
	// neighbourDB is how far below the weaker tone the partials at
	// 2·f_row − f_col and 2·f_col − f_row must be (see the talk-off
	// notes): pure key tones leave them 55 dB down, 19 dB with white noise
	// 10 dB below the pair; voices whose adjacent harmonics made a '*'
	// had them 8-12 dB down.
	neighbourDB = 15.0

	// strongDB picks the windows that count towards duration: within
	// this of the run's strongest window means at least ~70% of the
	// window holds the tone (about 60% for a tone 1.5% off frequency).
	strongDB = 3.0
	// fullDB picks the windows that are wholly inside the tone (at least
	// ~90% covered) for the level and energy-share tests.
	fullDB = 1.0
	// minStrong strong windows confirm a press (see the package notes on
	// duration: every 40 ms tone, no tone of 23 ms or less).
	minStrong = 10
	// maxStrong: a run that has not passed the strict tests by then (the
	// averaged estimates have settled) is not a key press.
	maxStrong = 2 * minStrong
	// pendingGap misses end a run that is not yet a press: the hits of a
	// real tone come without gaps, speech gives scattered ones.
	pendingGap = 5
	// pressGap misses (30 ms of windows) end a confirmed press. A 10 ms
	// interruption spoils at most 11 windows, even of a tone so quiet that
	// only fully covered windows pass; a 40 ms pause spoils at least 13.
	pressGap = 12
	// muteStrong strong windows make a run that passes the strict tests a
	// candidate that a Filter cuts from the mix before it is confirmed
	// (~25 ms into the tone).
	muteStrong = 6
	// edgeMargin samples are cut beyond each estimated edge of a tone:
	// the estimate is good to a few samples (the full-window power it is
	// measured against varies by ±0.3 dB across a steady pair).
	edgeMargin = 8
	// fullEdge: an edge window whose tone power implies more coverage
	// than this gives no edge estimate, and wideMargin samples are cut
	// beyond it instead: as far as a tone can reach into the windows next
	// to a hit window without making them hits.
	fullEdge   = 0.9
	wideMargin = winLen / 2
)

// Derived constants, computed once.
var (
	// refPower is the power (mean square, in sample units²) of a 0 dBm0 sine.
	refPower = func() float64 {
		a := 32767 * math.Pow(10, refDBFS/20)
		return a * a / 2
	}()
	hitLevel   = refPower * dbToRatio(hitLevelDBm0)
	minLevel   = refPower * dbToRatio(MinLevelDBm0)
	relRatio   = dbToRatio(relativeDB)
	harmRatio  = dbToRatio(-harmonicDB)
	strongRat  = dbToRatio(-strongDB)
	fullRat    = dbToRatio(-fullDB)
	neighRat   = dbToRatio(-neighbourDB)
	normalRat  = dbToRatio(NormalTwistDB)
	reverseRat = dbToRatio(ReverseTwistDB)
	hitNormal  = dbToRatio(NormalTwistDB + hitTwistSlackDB)
	hitRev     = dbToRatio(ReverseTwistDB + hitTwistSlackDB)

	// binHz: the tones, then their second harmonics.
	binHz = func() (f [nBins]float64) {
		for i, hz := range toneHz {
			f[i], f[nTones+i] = hz, 2*hz
		}
		return f
	}()
	// coef is 2cos(ω) for the Goertzel recurrence.
	coef = func() (c [nBins]float64) {
		for i, hz := range binHz {
			c[i] = 2 * math.Cos(omega(hz))
		}
		return c
	}()
	// back is e^{-jω}: a chunk's DFT is e^{-jω(L-1)}·(s[L-1] − e^{-jω}·s[L-2]).
	back = func() (b [nBins]complex128) {
		for i, hz := range binHz {
			b[i] = cmplxExp(-omega(hz))
		}
		return b
	}()
	// place[bin][c] = e^{-jω(chunkLen-1 + c·chunkLen)} moves chunk c's
	// Goertzel output to the phase reference of the window's first sample.
	place = func() (p [nBins][winChunks]complex128) {
		for i, hz := range binHz {
			for c := range winChunks {
				p[i][c] = cmplxExp(-omega(hz) * float64(chunkLen-1+c*chunkLen))
			}
		}
		return p
	}()
	// hann tapers the history for histPower: its sidelobes are 60 dB
	// down five bins (250 Hz) away, so the tones do not leak into the
	// neighbour bins.
	hann = func() (w [histLen]float64) {
		for i := range w {
			w[i] = 0.5 - 0.5*math.Cos(2*math.Pi*(float64(i)+0.5)/histLen)
		}
		return w
	}()
	// skipRowHarmonic[r][c] is set when row r's second harmonic is too
	// close to column c to be measured.
	skipRowHarmonic = func() (s [4][4]bool) {
		for r := range 4 {
			for c := range 4 {
				s[r][c] = math.Abs(2*toneHz[r]-toneHz[4+c]) < harmonicNearHz
			}
		}
		return s
	}()
)

func dbToRatio(db float64) float64 { return math.Pow(10, db/10) }

func omega(hz float64) float64 { return 2 * math.Pi * hz / pcm.SampleRate }

func cmplxExp(phi float64) complex128 { return complex(math.Cos(phi), math.Sin(phi)) }

// runState is where a run of hits stands.
type runState uint8

const (
	runPending   runState = iota // not (yet) a key press
	runConfirmed                 // reported as a key press
	runRejected                  // steady but failed the strict tests: not DTMF
)

// hit is what a run keeps of one hit window for the duration and level tests.
type hit struct {
	strength float64 // row + column power: stable across a steady tone
	row, col float64 // tone powers, uncorrected
	total    float64 // mean square of the window
}

// maxHits bounds the hits kept per run: a run is decided by maxStrong
// strong windows, which a steady tone gives in as many hits.
const maxHits = 32

// toneRun is a sequence of windows hitting one key.
type toneRun struct {
	key    uint8 // 1 + row*4 + column; 0: no run
	state  runState
	hits   int // hit windows so far
	misses int // windows since the last hit of this key
	strong int // hits within strongDB of peak (kept up to date)
	peak   float64
	kept   [maxHits]hit
	nKept  int
	accRow complex128 // Σ B·conj(A) over hits: phase = frequency offset × halfLen
	accCol complex128
	likely bool  // passed the strict tests at its latest strong window
	end    int64 // end of the latest window that hit any key while the run lived
	// The tone's edges: the first and the latest hit windows and their
	// strengths, from which span estimates where the tone begins and ends.
	firstStart, lastStart       int64
	firstStrength, lastStrength float64
	otherEnd                    int64 // end of the latest window of another key while confirmed
}

// span estimates the samples the run's tone occupies. A window that holds
// a fraction p of a tone at its start (end) reads p² of the full power, so
// the tone starts (1−p)·winLen into the first hit window and ends p·winLen
// into the last one. When an edge window was wholly inside the tone (the
// windows beyond it failed for another reason, such as speech over the
// tone), where the tone really begins or ends is unknown and the wide
// margin applies.
func (r *toneRun) span() span {
	edge := func(strength float64) (p float64, margin int64) {
		p = math.Sqrt(min(strength/r.peak, 1))
		if p > fullEdge {
			return p, wideMargin
		}
		return p, edgeMargin
	}
	p, m := edge(r.firstStrength)
	from := r.firstStart + int64((1-p)*winLen) - m
	p, m = edge(r.lastStrength)
	to := max(r.lastStart+int64(math.Ceil(p*winLen))+m, r.otherEnd)
	return span{from, to}
}

func (r *toneRun) row() int { return int(r.key-1) / 4 }
func (r *toneRun) col() int { return int(r.key-1) % 4 }

// muteworthy reports whether the run is a key tone, or so far looks like
// one, and should be kept out of the mix.
func (r *toneRun) muteworthy() bool {
	return r.state == runConfirmed || (r.state == runPending && r.likely)
}

// span is a stretch of samples a Filter must cut.
type span struct{ from, to int64 }

// maxSpans finished candidate spans are remembered for the Filter: more
// than the few that can fall inside its delay line, each being several
// windows long.
const maxSpans = 8

// Detector finds DTMF key presses in 8 kHz audio: Goertzel analysis at the
// eight DTMF frequencies and their second harmonics over 15 ms windows
// every 2.5 ms, to the ITU-T Q.24 receiver tolerances (see MinLevelDBm0,
// MaxDeviation, NormalTwistDB, ReverseTwistDB; tones of 40 ms are
// accepted, tones of 23 ms or less are not).
//
// The zero value is ready to use; NewDetector is there for symmetry with
// NewFilter. A Detector belongs to one caller's stream and is not safe for
// concurrent use. It never allocates after creation.
type Detector struct {
	// Goertzel output of the last winChunks chunks: s[L-1] − e^{-jω}s[L-2],
	// computed only when a window needs it (see have).
	// Chunk n is in slot n%ringLen.
	chunks  [ringLen][nBins]complex128
	mags    [ringLen][nTones]float64 // magnitudes of the chunks' outputs at the tones, for bounds
	have    [ringLen]uint8           // what of each chunk is computed: bit g for group g, then the mags
	tag     [ringLen]int64           // the chunk whose results have describes
	at      [ringLen]int             // where each chunk's samples start in hist
	energy  [ringLen]int64           // Σx² of each chunk
	winE    int64                    // Σx² of the latest window
	nChunks int64                    // chunks seen
	pos     int64                    // samples seen
	cur     toneRun
	spans   [maxSpans]span // finished muteworthy runs, newest at spans[(nSpans-1)%maxSpans]
	nSpans  int
	// toneLive: a muteworthy run hit inside the latest frame.
	toneLive bool
	// noGate analyses every window in full, as before the gate existed:
	// tests compare the two.
	noGate bool
	// Windows that passed the energy gate, and that were analysed
	// exactly: tests check that the gate does its work.
	gated, analysed int64
	// hist holds the previous frame and the current one, whose samples
	// up to histEnd have been taken in: the chunks of a window are
	// analysed from here when needed, and the tests run once per candidate
	// press use the latest histLen samples.
	hist    [2 * pcm.FrameSamples]int16
	histEnd int
	// m is the latest window's analysis, kept here as it is too large to
	// clear for every window.
	m measure
}

// ringLen is one chunk more than a window: the next chunk's outputs can
// be computed with the newest's without overwriting the window's oldest.
const ringLen = winChunks + 1

// Bits of Detector.have beyond the four groups' Goertzel outputs.
const (
	haveRowMags = 1 << (4 + iota)
	haveColMags
)

// histLen samples (20 ms) are kept for the neighbour-partial test.
const histLen = pcm.FrameSamples

// NewDetector returns a detector ready for the first frame.
func NewDetector() *Detector { return &Detector{} }

// Process analyses the next 20 ms frame of one caller's audio (every frame,
// in order, silence included). It returns a digit ('0'-'9', '*', '#',
// 'A'-'D') once per key press, in the call where the press is confirmed:
// about 40 ms into the tone. It does not report that press again however
// long the key is held; the same key counts again only after a pause of
// about 30 ms or more (any pause of 40 ms does; interruptions of 10 ms or
// less do not).
//
// Process does not allocate.
func (d *Detector) Process(f *pcm.Frame) (digit byte, ok bool) {
	d.toneLive = false
	// The current frame becomes the previous one.
	copy(d.hist[:pcm.FrameSamples], d.hist[pcm.FrameSamples:])
	copy(d.hist[pcm.FrameSamples:], f[:])
	for i := range d.at {
		d.at[i] -= pcm.FrameSamples
	}
	for c := range frameChunks {
		d.histEnd = pcm.FrameSamples + (c+1)*chunkLen
		d.addChunk(d.histEnd - chunkLen)
		if d.nChunks >= winChunks {
			if dg, got := d.window(); got {
				digit, ok = dg, true
			}
			if d.cur.muteworthy() && d.cur.end == d.pos {
				d.toneLive = true
			}
		}
	}
	return digit, ok
}

// ToneActive reports whether a DTMF tone, confirmed or still a candidate,
// was present in the latest frame given to Process: a caller without a
// delay line can drop that frame from the mix. A candidate is a run of
// hits that has lasted about 25 ms and passes the strict tests so far;
// audio that resembles a key tone only for a moment, or a steady pair
// that fails the strict tests, is not one.
func (d *Detector) ToneActive() bool { return d.toneLive }

// addChunk enters the chunk at hist[from:] in the ring, replacing the
// oldest chunk. Its spectrum is left for a window that needs it: most
// windows of speech, and all of silence and line noise, are rejected by
// cheaper tests first (see classifyWindow).
func (d *Detector) addChunk(from int) {
	n := d.nChunks
	slot := int(n % ringLen)
	if d.tag[slot] != n {
		d.tag[slot], d.have[slot] = n, 0
	}
	d.at[slot] = from
	// Squares of int16 and their sums over a window are exact integers:
	// windowEnergy is bit for bit the float64 sum of squares.
	var e int64
	for _, v := range d.hist[from : from+chunkLen] {
		e += int64(v) * int64(v)
	}
	// The chunk leaving the window, n-winChunks, is in the next slot.
	d.winE += e - d.energy[(n+1)%ringLen]
	d.energy[slot] = e
	d.nChunks++
	d.pos += chunkLen
}

// Bin groups of four, the unit in which chunks are analysed: the rows,
// the columns, and the second harmonics of each.
const (
	groupRows = iota
	groupCols
	groupRowHarmonics
	groupColHarmonics
)

// chunkBins makes sure the ring slot's Goertzel outputs for bin group g
// are computed, from the chunk's samples in hist. For the newest chunk,
// the next one's are computed alongside when its samples are in hist: the
// two recurrences interleaved take little more time than one, which
// waits on itself, and the next window mostly needs them.
func (d *Detector) chunkBins(slot, g int) {
	bit := uint8(1 << g)
	if d.have[slot]&bit != 0 {
		return
	}
	x := d.hist[d.at[slot] : d.at[slot]+chunkLen]
	n := d.nChunks // the next chunk
	next := int(n % ringLen)
	if slot != int((n-1)%ringLen) || d.histEnd+chunkLen > len(d.hist) {
		goertzel4(x, 4*g, &d.chunks[slot])
		d.have[slot] |= bit
		return
	}
	if d.tag[next] != n {
		d.tag[next], d.have[next] = n, 0
	}
	goertzel4x2(x, d.hist[d.histEnd:d.histEnd+chunkLen], 4*g, &d.chunks[slot], &d.chunks[next])
	d.have[slot] |= bit
	d.have[next] |= bit
}

// goertzel4 runs the recurrence for bins from..from+3 over one chunk and
// stores s[L-1] − e^{-jω}s[L-2] for each. Four bins per pass keep the
// recurrence's state in registers.
func goertzel4(x []int16, from int, out *[nBins]complex128) {
	c0, c1, c2, c3 := coef[from], coef[from+1], coef[from+2], coef[from+3]
	var a1, a2, b1, b2, e1, e2, g1, g2 float64
	for _, v := range x {
		fv := float64(v)
		a1, a2 = fv+c0*a1-a2, a1
		b1, b2 = fv+c1*b1-b2, b1
		e1, e2 = fv+c2*e1-e2, e1
		g1, g2 = fv+c3*g1-g2, g1
	}
	out[from] = complex(a1, 0) - back[from]*complex(a2, 0)
	out[from+1] = complex(b1, 0) - back[from+1]*complex(b2, 0)
	out[from+2] = complex(e1, 0) - back[from+2]*complex(e2, 0)
	out[from+3] = complex(g1, 0) - back[from+3]*complex(g2, 0)
}

// goertzel4x2 is goertzel4 for two chunks at once.
func goertzel4x2(x, y []int16, from int, ox, oy *[nBins]complex128) {
	c := (*[4]float64)(coef[from:])
	y = y[:len(x)]
	var a1, a2, b1, b2, e1, e2, g1, g2 float64
	var p1, p2, q1, q2, r1, r2, t1, t2 float64
	for n, v := range x {
		fv, fw := float64(v), float64(y[n])
		a1, a2 = fv+c[0]*a1-a2, a1
		p1, p2 = fw+c[0]*p1-p2, p1
		b1, b2 = fv+c[1]*b1-b2, b1
		q1, q2 = fw+c[1]*q1-q2, q1
		e1, e2 = fv+c[2]*e1-e2, e1
		r1, r2 = fw+c[2]*r1-r2, r1
		g1, g2 = fv+c[3]*g1-g2, g1
		t1, t2 = fw+c[3]*t1-t2, t1
	}
	ox[from] = complex(a1, 0) - back[from]*complex(a2, 0)
	ox[from+1] = complex(b1, 0) - back[from+1]*complex(b2, 0)
	ox[from+2] = complex(e1, 0) - back[from+2]*complex(e2, 0)
	ox[from+3] = complex(g1, 0) - back[from+3]*complex(g2, 0)
	oy[from] = complex(p1, 0) - back[from]*complex(p2, 0)
	oy[from+1] = complex(q1, 0) - back[from+1]*complex(q2, 0)
	oy[from+2] = complex(r1, 0) - back[from+2]*complex(r2, 0)
	oy[from+3] = complex(t1, 0) - back[from+3]*complex(t2, 0)
}

// chunkMags computes the slot's magnitudes of the Goertzel outputs for
// the tones of group g (rows, columns), and the outputs if needed.
func (d *Detector) chunkMags(slot, g int) {
	d.chunkBins(slot, g)
	for k := 4 * g; k < 4*g+4; k++ {
		z := d.chunks[slot][k]
		d.mags[slot][k] = math.Sqrt(real(z)*real(z) + imag(z)*imag(z))
	}
	d.have[slot] |= haveRowMags << g
}

// boundSlack covers rounding in boundPowers against binPower: they differ
// only by rounding, a few parts in 1e16 of the sum of the magnitudes, so
// a relative 1e-9 is far more than enough.
const boundSlack = 1 + 1e-9

// boundPowers returns upper bounds on the window powers (as binPower
// computes them) of the four tones of group g (rows, columns): the
// window's DFT is the sum of its chunks', turned in phase, so its
// magnitude is at most the sum of theirs. A bound is exact for a steady
// tone on the bin and well above the power for speech, whose partials do
// not stay in phase across the window.
func (d *Detector) boundPowers(g int, slots *[winChunks]int) [4]float64 {
	const norm = 2.0 / (winLen * winLen) * boundSlack * boundSlack
	bit := uint8(haveRowMags << g)
	var s0, s1, s2, s3 float64
	for _, sl := range slots {
		if d.have[sl]&bit == 0 {
			d.chunkMags(sl, g)
		}
		m := (*[4]float64)(d.mags[sl][4*g:])
		s0 += m[0]
		s1 += m[1]
		s2 += m[2]
		s3 += m[3]
	}
	return [4]float64{norm * s0 * s0, norm * s1 * s1, norm * s2 * s2, norm * s3 * s3}
}

// strongest returns the window power of the strongest tone of group g
// (rows, columns) if it reaches hitLevel, computing it only for the tones
// whose bound allows that, and whether it does.
func (d *Detector) strongest(g int, slots *[winChunks]int) (float64, bool) {
	var best float64
	for k, b := range d.boundPowers(g, slots) {
		if b >= hitLevel {
			_, _, p := d.binPower(4*g+k, slots)
			best = max(best, p)
		}
	}
	return best, best >= hitLevel
}

// measure holds one window's analysis.
type measure struct {
	power [nBins]float64     // tone power estimates (mean square of the component)
	a, b  [nTones]complex128 // DFT of the window's first and second halves
	total float64            // mean square of the window
}

// windowEnergy returns the mean square of the window.
func (d *Detector) windowEnergy() float64 { return float64(d.winE) / winLen }

// analyse combines the ring's chunks into the window's spectrum at the
// bins of groups [from, to), computing the chunks' outputs first where
// needed.
func (d *Detector) analyse(m *measure, slots *[winChunks]int, from, to int) {
	for g := from; g < to; g++ {
		for _, sl := range slots {
			d.chunkBins(sl, g)
		}
	}
	for i := 4 * from; i < 4*to; i++ {
		a, b, p := d.binPower(i, slots)
		m.power[i] = p
		if i < nTones {
			m.a[i], m.b[i] = a, b
		}
	}
}

// binPower returns the DFT of the window's first and second halves and
// the window's power at bin i, from the chunks' outputs.
func (d *Detector) binPower(i int, slots *[winChunks]int) (a, b complex128, power float64) {
	const norm = 2.0 / (winLen * winLen) // a sine of amplitude A gives |X| = A·N/2; power A²/2
	for c, sl := range slots {
		v := d.chunks[sl][i] * place[i][c]
		if c < winChunks/2 {
			a += v
		} else {
			b += v
		}
	}
	x := a + b
	return a, b, norm * (real(x)*real(x) + imag(x)*imag(x))
}

// gateLevel is the window energy (mean square) below which no window can
// hit: by Cauchy-Schwarz a tone power estimate is at most twice the
// window's mean square, so a hit needs at least hitLevel/2. A further
// factor of two, far more than rounding needs, puts the gate at -44 dBm0,
// 14 dB below MinLevelDBm0. Every window that could hit is analysed, the
// first of a tone included, so a run starts where it did without the gate
// and a Filter cuts the tone from the same sample.
var gateLevel = hitLevel / 4

// gateEnergy is gateLevel as a sum of squares over the window.
var gateEnergy = int64(gateLevel * winLen)

// classifyWindow analyses the window ending at d.pos as far as needed and
// returns the key it hits (see classify) or 0. Cheap necessary conditions
// come first, each implied by classify's tests, so a window they reject
// could not have hit: a window energy of at least gateLevel, then bounds
// on the strongest column's and row's power that must reach hitLevel and
// together half the window's energy. Only then is the window analysed
// exactly, and its second harmonics only when the tones pass.
func (d *Detector) classifyWindow(m *measure) uint8 {
	if d.winE < gateEnergy && !d.noGate {
		return 0
	}
	m.total = d.windowEnergy()
	var slots [winChunks]int
	for c := range slots {
		slots[c] = int((d.nChunks - winChunks + int64(c)) % ringLen)
	}
	if d.noGate {
		d.gated++
		d.analysed++
		d.analyse(m, &slots, groupRows, groupColHarmonics+1)
		return classify(m)
	}
	d.gated++
	// The columns first: speech is mostly weak above 1.2 kHz. The
	// strongest row and column are those classifyTones tests.
	cols, ok := d.strongest(groupCols, &slots)
	if !ok {
		return 0
	}
	rows, ok := d.strongest(groupRows, &slots)
	if !ok || rows+cols < energyShare*m.total {
		return 0
	}
	d.analysed++
	d.analyse(m, &slots, groupRows, groupCols+1)
	r, c, ok := classifyTones(m)
	if !ok {
		return 0
	}
	d.analyse(m, &slots, groupRowHarmonics, groupColHarmonics+1)
	if !harmonicsOK(m, r, c) {
		return 0
	}
	return uint8(1 + r*4 + c)
}

// classify applies the per-window tests and returns the key (1 + row*4 +
// column) the window hits, or 0.
func classify(m *measure) uint8 {
	r, c, ok := classifyTones(m)
	if !ok || !harmonicsOK(m, r, c) {
		return 0
	}
	return uint8(1 + r*4 + c)
}

// classifyTones applies the per-window tests on the tones themselves:
// level, the strongest row (column) well above the others, twist, and the
// pair's share of the window's energy. It returns the strongest row and
// column and whether they pass.
func classifyTones(m *measure) (r, c int, ok bool) {
	r, r2 := best2(m.power[0:4])
	c, c2 := best2(m.power[4:8])
	pr, pc := m.power[r], m.power[4+c]
	switch {
	case pr < hitLevel || pc < hitLevel:
		return r, c, false
	case pr < relRatio*m.power[r2] || pc < relRatio*m.power[4+c2]:
		return r, c, false
	case pr > hitNormal*pc || pc > hitRev*pr:
		return r, c, false
	case pr+pc < energyShare*m.total:
		return r, c, false
	}
	return r, c, true
}

// harmonicsOK applies the per-window test on the second harmonics of row
// r and column c: each 10 dB below its tone.
func harmonicsOK(m *measure, r, c int) bool {
	pr, pc := m.power[r], m.power[4+c]
	switch {
	case m.power[nTones+4+c] > harmRatio*pc:
		return false
	case !skipRowHarmonic[r][c] && m.power[nTones+r] > harmRatio*pr:
		return false
	}
	return true
}

// best2 returns the indexes of the largest and second largest of p.
func best2(p []float64) (first, second int) {
	first, second = 0, 1
	if p[1] > p[0] {
		first, second = 1, 0
	}
	for i := 2; i < len(p); i++ {
		switch {
		case p[i] > p[first]:
			first, second = i, first
		case p[i] > p[second]:
			second = i
		}
	}
	return first, second
}

// window analyses the window ending at d.pos and advances the run; it
// returns a digit when this window confirms a press.
func (d *Detector) window() (byte, bool) {
	m := &d.m
	key := d.classifyWindow(m)
	wStart, wEnd := d.pos-winLen, d.pos
	r := &d.cur

	if r.key != 0 && key != 0 && key != r.key {
		if r.state == runConfirmed {
			// Another key while a press is held: most likely the
			// press is ending or the caller talks over it; the
			// running press ends by its gap, never restarts here,
			// so one press cannot be reported twice. Its windows
			// are still cut from the mix.
			r.misses++
			r.end, r.otherEnd = wEnd, wEnd
			return d.endIfGap()
		}
		d.finish()
	}
	if key == 0 {
		if r.key == 0 {
			return 0, false
		}
		r.misses++
		return d.endIfGap()
	}
	strength := m.power[int(key-1)/4] + m.power[4+int(key-1)%4]
	if r.key == 0 {
		*r = toneRun{key: key, firstStart: wStart, firstStrength: strength}
	}
	r.misses = 0
	r.end = wEnd
	r.lastStart, r.lastStrength = wStart, strength
	r.hits++
	return d.addHit(m)
}

// endIfGap ends the current run once its gap is long enough.
func (d *Detector) endIfGap() (byte, bool) {
	gap := pendingGap
	if d.cur.state == runConfirmed {
		gap = pressGap
	}
	if d.cur.misses >= gap {
		d.finish()
	}
	return 0, false
}

// finish closes the current run, remembering its span for the Filter when
// it was a tone to cut.
func (d *Detector) finish() {
	if d.cur.muteworthy() {
		d.spans[d.nSpans%maxSpans] = d.cur.span()
		d.nSpans++
	}
	d.cur = toneRun{}
}

// addHit records a hit of the current run's key and runs the strict tests
// when enough of the tone has been seen.
func (d *Detector) addHit(m *measure) (byte, bool) {
	r := &d.cur
	row, col := r.row(), 4+r.col()
	r.accRow += m.b[row] * conj(m.a[row])
	r.accCol += m.b[col] * conj(m.a[col])
	if r.state != runPending || r.nKept == maxHits {
		return 0, false
	}
	h := hit{strength: m.power[row] + m.power[col], row: m.power[row], col: m.power[col], total: m.total}
	r.kept[r.nKept] = h
	r.nKept++
	if h.strength > r.peak {
		r.peak = h.strength
		r.strong = 0
		for _, k := range r.kept[:r.nKept] {
			if k.strength >= strongRat*r.peak {
				r.strong++
			}
		}
	} else if h.strength >= strongRat*r.peak {
		r.strong++
	}
	if r.strong < muteStrong {
		return 0, false
	}
	// From muteStrong on, the strict tests decide whether the run is
	// still a candidate to cut from the mix; from minStrong on, whether
	// it is a press.
	r.likely = d.strictOK()
	if r.likely && r.strong >= minStrong {
		r.state = runConfirmed
		return keypad[r.key-1], true
	}
	if r.strong >= maxStrong || r.nKept == maxHits {
		r.state = runRejected
	}
	return 0, false
}

func conj(z complex128) complex128 { return complex(real(z), -imag(z)) }

// strictOK applies the tests made once per candidate press, on the run's
// averaged measurements: frequency offset of each tone,
// then, over the windows wholly inside the tone and after correcting for
// the window's response at the measured offset, the energy share, the
// level and the twist, and last the voice-partial test on the latest
// samples.
func (d *Detector) strictOK() bool {
	r := &d.cur
	row, col := r.row(), 4+r.col()
	offRow, offCol := freqOffset(r.accRow), freqOffset(r.accCol)
	if math.Abs(offRow) > MaxDeviation*toneHz[row] || math.Abs(offCol) > MaxDeviation*toneHz[col] {
		return false
	}
	gr, gc := response(offRow), response(offCol)
	var sumRow, sumCol, sumShare float64
	var n int
	for _, k := range r.kept[:r.nKept] {
		if k.strength >= fullRat*r.peak {
			sumRow += k.row / gr
			sumCol += k.col / gc
			sumShare += (k.row/gr + k.col/gc) / k.total
			n++
		}
	}
	pr, pc := sumRow/float64(n), sumCol/float64(n) // n ≥ 1: the peak window itself
	if sumShare < minShare*float64(n) || pr < minLevel || pc < minLevel {
		return false
	}
	if pr > normalRat*pc || pc > reverseRat*pr {
		return false
	}
	fr, fc := toneHz[row]+offRow, toneHz[col]+offCol
	weaker := min(d.histPower(fr), d.histPower(fc))
	return max(d.histPower(2*fr-fc), d.histPower(2*fc-fr)) <= neighRat*weaker
}

// freqOffset turns the accumulated half-window product into a frequency
// offset in Hz: the second half of a window lags the first by halfLen
// samples, so a tone Δf off the bin turns by 2π·Δf·halfLen/fs between them.
// Unambiguous up to ±fs/(2·halfLen) = ±66 Hz, beyond 3.5% of 1633 Hz.
func freqOffset(acc complex128) float64 {
	return math.Atan2(imag(acc), real(acc)) * pcm.SampleRate / (2 * math.Pi * halfLen)
}

// response is the power a rectangular window of winLen samples gives a
// sine offHz from the bin, relative to a sine on the bin.
func response(offHz float64) float64 {
	x := math.Pi * offHz * winLen / pcm.SampleRate
	if math.Abs(x) < 1e-9 {
		return 1
	}
	s := math.Sin(x) / x
	return s * s
}

// cuts reports whether samples [from, to) overlap a tone to keep out of
// the mix: the current run if it is one, or a finished one.
func (d *Detector) cuts(from, to int64) bool {
	overlap := func(s span) bool { return s.from < to && s.to > from }
	if d.cur.muteworthy() && overlap(d.cur.span()) {
		return true
	}
	for i := range min(d.nSpans, maxSpans) {
		if overlap(d.spans[i]) {
			return true
		}
	}
	return false
}

// Limits of NewFilter's delay.
const (
	// MinFilterDelay frames (40 ms) is the shortest delay that lets a
	// 40 ms tone be cut from its first sample: the frame that holds the
	// tone's start leaves the delay line at least 321 samples after that
	// start, and a tone is a candidate within about 220 samples and
	// confirmed within 320.
	MinFilterDelay = 2
	// MaxFilterDelay frames (100 ms) bounds the delay a room must bear.
	MaxFilterDelay = 5
)

// Filter is a delay line with a Detector, for the audio of a caller who
// did not negotiate telephone-event and so sends key presses as tones:
// it reports the digits and passes the audio on delayed, with every frame
// that carried part of a key tone replaced by silence, from the tone's
// very first frame to its last, so the room never hears the keys. Audio
// around the tones comes out unchanged, only later.
//
// The zero value is not usable; use NewFilter. A Filter belongs to one
// caller's stream and is not safe for concurrent use. It never allocates
// after creation.
type Filter struct {
	det    Detector
	delay  int
	frames [MaxFilterDelay + 1]pcm.Frame // ring: frame k in frames[k%(delay+1)]
	n      int64                         // frames received
}

// NewFilter returns a Filter delaying the audio by delayFrames 20 ms
// frames: 2 (40 ms) or 3 (60 ms, which also cuts tones that are confirmed
// late). Values are clamped to [MinFilterDelay, MaxFilterDelay].
func NewFilter(delayFrames int) *Filter {
	return &Filter{delay: min(max(delayFrames, MinFilterDelay), MaxFilterDelay)}
}

// Delay returns the filter's delay in frames.
func (fl *Filter) Delay() int { return fl.delay }

// Process takes the caller's next frame and writes to out the frame
// received Delay() frames earlier, or silence if that frame carried part
// of a key tone (confirmed, or a candidate as for ToneActive); the first
// Delay() outputs are silence. in and out may be the
// same frame. The digit is reported as by Detector.Process, when the press
// is confirmed, which is before its first frame comes out.
//
// Process does not allocate.
func (fl *Filter) Process(in, out *pcm.Frame) (digit byte, ok bool) {
	digit, ok = fl.det.Process(in)
	size := int64(fl.delay + 1)
	fl.frames[fl.n%size] = *in
	fl.n++
	k := fl.n - 1 - int64(fl.delay) // the frame that comes out now
	if k < 0 {
		out.Silence()
		return digit, ok
	}
	from := k * pcm.FrameSamples
	if fl.det.cuts(from, from+pcm.FrameSamples) {
		out.Silence()
	} else {
		*out = fl.frames[k%size]
	}
	return digit, ok
}

// histPower returns the power of the hz component of the Hann-tapered
// history, in units only comparable with other histPower results.
func (d *Detector) histPower(hz float64) float64 {
	c := 2 * math.Cos(omega(hz))
	var s1, s2 float64
	h := d.hist[d.histEnd-histLen : d.histEnd]
	for i := range histLen {
		x := float64(h[i]) * hann[i]
		s1, s2 = x+c*s1-s2, s1
	}
	p := s1*s1 + s2*s2 - c*s1*s2
	return 2 * max(p, 0) / (histLen * histLen)
}
