// Package jitter is the per-caller adaptive jitter buffer with packet loss
// concealment that sits between a caller's RTP receive path (Push) and the
// room's 20 ms mixing clock (Pop).
//
// Audio is played by RTP timestamp, not arrival order: packets are placed
// in a timestamp-indexed ring of samples with a per-sample presence bitmap,
// so reordered packets fall into place and any packet size (10, 20, 30,
// 40 ms or odd sizes up to 1 s) fills it the same way. Duplicates and
// packets too late to play are dropped.
//
// The playout delay adapts to the network. Each packet's transit time
// (arrival minus RTP time) is compared with the fastest recent transit, the
// base; the delay is how far the playout point runs behind the base. The
// target delay follows the RFC 3550 interarrival jitter estimate J as
// 3J + 10 ms rounded up to 10 ms (but no more than the lateness actually
// seen plus 10 ms, which matters for pure reordering), within [MinDelay,
// MaxDelay]. A packet plays at the first tick of the mixing clock a target
// delay after it arrived; until the stream has been calm for 3 s, and after
// a packet came too late, a frame later still. It rises at once, further still when a packet comes too late,
// and falls by 10 ms at a time, a second apart, only after 3 s of calm
// (10 s when late packets or delay spikes recur), so one stall is
// forgotten within 10 s. The playout point follows the target without
// audible jumps: freely during silence; when audio is missing and more
// delay is wanted, by concealing without moving on (so a packet that is
// merely late still plays); otherwise by time-scaling a frame by a few
// samples (1-2.5% on speech, up to 10% on quiet audio).
//
// A missing stretch is concealed by a repeat of the last pitch period of
// the played audio, joined without a click, at full level for 10 ms and
// then fading linearly to nothing 60 ms into the loss. When audio returns
// it is crossfaded in over 4 ms.
//
// The stream restarts (Resync) on a new SSRC, a sequence number jump, a
// packet whose timing is more than MaxDelay ahead of the stream or more
// than a second behind it (a timestamp jump, or a sender that restarted),
// a run of new packets that are all too late (the timestamps fell behind,
// or the path got much slower), or a marked talkspurt start that would be
// late. The new packets continue right after the audio still buffered, or,
// if nothing is, a target delay from now: no gap of stale or invented
// audio is played. Packets of a source just left are dropped for a second.
//
// A Buffer is pure: no goroutines, no locks, no clock of its own (times are
// passed in), and Push and Pop allocate nothing. Its owner serialises calls.
package jitter

import (
	"time"

	"github.com/groupbridge/groupbridge/media/pcm"
)

// Config bounds the adaptive delay. Zero fields take the defaults.
type Config struct {
	// MinDelay is the least extra delay kept (default 20 ms).
	MinDelay time.Duration
	// MaxDelay is the most extra delay the buffer grows to (default
	// 200 ms, at most 1 s).
	MaxDelay time.Duration
}

// Defaults and limits of Config.
const (
	DefaultMinDelay = 20 * time.Millisecond
	DefaultMaxDelay = 200 * time.Millisecond
	// MaxDelayLimit caps MaxDelay: the ring holds 2 s, room for the delay
	// and the largest packet.
	MaxDelayLimit = time.Second
	// MaxPacketSamples is the largest packet Push accepts: 1 s of audio.
	MaxPacketSamples = pcm.SampleRate
)

// PushResult says what Push did with a packet.
type PushResult int

const (
	// Accepted: the packet (or the part of it not yet due) was buffered.
	Accepted PushResult = iota
	// Duplicate: the packet's sequence number or all its samples were
	// already held or played; it was dropped.
	Duplicate
	// Late: the packet's audio was due before it arrived (or it is a
	// straggler from the source a Resync left); it was dropped.
	Late
	// Resync: the packet restarted the stream (new SSRC, sequence or
	// timestamp jump, stream far late) and was buffered as its first.
	Resync
	// Invalid: no samples, or more than MaxPacketSamples; dropped.
	Invalid
)

// String names the result for logs and tests.
func (r PushResult) String() string {
	switch r {
	case Accepted:
		return "accepted"
	case Duplicate:
		return "duplicate"
	case Late:
		return "late"
	case Resync:
		return "resync"
	case Invalid:
		return "invalid"
	}
	return "PushResult(" + itoa(int(r)) + ")"
}

// Kind says what Pop put in the frame.
type Kind int

const (
	// Audio: received audio (possibly time-scaled by a few samples, or
	// crossfaded in after concealment).
	Audio Kind = iota
	// Concealed: some of the frame is a fading repeat standing in for
	// audio that is missing.
	Concealed
	// Silence: nothing to play (before the first packet, after a loss
	// has faded out, while waiting for the delay to build up); the frame
	// is all zeros.
	Silence
)

// String names the kind for logs and tests.
func (k Kind) String() string {
	switch k {
	case Audio:
		return "audio"
	case Concealed:
		return "concealed"
	case Silence:
		return "silence"
	}
	return "Kind(" + itoa(int(k)) + ")"
}

// itoa formats small integers without fmt (String must not allocate on
// the common path, and fmt would for the rare one).
func itoa(v int) string {
	var b [20]byte
	i := len(b)
	neg := v < 0
	u := uint64(v)
	if neg {
		u = uint64(-v)
	}
	for {
		i--
		b[i] = byte('0' + u%10)
		u /= 10
		if u == 0 {
			break
		}
	}
	if neg {
		i--
		b[i] = '-'
	}
	return string(b[i:])
}

// Stats are the buffer's figures since New or Reset.
type Stats struct {
	// TargetDelay is the delay the buffer is steering toward.
	TargetDelay time.Duration
	// CurrentDelay is the extra delay measured at the last Pop: how long
	// the newest packet a frame needs has waited since it arrived by the
	// fastest recent path. It follows TargetDelay to within a few
	// milliseconds, lagging it while the buffer adapts. Audio waits up to a
	// frame more: until the stream has proved calm, a whole frame (see
	// desired in playout.go).
	CurrentDelay time.Duration
	// Jitter is the RFC 3550 interarrival jitter estimate.
	Jitter time.Duration
	// Accepted counts packets buffered (Accepted and Resync results).
	Accepted uint64
	// Duplicates counts packets dropped as duplicates.
	Duplicates uint64
	// Late counts packets dropped as too late.
	Late uint64
	// Resyncs counts stream restarts.
	Resyncs uint64
	// Concealed counts frames Pop returned as Concealed.
	Concealed uint64
	// Lost counts packets never received, from gaps in sequence numbers.
	Lost uint64
}

// Timing and adaptation constants.
const (
	nsPerSample = int64(time.Second) / pcm.SampleRate
	frame       = pcm.FrameSamples
	delayStep   = 10 * time.Millisecond
	// baseWindow is the span of each of the two windows whose minimum
	// transit is the base: the base forgets a fast outlier, or follows a
	// slower clock, within 2-4 s.
	baseWindow = int64(2 * time.Second)
	// growHold is how long the target stays up after it rose with the
	// jitter or after a lone spike, lateHold after recurring spikes;
	// shrinkStep is the wait between 10 ms steps down after that.
	growHold   = int64(3 * time.Second)
	lateHold   = int64(10 * time.Second)
	shrinkStep = int64(time.Second)
	// A spike is a late packet or a transit change of more than spikeJump;
	// spikes less than spikeCalm apart are one event (the burst after a
	// stall). A lone event holds the target only growHold, so one stall
	// of the machine or the path is forgotten within 10 s; an event that
	// recurs within lateHold of the one before holds it lateHold.
	spikeJump = int64(delayStep)
	spikeCalm = int64(time.Second)
	// resyncLate: a packet this much later than the base means the
	// stream's timestamps no longer match its clock (the sender restarted
	// or stalled): restart rather than drop everything as late.
	resyncLate = int64(time.Second)
	// lateRunResync consecutive new packets all too late also restart
	// the stream: its timestamps fell behind.
	lateRunResync = 4
	// maxDropout and seqWindow: a sequence number this far ahead, or at
	// least seqWindow behind, is a restart (RFC 3550 A.1 uses 3000 ahead).
	maxDropout = 3000
	seqWindow  = 1024
	// prevHold is how long packets of the SSRC a Resync left are dropped
	// as stragglers instead of switching back.
	prevHold = int64(time.Second)
)

// Buffer is one caller's jitter buffer. The zero value is not ready: use
// New. It is not safe for concurrent use; the owner locks.
type Buffer struct {
	minDelay, maxDelay time.Duration

	r ring

	started bool
	epoch   time.Time // arrival of the first packet; times are ns since it

	ssrc      uint32
	prevSSRC  uint32
	prevUntil int64 // drop prevSSRC's packets until then; 0: none

	// Unwrapping: the newest packet's sequence number and timestamp, its
	// extended sequence number and its position on the playout timeline.
	refSeq   uint16
	refTS    uint32
	maxSeq   int64
	refPos   int64
	refLen   int64 // the newest packet's length in samples
	firstSeq int64
	received uint64 // distinct sequence numbers received in this stream
	seen     seqSet
	lostDone uint64 // packets lost in streams before the last Resync

	playPos int64 // next position to play
	highPos int64 // end of the newest buffered audio

	// Timing, in ns since epoch. transit = arrival - position time.
	base        int64 // least recent transit: the on-time reference
	binCur      int64
	binPrev     int64
	binStart    int64
	havePrevBin bool
	latCur      int64 // most lateness (transit - base) in the current bin
	latPrev     int64 // and in the previous one
	prevTransit int64
	jitter      float64 // RFC 3550 J, ns
	target      time.Duration
	holdUntil   int64 // no shrinking of target before this
	spikeAt     int64 // arrival of the latest spike; valid if spikeSeen
	spikeSeen   bool
	spikeRepeat bool          // the current spike event recurred within lateHold
	steer       bool          // Pop is time-scaling the delay to the target
	lead        int64         // samples Pop may play ahead of target+frame (see desired)
	leadOn      int64         // of which taken so far (in silence)
	leadSet     bool          // lead was given to this stream
	leadAt      time.Duration // the target the lead was set for
	calmFrom    int64         // no lead before this
	lateRun     int           // consecutive new packets that came too late
	runTarget   time.Duration // the target before that run
	runJitter   float64       // and the jitter estimate

	plc plc
	// hist is the played history (histLen samples) followed by the frame
	// being built, so concealment starting mid-frame sees what played
	// just before it.
	hist [histLen + frame]int16
	src  [frame + maxScale]int16 // time-scaling input

	st Stats
}

// New returns an empty buffer with cfg's bounds (defaults for zero
// fields; MaxDelay is capped at MaxDelayLimit and raised to MinDelay).
func New(cfg Config) *Buffer {
	b := &Buffer{minDelay: cfg.MinDelay, maxDelay: cfg.MaxDelay}
	if b.minDelay <= 0 {
		b.minDelay = DefaultMinDelay
	}
	if b.maxDelay <= 0 {
		b.maxDelay = DefaultMaxDelay
	}
	b.minDelay = min(b.minDelay, MaxDelayLimit)
	b.maxDelay = min(max(b.maxDelay, b.minDelay), MaxDelayLimit)
	b.target = b.minDelay
	return b
}

// Reset forgets the stream, the adaptation and the figures, keeping the
// configuration: the buffer is as New left it.
func (b *Buffer) Reset() {
	*b = Buffer{minDelay: b.minDelay, maxDelay: b.maxDelay, target: b.minDelay}
}

// Stats returns the buffer's figures.
func (b *Buffer) Stats() Stats {
	s := b.st
	s.TargetDelay = b.target
	s.Jitter = time.Duration(b.jitter)
	s.Lost = b.lostDone + b.streamLost()
	return s
}

// streamLost is the number of packets of the current stream never
// received: expected (by the span of sequence numbers) minus received.
func (b *Buffer) streamLost() uint64 {
	if !b.started {
		return 0
	}
	expected := uint64(b.maxSeq - b.firstSeq + 1)
	if expected < b.received {
		return 0
	}
	return expected - b.received
}

// samplesOf converts a duration to whole samples.
func samplesOf(d time.Duration) int64 { return int64(d) / nsPerSample }

// Push buffers one packet: samples is its decoded 8 kHz audio (copied; the
// slice is not retained), ts its RTP timestamp, arrival when it came, on
// the clock that gives Pop its now. Any SSRC is taken: choosing which
// source to listen to (latching) is the caller's business; a different one
// restarts the stream. Reordered packets, duplicates and packets of any
// length are fine; the result says what became of the packet.
func (b *Buffer) Push(ssrc uint32, seq uint16, ts uint32, marker bool, samples []int16, arrival time.Time) PushResult {
	n := len(samples)
	if n == 0 || n > MaxPacketSamples {
		return Invalid
	}
	if !b.started {
		b.start(ssrc, seq, ts, samples, arrival)
		b.st.Accepted++
		return Accepted
	}
	arr := arrival.Sub(b.epoch).Nanoseconds()
	if ssrc != b.ssrc {
		if b.prevUntil != 0 && ssrc == b.prevSSRC && arr < b.prevUntil {
			b.st.Late++
			return Late
		}
		return b.resync(ssrc, seq, ts, samples, arr)
	}

	dseq := int64(int16(seq - b.refSeq))
	pos := b.refPos + int64(int32(ts-b.refTS))
	transit := arr - pos*nsPerSample
	lat := transit - b.base
	if dseq >= maxDropout || dseq <= -seqWindow || lat > resyncLate ||
		lat < -int64(b.maxDelay) || pos+int64(n)-b.playPos > ringSize {
		return b.resync(ssrc, seq, ts, samples, arr)
	}
	ext := b.maxSeq + dseq
	if dseq <= 0 && b.seen.has(ext) {
		b.st.Duplicates++
		return Duplicate
	}
	late := pos+int64(n) <= b.playPos
	if late && dseq > 0 && (marker || b.lateRun+1 >= lateRunResync) {
		// A talkspurt start is preceded by silence, so restarting there
		// is inaudible; a run of late packets means the timestamps fell
		// behind (or the path got much slower) and nothing of the stream
		// would ever play. The run was no jitter: its bumps are undone.
		if b.lateRun > 0 {
			b.target, b.jitter = b.runTarget, b.runJitter
		}
		return b.resync(ssrc, seq, ts, samples, arr)
	}

	if late && dseq > 0 && b.lateRun == 0 {
		b.runTarget, b.runJitter = b.target, b.jitter
	}
	// The packet counts as received from here on, even if too late.
	if dseq > 0 {
		b.seen.advance(b.maxSeq, ext)
		b.maxSeq = ext
		b.refSeq, b.refTS, b.refPos, b.refLen = seq, ts, pos, int64(n)
	}
	b.seen.mark(ext)
	b.received++
	b.firstSeq = min(b.firstSeq, ext)
	b.measure(transit, arr)

	if pos < b.playPos {
		b.lateBump(lat, arr)
	}
	if late {
		if dseq > 0 {
			b.lateRun++
		}
		b.st.Late++
		return Late
	}
	if dseq > 0 {
		b.lateRun = 0
	}
	// Only the part not yet due is kept.
	off := max(0, b.playPos-pos)
	keep := samples[off:]
	at := pos + off
	if b.r.count(at, len(keep)) == len(keep) {
		b.st.Duplicates++
		return Duplicate
	}
	b.r.write(at, keep)
	b.highPos = max(b.highPos, pos+int64(n))
	b.st.Accepted++
	return Accepted
}

// start takes the first packet: the playout point is set a target delay
// before it.
func (b *Buffer) start(ssrc uint32, seq uint16, ts uint32, samples []int16, arrival time.Time) {
	b.started = true
	b.epoch = arrival
	b.ssrc = ssrc
	b.target = b.minDelay
	b.playPos = -samplesOf(b.target)
	b.highPos = 0
	b.restartStream(seq, ts, 0, int64(len(samples)), 0)
	b.r.write(0, samples)
	b.highPos = int64(len(samples))
}

// resync restarts the stream at the packet: after the audio still
// buffered if any (so a transfer or restart plays on without a gap), else
// a target delay after the next frame. Stale audio that cannot fit with
// the new packet is forgotten.
func (b *Buffer) resync(ssrc uint32, seq uint16, ts uint32, samples []int16, arr int64) PushResult {
	n := int64(len(samples))
	b.st.Resyncs++
	b.st.Accepted++
	b.lostDone += b.streamLost()
	if ssrc != b.ssrc {
		b.prevSSRC, b.prevUntil = b.ssrc, arr+prevHold
		if b.prevUntil == 0 {
			b.prevUntil = 1
		}
		b.ssrc = ssrc
	}
	var pos int64
	if b.highPos > b.playPos && b.highPos+n-b.playPos <= ringSize {
		pos = b.highPos
	} else {
		b.r.clear()
		pos = b.playPos + frame + samplesOf(b.target)
		b.highPos = pos
		b.dropLead()
	}
	b.restartStream(seq, ts, pos, n, arr-pos*nsPerSample)
	b.r.write(pos, samples)
	b.highPos = pos + n
	return Resync
}

// dropLead takes back the frame of margin desired gives a calm stream.
func (b *Buffer) dropLead() {
	b.lead, b.leadOn, b.leadSet = 0, 0, false
}

// restartStream resets the sequence and timing references to a first
// packet (seq, ts) of n samples placed at pos with the given transit.
func (b *Buffer) restartStream(seq uint16, ts uint32, pos, n, transit int64) {
	b.refSeq, b.refTS, b.refPos, b.refLen = seq, ts, pos, n
	b.calmFrom = transit + pos*nsPerSample + growHold
	b.maxSeq, b.firstSeq, b.received = 0, 0, 1
	b.seen = seqSet{}
	b.seen.mark(0)
	b.base, b.binCur, b.binPrev, b.havePrevBin = transit, transit, transit, false
	b.latCur, b.latPrev = 0, 0
	b.binStart = transit + pos*nsPerSample // the packet's arrival
	b.prevTransit = transit
	b.lateRun = 0
}

// seqSet is the window of extended sequence numbers received, one bit
// each, indexed modulo seqWindow: it tells a duplicate from a late packet.
type seqSet [seqWindow / 64]uint64

// has reports whether extended sequence number q was received (q within
// seqWindow of the newest).
func (w *seqSet) has(q int64) bool {
	i := uint64(q) % seqWindow
	return w[i/64]&(1<<(i%64)) != 0
}

// mark records extended sequence number q as received.
func (w *seqSet) mark(q int64) {
	i := uint64(q) % seqWindow
	w[i/64] |= 1 << (i % 64)
}

// advance moves the newest sequence number from newest to q, forgetting
// the slots that the numbers in between now stand for.
func (w *seqSet) advance(newest, q int64) {
	if q-newest >= seqWindow {
		*w = seqSet{}
		return
	}
	for n := newest + 1; n <= q; n++ {
		i := uint64(n) % seqWindow
		w[i/64] &^= 1 << (i % 64)
	}
}

// measure feeds one packet's transit into the jitter estimate, the base
// and the target.
func (b *Buffer) measure(transit, arr int64) {
	// RFC 3550 6.4.1: J += (|D| - J)/16, D the change in transit.
	d := transit - b.prevTransit
	if d < 0 {
		d = -d
	}
	d = min(d, resyncLate) // one step cannot be worse than a restart
	b.prevTransit = transit
	b.jitter += (float64(d) - b.jitter) / 16
	if d > spikeJump {
		b.spike(arr)
	}

	// The base is the least transit over the current and the previous
	// window: the on-time reference that forgets old outliers.
	if arr-b.binStart >= baseWindow {
		b.binPrev, b.latPrev, b.havePrevBin = b.binCur, b.latCur, true
		b.binCur, b.latCur, b.binStart = transit, 0, arr
	} else {
		b.binCur = min(b.binCur, transit)
	}
	b.base = b.binCur
	if b.havePrevBin {
		b.base = min(b.base, b.binPrev)
	}
	b.latCur = max(b.latCur, transit-b.base)

	// The target is 3J + 10 ms, but never more than the lateness
	// actually seen plus 10 ms: reordering alone makes every D large
	// (J = 40 ms when pairs swap at 20 ms) while 20 ms of delay absorbs it.
	need := 3 * b.jitter
	if seen := float64(max(b.latCur, b.latPrev)); seen < need {
		need = seen
	}
	want := b.clampDelay(roundUp(time.Duration(need) + delayStep))
	switch {
	case want > b.target:
		b.target = want
		b.holdUntil = max(b.holdUntil, arr+growHold)
	case want < b.target && arr >= b.holdUntil:
		b.target = max(want, b.target-delayStep)
		b.holdUntil = arr + shrinkStep
	}
}

// lateBump raises the target at once when a packet came lat after the
// base and (some of) its audio was already due: the delay it needed, with
// a step of margin.
func (b *Buffer) lateBump(lat, arr int64) {
	need := b.clampDelay(roundUp(time.Duration(lat)) + delayStep)
	if need > b.target {
		b.target = need
	}
	b.dropLead()
	b.spike(arr)
}

// spike holds the target after a packet that came late or much later
// than the one before: growHold for a lone event, lateHold when events
// recur (a path that stalls every few seconds is not clean).
func (b *Buffer) spike(arr int64) {
	if !b.spikeSeen || arr-b.spikeAt > spikeCalm {
		b.spikeRepeat = b.spikeSeen && arr-b.spikeAt < lateHold
	}
	b.spikeAt, b.spikeSeen = arr, true
	hold := growHold
	if b.spikeRepeat {
		hold = lateHold
	}
	b.holdUntil = max(b.holdUntil, arr+hold)
}

// clampDelay bounds d to [MinDelay, MaxDelay].
func (b *Buffer) clampDelay(d time.Duration) time.Duration {
	return min(max(d, b.minDelay), b.maxDelay)
}

// roundUp rounds d up to a multiple of delayStep.
func roundUp(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return (d + delayStep - 1) / delayStep * delayStep
}
