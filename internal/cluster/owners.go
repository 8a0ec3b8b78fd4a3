// Package cluster is what several groupbridge nodes share through Redis.
// This file holds the room-to-node map: a node owns a room by a lease
// that lapses unless renewed, and every take of a room raises the room's
// epoch, the fencing token the owner puts on everything it writes, so
// that an owner that stalled past its lease can be told apart from the
// one that took over.
package cluster

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Claim is a room's owner: the node and the epoch it took the room at.
type Claim struct {
	Node  string
	Epoch int64
}

// ErrLost means the lease is not this node's at that epoch any more: it
// lapsed and another node took the room, or the room was given up.
var ErrLost = errors.New("cluster: the room's lease is lost")

// ErrSettling means Redis has just (re)started: for one lease only the
// nodes that held rooms may take them (Reassert); ask again shortly.
var ErrSettling = errors.New("cluster: Redis has just started; the owners are taking their rooms back")

// Owners reads and takes room leases for one node.
type Owners struct {
	rdb    redis.Cmdable
	node   string
	lease  time.Duration
	prefix string
}

// NewOwners returns node's view of the room map in rdb; a take or renewal
// holds the room for lease. Node names must not contain spaces.
func NewOwners(rdb redis.Cmdable, node string, lease time.Duration) (*Owners, error) {
	if node == "" || strings.ContainsAny(node, " \t\r\n") {
		return nil, fmt.Errorf("cluster: node name %q: not empty and without spaces", node)
	}
	if lease < 100*time.Millisecond {
		return nil, fmt.Errorf("cluster: lease %v: at least 100ms", lease)
	}
	return &Owners{rdb: rdb, node: node, lease: lease, prefix: "groupbridge:room:"}, nil
}

// takeScript takes a room that has no owner, in one step: the epoch is
// raised (never below ARGV[3]+1, so that after a Redis restart, which loses
// the counter, an epoch a node has seen is not handed out again) and the
// owner set with its lease. A room owned already answers its owner.
//
// KEYS[3] marks when this Redis was first used by the cluster (its own
// TIME, in ms). For one lease after that, only a re-assertion (ARGV[4] =
// "1", by a node that held the room) may take a room: after a Redis
// restart, which forgets every owner, the owners take their rooms back
// before any other node can.
var takeScript = redis.NewScript(`
local cur = redis.call('GET', KEYS[1])
if cur then return {0, cur} end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local up = redis.call('GET', KEYS[3])
if not up then
  redis.call('SET', KEYS[3], now)
  up = now
end
if ARGV[4] ~= '1' and now - tonumber(up) < tonumber(ARGV[2]) then
  return {2, ''}
end
local e = redis.call('INCR', KEYS[2])
local floor = tonumber(ARGV[3]) + 1
if e < floor then
  redis.call('SET', KEYS[2], floor)
  e = floor
end
local v = ARGV[1] .. ' ' .. e
redis.call('SET', KEYS[1], v, 'PX', ARGV[2])
return {1, v}
`)

// renewScript extends the lease when it is still exactly ARGV[1] (node and
// epoch).
var renewScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
`)

// releaseScript gives the room up when it is still exactly ARGV[1].
var releaseScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
`)

func (o *Owners) keys(room string) []string {
	return []string{o.prefix + room + ":owner", o.prefix + room + ":epoch"}
}

// Take makes this node the room's owner when it has none and returns the
// claim and true; when another node (or this one) owns it, its claim and
// false. seen is the highest epoch of the room this node knows (0: none):
// the new epoch is above it even if Redis lost its counter. Within a lease
// of Redis's start it returns ErrSettling.
func (o *Owners) Take(ctx context.Context, room string, seen int64) (Claim, bool, error) {
	return o.take(ctx, room, seen, "0")
}

// Reassert is Take for a node that held room at epoch seen and found its
// lease gone: Redis restarted (or the lease lapsed while this node
// stalled, with nobody taking the room). It is not held back while Redis
// settles.
func (o *Owners) Reassert(ctx context.Context, room string, seen int64) (Claim, bool, error) {
	return o.take(ctx, room, seen, "1")
}

func (o *Owners) take(ctx context.Context, room string, seen int64, force string) (Claim, bool, error) {
	keys := append(o.keys(room), "groupbridge:up")
	res, err := takeScript.Run(ctx, o.rdb, keys, o.node, o.lease.Milliseconds(), seen, force).Slice()
	if err != nil {
		return Claim{}, false, fmt.Errorf("cluster: take %q: %w", room, err)
	}
	if len(res) != 2 {
		return Claim{}, false, fmt.Errorf("cluster: take %q: unexpected answer %v", room, res)
	}
	taken, _ := res[0].(int64)
	if taken == 2 {
		return Claim{}, false, ErrSettling
	}
	c, err := parseClaim(fmt.Sprint(res[1]))
	if err != nil {
		return Claim{}, false, fmt.Errorf("cluster: take %q: %w", room, err)
	}
	return c, taken == 1, nil
}

// Renew extends this node's lease on room taken at epoch; ErrLost when it
// is not this node's at that epoch any more.
func (o *Owners) Renew(ctx context.Context, room string, epoch int64) error {
	n, err := renewScript.Run(ctx, o.rdb, o.keys(room)[:1], o.value(epoch), o.lease.Milliseconds()).Int64()
	if err != nil {
		return fmt.Errorf("cluster: renew %q: %w", room, err)
	}
	if n != 1 {
		return ErrLost
	}
	return nil
}

// Release gives room up when it is still this node's at epoch (a session
// that ended); ErrLost when it was not.
func (o *Owners) Release(ctx context.Context, room string, epoch int64) error {
	n, err := releaseScript.Run(ctx, o.rdb, o.keys(room)[:1], o.value(epoch)).Int64()
	if err != nil {
		return fmt.Errorf("cluster: release %q: %w", room, err)
	}
	if n != 1 {
		return ErrLost
	}
	return nil
}

// Owner returns room's owner, and false when it has none.
func (o *Owners) Owner(ctx context.Context, room string) (Claim, bool, error) {
	v, err := o.rdb.Get(ctx, o.keys(room)[0]).Result()
	if errors.Is(err, redis.Nil) {
		return Claim{}, false, nil
	}
	if err != nil {
		return Claim{}, false, fmt.Errorf("cluster: owner of %q: %w", room, err)
	}
	c, err := parseClaim(v)
	if err != nil {
		return Claim{}, false, fmt.Errorf("cluster: owner of %q: %w", room, err)
	}
	return c, true, nil
}

func (o *Owners) value(epoch int64) string { return o.node + " " + strconv.FormatInt(epoch, 10) }

// parseClaim reads "node epoch".
func parseClaim(v string) (Claim, error) {
	node, e, ok := strings.Cut(v, " ")
	epoch, err := strconv.ParseInt(e, 10, 64)
	if !ok || node == "" || err != nil || epoch < 1 {
		return Claim{}, fmt.Errorf("owner record %q is not \"node epoch\"", v)
	}
	return Claim{Node: node, Epoch: epoch}, nil
}
