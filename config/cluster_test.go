package config

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"
)

// clusterSecret is a valid cluster.secret that appears nowhere in the
// package's messages.
const clusterSecret = "s3cr3t-cluster-value-0123456789abcdef"

// redisPassword is the password of the test Redis URLs.
const redisPassword = "redis-pass-swordfish"

const okRedis = "redis://groupbridge:" + redisPassword + "@192.0.2.5:6379/0"

// okCluster is a whole valid cluster section; cases replace one line.
func okCluster(replace ...string) string {
	lines := []string{
		"  node: a",
		"  redis: " + okRedis,
		"  listen: 192.0.2.11:5070",
		"  peers: [192.0.2.0/24]",
		"  secret: \"" + clusterSecret + "\"",
	}
	for i := 0; i+1 < len(replace); i += 2 {
		for j, l := range lines {
			if strings.HasPrefix(l, "  "+replace[i]+":") {
				lines[j] = "  " + replace[i] + ": " + replace[i+1]
				if replace[i+1] == "" {
					lines[j] = ""
				}
			}
		}
	}
	return "cluster:\n" + strings.Join(lines, "\n") + "\n" + okGroups
}

// clusterWith is okCluster with extra lines at the top of the section.
func clusterWith(extra string) string {
	return strings.Replace(okCluster(), "cluster:\n", "cluster:\n"+extra, 1)
}

const allOrNothing = "(cluster.node, redis, listen, peers and secret go together; a section with only cluster.proxies is one node behind a proxy)"

func TestClusterRules(t *testing.T) {
	redisShape := "cluster.redis: must be a redis:// or rediss:// URL with a user and password, like redis://groupbridge:PASSWORD@192.0.2.5:6379/0 (the value is not shown: it holds a password)"
	redisUser := "cluster.redis: must be a redis:// or rediss:// URL with a user and password (an ACL user: Redis's default user must not be open to the network), like redis://groupbridge:PASSWORD@192.0.2.5:6379/0 (the value is not shown)"
	tests := []struct {
		name string
		yaml string
		want []string
	}{
		{"none", okGroups, nil},
		{"null section", "cluster:\n" + okGroups, nil},
		{"whole section", okCluster(), nil},
		{"rediss and IPv6", okCluster("redis", "rediss://gb:pw@[2001:db8::5]:6380", "listen", "\"[2001:db8::11]:5070\"", "peers", "[\"2001:db8::/64\", 192.0.2.7]"), nil},
		{"loopback listen", okCluster("listen", "127.0.0.2:5070", "peers", "[127.0.0.0/8]"), nil},
		{"proxies only", "cluster:\n  proxies: [192.0.2.9, 198.51.100.0/28]\n" + okGroups, nil},
		{"lease and fallback", clusterWith("  lease: 60s\n  fallback: local\n"), nil},
		{"only node", "cluster: {node: a}\n" + okGroups, []string{
			"cluster.redis: required when cluster.node is set " + allOrNothing,
			"cluster.listen: required when cluster.node is set " + allOrNothing,
			"cluster.peers: required when cluster.node is set " + allOrNothing,
			"cluster.secret: required when cluster.node is set " + allOrNothing,
		}},
		{"no node", okCluster("node", ""), []string{"cluster.node: required when cluster.redis is set " + allOrNothing}},
		{"no secret", okCluster("secret", ""), []string{"cluster.secret: required when cluster.node is set " + allOrNothing}},
		{"empty peers", okCluster("peers", "[]"), []string{"cluster.peers: required when cluster.node is set " + allOrNothing}},
		{"proxies and secret", "cluster: {proxies: [192.0.2.9], secret: \"" + clusterSecret + "\"}\n" + okGroups, []string{
			"cluster.node: required when cluster.secret is set " + allOrNothing,
			"cluster.redis: required when cluster.secret is set " + allOrNothing,
			"cluster.listen: required when cluster.secret is set " + allOrNothing,
			"cluster.peers: required when cluster.secret is set " + allOrNothing,
		}},
		{"node upper case", okCluster("node", "Node-A"), []string{`cluster.node: "Node-A" must be 1-32 characters of a-z, 0-9 and -`}},
		{"node with a dot", okCluster("node", "a.b"), []string{`cluster.node: "a.b" must be 1-32 characters of a-z, 0-9 and -`}},
		{"node too long", okCluster("node", strings.Repeat("a", 33)), []string{`cluster.node: "` + strings.Repeat("a", 33) + `" must be 1-32 characters of a-z, 0-9 and -`}},
		{"node 32", okCluster("node", strings.Repeat("a", 32)), nil},
		{"secret short", okCluster("secret", "\""+clusterSecret[:31]+"\""), []string{"cluster.secret: must be at least 32 characters (at most 1024, printable ASCII), the same on every node"}},
		{"secret not ASCII", okCluster("secret", "\""+clusterSecret+"é\""), []string{"cluster.secret: must be at least 32 characters (at most 1024, printable ASCII), the same on every node"}},
		{"secret is a list", okCluster("secret", "["+clusterSecret+"]"), []string{"cluster.secret: expected a secret, found a list"}},
		{"redis http", okCluster("redis", "http://gb:"+redisPassword+"@192.0.2.5"), []string{redisShape}},
		{"redis no scheme", okCluster("redis", "192.0.2.5:6379"), []string{redisShape}},
		{"redis opaque", okCluster("redis", "redis:"+redisPassword), []string{redisShape}},
		{"redis no user", okCluster("redis", "redis://192.0.2.5:6379"), []string{redisUser}},
		{"redis password only", okCluster("redis", "redis://:"+redisPassword+"@192.0.2.5"), []string{redisUser}},
		{"redis user only", okCluster("redis", "redis://groupbridge@192.0.2.5"), []string{redisUser}},
		{"redis no host", okCluster("redis", "redis://gb:"+redisPassword+"@/0"), []string{"cluster.redis: must name the Redis host, like redis://groupbridge:PASSWORD@192.0.2.5:6379/0 (the value is not shown)"}},
		{"redis port 0", okCluster("redis", "redis://gb:"+redisPassword+"@192.0.2.5:0"), []string{"cluster.redis: has a port that is not 1-65535 (the value is not shown)"}},
		{"redis bad db", okCluster("redis", "redis://gb:"+redisPassword+"@192.0.2.5/x"), []string{"cluster.redis: may end only in a database number, like /0 (the value is not shown)"}},
		{"redis query", okCluster("redis", "redis://gb:"+redisPassword+"@192.0.2.5/0?x=1"), []string{"cluster.redis: must not hold a query or fragment (the value is not shown)"}},
		{"redis bad escape", okCluster("redis", "redis://gb:"+redisPassword+"%zz@192.0.2.5/0"), []string{redisShape}},
		{"listen wildcard", okCluster("listen", "0.0.0.0:5070"), []string{`cluster.listen: "0.0.0.0:5070" must be a concrete IP the other nodes reach, not a wildcard, multicast or zoned address`}},
		{"listen v6 wildcard", okCluster("listen", "\"[::]:5070\""), []string{`cluster.listen: "[::]:5070" must be a concrete IP the other nodes reach, not a wildcard, multicast or zoned address`}},
		{"listen no port", okCluster("listen", "192.0.2.11"), []string{`cluster.listen: "192.0.2.11" must be IP:port, like 192.0.2.10:5070 (IPv6 in brackets)`}},
		{"listen port 0", okCluster("listen", "192.0.2.11:0"), []string{`cluster.listen: "192.0.2.11:0" needs a port (1-65535): the other nodes dial it`}},
		{"listen host name", okCluster("listen", "node-a.example.org:5070"), []string{`cluster.listen: "node-a.example.org:5070" must be IP:port, like 192.0.2.10:5070 (IPv6 in brackets)`}},
		{"listen is sip's", "sip: {listen: [\"tcp:0.0.0.0:5070\", \"udp:0.0.0.0:5070\"]}\n" + okCluster(), []string{`cluster.listen: "192.0.2.11:5070" takes the UDP socket of sip.listen[1]`}},
		{"listen beside sip's tcp", "sip: {listen: [\"tcp:192.0.2.11:5070\"]}\n" + okCluster(), nil},
		{"peer not a CIDR", okCluster("peers", "[192.0.2.0/24, 10.0.0/8]"), []string{`cluster.peers[1]: "10.0.0/8" is not a CIDR or an IP address`}},
		{"proxy not a CIDR", "cluster: {proxies: [kamailio]}\n" + okGroups, []string{`cluster.proxies[0]: "kamailio" is not a CIDR or an IP address`}},
		{"lease short", "cluster: {proxies: [192.0.2.9], lease: 500ms}\n" + okGroups, []string{"cluster.lease: 500ms must be from 1s to 1m"}},
		{"lease long", clusterWith("  lease: 61s\n"), []string{"cluster.lease: 1m1s must be from 1s to 1m"}},
		{"fallback", "cluster: {proxies: [192.0.2.9], fallback: split}\n" + okGroups, []string{`cluster.fallback: "split" must be refuse or local`}},
		{"unknown key", "cluster: {proxies: [192.0.2.9], nodes: 3}\n" + okGroups, []string{"cluster.nodes: unknown key"}},
		{"not a mapping", "cluster: [a]\n" + okGroups, []string{"cluster: expected a mapping of keys, found a list"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.yaml))
			assertErrors(t, err, tc.want...)
			if err != nil && (strings.Contains(err.Error(), redisPassword) || strings.Contains(err.Error(), clusterSecret[:20])) {
				t.Errorf("an error shows a secret:\n%v", err)
			}
		})
	}
}

func TestClusterParsed(t *testing.T) {
	c, err := Parse([]byte(okGroups))
	if err != nil {
		t.Fatal(err)
	}
	if c.Cluster != nil || c.Cluster.Clustered() || c.Cluster.ProxyPrefixes() != nil || c.Cluster.PeerPrefixes() != nil ||
		c.Cluster.ListenAddr().IsValid() || c.Cluster.RedactedRedis() != "" {
		t.Errorf("no cluster section: %+v, want nil and nil-safe accessors", c.Cluster)
	}

	c, err = Parse([]byte(clusterWith("  proxies: [192.0.2.9, \"2001:db8::/64\"]\n")))
	if err != nil {
		t.Fatal(err)
	}
	cl := c.Cluster
	if cl == nil || !cl.Clustered() {
		t.Fatalf("cluster = %+v, want a clustered section", cl)
	}
	if cl.Node != "a" || cl.Secret != clusterSecret || cl.Redis != okRedis {
		t.Errorf("cluster = %+v", cl)
	}
	if cl.Lease != 5*time.Second || cl.Fallback != FallbackRefuse {
		t.Errorf("lease %s, fallback %q; want the defaults 5s, refuse", cl.Lease, cl.Fallback)
	}
	if got, want := cl.ListenAddr(), netip.MustParseAddrPort("192.0.2.11:5070"); got != want {
		t.Errorf("ListenAddr() = %v, want %v", got, want)
	}
	if got, want := cl.PeerPrefixes(), []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}; !slices.Equal(got, want) {
		t.Errorf("PeerPrefixes() = %v, want %v", got, want)
	}
	if got, want := cl.ProxyPrefixes(), []netip.Prefix{netip.MustParsePrefix("192.0.2.9/32"), netip.MustParsePrefix("2001:db8::/64")}; !slices.Equal(got, want) {
		t.Errorf("ProxyPrefixes() = %v, want %v", got, want)
	}
	if got, want := cl.RedactedRedis(), "redis://groupbridge:xxxxx@192.0.2.5:6379/0"; got != want {
		t.Errorf("RedactedRedis() = %q, want %q", got, want)
	}

	if got, want := cl.Summary(), "node a, listen 192.0.2.11:5070, peers 192.0.2.0/24, redis redis://groupbridge:xxxxx@192.0.2.5:6379/0, lease 5s, fallback refuse, behind proxies 192.0.2.9 2001:db8::/64"; got != want {
		t.Errorf("Summary() = %q, want %q", got, want)
	}

	// Proxies alone: one node behind Kamailio, not a cluster member.
	c, err = Parse([]byte("cluster: {proxies: [192.0.2.9]}\n" + okGroups))
	if err != nil {
		t.Fatal(err)
	}
	if c.Cluster == nil || c.Cluster.Clustered() || c.Cluster.Lease != DefaultLease || c.Cluster.Fallback != FallbackRefuse {
		t.Errorf("proxies-only cluster = %+v", c.Cluster)
	}
	if got, want := c.Cluster.Summary(), "single node, behind proxies 192.0.2.9"; got != want {
		t.Errorf("Summary() = %q, want %q", got, want)
	}
}

func TestClusterReload(t *testing.T) {
	keys := ReloadKeys()
	if keys["cluster"] != ReloadRestart {
		t.Errorf("cluster: class %q, want %q", keys["cluster"], ReloadRestart)
	}
	base := func() *Config {
		c := Default()
		c.Groups = []Group{DefaultGroup()}
		cl := DefaultCluster()
		cl.Node, cl.Proxies = "a", []string{"192.0.2.9"}
		c.Cluster = &cl
		return c
	}
	for name, change := range map[string]func(c *Config){
		"node":     func(c *Config) { c.Cluster.Node = "b" },
		"lease":    func(c *Config) { c.Cluster.Lease = 10 * time.Second },
		"fallback": func(c *Config) { c.Cluster.Fallback = FallbackLocal },
		"proxies":  func(c *Config) { c.Cluster.Proxies = append(c.Cluster.Proxies, "192.0.2.10") },
		"removed":  func(c *Config) { c.Cluster = nil },
	} {
		t.Run(name, func(t *testing.T) {
			next := base()
			change(next)
			live, restart := ReloadChanges(base(), next)
			if len(live) != 0 || !slices.Equal(restart, []string{"cluster"}) {
				t.Errorf("ReloadChanges = live %q, restart %q; want restart [cluster]", live, restart)
			}
		})
	}
}

// TestClusterSecretsNeverEchoed breaks the section around its secrets in
// the shapes that echo values elsewhere; no message may show them.
func TestClusterSecretsNeverEchoed(t *testing.T) {
	inputs := []string{
		"cluster: {secret: [" + clusterSecret + "]}\n",
		"cluster: {secret: {" + clusterSecret + ": 1}}\n",
		"cluster: {secret: \"" + clusterSecret + "\t\"}\n",
		"cluster: {secret: *" + clusterSecret + "}\n",
		"cluster: {secret:" + clusterSecret + "}\n",
		"cluster: {redis: [" + okRedis + "]}\n",
		"cluster: {redis: \"" + okRedis + "\x00\"}\n",
		"cluster: {redis: \"" + strings.Replace(okRedis, "redis://", "http://", 1) + "\"}\n",
		"cluster: {redis: \"" + okRedis + "?x=1\"}\n",
		"cluster: {redis: \"" + okRedis + "%\"}\n",
		"cluster: {redis: " + okRedis + ", redis: " + okRedis + "}\n",
		"cluster:\n  redis: " + okRedis + "\n  secret " + clusterSecret + "\n",
	}
	for i, in := range inputs {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			in += okGroups
			c, err := Parse([]byte(in))
			if err == nil {
				t.Fatalf("Parse accepted a broken file: %+v\n%s", c, in)
			}
			msg := err.Error()
			if strings.Contains(msg, redisPassword) || strings.Contains(msg, "swordfish") || strings.Contains(msg, "cluster-value") {
				t.Errorf("error shows a secret:\n%v\ninput:\n%s", err, in)
			}
		})
	}
}
