package app

import (
	"context"
	"testing"
	"time"

	"github.com/groupbridge/groupbridge/internal/softphone"
)

// End-to-end checks of the facilitator's keypad, judged by signal.

// keys types a key sequence by RFC 4733.
func keys(t *testing.T, p *softphone.Phone, seq string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := p.SendDigits(ctx, seq, softphone.DigitRFC4733); err != nil {
		t.Fatalf("keys %q: %v", seq, err)
	}
}

// levelOver listens to p for d from now and returns the level of freq.
func levelOver(p *softphone.Phone, d time.Duration, freq float64) float64 {
	start := time.Now()
	time.Sleep(d)
	return levels(p, start, d, freq)[0]
}

const (
	audible = -30.0 // a -20 dBFS tone through the bridge is well above this
	gone    = -50.0 // a tone taken out of the mix is far below this
)

const peerGroup = `
  - name: Circle
    member_pin: "1234"
    facilitator_pin: "654321"
    led_by: peer
`

func TestKeypadLectureMode(t *testing.T) {
	t.Parallel()
	a, logs := startApp(t, testYAML("", peerGroup))
	phones := joinRoom(t, a, logs, 1000001, "654321", "1234", "1234")
	f, m, l := phones[0], phones[1], phones[2]
	m.Media().SendTone(440, -20)
	time.Sleep(3 * time.Second)
	if lv := levelOver(l, time.Second, 440); lv < audible {
		t.Fatalf("before lecture mode the member is heard at %.1f dBFS", lv)
	}
	keys(t, f, "*5")
	time.Sleep(time.Second)
	if lv := levelOver(l, time.Second, 440); lv > gone {
		t.Fatalf("in lecture mode the member is still heard at %.1f dBFS", lv)
	}
	keys(t, f, "*5")
	time.Sleep(time.Second)
	if lv := levelOver(l, time.Second, 440); lv < audible {
		t.Fatalf("after lecture mode the member is heard at %.1f dBFS only", lv)
	}
}

func TestKeypadRaiseHandAndFloor(t *testing.T) {
	t.Parallel()
	a, logs := startApp(t, testYAML("", peerGroup))
	phones := joinRoom(t, a, logs, 1000011, "654321", "1234", "1234", "1234")
	f, asker, other, l := phones[0], phones[1], phones[2], phones[3]
	asker.Media().SendTone(440, -20)
	other.Media().SendTone(1000, -20)
	keys(t, f, "*5")
	keys(t, asker, "*9")
	time.Sleep(500 * time.Millisecond)
	keys(t, f, "*8")
	time.Sleep(1500 * time.Millisecond)
	start := time.Now()
	time.Sleep(1500 * time.Millisecond)
	lv := levels(l, start, 1500*time.Millisecond, 440, 1000)
	if lv[0] < audible {
		t.Errorf("the member given the floor is heard at %.1f dBFS only", lv[0])
	}
	if lv[1] > gone {
		t.Errorf("a member without the floor is heard at %.1f dBFS in lecture mode", lv[1])
	}
}

func TestKeypadSeatToWaiting(t *testing.T) {
	t.Parallel()
	a, logs := startApp(t, testYAML("", peerGroup))
	phones := joinRoom(t, a, logs, 1000021, "654321", "1234", "1234")
	f, seat2, l := phones[0], phones[1], phones[2]
	seat2.Media().SendTone(440, -20)
	l.Media().SendTone(1000, -20)
	time.Sleep(3 * time.Second)
	if lv := levelOver(l, time.Second, 440); lv < audible {
		t.Fatalf("seat 2 not heard before (%.1f dBFS)", lv)
	}
	keys(t, f, "*12#3")
	time.Sleep(2 * time.Second)
	start := time.Now()
	time.Sleep(2 * time.Second)
	if lv := levels(l, start, 2*time.Second, 440)[0]; lv > gone {
		t.Errorf("seat 2 still heard at %.1f dBFS after moving to waiting", lv)
	}
	heard := seat2.Media().Received(start)
	if lv := levels(seat2, start, 2*time.Second, 1000)[0]; lv > gone {
		t.Errorf("seat 2 in waiting still hears the room's 1000 Hz at %.1f dBFS", lv)
	}
	if len(heard) == 0 || rmsOf(heard) < -50 {
		t.Errorf("seat 2 hears no hold music (level %.1f dBFS)", rmsOf(heard))
	}
	// The same action brings seat 2 back.
	keys(t, f, "*12#3")
	time.Sleep(2 * time.Second)
	if lv := levelOver(l, time.Second, 440); lv < audible {
		t.Errorf("seat 2 not heard after coming back (%.1f dBFS)", lv)
	}
}

func TestKeypadEndSession(t *testing.T) {
	t.Parallel()
	a, logs := startApp(t, testYAML("", peerGroup))
	phones := joinRoom(t, a, logs, 1000031, "654321", "1234", "1234")
	f, m1, m2 := phones[0], phones[1], phones[2]
	keys(t, f, "*#1")
	for i, p := range []*softphone.Phone{f, m1, m2} {
		select {
		case <-p.Done():
			if !p.EndedByRemote() {
				t.Errorf("caller %d: call ended, but not by the bridge's BYE", i+1)
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("caller %d still connected after *#1", i+1)
		}
	}
}

func TestFacilitatorLedMembersWait(t *testing.T) {
	t.Parallel()
	groups := `
  - name: Led
    member_pin: "1234"
    facilitator_pin: "654321"
    led_by: facilitator
`
	a, logs := startApp(t, testYAML("", groups))
	phones := joinRoom(t, a, logs, 1000041, "1234", "1234")
	m1, m2 := phones[0], phones[1]
	m1.Media().SendTone(440, -20)
	m2.Media().SendTone(1000, -20)
	time.Sleep(2 * time.Second)
	start := time.Now()
	time.Sleep(2 * time.Second)
	if lv := levels(m2, start, 2*time.Second, 440)[0]; lv > gone {
		t.Errorf("before the facilitator, member 2 hears member 1 at %.1f dBFS", lv)
	}
	if lv := levels(m1, start, 2*time.Second, 1000)[0]; lv > gone {
		t.Errorf("before the facilitator, member 1 hears member 2 at %.1f dBFS", lv)
	}
	f := dial(t, a, softphone.Config{Caller: "+15551000043"})
	enter(t, logs, f, "654321", softphone.DigitRFC4733, 3)
	time.Sleep(3 * time.Second)
	start = time.Now()
	time.Sleep(2 * time.Second)
	if lv := levels(m2, start, 2*time.Second, 440)[0]; lv < audible {
		t.Errorf("with the facilitator in, member 2 hears member 1 at %.1f dBFS only", lv)
	}
	if lv := levels(m1, start, 2*time.Second, 1000)[0]; lv < audible {
		t.Errorf("with the facilitator in, member 1 hears member 2 at %.1f dBFS only", lv)
	}
}

func TestRejoinRestoresSeatAndMute(t *testing.T) {
	t.Parallel()
	a, logs := startApp(t, testYAML("", peerGroup))
	l := joinRoom(t, a, logs, 1000051, "1234")[0]
	m := dial(t, a, softphone.Config{Caller: "+15551000052"})
	enter(t, logs, m, "1234", softphone.DigitRFC4733, 2)
	keys(t, m, "*6")
	time.Sleep(500 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := m.Hangup(ctx); err != nil {
		t.Fatal(err)
	}
	logs.waitCount(t, 5*time.Second, 1, "left", "seat", "2")
	back := dial(t, a, softphone.Config{Caller: "+15551000052"})
	enter(t, logs, back, "1234", softphone.DigitRFC4733, 3)
	if logs.count(t, "call joined", "seat", "2", "restored", "true") != 1 {
		t.Fatalf("the caller did not get seat 2 back; log:\n%s", logs.String())
	}
	back.Media().SendTone(440, -20)
	time.Sleep(2 * time.Second)
	if lv := levelOver(l, 1500*time.Millisecond, 440); lv > gone {
		t.Errorf("the rejoined caller's self-mute was lost: heard at %.1f dBFS", lv)
	}
}

func TestRemovedCallerCannotRejoin(t *testing.T) {
	t.Parallel()
	a, logs := startApp(t, testYAML("", peerGroup))
	f := joinRoom(t, a, logs, 1000061, "654321")[0]
	m := dial(t, a, softphone.Config{Caller: "+15551000062"})
	enter(t, logs, m, "1234", softphone.DigitRFC4733, 2)
	keys(t, f, "*3")
	time.Sleep(2 * time.Second)
	keys(t, f, "1")
	select {
	case <-m.Done():
	case <-time.After(15 * time.Second):
		t.Fatal("removed member still connected")
	}
	if !m.EndedByRemote() {
		t.Fatal("removal did not end the call with the bridge's BYE")
	}
	again := dial(t, a, softphone.Config{Caller: "+15551000062"})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := again.SendDigits(ctx, "1234#", softphone.DigitRFC4733); err != nil {
		t.Fatal(err)
	}
	select {
	case <-again.Done():
	case <-time.After(15 * time.Second):
		t.Fatal("removed caller got back in")
	}
	logs.waitCount(t, 5*time.Second, 1, "call not admitted", "outcome", "removed")
}

// Issue 11.1: the chair of a peer-led meeting turns lecture mode on and
// hangs up. Nobody left can turn it off, so the bridge does, a minute
// later (the chair may call back within it): a member's tone reaches
// another member again within 65 s of the hang-up. Waits in real time.
func TestPeerChairDropsDuringLecture(t *testing.T) {
	t.Parallel()
	a, logs := startApp(t, testYAML("", peerGroup))
	phones := joinRoom(t, a, logs, 1000071, "654321", "1234", "1234")
	f, m, l := phones[0], phones[1], phones[2]
	m.Media().SendTone(440, -20)
	time.Sleep(3 * time.Second)
	if lv := levelOver(l, time.Second, 440); lv < audible {
		t.Fatalf("before lecture mode the member is heard at %.1f dBFS", lv)
	}
	keys(t, f, "*5")
	time.Sleep(time.Second)
	if lv := levelOver(l, time.Second, 440); lv > gone {
		t.Fatalf("in lecture mode the member is still heard at %.1f dBFS", lv)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := f.Hangup(ctx); err != nil {
		t.Fatal(err)
	}
	hungUp := time.Now()
	logs.waitCount(t, 5*time.Second, 1, "left", "seat", "1")

	// Well inside the minute the room is still as the chair left it, and
	// silent for the member whose tone nobody hears.
	time.Sleep(time.Until(hungUp.Add(45 * time.Second)))
	quiet := time.Now()
	if lv := levelOver(l, time.Second, 440); lv > gone {
		t.Fatalf("%v after the chair hung up the member is heard at %.1f dBFS: lecture mode ended early",
			time.Since(hungUp).Round(time.Second), lv)
	}
	if lv := rmsOf(m.Media().Received(quiet)); lv > gone {
		t.Fatalf("the member hears %.1f dBFS before the return to open talk, want silence", lv)
	}
	var back time.Duration
	for time.Since(hungUp) < 65*time.Second {
		time.Sleep(250 * time.Millisecond)
		if levels(l, hungUp, time.Second, 440)[0] >= audible {
			back = time.Since(hungUp)
			break
		}
	}
	if back == 0 {
		t.Fatalf("65 s after the chair hung up in lecture mode the member is still unheard (%.1f dBFS)",
			levels(l, hungUp, time.Second, 440)[0])
	}
	t.Logf("the member is heard again %v after the chair hung up", back.Round(10*time.Millisecond))
	// A steady tone, not a moment of speech at 440 Hz: still heard once
	// the announcement has played.
	said := hungUp.Add(back - time.Second)
	time.Sleep(4 * time.Second)
	if lv := levelOver(l, time.Second, 440); lv < audible {
		t.Errorf("after the return to open talk the member is heard at %.1f dBFS only", lv)
	}
	// The member hears nobody (the other member is silent), so what
	// reaches them now is the room's sentence, "The facilitator has left.
	// Everyone may speak now." (about 3.9 s of speech): loud, and spread
	// over the band, unlike a tone (whose level at its frequency would be
	// its whole level).
	heard := m.Media().Received(said)
	if len(heard) > 4*8000 {
		heard = heard[:4*8000]
	}
	lv, at440 := rmsOf(heard), levels2(heard, 440)
	t.Logf("the member hears %.1f dBFS over the 4 s of the announcement (%.1f dBFS at 440 Hz)", lv, at440)
	if lv < -40 || at440 > lv-15 {
		t.Errorf("the member heard %.1f dBFS (%.1f at 440 Hz) around the return to open talk, want the announcement",
			lv, at440)
	}
}

// TestKeypadPressesAreNotLost: PINs and keys typed by RFC 4733 share the
// audio's sequence numbers; on loopback nothing is lost, so the loss
// metric must read 0 after a call full of key presses (issue 11, 7).
func TestKeypadPressesAreNotLost(t *testing.T) {
	t.Parallel()
	a, logs := startApp(t, testYAML("", peerGroup))
	phones := joinRoom(t, a, logs, 1000041, "654321", "1234")
	keys(t, phones[0], "*5*5")
	keys(t, phones[1], "*6*6")
	time.Sleep(500 * time.Millisecond)
	s := scrape(t, a)
	if in := metricValue(t, s, `groupbridge_rtp_packets_total{direction="in"}`); in < 100 {
		t.Fatalf("only %v packets in", in)
	}
	if lost := metricValue(t, s, "groupbridge_rtp_lost_total"); lost != 0 {
		t.Errorf("groupbridge_rtp_lost_total = %v on a clean loopback call with key presses", lost)
	}
}
