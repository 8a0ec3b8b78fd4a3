package app

import (
	"context"
	"testing"
	"time"

	"github.com/groupbridge/groupbridge/internal/softphone"
	"github.com/groupbridge/groupbridge/internal/testkit"
	"github.com/groupbridge/groupbridge/media/prompt"
)

// hoursGroups is a group that meets on Wednesdays from 09:00 to 10:00
// UTC; a testkit.ManualClock stands on a Tuesday evening (2023-11-14
// 22:13 UTC), outside its hours.
const hoursGroups = `
  - name: Circle
    member_pin: "1234"
    facilitator_pin: "654321"
    led_by: peer
    timezone: UTC
    meets: ["Wed 09:00-10:00"]
`

// A member calling outside the group's hours hears that it is not meeting
// now and when it meets next (the committed WAVs, in order: "This group
// is not meeting now. It meets next on Wednesday at nine A M. Goodbye."),
// is hung up without joining, and is counted and logged as closed.
func TestHoursClosedCallerIsTold(t *testing.T) {
	t.Parallel()
	a, logs := startAppWith(t, testYAML("", hoursGroups), Options{Clock: testkit.NewManualClock()})
	p := dial(t, a, softphone.Config{Caller: "+15550001301"})
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := p.SendDigits(ctx, "1234#", softphone.DigitRFC4733); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.Done():
	case <-time.After(20 * time.Second):
		t.Fatal("the bridge did not hang up on a call outside the hours")
	}
	if !p.EndedByRemote() {
		t.Fatal("call ended, but not by the bridge's BYE")
	}
	logs.waitCount(t, 5*time.Second, 1, "call not admitted", "outcome", "closed", "group", "Circle")
	if n := logs.count(t, "call joined"); n != 0 {
		t.Fatalf("%d joins outside the hours", n)
	}
	if v := appMetric(t, a, `groupbridge_calls_total{outcome="closed"}`); v != 1 {
		t.Errorf(`calls_total{outcome="closed"} = %v, want 1`, v)
	}
	set, err := prompt.Builtin("en")
	if err != nil {
		t.Fatal(err)
	}
	clip := func(n string) []int16 { c, _ := set.Clip(n); return c }
	want := [][]int16{clip(prompt.NotMeetingNow), clip(prompt.MeetsNext), clip(prompt.Wednesday), clip(prompt.At),
		clip("n9"), clip(prompt.AM), clip(prompt.Goodbye)}
	if heard := p.Media().Received(start); !clipsIn(heard, p.Media().Codec(), want...) {
		t.Errorf("the closed message was not heard clip for clip (%d samples heard)", len(heard))
	}
}

// A facilitator opens the group outside its hours: a member then gets
// in; once the facilitator has left, the next member is told it is
// closed.
func TestHoursFacilitatorOpens(t *testing.T) {
	t.Parallel()
	a, logs := startAppWith(t, testYAML("", hoursGroups), Options{Clock: testkit.NewManualClock()})
	fac := dial(t, a, softphone.Config{Caller: "+15550001311"})
	enter(t, logs, fac, "654321", softphone.DigitRFC4733, 1)
	member := dial(t, a, softphone.Config{Caller: "+15550001312"})
	enter(t, logs, member, "1234", softphone.DigitRFC4733, 2)
	if n := logs.count(t, "call joined", "role", "member"); n != 1 {
		t.Fatalf("%d members joined with a facilitator present, want 1", n)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := fac.Hangup(ctx); err != nil {
		t.Fatal(err)
	}
	logs.waitCount(t, 5*time.Second, 1, "left")
	late := dial(t, a, softphone.Config{Caller: "+15550001313"})
	if err := late.SendDigits(ctx, "1234#", softphone.DigitRFC4733); err != nil {
		t.Fatal(err)
	}
	logs.waitCount(t, 10*time.Second, 1, "call not admitted", "outcome", "closed")
	if n := logs.count(t, "call joined"); n != 2 {
		t.Errorf("%d joins, want 2", n)
	}
}

// heardClips waits up to d for p to have received every clip (as
// clipsIn) since from.
func heardClips(p *softphone.Phone, from time.Time, d time.Duration, clips ...[]int16) bool {
	deadline := time.Now().Add(d)
	for {
		if clipsIn(p.Media().Received(from), p.Media().Codec(), clips...) {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// The end of a scheduled meeting on a manual clock: at the scheduled end
// only the facilitator hears "The scheduled time is over."; five minutes
// before the close both hear "The session will end in five minutes.";
// at the close both hear "This meeting is now closed..." and are hung up.
// The clock stands on Tuesday 22:13:20 UTC, within the 22:00-22:30
// meeting (overrun 10m: the session closes at 22:40).
func TestHoursEndNotices(t *testing.T) {
	t.Parallel()
	clk := testkit.NewManualClock()
	a, logs := startAppWith(t, testYAML("", `
  - name: Circle
    member_pin: "1234"
    facilitator_pin: "654321"
    led_by: peer
    timezone: UTC
    meets: ["Tue 22:00-22:30"]
    overrun: 10m
`), Options{Clock: clk})
	fac := dial(t, a, softphone.Config{Caller: "+15550001321"})
	enter(t, logs, fac, "654321", softphone.DigitRFC4733, 1)
	member := dial(t, a, softphone.Config{Caller: "+15550001322"})
	enter(t, logs, member, "1234", softphone.DigitRFC4733, 2)
	if logs.count(t, "session meeting", "close", "2023-11-14T22:40:00Z") != 1 {
		t.Fatalf("the session did not take its meeting; log:\n%s", logs.String())
	}
	set, err := prompt.Builtin("en")
	if err != nil {
		t.Fatal(err)
	}
	clip := func(n string) []int16 { c, _ := set.Clip(n); return c }
	time.Sleep(2 * time.Second) // the join prompts

	from := time.Now()
	clk.Advance(16*time.Minute + 40*time.Second) // 22:30, the scheduled end
	if !heardClips(fac, from, 10*time.Second, clip(prompt.ScheduledOver)) {
		t.Fatal("the facilitator did not hear the scheduled end")
	}
	time.Sleep(time.Second)
	if heardClips(member, from, 0, clip(prompt.ScheduledOver)) {
		t.Error("a member heard the facilitators' notice")
	}
	if heardClips(fac, from, 0, clip(prompt.EndsInFive)) {
		t.Error("the five-minute warning came at the scheduled end")
	}

	from = time.Now()
	clk.Advance(5 * time.Minute) // 22:35
	for name, p := range map[string]*softphone.Phone{"facilitator": fac, "member": member} {
		if !heardClips(p, from, 10*time.Second, clip(prompt.EndsInFive)) {
			t.Errorf("the %s did not hear the five-minute warning", name)
		}
	}

	from = time.Now()
	clk.Advance(5 * time.Minute) // 22:40, the close
	for name, p := range map[string]*softphone.Phone{"facilitator": fac, "member": member} {
		select {
		case <-p.Done():
		case <-time.After(15 * time.Second):
			t.Fatalf("the %s was not hung up at the close", name)
		}
		if !p.EndedByRemote() {
			t.Errorf("the %s's call ended, but not by the bridge's BYE", name)
		}
		if !clipsIn(p.Media().Received(from), p.Media().Codec(), clip(prompt.MeetingClosed)) {
			t.Errorf("the %s did not hear the closing sentence", name)
		}
	}
	logs.waitCount(t, 5*time.Second, 1, "session ended by the rules", "reason", "meeting-closed")
}

// A reload that lengthens the meeting moves a live session's close: the
// old close passes without a hang-up, and the new one ends the call.
func TestHoursReloadMovesTheClose(t *testing.T) {
	t.Parallel()
	clk := testkit.NewManualClock() // Tuesday 22:13:20 UTC
	y := testYAML("", `
  - name: Circle
    member_pin: "1234"
    led_by: peer
    timezone: UTC
    meets: ["Tue 22:00-22:30"]
    overrun: 0s
`)
	a, logs := startAppWith(t, y, Options{Clock: clk})
	member := dial(t, a, softphone.Config{Caller: "+15550001331"})
	enter(t, logs, member, "1234", softphone.DigitRFC4733, 1)
	if err := a.Reload(reloadYAML(t, y, "Tue 22:00-22:30", "Tue 22:00-23:00")); err != nil {
		t.Fatal(err)
	}
	logs.waitCount(t, 5*time.Second, 1, "session meeting", "close", "2023-11-14T23:00:00Z")
	clk.Advance(16*time.Minute + 40*time.Second) // 22:30, the old close
	select {
	case <-member.Done():
		t.Fatal("hung up at the close from before the reload")
	case <-time.After(3 * time.Second):
	}
	clk.Advance(30 * time.Minute) // 23:00, the new close
	select {
	case <-member.Done():
	case <-time.After(15 * time.Second):
		t.Fatal("not hung up at the reloaded close")
	}
	logs.waitCount(t, 5*time.Second, 1, "session ended by the rules", "reason", "meeting-closed")
}
