package cluster

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/groupbridge/groupbridge/internal/conference/rules"
	"github.com/groupbridge/groupbridge/internal/group"
	"github.com/groupbridge/groupbridge/internal/testkit"
)

// text is a State that encodes to itself, counting its encodings; gate,
// when set, holds each Encode until it is closed.
type text struct {
	s     string
	n     *atomic.Int64
	gate  chan struct{}
	begun chan struct{}
}

func (t text) Encode() ([]byte, error) {
	if t.n != nil {
		t.n.Add(1)
	}
	if t.begun != nil {
		close(t.begun)
	}
	if t.gate != nil {
		<-t.gate
	}
	return []byte(t.s), nil
}

func newMirror(t *testing.T, c *testkit.Redis, node string, keep time.Duration) *Mirror {
	t.Helper()
	m, err := NewMirror(client(t, c), node, keep, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go m.Run(ctx)
	t.Cleanup(func() {
		cancel()
		_ = m.Close(context.Background())
	})
	return m
}

// eventually waits (real time: Redis is real) for cond.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

func loaded(t *testing.T, m *Mirror, room string) (string, int64, bool) {
	t.Helper()
	b, e, ok, err := m.Load(context.Background(), room)
	if err != nil {
		t.Fatal(err)
	}
	return string(b), e, ok
}

func TestNewMirrorRefuses(t *testing.T) {
	for _, row := range []struct {
		node string
		keep time.Duration
	}{{"", 0}, {"Node A", 0}, {"a", 100 * time.Millisecond}} {
		if _, err := NewMirror(nil, row.node, row.keep, nil); err == nil {
			t.Errorf("NewMirror(%q, %v) accepted", row.node, row.keep)
		}
	}
}

// The owner's writes land and Load reads them with their epoch; an old
// owner's writes and deletes after another node took the room are
// refused, and the new owner's state stands.
func TestMirrorFencing(t *testing.T) {
	srv := testkit.StartRedis(t)
	ctx := context.Background()
	c := client(t, srv)
	settle(t, c)
	oa, ob := owners(t, c, "a", time.Second), owners(t, c, "b", time.Second)
	ma, mb := newMirror(t, srv, "a", 0), newMirror(t, srv, "b", 0)

	claimA, _, err := oa.Take(ctx, "g", 0)
	if err != nil {
		t.Fatal(err)
	}
	ma.Put("g", claimA.Epoch, text{s: "a1"})
	eventually(t, "a's state", func() bool { s, _, _ := loaded(t, mb, "g"); return s == "a1" })
	if _, e, _ := loaded(t, mb, "g"); e != claimA.Epoch {
		t.Fatalf("epoch %d, want %d", e, claimA.Epoch)
	}

	// a stalls; its lease goes (released here) and b takes the room.
	if err := oa.Release(ctx, "g", claimA.Epoch); err != nil {
		t.Fatal(err)
	}
	claimB, took, err := ob.Take(ctx, "g", claimA.Epoch)
	if err != nil || !took {
		t.Fatal(took, err)
	}
	mb.Put("g", claimB.Epoch, text{s: "b1"})
	eventually(t, "b's state", func() bool { s, _, _ := loaded(t, mb, "g"); return s == "b1" })

	fenced := ma.Fenced()
	ma.Put("g", claimA.Epoch, text{s: "a2"}) // a resumes and writes
	eventually(t, "a's write refused", func() bool { return ma.Fenced() > fenced })
	ma.Delete("g", claimA.Epoch)
	eventually(t, "a's delete refused", func() bool { return ma.Fenced() > fenced+1 })
	if s, e, ok := loaded(t, mb, "g"); s != "b1" || e != claimB.Epoch || !ok {
		t.Fatalf("state %q epoch %d after the old owner wrote, want b1 at %d", s, e, claimB.Epoch)
	}
	// A node that never owned it cannot write either.
	mc := newMirror(t, srv, "c", 0)
	mc.Put("g", claimB.Epoch, text{s: "c1"})
	eventually(t, "c's write refused", func() bool { return mc.Fenced() == 1 })

	// The owner's delete (its session ended) removes it, even once it
	// released the room first.
	if err := ob.Release(ctx, "g", claimB.Epoch); err != nil {
		t.Fatal(err)
	}
	mb.Delete("g", claimB.Epoch)
	eventually(t, "the delete", func() bool { _, _, ok := loaded(t, mb, "g"); return !ok })
}

// While a write is in flight, later states wait and only the latest is
// written; one room's writes never overlap.
func TestMirrorCoalesces(t *testing.T) {
	srv := testkit.StartRedis(t)
	ctx := context.Background()
	c := client(t, srv)
	settle(t, c)
	claim, _, err := owners(t, c, "a", 5*time.Second).Take(ctx, "g", 0)
	if err != nil {
		t.Fatal(err)
	}
	m := newMirror(t, srv, "a", 0)
	var n atomic.Int64
	gate, begun := make(chan struct{}), make(chan struct{})
	m.Put("g", claim.Epoch, text{s: "v0", n: &n, gate: gate, begun: begun})
	<-begun // v0 is being written
	for i := 1; i <= 50; i++ {
		m.Put("g", claim.Epoch, text{s: "v" + strconv.Itoa(i), n: &n})
	}
	close(gate)
	eventually(t, "the latest state", func() bool { s, _, _ := loaded(t, m, "g"); return s == "v50" })
	if err := m.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := n.Load(); got != 2 {
		t.Fatalf("%d states encoded, want 2 (the one in flight and the latest)", got)
	}
	if m.Written() != 2 {
		t.Fatalf("%d writes, want 2", m.Written())
	}
}

// Close writes what waits (within its deadline) and takes nothing after;
// a state that cannot be written is retried until Redis is back.
func TestMirrorCloseFlushesAndRetries(t *testing.T) {
	srv := testkit.StartRedis(t)
	ctx := context.Background()
	c := client(t, srv)
	settle(t, c)
	claim, _, err := owners(t, c, "a", time.Minute).Take(ctx, "g", 0)
	if err != nil {
		t.Fatal(err)
	}
	m := newMirror(t, srv, "a", 0)

	srv.Stop()
	m.Put("g", claim.Epoch, text{s: "while down"})
	eventually(t, "a failed write", func() bool { return m.Failed() > 0 })
	srv.Start() // empty: the owner re-asserts its room, as after a Redis restart
	if _, took, err := owners(t, c, "a", time.Minute).Reassert(ctx, "g", claim.Epoch-1); err != nil || !took {
		t.Fatal(took, err)
	}
	eventually(t, "the retried write", func() bool {
		s, _, _, err := m.Load(ctx, "g")
		return err == nil && string(s) == "while down"
	})

	gate := make(chan struct{})
	m.Put("g", claim.Epoch, text{s: "last", gate: gate})
	time.AfterFunc(50*time.Millisecond, func() { close(gate) })
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := m.Close(cctx); err != nil {
		t.Fatal(err)
	}
	if s, _, _ := loaded(t, m, "g"); s != "last" {
		t.Fatalf("state %q after Close, want the last one", s)
	}
	m.Put("g", claim.Epoch, text{s: "after close"})
	time.Sleep(50 * time.Millisecond)
	if s, _, _ := loaded(t, m, "g"); s != "last" {
		t.Fatalf("a state put after Close was written: %q", s)
	}

	// A deadline that passes gives up on what waits.
	m2 := newMirror(t, srv, "a", 0)
	stuck := make(chan struct{})
	defer close(stuck)
	m2.Put("g", claim.Epoch, text{s: "stuck", gate: stuck})
	short, cancel2 := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel2()
	done := make(chan error, 1)
	go func() { done <- m2.Close(short) }()
	time.Sleep(100 * time.Millisecond)
	stuck <- struct{}{} // let the encode return; its write is canceled
	if err := <-done; !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Close past its deadline: %v", err)
	}
}

// A written state outlives keep while its owner has the room (refreshed),
// and lapses once the room is another node's.
func TestMirrorKeepsItsStatesAlive(t *testing.T) {
	srv := testkit.StartRedis(t)
	ctx := context.Background()
	c := client(t, srv)
	settle(t, c)
	oa := owners(t, c, "a", time.Minute)
	claim, _, err := oa.Take(ctx, "g", 0)
	if err != nil {
		t.Fatal(err)
	}
	keep := 300 * time.Millisecond
	m := newMirror(t, srv, "a", keep)
	m.Put("g", claim.Epoch, text{s: "s"})
	eventually(t, "the state", func() bool { _, _, ok := loaded(t, m, "g"); return ok })
	time.Sleep(4 * keep)
	if _, _, ok := loaded(t, m, "g"); !ok {
		t.Fatal("the owner's state lapsed")
	}
	if err := oa.Release(ctx, "g", claim.Epoch); err != nil {
		t.Fatal(err)
	}
	if _, _, err := owners(t, c, "b", time.Minute).Take(ctx, "g", claim.Epoch); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the state to lapse", func() bool { _, _, ok := loaded(t, m, "g"); return !ok })
}

// Load refuses a stored value that is not one the mirror wrote.
func TestMirrorLoadRefusesGarbage(t *testing.T) {
	srv := testkit.StartRedis(t)
	ctx := context.Background()
	c := client(t, srv)
	settle(t, c)
	m := newMirror(t, srv, "a", 0)
	if _, _, ok, err := m.Load(ctx, "none"); ok || err != nil {
		t.Fatalf("Load of nothing: %v, %v", ok, err)
	}
	for i, fields := range [][]any{{"epoch", "x", "snap", "{}"}, {"epoch", "0", "snap", "{}"}, {"snap", "{}"}, {"epoch", "3"}} {
		key := "groupbridge:room:bad" + strconv.Itoa(i) + ":state"
		if err := c.HSet(ctx, key, fields...).Err(); err != nil {
			t.Fatal(err)
		}
		if _, _, _, err := m.Load(ctx, "bad"+strconv.Itoa(i)); err == nil {
			t.Errorf("Load of %v accepted", fields)
		}
	}
	if err := c.Set(ctx, "groupbridge:room:str:state", "x", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := m.Load(ctx, "str"); err == nil {
		t.Error("Load of a string key accepted")
	}
}

// A room's snapshot goes through the mirror and back as it was.
func TestMirrorCarriesASnapshot(t *testing.T) {
	srv := testkit.StartRedis(t)
	ctx := context.Background()
	c := client(t, srv)
	settle(t, c)
	claim, _, err := owners(t, c, "a", time.Minute).Take(ctx, "g", 0)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Date(2026, 3, 1, 18, 0, 0, 0, time.UTC)
	s := rules.New(rules.Config{LedBy: group.LedByPeer}, start)
	s.Join("id-1", group.Facilitator, start)
	s.Join("id-2", group.Member, start.Add(time.Second))
	snap := s.Snapshot(start.Add(2 * time.Second))
	snap.Start = start
	m := newMirror(t, srv, "a", 0)
	m.Put("g", claim.Epoch, snap)
	eventually(t, "the snapshot", func() bool { _, _, ok := loaded(t, m, "g"); return ok })
	b, epoch, _, err := m.Load(ctx, "g")
	if err != nil || epoch != claim.Epoch {
		t.Fatal(epoch, err)
	}
	back, err := rules.DecodeSnapshot(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(back.Seats) != 2 || back.Seats[0].Identity != "id-1" || back.Seats[1].Role != group.Member || !back.Start.Equal(start) {
		t.Fatalf("snapshot back %+v", back)
	}
}
