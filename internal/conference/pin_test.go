package conference

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/groupbridge/groupbridge/internal/conference/rules"
	"github.com/groupbridge/groupbridge/internal/group"
	"github.com/groupbridge/groupbridge/internal/testkit"
	"github.com/groupbridge/groupbridge/media/clock"
	"github.com/groupbridge/groupbridge/media/prompt"
)

// A member's *# and facilitator PIN reach the caller's own checker through
// the room, are zeroed once checked, never reach the log, and the right
// PIN makes the member a facilitator.
func TestFacilitatorPINThroughTheRoom(t *testing.T) {
	set, err := prompt.Builtin("en")
	if err != nil {
		t.Fatal(err)
	}
	logs := &testkit.LogBuffer{}
	c := New(Config{Media: clock.New(time.Hour, nil, nil), Prompts: set,
		Log: slog.New(slog.NewJSONHandler(logs, nil))})
	g := group.Group{Name: "Circle", LedBy: group.LedByPeer, MemberPIN: "1234", FacilitatorPIN: "654321"}
	joinMasked(t, c, g, &fakeStream{}, group.Facilitator, "f", "")

	var seen [][]byte // the slices the checker was given, to see them zeroed
	var typed []string
	check := func(d []byte) rules.PINVerdict {
		seen = append(seen, d)
		typed = append(typed, string(d))
		if string(d) == "654321" {
			return rules.PINRight
		}
		return rules.PINWrong
	}
	var p *Participant
	whileTicking(c, func() {
		p, err = c.Join(g, JoinRequest{Stream: &fakeStream{}, Role: group.Member, Identity: "m", CallID: "m",
			FacilitatorPIN: check})
	})
	if err != nil {
		t.Fatal(err)
	}
	press := func(seq string) {
		for i := range len(seq) {
			p.Key(seq[i])
		}
		for range 5 {
			tickAll(c, time.Now())
		}
	}
	role := func() string { return seatOf(t, snapshot(c)[0], p.Seat()).Role }

	press("*#918273#")
	if r := role(); r != "member" {
		t.Fatalf("after a wrong PIN the caller is a %s", r)
	}
	press("*#654321#")
	if r := role(); r != "facilitator" {
		t.Fatalf("after the right PIN the caller is a %s", r)
	}
	if strings.Join(typed, ",") != "918273,654321" {
		t.Fatalf("the checker got %q", typed)
	}
	for i, d := range seen {
		if !bytes.Equal(d, make([]byte, len(d))) {
			t.Errorf("check %d: digits not zeroed after the check %q", i+1, d)
		}
	}
	log := logs.String()
	for _, pin := range []string{"918273", "654321"} {
		if strings.Contains(log, pin) {
			t.Errorf("the log holds typed digits %s:\n%s", pin, log)
		}
	}
	if n := strings.Count(log, `"verdict":"wrong"`); n != 1 {
		t.Errorf("%d wrong verdicts logged, want 1:\n%s", n, log)
	}
}
