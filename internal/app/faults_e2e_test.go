package app

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/groupbridge/groupbridge/internal/conference"
	"github.com/groupbridge/groupbridge/internal/softphone"
	"github.com/groupbridge/groupbridge/internal/testports"
	"github.com/groupbridge/groupbridge/media/tone"
)

// Faults, end to end (issue 6, Build 4): the whole bridge in-process,
// softphones as the callers who behave, rawCall (rawcall_test.go) as the
// ones who do not. Audio continuity is judged with softphone.ToneBlocks on
// what a listener received, laid out by RTP timestamp.

// scrape returns the app's metrics in the Prometheus text format.
func scrape(t *testing.T, a *App) string {
	t.Helper()
	code, body := get(t, a.Metrics().Handler(), "GET", "/metrics", "")
	if code != 200 {
		t.Fatalf("/metrics: %d", code)
	}
	return body
}

// waitMetric waits until series reads want.
func waitMetric(t *testing.T, a *App, d time.Duration, series string, want float64) {
	t.Helper()
	deadline := time.Now().Add(d)
	got := 0.0
	for time.Now().Before(deadline) {
		if got = metricValue(t, scrape(t, a), series); got == want {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s = %v after %v, want %v", series, got, d, want)
}

// callID is the bridge's log id of the call from caller, from its
// "call joined" record.
func callID(t *testing.T, logs *syncBuffer, caller string) string {
	t.Helper()
	masked := logs.caller(caller)
	for _, r := range logs.records(t) {
		if r["msg"] == "call joined" && r["caller"] == masked {
			if id, ok := r["call"].(string); ok {
				return id
			}
		}
	}
	t.Fatalf("no join of %s in the log", masked)
	return ""
}

// waitJoined waits for the "call joined" record of caller and returns its
// call id.
func waitJoined(t *testing.T, logs *syncBuffer, caller string) string {
	t.Helper()
	logs.waitCount(t, 20*time.Second, 1, "call joined", "caller", logs.caller(caller))
	return callID(t, logs, caller)
}

// endedBy waits until the bridge has hung up p with a BYE.
func endedBy(t *testing.T, p *softphone.Phone, d time.Duration) {
	t.Helper()
	select {
	case <-p.Done():
	case <-time.After(d):
		t.Fatal("the bridge did not hang up the call")
	}
	if !p.EndedByRemote() {
		t.Fatal("the call ended, but not by the bridge's BYE")
	}
}

// heardDBFS is the level above which a -20 dBFS tone counts as heard in
// a block. It is low on purpose: while a listener's jitter buffer adapts
// its delay (machine load makes the talker's packets jittery) it
// time-scales frames by a few samples, which spreads a pure tone's energy
// over neighbouring frequencies and drops its Goertzel level by some 15 dB
// for a second or so, yet the talker is heard all along. A gap (silence,
// a concealment fading out, a room that stopped) is far below it, and so
// are the other tones of these tests at this frequency.
const heardDBFS = -45

// heard is the fraction of 100 ms blocks of what p received since from
// in which freq stands above heardDBFS, and the longest run without it.
func heard(p *softphone.Phone, since time.Time, freq float64) (float64, time.Duration) {
	return softphone.ToneBlocks(p.Media().Received(since), freq, 100*time.Millisecond, heardDBFS)
}

// wantContinuous fails unless p heard freq in 95% of the blocks since
// from. A shortfall is not judged, but logged and the test skipped, when
// the talkers in mark (this process's phones) could not send on time
// meanwhile: the holes they left measure the machine.
func wantContinuous(t *testing.T, who string, p *softphone.Phone, since time.Time, freq float64, mark stalls) {
	t.Helper()
	frac, gap := heard(p, since, freq)
	if frac < 0.95 {
		if why := mark.since(); why != "" {
			t.Skipf("%s heard %.0f Hz in %.1f%% of 100 ms blocks (longest gap %v): not judged, %s",
				who, freq, 100*frac, gap, why)
		}
		s := p.Media().Received(since)
		var b strings.Builder
		for i := 0; i+800 <= len(s); i += 800 {
			fmt.Fprintf(&b, " %.0f", tone.LevelDBFS(s[i:i+800], freq))
		}
		t.Errorf("%s heard %.0f Hz in %.1f%% of 100 ms blocks (longest gap %v), want 95%%+; levels by block (dBFS):%s",
			who, freq, 100*frac, gap, b.String())
	}
}

// noSecrets fails if the log holds any of the secrets.
//
// The log holds no time stamps (syncBuffer drops them), and a secret must
// have at least 6 digits: ports and durations hold a short one by chance.
func noSecrets(t *testing.T, logs *syncBuffer, secrets ...string) {
	t.Helper()
	for _, s := range secrets {
		if len(s) < 6 {
			t.Fatalf("noSecrets(%q): a secret this short turns up in a log by chance; use 6 digits or more", s)
		}
	}
	for _, line := range strings.Split(logs.String(), "\n") {
		for _, s := range secrets {
			if strings.Contains(line, s) {
				t.Errorf("a log line holds the secret %q: %s", s, line)
			}
		}
	}
}

// A caller that vanishes without a BYE (its RTP stops and its sockets
// close, so our BYE meets ICMP port unreachable) is hung up after
// rtp.timeout; "call ended" names the reason and only the masked caller,
// calls_active and the room's members go back down, and its RTP port is
// back in the pool: with a range of two port pairs a third call gets in.
func TestFaultVanishedCallerIsHungUpAfterRTPTimeout(t *testing.T) {
	t.Parallel()
	lo := testports.Range(t, 4)
	y := strings.Replace(testYAMLPorts("", "", lo, lo+3), "timeout: 10s", "timeout: 2s", 1)
	a, logs := startApp(t, y)
	const vanisher = "+15556100002"
	listener := dial(t, a, softphone.Config{Caller: "+15556100001"})
	enter(t, logs, listener, "1234", softphone.DigitRFC4733, 1)
	listener.Media().SendSilence()
	v := dialRaw(t, a, vanisher, nil, true)
	v.sendTone(440)
	v.keys("1234#")
	id := waitJoined(t, logs, vanisher)
	time.Sleep(2 * time.Second)
	start := time.Now()
	time.Sleep(1500 * time.Millisecond)
	if frac, _ := heard(listener, start, 440); frac < 0.9 {
		t.Fatalf("before vanishing the caller is heard in %.0f%% of blocks only", 100*frac)
	}
	s := scrape(t, a)
	if n := metricValue(t, s, "groupbridge_calls_active"); n != 2 {
		t.Fatalf("calls_active %v before, want 2", n)
	}

	gone := time.Now()
	v.vanish()
	logs.waitCount(t, 8*time.Second, 1, "call ended", "call", id, "reason", "rtp-timeout")
	if took := time.Since(gone); took < time.Second {
		t.Fatalf("hung up %v after the caller vanished: before rtp.timeout (2s)", took)
	}
	for _, r := range logs.records(t) {
		if r["msg"] == "call ended" && r["call"] == id && r["caller"] != logs.caller(vanisher) {
			t.Errorf("call ended logs caller %v, want %s", r["caller"], logs.caller(vanisher))
		}
	}
	waitMetric(t, a, 2*time.Second, "groupbridge_calls_active", 1)
	waitMetric(t, a, 2*time.Second, `groupbridge_room_members{placement="room"}`, 1)

	// Both port pairs were taken; the vanished caller's is free again.
	third := dial(t, a, softphone.Config{Caller: "+15556100003"})
	enter(t, logs, third, "1234", softphone.DigitRFC4733, 3)
	noSecrets(t, logs, "5556100001", "5556100002", "5556100003")
}

// goroutines returns how many goroutines there are and how many of them
// have a frame whose function name contains each of funcs.
func goroutines(funcs ...string) (int, map[string]int) {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		if len(buf) >= 64<<20 {
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	stacks := bytes.Split(buf, []byte("\n\n"))
	counts := map[string]int{}
	for _, s := range stacks {
		for _, f := range funcs {
			if bytes.Contains(s, []byte(f)) {
				counts[f]++
			}
		}
	}
	return len(stacks), counts
}

// A peer that never answers the BYE we send (here after a facilitator's
// remove through the API) does not keep the call's resources: the call
// ends, its RTP port returns to the pool, its seat is freed and its
// goroutines are gone at once, while the BYE transaction (one goroutine,
// bounded by 64*T1 in sipua) still retransmits to the silent peer.
// Not parallel: it counts the process's goroutines.
func TestFaultPeerThatNeverAnswersOurByeFreesTheCall(t *testing.T) {
	lo := testports.Range(t, 4)
	a, logs := startApp(t, testYAMLPorts("", "", lo, lo+3))
	h := a.AdminHandler("tok")
	const mute = "+15556200002"
	listener := dial(t, a, softphone.Config{Caller: "+15556200001"})
	enter(t, logs, listener, "1234", softphone.DigitRFC4733, 1)
	time.Sleep(500 * time.Millisecond)
	before, _ := goroutines()

	r := dialRaw(t, a, mute, nil, false)
	r.sendTone(440)
	r.keys("1234#")
	id := waitJoined(t, logs, mute)
	time.Sleep(500 * time.Millisecond)
	if code, body := get(t, h, "POST", "/api/rooms/Circle/seats/2/remove", "tok"); code != 200 {
		t.Fatalf("remove: %d %s", code, body)
	}
	// The removal is said to the caller first, then the bridge hangs up.
	logs.waitCount(t, 15*time.Second, 1, "call ended", "call", id, "reason", "removed")
	if r.byes.Load() == 0 {
		deadline := time.Now().Add(2 * time.Second)
		for r.byes.Load() == 0 && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if r.byes.Load() == 0 {
			t.Fatal("the removed caller never got a BYE")
		}
	}
	r.stopRTP()
	ended := time.Now()

	// Resources are freed without waiting for the BYE's answer.
	waitMetric(t, a, 2*time.Second, "groupbridge_calls_active", 1)
	waitMetric(t, a, 2*time.Second, `groupbridge_room_members{placement="room"}`, 1)
	var n int
	var counts map[string]int
	deadline := time.Now().Add(3 * time.Second)
	for {
		n, counts = goroutines("(*App).ServeCall", "(*Server).runCall", "(*Server).sendBye")
		if counts["(*App).ServeCall"] <= 1 && counts["(*Server).runCall"] <= 1 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if counts["(*App).ServeCall"] != 1 || counts["(*Server).runCall"] != 1 {
		t.Errorf("call goroutines after the removal: %v, want the listener's only", counts)
	}
	if counts["(*Server).sendBye"] > 1 {
		t.Errorf("%d BYE goroutines, want at most the one unanswered BYE", counts["(*Server).sendBye"])
	}
	// Whatever else the call started is gone; a little slack for the SIP
	// stack's own timers.
	if n > before+5 {
		t.Errorf("%d goroutines after the call ended, %d before it began", n, before)
	}
	// The port pair is back: both were taken, a new call gets one.
	third := dial(t, a, softphone.Config{Caller: "+15556200003"})
	enter(t, logs, third, "1234", softphone.DigitRFC4733, 3)
	// Still retransmitting to the peer that never answers: the call's
	// resources never waited for it.
	deadline = time.Now().Add(3 * time.Second)
	for r.byes.Load() < 2 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if r.byes.Load() < 2 {
		t.Errorf("BYE sent %d times in %v, want retransmissions to the silent peer", r.byes.Load(), time.Since(ended))
	}
}

// An exhausted RTP port range answers a new INVITE 503 with Retry-After
// (the bare 503 is TestE2EPortRangeExhaustedIs503), says why in the log,
// and takes calls again once a port pair is free.
func TestFaultPortRangeExhaustedAnswers503ThenRecovers(t *testing.T) {
	t.Parallel()
	lo := testports.Range(t, 2)
	a, logs := startApp(t, testYAMLPorts("", "", lo, lo+1))
	first := dial(t, a, softphone.Config{Caller: "+15556300001"})
	sdp := "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n"
	codes, res := rawSIPText(t, sipAddr(t, a, "udp"), inviteText("+15556300002", sdp), 3)
	if len(codes) == 0 || codes[len(codes)-1] != 503 {
		t.Fatalf("responses %v, want a final 503", codes)
	}
	if !strings.Contains(res, "Retry-After:") {
		t.Errorf("503 without Retry-After:\n%s", res)
	}
	if n := logs.count(t, "call rejected", "reason", "rtp ports exhausted"); n != 1 {
		t.Errorf("%d 'call rejected' lines for exhausted ports, want 1", n)
	}
	ctx, cancel := testContext(5 * time.Second)
	defer cancel()
	if err := first.Hangup(ctx); err != nil {
		t.Fatal(err)
	}
	// Logged once the call's stream is closed and its ports are back.
	logs.waitCount(t, 5*time.Second, 1, "call ended", "reason", "remote-bye")
	waitMetric(t, a, 3*time.Second, "groupbridge_calls_active", 0)
	again := dial(t, a, softphone.Config{Caller: "+15556300003"})
	enter(t, logs, again, "1234", softphone.DigitRFC4733, 1)
}

// panicRoom starts a bridge with one peer-led group whose member PIN is
// pin and puts two callers in it, A sending 440 Hz and B 1000 Hz; it
// returns once the join prompts are over.
func panicRoom(t *testing.T, pin string, callerA, callerB string) (*App, *syncBuffer, *softphone.Phone, *softphone.Phone) {
	t.Helper()
	groups := `
  - name: Circle
    member_pin: "` + pin + `"
    led_by: peer
`
	a, logs := startApp(t, testYAML("", groups))
	pa := dial(t, a, softphone.Config{Caller: callerA})
	pb := dial(t, a, softphone.Config{Caller: callerB})
	enter(t, logs, pa, pin, softphone.DigitRFC4733, 1)
	enter(t, logs, pb, pin, softphone.DigitRFC4733, 2)
	pa.Media().SendTone(440, -20)
	pb.Media().SendTone(1000, -20)
	time.Sleep(2 * time.Second)
	return a, logs, pa, pb
}

// A panic in one call's handling ends that call only, logged without its
// PIN or number, while two others in the room keep hearing each other
// throughout. "One call's handling" is each place a call's own code runs:
//   - its goroutine in the IVR (a configuration snapshot with no prompts
//     stands in for a bug on that path: the first prompt dereferences
//     nil; sipua's recover boundary ends the call, the lobby entry is
//     left by its deferred Leave);
//   - its part of the room's tick on the clock goroutine
//     (conference.Faults.Member panics with the PIN and number in its
//     text): the room lets that caller go and mixes on;
//   - its goroutine while in the room: TestFaultPanicInCallGoroutineInRoom.
func TestFaultPanicInOneCallEndsOnlyThatCall(t *testing.T) {
	t.Parallel()
	const (
		pin                  = "4821397"
		ivrVictim, mixVictim = "+15556400003", "+15556400005"
	)
	a, logs, pa, pb := panicRoom(t, pin, "+15556400001", "+15556400002")
	start, mark := time.Now(), stallMark(nil, pa, pb)

	// 1. The IVR: this call's snapshot is broken, nobody else's.
	good := a.state.Load()
	broken := *good
	broken.prompts = nil
	a.state.Store(&broken)
	c1 := dial(t, a, softphone.Config{Caller: ivrVictim})
	logs.waitCount(t, 5*time.Second, 1, "panic in call handler")
	a.state.Store(good)
	endedBy(t, c1, 5*time.Second)
	logs.waitCount(t, 5*time.Second, 1, "call ended", "caller", logs.caller(ivrVictim), "reason", "handler-done")

	// 2. The call's own part of the room's tick, once.
	var victim atomic.Value
	victim.Store("")
	var fired atomic.Bool
	a.conf.InjectFaults(&conference.Faults{Member: func(id string) {
		if id == victim.Load().(string) && fired.CompareAndSwap(false, true) {
			panic(fmt.Sprintf("mixing %s with PIN %s", mixVictim, pin))
		}
	}})
	c2 := dial(t, a, softphone.Config{Caller: mixVictim})
	enter(t, logs, c2, pin, softphone.DigitRFC4733, 3)
	c2.Media().SendTone(700, -20)
	id := callID(t, logs, mixVictim)
	victim.Store(id)
	endedBy(t, c2, 5*time.Second)
	logs.waitCount(t, 5*time.Second, 1, "call ended", "call", id, "reason", "internal-error")
	logs.waitCount(t, 5*time.Second, 1, "caller's audio processing panicked, letting the caller go", "call", id)
	time.Sleep(1500 * time.Millisecond)

	// The room went on: A and B heard each other all along, and only
	// they are left in it.
	wantContinuous(t, "A", pa, start, 1000, mark)
	wantContinuous(t, "B", pb, start, 440, mark)
	waitMetric(t, a, 3*time.Second, "groupbridge_calls_active", 2)
	waitMetric(t, a, 3*time.Second, `groupbridge_room_members{placement="room"}`, 2)
	waitMetric(t, a, 3*time.Second, "groupbridge_rooms", 1)
	if n := logs.count(t, "room tick panicked, resetting the room"); n != 0 {
		t.Errorf("a call's panic reset the room")
	}
	noSecrets(t, logs, pin, "5556400001", "5556400002", "5556400003", "5556400005")
}

// A panic on a call's goroutine while the caller is in a room (here
// conference.Faults.Key, on a key press, with the PIN and number in its
// text) ends that call, is logged without them, and takes the caller out
// of the room: the seat is freed, the others hear each other on.
func TestFaultPanicInCallGoroutineInRoom(t *testing.T) {
	t.Parallel()
	const (
		pin    = "5930168"
		victim = "+15556400004"
	)
	a, logs, pa, pb := panicRoom(t, pin, "+15556400006", "+15556400007")
	start, mark := time.Now(), stallMark(nil, pa, pb)
	var victimID atomic.Value
	victimID.Store("")
	a.conf.InjectFaults(&conference.Faults{Key: func(id string, d byte) {
		if id == victimID.Load().(string) && d == '9' {
			panic(fmt.Sprintf("key %c from %s with PIN %s", d, victim, pin))
		}
	}})
	c := dial(t, a, softphone.Config{Caller: victim})
	enter(t, logs, c, pin, softphone.DigitRFC4733, 3)
	id := callID(t, logs, victim)
	victimID.Store(id)
	ctx, cancel := testContext(10 * time.Second)
	defer cancel()
	// The key ends the call: the BYE may come while the phone still
	// repeats the event's end packets, and then SendDigits says so.
	if err := c.SendDigits(ctx, "9", softphone.DigitRFC4733); err != nil && !errors.Is(err, softphone.ErrEnded) {
		t.Fatal(err)
	}
	endedBy(t, c, 5*time.Second)
	logs.waitCount(t, 5*time.Second, 1, "call ended", "call", id, "reason", "handler-done")
	logs.waitCount(t, 5*time.Second, 1, "panic in call handler", "call", id)
	time.Sleep(1500 * time.Millisecond)
	wantContinuous(t, "A", pa, start, 1000, mark)
	wantContinuous(t, "B", pb, start, 440, mark)
	waitMetric(t, a, 3*time.Second, "groupbridge_calls_active", 2)
	noSecrets(t, logs, pin, "5556400004", "5556400006", "5556400007")
	// The caller's seat: the room must not keep a member whose call has
	// ended (it would hold the seat and the session for ever); ServeCall
	// leaves the room however its goroutine unwinds.
	const members = `groupbridge_room_members{placement="room"}`
	waitMetric(t, a, 3*time.Second, members, 2)
}

// A panic in one room's tick resets that room only: its callers are hung
// up ("room-reset", as conference.Recover does), another room on the same
// clock keeps mixing without a gap, the log names the group but no PIN,
// and the group's next caller starts a new session.
func TestFaultPanicInOneRoomResetsOnlyThatRoom(t *testing.T) {
	t.Parallel()
	groups := `
  - name: Steady
    member_pin: "73150284"
    led_by: peer
  - name: Shaky
    member_pin: "86420917"
    led_by: peer
`
	a, logs := startApp(t, testYAML("", groups))
	pa := dial(t, a, softphone.Config{Caller: "+15556500001"})
	pb := dial(t, a, softphone.Config{Caller: "+15556500002"})
	px := dial(t, a, softphone.Config{Caller: "+15556500003"})
	py := dial(t, a, softphone.Config{Caller: "+15556500004"})
	enter(t, logs, pa, "73150284", softphone.DigitRFC4733, 1)
	enter(t, logs, pb, "73150284", softphone.DigitRFC4733, 2)
	enter(t, logs, px, "86420917", softphone.DigitRFC4733, 3)
	enter(t, logs, py, "86420917", softphone.DigitRFC4733, 4)
	pa.Media().SendTone(440, -20)
	pb.Media().SendTone(1000, -20)
	px.Media().SendTone(700, -20)
	time.Sleep(2 * time.Second)
	start, mark := time.Now(), stallMark(nil, pa, pb)
	time.Sleep(time.Second)

	var fired atomic.Bool
	a.conf.InjectFaults(&conference.Faults{Room: func(group string) {
		if group == "Shaky" && fired.CompareAndSwap(false, true) {
			panic("room Shaky with PIN 8642 and +15556500003")
		}
	}})
	endedBy(t, px, 5*time.Second)
	endedBy(t, py, 5*time.Second)
	logs.waitCount(t, 5*time.Second, 2, "call ended", "reason", "room-reset")
	logs.waitCount(t, 5*time.Second, 1, "room tick panicked, resetting the room", "group", "Shaky")
	if p := a.clock.Panics(); p != 1 {
		t.Errorf("clock recovered %d panics, want 1", p)
	}
	waitMetric(t, a, 3*time.Second, "groupbridge_rooms", 1)
	time.Sleep(1500 * time.Millisecond)
	wantContinuous(t, "A (other room)", pa, start, 1000, mark)
	wantContinuous(t, "B (other room)", pb, start, 440, mark)

	// The reset room's group takes calls again, in a new session.
	pz := dial(t, a, softphone.Config{Caller: "+15556500005"})
	enter(t, logs, pz, "86420917", softphone.DigitRFC4733, 5)
	if n := logs.count(t, "call joined", "group", "Shaky", "seat", "1"); n != 2 {
		t.Errorf("%d seat-1 joins of Shaky, want 2 (the new session starts at 1)", n)
	}
	waitMetric(t, a, 3*time.Second, "groupbridge_rooms", 2)
	noSecrets(t, logs, "86420917", "73150284", "5556500003")
}

// Callers whose RTP socket errors or never reads cannot delay the mixing
// clock for anyone: one whose socket is closed while the call stays up
// (every packet we send it meets ICMP port unreachable) and one whose
// receive buffer is tiny and never read. The two healthy callers in the
// same room keep hearing each other with packets at their normal pace,
// and no tick of the clock took longer than a frame (20 ms).
func TestFaultBrokenPeerSocketsCannotDelayTheClock(t *testing.T) {
	t.Parallel()
	a, logs := startApp(t, testYAML("", ""))
	pa := dial(t, a, softphone.Config{Caller: "+15556600001"})
	pb := dial(t, a, softphone.Config{Caller: "+15556600002"})
	enter(t, logs, pa, "1234", softphone.DigitRFC4733, 1)
	enter(t, logs, pb, "1234", softphone.DigitRFC4733, 2)
	pa.Media().SendTone(440, -20)
	pb.Media().SendTone(1000, -20)

	// The unreachable one: it talks (so it is latched and mixed), then
	// its RTP socket goes away while its SIP side keeps the call up.
	unreachable := dialRaw(t, a, "+15556600003", nil, true)
	unreachable.sendTone(0)
	unreachable.keys("1234#")
	waitJoined(t, logs, "+15556600003")

	// The one that never reads, with the smallest receive buffer the
	// kernel allows.
	deaf, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	if err := deaf.SetReadBuffer(1); err != nil {
		t.Fatal(err)
	}
	full := dialRaw(t, a, "+15556600004", deaf, true)
	full.sendTone(0)
	full.keys("1234#")
	waitJoined(t, logs, "+15556600004")
	time.Sleep(500 * time.Millisecond)
	unreachable.stopRTP()
	_ = unreachable.rtp.Close()

	time.Sleep(2 * time.Second)
	before := scrape(t, a)
	pa.Media().ResetArrivalIntervals()
	pb.Media().ResetArrivalIntervals()
	// The clock's lateness is what this test judges: only the talkers'
	// own stalls excuse a hole.
	start, mark := time.Now(), stallMark(nil, pa, pb)
	time.Sleep(4 * time.Second)
	after := scrape(t, a)

	wantContinuous(t, "A", pa, start, 1000, mark)
	wantContinuous(t, "B", pb, start, 440, mark)
	for _, p := range []struct {
		name string
		p    *softphone.Phone
	}{{"A", pa}, {"B", pb}} {
		h := p.p.Media().ArrivalHistogram()
		p50, p99, mx := p.p.Media().ArrivalIntervals()
		t.Logf("%s: %d packets, arrival intervals p50 %v p99 %v max %v", p.name, h.Count(), p50, p99, mx)
		// About 200 in 4 s; a clock held up by a peer sends fewer.
		if h.Count() < 180 {
			t.Errorf("%s received %d packets in 4 s, want about 200", p.name, h.Count())
		}
		if p50 < 15*time.Millisecond || p50 > 25*time.Millisecond {
			t.Errorf("%s: median arrival interval %v, want about 20 ms", p.name, p50)
		}
	}
	ticks := metricValue(t, after, "groupbridge_mixer_tick_seconds_count") - metricValue(t, before, "groupbridge_mixer_tick_seconds_count")
	within := metricValue(t, after, `groupbridge_mixer_tick_seconds_bucket{le="0.02"}`) - metricValue(t, before, `groupbridge_mixer_tick_seconds_bucket{le="0.02"}`)
	t.Logf("%v ticks in the window, %v of them over 20 ms", ticks, ticks-within)
	if ticks < 180 {
		t.Errorf("the clock ticked %v times in 4 s, want about 200", ticks)
	}
	// A peer that held the clock up would slow every tick that serves it;
	// one tick in a hundred may still be preempted on a busy machine.
	if over := ticks - within; over > ticks/100 {
		t.Errorf("%v of %v ticks took longer than a frame (20 ms)", over, ticks)
	}
	// Both broken callers are still in the call: nothing hung them up.
	if n := metricValue(t, after, "groupbridge_calls_active"); n != 4 {
		t.Errorf("calls_active %v, want 4", n)
	}
}
