package app

import (
	"context"
	"testing"
	"time"

	"github.com/groupbridge/groupbridge/internal/softphone"
)

// A caller who keeps guessing PINs across calls is refused for a while:
// ten failures (three per call) block the number, and the next call hears
// "Please try again later." and is hung up without a PIN prompt. Another
// caller is not affected.
func TestPINGuessingBlocksTheCaller(t *testing.T) {
	t.Parallel()
	// The number budget is raised: this test is about the per-caller
	// limit, and its 12 failures would otherwise pace the answers.
	a, logs := startApp(t, testYAML("", "")+"\nlimits: {pin_budget: 600, pin_budget_bridge: 100000}\n")
	guess := func(caller string) *softphone.Phone {
		t.Helper()
		p := dial(t, a, softphone.Config{Caller: caller})
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		_ = p.SendDigits(ctx, "9991#9992#9993#", softphone.DigitRFC4733)
		select {
		case <-p.Done():
		case <-time.After(20 * time.Second):
			t.Fatal("guessing call not ended")
		}
		return p
	}
	for range 4 {
		guess("+15555000001")
	}
	logs.waitCount(t, 5*time.Second, 1, "call not admitted", "outcome", "pin-blocked")
	// The next call from that number is refused at once.
	p := dial(t, a, softphone.Config{Caller: "+15555000001"})
	select {
	case <-p.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("blocked caller's call not ended")
	}
	logs.waitCount(t, 5*time.Second, 2, "call not admitted", "outcome", "pin-blocked")
	// Someone else still gets in.
	ok := dial(t, a, softphone.Config{Caller: "+15555000002"})
	enter(t, logs, ok, "1234", softphone.DigitRFC4733, 1)
}
