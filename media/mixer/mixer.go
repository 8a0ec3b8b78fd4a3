// Package mixer is an N-way mix-minus for one conference room.
//
// Every member hears the sum of everyone else who is heard, plus an optional
// room-wide sound and an optional private overlay, never their own voice.
// The mixer is pure: it has no goroutines, no clock and no locks. Its owner
// (the room) fills each member's In, calls Tick once per 20 ms frame from
// whatever clock drives the room, then reads each member's Out. Tests call
// Tick directly with no clock at all.
//
// Per tick the mixer sums all heard inputs once in int32, then for each
// member that needs a frame of its own subtracts that member's input (and
// adds its overlay) before clamping once. Clamping the sum first and
// subtracting afterwards would be wrong whenever the room is loud: with two
// members at 30000 and one at 1000 the sum 61000 clamps to 32767, and taking
// a loud member's 30000 back out would leave them hearing 2767 instead of the
// 31000 (still representable) that the others actually said.
//
// Members who are not heard and have no overlay all hear the same thing, so
// they share one common frame; the caller can encode it once per codec
// instead of once per listener, which in a large mostly-muted room is most
// of the encoding work.
//
// A Mixer and its Members are not safe for concurrent use; the room that owns
// them serialises all access.
package mixer

import "github.com/groupbridge/groupbridge/media/pcm"

// Member is one participant's audio slot in a Mixer.
//
// Before each Tick the owner sets In (this member's decoded input for the
// frame), Heard (whether In is part of the room's sum this tick: false for
// muted, waiting, on-hold or listen-only callers) and Private (an optional
// overlay only this member hears, such as a prompt; nil for none). The mixer
// only reads these during Tick. After Tick, Out returns what the member
// hears. A Member's zero value is ready to be added to a Mixer.
type Member struct {
	// In is this member's input frame for the coming Tick.
	In pcm.Frame
	// Heard puts In into the room's sum for the coming Tick.
	Heard bool
	// Private, when non-nil, is added to what this member alone hears.
	Private *pcm.Frame

	out    pcm.Frame // this member's own mix, valid when !common
	common bool      // Out is the mixer's shared frame
	index  int       // position in mixer.members, for O(1) removal
	mixer  *Mixer    // owner; nil when in no mixer
}

// Out returns what this member hears as of the last Tick. For a member that
// was neither heard nor given a Private overlay in that Tick, it is the
// mixer's shared common frame (see Common), the same pointer for all such
// members. The frame is overwritten by the next Tick; it must not be
// modified. A member that was never ticked or has been removed hears
// silence.
func (m *Member) Out() *pcm.Frame {
	if m.common {
		return &m.mixer.common
	}
	return &m.out
}

// Common reports whether Out is the mixer's shared common frame, so that a
// caller encoding for many members can encode it once per codec and reuse
// the result for every member where Common is true.
func (m *Member) Common() bool { return m.common }

// CommonFrame returns the shared frame that every member whose Common is
// true hears as of the last Tick (see Member.Out for its lifetime).
func (x *Mixer) CommonFrame() *pcm.Frame { return &x.common }

// Mixer mixes one room. Its zero value is not usable; call New.
type Mixer struct {
	members []*Member
	sum     [pcm.FrameSamples]int32
	common  pcm.Frame
}

// New returns an empty Mixer.
func New() *Mixer { return &Mixer{} }

// Add puts m in the mixer; it takes part from the next Tick. Adding a member
// already in this mixer does nothing. A member belongs to at most one mixer:
// adding one that is still in another panics, because its removal index
// would then be wrong in both and a later Remove would drop someone else.
func (x *Mixer) Add(m *Member) {
	if m.mixer == x {
		return
	}
	if m.mixer != nil {
		panic("mixer: Add of a member that is still in another mixer")
	}
	m.mixer = x
	m.index = len(x.members)
	m.common = false
	m.out.Silence()
	x.members = append(x.members, m)
}

// Remove takes m out of the mixer in O(1) by moving the last member into its
// slot, so Members' order changes. Removing a member that is not in this
// mixer does nothing. A removed member's Out is silence.
func (x *Mixer) Remove(m *Member) {
	if m.mixer != x {
		return
	}
	last := len(x.members) - 1
	moved := x.members[last]
	x.members[m.index] = moved
	moved.index = m.index
	x.members[last] = nil // let the removed member be collected
	x.members = x.members[:last]

	m.mixer = nil
	m.index = 0
	m.common = false
	m.out.Silence()
}

// Len returns the number of members.
func (x *Mixer) Len() int { return len(x.members) }

// Members returns the members in no particular order. The slice is the
// mixer's own: read it, do not modify it, and do not keep it across Add or
// Remove.
func (x *Mixer) Members() []*Member { return x.members[:len(x.members):len(x.members)] }

// Tick mixes one frame. extra, when non-nil, is a room-wide sound every
// member hears (the join chime); it is not anybody's voice, so nobody has it
// subtracted. Tick allocates nothing: one pass sums the heard inputs, then
// only members who are heard or have a Private overlay get a pass of their
// own; everybody else shares the common frame.
//
//	sum      = Σ In over Heard members + extra           (int32, unclamped)
//	common   = clamp(sum)
//	Heard    : out = clamp(sum - In + Private)
//	!Heard, Private != nil : out = clamp(sum + Private)
//	otherwise: Out() is common
func (x *Mixer) Tick(extra *pcm.Frame) {
	sum := &x.sum
	if extra != nil {
		for i, s := range extra {
			sum[i] = int32(s)
		}
	} else {
		*sum = [pcm.FrameSamples]int32{}
	}
	for _, m := range x.members {
		if !m.Heard {
			continue
		}
		in := &m.In
		for i, s := range in {
			sum[i] += int32(s)
		}
	}

	for i, s := range sum {
		x.common[i] = clamp(s)
	}

	for _, m := range x.members {
		switch {
		case m.Heard && m.Private == nil:
			m.common = false
			in, out := &m.In, &m.out
			for i, s := range sum {
				out[i] = clamp(s - int32(in[i]))
			}
		case m.Heard:
			m.common = false
			in, p, out := &m.In, m.Private, &m.out
			for i, s := range sum {
				out[i] = clamp(s - int32(in[i]) + int32(p[i]))
			}
		case m.Private != nil:
			m.common = false
			p, out := m.Private, &m.out
			for i, s := range sum {
				out[i] = clamp(s + int32(p[i]))
			}
		default:
			m.common = true
		}
	}
}

// clamp saturates like pcm.Clamp but without branches (min/max compile to
// conditional moves): in a loud room the sum overflows often and at random,
// and a mispredicted branch per sample cost about 15% of the whole tick with
// 1,000 talkers.
func clamp(v int32) int16 { return int16(min(max(v, -32768), 32767)) }
