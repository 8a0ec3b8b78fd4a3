package conference

import (
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

// newManualConference is newTestConference with its wall time on a clock
// the test moves, and a log to read.
func newManualConference(t *testing.T) (*Conference, *testkit.ManualClock, *testkit.LogBuffer) {
	t.Helper()
	set, err := prompt.Builtin("en")
	if err != nil {
		t.Fatal(err)
	}
	clk := testkit.NewManualClock()
	logs := &testkit.LogBuffer{}
	c := New(Config{
		Media:   clock.New(time.Hour, nil, nil), // never fires: the test ticks by hand
		Prompts: set,
		Log:     slog.New(slog.NewTextHandler(logs, nil)),
		Audio:   Audio{MaxTalkers: 4},
		Clock:   clk,
	})
	return c, clk, logs
}

// A session's start and its length in the log come from Config.Clock, not
// from the real time nor the media clock's ticks: meetings will be
// scheduled on that clock.
func TestSessionTimesFromTheInjectedClock(t *testing.T) {
	c, clk, logs := newManualConference(t)
	clk.Advance(37 * time.Hour) // far from the real time and the ticks' time
	want := clk.Now()
	g := group.Group{Name: "g", LedBy: "peer"}
	p := joinNow(t, c, g, &fakeStream{}, group.Member)
	v := snapshot(c)
	if len(v) != 1 || !v[0].Started.Equal(want) {
		t.Fatalf("rooms %+v, want one started at %v", v, want)
	}
	clk.Advance(90 * time.Minute)
	go p.Leave()
	for c.Rooms() > 0 {
		tickAll(c, time.Now())
		time.Sleep(time.Millisecond)
	}
	if !strings.Contains(logs.String(), `msg="session ended" group=g duration=1h30m0s`) {
		t.Fatalf("no session of 1h30m in the log:\n%s", logs.String())
	}
}

// The bounded waits for a room's answer run on Config.Clock: with no tick
// to answer, each gives up when that clock has moved by its wait, not
// before and without a real wait.
func TestAnswerWaitsOnTheInjectedClock(t *testing.T) {
	g := group.Group{Name: "g", LedBy: "peer"}
	tests := []struct {
		name string
		room bool // a room with a caller exists before
		wait time.Duration
		op   func(c *Conference, p *Participant) error
		want string // in the error; "" for none
	}{
		{"join", false, answerWait, func(c *Conference, _ *Participant) error {
			_, err := c.Join(g, JoinRequest{Stream: &fakeStream{}, Role: group.Member, CallID: "t"})
			return err
		}, `room "g" did not answer the join`},
		{"act", true, answerWait, func(c *Conference, _ *Participant) error {
			return c.Act("g", rules.ActLock, 0)
		}, "did not answer in time"},
		{"snapshot", true, answerWait, func(c *Conference, _ *Participant) error {
			if v := c.Snapshot(); len(v) != 0 {
				t.Errorf("a room that never answered is in the snapshot: %+v", v)
			}
			return nil
		}, ""},
		{"announce", true, answerWait, func(c *Conference, _ *Participant) error {
			c.Announce([]string{prompt.ClosingMaintenance})
			return nil
		}, ""},
		{"leave", true, 2 * time.Second, func(_ *Conference, p *Participant) error {
			p.Leave()
			return nil
		}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, clk, _ := newManualConference(t)
			var p *Participant
			if tc.room {
				p = joinNow(t, c, g, &fakeStream{}, group.Member)
			}
			for len(clk.Made()) > 0 { // the tokens of the joins before
				<-clk.Made()
			}
			done := make(chan error, 1)
			go func() { done <- tc.op(c, p) }()
			// No tick answers from here on: only the clock can end the wait.
			select {
			case <-clk.Made():
			case <-time.After(3 * time.Second):
				t.Fatal("the wait made no timer on the injected clock")
			}
			clk.Advance(tc.wait - time.Millisecond)
			select {
			case err := <-done:
				t.Fatalf("returned (%v) before its wait of %v was over", err, tc.wait)
			case <-time.After(20 * time.Millisecond):
			}
			clk.Advance(time.Millisecond)
			var err error
			select {
			case err = <-done:
			case <-time.After(3 * time.Second):
				t.Fatalf("still waiting after the clock moved by %v", tc.wait)
			}
			if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
}
