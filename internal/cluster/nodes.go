package cluster

// This file holds the nodes' heartbeats: each node keeps a record of
// itself in Redis that lapses unless renewed, so the others (and the
// console) know which nodes are alive, where their internal leg listener
// is, and which are draining.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/groupbridge/groupbridge/internal/wallclock"
)

const nodePrefix = "groupbridge:node:"

var nodeName = regexp.MustCompile(`^[a-z0-9-]{1,32}$`)

// NodeInfo is what a node says of itself in its heartbeat.
type NodeInfo struct {
	Name     string    // cluster.node
	Listen   string    // cluster.listen: IP:port of its internal leg listener
	Admin    string    // its admin API's address, for the console ("" if none)
	Started  time.Time // when it started (whole seconds)
	Draining bool      // it hands its rooms on and takes no new ones
}

// nodeRecord is the JSON of groupbridge:node:<name>.
type nodeRecord struct {
	Listen   string `json:"listen"`
	Admin    string `json:"admin"`
	Started  int64  `json:"started"`
	Draining bool   `json:"draining"`
}

// Nodes keeps this node's heartbeat in Redis and reads the others'.
type Nodes struct {
	rdb   redis.Cmdable
	lease time.Duration
	clk   wallclock.Clock
	kick  chan struct{}

	mu      sync.Mutex
	self    NodeInfo
	lastErr error
}

// NewNodes returns the heartbeat of self in rdb: a record that lives
// 3*lease and is renewed every lease/3 by Run. self.Name must be a valid
// cluster.node ([a-z0-9-], 1-32 characters) and self.Listen an IP:port; a
// zero self.Started is clk's present (clk nil: the system clock).
func NewNodes(rdb redis.Cmdable, self NodeInfo, lease time.Duration, clk wallclock.Clock) (*Nodes, error) {
	if !nodeName.MatchString(self.Name) {
		return nil, fmt.Errorf("cluster.node: %q: 1-32 characters of a-z, 0-9 and -", self.Name)
	}
	if _, err := netip.ParseAddrPort(self.Listen); err != nil {
		return nil, fmt.Errorf("cluster.listen: %q: %v", self.Listen, err)
	}
	if lease < 100*time.Millisecond {
		return nil, fmt.Errorf("cluster.lease: %v: at least 100ms", lease)
	}
	if rdb == nil {
		return nil, errors.New("cluster: NewNodes needs a Redis client")
	}
	clk = wallclock.Or(clk)
	if self.Started.IsZero() {
		self.Started = clk.Now()
	}
	self.Started = time.Unix(self.Started.Unix(), 0)
	return &Nodes{rdb: rdb, lease: lease, clk: clk, kick: make(chan struct{}, 1), self: self}, nil
}

// Self returns this node's record as the next heartbeat writes it.
func (n *Nodes) Self() NodeInfo {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.self
}

// SetDraining sets whether this node is draining; Run writes it at once.
func (n *Nodes) SetDraining(d bool) {
	n.mu.Lock()
	n.self.Draining = d
	n.mu.Unlock()
	select {
	case n.kick <- struct{}{}:
	default:
	}
}

// Err returns the error of Run's last heartbeat, nil when it was written.
func (n *Nodes) Err() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.lastErr
}

// Beat writes this node's record, to live 3*lease.
func (n *Nodes) Beat(ctx context.Context) error {
	self := n.Self()
	v, err := json.Marshal(nodeRecord{Listen: self.Listen, Admin: self.Admin, Started: self.Started.Unix(), Draining: self.Draining})
	if err != nil {
		return err
	}
	if err := n.rdb.Set(ctx, nodePrefix+self.Name, v, 3*n.lease).Err(); err != nil {
		return fmt.Errorf("cluster: heartbeat of %s: %w", self.Name, err)
	}
	return nil
}

// Run beats at once, then every lease/3 and whenever SetDraining is
// called, until ctx ends; then it deletes this node's record (within a
// second) so the others need not wait for it to lapse. A failed beat is
// kept for Err and tried again at the next.
func (n *Nodes) Run(ctx context.Context) {
	t := n.clk.NewTimer(n.lease / 3)
	defer t.Stop()
	for {
		err := n.Beat(ctx)
		n.mu.Lock()
		n.lastErr = err
		n.mu.Unlock()
		select {
		case <-ctx.Done():
			dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
			_ = n.rdb.Del(dctx, nodePrefix+n.Self().Name).Err()
			cancel()
			return
		case <-t.C():
			t.Reset(n.lease / 3)
		case <-n.kick:
		}
	}
}

// Get returns the node called name, and false when it has no live
// heartbeat.
func (n *Nodes) Get(ctx context.Context, name string) (NodeInfo, bool, error) {
	v, err := n.rdb.Get(ctx, nodePrefix+name).Result()
	if errors.Is(err, redis.Nil) {
		return NodeInfo{}, false, nil
	}
	if err != nil {
		return NodeInfo{}, false, fmt.Errorf("cluster: node %q: %w", name, err)
	}
	ni, err := decodeNode(name, v)
	if err != nil {
		return NodeInfo{}, false, err
	}
	return ni, true, nil
}

// List returns the nodes with a live heartbeat, by name. It walks the
// keys with SCAN, which does not block Redis as KEYS would.
func (n *Nodes) List(ctx context.Context) ([]NodeInfo, error) {
	var keys []string
	it := n.rdb.Scan(ctx, 0, nodePrefix+"*", 100).Iterator()
	for it.Next(ctx) {
		keys = append(keys, it.Val())
	}
	if err := it.Err(); err != nil {
		return nil, fmt.Errorf("cluster: list nodes: %w", err)
	}
	slices.Sort(keys)
	keys = slices.Compact(keys) // SCAN may return a key twice
	if len(keys) == 0 {
		return nil, nil
	}
	vals, err := n.rdb.MGet(ctx, keys...).Result()
	if err != nil {
		return nil, fmt.Errorf("cluster: list nodes: %w", err)
	}
	out := make([]NodeInfo, 0, len(keys))
	for i, v := range vals {
		s, ok := v.(string)
		if !ok { // lapsed between SCAN and MGET
			continue
		}
		ni, err := decodeNode(strings.TrimPrefix(keys[i], nodePrefix), s)
		if err != nil {
			return nil, err
		}
		out = append(out, ni)
	}
	return out, nil
}

// decodeNode reads the record of node name.
func decodeNode(name, v string) (NodeInfo, error) {
	var r nodeRecord
	if err := json.Unmarshal([]byte(v), &r); err != nil {
		return NodeInfo{}, fmt.Errorf("cluster: node %q: record is not JSON: %v", name, err)
	}
	if _, err := netip.ParseAddrPort(r.Listen); err != nil {
		return NodeInfo{}, fmt.Errorf("cluster: node %q: listen %q: %v", name, r.Listen, err)
	}
	return NodeInfo{Name: name, Listen: r.Listen, Admin: r.Admin, Started: time.Unix(r.Started, 0), Draining: r.Draining}, nil
}
