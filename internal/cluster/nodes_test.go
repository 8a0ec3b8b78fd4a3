package cluster

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/groupbridge/groupbridge/internal/testkit"
	"github.com/groupbridge/groupbridge/internal/wallclock"
)

func nodes(t *testing.T, c redis.Cmdable, self NodeInfo, lease time.Duration, clk wallclock.Clock) *Nodes {
	t.Helper()
	n, err := NewNodes(c, self, lease, clk)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestNewNodesRefuses(t *testing.T) {
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	defer c.Close()
	ok := NodeInfo{Name: "a", Listen: "127.0.0.1:5070"}
	rows := []struct {
		name  string
		self  NodeInfo
		lease time.Duration
		key   string
	}{
		{"empty name", NodeInfo{Listen: ok.Listen}, time.Second, "cluster.node"},
		{"capital", NodeInfo{Name: "A", Listen: ok.Listen}, time.Second, "cluster.node"},
		{"long name", NodeInfo{Name: strings.Repeat("a", 33), Listen: ok.Listen}, time.Second, "cluster.node"},
		{"glob in name", NodeInfo{Name: "a*", Listen: ok.Listen}, time.Second, "cluster.node"},
		{"no port", NodeInfo{Name: "a", Listen: "127.0.0.1"}, time.Second, "cluster.listen"},
		{"short lease", ok, 50 * time.Millisecond, "cluster.lease"},
	}
	for _, row := range rows {
		if _, err := NewNodes(c, row.self, row.lease, nil); err == nil || !strings.Contains(err.Error(), row.key) {
			t.Errorf("%s: %v, want an error naming %s", row.name, err, row.key)
		}
	}
	if _, err := NewNodes(c, ok, time.Second, nil); err != nil {
		t.Errorf("valid node refused: %v", err)
	}
}

func TestNodesBeatGetList(t *testing.T) {
	srv := testkit.StartRedis(t)
	ctx := context.Background()
	c := client(t, srv)
	started := time.Unix(1_800_000_000, 0)
	lease := 2 * time.Second
	a := nodes(t, c, NodeInfo{Name: "a", Listen: "127.0.0.1:5070", Admin: "127.0.0.1:8080", Started: started}, lease, nil)
	b := nodes(t, client(t, srv), NodeInfo{Name: "b-2", Listen: "127.0.0.2:5070"}, lease, nil)
	// Noise for SCAN to walk past, over several pages.
	for i := range 300 {
		if err := c.Set(ctx, fmt.Sprintf("groupbridge:room:r%d:owner", i), "x 1", time.Minute).Err(); err != nil {
			t.Fatal(err)
		}
	}
	if l, err := a.List(ctx); err != nil || len(l) != 0 {
		t.Fatalf("no heartbeats yet: %v, %v", l, err)
	}
	for _, n := range []*Nodes{a, b} {
		if err := n.Beat(ctx); err != nil {
			t.Fatal(err)
		}
	}
	got, ok, err := b.Get(ctx, "a")
	want := NodeInfo{Name: "a", Listen: "127.0.0.1:5070", Admin: "127.0.0.1:8080", Started: started}
	if err != nil || !ok || got != want {
		t.Errorf("Get(a) = %+v, %v, %v; want %+v", got, ok, err, want)
	}
	if _, ok, err := b.Get(ctx, "c"); ok || err != nil {
		t.Errorf("Get(c) = %v, %v; want absent", ok, err)
	}
	if ttl, err := c.PTTL(ctx, nodePrefix+"a").Result(); err != nil || ttl <= 2*lease || ttl > 3*lease {
		t.Errorf("heartbeat TTL %v, %v; want 3*lease", ttl, err)
	}
	raw, err := c.Get(ctx, nodePrefix+"a").Result()
	if err != nil || raw != `{"listen":"127.0.0.1:5070","admin":"127.0.0.1:8080","started":1800000000,"draining":false}` {
		t.Errorf("record %s, %v", raw, err)
	}
	l, err := a.List(ctx)
	if err != nil || len(l) != 2 || l[0] != want || l[1].Name != "b-2" || l[1].Listen != "127.0.0.2:5070" {
		t.Errorf("List = %+v, %v", l, err)
	}
	// A record that is not a node's is an error, naming the node.
	if err := c.Set(ctx, nodePrefix+"x", "nonsense", time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := a.List(ctx); err == nil || !strings.Contains(err.Error(), `"x"`) {
		t.Errorf("List with a bad record: %v", err)
	}
}

// Run beats at once, on its timer and on SetDraining, and removes the
// record when it ends.
func TestNodesRun(t *testing.T) {
	srv := testkit.StartRedis(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c := client(t, srv)
	clk := testkit.NewManualClock()
	lease := 3 * time.Second
	n := nodes(t, c, NodeInfo{Name: "a", Listen: "127.0.0.1:5070"}, lease, clk)
	if !n.Self().Started.Equal(clk.Now()) {
		t.Errorf("Started %v, want the clock's %v", n.Self().Started, clk.Now())
	}
	done := make(chan struct{})
	go func() { n.Run(ctx); close(done) }()
	waitFor := func(what string, f func() bool) {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); !f(); {
			if time.Now().After(deadline) {
				t.Fatalf("%s: not within 5 s", what)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	present := func() bool { _, ok, err := n.Get(ctx, "a"); return ok && err == nil }
	waitFor("first beat", present)

	if err := c.Del(ctx, nodePrefix+"a").Err(); err != nil {
		t.Fatal(err)
	}
	waitFor("timer armed", func() bool { return clk.Armed(lease/3) == 1 })
	clk.Advance(lease / 3)
	waitFor("beat on the timer", present)

	n.SetDraining(true)
	waitFor("draining written", func() bool { ni, ok, _ := n.Get(ctx, "a"); return ok && ni.Draining })
	if err := n.Err(); err != nil {
		t.Errorf("Err = %v", err)
	}

	srv.Stop()
	n.SetDraining(false)
	waitFor("failed beat reported", func() bool { return n.Err() != nil })
	srv.Start()
	clk.Advance(lease / 3)
	waitFor("beat after Redis is back", func() bool { return n.Err() == nil && present() })

	cancel()
	<-done
	if _, ok, err := n.Get(context.Background(), "a"); ok || err != nil {
		t.Errorf("after Run: record present %v, %v", ok, err)
	}
}

func FuzzDecodeNode(f *testing.F) {
	f.Add("a", `{"listen":"127.0.0.1:5070","admin":"","started":1800000000,"draining":true}`)
	f.Add("b", `{"listen":"[::1]:5070"}`)
	f.Add("c", `{"started":"x"}`)
	f.Fuzz(func(t *testing.T, name, v string) {
		ni, err := decodeNode(name, v)
		if err != nil {
			return
		}
		if ni.Name != name {
			t.Fatalf("name %q, want %q", ni.Name, name)
		}
	})
}
