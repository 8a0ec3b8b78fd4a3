package callflow

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/groupbridge/groupbridge/internal/conference"
	"github.com/groupbridge/groupbridge/internal/group"
	"github.com/groupbridge/groupbridge/internal/guard"
	"github.com/groupbridge/groupbridge/internal/lobby"
	"github.com/groupbridge/groupbridge/internal/testkit"
	"github.com/groupbridge/groupbridge/media/pcm"
	"github.com/groupbridge/groupbridge/media/prompt"
)

// stream is a caller's audio as the lobby plays it: it counts the frames
// that were not silence.
type stream struct{ heard atomic.Int64 }

func (s *stream) ReadFrame(*pcm.Frame) bool { return false }
func (s *stream) WriteFrame(f *pcm.Frame) {
	if slices.ContainsFunc(f[:], func(v int16) bool { return v != 0 }) {
		s.heard.Add(1)
	}
}

// call is an answered call driven by the test: its keys, its end.
type call struct {
	number, dialed, user string
	private, noIdentity  bool
	ip                   netip.Addr

	stream   stream
	media    pcm.Stream // what Stream returns instead of &stream, when set
	digits   chan byte
	ctx      context.Context
	cancel   context.CancelFunc
	mu       sync.Mutex
	hangups  []string
	admitted bool
}

func newCall(number string) *call {
	c := &call{number: number, digits: make(chan byte, 16)}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	return c
}

func (c *call) Caller() string       { return c.number }
func (c *call) CallerPrivate() bool  { return c.private }
func (c *call) NoIdentity() bool     { return c.noIdentity }
func (c *call) ID() string           { return "call-1" }
func (c *call) Label() string        { return "tag-1" }
func (c *call) Dialed() string       { return c.dialed }
func (c *call) User() string         { return c.user }
func (c *call) SourceIP() netip.Addr { return c.ip }
func (c *call) Stream() pcm.Stream {
	if c.media != nil {
		return c.media
	}
	return &c.stream
}
func (c *call) Digits() <-chan byte      { return c.digits }
func (c *call) Context() context.Context { return c.ctx }

// Hangup ends the call, as sipua's does: its context is done.
func (c *call) Hangup(reason string) {
	c.mu.Lock()
	c.hangups = append(c.hangups, reason)
	c.mu.Unlock()
	c.cancel()
}

func (c *call) Admitted() {
	c.mu.Lock()
	c.admitted = true
	c.mu.Unlock()
}

func (c *call) ended() ([]string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.hangups), c.admitted
}

func (c *call) keys(s string) {
	for i := range len(s) {
		c.digits <- s[i]
	}
}

// counts records the metrics.
type counts struct {
	mu       sync.Mutex
	outcomes []string
	pin      map[string]int
}

func (m *counts) CallOutcome(o string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.outcomes = append(m.outcomes, o)
}

func (m *counts) add(k string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.pin == nil {
		m.pin = map[string]int{}
	}
	m.pin[k]++
}

func (m *counts) PINFailure(g bool) { m.add(fmt.Sprint("failure-", g)) }
func (m *counts) PINAlarm(g bool)   { m.add(fmt.Sprint("alarm-", g)) }
func (m *counts) PINAttack(g bool)  { m.add(fmt.Sprint("attack-", g)) }

func (m *counts) get() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.outcomes)
}

// member is a seat in a room that the test ends.
type member struct {
	done   chan struct{}
	keys   chan byte
	left   atomic.Bool
	reason string
}

func (m *member) Key(d byte)            { m.keys <- d }
func (m *member) Done() <-chan struct{} { return m.done }
func (m *member) Reason() string        { return m.reason }
func (m *member) Leave()                { m.left.Store(true) }
func (m *member) Seat() int             { return 2 }
func (m *member) Restored() bool        { return false }

// rig is a Flow with its collaborators: a lobby that ticks as fast as it
// can, real PIN limits, a JSON log.
type rig struct {
	flow    *Flow
	log     *testkit.LogBuffer
	metrics *counts
	budget  *guard.Budget
	guard   *guard.PINGuard
	lobby   *lobby.Lobby
	joins   chan conference.JoinRequest
	join    func(group.Group) (Member, error)
}

var circle = group.Group{Name: "Circle", MemberPIN: "1234", FacilitatorPIN: "9876", Number: "100"}

func newRig(t *testing.T, gcfg guard.Config, tweak func(*Config)) *rig {
	t.Helper()
	prompts, err := prompt.Builtin("en")
	if err != nil {
		t.Fatal(err)
	}
	r := &rig{
		log: &testkit.LogBuffer{}, metrics: &counts{}, lobby: lobby.New(),
		guard:  guard.New(gcfg),
		budget: guard.NewBudget(guard.BudgetConfig{}),
		joins:  make(chan conference.JoinRequest, 1),
		join:   func(group.Group) (Member, error) { return nil, errors.New("no room") },
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // the lobby's clock, much faster than real time
		defer wg.Done()
		for ctx.Err() == nil {
			r.lobby.Tick(time.Time{})
			time.Sleep(50 * time.Microsecond)
		}
	}()
	t.Cleanup(func() { cancel(); wg.Wait() })
	st := &Settings{Groups: []group.Group{circle}, Prompts: prompts, PINFailureAlarm: 60, PINBudget: 6, PINBudgetBridge: 30}
	cfg := Config{
		Settings: func() *Settings { return st },
		Lobby:    r.lobby,
		Join: func(_ Call, g group.Group, req conference.JoinRequest) (Member, error) {
			r.joins <- req
			return r.join(g)
		},
		Guard: r.guard, Budget: r.budget, Metrics: r.metrics,
		Log:     slog.New(slog.NewJSONHandler(r.log, nil)),
		TagZone: time.UTC, // Clock nil: the real time
	}
	copy(cfg.Key[:], "a per-start key of thirty-two b.")
	if tweak != nil {
		tweak(&cfg)
	}
	if r.flow, err = New(cfg); err != nil {
		t.Fatal(err)
	}
	return r
}

// lines returns the log records with message msg.
func (r *rig) lines(t *testing.T, msg string) []map[string]any {
	t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(r.log.String()))
	for sc.Scan() {
		var rec map[string]any
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatalf("log line %q: %v", sc.Text(), err)
		}
		if rec["msg"] == msg {
			out = append(out, rec)
		}
	}
	return out
}

// serve runs Serve for c and returns when it does.
func (r *rig) serve(t *testing.T, c *call) {
	t.Helper()
	done := make(chan struct{})
	go func() { defer close(done); r.flow.Serve(c) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatalf("Serve did not return; log:\n%s", r.log.String())
	}
}

// Every refusal is one log line, one count and one hang-up, all with the
// same word, and the caller hears the reason's prompt first when it has
// one. The group is named when one refused the call.
func TestRefuse(t *testing.T) {
	tests := []struct {
		reason Reason
		group  string
		prompt bool
	}{
		{PINBlocked, "", true},
		{WrongPIN, "", false},
		{NoInput, "", false},
		{PINBusy, "", false},
		{IVREnded, "", false},
		{InternalError, "", false},
		{GroupFull, "Circle", true},
		{Locked, "Circle", true},
		{Removed, "Circle", true},
		{JoinFailed, "Circle", true},
		{Closed, "Circle", true},
	}
	for _, tc := range tests {
		t.Run(string(tc.reason), func(t *testing.T) {
			// Waits never time out (the clock stands still): a prompt is
			// heard to its end.
			r := newRig(t, guard.Config{}, func(c *Config) { c.Clock = testkit.NewManualClock() })
			c := newCall("+15551230001")
			r.flow.refuse(c, r.flow.cfg.Settings(), tc.reason, tc.group)
			if got := r.metrics.get(); !slices.Equal(got, []string{string(tc.reason)}) {
				t.Errorf("outcomes counted %q, want %q", got, tc.reason)
			}
			if got, _ := c.ended(); !slices.Equal(got, []string{string(tc.reason)}) {
				t.Errorf("hang-ups %q, want %q", got, tc.reason)
			}
			lines := r.lines(t, "call not admitted")
			if len(lines) != 1 {
				t.Fatalf("%d lines \"call not admitted\"; log:\n%s", len(lines), r.log.String())
			}
			l := lines[0]
			if l["outcome"] != string(tc.reason) || l["call"] != "call-1" || l["caller"] != "tag-1" {
				t.Errorf("log line %v", l)
			}
			if g, ok := l["group"]; ok != (tc.group != "") || (ok && g != tc.group) {
				t.Errorf("log line names group %v, want %q", g, tc.group)
			}
			if heard := c.stream.heard.Load() > 0; heard != tc.prompt {
				t.Errorf("caller heard a prompt: %v, want %v", heard, tc.prompt)
			}
			if n := r.lobby.Len(); n != 0 {
				t.Errorf("%d callers left in the lobby", n)
			}
		})
	}
}

// A room's refusal is told apart by its error, wrapped or not.
func TestJoinRefusal(t *testing.T) {
	tests := []struct {
		err  error
		want Reason
	}{
		{conference.ErrFull, GroupFull},
		{fmt.Errorf("room: %w", conference.ErrLocked), Locked},
		{conference.ErrRemoved, Removed},
		{conference.ErrClosed, JoinFailed},
		{fmt.Errorf("room: %w", conference.ErrNotMeeting), Closed},
		{fmt.Errorf("cluster: redis: %w", ErrUnavailable), Unavailable},
		{errors.New("anything else"), JoinFailed},
	}
	for _, tc := range tests {
		if got := joinRefusal(tc.err); got != tc.want {
			t.Errorf("joinRefusal(%v) = %s, want %s", tc.err, got, tc.want)
		}
	}
}

// A right PIN joins the group's room as the PIN's role; the caller is
// admitted, counted, known to the group, and its keys go to its seat
// until the room lets it go, which hangs up with the room's reason.
func TestServeJoins(t *testing.T) {
	r := newRig(t, guard.Config{}, nil)
	m := &member{done: make(chan struct{}), keys: make(chan byte, 1), reason: "session-ended"}
	r.join = func(g group.Group) (Member, error) {
		if g.Name != "Circle" {
			t.Errorf("joined %q", g.Name)
		}
		return m, nil
	}
	c := newCall("+15551230001")
	c.keys("9876#")
	go func() {
		req := <-r.joins
		if req.Role != group.Facilitator || req.Identity != r.flow.IdentityOf(c.number) || req.CallID != "call-1" || req.Masked != "tag-1" {
			t.Errorf("join request %+v", req)
		}
		c.keys("5")
		if d := <-m.keys; d != '5' {
			t.Errorf("seat got key %q", d)
		}
		close(m.done)
	}()
	r.serve(t, c)
	hangups, admitted := c.ended()
	if !slices.Equal(hangups, []string{"session-ended"}) || !admitted {
		t.Errorf("hang-ups %q, admitted %v", hangups, admitted)
	}
	if got := r.metrics.get(); !slices.Equal(got, []string{"joined"}) {
		t.Errorf("outcomes %q", got)
	}
	if !m.left.Load() {
		t.Error("the caller kept its seat")
	}
	if !r.budget.Known(time.Now(), r.flow.KnownKey(r.flow.IdentityOf(c.number), "Circle")) {
		t.Error("the caller is not known to the group after joining")
	}
	if l := r.lines(t, "call joined"); len(l) != 1 || l[0]["role"] != "facilitator" || l[0]["group"] != "Circle" {
		t.Errorf("call joined lines %v", l)
	}
}

// A room that moves to another node lets its callers go with
// ReasonMoved: the call is not hung up but joined again, as a reconnect,
// with the same identity and role; a move whose join fails ends the call
// with that refusal.
func TestServeFollowsAMovedRoom(t *testing.T) {
	for _, tc := range []struct {
		name     string
		second   error
		hangups  []string
		outcomes []string
	}{
		{name: "joined where the room went", hangups: []string{"session-ended"}, outcomes: []string{"joined"}},
		{name: "no node found", second: ErrUnavailable, hangups: []string{"cluster-unavailable"},
			outcomes: []string{"joined", "cluster-unavailable"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, guard.Config{}, nil)
			first := &member{done: make(chan struct{}), keys: make(chan byte, 1), reason: conference.ReasonMoved}
			second := &member{done: make(chan struct{}), keys: make(chan byte, 1), reason: "session-ended"}
			joins := 0
			r.join = func(group.Group) (Member, error) {
				joins++
				if joins == 1 {
					return first, nil
				}
				if tc.second != nil {
					return nil, tc.second
				}
				return second, nil
			}
			c := newCall("+15551230001")
			c.keys("1234#")
			go func() {
				req := <-r.joins
				if req.Reconnect {
					t.Error("the first join is a reconnect")
				}
				close(first.done)
				again := <-r.joins
				if !again.Reconnect || again.Identity != req.Identity || again.Role != req.Role {
					t.Errorf("second join %+v after %+v", again, req)
				}
				if tc.second == nil {
					c.keys("5")
					if d := <-second.keys; d != '5' {
						t.Errorf("the new seat got key %q", d)
					}
					close(second.done)
				}
			}()
			r.serve(t, c)
			hangups, _ := c.ended()
			if !slices.Equal(hangups, tc.hangups) {
				t.Errorf("hang-ups %q, want %q", hangups, tc.hangups)
			}
			if got := r.metrics.get(); !slices.Equal(got, tc.outcomes) {
				t.Errorf("outcomes %q, want %q", got, tc.outcomes)
			}
			if !first.left.Load() || (tc.second == nil && !second.left.Load()) {
				t.Error("a seat was kept")
			}
		})
	}
}

// Each way a call leaves before its room: the outcome counted, the
// hang-up and whether it is a refusal.
func TestServeOutcomes(t *testing.T) {
	tests := []struct {
		name    string
		guard   guard.Config
		before  func(r *rig, c *call) // before the call
		keys    string
		join    error
		hangup  bool // the caller hangs up during the prompt
		want    string
		refused bool
	}{
		{name: "caller hangs up in the PIN prompt", hangup: true, want: "hung-up-in-ivr"},
		{name: "wrong PINs", keys: "1111#2222#3333#", want: "wrong-pin", refused: true},
		{name: "blocked while guessing", guard: guard.Config{Failures: 2}, keys: "1111#2222#", want: "pin-blocked", refused: true},
		{name: "blocked before the prompt", guard: guard.Config{Failures: 1}, before: func(r *rig, c *call) {
			r.guard.Fail(r.flow.caller(c, r.flow.Identity(c)), "", time.Now())
		}, want: "pin-blocked", refused: true},
		{name: "group full", keys: "1234#", join: conference.ErrFull, want: "group-full", refused: true},
		{name: "removed", keys: "1234#", join: conference.ErrRemoved, want: "removed", refused: true},
		{name: "room's node unknown", keys: "1234#", join: ErrUnavailable, want: "cluster-unavailable", refused: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, tc.guard, nil)
			r.join = func(group.Group) (Member, error) { return nil, tc.join }
			c := newCall("+15551230001")
			if tc.before != nil {
				tc.before(r, c)
			}
			c.keys(tc.keys)
			if tc.hangup {
				c.cancel()
			}
			r.serve(t, c)
			if got := r.metrics.get(); !slices.Equal(got, []string{tc.want}) {
				t.Errorf("outcomes %q, want %s", got, tc.want)
			}
			hangups, admitted := c.ended()
			if admitted {
				t.Error("a call that did not join was admitted")
			}
			wantHangups := []string{tc.want}
			if !tc.refused {
				wantHangups = nil
			}
			if !slices.Equal(hangups, wantHangups) {
				t.Errorf("hang-ups %q, want %q", hangups, wantHangups)
			}
			if n := len(r.lines(t, "call not admitted")); n != map[bool]int{true: 1}[tc.refused] {
				t.Errorf("%d lines \"call not admitted\"; log:\n%s", n, r.log.String())
			}
			if n := r.lobby.Len(); n != 0 {
				t.Errorf("%d callers left in the lobby", n)
			}
		})
	}
}

// The PIN prompt's timers run on the flow's clock: a caller who presses
// nothing is let go after the machine's no-input timeouts, and no real
// second passes.
func TestServeNoInputOnInjectedClock(t *testing.T) {
	clk := testkit.NewManualClock()
	start := clk.Now()
	r := newRig(t, guard.Config{}, func(c *Config) { c.Clock = clk })
	// Each time the flow waits, the clock jumps to the wait's end; the
	// idle wait for nothing but the caller never ends.
	stop := make(chan struct{})
	driven := make(chan struct{})
	go func() {
		defer close(driven)
		for {
			select {
			case <-stop:
				return
			case <-clk.Made():
				if d, ok := clk.Next(); ok && d < time.Hour {
					clk.Advance(d)
				}
			}
		}
	}()
	c := newCall("+15551230001")
	began := time.Now()
	r.serve(t, c)
	close(stop)
	<-driven
	if got := r.metrics.get(); !slices.Equal(got, []string{"no-input"}) {
		t.Errorf("outcomes %q, want no-input; log:\n%s", got, r.log.String())
	}
	if elapsed := time.Since(began); elapsed > 10*time.Second {
		t.Errorf("took %v of real time", elapsed)
	}
	if moved := clk.Now().Sub(start); moved < 10*time.Second {
		t.Errorf("the flow's clock moved only %v", moved)
	}
}

// Wrong PINs are logged and counted by try and by the number dialled,
// never with the digits typed.
func TestWrongPINLogged(t *testing.T) {
	r := newRig(t, guard.Config{}, nil)
	c := newCall("+15551230001")
	c.dialed = "100"
	c.keys("4444#5555#6666#")
	r.serve(t, c)
	lines := r.lines(t, "wrong PIN")
	if len(lines) != 3 {
		t.Fatalf("%d wrong PIN lines; log:\n%s", len(lines), r.log.String())
	}
	for i, l := range lines {
		if l["try"] != float64(i+1) || l["group"] != "Circle" {
			t.Errorf("line %d: %v", i, l)
		}
	}
	for _, d := range []string{"4444", "5555", "6666", c.number} {
		if strings.Contains(r.log.String(), d) {
			t.Errorf("the log holds %q", d)
		}
	}
	if r.metrics.pin["failure-true"] != 3 {
		t.Errorf("PIN failures counted %v", r.metrics.pin)
	}
}

// The per-caller PIN limits key a call on its number, and for an
// authenticated call on its user and source too: an IPv6 source by its
// /64. Keys are keyed hashes, never the values.
func TestCallerIdentities(t *testing.T) {
	f := newRig(t, guard.Config{}, nil).flow
	addr := netip.MustParseAddr
	tests := []struct {
		name          string
		user          string
		ip, same, oth netip.Addr
		wantUser      bool
		wantSource    bool
	}{
		{"trusted PBX: the number only", "", addr("127.0.0.1"), netip.Addr{}, netip.Addr{}, false, false},
		{"untrusted IPv4", "alice", addr("192.0.2.7"), addr("192.0.2.7"), addr("192.0.2.8"), true, true},
		{"untrusted IPv6 by /64", "alice", addr("2001:db8:1:2::7"), addr("2001:db8:1:2:ffff::1"), addr("2001:db8:1:3::7"), true, true},
		{"no address", "alice", netip.Addr{}, netip.Addr{}, netip.Addr{}, true, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g := f.callerOf("n", tc.user, tc.ip)
			if g.Number != "n" || (g.User != "") != tc.wantUser || (g.Source != "") != tc.wantSource {
				t.Fatalf("callerOf = %+v", g)
			}
			if tc.wantUser && (g.User == tc.user || strings.Contains(g.User, tc.user)) {
				t.Fatalf("user not hashed: %q", g.User)
			}
			if !tc.wantSource {
				return
			}
			if strings.Contains(g.Source, tc.ip.String()) {
				t.Fatalf("source not hashed: %q", g.Source)
			}
			if s := f.callerOf("n", tc.user, tc.same).Source; s != g.Source {
				t.Errorf("%v and %v are different sources", tc.ip, tc.same)
			}
			if s := f.callerOf("n", tc.user, tc.oth).Source; s == g.Source {
				t.Errorf("%v and %v are the same source", tc.ip, tc.oth)
			}
		})
	}
	if f.callerOf("n", "alice", addr("192.0.2.7")).User == f.callerOf("n", "bob", addr("192.0.2.7")).User {
		t.Error("two users share a key")
	}
	if f.KnownKey("", "G") != "" || f.KnownKey("n", "G") == f.KnownKey("n", "H") {
		t.Error("known-caller keys: withheld numbers must not be known; groups must differ")
	}
}

// How a caller is named in logs: anonymous without a number to show, the
// masked number when log.callers is masked, else a tag that is the same
// for the same number and never holds it.
func TestLabel(t *testing.T) {
	tests := []struct {
		name   string
		masked bool
		c      *call
		want   string // "" for a tag
	}{
		{"no number", false, newCall(""), "anonymous"},
		{"withheld", false, &call{number: "+15551230001", private: true}, "anonymous"},
		{"no identity source", true, &call{number: "+15551230001", noIdentity: true}, "anonymous"},
		{"masked", true, newCall("+15551230001"), "+1•••••0001"},
		{"tag", false, newCall("+15551230001"), ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newRig(t, guard.Config{}, func(c *Config) { c.MaskedCallers = tc.masked }).flow
			got := f.Label(tc.c)
			if tc.want != "" {
				if got != tc.want {
					t.Errorf("Label = %q, want %q", got, tc.want)
				}
				return
			}
			if got == "" || strings.Contains(got, "0001") || got != f.Label(newCall(tc.c.number)) || got == f.Label(newCall("+15551230002")) {
				t.Errorf("tag %q: empty, holding the number, or not one per number", got)
			}
		})
	}
}

// New requires every collaborator but the clock and names each one missing.
func TestNewRequiresCollaborators(t *testing.T) {
	_, err := New(Config{})
	if err == nil {
		t.Fatal("New accepted an empty Config")
	}
	for _, name := range []string{"Settings", "Lobby", "Join", "Guard", "Budget", "Metrics", "Log", "TagZone"} {
		if !strings.Contains(err.Error(), "Config."+name) {
			t.Errorf("the error does not name Config.%s: %v", name, err)
		}
	}
	if strings.Contains(err.Error(), "Config.Clock") {
		t.Errorf("the error names Config.Clock, which defaults to the real time: %v", err)
	}
}

// Outside its hours a group's members get in only while a facilitator is
// in the room: the flow asks the room (OnlyWithFacilitator), and a room
// that says ErrNotMeeting makes the call a "closed" refusal that tells
// when the group meets next. Facilitators, and members within the hours
// (open_early and overrun included), join as ever. The clock stands on
// Tuesday 14 November 2023, 17:13 in New York.
func TestServeClosed(t *testing.T) {
	hours := circle
	hours.Timezone, hours.Meets = "America/New_York", []string{"Tue 19:00-20:30", "Thu 12:00-13:00"}
	hours.OpenEarly, hours.Overrun = 15*time.Minute, 15*time.Minute
	tests := []struct {
		name     string
		advance  time.Duration
		pin      string
		onlyFac  bool   // the join request's OnlyWithFacilitator
		want     string // outcome
		nextTime []int  // the time said: weekday, hour, minute
	}{
		{"member before the window", 0, "1234", true, "closed", []int{2, 19, 0}},
		{"member, a facilitator in the room", 0, "1234", true, "joined", nil},
		{"facilitator before the window", 0, "9876", false, "joined", nil},
		{"member, open early", 92 * time.Minute, "1234", false, "joined", nil},
		{"member in the overrun", 3*time.Hour + 31*time.Minute, "1234", false, "joined", nil},
		{"member after the overrun", 3*time.Hour + 32*time.Minute, "1234", true, "closed", []int{4, 12, 0}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clk := testkit.NewManualClock()
			clk.Advance(tc.advance)
			r := newRig(t, guard.Config{}, func(c *Config) {
				c.Clock = clk
				prompts := c.Settings().Prompts
				st := &Settings{Groups: []group.Group{hours}, Prompts: prompts, PINFailureAlarm: 60, PINBudget: 6, PINBudgetBridge: 30}
				c.Settings = func() *Settings { return st }
			})
			m := &member{done: make(chan struct{}), keys: make(chan byte, 1), reason: "session-ended"}
			close(m.done)
			r.join = func(group.Group) (Member, error) {
				if tc.want == "closed" {
					return nil, conference.ErrNotMeeting
				}
				return m, nil
			}
			c := newCall("+15551230001")
			c.keys(tc.pin + "#")
			var before atomic.Int64 // what the PIN prompt made heard
			go func() {
				req := <-r.joins
				before.Store(c.stream.heard.Load())
				if req.OnlyWithFacilitator != tc.onlyFac {
					t.Errorf("OnlyWithFacilitator = %v, want %v", req.OnlyWithFacilitator, tc.onlyFac)
				}
			}()
			r.serve(t, c)
			if got := r.metrics.get(); !slices.Equal(got, []string{tc.want}) {
				t.Errorf("outcomes %q, want %s", got, tc.want)
			}
			if tc.want != "closed" {
				return
			}
			hangups, admitted := c.ended()
			if admitted || !slices.Equal(hangups, []string{"closed"}) {
				t.Errorf("hang-ups %q, admitted %v", hangups, admitted)
			}
			l := r.lines(t, "call not admitted")
			if len(l) != 1 || l[0]["outcome"] != "closed" || l[0]["group"] != "Circle" {
				t.Errorf("log lines %v", l)
			}
			if strings.Contains(r.log.String(), "1234") || strings.Contains(r.log.String(), "1230001") {
				t.Errorf("the log holds the PIN or the number:\n%s", r.log.String())
			}
			// What was heard after the PIN prompt is as long as the
			// sentences: not meeting now, meets next on <day> at <time>,
			// goodbye (frames holding sound; pauses are silent).
			st := r.flow.cfg.Settings()
			want := clipsOf(st, prompt.NotMeetingNow, prompt.MeetsNext)
			want = append(want, st.Prompts.Time(time.Weekday(tc.nextTime[0]), tc.nextTime[1], tc.nextTime[2])...)
			want = append(want, clipsOf(st, prompt.Goodbye)...)
			sounding := 0
			for _, clip := range want {
				for i := 0; i < len(clip); i += pcm.FrameSamples {
					if slices.ContainsFunc(clip[i:min(i+pcm.FrameSamples, len(clip))], func(v int16) bool { return v != 0 }) {
						sounding++
					}
				}
			}
			heard := int(c.stream.heard.Load() - before.Load())
			if heard < sounding-len(want) || heard > sounding+len(want) {
				t.Errorf("heard %d sounding frames, want about %d", heard, sounding)
			}
		})
	}
}
