package conference

import (
	"testing"
	"time"

	"github.com/groupbridge/groupbridge/internal/group"
	"github.com/groupbridge/groupbridge/internal/readings"
)

// A facilitator's **1 mixes reading 1 into what everyone in the room
// hears, on the room's own tick; **0 stops it. Talkers are still heard
// over it.
func TestReadingMixedIntoTheRoom(t *testing.T) {
	c, _ := newTestConference(t)
	clip := make([]int16, 8000*5)
	for i := range clip {
		clip[i] = 1000
	}
	g := group.Group{Name: "G", LedBy: group.LedByPeer, Readings: []group.Reading{{Key: 1, File: "r.wav"}}}
	c.SetReadings(readings.NewLibrary(map[string]*readings.Group{"G": readings.NewGroup(nil, 0, map[int][]int16{1: clip})}))
	fs, ms, talker := &fakeStream{}, &fakeStream{}, &fakeStream{}
	fac := joinNow(t, c, g, fs, group.Facilitator)
	joinNow(t, c, g, ms, group.Member)
	joinNow(t, c, g, talker, group.Member)
	now := time.Now()
	// Let the join prompts play out.
	for range 300 {
		now = now.Add(20 * time.Millisecond)
		tickAll(c, now)
	}
	if got := ms.heard(); got != 0 {
		t.Fatalf("member hears %d before the reading", got)
	}
	for _, k := range "**1" {
		fac.Key(byte(k))
	}
	for range 5 {
		now = now.Add(20 * time.Millisecond)
		tickAll(c, now)
	}
	for name, s := range map[string]*fakeStream{"facilitator": fs, "member": ms} {
		if got := s.heard(); got != 1000 {
			t.Errorf("%s hears %d during the reading, want 1000", name, got)
		}
	}
	talker.mu.Lock()
	talker.level = 500
	talker.mu.Unlock()
	for range 10 {
		now = now.Add(20 * time.Millisecond)
		tickAll(c, now)
	}
	if got := ms.heard(); got != 1500 {
		t.Errorf("member hears %d with a talker over the reading, want 1500", got)
	}
	if got := talker.heard(); got != 1000 {
		t.Errorf("the talker hears %d, want the reading alone (1000)", got)
	}
	talker.mu.Lock()
	talker.level = 0
	talker.mu.Unlock()
	for _, k := range "**0" {
		fac.Key(byte(k))
	}
	for range 40 {
		now = now.Add(20 * time.Millisecond)
		tickAll(c, now)
	}
	if got := ms.heard(); got != 0 {
		t.Errorf("member hears %d after **0, want silence", got)
	}
}

// The reading allocates nothing per tick.
func TestReadingTickAllocatesNothing(t *testing.T) {
	c, _ := newTestConference(t)
	clip := make([]int16, 8000*60)
	g := group.Group{Name: "G", LedBy: group.LedByPeer, Readings: []group.Reading{{Key: 1, File: "r.wav"}}}
	c.SetReadings(readings.NewLibrary(map[string]*readings.Group{"G": readings.NewGroup(nil, 0, map[int][]int16{1: clip})}))
	fac := joinNow(t, c, g, &fakeStream{}, group.Facilitator)
	joinNow(t, c, g, &fakeStream{}, group.Member)
	now := time.Now()
	for _, k := range "**1" {
		fac.Key(byte(k))
	}
	for range 300 {
		now = now.Add(20 * time.Millisecond)
		tickAll(c, now)
	}
	r := c.rooms["G"]
	if !r.reading.player.Playing() {
		t.Fatal("the reading does not play")
	}
	if a := testing.AllocsPerRun(100, func() {
		now = now.Add(20 * time.Millisecond)
		r.Tick(now)
	}); a != 0 {
		t.Fatalf("%.1f allocations per tick with a reading", a)
	}
}
