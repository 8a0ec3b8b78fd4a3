package cluster

// This file holds the PIN guard's shared counting (guard.Shared): guess
// counters, lockouts, failure rates, the PIN budgets' attack state and
// answer slots, so that three nodes do not give an attacker three budgets.

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/groupbridge/groupbridge/internal/guard"
	"github.com/groupbridge/groupbridge/internal/logging"
)

const (
	// GuardTimeout bounds one round trip of the guard's to Redis: a PIN
	// answer, or a room's tick checking a facilitator PIN, waits for it.
	GuardTimeout = 250 * time.Millisecond
	// GuardRetry is how long the guard counts on its own after Redis
	// failed before it asks Redis again.
	GuardRetry = 5 * time.Second
)

// errGuardDown is the answer while Redis is left alone after a failure.
var errGuardDown = errors.New("cluster: guard: Redis failed recently, counting on this node")

// GuardStore is guard.Shared in Redis, under groupbridge:guard:. Every
// operation is one Lua script (atomic); every key expires (PX) once it can
// no longer matter, so nothing outlives the guard's own memory. Keys are
// the SHA-256 of the guard's keys (which are keyed hashes and group names
// already), so Redis holds no name a reader could recognise.
//
// When Redis fails or is slower than GuardTimeout, the operation fails (the
// guard then goes by its own counts) and Redis is left alone for
// GuardRetry, so a dead Redis costs one timeout per GuardRetry, not one per
// PIN. Failures are counted (Fallbacks) and logged once per outage, at
// most once a minute. Safe for concurrent use.
type GuardStore struct {
	rdb    redis.Cmdable
	log    *slog.Logger
	prefix string

	fallbacks atomic.Uint64
	downLog   logging.Throttle

	mu        sync.Mutex
	down      bool      // the last operation failed
	downSince time.Time // the first failure of this outage
	retryAt   time.Time // do not ask Redis before then
}

var _ guard.Shared = (*GuardStore)(nil)

// NewGuardStore returns the guard's counting in rdb; log (nil: none) gets
// a line when Redis stops answering and when it answers again.
func NewGuardStore(rdb redis.Cmdable, log *slog.Logger) *GuardStore {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &GuardStore{rdb: rdb, log: log, prefix: "groupbridge:guard:"}
}

// Fallbacks returns how many operations went by the local counts because
// Redis failed or was being left alone.
func (s *GuardStore) Fallbacks() uint64 { return s.fallbacks.Load() }

// key is the Redis key of the guard's key k for one kind of record.
func (s *GuardStore) key(kind, k string) string {
	sum := sha256.Sum256([]byte(k))
	return s.prefix + kind + ":" + hex.EncodeToString(sum[:16])
}

// do runs op against Redis unless Redis is being left alone, and keeps
// the outage state: now is the guard's time.
func (s *GuardStore) do(now time.Time, what string, op func(ctx context.Context) error) error {
	s.mu.Lock()
	skip := s.down && now.Before(s.retryAt)
	s.mu.Unlock()
	if skip {
		s.fallbacks.Add(1)
		return errGuardDown
	}
	ctx, cancel := context.WithTimeout(context.Background(), GuardTimeout)
	err := op(ctx)
	cancel()
	if err != nil {
		err = fmt.Errorf("cluster: guard %s: %w", what, err)
		s.fallbacks.Add(1)
	}
	s.note(now, err)
	return err
}

// note records an operation's outcome: the start and end of an outage.
func (s *GuardStore) note(now time.Time, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case err != nil:
		s.retryAt = now.Add(GuardRetry)
		if !s.down {
			s.down, s.downSince = true, now
			if s.downLog.Allow(now) {
				s.log.Warn("Redis failed: PIN limits count on this node only until it answers",
					"err", err, "retry", GuardRetry)
			}
		}
	case s.down:
		s.down = false
		s.log.Info("Redis answers again: PIN limits are shared by the cluster",
			"after", now.Sub(s.downSince).Round(time.Second), "fallbacks", s.fallbacks.Load())
	}
}

// failScript: KEYS[1] the failure times (a sorted set), KEYS[2] the lockout
// (its end, ms); ARGV now, window, limit, lockout (ms and a count), a
// unique member. Returns the end of the lockout, 0 for none.
var failScript = redis.NewScript(`
local now, window, limit, lockout = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local untl = tonumber(redis.call('GET', KEYS[2]) or '0')
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
redis.call('ZADD', KEYS[1], now, ARGV[5])
if redis.call('ZCARD', KEYS[1]) >= limit then
  untl = now + lockout
  redis.call('SET', KEYS[2], string.format('%d', untl), 'PX', lockout)
  redis.call('DEL', KEYS[1])
else
  redis.call('PEXPIRE', KEYS[1], window)
end
return untl
`)

// Fail is guard.Shared's Fail.
func (s *GuardStore) Fail(key string, now time.Time, window time.Duration, limit int, lockout time.Duration) (time.Time, error) {
	var until int64
	err := s.do(now, "fail", func(ctx context.Context) error {
		var err error
		until, err = failScript.Run(ctx, s.rdb, []string{s.key("fails", key), s.key("lock", key)},
			now.UnixMilli(), window.Milliseconds(), limit, lockout.Milliseconds(),
			strconv.FormatUint(rand.Uint64(), 36)).Int64()
		return err
	})
	return unixMilli(until), err
}

// Locked is guard.Shared's Locked.
func (s *GuardStore) Locked(key string, now time.Time) (time.Time, error) {
	var until int64
	err := s.do(now, "locked", func(ctx context.Context) error {
		var err error
		until, err = s.rdb.Get(ctx, s.key("lock", key)).Int64()
		if errors.Is(err, redis.Nil) {
			until, err = 0, nil
		}
		return err
	})
	return unixMilli(until), err
}

// rateScript: KEYS[1] counts by second (a hash: second -> count); ARGV
// now (ms), n. Returns the count of the last 60 seconds; older seconds
// are dropped.
var rateScript = redis.NewScript(`
local s, n = math.floor(tonumber(ARGV[1]) / 1000), tonumber(ARGV[2])
if n > 0 then
  redis.call('HINCRBY', KEYS[1], string.format('%d', s), n)
  redis.call('PEXPIRE', KEYS[1], 61000)
end
local h = redis.call('HGETALL', KEYS[1])
local sum = 0
for i = 1, #h, 2 do
  if s - tonumber(h[i]) < 60 then
    sum = sum + tonumber(h[i+1])
  else
    redis.call('HDEL', KEYS[1], h[i])
  end
end
return sum
`)

// Rate is guard.Shared's Rate.
func (s *GuardStore) Rate(key string, now time.Time, n int) (int, error) {
	var sum int64
	err := s.do(now, "rate", func(ctx context.Context) error {
		var err error
		sum, err = rateScript.Run(ctx, s.rdb, []string{s.key("rate", key)}, now.UnixMilli(), n).Int64()
		return err
	})
	return int(sum), err
}

// pressureScript: KEYS[1] a budget's counts (a hash: "m"+second and
// "t"+ten seconds -> count, "a" while under attack); ARGV now (ms), n,
// limit. The attack starts when the minute's count passes limit and ends
// when the ten minutes' is back within it, as guard.Budget does in memory.
// Returns {was, is, the minute's count}.
var pressureScript = redis.NewScript(`
local now, n, limit = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local sm, st = math.floor(now / 1000), math.floor(now / 10000)
local h = redis.call('HGETALL', KEYS[1])
local minute, ten, attack = 0, 0, false
for i = 1, #h, 2 do
  local f = h[i]
  local k, slot = string.sub(f, 1, 1), tonumber(string.sub(f, 2))
  if k == 'a' then
    attack = true
  elseif k == 'm' and sm - slot < 60 then
    minute = minute + tonumber(h[i+1])
  elseif k == 't' and st - slot < 60 then
    ten = ten + tonumber(h[i+1])
  else
    redis.call('HDEL', KEYS[1], f)
  end
end
local function check()
  if not attack and minute > limit then attack = true end
  if attack and ten <= limit then attack = false end
  return attack
end
local was = check()
if n > 0 then
  redis.call('HINCRBY', KEYS[1], string.format('m%d', sm), n)
  redis.call('HINCRBY', KEYS[1], string.format('t%d', st), n)
  minute, ten = minute + n, ten + n
  redis.call('PEXPIRE', KEYS[1], 610000)
end
local is = check()
if is then redis.call('HSET', KEYS[1], 'a', 1) else redis.call('HDEL', KEYS[1], 'a') end
return {was and 1 or 0, is and 1 or 0, minute}
`)

// Pressure is guard.Shared's Pressure.
func (s *GuardStore) Pressure(key string, now time.Time, n, limit int) (was, is bool, perMinute int, err error) {
	err = s.do(now, "budget", func(ctx context.Context) error {
		res, err := pressureScript.Run(ctx, s.rdb, []string{s.key("budget", key)}, now.UnixMilli(), n, limit).Int64Slice()
		if err != nil {
			return err
		}
		if len(res) != 3 {
			return fmt.Errorf("unexpected answer %v", res)
		}
		was, is, perMinute = res[0] == 1, res[1] == 1, int(res[2])
		return nil
	})
	if err != nil {
		return false, false, 0, err
	}
	return was, is, perMinute, nil
}

// slotScript: KEYS[1] when the number's next answer slot opens (ms); ARGV
// at, now, interval (ms). Returns {taken, slot}.
var slotScript = redis.NewScript(`
local slot = math.max(tonumber(redis.call('GET', KEYS[1]) or '0'), tonumber(ARGV[1]))
if slot > tonumber(ARGV[2]) then return {0, slot} end
redis.call('SET', KEYS[1], string.format('%d', slot + tonumber(ARGV[3])), 'PX', ARGV[3])
return {1, slot}
`)

// Slot is guard.Shared's Slot.
func (s *GuardStore) Slot(key string, at, now time.Time, interval time.Duration) (slot time.Time, taken bool, err error) {
	err = s.do(now, "slot", func(ctx context.Context) error {
		res, err := slotScript.Run(ctx, s.rdb, []string{s.key("slot", key)},
			at.UnixMilli(), now.UnixMilli(), max(interval.Milliseconds(), 1)).Int64Slice()
		if err != nil {
			return err
		}
		if len(res) != 2 {
			return fmt.Errorf("unexpected answer %v", res)
		}
		taken, slot = res[0] == 1, time.UnixMilli(res[1])
		return nil
	})
	return slot, taken, err
}

// unixMilli is ms as a time, zero for 0.
func unixMilli(ms int64) time.Time {
	if ms <= 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms)
}
