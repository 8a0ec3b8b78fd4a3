package logging

import (
	"strings"
	"testing"
	"time"
)

// Tags on a fake clock: one caller keeps one tag all day, gets another
// the next day, and keeps the old one across midnight only while the
// episode it was part of may still matter (keep).
func TestTagsRotateDaily(t *testing.T) {
	const keep = 30 * time.Minute
	day := func(d, h, m int) time.Time { return time.Date(2026, 3, d, h, m, 0, 0, time.UTC) }
	tests := []struct {
		name      string
		first     time.Time // the caller's first tag
		touch     time.Time // zero: none
		at        time.Time
		wantSame  bool
		wantFresh bool // the tag is under the current day's key
	}{
		{"same day, hours later", day(1, 9, 0), time.Time{}, day(1, 23, 59), true, true},
		{"next day", day(1, 9, 0), time.Time{}, day(2, 9, 0), false, true},
		{"just before midnight, just after", day(1, 23, 50), time.Time{}, day(2, 0, 10), true, false},
		{"just before midnight, past keep after it", day(1, 23, 50), time.Time{}, day(2, 0, 31), false, true},
		{"longer before midnight than keep", day(1, 23, 20), time.Time{}, day(2, 0, 5), false, true},
		{"a long call touched before midnight", day(1, 21, 0), day(1, 23, 55), day(2, 0, 10), true, false},
		{"a week later", day(1, 20, 0), time.Time{}, day(8, 20, 0), false, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tags := NewTags(keep, time.UTC)
			tags.Tag("someone else", tc.first.Add(-time.Hour)) // a key exists before
			first := tags.Tag("caller", tc.first)
			if !tc.touch.IsZero() {
				tags.Touch("caller", tc.touch)
			}
			got := tags.Tag("caller", tc.at)
			if (got == first) != tc.wantSame {
				t.Errorf("tag at %v = %q, first %q: same = %v, want %v", tc.at, got, first, got == first, tc.wantSame)
			}
			// The current day's key, which a caller first seen now gets.
			fresh := tagOf(&tags.cur, "caller")
			if (got == fresh) != tc.wantFresh {
				t.Errorf("tag %q, current key's %q", got, fresh)
			}
		})
	}
}

// The previous key is forgotten once keep has passed after the change of
// day, and at once when nobody was active near it.
func TestTagsForgetPreviousKey(t *testing.T) {
	keep := 30 * time.Minute
	tags := NewTags(keep, time.UTC)
	at := time.Date(2026, 3, 1, 23, 45, 0, 0, time.UTC)
	old := tags.Tag("caller", at)
	tags.Tag("other", at.Add(20*time.Minute)) // 00:05: rotates
	if tags.prev == nil {
		t.Fatal("previous key dropped while a caller of the old day may come back")
	}
	if tags.Tag("caller", at.Add(25*time.Minute)) != old {
		t.Fatal("caller lost their tag within keep")
	}
	tags.Tag("other", at.Add(15*time.Minute+keep)) // keep after midnight
	if tags.Tag("caller", at.Add(15*time.Minute+keep)) == old {
		t.Fatal("the old tag outlived keep after midnight")
	}
	if tags.prev != nil || tags.prevSeen != nil {
		t.Fatal("previous key kept past keep")
	}
	// Quiet near midnight: no previous key kept at all.
	tags = NewTags(keep, time.UTC)
	tags.Tag("caller", time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	tags.Tag("caller", time.Date(2026, 3, 2, 0, 1, 0, 0, time.UTC))
	if tags.prev != nil {
		t.Fatal("previous key kept although nobody was active within keep")
	}
}

// Midnight is the operator's: the key changes at the day boundary of loc.
func TestTagsLocalMidnight(t *testing.T) {
	loc := time.FixedZone("UTC-5", -5*3600)
	tags := NewTags(time.Minute, loc)
	a := tags.Tag("caller", time.Date(2026, 3, 2, 1, 0, 0, 0, time.UTC)) // 20:00 on the 1st there
	b := tags.Tag("caller", time.Date(2026, 3, 2, 4, 59, 0, 0, time.UTC))
	c := tags.Tag("caller", time.Date(2026, 3, 2, 5, 1, 0, 0, time.UTC))
	if a != b || b == c {
		t.Fatalf("tags %q %q %q: want one tag until local midnight, another after", a, b, c)
	}
}

func TestTagForm(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	tags, other := NewTags(time.Minute, nil), NewTags(time.Minute, nil)
	if tags.Tag("", now) != Anonymous {
		t.Error("no identity is not anonymous")
	}
	seen := map[string]bool{}
	for i := range 1000 {
		id := strings.Repeat("x", i%7) + string(rune('a'+i%26)) + strings.Repeat("y", i/26)
		tag := tags.Tag(id, now)
		if !IsTag(tag) || strings.ContainsAny(tag, "0123456789") || RedactDigits(tag) != tag {
			t.Fatalf("tag %q", tag)
		}
		if seen[tag] {
			t.Fatalf("two of 1000 identities share tag %q", tag)
		}
		seen[tag] = true
		if tag == other.Tag(id, now) {
			t.Fatalf("two starts gave %q the same tag", id)
		}
	}
	for _, s := range []string{"", "+1•••••4567", "bcdfghj1", "bcdfgh", "BCDFGHJ", "abcdefg"} {
		if IsTag(s) {
			t.Errorf("IsTag(%q)", s)
		}
	}
	if !IsTag(Anonymous) || !IsTag("bcdfghj") {
		t.Error("IsTag refuses a tag")
	}
}
