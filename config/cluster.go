package config

import (
	"fmt"
	"net/netip"
	"net/url"
	"regexp"
	"strings"
	"time"
)

// Cluster is the cluster section: several nodes behind a SIP proxy
// (Kamailio's dispatcher), sharing who owns which room through Redis
// (docs/CLUSTER.md). Config.Cluster nil is a single node, exactly as
// without clustering. A section holding only Proxies is valid too: one
// node behind the proxy. Node, Redis, Listen, Peers and Secret go
// together: all of them or none.
type Cluster struct {
	// Node is this node's name, unique in the cluster: [a-z0-9-], 1-32
	// characters.
	Node string `yaml:"node" reload:"restart"`
	// Redis is the redis:// or rediss:// (TLS) URL of the shared Redis,
	// with an ACL user and password. Secret: messages never show it;
	// RedactedRedis is the form a log may carry.
	Redis string `yaml:"redis" secret:"connection URL" reload:"restart"`
	// Listen is the UDP IP:port of this node's listener for internal call
	// legs: a concrete IP the other nodes reach. See ListenAddr.
	Listen string `yaml:"listen" reload:"restart"`
	// Peers lists the addresses (CIDR, or a single IP) internal legs may
	// come from. See PeerPrefixes.
	Peers []string `yaml:"peers" reload:"restart"`
	// Secret signs internal legs and derives their media keys; the same
	// on every node, at least 32 characters. Secret.
	Secret string `yaml:"secret" secret:"secret" reload:"restart"`
	// Lease is how long a room's ownership holds without renewal (renewed
	// every Lease/3): how soon a dead owner's rooms move.
	Lease time.Duration `yaml:"lease" reload:"restart"`
	// Fallback is what a join does when Redis cannot say who owns the
	// room: FallbackRefuse or FallbackLocal.
	Fallback string `yaml:"fallback" reload:"restart"`
	// Proxies lists the SIP proxies (CIDR, or a single IP) whose
	// X-Groupbridge-Source header names the caller's real source. See
	// ProxyPrefixes.
	Proxies []string `yaml:"proxies" reload:"restart"`
}

// cluster.fallback values.
const (
	// FallbackRefuse refuses, with a spoken apology, a join to a room
	// whose owner Redis cannot tell.
	FallbackRefuse = "refuse"
	// FallbackLocal opens such a room on this node; when another node
	// owns it already, the room is split in two.
	FallbackLocal = "local"
)

// Bounds of the cluster section.
const (
	DefaultLease     = 5 * time.Second
	minLease         = time.Second
	maxLease         = time.Minute
	minClusterSecret = 32
	maxClusterSecret = 1024
)

// DefaultCluster returns a cluster section with every key at its default;
// a cluster section in a file starts from it.
func DefaultCluster() Cluster {
	return Cluster{Lease: DefaultLease, Fallback: FallbackRefuse}
}

// nodeName is what cluster.node may be: it names the node in Redis keys
// and SIP headers, so it stays plain.
var nodeName = regexp.MustCompile(`^[a-z0-9-]{1,32}$`)

// Clustered reports whether c makes this node a member of a cluster
// (cluster.node and its companions are set), rather than a single node,
// with or without proxies in front. It is false for a nil section.
func (c *Cluster) Clustered() bool { return c != nil && c.Node != "" }

// ListenAddr returns cluster.listen parsed. It assumes a validated
// configuration; it is the zero AddrPort for a nil section or an unset
// key.
func (c *Cluster) ListenAddr() netip.AddrPort {
	if c == nil {
		return netip.AddrPort{}
	}
	ap, _ := netip.ParseAddrPort(c.Listen)
	return ap
}

// PeerPrefixes returns the parsed cluster.peers entries, an IP alone as a
// one-host prefix; nil for a nil section.
func (c *Cluster) PeerPrefixes() []netip.Prefix {
	if c == nil {
		return nil
	}
	return prefixes(c.Peers)
}

// ProxyPrefixes returns the parsed cluster.proxies entries, an IP alone as
// a one-host prefix; nil for a nil section.
func (c *Cluster) ProxyPrefixes() []netip.Prefix {
	if c == nil {
		return nil
	}
	return prefixes(c.Proxies)
}

// RedactedRedis returns cluster.redis with its password replaced by
// "xxxxx": the form a log line or `config check` may show. It is "" for a
// nil section or an unset key, and a placeholder for a URL that does not
// parse (which validation refuses).
func (c *Cluster) RedactedRedis() string {
	if c == nil || c.Redis == "" {
		return ""
	}
	u, err := url.Parse(c.Redis)
	if err != nil {
		return "(not a URL)"
	}
	return u.Redacted()
}

// Summary describes the section for `config check` and the start's log
// line: cluster.redis with its password hidden, never cluster.secret.
func (c *Cluster) Summary() string {
	if c == nil {
		return "single node"
	}
	var b strings.Builder
	if c.Clustered() {
		fmt.Fprintf(&b, "node %s, listen %s, peers %s, redis %s, lease %s, fallback %s",
			c.Node, c.Listen, strings.Join(c.Peers, " "), c.RedactedRedis(), shortDuration(c.Lease), c.Fallback)
	} else {
		b.WriteString("single node")
	}
	if len(c.Proxies) > 0 {
		fmt.Fprintf(&b, ", behind proxies %s", strings.Join(c.Proxies, " "))
	}
	return b.String()
}

func prefixes(entries []string) []netip.Prefix {
	var out []netip.Prefix
	for _, e := range entries {
		if p, ok := parseTrusted(e); ok {
			out = append(out, p)
		}
	}
	return out
}

// cluster checks the cluster section. Messages about cluster.redis and
// cluster.secret never show their values.
func (v *validator) cluster(c *Cluster, sip *SIP) {
	if c == nil {
		return
	}
	// All or nothing: a node with some of these cannot join.
	set := map[string]bool{
		"cluster.node":   c.Node != "",
		"cluster.redis":  c.Redis != "",
		"cluster.listen": c.Listen != "",
		"cluster.peers":  len(c.Peers) > 0,
		"cluster.secret": c.Secret != "",
	}
	first := ""
	for _, k := range []string{"cluster.node", "cluster.redis", "cluster.listen", "cluster.peers", "cluster.secret"} {
		if set[k] && first == "" {
			first = k
		}
	}
	if first != "" {
		for _, k := range []string{"cluster.node", "cluster.redis", "cluster.listen", "cluster.peers", "cluster.secret"} {
			if !set[k] {
				v.add(k, "required when %s is set (cluster.node, redis, listen, peers and secret go together; a section with only cluster.proxies is one node behind a proxy)", first)
			}
		}
	}
	if c.Node != "" && !nodeName.MatchString(c.Node) {
		v.add("cluster.node", "%s must be 1-32 characters of a-z, 0-9 and -", quote(c.Node))
	}
	if c.Redis != "" {
		if msg := checkRedisURL(c.Redis); msg != "" {
			v.add("cluster.redis", "%s", msg)
		}
	}
	if c.Listen != "" {
		v.clusterListen(c.Listen, sip)
	}
	for i, e := range c.Peers {
		if _, ok := parseTrusted(e); !ok {
			v.add(fmt.Sprintf("cluster.peers[%d]", i), "%s is not a CIDR or an IP address", quote(e))
		}
	}
	if c.Secret != "" && (len(c.Secret) < minClusterSecret || len(c.Secret) > maxClusterSecret || !printableASCII(c.Secret)) {
		v.add("cluster.secret", "must be at least %d characters (at most %d, printable ASCII), the same on every node", minClusterSecret, maxClusterSecret)
	}
	if c.Lease < minLease || c.Lease > maxLease {
		v.add("cluster.lease", "%s must be from %s to %s", shortDuration(c.Lease), shortDuration(minLease), shortDuration(maxLease))
	}
	if c.Fallback != FallbackRefuse && c.Fallback != FallbackLocal {
		v.add("cluster.fallback", "%s must be refuse or local", quote(c.Fallback))
	}
	for i, e := range c.Proxies {
		if _, ok := parseTrusted(e); !ok {
			v.add(fmt.Sprintf("cluster.proxies[%d]", i), "%s is not a CIDR or an IP address", quote(e))
		}
	}
}

// clusterListen checks cluster.listen: the other nodes dial it, so it
// must be a concrete unicast IP and a real port, and not a SIP listener's
// UDP socket.
func (v *validator) clusterListen(s string, sip *SIP) {
	ap, err := netip.ParseAddrPort(s)
	a := ap.Addr()
	switch {
	case err != nil:
		v.add("cluster.listen", "%s must be IP:port, like 192.0.2.10:5070 (IPv6 in brackets)", quote(s))
		return
	case a.IsUnspecified() || a.IsMulticast() || a.Zone() != "":
		v.add("cluster.listen", "%s must be a concrete IP the other nodes reach, not a wildcard, multicast or zoned address", quote(s))
		return
	case ap.Port() == 0:
		v.add("cluster.listen", "%s needs a port (1-65535): the other nodes dial it", quote(s))
		return
	}
	for i, l := range sip.Listeners() {
		if l.Transport == TransportUDP && l.Addr.Port() == ap.Port() && (l.Addr.Addr() == a.Unmap() || l.Addr.Addr().IsUnspecified()) {
			v.add("cluster.listen", "%s takes the UDP socket of sip.listen[%d]", quote(s), i)
			return
		}
	}
}

// checkRedisURL returns what is wrong with a cluster.redis URL, or "". The
// message never quotes the URL: it holds the password.
func checkRedisURL(s string) string {
	const shape = "must be a redis:// or rediss:// URL with a user and password, like redis://groupbridge:PASSWORD@192.0.2.5:6379/0 (the value is not shown: it holds a password)"
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "redis" && u.Scheme != "rediss") || u.Opaque != "" {
		return shape
	}
	pw, hasPW := u.User.Password()
	switch {
	case u.User == nil || u.User.Username() == "" || !hasPW || pw == "":
		return "must be a redis:// or rediss:// URL with a user and password (an ACL user: Redis's default user must not be open to the network), like redis://groupbridge:PASSWORD@192.0.2.5:6379/0 (the value is not shown)"
	case u.Hostname() == "":
		return "must name the Redis host, like redis://groupbridge:PASSWORD@192.0.2.5:6379/0 (the value is not shown)"
	case u.Port() != "":
		if p, err := parsePort(u.Port()); err != nil || p == 0 {
			return "has a port that is not 1-65535 (the value is not shown)"
		}
	}
	if db := strings.TrimPrefix(u.Path, "/"); db != "" && !digits(db, 1, 2) {
		return "may end only in a database number, like /0 (the value is not shown)"
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return "must not hold a query or fragment (the value is not shown)"
	}
	return ""
}
