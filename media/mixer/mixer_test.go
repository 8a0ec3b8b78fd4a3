package mixer

import (
	"math/rand/v2"
	"testing"

	"github.com/groupbridge/groupbridge/media/pcm"
)

// constFrame returns a frame whose every sample is v.
func constFrame(v int16) pcm.Frame {
	var f pcm.Frame
	for i := range f {
		f[i] = v
	}
	return f
}

// rampFrame returns base, base+step, base+2·step, ... so that a test sees
// per-sample mistakes (an off-by-one index), not just per-frame ones.
func rampFrame(base, step int16) pcm.Frame {
	var f pcm.Frame
	for i := range f {
		f[i] = base + int16(i)*step
	}
	return f
}

func newMember(in pcm.Frame, heard bool) *Member { return &Member{In: in, Heard: heard} }

func assertFrame(t *testing.T, what string, got *pcm.Frame, want pcm.Frame) {
	t.Helper()
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("%s: sample %d = %d, want %d", what, i, got[i], want[i])
		}
	}
}

// mapFrame applies fn to each sample index.
func mapFrame(fn func(i int) int32) pcm.Frame {
	var f pcm.Frame
	for i := range f {
		f[i] = pcm.Clamp(fn(i))
	}
	return f
}

func TestThreeMembersHearTheOtherTwo(t *testing.T) {
	x := New()
	a := newMember(rampFrame(100, 1), true)
	b := newMember(rampFrame(-2000, 3), true)
	c := newMember(constFrame(7), true)
	for _, m := range []*Member{a, b, c} {
		x.Add(m)
	}
	x.Tick(nil)
	tests := []struct {
		name string
		m    *Member
		want pcm.Frame
	}{
		{"a hears b+c", a, mapFrame(func(i int) int32 { return int32(-2000+3*i) + 7 })},
		{"b hears a+c", b, mapFrame(func(i int) int32 { return int32(100+i) + 7 })},
		{"c hears a+b", c, mapFrame(func(i int) int32 { return int32(100+i) + int32(-2000+3*i) })},
	}
	for _, tc := range tests {
		if tc.m.Common() {
			t.Errorf("%s: heard member reports Common", tc.name)
		}
		assertFrame(t, tc.name, tc.m.Out(), tc.want)
	}
	// Exact values at one index, spelled out.
	if a.Out()[10] != -2000+30+7 || b.Out()[10] != 110+7 || c.Out()[10] != 110-1970 {
		t.Fatalf("sample 10: a=%d b=%d c=%d", a.Out()[10], b.Out()[10], c.Out()[10])
	}
}

// TestClippingSubtractsBeforeClamping is the case that separates a correct
// mix-minus from clamp-then-subtract: the room sum overflows int16, a
// listener's output saturates, yet each loud talker still hears the others
// exactly.
func TestClippingSubtractsBeforeClamping(t *testing.T) {
	tests := []struct {
		name            string
		loud1, loud2, q int16
		wantLoud1       int16 // loud2 + q, exact
		wantQuiet       int16 // loud1 + loud2, saturated
		clampFirst      int16 // what the wrong order would give loud1
	}{
		{"positive", 30000, 30000, 1000, 31000, 32767, 32767 - 30000},
		{"negative", -30000, -30000, -1000, -31000, -32768, -32768 + 30000},
		{"opposite signs", 30000, -30000, 1000, -29000, 0, -29000}, // no overflow: both orders agree
	}
	for _, tc := range tests {
		x := New()
		l1 := newMember(constFrame(tc.loud1), true)
		l2 := newMember(constFrame(tc.loud2), true)
		q := newMember(constFrame(tc.q), true)
		x.Add(l1)
		x.Add(l2)
		x.Add(q)
		x.Tick(nil)
		assertFrame(t, tc.name+": loud1 hears loud2+quiet", l1.Out(), constFrame(tc.wantLoud1))
		assertFrame(t, tc.name+": quiet hears loud1+loud2", q.Out(), constFrame(tc.wantQuiet))

		wrong := pcm.Clamp(int32(pcm.Clamp(int32(tc.loud1)+int32(tc.loud2)+int32(tc.q))) - int32(tc.loud1))
		if wrong != tc.clampFirst {
			t.Fatalf("%s: test table wrong: clamp-then-subtract gives %d", tc.name, wrong)
		}
		overflows := tc.name != "opposite signs"
		if overflows == (wrong == tc.wantLoud1) {
			t.Errorf("%s: clamp-then-subtract gives %d, correct is %d; expected them to differ=%v",
				tc.name, wrong, tc.wantLoud1, overflows)
		}
	}
}

func TestPrivateOverlayOnlyForItsMember(t *testing.T) {
	x := New()
	prompt := rampFrame(500, 2)
	a := newMember(constFrame(100), true)
	a.Private = &prompt
	b := newMember(constFrame(200), true)
	quiet := newMember(constFrame(9999), false) // muted: hears the prompt privately, adds nothing
	quiet.Private = &prompt
	listener := newMember(constFrame(-9999), false)
	for _, m := range []*Member{a, b, quiet, listener} {
		x.Add(m)
	}
	x.Tick(nil)
	assertFrame(t, "heard member with prompt", a.Out(), mapFrame(func(i int) int32 { return 200 + int32(500+2*i) }))
	assertFrame(t, "other heard member", b.Out(), constFrame(100))
	assertFrame(t, "unheard member with prompt", quiet.Out(), mapFrame(func(i int) int32 { return 300 + int32(500+2*i) }))
	assertFrame(t, "plain listener", listener.Out(), constFrame(300))
	if a.Common() || quiet.Common() || !listener.Common() {
		t.Errorf("Common: a=%v quiet=%v listener=%v, want false false true", a.Common(), quiet.Common(), listener.Common())
	}

	// The overlay is per tick: cleared, it is gone, and the quiet member
	// joins the common frame.
	a.Private, quiet.Private = nil, nil
	x.Tick(nil)
	assertFrame(t, "a after prompt", a.Out(), constFrame(200))
	if !quiet.Common() || quiet.Out() != listener.Out() {
		t.Errorf("quiet member without overlay should share the common frame")
	}
}

func TestExtraHeardByAll(t *testing.T) {
	x := New()
	chime := rampFrame(-80, 1)
	a := newMember(constFrame(1000), true)
	b := newMember(constFrame(-50), true)
	prompt := constFrame(3)
	c := newMember(constFrame(0), false)
	c.Private = &prompt
	d := newMember(constFrame(0), false)
	for _, m := range []*Member{a, b, c, d} {
		x.Add(m)
	}
	x.Tick(&chime)
	ch := func(i int) int32 { return int32(-80 + i) }
	assertFrame(t, "a", a.Out(), mapFrame(func(i int) int32 { return -50 + ch(i) }))
	assertFrame(t, "b", b.Out(), mapFrame(func(i int) int32 { return 1000 + ch(i) }))
	assertFrame(t, "c", c.Out(), mapFrame(func(i int) int32 { return 950 + 3 + ch(i) }))
	assertFrame(t, "d", d.Out(), mapFrame(func(i int) int32 { return 950 + ch(i) }))

	// With nobody heard, the extra alone reaches everybody.
	a.Heard, b.Heard = false, false
	x.Tick(&chime)
	assertFrame(t, "a, unheard, extra only", a.Out(), chime)
	// And without it, silence: the previous tick's sum does not linger.
	x.Tick(nil)
	assertFrame(t, "a, unheard, no extra", a.Out(), pcm.Frame{})
}

func TestNonHeardMemberContributesNothingButHearsAll(t *testing.T) {
	x := New()
	a := newMember(constFrame(10), true)
	b := newMember(constFrame(20), true)
	muted := newMember(constFrame(30000), false) // loud, but muted
	muted2 := newMember(constFrame(-5), false)
	for _, m := range []*Member{a, b, muted, muted2} {
		x.Add(m)
	}
	x.Tick(nil)
	assertFrame(t, "a", a.Out(), constFrame(20))
	assertFrame(t, "b", b.Out(), constFrame(10))
	assertFrame(t, "muted", muted.Out(), constFrame(30))
	if !muted.Common() || !muted2.Common() {
		t.Fatal("unheard members without overlay must be Common")
	}
	if muted.Out() != muted2.Out() {
		t.Fatal("Common members must share one frame pointer")
	}

	// Unmuting takes effect at the next tick, and Common follows.
	muted.Heard = true
	if !muted.Common() {
		t.Fatal("Common must describe the last Tick, not the pending Heard flag")
	}
	x.Tick(nil)
	if muted.Common() {
		t.Fatal("heard member reports Common")
	}
	assertFrame(t, "unmuted", muted.Out(), constFrame(30))
	assertFrame(t, "a after unmute", a.Out(), constFrame(30020))
	assertFrame(t, "muted2 hears all three", muted2.Out(), constFrame(30030))
}

// TestAddRemoveKeepsIndices runs Add/Remove sequences and checks both the
// index invariant and, through a tick against a reference mix, that the
// right members are still being mixed.
func TestAddRemoveKeepsIndices(t *testing.T) {
	type op struct {
		add bool
		m   int
	}
	tests := []struct {
		name string
		ops  []op
		want []int // members present afterwards, any order
	}{
		{"remove middle", []op{{true, 0}, {true, 1}, {true, 2}, {false, 1}}, []int{0, 2}},
		{"remove first", []op{{true, 0}, {true, 1}, {true, 2}, {false, 0}}, []int{1, 2}},
		{"remove last", []op{{true, 0}, {true, 1}, {true, 2}, {false, 2}}, []int{0, 1}},
		{"remove only", []op{{true, 0}, {false, 0}}, nil},
		{"remove twice", []op{{true, 0}, {true, 1}, {false, 0}, {false, 0}}, []int{1}},
		{"remove never added", []op{{true, 0}, {false, 3}}, []int{0}},
		{"add twice", []op{{true, 0}, {true, 0}, {true, 1}}, []int{0, 1}},
		{"re-add after remove", []op{{true, 0}, {true, 1}, {true, 2}, {false, 0}, {true, 0}, {false, 2}, {true, 3}}, []int{0, 1, 3}},
		{"drain and refill", []op{{true, 0}, {true, 1}, {true, 2}, {true, 3}, {false, 1}, {false, 3}, {false, 0}, {false, 2}, {true, 2}, {true, 1}}, []int{1, 2}},
	}
	for _, tc := range tests {
		x := New()
		ms := make([]*Member, 4)
		for i := range ms {
			ms[i] = newMember(constFrame(int16(1<<i)), true) // distinct bits: a sum names its members
		}
		for _, o := range tc.ops {
			if o.add {
				x.Add(ms[o.m])
			} else {
				x.Remove(ms[o.m])
			}
		}
		if x.Len() != len(tc.want) {
			t.Fatalf("%s: Len = %d, want %d", tc.name, x.Len(), len(tc.want))
		}
		for i, m := range x.Members() {
			if m.index != i || m.mixer != x {
				t.Fatalf("%s: Members()[%d] has index %d, mixer ok=%v", tc.name, i, m.index, m.mixer == x)
			}
		}
		x.Tick(nil)
		var all int16
		for _, i := range tc.want {
			all |= 1 << i
		}
		for i, m := range ms {
			present := all&(1<<i) != 0
			if present {
				assertFrame(t, tc.name+": present member", m.Out(), constFrame(all&^(1<<i)))
			} else if m.mixer != nil || m.Common() {
				t.Fatalf("%s: member %d not present but still attached", tc.name, i)
			} else {
				assertFrame(t, tc.name+": absent member hears silence", m.Out(), pcm.Frame{})
			}
		}
	}
}

func TestRemoveFromOtherMixerIsNoOp(t *testing.T) {
	x, y := New(), New()
	a, b := newMember(constFrame(1), true), newMember(constFrame(2), true)
	x.Add(a)
	y.Add(b)
	y.Remove(a)
	x.Remove(b)
	if x.Len() != 1 || y.Len() != 1 || x.Members()[0] != a || y.Members()[0] != b {
		t.Fatal("Remove of a member from a mixer it is not in changed something")
	}
}

func TestAddToSecondMixerPanics(t *testing.T) {
	x, y := New(), New()
	a := &Member{}
	x.Add(a)
	defer func() {
		if recover() == nil {
			t.Fatal("Add of a member still in another mixer did not panic")
		}
		if y.Len() != 0 || x.Len() != 1 {
			t.Fatal("failed Add changed a mixer")
		}
	}()
	y.Add(a)
}

func TestCommonSemantics(t *testing.T) {
	x := New()
	fresh := &Member{}
	if fresh.Common() || *fresh.Out() != (pcm.Frame{}) {
		t.Fatal("a fresh member is not Common and hears silence")
	}
	talker := newMember(constFrame(42), true)
	l1, l2 := &Member{}, &Member{}
	x.Add(talker)
	x.Add(l1)
	x.Add(l2)
	x.Tick(nil)
	if !l1.Common() || !l2.Common() || talker.Common() {
		t.Fatal("Common: listeners true, talker false")
	}
	if l1.Out() != l2.Out() || l1.Out() == talker.Out() {
		t.Fatal("Common members share one frame; a talker has its own")
	}
	assertFrame(t, "common", l1.Out(), constFrame(42))
	// Removing a Common member detaches it from the shared frame.
	x.Remove(l1)
	if l1.Common() || l1.Out() == l2.Out() || *l1.Out() != (pcm.Frame{}) {
		t.Fatal("removed member must not point at the room's common frame")
	}
}

// TestMatchesReference compares Tick with a direct per-listener mix for
// random rooms, including sums far beyond int16.
func TestMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for round := range 200 {
		x := New()
		n := rng.IntN(12)
		ms := make([]*Member, n)
		for i := range ms {
			m := &Member{Heard: rng.IntN(3) > 0}
			for j := range m.In {
				m.In[j] = int16(rng.IntN(65536) - 32768)
			}
			if rng.IntN(4) == 0 {
				p := new(pcm.Frame)
				for j := range p {
					p[j] = int16(rng.IntN(65536) - 32768)
				}
				m.Private = p
			}
			ms[i] = m
			x.Add(m)
		}
		var extra *pcm.Frame
		if rng.IntN(2) == 0 {
			extra = new(pcm.Frame)
			for j := range extra {
				extra[j] = int16(rng.IntN(20001) - 10000)
			}
		}
		x.Tick(extra)
		for i, m := range ms {
			want := mapFrame(func(j int) int32 {
				var s int32
				for k, o := range ms {
					if k != i && o.Heard {
						s += int32(o.In[j])
					}
				}
				if extra != nil {
					s += int32(extra[j])
				}
				if m.Private != nil {
					s += int32(m.Private[j])
				}
				return s
			})
			if got := m.Out(); *got != want {
				t.Fatalf("round %d member %d (heard=%v private=%v): Out differs from reference",
					round, i, m.Heard, m.Private != nil)
			}
		}
	}
}

func TestTickAllocatesNothing(t *testing.T) {
	x := New()
	prompt := constFrame(5)
	for i := range 50 {
		m := newMember(constFrame(int16(i)), i%3 == 0)
		if i%7 == 0 {
			m.Private = &prompt
		}
		x.Add(m)
	}
	chime := constFrame(1)
	if n := testing.AllocsPerRun(100, func() { x.Tick(&chime) }); n != 0 {
		t.Fatalf("Tick allocates %.0f times", n)
	}
}

func TestClampMatchesPcmClamp(t *testing.T) {
	for _, v := range []int32{0, 1, -1, 32766, 32767, 32768, -32767, -32768, -32769, 1 << 30, -1 << 30, 1<<31 - 1, -1 << 31} {
		if got, want := clamp(v), pcm.Clamp(v); got != want {
			t.Errorf("clamp(%d) = %d, pcm.Clamp gives %d", v, got, want)
		}
	}
}
