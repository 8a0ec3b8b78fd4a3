package logging

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"strings"
	"sync"
	"time"
)

// Anonymous is how a caller without a shown identity is named.
const Anonymous = "anonymous"

// tagAlphabet has no digits, so a tag never looks like part of a number
// and passes RedactDigits unchanged, and no vowels, so it spells no word.
const tagAlphabet = "bcdfghjkmnpqrstvwxz"

// tagLen letters: 19^7, about 9e8 tags, so callers of one day do not
// share one.
const tagLen = 7

// maxSeen bounds the callers remembered for keeping their tag across a
// rotation; past it a caller may get a new tag at the next rotation.
const maxSeen = 100_000

// Tags names callers in log lines by a short tag of their identity (an
// HMAC of the number, never the number) under a key that changes every
// day: one caller has one tag all day, so an operator can follow their
// lines, but tags of different days do not link one person across weekly
// meetings, and a tag cannot be turned back into a number. Keys are drawn
// at random and kept in memory only.
//
// A caller seen within Keep before the change of day keeps the previous
// day's tag until Keep after it, so one episode (a rejoin, a run of wrong
// PINs and its lockout) is not split between two names; then the previous
// key is forgotten. Time is passed in. Safe for concurrent use.
type Tags struct {
	keep time.Duration
	loc  *time.Location

	mu       sync.Mutex
	day      string // the current key's date in loc; "" before the first tag
	cur      [32]byte
	prev     *[32]byte // nil when forgotten
	rotated  time.Time // the midnight at which cur replaced prev
	seen     map[string]time.Time
	prevSeen map[string]time.Time
	pruned   time.Time
}

// NewTags returns tags whose key changes at midnight in loc (nil: UTC),
// keeping the previous key for keep after the change.
func NewTags(keep time.Duration, loc *time.Location) *Tags {
	if loc == nil {
		loc = time.UTC
	}
	return &Tags{keep: keep, loc: loc, seen: map[string]time.Time{}}
}

// Tag returns the tag of an identity at now; "" (no identity) is
// Anonymous.
func (t *Tags) Tag(identity string, now time.Time) string {
	if identity == "" {
		return Anonymous
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.advance(now)
	if t.prev != nil {
		if last, ok := t.prevSeen[identity]; ok && now.Sub(last) < t.keep {
			t.prevSeen[identity] = now
			return tagOf(t.prev, identity)
		}
	}
	t.note(identity, now)
	return tagOf(&t.cur, identity)
}

// Touch records that an identity was active at now (a call that ends),
// so that a long call keeps its tag across a rotation like a short one.
func (t *Tags) Touch(identity string, now time.Time) {
	if identity == "" {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.advance(now)
	if _, ok := t.prevSeen[identity]; ok && t.prev != nil {
		t.prevSeen[identity] = now
	} else if _, ok := t.seen[identity]; ok {
		t.seen[identity] = now
	}
}

// advance changes the key on a new day and forgets the previous key once
// keep has passed since. The caller holds t.mu.
func (t *Tags) advance(now time.Time) {
	if t.prev != nil && now.Sub(t.rotated) >= t.keep {
		clear(t.prev[:])
		t.prev, t.prevSeen = nil, nil
	}
	local := now.In(t.loc)
	day := local.Format(time.DateOnly)
	if day == t.day {
		return
	}
	if t.day != "" {
		// Only callers active within keep before midnight may keep the
		// old tag; a day without calls in between leaves none.
		if t.prev != nil {
			clear(t.prev[:])
		}
		old := t.cur
		midnight := time.Date(local.Year(), local.Month(), local.Day(), 0, 0, 0, 0, t.loc)
		t.prev, t.rotated, t.prevSeen = &old, midnight, map[string]time.Time{}
		for id, last := range t.seen {
			if midnight.Sub(last) < t.keep {
				t.prevSeen[id] = last
			}
		}
		if len(t.prevSeen) == 0 {
			clear(t.prev[:])
			t.prev, t.prevSeen = nil, nil
		}
	}
	if _, err := rand.Read(t.cur[:]); err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	t.day, t.seen = day, map[string]time.Time{}
}

// note remembers that identity was tagged under the current key at now.
// The caller holds t.mu.
func (t *Tags) note(identity string, now time.Time) {
	if len(t.seen) >= maxSeen && now.Sub(t.pruned) >= time.Minute {
		t.pruned = now
		for id, last := range t.seen {
			if now.Sub(last) >= t.keep {
				delete(t.seen, id)
			}
		}
	}
	if _, ok := t.seen[identity]; ok || len(t.seen) < maxSeen {
		t.seen[identity] = now
	}
}

// tagOf is the identity's tag under key.
func tagOf(key *[32]byte, identity string) string {
	mac := hmac.New(sha256.New, key[:])
	mac.Write([]byte(identity))
	v := binary.BigEndian.Uint64(mac.Sum(nil))
	var b [tagLen]byte
	for i := range b {
		b[i] = tagAlphabet[v%uint64(len(tagAlphabet))]
		v /= uint64(len(tagAlphabet))
	}
	return string(b[:])
}

// IsTag reports whether s has the form of a tag (or is Anonymous): what
// may be shown of a caller under log.callers "tag".
func IsTag(s string) bool {
	if s == Anonymous {
		return true
	}
	if len(s) != tagLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if strings.IndexByte(tagAlphabet, s[i]) < 0 {
			return false
		}
	}
	return true
}
