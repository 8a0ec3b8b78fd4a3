package cluster

// This file holds the cluster's identity key: the key of the HMAC that
// turns a caller's number into an identity, one per UTC day, the same on
// every node so that a caller who rejoins through another node is known.
// Redis holds it only wrapped under a key derived from cluster.secret, so
// reading Redis (or its dumps) alone tells nothing about who called.
//
// After Redis restarts empty, a node that has the day's key in memory
// goes on using it; a node that has not makes a new key for the day (the
// first to ask, by SET NX), so for the rest of that day a caller's
// identity differs between those nodes and a rejoin across them may not
// find its seat. See docs/DECISIONS.md.

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/groupbridge/groupbridge/internal/wallclock"
)

const (
	idKeyPrefix  = "groupbridge:idkey:"
	idKeyTTL     = 3 * 24 * time.Hour
	idKeyLabel   = "groupbridge identity key wrap"
	idKeyVersion = "v1."
	dayLayout    = "2006-01-02"
)

// IdentityKeys hands out the cluster's identity key of a day, making it
// (in Redis, wrapped) when no node has yet.
type IdentityKeys struct {
	rdb  redis.Cmdable
	aead cipher.AEAD
	clk  wallclock.Clock

	mu    sync.Mutex
	cache map[string][32]byte // by day
}

// NewIdentityKeys returns the identity keys of the cluster whose Redis is
// rdb and whose cluster.secret is secret; clk (nil: the system clock)
// says which days are old enough to forget.
func NewIdentityKeys(rdb redis.Cmdable, secret string, clk wallclock.Clock) (*IdentityKeys, error) {
	if len(secret) < MinSecretLen {
		return nil, fmt.Errorf("cluster.secret: at least %d characters (has %d)", MinSecretLen, len(secret))
	}
	if rdb == nil {
		return nil, errors.New("cluster: NewIdentityKeys needs a Redis client")
	}
	wk, err := hkdf.Key(sha256.New, []byte(secret), nil, idKeyLabel, 32)
	if err != nil {
		return nil, err
	}
	blk, err := aes.NewCipher(wk)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(blk)
	if err != nil {
		return nil, err
	}
	return &IdentityKeys{rdb: rdb, aead: aead, clk: wallclock.Or(clk), cache: make(map[string][32]byte)}, nil
}

// For returns the identity key of t's UTC day: from memory, else from
// Redis (groupbridge:idkey:<YYYY-MM-DD>), else a new random key that it
// stores there wrapped for 3 days, unless another node stored one first,
// which it then takes. A stored key that does not unwrap means another
// cluster.secret, and is an error.
func (k *IdentityKeys) For(ctx context.Context, t time.Time) ([32]byte, error) {
	day := t.UTC().Format(dayLayout)
	k.mu.Lock()
	key, ok := k.cache[day]
	k.mu.Unlock()
	if ok {
		return key, nil
	}
	name := idKeyPrefix + day
	key, err := k.load(ctx, name)
	if errors.Is(err, redis.Nil) {
		if _, err := rand.Read(key[:]); err != nil {
			return key, err
		}
		var set bool
		set, err = k.rdb.SetNX(ctx, name, k.wrap(name, key), idKeyTTL).Result()
		if err == nil && !set { // another node was first: its key
			key, err = k.load(ctx, name)
		}
	}
	if err != nil {
		return [32]byte{}, fmt.Errorf("cluster: identity key of %s: %w", day, err)
	}
	k.remember(day, key)
	return key, nil
}

// load reads and unwraps the key stored under name; redis.Nil when none.
func (k *IdentityKeys) load(ctx context.Context, name string) ([32]byte, error) {
	v, err := k.rdb.Get(ctx, name).Result()
	if err != nil {
		return [32]byte{}, err
	}
	return k.unwrap(name, v)
}

func (k *IdentityKeys) remember(day string, key [32]byte) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.cache[day] = key
	old := k.clk.Now().UTC().Add(-idKeyTTL - 24*time.Hour).Format(dayLayout)
	for d := range k.cache {
		if d < old {
			delete(k.cache, d)
		}
	}
}

// wrap seals key with the Redis key's name as additional data, so a
// wrapped key copied to another day's name does not open.
func (k *IdentityKeys) wrap(name string, key [32]byte) string {
	nonce := make([]byte, k.aead.NonceSize(), k.aead.NonceSize()+len(key)+k.aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	return idKeyVersion + base64.RawURLEncoding.EncodeToString(k.aead.Seal(nonce, nonce, key[:], []byte(name)))
}

func (k *IdentityKeys) unwrap(name, v string) ([32]byte, error) {
	var key [32]byte
	raw, err := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(v, idKeyVersion))
	if !strings.HasPrefix(v, idKeyVersion) || err != nil || len(raw) != k.aead.NonceSize()+len(key)+k.aead.Overhead() {
		return key, fmt.Errorf("%s in Redis is not a wrapped identity key", name)
	}
	ns := k.aead.NonceSize()
	plain, err := k.aead.Open(nil, raw[:ns], raw[ns:], []byte(name))
	if err != nil {
		return key, fmt.Errorf("cluster.secret: %s in Redis does not unwrap with this node's cluster.secret (every node needs the same secret)", name)
	}
	copy(key[:], plain)
	return key, nil
}
