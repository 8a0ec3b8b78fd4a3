package cluster

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/groupbridge/groupbridge/internal/testkit"
)

// client connects to srv as a node does: the ACL user and its password.
func client(t *testing.T, srv *testkit.Redis) *redis.Client {
	t.Helper()
	opt, err := redis.ParseURL(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	opt.MaxRetries = -1 // a stopped server fails at once
	c := redis.NewClient(opt)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// settle marks srv's cluster as up long ago: takes are not held back as
// after a Redis start (TestOwnersSettle).
func settle(t *testing.T, c redis.Cmdable) {
	t.Helper()
	if err := c.Set(context.Background(), "groupbridge:up", 0, 0).Err(); err != nil {
		t.Fatal(err)
	}
}

func owners(t *testing.T, c redis.Cmdable, node string, lease time.Duration) *Owners {
	t.Helper()
	o, err := NewOwners(c, node, lease)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

func TestNewOwnersRefuses(t *testing.T) {
	for _, row := range []struct {
		node  string
		lease time.Duration
	}{{"", time.Second}, {"node a", time.Second}, {"a", 10 * time.Millisecond}} {
		if _, err := NewOwners(nil, row.node, row.lease); err == nil {
			t.Errorf("NewOwners(%q, %v) accepted", row.node, row.lease)
		}
	}
}

func TestParseClaim(t *testing.T) {
	rows := []struct {
		in   string
		want Claim
		ok   bool
	}{
		{"a 1", Claim{"a", 1}, true},
		{"node-2 42", Claim{"node-2", 42}, true},
		{"a", Claim{}, false},
		{" 1", Claim{}, false},
		{"a 0", Claim{}, false},
		{"a -3", Claim{}, false},
		{"a x", Claim{}, false},
	}
	for _, row := range rows {
		got, err := parseClaim(row.in)
		if (err == nil) != row.ok || got != row.want {
			t.Errorf("parseClaim(%q) = %v, %v", row.in, got, err)
		}
	}
}

// One owner at a time, renewals only by the owner at its epoch, a lapsed
// lease taken by another node at a higher epoch, and release.
func TestOwnersLease(t *testing.T) {
	srv := testkit.StartRedis(t)
	ctx := context.Background()
	c := client(t, srv)
	settle(t, c)
	// Real time (Redis keeps the lease): renewals at a third of it leave
	// a wide margin on a loaded machine.
	lease := time.Second
	a, b := owners(t, c, "a", lease), owners(t, c, "b", lease)

	if _, ok, err := a.Owner(ctx, "Circle"); ok || err != nil {
		t.Fatalf("owner of a new room: %v %v", ok, err)
	}
	ca, took, err := a.Take(ctx, "Circle", 0)
	if err != nil || !took || ca != (Claim{"a", 1}) {
		t.Fatalf("a takes: %v %v %v", ca, took, err)
	}
	cb, took, err := b.Take(ctx, "Circle", 0)
	if err != nil || took || cb != ca {
		t.Fatalf("b takes an owned room: %v %v %v, want a's claim", cb, took, err)
	}
	if got, ok, err := b.Owner(ctx, "Circle"); !ok || err != nil || got != ca {
		t.Fatalf("b sees owner %v %v %v", got, ok, err)
	}
	if err := b.Renew(ctx, "Circle", 1); !errors.Is(err, ErrLost) {
		t.Errorf("b renews a's lease: %v", err)
	}
	if err := a.Renew(ctx, "Circle", 2); !errors.Is(err, ErrLost) {
		t.Errorf("a renews at an epoch it does not hold: %v", err)
	}
	// Renewed within the lease, a keeps the room past its first lease.
	for range 3 {
		time.Sleep(lease / 3)
		if err := a.Renew(ctx, "Circle", 1); err != nil {
			t.Fatalf("a renews: %v", err)
		}
	}
	if _, took, _ := b.Take(ctx, "Circle", 0); took {
		t.Fatal("b took a room whose lease a renewed")
	}
	// Not renewed, the lease lapses and b takes the room at epoch 2; a's
	// renewal at epoch 1 is refused from then on.
	time.Sleep(lease + 300*time.Millisecond)
	cb, took, err = b.Take(ctx, "Circle", 0)
	if err != nil || !took || cb != (Claim{"b", 2}) {
		t.Fatalf("b takes the lapsed room: %v %v %v", cb, took, err)
	}
	if err := a.Renew(ctx, "Circle", 1); !errors.Is(err, ErrLost) {
		t.Errorf("a renews after b took the room: %v", err)
	}
	if err := a.Release(ctx, "Circle", 1); !errors.Is(err, ErrLost) {
		t.Errorf("a releases b's room: %v", err)
	}
	if err := b.Release(ctx, "Circle", 2); err != nil {
		t.Fatalf("b releases: %v", err)
	}
	ca, took, err = a.Take(ctx, "Circle", 0)
	if err != nil || !took || ca.Epoch != 3 {
		t.Fatalf("a takes the released room: %v %v %v, want epoch 3", ca, took, err)
	}
	// Rooms are apart.
	if c2, took, err := b.Take(ctx, "Thursday", 0); err != nil || !took || c2 != (Claim{"b", 1}) {
		t.Errorf("b takes another room: %v %v %v", c2, took, err)
	}
}

// Many nodes at once: exactly one takes the room, and all see it.
func TestOwnersOneTakerAtOnce(t *testing.T) {
	srv := testkit.StartRedis(t)
	c := client(t, srv)
	settle(t, c)
	ctx := context.Background()
	const nodes = 8
	claims := make([]Claim, nodes)
	took := make([]bool, nodes)
	var wg sync.WaitGroup
	for i := range nodes {
		o := owners(t, c, string(rune('a'+i)), 5*time.Second)
		wg.Add(1)
		go func() {
			defer wg.Done()
			var err error
			if claims[i], took[i], err = o.Take(ctx, "Circle", 0); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	winners := 0
	for i := range nodes {
		if took[i] {
			winners++
		}
		if claims[i] != claims[0] {
			t.Errorf("node %d sees %v, node 0 %v", i, claims[i], claims[0])
		}
	}
	if winners != 1 || claims[0].Epoch != 1 {
		t.Errorf("%d nodes took the room (epoch %d), want exactly 1 at epoch 1", winners, claims[0].Epoch)
	}
}

// A Redis restart (persistence off, as it should run) loses the owners and
// the epoch counters; a node that saw epoch 5 takes the room again above
// it, so epochs never go backwards. While Redis is down every call fails
// with an error that does not hold the password.
func TestOwnersAcrossRedisRestart(t *testing.T) {
	srv := testkit.StartRedis(t)
	c := client(t, srv)
	settle(t, c)
	ctx := context.Background()
	const lease = 500 * time.Millisecond
	a := owners(t, c, "a", lease)
	var last Claim
	for range 5 {
		cl, took, err := a.Take(ctx, "Circle", 0)
		if err != nil || !took {
			t.Fatalf("take: %v %v", took, err)
		}
		if err := a.Release(ctx, "Circle", cl.Epoch); err != nil {
			t.Fatal(err)
		}
		last = cl
	}
	if last.Epoch != 5 {
		t.Fatalf("epoch after five takes: %d", last.Epoch)
	}
	srv.Stop()
	_, _, err := a.Take(ctx, "Circle", last.Epoch)
	if err == nil {
		t.Fatal("a take with Redis stopped succeeded")
	}
	if strings.Contains(err.Error(), srv.Password()) {
		t.Errorf("the error holds the password: %v", err)
	}
	srv.Start()
	// Redis forgot every owner: for a lease only a node that held a room
	// may take it back.
	if _, _, err := a.Take(ctx, "Circle", last.Epoch); !errors.Is(err, ErrSettling) {
		t.Fatalf("a take just after the restart: %v, want ErrSettling", err)
	}
	cl, took, err := a.Reassert(ctx, "Circle", last.Epoch)
	if err != nil || !took || cl.Epoch != 6 {
		t.Fatalf("re-assertion after the restart: %v %v %v, want epoch 6", cl, took, err)
	}
	// Without the floor, the emptied counter would have started again.
	b := owners(t, c, "b", lease)
	if _, _, err := b.Take(ctx, "Circle", 0); err != nil {
		t.Fatalf("another node's look at the re-asserted room: %v", err)
	}
	time.Sleep(lease)
	if cl, took, err := b.Take(ctx, "Thursday", 0); err != nil || !took || cl.Epoch != 1 {
		t.Errorf("a room no node knew, once settled: %v %v %v", cl, took, err)
	}
}

// A cluster's first use of a Redis server (its start, or a restart that
// emptied it) holds takes back for one lease: a node that held a room
// re-asserts it at once, any other take gets ErrSettling until then.
func TestOwnersSettle(t *testing.T) {
	srv := testkit.StartRedis(t)
	c := client(t, srv)
	ctx := context.Background()
	const lease = 400 * time.Millisecond
	a := owners(t, c, "a", lease)
	start := time.Now()
	if _, _, err := a.Take(ctx, "Circle", 0); !errors.Is(err, ErrSettling) {
		t.Fatalf("first take: %v, want ErrSettling", err)
	}
	if cl, took, err := a.Reassert(ctx, "Thursday", 3); err != nil || !took || cl.Epoch != 4 {
		t.Fatalf("re-assertion: %v %v %v", cl, took, err)
	}
	for {
		_, took, err := a.Take(ctx, "Circle", 0)
		if err == nil && took {
			break
		}
		if !errors.Is(err, ErrSettling) {
			t.Fatalf("take while settling: %v %v", took, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if d := time.Since(start); d < lease-50*time.Millisecond {
		t.Errorf("a take went through %v after the start; want a lease (%v)", d, lease)
	}
}
