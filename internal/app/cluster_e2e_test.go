package app

import (
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/groupbridge/groupbridge/internal/softphone"
	"github.com/groupbridge/groupbridge/internal/testkit"
)

// A cluster of nodes in this process (each a whole bridge on its own
// loopback address) sharing a Redis server started by the test.

// clusterSecret is the tests' cluster.secret.
const clusterSecret = "a cluster secret of the tests, long enough"

// clusterNode is one node of a test's cluster.
type clusterNode struct {
	name string
	ip   string
	app  *App
	logs *syncBuffer
	yaml string
}

// clusterYAML is a node's configuration: SIP and RTP on ip, the internal
// listener on ip at a free port, a 1 s lease.
func clusterYAML(t *testing.T, name, ip string, sipPort int, redis *testkit.Redis, groups, extra string) string {
	t.Helper()
	lo, hi := rtpRange()
	if groups == "" {
		groups = `
  - name: Circle
    member_pin: "1234"
    facilitator_pin: "654321"
    led_by: peer
`
	}
	return fmt.Sprintf(`
sip:
  listen: ["udp:%[1]s:%[11]d"]
  trusted: ["127.0.0.0/8"]
rtp:
  address: %[1]s
  port_min: %[2]d
  port_max: %[3]d
  timeout: 10s
log:
  format: json
admin:
  listen: %[1]s:0
attendance:
  path: %[4]s
cluster:
  node: %[5]s
  redis: %[6]s
  listen: %[1]s:%[7]d
  peers: ["127.0.0.0/8"]
  secret: %[8]q
  lease: 1s
%[9]s
groups:%[10]s`, ip, lo, hi, storePath(), name, redis.URL(), freeUDPPort(t), clusterSecret, extra, groups, sipPort)
}

// startCluster starts n nodes named a, b, c... on 127.0.0.1, .2, .3...
func startCluster(t *testing.T, redis *testkit.Redis, n int, groups, extra string) []*clusterNode {
	t.Helper()
	return startClusterFrom(t, redis, 0, n, groups, extra)
}

// startClusterFrom starts n nodes from the first-th letter and address.
func startClusterFrom(t *testing.T, redis *testkit.Redis, first, n int, groups, extra string) []*clusterNode {
	t.Helper()
	nodes := make([]*clusterNode, n)
	for j := range nodes {
		i := first + j
		name := string(rune('a' + i))
		ip := fmt.Sprintf("127.0.0.%d", i+1)
		y := clusterYAML(t, name, ip, 0, redis, groups, extra)
		a, logs := startApp(t, y)
		nodes[j] = &clusterNode{name: name, ip: ip, app: a, logs: logs, yaml: y}
	}
	return nodes
}

// dialNode calls node n as caller number.
func dialNode(t *testing.T, n *clusterNode, number string) *softphone.Phone {
	t.Helper()
	return dial(t, n.app, softphone.Config{Caller: number, Server: sipAddr(t, n.app, "udp")})
}

// ownerAndRelays starts node a in its own process (to be killed or
// stalled) and b and c here, and seats three callers, numbers prefix+1..3:
// a member on a, who owns the room, the facilitator relayed from b and a
// member relayed from c.
func ownerAndRelays(t *testing.T, redis *testkit.Redis, prefix string) (*procNode, []*clusterNode, []*softphone.Phone) {
	t.Helper()
	port := freeUDPPort(t)
	owner := startProcNode(t, clusterYAML(t, "a", "127.0.0.1", port, redis, "", ""), fmt.Sprintf("127.0.0.1:%d", port))
	rest := startClusterFrom(t, redis, 1, 2, "", "")
	pa := dial(t, nil, softphone.Config{Caller: prefix + "1", Server: owner.sip})
	enter(t, owner.logs, pa, "1234", softphone.DigitRFC4733, 1)
	pb := dialNode(t, rest[0], prefix+"2")
	enter(t, rest[0].logs, pb, "654321", softphone.DigitRFC4733, 1)
	pc := dialNode(t, rest[1], prefix+"3")
	enter(t, rest[1].logs, pc, "1234", softphone.DigitRFC4733, 1)
	owner.logs.waitCount(t, 5*time.Second, 2, "relayed call joined")
	return owner, rest, []*softphone.Phone{pa, pb, pc}
}

// hearsWithin waits up to d for p to hear freq above -30 dBFS (in the last
// half second of what it received) and returns how long that took.
func hearsWithin(t *testing.T, p *softphone.Phone, freq float64, d time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for time.Since(start) < d {
		if l := presentLevels(p, start, 500*time.Millisecond, freq)[0]; l > -30 {
			return time.Since(start)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%.0f Hz not heard within %v", freq, d)
	return 0
}

// ownerOf is which of the in-process nodes owns room, with its epoch.
func ownerOf(nodes []*clusterNode, room string) (*clusterNode, int64) {
	for _, n := range nodes {
		if e, ok := n.app.cluster.router.Owns(room); ok {
			return n, e
		}
	}
	return nil, 0
}

// waitOwner waits until one of nodes owns room.
func waitOwner(t *testing.T, nodes []*clusterNode, room string, d time.Duration) (*clusterNode, int64) {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if n, e := ownerOf(nodes, room); n != nil {
			return n, e
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no node of %d owns %s after %v", len(nodes), room, d)
	return nil, 0
}

// The owner killed (SIGKILL): a node that relayed callers of its room
// takes it with a higher epoch, rebuilds it from the mirror and the
// remaining callers hear each other again within 10 s, in their seats and
// roles, lecture mode still on; the dead node's caller, calling back
// within the rejoin window, gets their seat back.
func TestClusterOwnerKilled(t *testing.T) {
	t.Parallel()
	redis := testkit.StartRedis(t)
	owner, rest, phones := ownerAndRelays(t, redis, "+1555710000")
	b, c := rest[0], rest[1]
	pb, pc := phones[1], phones[2]
	ctx, cancel := testContext(10 * time.Second)
	defer cancel()
	if err := pb.SendDigits(ctx, "*5", softphone.DigitRFC4733); err != nil { // lecture mode
		t.Fatal(err)
	}
	pb.Media().SendTone(1000, -20)
	pc.Media().SendTone(1700, -20)
	hearsWithin(t, pc, 1000, 5*time.Second)
	time.Sleep(500 * time.Millisecond) // the mirror has the lecture mode

	owner.kill(t)
	took := hearsWithin(t, pc, 1000, 10*time.Second)
	t.Logf("the facilitator heard again %v after the owner was killed", took)
	n, epoch := waitOwner(t, rest, "Circle", 5*time.Second)
	if epoch < 2 {
		t.Errorf("the new owner's epoch is %d; want above the first (1)", epoch)
	}
	v := n.app.conf.Snapshot()
	if len(v) != 1 || !v[0].Lecture {
		t.Fatalf("the rebuilt room: %+v; want one room in lecture mode", v)
	}
	seats := map[int]string{}
	for _, s := range v[0].Seats {
		seats[s.Seat] = s.Role
	}
	if seats[2] != "facilitator" || seats[3] != "member" {
		t.Errorf("seats after the takeover %v; want 2 facilitator and 3 member", seats)
	}
	// The facilitator's keypad works in the rebuilt room: lecture off, and
	// the member is heard again too.
	ctx2, cancel2 := testContext(10 * time.Second)
	defer cancel2()
	if err := pb.SendDigits(ctx2, "*5", softphone.DigitRFC4733); err != nil {
		t.Fatal(err)
	}
	hearsWithin(t, pb, 1700, 5*time.Second)
	// The dead node's caller calls back, to b, and is seated as before.
	pa2 := dialNode(t, b, "+15557100001")
	enter(t, b.logs, pa2, "1234", softphone.DigitRFC4733, 2)
	if b.logs.count(t, "call joined", "restored", "true")+b.logs.count(t, "relayed call joined", "restored", "true") == 0 &&
		n.logs.count(t, "relayed call joined", "restored", "true") == 0 {
		t.Errorf("the caller who called back did not get their seat back")
	}
	noSecretsInCluster(t, redis, []*syncBuffer{owner.logs, b.logs, c.logs},
		"5557100001", "5557100002", "5557100003", "654321")
}

// Redis stopped during a meeting: the meeting goes on; a join to a room
// whose owner nobody can tell is refused with an apology and counted;
// Redis back, joining works again.
func TestClusterRedisDown(t *testing.T) {
	t.Parallel()
	redis := testkit.StartRedis(t)
	groups := `
  - name: Circle
    member_pin: "1234"
    facilitator_pin: "654321"
    led_by: peer
  - name: Other
    member_pin: "4321"
    led_by: peer
`
	nodes := startCluster(t, redis, 2, groups, "")
	a, b := nodes[0], nodes[1]
	pa := dialNode(t, a, "+15557300001")
	enter(t, a.logs, pa, "1234", softphone.DigitRFC4733, 1)
	pb := dialNode(t, b, "+15557300002")
	enter(t, b.logs, pb, "1234", softphone.DigitRFC4733, 1)
	pa.Media().SendTone(440, -20)
	pb.Media().SendTone(1000, -20)
	hearsWithin(t, pb, 440, 5*time.Second)

	redis.Stop()
	time.Sleep(3 * time.Second) // three leases without Redis
	hearsWithin(t, pb, 440, 2*time.Second)
	hearsWithin(t, pa, 1000, 2*time.Second)
	pn := dialNode(t, b, "+15557300003")
	ctx, cancel := testContext(30 * time.Second)
	defer cancel()
	if err := pn.SendDigits(ctx, "4321#", softphone.DigitRFC4733); err != nil {
		t.Fatal(err)
	}
	select {
	case <-pn.Done():
	case <-time.After(30 * time.Second):
		t.Fatal("a join to an unknown room was not refused")
	}
	b.logs.waitCount(t, 5*time.Second, 1, "call not admitted", "outcome", "cluster-unavailable")
	if got := metricValue(t, scrape(t, b.app), `groupbridge_calls_total{outcome="cluster-unavailable"}`); got != 1 {
		t.Errorf("calls_total{outcome=cluster-unavailable} = %v, want 1", got)
	}

	redis.Start()
	pm := dialNode(t, b, "+15557300004")
	enter(t, b.logs, pm, "4321", softphone.DigitRFC4733, 2)
	hearsWithin(t, pb, 440, 5*time.Second)
}

// A draining node hands a room that another node's callers sit in to that
// node: its own caller follows the room there, in the same seat, and both
// callers go on hearing each other; the drained node keeps no room.
func TestClusterDrainHandsTheRoomOn(t *testing.T) {
	t.Parallel()
	redis := testkit.StartRedis(t)
	nodes := startCluster(t, redis, 2, "", "")
	a, b := nodes[0], nodes[1]
	pa := dialNode(t, a, "+15557400001")
	enter(t, a.logs, pa, "1234", softphone.DigitRFC4733, 1)
	pb := dialNode(t, b, "+15557400002")
	enter(t, b.logs, pb, "1234", softphone.DigitRFC4733, 1)
	a.logs.waitCount(t, 5*time.Second, 1, "relayed call joined")
	pa.Media().SendTone(440, -20)
	pb.Media().SendTone(1000, -20)
	hearsWithin(t, pb, 440, 5*time.Second)

	a.app.Drain()
	a.logs.waitCount(t, 10*time.Second, 1, "call moved with its room")
	n, _ := waitOwner(t, nodes, "Circle", 10*time.Second)
	if n != b {
		t.Fatalf("the room went to %s, want b", n.name)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		v := b.app.conf.Snapshot()
		if len(v) == 1 && len(v[0].Seats) == 2 && v[0].Seats[0].Via == "a" && v[0].Seats[0].Seat == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("b's room after the drain: %+v", v)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if a.app.conf.Rooms() != 0 {
		t.Error("the drained node still has a room")
	}
	time.Sleep(2 * time.Second) // the reconnect sentence
	hearsWithin(t, pb, 440, 5*time.Second)
	hearsWithin(t, pa, 1000, 5*time.Second)
}

// Callers sent by Kamailio (the operators' example) to three different
// nodes with one PIN sit in one room: each hears the other two and not
// themself, and the facilitator, relayed from one node, mutes by keypad a
// member relayed from a third.
func TestKamailioClusterOneRoom(t *testing.T) {
	t.Parallel()
	kamailioPath(t)
	redis := testkit.StartRedis(t)
	nodes := startCluster(t, redis, 3, "", `  proxies: ["127.0.0.1"]`)
	bridges := make([]*clusterBridge, len(nodes))
	for i, n := range nodes {
		bridges[i] = &clusterBridge{addr: sipAddr(t, n.app, "udp"), app: n.app, logs: n.logs}
	}
	k := startClusterKamailio(t, bridges)

	pins := []string{"1234", "654321", "1234"}
	phones := make([]*softphone.Phone, 3)
	landed := make([]*clusterNode, 3)
	for i := range phones {
		ctx, cancel := testContext(15 * time.Second)
		p, err := softphone.Dial(ctx, softphone.Config{Server: k.frontAddr(), LocalIP: fmt.Sprintf("127.0.0.%d", 30+i),
			Caller: fmt.Sprintf("+1555710000%d", i+1)})
		cancel()
		if err != nil {
			t.Fatalf("call %d through Kamailio: %v", i+1, err)
		}
		t.Cleanup(func() { hangup(p) })
		phones[i] = p
		for deadline := time.Now().Add(5 * time.Second); landed[i] == nil; time.Sleep(20 * time.Millisecond) {
			for _, n := range nodes {
				if n.logs.count(t, "call answered") > 0 && !contains(landed[:i], n) {
					landed[i] = n
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("call %d: no other node answered it (round-robin)", i+1)
			}
		}
		enter(t, landed[i].logs, p, pins[i], softphone.DigitRFC4733, 1)
	}
	owner := landed[0]
	owner.logs.waitCount(t, 5*time.Second, 2, "relayed call joined")

	freqs := []float64{440, 1000, 1700}
	for i, p := range phones {
		p.Media().SendTone(freqs[i], -20)
	}
	time.Sleep(5 * time.Second) // the join prompts and chimes
	start := time.Now()
	time.Sleep(2500 * time.Millisecond)
	for i, p := range phones {
		got, present := levels(p, start, 2*time.Second, freqs...), presentLevels(p, start, 2*time.Second, freqs...)
		for j, l := range got {
			if j == i && l > -45 {
				t.Errorf("caller %d hears itself (%.0f Hz) at %.1f dBFS", i+1, freqs[j], l)
			}
			if l = present[j]; j != i && l < -30 {
				t.Errorf("caller %d hears caller %d (%.0f Hz) at %.1f dBFS; want above -30", i+1, j+1, freqs[j], l)
			}
		}
	}

	// What the owner sent them went in bundles (D32), which both relay
	// nodes took whole.
	if n := owner.app.engine.BundleStats().PacketsOut; n < 100 {
		t.Errorf("the owner sent %d bundles in 7.5 s of a room with two relayed callers", n)
	}
	for _, n := range landed[1:] {
		st := n.app.engine.BundleStats()
		if d := st.Dropped; st.PacketsIn < 100 || d.SRTPAuth+d.Duplicate+d.Malformed != 0 {
			t.Errorf("relay node %s took %d bundles, dropped %+v", n.name, st.PacketsIn, d)
		}
	}

	// The facilitator (caller 2, on the second node) mutes seat 3 (caller
	// 3, on the third): *1 3 # then 1.
	ctx, cancel := testContext(10 * time.Second)
	defer cancel()
	if err := phones[1].SendDigits(ctx, "*13#", softphone.DigitRFC4733); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond)
	if err := phones[1].SendDigits(ctx, "1", softphone.DigitRFC4733); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		v := owner.app.conf.Snapshot()
		if len(v) == 1 && len(v[0].Seats) == 3 && v[0].Seats[2].FacilitatorMuted {
			if v[0].Seats[1].Via != landed[1].name || v[0].Seats[2].Via != landed[2].name {
				t.Errorf("seats relayed via %q and %q, want %s and %s", v[0].Seats[1].Via, v[0].Seats[2].Via,
					landed[1].name, landed[2].name)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("seat 3 not muted by the relayed facilitator: %+v", v)
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(1500 * time.Millisecond)
	start = time.Now()
	time.Sleep(2 * time.Second)
	if l := levels(phones[0], start, 2*time.Second, 1700)[0]; l > -45 {
		t.Errorf("caller 1 still hears muted caller 3 at %.1f dBFS", l)
	}
	noSecretsInCluster(t, redis, []*syncBuffer{nodes[0].logs, nodes[1].logs, nodes[2].logs},
		"5557100001", "5557100002", "5557100003", "654321")
}

func contains(nodes []*clusterNode, n *clusterNode) bool {
	for _, x := range nodes {
		if x == n {
			return true
		}
	}
	return false
}

// noSecretsInCluster fails t when any key or value in Redis, or any node's
// log, holds one of secrets (caller numbers' digits, PINs): Redis is a
// database too, and the identities it holds are HMACs, never numbers.
func noSecretsInCluster(t *testing.T, srv *testkit.Redis, logs []*syncBuffer, secrets ...string) {
	t.Helper()
	opt, err := redis.ParseURL(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opt)
	defer rdb.Close()
	ctx, cancel := testContext(10 * time.Second)
	defer cancel()
	var dump strings.Builder
	keys := 0
	iter := rdb.Scan(ctx, 0, "*", 100).Iterator()
	for iter.Next(ctx) {
		k := iter.Val()
		keys++
		dump.WriteString(k + "\n")
		switch rdb.Type(ctx, k).Val() {
		case "string":
			dump.WriteString(rdb.Get(ctx, k).Val() + "\n")
		case "hash":
			for f, v := range rdb.HGetAll(ctx, k).Val() {
				dump.WriteString(f + "=" + v + "\n")
			}
		default:
			t.Errorf("key %s of type %s: the test does not read it", k, rdb.Type(ctx, k).Val())
		}
	}
	if err := iter.Err(); err != nil {
		t.Fatal(err)
	}
	if keys == 0 {
		t.Fatal("Redis holds nothing: the check would prove nothing")
	}
	for _, s := range secrets {
		if strings.Contains(dump.String(), s) {
			t.Errorf("Redis holds %q", s)
		}
		for i, l := range logs {
			if strings.Contains(l.String(), s) {
				t.Errorf("node %d's log holds %q", i, s)
			}
		}
	}
}

// The owner stalled (SIGSTOP) past its lease, then resumed: the room does
// not split. Another node takes it; the old owner, back, gives it up and
// relays its own caller there, who keeps their seat; everyone hears
// everyone in one room.
func TestClusterOwnerStalled(t *testing.T) {
	t.Parallel()
	redis := testkit.StartRedis(t)
	owner, rest, phones := ownerAndRelays(t, redis, "+1555720000")
	pa, pb, pc := phones[0], phones[1], phones[2]
	pa.Media().SendTone(440, -20)
	pb.Media().SendTone(1000, -20)
	pc.Media().SendTone(1700, -20)
	hearsWithin(t, pc, 440, 5*time.Second)

	if err := owner.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	n, _ := waitOwner(t, rest, "Circle", 10*time.Second)
	hearsWithin(t, pc, 1000, 10*time.Second)
	time.Sleep(time.Second)
	if err := owner.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	owner.logs.waitCount(t, 10*time.Second, 1, "room taken by another node; its callers follow it")
	owner.logs.waitCount(t, 10*time.Second, 1, "call moved with its room")
	// One room, at the new owner, with the three seats: a's caller in
	// their own seat, relayed from a.
	deadline := time.Now().Add(10 * time.Second)
	for {
		v := n.app.conf.Snapshot()
		if len(v) == 1 && len(v[0].Seats) == 3 && v[0].Seats[0].Via == "a" && v[0].Seats[0].Placement == "room" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the room after the old owner came back: %+v", v)
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(2 * time.Second) // the reconnect sentence
	start := time.Now()
	time.Sleep(2 * time.Second)
	freqs := []float64{440, 1000, 1700}
	for i, p := range []*softphone.Phone{pa, pb, pc} {
		got, present := levels(p, start, 2*time.Second, freqs...), presentLevels(p, start, 2*time.Second, freqs...)
		for j, l := range got {
			if j != i && present[j] < -30 {
				t.Errorf("caller %d hears caller %d (%.0f Hz) at %.1f dBFS; want above -30", i+1, j+1, freqs[j], present[j])
			}
			if j == i && l > -45 {
				t.Errorf("caller %d hears itself at %.1f dBFS: two rooms?", i+1, l)
			}
		}
	}
	if t.Failed() {
		t.Logf("the room at %s: %+v", n.name, n.app.conf.Snapshot())
		for _, x := range rest {
			t.Logf("%s's rtp: %+v", x.name, x.app.engine.Stats())
		}
		r, l := pa.Media().RTPStats()
		t.Logf("caller 1 received %d lost %d", r, l)
		for k := 0; k < 4; k++ {
			st := time.Now()
			time.Sleep(time.Second)
			t.Logf("later: 2 hears 440 at %.1f", levels(pb, st, time.Second, 440)[0])
		}
	}
}
