package config

import (
	"bufio"
	"context"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/groupbridge/groupbridge/internal/cluster"
	"github.com/groupbridge/groupbridge/internal/testkit"
	"github.com/groupbridge/groupbridge/internal/testports"
)

const clusterDir = "examples/cluster"

// readCluster reads a file of the cluster example.
func readCluster(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(clusterDir, name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// substdef returns the value of a `#!substdef "!NAME!value!g"` line of
// kamailio.cfg.
func substdef(t *testing.T, cfg, name string) string {
	t.Helper()
	m := regexp.MustCompile(`(?m)^#!substdef "!` + name + `!([^!]*)!g"$`).FindStringSubmatch(cfg)
	if m == nil {
		t.Fatalf("kamailio.cfg has no #!substdef for %s", name)
	}
	return m[1]
}

// TestClusterExampleNodes: the three nodes are one cluster (the same
// secret, Redis, lease, fallback, groups and proxy; their own names and
// addresses), each reaches the others, and each trusts Kamailio's address
// as kamailio.cfg names it.
func TestClusterExampleNodes(t *testing.T) {
	cfgs := loadExamples(t)
	kcfg := readCluster(t, "kamailio.cfg")
	proxy := netip.MustParseAddr(substdef(t, kcfg, "GB_PROXY_IP"))
	var nodes []*Config
	for _, n := range clusterNodes {
		c := cfgs["cluster/"+n]
		if c == nil {
			t.Fatalf("examples/cluster/%s.yaml did not load", n)
		}
		nodes = append(nodes, c)
	}
	first := nodes[0].Cluster
	names, listens := map[string]bool{}, map[netip.AddrPort]bool{}
	for i, c := range nodes {
		at := clusterNodes[i]
		cl := c.Cluster
		if !cl.Clustered() {
			t.Fatalf("%s: no cluster section with a node", at)
		}
		if "node-"+cl.Node != at {
			t.Errorf("%s: cluster.node is %q", at, cl.Node)
		}
		if names[cl.Node] || listens[cl.ListenAddr()] {
			t.Errorf("%s: cluster.node or cluster.listen repeats another node's", at)
		}
		names[cl.Node], listens[cl.ListenAddr()] = true, true
		if cl.Secret != first.Secret || cl.Redis != first.Redis || cl.Lease != first.Lease || cl.Fallback != first.Fallback ||
			!slices.Equal(cl.Peers, first.Peers) {
			t.Errorf("%s: secret, redis, lease, fallback or peers differ from node-a's", at)
		}
		if !reflect.DeepEqual(c.Groups, nodes[0].Groups) {
			t.Errorf("%s: groups differ from node-a's: any node may answer any call", at)
		}
		// Kamailio's calls are trusted, its identity headers believed,
		// its X-Groupbridge-Source read.
		if !inAny(c.SIP.TrustedPrefixes(), proxy) {
			t.Errorf("%s: sip.trusted lacks Kamailio (%s): its calls would be challenged", at, proxy)
		}
		if p, all := c.SIP.AssertPrefixes(); !all && !inAny(p, proxy) {
			t.Errorf("%s: sip.assert_identity lacks Kamailio (%s)", at, proxy)
		}
		if !inAny(cl.ProxyPrefixes(), proxy) {
			t.Errorf("%s: cluster.proxies lacks Kamailio (%s)", at, proxy)
		}
		// Media goes to the node's own address, where its SIP is.
		if l := udpListener(c); !l.IsValid() || c.RTP.Address != l.Addr().String() || cl.ListenAddr().Addr() != l.Addr() {
			t.Errorf("%s: sip.listen (udp) %v, rtp.address %s and cluster.listen %s are not one address", at, l, c.RTP.Address, cl.Listen)
		}
		if c.Attendance.DSN == "" {
			t.Errorf("%s: attendance is not in the shared PostgreSQL (attendance.dsn)", at)
		}
	}
	// Every node's internal legs come from an address the others accept.
	for i, c := range nodes {
		for j, o := range nodes {
			if !inAny(o.Cluster.PeerPrefixes(), c.Cluster.ListenAddr().Addr()) {
				t.Errorf("%s's cluster.peers refuse %s's internal legs (%s)", clusterNodes[j], clusterNodes[i], c.Cluster.ListenAddr().Addr())
			}
		}
	}
}

func inAny(ps []netip.Prefix, a netip.Addr) bool {
	return slices.ContainsFunc(ps, func(p netip.Prefix) bool { return p.Contains(a) })
}

func udpListener(c *Config) netip.AddrPort {
	for _, l := range c.SIP.Listeners() {
		if l.Transport == TransportUDP {
			return l.Addr
		}
	}
	return netip.AddrPort{}
}

// TestClusterExampleKamailio: dispatcher.list names exactly the nodes'
// SIP addresses, and kamailio.cfg probes them, fails over, record-routes,
// strips identity headers of strangers and replaces any caller's
// X-Groupbridge-Source by its own; Kamailio itself accepts the file when
// it is installed.
func TestClusterExampleKamailio(t *testing.T) {
	cfgs := loadExamples(t)
	var want []string
	for _, n := range clusterNodes {
		if c := cfgs["cluster/"+n]; c != nil {
			want = append(want, udpListener(c).String())
		}
	}
	var got []string
	sc := bufio.NewScanner(strings.NewReader(readCluster(t, "dispatcher.list")))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 || strings.HasPrefix(f[0], "#") {
			continue
		}
		if f[0] != "1" || len(f) < 2 {
			t.Errorf("dispatcher.list: %q is not a node of set 1", sc.Text())
			continue
		}
		got = append(got, strings.TrimPrefix(f[1], "sip:"))
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("dispatcher.list names %v; the nodes listen on %v", got, want)
	}

	kcfg := readCluster(t, "kamailio.cfg")
	for _, re := range []string{
		`ds_select_dst\("1", "4"\)`,
		`modparam\("dispatcher", "ds_ping_interval", GB_PING\)`,
		`modparam\("dispatcher", "ds_probing_mode", 1\)`,
		`modparam\("dispatcher", "list_file", "GB_ETC/dispatcher.list"\)`,
		`modparam\("permissions", "address_file", "GB_ETC/address.list"\)`,
		`(?s)failure_route\[NEXT_NODE\].*ds_next_dst\(\)`,
		`(?s)failure_route\[NEXT_NODE\].*t_check_status\("5\[0-9\]\[0-9\]"\)`,
		`record_route\(\);`,
		`pike_check_req\(\)`,
		`(?s)if \(!allow_source_address\("1"\)\) \{[^}]*remove_hf\("P-Asserted-Identity"\);\s*remove_hf\("Remote-Party-ID"\);`,
		`(?s)remove_hf\("X-Groupbridge-Source"\);.*append_hf\("X-Groupbridge-Source: \$siz:\$sp\\r\\n"\);`,
		`(?m)^listen=udp:GB_PROXY_IP:GB_PROXY_PORT$`,
	} {
		if !regexp.MustCompile(re).MatchString(kcfg) {
			t.Errorf("kamailio.cfg lacks %s", re)
		}
	}
	if _, err := strconv.Atoi(substdef(t, kcfg, "GB_PING")); err != nil {
		t.Errorf("GB_PING is not a number of seconds: %v", err)
	}
	if a := readCluster(t, "address.list"); !regexp.MustCompile(`(?m)^1 \S+`).MatchString(a) {
		t.Errorf("address.list holds no address of group 1")
	}

	bin := testkit.NeedBinary(t, "kamailio", "/usr/sbin/kamailio")
	out, err := exec.Command(bin, "-c", "-f", filepath.Join(clusterDir, "kamailio.cfg")).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "config file ok") {
		t.Errorf("kamailio -c refuses kamailio.cfg: %v\n%s", err, out)
	}
}

// TestClusterExampleRedis: the nodes reach Redis as redis.conf's ACL user,
// over TLS at its address and port; and redis-server, run with the
// fragment (on loopback, without TLS), writes nothing to disk (the nodes'
// own check says so), lets that user work on groupbridge:* keys and
// refuses it everything else.
func TestClusterExampleRedis(t *testing.T) {
	conf := readCluster(t, "redis.conf")
	for _, line := range []string{`save ""`, "appendonly no", "user default off", "port 0"} {
		if !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(line) + `$`).MatchString(conf) {
			t.Errorf("redis.conf lacks %q", line)
		}
	}
	acl := regexp.MustCompile(`(?m)^user (\S+) on >PASSWORD ~groupbridge:\* .*$`).FindStringSubmatch(conf)
	if acl == nil {
		t.Fatal("redis.conf has no ACL user on groupbridge:* keys")
	}
	bind := regexp.MustCompile(`(?m)^bind (\S+)$`).FindStringSubmatch(conf)
	tlsPort := regexp.MustCompile(`(?m)^tls-port (\d+)$`).FindStringSubmatch(conf)
	if bind == nil || tlsPort == nil {
		t.Fatal("redis.conf lacks bind or tls-port")
	}
	for key, c := range loadExamples(t) {
		if !strings.HasPrefix(key, "cluster/") {
			continue
		}
		u, err := url.Parse(c.Cluster.Redis)
		if err != nil {
			t.Fatal(err)
		}
		if u.Scheme != "rediss" || u.User.Username() != acl[1] || u.Hostname() != bind[1] || u.Port() != tlsPort[1] {
			t.Errorf("%s: cluster.redis %s is not %s over TLS at %s:%s", key, c.Cluster.RedactedRedis(), acl[1], bind[1], tlsPort[1])
		}
	}

	bin := testkit.NeedBinary(t, "redis-server", "/usr/bin/redis-server")
	dir := t.TempDir()
	port := testports.Port(t)
	const password = "example-test-password-5d1c"
	var run []string
	for _, line := range strings.Split(conf, "\n") {
		switch {
		case strings.HasPrefix(line, "tls-"):
			continue
		case strings.HasPrefix(line, "bind "):
			line = "bind 127.0.0.1"
		case line == "port 0":
			line = "port " + strconv.Itoa(port)
		}
		run = append(run, strings.Replace(line, ">PASSWORD", ">"+password, 1))
	}
	run = append(run, "dir "+dir, "daemonize no")
	confPath := filepath.Join(dir, "redis.conf")
	if err := os.WriteFile(confPath, []byte(strings.Join(run, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var log testkit.LogBuffer
	cmd := exec.Command(bin, confPath)
	cmd.Dir, cmd.Stdout, cmd.Stderr = dir, &log, &log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = syscall.Kill(cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
	})

	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:" + strconv.Itoa(port), Username: acl[1], Password: password})
	t.Cleanup(func() { _ = rdb.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	for rdb.Ping(ctx).Err() != nil {
		select {
		case <-done:
			t.Fatalf("redis-server exited with the example's configuration:\n%s", log.String())
		case <-ctx.Done():
			t.Fatalf("redis-server did not answer:\n%s", log.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	if w, err := cluster.PersistenceWarning(ctx, rdb); err != nil || w != "" {
		t.Errorf("PersistenceWarning = %q, %v; want none", w, err)
	}
	allowed := []struct {
		name string
		err  error
	}{
		{"SET", rdb.Set(ctx, "groupbridge:example", "1", time.Minute).Err()},
		{"SET NX PX", rdb.SetArgs(ctx, "groupbridge:nx", "1", redis.SetArgs{Mode: "NX", TTL: time.Minute}).Err()},
		{"GET", rdb.Get(ctx, "groupbridge:example").Err()},
		{"MGET", rdb.MGet(ctx, "groupbridge:example", "groupbridge:nx").Err()},
		{"SCAN", rdb.Scan(ctx, 0, "groupbridge:*", 10).Err()},
		{"EVAL", redis.NewScript(`return redis.call("INCR", KEYS[1])`).Run(ctx, rdb, []string{"groupbridge:epoch"}).Err()},
		{"PEXPIRE", rdb.PExpire(ctx, "groupbridge:epoch", time.Minute).Err()},
		{"DEL", rdb.Del(ctx, "groupbridge:nx").Err()},
	}
	for _, a := range allowed {
		if a.err != nil {
			t.Errorf("%s on groupbridge:* refused to the example's user: %v", a.name, a.err)
		}
	}
	// The nodes' own lease scripts, which read Redis's clock (TIME): a
	// take refused here refuses every call of the cluster.
	owners, err := cluster.NewOwners(rdb, "a", time.Second)
	if err != nil {
		t.Fatal(err)
	}
	claim, took, err := owners.Reassert(ctx, "Example Room", 0)
	if err != nil || !took {
		t.Errorf("taking a room as the example's user: took %v, %v", took, err)
	} else if err := owners.Renew(ctx, "Example Room", claim.Epoch); err != nil {
		t.Errorf("renewing a room's lease as the example's user: %v", err)
	}
	refused := []struct {
		name string
		err  error
	}{
		{"SET elsewhere", rdb.Set(ctx, "other:key", "1", 0).Err()},
		{"FLUSHALL", rdb.FlushAll(ctx).Err()},
		{"KEYS", rdb.Keys(ctx, "*").Err()},
		{"CONFIG SET", rdb.ConfigSet(ctx, "save", "60 1").Err()},
		{"SHUTDOWN", rdb.Do(ctx, "SHUTDOWN", "NOSAVE").Err()},
	}
	for _, r := range refused {
		if r.err == nil || !strings.Contains(r.err.Error(), "NOPERM") {
			t.Errorf("%s allowed to the example's user (%v)", r.name, r.err)
		}
	}
}
