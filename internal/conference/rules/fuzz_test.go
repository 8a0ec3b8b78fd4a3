package rules

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/groupbridge/groupbridge/internal/group"
)

var actErrors = []error{ErrUnknownAction, ErrNoSeat, ErrFacilitator, ErrWaiting, ErrLobby, ErrEnded}

var fuzzIDs = []string{"", "a", "b", "c", "d"}

const fuzzKeys = "0123456789*#A"

// FuzzSession drives a session with random event sequences and checks that
// it never panics, that Heard agrees with View and the who-is-heard table,
// that seats are never reused, that at most one caller has the floor, that
// effects keep the privacy rule, and that an ended session says nothing
// more. An event byte of 0x80 or more is an operator action (Act), whose
// errors must be the documented ones. A session may have a meeting, whose
// moments come with each Tick.
func FuzzSession(f *testing.F) {
	f.Add([]byte{0, 0, 0, 0, 1, 0, 0, 2, 1, 2, 1, 10, 2, 1, 10})
	f.Add([]byte{1, 0, 60, 0, 1, 1, 0, 2, 0, 0, 0, 0, 7, 0, 5, 7, 0, 9, 7, 1, 9, 7, 0, 8, 6, 3, 200, 5, 0, 0})
	f.Add([]byte{2, 3, 30, 0, 0, 0, 0, 1, 1, 0, 2, 2, 1, 0, 0, 6, 2, 3, 5, 0, 0, 0, 1, 1})
	f.Add([]byte{0, 1, 0, 0, 0, 0, 0, 1, 1, 7, 0, 1, 2, 0, 10, 2, 0, 2, 2, 0, 11, 2, 0, 4, 7, 0, 1})
	f.Add([]byte{1, 0, 120, 0, 2, 1, 0, 1, 0, 4, 1, 1, 6, 3, 255, 1, 1, 0, 6, 2, 100, 0, 2, 1, 5, 0, 0})
	f.Add([]byte{1, 0, 30, 0, 1, 1, 0, 2, 1, 0x80 + 6, 1, 0, 0x80 + 5, 2, 0, 0x80 + 3, 3, 0, 0x80 + 8, 0, 0,
		0x80 + 1, 2, 0, 0x80 + 2, 2, 0, 0x80 + 4, 3, 0, 0x80 + 11, 0, 0, 0x80 + 5, 1, 0})
	f.Add([]byte{0, 2, 0, 0, 1, 1, 0x80 + 9, 0, 0, 0x80 + 5, 1, 0, 0x80 + 7, 0, 0, 0, 2, 1, 0x80 + 10, 0, 0, 0x80 + 12, 1, 0})
	// With a meeting (data[1] bit 2): its moments come with each Tick.
	f.Add([]byte{0, 4 | 1<<3, 0, 0, 0, 0, 0, 0, 4, 5, 0, 0, 6, 1, 40, 5, 0, 0, 6, 1, 100, 5, 0, 0, 6, 3, 5, 5, 0, 0, 0, 1, 0})
	// With readings (data[0] bit 1): **1, **3, **0, opening with 3.
	f.Add([]byte{2, 0, 0, 0, 0, 0, 0, 1, 4, 2, 0, 0, 7, 0, 0, 7, 0, 0, 2, 0, 0, 2, 1, 0, 5, 0, 1, 7, 0, 0, 7, 0, 0})
	f.Fuzz(fuzzSession)
}

// fuzzSession is FuzzSession's body: 3 bytes of configuration, then
// 3-byte events.
func fuzzSession(t *testing.T, data []byte) {
	if len(data) < 3 {
		return
	}
	cfg := Config{LedBy: group.LedByPeer, MaxMembers: int(data[1] % 4), HasFacilitatorPIN: data[1]&8 == 0}
	if data[0]%2 == 1 {
		cfg.LedBy = group.LedByFacilitator
	}
	cfg.EndGrace = time.Duration(data[2]) * sec
	if data[0]&2 != 0 { // readings 1 and 3, opening with 3
		cfg.Readings[1], cfg.Readings[3], cfg.OpeningReading = true, true, 3
	}
	meeting := data[1]
	data = data[3:]
	if len(data) > 900 {
		data = data[:900]
	}
	now := t0
	s := New(cfg, now)
	if meeting&4 != 0 {
		// 19:00:30 to 19:02, closing 0 to 7 minutes later.
		end := t0.Add(2 * mn)
		s.Hours().Set(Meeting{Start: t0.Add(30 * sec), End: end, Close: end.Add(time.Duration(meeting>>3%8) * mn)}, now)
	}
	ids := map[string]bool{"a": true, "b": true, "c": true, "d": true}
	maxSeat := 0
	ended := false
	for len(data) >= 3 {
		op, a, b := data[0], data[1], data[2]
		data = data[3:]
		seat := int(a) % (maxSeat + 2)
		var got []Effect
		label := ""
		if op >= 0x80 {
			act := Action((op & 0x7f) % 13) // 0 and 12 are no action
			var err error
			got, err = s.Act(act, seat, now)
			label = fmt.Sprintf("Act(%v, %d)", act, seat)
			switch {
			case ended && !errors.Is(err, ErrEnded):
				t.Fatalf("%s@%v: ended session answered %v", label, now.Sub(t0), err)
			case err != nil && !slices.ContainsFunc(actErrors, func(e error) bool { return errors.Is(err, e) }):
				t.Fatalf("%s@%v: undocumented error %v", label, now.Sub(t0), err)
			}
		} else {
			switch op % 8 {
			case 0:
				id := fuzzIDs[int(a)%len(fuzzIDs)]
				role := group.Member
				if b%4 == 0 {
					role = group.Facilitator
				}
				present := map[int]bool{}
				for _, v := range s.View() {
					present[v.Seat] = true
				}
				res, effs := s.Join(id, role, now)
				got, label = effs, fmt.Sprintf("Join(%q, %v)", id, role)
				switch {
				case res.Refused != RefuseNone:
					if res.Seat != 0 || res.Restored {
						t.Fatalf("%s: refused with %+v", label, res)
					}
					if ended && res.Refused != RefuseEnded {
						t.Fatalf("%s: ended session answered %v", label, res.Refused)
					}
				case res.Restored:
					if id == "" || res.Seat > maxSeat || present[res.Seat] {
						t.Fatalf("%s: restored to seat %d (max %d, present %v)", label, res.Seat, maxSeat, present[res.Seat])
					}
				default:
					if res.Seat != maxSeat+1 {
						t.Fatalf("%s: new seat %d after %d: reused or skipped", label, res.Seat, maxSeat)
					}
					maxSeat = res.Seat
				}
			case 1:
				got, label = s.Leave(seat, now), fmt.Sprintf("Leave(%d)", seat)
			case 2, 3:
				k := fuzzKeys[int(b)%len(fuzzKeys)]
				got, label = s.Key(seat, k, now), fmt.Sprintf("Key(%d, %q)", seat, k)
			case 4:
				got, label = s.Talking(seat, b&1 == 1, now), fmt.Sprintf("Talking(%d, %v)", seat, b&1 == 1)
			case 5:
				if b&1 == 1 { // the room's reading played to its end
					s.Readings().Ended()
				}
				got, label = append(s.Tick(now), s.Hours().Tick(now)...), "Tick"
			case 6:
				scale := []time.Duration{20 * time.Millisecond, sec, 10 * sec, mn}[a%4]
				now = now.Add(time.Duration(b) * scale)
				continue
			case 7:
				k := fuzzKeys[int(b)%len(fuzzKeys)]
				got = append(s.Key(seat, '*', now), s.Key(seat, k, now)...)
				label = fmt.Sprintf("Key(%d, '*' %q)", seat, k)
			}
		}
		// The engine answers a PIN check at once, as the room does.
		for i := 0; i < len(got); i++ {
			if got[i].Kind == CheckPIN {
				v := PINVerdict(int(b) % 3)
				got = append(got, s.PINChecked(got[i].Seat, v, now)...)
				label += fmt.Sprintf(" PINChecked(%d, %v)", got[i].Seat, v)
			}
		}
		label = fmt.Sprintf("%s@%v", label, now.Sub(t0))
		if ended && len(got) > 0 {
			t.Fatalf("%s: ended session returned %s", label, fmtEffects(got))
		}
		for i, e := range got {
			// An operator may end a session nobody is in: then nobody is
			// told or hung up.
			told := slices.ContainsFunc(got[i:], func(e Effect) bool { return e.Kind == Hangup })
			if e.Kind == End && told && (i == 0 || got[i-1].Kind != SayRoom) {
				t.Fatalf("%s: End not preceded by session_ended: %s", label, fmtEffects(got))
			}
		}
		for _, e := range got {
			if e.Kind == Reading && (e.Key < 1 || e.Key > 9 || !cfg.Readings[e.Key]) {
				t.Fatalf("%s: %v: the group has no such reading", label, e)
			}
			if e.Kind == Reading && s.Readings().Playing() == 0 {
				t.Fatalf("%s: %v started while the session says none plays", label, e)
			}
		}
		checkEffects(t, s, got, ids, label)
		checkInvariants(t, s, label)
		if t.Failed() {
			t.FailNow()
		}
		ended = s.Ended()
	}
}
