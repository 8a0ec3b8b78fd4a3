package cluster

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/groupbridge/groupbridge/internal/guard"
	"github.com/groupbridge/groupbridge/internal/testkit"
)

var g0 = time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)

// node is one node's guard side: its own Redis connection and store, its
// PIN guard and its budget, as internal/app would hold them.
type node struct {
	store  *GuardStore
	pins   *guard.PINGuard
	budget *guard.Budget
	log    *testkit.LogBuffer
}

func newNode(t *testing.T, srv *testkit.Redis) *node {
	t.Helper()
	n := &node{log: &testkit.LogBuffer{}}
	n.store = NewGuardStore(client(t, srv), slog.New(slog.NewTextHandler(n.log, nil)))
	n.pins = guard.New(guard.Config{Shared: n.store})
	n.budget = guard.NewBudget(guard.BudgetConfig{Shared: n.store})
	return n
}

// Failures spread over two nodes block a caller, and raise the rate alarms,
// at the count at which one node alone does.
func TestGuardStoreSharesPINLimits(t *testing.T) {
	srv := testkit.StartRedis(t)
	a, b := newNode(t, srv), newNode(t, srv)
	type alarmAt struct{ bridge, group int } // the failure (1-based) that raises each; 0: none
	rows := []struct {
		name   string
		caller func(i int) guard.Caller
		group  func(i int) string
		// blockAt is the failure that blocks the caller (0: none); alarm
		// the failures that raise the alarms.
		blockAt int
		alarm   alarmAt
		count   int
	}{
		{name: "caller number", caller: func(int) guard.Caller { return guard.Caller{Number: "id-one"} },
			blockAt: 10, count: 12},
		{name: "digest user, rotating numbers", caller: func(i int) guard.Caller {
			return guard.Caller{Number: "id-" + string(rune('a'+i)), User: "user-one"}
		}, blockAt: 10, count: 12},
		{name: "source, rotating numbers", caller: func(i int) guard.Caller {
			return guard.Caller{Number: "id-" + string(rune('a'+i)), Source: "source-one"}
		}, blockAt: 30, count: 32},
		{name: "withheld numbers", caller: func(int) guard.Caller { return guard.Caller{} },
			blockAt: 30, count: 32},
		{name: "bridge-wide rate", caller: func(i int) guard.Caller {
			return guard.Caller{PerCall: true}
		}, alarm: alarmAt{bridge: 61}, count: 70},
		{name: "group's rate, the bridge's from the same failures", caller: func(int) guard.Caller {
			return guard.Caller{PerCall: true}
		}, group: func(int) string { return "Circle" }, alarm: alarmAt{bridge: 61, group: 61}, count: 70},
		{name: "one group's rate apart from another's", caller: func(int) guard.Caller {
			return guard.Caller{PerCall: true}
		}, group: func(i int) string { return []string{"Circle", "Thursday"}[i%4/2] }, alarm: alarmAt{bridge: 61, group: 0}, count: 70},
	}
	for r, row := range rows {
		t.Run(row.name, func(t *testing.T) {
			// Each row an hour apart: no window of one reaches the next.
			start := g0.Add(time.Duration(r) * time.Hour)
			lone := guard.New(guard.Config{})
			group := func(i int) string {
				if row.group == nil {
					return ""
				}
				return row.group(i)
			}
			run := func(fail func(i int, c guard.Caller, group string, now time.Time) (bool, guard.Alarm),
				blocked func(i int, c guard.Caller, now time.Time) bool) (blockAt int, alarm alarmAt) {
				for i := range row.count {
					now := start.Add(time.Duration(i) * 100 * time.Millisecond)
					c := row.caller(i)
					was := blocked(i, c, now)
					got, al := fail(i, c, group(i), now)
					if got && !was && blockAt == 0 {
						blockAt = i + 1
					}
					if al.Bridge && alarm.bridge == 0 {
						alarm.bridge = i + 1
					}
					if al.Group && alarm.group == 0 {
						alarm.group = i + 1
					}
				}
				return blockAt, alarm
			}
			wantBlock, wantAlarm := run(func(_ int, c guard.Caller, g string, now time.Time) (bool, guard.Alarm) {
				return lone.Fail(c, g, now)
			}, func(_ int, c guard.Caller, now time.Time) bool { b, _ := lone.Blocked(c, now); return b })
			if wantBlock != row.blockAt || wantAlarm != row.alarm {
				t.Fatalf("one node: blocked at %d, alarms at %+v; the row expects %d, %+v",
					wantBlock, wantAlarm, row.blockAt, row.alarm)
			}
			nodes := []*node{a, b}
			gotBlock, gotAlarm := run(func(i int, c guard.Caller, g string, now time.Time) (bool, guard.Alarm) {
				return nodes[i%2].pins.Fail(c, g, now)
			}, func(i int, c guard.Caller, now time.Time) bool { b, _ := nodes[i%2].pins.Blocked(c, now); return b })
			if gotBlock != wantBlock || gotAlarm != wantAlarm {
				t.Errorf("two nodes: blocked at %d, alarms at %+v; one node: %d, %+v", gotBlock, gotAlarm, wantBlock, wantAlarm)
			}
			if row.blockAt > 0 {
				// Both nodes refuse the caller, until the lockout ends.
				c := row.caller(row.count)
				end := start.Add(time.Duration(row.count) * 100 * time.Millisecond)
				for i, n := range nodes {
					if blocked, _ := n.pins.Blocked(c, end); !blocked {
						t.Errorf("node %d lets the blocked caller in", i)
					}
					if blocked, _ := n.pins.Blocked(c, end.Add(16*time.Minute)); blocked {
						t.Errorf("node %d still blocks the caller after the lockout", i)
					}
				}
			}
		})
	}
	if n := a.store.Fallbacks() + b.store.Fallbacks(); n != 0 {
		t.Errorf("%d operations fell back to local counts with Redis up", n)
	}
}

// Two nodes' budgets are one: a number's and the bridge's attack start at
// the failure at which one node's would, hold through a pause whichever
// node sees the next burst, and the paced answers of both nodes together
// come one per interval.
func TestGuardStoreOneBudget(t *testing.T) {
	srv := testkit.StartRedis(t)
	a, b := newNode(t, srv), newNode(t, srv)
	nodes := []*node{a, b}
	rows := []struct {
		name    string
		number  func(i int) string
		spacing time.Duration
		startAt int // the failure that starts the attack
		count   int
	}{
		{"one number's budget", func(int) string { return "Circle" }, time.Second, 7, 10},
		{"the shared access number's", func(int) string { return "" }, time.Second, 7, 10},
		// Ten numbers, each within its own budget: the bridge's trips.
		{"the bridge's budget", func(i int) string { return "group-" + string(rune('0'+i%10)) }, time.Second, 31, 40},
		{"within the budget", func(int) string { return "Thursday" }, 11 * time.Second, 0, 30},
	}
	for r, row := range rows {
		t.Run(row.name, func(t *testing.T) {
			start := g0.Add(time.Duration(r) * time.Hour)
			lone := guard.NewBudget(guard.BudgetConfig{})
			run := func(fail func(i int, number string, now time.Time) bool) int {
				at := 0
				for i := range row.count {
					if fail(i, row.number(i), start.Add(time.Duration(i)*row.spacing)) && at == 0 {
						at = i + 1
					}
				}
				return at
			}
			want := run(func(_ int, n string, now time.Time) bool { return lone.Fail(n, now) })
			if want != row.startAt {
				t.Fatalf("one node: attack at failure %d, the row expects %d", want, row.startAt)
			}
			got := run(func(i int, n string, now time.Time) bool { return nodes[i%2].budget.Fail(n, now) })
			if got != want {
				t.Fatalf("two nodes: attack at failure %d, one node at %d", got, want)
			}
			if want == 0 {
				return
			}
			// A minute's pause: the attack holds on both nodes (the ten
			// minutes' count is over budget), then ends on both.
			end := start.Add(time.Duration(row.count) * row.spacing)
			for i, n := range nodes {
				if !n.budget.UnderAttack(row.number(0), end.Add(time.Minute)) {
					t.Errorf("node %d: the attack ended after a minute's pause", i)
				}
			}
			for i, n := range nodes {
				if n.budget.UnderAttack(row.number(0), end.Add(11*time.Minute)) {
					t.Errorf("node %d: the attack holds after ten quiet minutes", i)
				}
			}
		})
	}

	// Pacing: under attack, four calls on each node submit a PIN at once;
	// the answers of both nodes together come one per interval (10 s at
	// the default 6 a minute), as one node's would.
	start := g0.Add(time.Duration(len(rows)) * time.Hour)
	for i := range 7 {
		nodes[i%2].budget.Fail("Pacing", start.Add(time.Duration(i)*time.Second))
	}
	now := start.Add(7 * time.Second)
	var gates []*guard.Gate
	for i := range 8 {
		g := nodes[i%2].budget.Gate("Pacing", now)
		defer g.Close()
		if wait, ok := g.Admit(now); !wait || !ok {
			t.Fatalf("gate %d: Admit under attack = %v, %v; want a wait", i, wait, ok)
		}
		gates = append(gates, g)
	}
	var answers []time.Time
	done := make([]bool, len(gates))
	for step := 0; len(answers) < len(gates) && step < 600; step++ {
		now = now.Add(time.Second)
		for i, g := range gates {
			if done[i] {
				continue
			}
			if ready, _ := g.Ready(now); ready {
				done[i] = true
				answers = append(answers, now)
			}
		}
	}
	if len(answers) != len(gates) {
		t.Fatalf("%d of %d answers given in 10 minutes", len(answers), len(gates))
	}
	for i := 1; i < len(answers); i++ {
		if gap := answers[i].Sub(answers[i-1]); gap < 10*time.Second {
			t.Errorf("answers %d and %d %v apart across the nodes, want >= 10s", i, i+1, gap)
		}
	}
	if last := answers[len(answers)-1].Sub(answers[0]); last > 8*10*time.Second {
		t.Errorf("eight answers took %v: the nodes slow each other beyond the pacing", last)
	}
}

// Redis stopped: each node still blocks by its own counts, and says so in
// the log once; Redis back: the nodes share again.
func TestGuardStoreRedisDownAndBack(t *testing.T) {
	srv := testkit.StartRedis(t)
	a, b := newNode(t, srv), newNode(t, srv)
	caller := guard.Caller{Number: "id-one"}
	now := g0
	step := func() time.Time { now = now.Add(time.Second); return now }
	// Four failures on each node, shared: 8 of the 10.
	for range 4 {
		a.pins.Fail(caller, "", step())
		b.pins.Fail(caller, "", step())
	}
	srv.Stop()
	// Node a alone: its own four and five more are 9, not blocked; the
	// sixth is its tenth.
	for i := range 5 {
		if blocked, _ := a.pins.Fail(caller, "", step()); blocked {
			t.Fatalf("Redis down: node a blocks after %d of its own failures", 5+i)
		}
	}
	if blocked, _ := a.pins.Fail(caller, "", step()); !blocked {
		t.Fatal("Redis down: node a does not block at its own tenth failure")
	}
	if blocked, _ := b.pins.Blocked(caller, step()); blocked {
		t.Error("Redis down: node b blocks a caller it saw fail 4 times")
	}
	// Node b's budget still starts an attack on its own count.
	started := 0
	for i := range 7 {
		if b.budget.Fail("Circle", step()) {
			started = i + 1
		}
	}
	if started != 7 {
		t.Errorf("Redis down: node b's budget attack at failure %d, want 7", started)
	}
	if a.store.Fallbacks() == 0 || b.store.Fallbacks() == 0 {
		t.Errorf("fallbacks not counted: a %d, b %d", a.store.Fallbacks(), b.store.Fallbacks())
	}
	for name, n := range map[string]*node{"a": a, "b": b} {
		if got := strings.Count(n.log.String(), "Redis failed"); got != 1 {
			t.Errorf("node %s logged the outage %d times, want once:\n%s", name, got, n.log.String())
		}
		if strings.Contains(n.log.String(), srv.Password()) {
			t.Errorf("node %s logged the Redis password", name)
		}
	}

	srv.Start() // empty: persistence is off
	now = now.Add(GuardRetry)
	other := guard.Caller{Number: "id-two"}
	for i := range 9 {
		if blocked, _ := []*node{a, b}[i%2].pins.Fail(other, "", step()); blocked {
			t.Fatalf("Redis back: blocked after %d failures", i+1)
		}
	}
	if blocked, _ := b.pins.Fail(other, "", step()); !blocked {
		t.Fatal("Redis back: 10 failures over two nodes do not block")
	}
	if blocked, _ := a.pins.Blocked(other, step()); !blocked {
		t.Error("Redis back: node a lets in a caller blocked through node b")
	}
	for name, n := range map[string]*node{"a": a, "b": b} {
		if !strings.Contains(n.log.String(), "Redis answers again") {
			t.Errorf("node %s did not log Redis's return:\n%s", name, n.log.String())
		}
	}
}

// While Redis is left alone after a failure, operations do not reach it;
// after GuardRetry the next one does.
func TestGuardStoreLeavesRedisAlone(t *testing.T) {
	srv := testkit.StartRedis(t)
	s := NewGuardStore(client(t, srv), nil)
	srv.Stop()
	if _, err := s.Rate("rate:", g0, 1); err == nil {
		t.Fatal("Rate with Redis stopped succeeded")
	}
	srv.Start()
	if _, err := s.Rate("rate:", g0.Add(GuardRetry-time.Millisecond), 1); err == nil {
		t.Error("Redis was asked again within GuardRetry")
	}
	if n, err := s.Rate("rate:", g0.Add(GuardRetry), 1); err != nil || n != 1 {
		t.Errorf("after GuardRetry: %d, %v; want 1, nil", n, err)
	}
	if got := s.Fallbacks(); got != 2 {
		t.Errorf("Fallbacks() = %d, want 2", got)
	}
}

// Redis holds no identity or group name, and every key expires within the
// guard's memory of it.
func TestGuardStoreKeys(t *testing.T) {
	srv := testkit.StartRedis(t)
	n := newNode(t, srv)
	c := guard.Caller{Number: "id-secret-number", User: "id-secret-user", Source: "id-secret-source"}
	for i := range 12 {
		now := g0.Add(time.Duration(i) * time.Second)
		n.pins.Fail(c, "SecretGroup", now)
		gate := n.budget.Gate("SecretGroup", now)
		gate.Fail(now)
		gate.Admit(now)
		gate.Close()
	}
	rdb := client(t, srv)
	ctx := context.Background()
	keys, err := rdb.Keys(ctx, "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) == 0 {
		t.Fatal("nothing in Redis")
	}
	for _, k := range keys {
		if !strings.HasPrefix(k, "groupbridge:guard:") {
			t.Errorf("key %q outside groupbridge:guard:", k)
		}
		if strings.Contains(k, "secret") || strings.Contains(k, "Secret") {
			t.Errorf("key %q names what it counts", k)
		}
		ttl, err := rdb.PTTL(ctx, k).Result()
		if err != nil || ttl <= 0 || ttl > 15*time.Minute {
			t.Errorf("key %q expires in %v (%v), want within the 15-minute memory", k, ttl, err)
		}
		dump, _ := rdb.Dump(ctx, k).Result()
		if strings.Contains(dump, "secret") || strings.Contains(dump, "Secret") {
			t.Errorf("key %q holds what it counts", k)
		}
	}
}
