package app

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/groupbridge/groupbridge/internal/softphone"
)

// Guessing from ever new caller numbers (the attack: 12 wrong PINs
// in 8 s, never blocked) is throttled by the number's budget: once wrong
// PINs to the group's number pass limits.pin_budget a minute, answers come
// one per 60/pin_budget seconds however many calls guess at once. A caller
// who joined before gets in at once; a first-time caller with the right PIN
// waits its turn like a guess would, then joins.
func TestPINGuessingRotatingNumbersIsThrottled(t *testing.T) {
	t.Parallel()
	groups := `
  - name: Circle
    number: "1001"
    member_pin: "1234"
    led_by: peer
`
	// 12 a minute: the attack starts at the 13th failure, then one answer
	// every 5 s.
	a, logs := startApp(t, testYAML("", groups)+"\nlimits: {pin_budget: 12}\n")
	const failures = `groupbridge_pin_failures_total{scope="group"}`

	// A regular joins before the attack and leaves.
	regular := dial(t, a, softphone.Config{Caller: "+15557000000", Dialed: "1001"})
	enter(t, logs, regular, "1234", softphone.DigitRFC4733, 1)
	_ = regular.Hangup(context.Background())

	// guessers dials n calls from new numbers, each typing three wrong PINs.
	var callers int
	guessers := func(n int) []*softphone.Phone {
		var phones []*softphone.Phone
		var wg sync.WaitGroup
		var mu sync.Mutex
		for range n {
			callers++
			caller := fmt.Sprintf("+1555700%04d", callers)
			wg.Add(1)
			go func() {
				defer wg.Done()
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				p, err := softphone.Dial(ctx, softphone.Config{Server: sipAddr(t, a, "udp"), Caller: caller, Dialed: "1001"})
				if err != nil {
					t.Errorf("dial %s: %v", caller, err)
					return
				}
				mu.Lock()
				phones = append(phones, p)
				mu.Unlock()
				_ = p.SendDigits(ctx, "9991#9992#9993#", softphone.DigitRFC4733)
			}()
		}
		wg.Wait()
		return phones
	}
	hangup := func(phones []*softphone.Phone) {
		for _, p := range phones {
			_ = p.Hangup(context.Background())
		}
	}

	// Wave one: 5 numbers, 15 guesses. 12 pass unhindered, the 13th starts
	// the attack.
	first := guessers(5)
	t.Cleanup(func() { hangup(first) })
	logs.waitCount(t, 10*time.Second, 1, "PIN guessing: wrong PINs past the budget; PIN answers now wait their turn", "scope", "group", "group", "Circle")
	if v := appMetric(t, a, `groupbridge_pin_attacks_total{scope="group"}`); v != 1 {
		t.Errorf("pin_attacks_total{scope=group} = %v, want 1", v)
	}
	hangup(first)
	time.Sleep(500 * time.Millisecond) // hang-ups leave their queue places
	before := appMetric(t, a, failures)

	// Wave two: 6 more numbers, 18 guesses at once. Paced, at most 3 or
	// 4 answers come in 12 s (without the budget all 18 came within ~2 s).
	second := guessers(6)
	t.Cleanup(func() { hangup(second) })
	time.Sleep(12 * time.Second)
	answered := appMetric(t, a, failures) - before
	t.Logf("wave two: %v of 18 guesses answered in 12 s", answered)
	if answered > 4 {
		t.Errorf("%v guesses answered in 12 s from rotating numbers; the budget allows one per 5 s", answered)
	}
	if n := logs.count(t, "call not admitted", "outcome", "pin-blocked"); n != 0 {
		t.Errorf("%d calls blocked per number: no number guessed 10 times", n)
	}

	// The regular calls back during the attack: no wait.
	back := dial(t, a, softphone.Config{Caller: "+15557000000", Dialed: "1001"})
	start := time.Now()
	enter(t, logs, back, "1234", softphone.DigitRFC4733, 2)
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("known caller joined after %v under attack, want no wait", d)
	}

	// A first-time caller with the right PIN waits like a guess: the
	// guessers hang up so the queue is short, then it takes its turn.
	hangup(second)
	time.Sleep(500 * time.Millisecond)
	newcomer := dial(t, a, softphone.Config{Caller: "+15557009999", Dialed: "1001"})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	start = time.Now()
	if err := newcomer.SendDigits(ctx, "1234#", softphone.DigitRFC4733); err != nil {
		t.Fatal(err)
	}
	logs.waitCount(t, 30*time.Second, 3, "call joined")
	d := time.Since(start)
	t.Logf("first-time caller joined %v after typing the PIN", d.Round(100*time.Millisecond))
	if d < 4*time.Second {
		t.Errorf("first-time caller joined after %v under attack: a right PIN answered sooner than a wrong one", d)
	}
}

// A digest-authenticated caller is limited by its account, not by the
// caller number it puts in From: alice guessing from a new number each
// call is blocked at her tenth wrong PIN, and so is her next call from yet
// another number; bob, another account, still gets in.
func TestPINGuessingDigestUserRotatingNumbers(t *testing.T) {
	t.Parallel()
	users := "  trusted: [\"127.0.0.1/32\"]\n  users: [{name: alice, password: \"correct horse\"}, {name: bob, password: \"battery staple\"}]"
	// The number budget is raised: this test is about the per-user limit.
	a, logs := startApp(t, testYAML(users, "")+"\nlimits: {pin_budget: 600, pin_budget_bridge: 100000}\n")
	for i := range 3 {
		code, c := dialRawAuth(t, a, fmt.Sprintf("+155571000%02d", i), "127.0.0.2", "alice", "correct horse")
		if code != 200 {
			t.Fatalf("alice's call %d answered %d", i, code)
		}
		c.keys("9991#9992#9993#")
		logs.waitCount(t, 10*time.Second, i+1, "call not admitted", "outcome", "wrong-pin")
	}
	// The fourth number's first guess is alice's tenth.
	_, c := dialRawAuth(t, a, "+15557100003", "127.0.0.2", "alice", "correct horse")
	c.keys("9994#")
	logs.waitCount(t, 10*time.Second, 1, "call not admitted", "outcome", "pin-blocked")
	// A fifth number is refused before the PIN prompt.
	if code, _ := dialRawAuth(t, a, "+15557100004", "127.0.0.2", "alice", "correct horse"); code != 200 {
		t.Fatalf("alice's fifth call answered %d", code)
	}
	logs.waitCount(t, 10*time.Second, 2, "call not admitted", "outcome", "pin-blocked")
	// Bob is another account.
	code, b := dialRawAuth(t, a, "+15557100005", "127.0.0.3", "bob", "battery staple")
	if code != 200 {
		t.Fatalf("bob's call answered %d", code)
	}
	b.keys("1234#")
	logs.waitCount(t, 10*time.Second, 1, "call joined")
}

// Under attack, a caller beyond limits.pin_queue hears "Please try again
// later." and is hung up with its PIN unchecked (outcome pin-busy).
func TestPINQueueFullTurnsCallersAway(t *testing.T) {
	t.Parallel()
	a, logs := startApp(t, testYAML("", "")+"\nlimits: {pin_budget: 1, pin_queue: 1}\n")
	// Two wrong PINs in a minute pass a budget of 1.
	first := dial(t, a, softphone.Config{Caller: "+15557200001"})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_ = first.SendDigits(ctx, "9991#9992#", softphone.DigitRFC4733)
	logs.waitCount(t, 10*time.Second, 1, "PIN guessing: wrong PINs past the budget; PIN answers now wait their turn", "scope", "shared")
	// The first call's next guess takes the one place in the queue...
	_ = first.SendDigits(ctx, "9993#", softphone.DigitRFC4733)
	time.Sleep(500 * time.Millisecond)
	// ...so the next caller's is turned away.
	second := dial(t, a, softphone.Config{Caller: "+15557200002"})
	_ = second.SendDigits(ctx, "1234#", softphone.DigitRFC4733)
	select {
	case <-second.Done():
	case <-ctx.Done():
		t.Fatal("caller beyond the queue not hung up")
	}
	logs.waitCount(t, 5*time.Second, 1, "call not admitted", "outcome", "pin-busy")
	if v := appMetric(t, a, `groupbridge_calls_total{outcome="pin-busy"}`); v != 1 {
		t.Errorf(`calls_total{outcome="pin-busy"} = %v, want 1`, v)
	}
	if n := logs.count(t, "call joined"); n != 0 {
		t.Errorf("%d joined: the turned-away PIN was checked", n)
	}
}
