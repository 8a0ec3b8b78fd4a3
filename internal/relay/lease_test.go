package relay

import (
	"context"
	"log/slog"
	"net/netip"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/groupbridge/groupbridge/internal/callflow"
	"github.com/groupbridge/groupbridge/internal/cluster"
	"github.com/groupbridge/groupbridge/internal/conference"
	"github.com/groupbridge/groupbridge/internal/group"
	"github.com/groupbridge/groupbridge/internal/testkit"
	"github.com/groupbridge/groupbridge/internal/testports"
	"github.com/groupbridge/groupbridge/media/clock"
	"github.com/groupbridge/groupbridge/media/g711"
	"github.com/groupbridge/groupbridge/media/prompt"
	"github.com/groupbridge/groupbridge/media/rtpio"
)

const (
	testSecret = "the relay tests' cluster secret, long enough"
	testLease  = 300 * time.Millisecond
)

// node is a Router with the real parts around it: Redis, rooms on a
// running media clock, an RTP engine. No SIP: these callers join rooms
// here, which is all the leases need.
type node struct {
	r      *Router
	conf   *conference.Conference
	engine *rtpio.Engine
}

func newNode(t *testing.T, srv *testkit.Redis, name string) *node {
	t.Helper()
	opt, err := redis.ParseURL(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	opt.MaxRetries = -1
	rdb := redis.NewClient(opt)
	t.Cleanup(func() { _ = rdb.Close() })
	owners, err := cluster.NewOwners(rdb, name, testLease)
	if err != nil {
		t.Fatal(err)
	}
	nodes, err := cluster.NewNodes(rdb, cluster.NodeInfo{Name: name, Listen: "127.0.0.1:5070"}, testLease, nil)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := cluster.NewSigner(testSecret, rdb, nil)
	if err != nil {
		t.Fatal(err)
	}
	set, err := prompt.Builtin("en")
	if err != nil {
		t.Fatal(err)
	}
	clk := clock.New(0, nil, nil)
	conf := conference.New(conference.Config{Media: clk, Prompts: set, Log: slog.New(slog.DiscardHandler),
		Audio: conference.Audio{MaxTalkers: 4}})
	clk.Start()
	base := testports.Range(t, 20)
	engine, err := rtpio.NewEngine(rtpio.Config{Address: netip.MustParseAddr("127.0.0.1"), PortMin: base, PortMax: base + 19})
	if err != nil {
		t.Fatal(err)
	}
	r, err := New(Config{Node: name, Owners: owners, Nodes: nodes, Signer: signer, Conf: conf, Engine: engine,
		Lease: testLease, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		conf.Close()
		r.Close()
		clk.Stop()
		_ = engine.Close()
	})
	return &node{r: r, conf: conf, engine: engine}
}

// caller is a call whose stream is real but whose far end is nobody.
type caller struct {
	id     string
	ctx    context.Context
	stream *rtpio.Stream
}

func (c *caller) ID() string               { return c.id }
func (c *caller) Context() context.Context { return c.ctx }
func (c *caller) Stream() *rtpio.Stream    { return c.stream }
func (c *caller) Codec() g711.Codec        { return g711.PCMU }
func (c *caller) TelephoneEvent() int      { return 101 }

func (n *node) call(t *testing.T, id string) *caller {
	t.Helper()
	s, err := n.engine.Open(rtpio.Params{Codec: g711.PCMU, AudioPT: 0, DTMFPT: 101, CallID: id})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() { cancel(); _ = s.Close() })
	return &caller{id: id, ctx: ctx, stream: s}
}

func settled(t *testing.T, srv *testkit.Redis) *redis.Client {
	t.Helper()
	opt, _ := redis.ParseURL(srv.URL())
	c := redis.NewClient(opt)
	t.Cleanup(func() { _ = c.Close() })
	if err := c.Set(context.Background(), "groupbridge:up", 0, 0).Err(); err != nil {
		t.Fatal(err)
	}
	return c
}

var circle = group.Group{Name: "Circle", MemberPIN: "1234", LedBy: "peer"}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within 5 s: %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func doneWith(t *testing.T, m callflow.Member, reason string) {
	t.Helper()
	select {
	case <-m.Done():
	case <-time.After(5 * time.Second):
		t.Fatalf("the member was not let go (want %q)", reason)
	}
	if m.Reason() != reason {
		t.Fatalf("let go with %q, want %q", m.Reason(), reason)
	}
}

// The first caller's node takes the room and keeps its lease while the
// room lives; another node sees the claim; the lease is given up when the
// room has ended.
func TestLeaseHeldWhileTheRoomLives(t *testing.T) {
	srv := testkit.StartRedis(t)
	rdb := settled(t, srv)
	a := newNode(t, srv, "a")
	c := a.call(t, "c1")
	m, err := a.r.Join(c, circle, conference.JoinRequest{Stream: c.stream, Role: group.Member, Identity: "id-1"})
	if err != nil {
		t.Fatal(err)
	}
	epoch, ok := a.r.Owns("Circle")
	if !ok || epoch != 1 {
		t.Fatalf("Owns: %d %v", epoch, ok)
	}
	time.Sleep(3 * testLease) // renewed, not lapsed
	b, _ := cluster.NewOwners(rdb, "b", testLease)
	if cl, took, err := b.Take(context.Background(), "Circle", 0); err != nil || took || cl != (cluster.Claim{Node: "a", Epoch: 1}) {
		t.Fatalf("b's take of a's room: %v %v %v", cl, took, err)
	}
	m.Leave()
	waitFor(t, "the lease given up after the room ended", func() bool {
		_, owned, err := b.Owner(context.Background(), "Circle")
		return err == nil && !owned
	})
	if _, ok := a.r.Owns("Circle"); ok {
		t.Error("a still holds the ended room")
	}
}

// A node that finds its lease taken by another node (it stalled past the
// lease) gives the room up: its callers are let go as moved, to follow the
// room; no record of the session is its to make.
func TestLeaseLostHandsTheRoomOver(t *testing.T) {
	srv := testkit.StartRedis(t)
	rdb := settled(t, srv)
	a := newNode(t, srv, "a")
	c := a.call(t, "c1")
	m, err := a.r.Join(c, circle, conference.JoinRequest{Stream: c.stream, Role: group.Member, Identity: "id-1"})
	if err != nil {
		t.Fatal(err)
	}
	// b took the room at a higher epoch while a was away.
	if err := rdb.Set(context.Background(), "groupbridge:room:Circle:owner", "b 2", 0).Err(); err != nil {
		t.Fatal(err)
	}
	doneWith(t, m, conference.ReasonMoved)
	if _, ok := a.r.Owns("Circle"); ok || a.conf.Has("Circle") {
		t.Error("a kept the room")
	}
}

// Redis restarted empty: the owner takes its room back at a higher epoch,
// and its caller stays seated.
func TestLeaseReassertedAfterRedisRestart(t *testing.T) {
	srv := testkit.StartRedis(t)
	settled(t, srv)
	a := newNode(t, srv, "a")
	c := a.call(t, "c1")
	m, err := a.r.Join(c, circle, conference.JoinRequest{Stream: c.stream, Role: group.Member, Identity: "id-1"})
	if err != nil {
		t.Fatal(err)
	}
	srv.Stop()
	time.Sleep(testLease)
	srv.Start()
	waitFor(t, "the room taken back above epoch 1", func() bool {
		e, ok := a.r.Owns("Circle")
		return ok && e > 1
	})
	select {
	case <-m.Done():
		t.Fatalf("the caller was let go: %s", m.Reason())
	default:
	}
	m.Leave()
}

// At the relay: a hang-up from a leg whose owner is no longer the room's
// (an old owner that resumed after its lease moved on) is not obeyed; the
// caller follows the room. The current owner's word stands, even at a
// higher epoch of the same node (it took the room back after a Redis
// restart), and so does any word while Redis cannot say.
func TestStaleOwnersWordDropped(t *testing.T) {
	srv := testkit.StartRedis(t)
	rdb := settled(t, srv)
	a := newNode(t, srv, "a")
	set := func(v string) {
		t.Helper()
		if err := rdb.Set(context.Background(), "groupbridge:room:Circle:owner", v, 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	old := cluster.Claim{Node: "b", Epoch: 3}
	for _, tc := range []struct {
		name, owner, reason, want string
	}{
		{"the owner removes the caller", "b 3", "removed", "removed"},
		{"the owner ends the session", "b 3", "ended-by-facilitator", "ended-by-facilitator"},
		{"the owner took it back higher", "b 4", "session-ended", "session-ended"},
		{"another node took the room", "c 4", "session-ended", conference.ReasonMoved},
		{"nobody owns it", "", "grace-expired", conference.ReasonMoved},
		{"the owner went away", "b 3", "", conference.ReasonMoved},
		{"the owner stopped", "b 3", "room-closed", conference.ReasonMoved},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.owner == "" {
				_ = rdb.Del(context.Background(), "groupbridge:room:Circle:owner")
			} else {
				set(tc.owner)
			}
			before := a.r.StaleWords()
			if got := a.r.ending("Circle", old, tc.reason); got != tc.want {
				t.Errorf("ending %q = %q, want %q", tc.reason, got, tc.want)
			}
			dropped := a.r.StaleWords() - before
			if want := tc.want == conference.ReasonMoved && tc.reason != "" && tc.reason != "room-closed"; dropped != map[bool]uint64{true: 1}[want] {
				t.Errorf("%d words counted as stale", dropped)
			}
		})
	}
	srv.Stop()
	if got := a.r.ending("Circle", old, "removed"); got != "removed" {
		t.Errorf("with Redis down: %q, want the word to stand", got)
	}
}

// A node whose renewals stopped for a whole lease (it was stalled) holds
// its room still until a renewal says whether the room is still its own;
// one whose renewals fail for want of Redis does not.
func TestFencedAfterAStall(t *testing.T) {
	srv := testkit.StartRedis(t)
	settled(t, srv)
	a := newNode(t, srv, "a")
	c := a.call(t, "c1")
	m, err := a.r.Join(c, circle, conference.JoinRequest{Stream: c.stream, Role: group.Member, Identity: "id-1"})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Leave()
	if a.r.Fenced("Circle") || a.r.Fenced("Other") {
		t.Fatal("fenced while renewing")
	}
	h := a.r.holding("Circle")
	h.tried.Store(time.Now().Add(-2 * testLease).UnixNano()) // as after a stall
	if !a.r.Fenced("Circle") {
		t.Fatal("not fenced after a lease without a renewal")
	}
	waitFor(t, "the next renewal lifts the fence", func() bool { return !a.r.Fenced("Circle") })
	srv.Stop()
	time.Sleep(3 * testLease)
	if a.r.Fenced("Circle") {
		t.Error("fenced while Redis is down: the room must go on")
	}
}
