package cluster

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/groupbridge/groupbridge/internal/testkit"
	"github.com/groupbridge/groupbridge/internal/wallclock"
)

func idKeys(t *testing.T, c redis.Cmdable, secret string, clk wallclock.Clock) *IdentityKeys {
	t.Helper()
	k, err := NewIdentityKeys(c, secret, clk)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestNewIdentityKeysRefuses(t *testing.T) {
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	defer c.Close()
	if _, err := NewIdentityKeys(c, "short", nil); err == nil || !strings.Contains(err.Error(), "cluster.secret") {
		t.Errorf("short secret: %v", err)
	}
	if _, err := NewIdentityKeys(nil, testSecret, nil); err == nil {
		t.Error("no Redis client accepted")
	}
}

// Two nodes asking at once get one key for a day; the next day has
// another; Redis holds it only wrapped, for 3 days.
func TestIdentityKeysShared(t *testing.T) {
	srv := testkit.StartRedis(t)
	ctx := context.Background()
	c := client(t, srv)
	clk := testkit.NewManualClock()
	a, b := idKeys(t, c, testSecret, clk), idKeys(t, client(t, srv), testSecret, clk)
	day := time.Date(2026, 12, 6, 23, 30, 0, 0, time.FixedZone("UTC-2", -2*3600)) // 7 Dec UTC

	var wg sync.WaitGroup
	var ka, kb [32]byte
	var ea, eb error
	wg.Go(func() { ka, ea = a.For(ctx, day) })
	wg.Go(func() { kb, eb = b.For(ctx, day) })
	wg.Wait()
	if ea != nil || eb != nil {
		t.Fatal(ea, eb)
	}
	if ka != kb || ka == ([32]byte{}) {
		t.Fatalf("two nodes, one day: %x and %x", ka, kb)
	}
	if k, err := b.For(ctx, time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC)); err != nil || k != ka {
		t.Errorf("the same UTC day at midnight: %x, %v", k, err)
	}
	next, err := a.For(ctx, day.Add(24*time.Hour))
	if err != nil || next == ka {
		t.Errorf("the next day: %x, %v; want another key", next, err)
	}

	name := idKeyPrefix + "2026-12-07"
	raw, err := c.Get(ctx, name).Bytes()
	if err != nil {
		t.Fatal(err)
	}
	dec, _ := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(string(raw), idKeyVersion))
	for _, v := range [][]byte{raw, dec} {
		if bytes.Contains(v, ka[:]) || bytes.Contains(v, []byte(hex.EncodeToString(ka[:]))) ||
			bytes.Contains(v, []byte(base64.RawURLEncoding.EncodeToString(ka[:]))) {
			t.Fatalf("Redis holds the key in clear: %q", v)
		}
	}
	if ttl, err := c.PTTL(ctx, name).Result(); err != nil || ttl < idKeyTTL-time.Minute || ttl > idKeyTTL {
		t.Errorf("TTL %v, %v; want %v", ttl, err, idKeyTTL)
	}
}

func TestIdentityKeysWrongSecret(t *testing.T) {
	srv := testkit.StartRedis(t)
	ctx := context.Background()
	now := time.Now()
	if _, err := idKeys(t, client(t, srv), testSecret, nil).For(ctx, now); err != nil {
		t.Fatal(err)
	}
	_, err := idKeys(t, client(t, srv), testSecret+"!", nil).For(ctx, now)
	if err == nil || !strings.Contains(err.Error(), "cluster.secret") {
		t.Fatalf("another secret: %v; want an error naming cluster.secret", err)
	}
}

// A wrapped key moved to another day's name does not open: the name is
// sealed with it.
func TestIdentityKeysBoundToName(t *testing.T) {
	srv := testkit.StartRedis(t)
	ctx := context.Background()
	c := client(t, srv)
	d1 := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	if _, err := idKeys(t, c, testSecret, nil).For(ctx, d1); err != nil {
		t.Fatal(err)
	}
	v, err := c.Get(ctx, idKeyPrefix+"2026-12-06").Result()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Set(ctx, idKeyPrefix+"2026-12-07", v, time.Hour).Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := idKeys(t, c, testSecret, nil).For(ctx, d1.Add(24*time.Hour)); err == nil {
		t.Fatal("a key moved to another day opened")
	}
	if err := c.Set(ctx, idKeyPrefix+"2026-12-08", "v1.garbage", time.Hour).Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := idKeys(t, c, testSecret, nil).For(ctx, d1.Add(48*time.Hour)); err == nil {
		t.Fatal("garbage opened")
	}
}

// Redis restarted empty: a node with the day's key keeps it (even while
// Redis is down); a node without makes a new one for the day.
func TestIdentityKeysRedisRestart(t *testing.T) {
	srv := testkit.StartRedis(t)
	ctx := context.Background()
	now := time.Now()
	a := idKeys(t, client(t, srv), testSecret, nil)
	ka, err := a.For(ctx, now)
	if err != nil {
		t.Fatal(err)
	}
	srv.Stop()
	if k, err := a.For(ctx, now); err != nil || k != ka {
		t.Errorf("cached key with Redis down: %x, %v", k, err)
	}
	b := idKeys(t, client(t, srv), testSecret, nil)
	if _, err := b.For(ctx, now); err == nil {
		t.Error("a node without the key got one with Redis down")
	}
	srv.Start()
	if k, err := a.For(ctx, now); err != nil || k != ka {
		t.Errorf("cached key after the restart: %x, %v", k, err)
	}
	kb, err := b.For(ctx, now)
	if err != nil {
		t.Fatal(err)
	}
	if kb == ka {
		t.Error("a node without the key found the lost one: the test proves nothing")
	}
}

func TestIdentityKeysForgetsOldDays(t *testing.T) {
	srv := testkit.StartRedis(t)
	ctx := context.Background()
	clk := testkit.NewManualClock()
	k := idKeys(t, client(t, srv), testSecret, clk)
	for range 10 {
		if _, err := k.For(ctx, clk.Now()); err != nil {
			t.Fatal(err)
		}
		clk.Advance(24 * time.Hour)
	}
	k.mu.Lock()
	n := len(k.cache)
	k.mu.Unlock()
	if n > 5 {
		t.Errorf("%d days in memory after 10, want at most 5", n)
	}
}
