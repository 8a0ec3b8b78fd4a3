package cluster

// This file holds how a node reaches the cluster's Redis (cluster.redis)
// and checks that Redis keeps nothing on disk.

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Timeouts of the Redis client: short, because a node asks Redis while a
// caller waits, and a Redis that does not answer soon is treated as down.
const (
	RedisDialTimeout = 2 * time.Second
	RedisIOTimeout   = time.Second // read and write
)

// RedisOptions reads cluster.redis, redis://[user:password@]host[:port][/db]
// or rediss:// for TLS (verified against the system's roots, the server's
// name taken from host), into go-redis options with short timeouts and no
// retries: a retried SET NX whose first answer was lost would report a
// leg's fresh nonce as replayed, and every caller here has its own
// schedule of trying again. Query parameters are refused, so that none
// turns verification off. Errors never contain the password.
func RedisOptions(raw string) (*redis.Options, error) {
	u, err := url.Parse(raw)
	if err != nil {
		// url's errors quote the input, password and all.
		return nil, errors.New("cluster.redis: not a URL (redis://user:password@host:port/db or rediss://...; " +
			"in the password write % as %25, @ as %40, / as %2F)")
	}
	if u.Scheme != "redis" && u.Scheme != "rediss" || u.Opaque != "" {
		return nil, errors.New("cluster.redis: the URL must start redis:// or rediss://")
	}
	if u.RawQuery != "" || u.ForceQuery || u.Fragment != "" {
		return nil, errors.New("cluster.redis: no query or fragment in the URL")
	}
	if u.Hostname() == "" {
		return nil, errors.New("cluster.redis: the URL has no host")
	}
	// Errors name the server by scheme and host alone: when a password
	// holds an unescaped / ? or #, it ends up in the path, not the host.
	where := redactedURL(u)
	if db := strings.TrimPrefix(u.Path, "/"); db != "" {
		if n, err := strconv.Atoi(db); err != nil || n < 0 || strconv.Itoa(n) != db {
			return nil, fmt.Errorf("cluster.redis: %s: the path must be a database number, like /0", where)
		}
	}
	opt, err := redis.ParseURL(raw)
	if err != nil {
		return nil, fmt.Errorf("cluster.redis: %s: not a Redis URL", where)
	}
	opt.DialTimeout = RedisDialTimeout
	opt.ReadTimeout = RedisIOTimeout
	opt.WriteTimeout = RedisIOTimeout
	opt.ContextTimeoutEnabled = true
	opt.MaxRetries = -1
	opt.DialerRetries = 1
	// No CLIENT SETINFO at connect: an ACL user need not be allowed it.
	opt.DisableIdentity = true
	return opt, nil
}

// Connect opens a client for cluster.redis (see RedisOptions) and checks
// within RedisDialTimeout+RedisIOTimeout that it answers as the URL's
// user; on failure the client is closed and the error, naming the URL
// without its password, says why.
func Connect(raw string) (*redis.Client, error) {
	opt, err := RedisOptions(raw)
	if err != nil {
		return nil, err
	}
	c := redis.NewClient(opt)
	ctx, cancel := context.WithTimeout(context.Background(), RedisDialTimeout+RedisIOTimeout)
	defer cancel()
	if err := c.Ping(ctx).Err(); err != nil {
		_ = c.Close()
		u, _ := url.Parse(raw) // parsed by RedisOptions already
		return nil, fmt.Errorf("cluster.redis: %s: %s", redactedURL(u), scrub(err, u))
	}
	return c, nil
}

// redactedURL names u's server: scheme and host, no user or password.
func redactedURL(u *url.URL) string { return u.Scheme + "://" + u.Host }

// scrub is err's text with u's password cut out, should any library have
// put it there.
func scrub(err error, u *url.URL) string {
	s := err.Error()
	if p, ok := u.User.Password(); ok && p != "" {
		s = strings.ReplaceAll(s, p, "xxxxx")
		s = strings.ReplaceAll(s, url.PathEscape(p), "xxxxx")
	}
	return s
}

// PersistenceWarning says, when it is so, that Redis writes to disk (RDB
// save points or the AOF): it would keep leg nonces, wrapped identity keys
// and callers' identities in room state there, and the README's Redis
// configuration turns both off. "" means persistence is off. It asks
// CONFIG GET; when the user may not run CONFIG (or it is renamed), it reads
// INFO persistence instead, which shows the AOF and past snapshots but not
// the save points, and says what it could not check. err is for a Redis
// that does not answer.
func PersistenceWarning(ctx context.Context, rdb redis.Cmdable) (warn string, err error) {
	save, errS := rdb.ConfigGet(ctx, "save").Result()
	aof, errA := rdb.ConfigGet(ctx, "appendonly").Result()
	if errS == nil && errA == nil {
		var on []string
		if s := save["save"]; strings.TrimSpace(s) != "" {
			on = append(on, fmt.Sprintf("RDB snapshots (save %q)", s))
		}
		if aof["appendonly"] == "yes" {
			on = append(on, "the append-only file (appendonly yes)")
		}
		if len(on) == 0 {
			return "", nil
		}
		return persistWarn(strings.Join(on, " and ")), nil
	}
	for _, e := range []error{errS, errA} {
		if e != nil && !isReply(e) {
			return "", fmt.Errorf("cluster: Redis persistence: %w", e)
		}
	}
	cfgErr := errS
	if cfgErr == nil {
		cfgErr = errA
	}
	info, err := rdb.Info(ctx, "persistence").Result()
	if err != nil {
		if !isReply(err) {
			return "", fmt.Errorf("cluster: Redis persistence: %w", err)
		}
		return fmt.Sprintf("cluster.redis: could not check whether Redis writes to disk: CONFIG GET (%v) and INFO (%v) refused to this user; check that save is \"\" and appendonly no", cfgErr, err), nil
	}
	fields := infoFields(info)
	var on []string
	if fields["aof_enabled"] == "1" {
		on = append(on, "the append-only file (aof_enabled:1)")
	}
	if n, _ := strconv.Atoi(fields["rdb_saves"]); n > 0 {
		on = append(on, fmt.Sprintf("RDB snapshots (%d since it started)", n))
	}
	unchecked := fmt.Sprintf("its RDB save points could not be checked (CONFIG GET refused: %v)", cfgErr)
	if len(on) > 0 {
		return persistWarn(strings.Join(on, " and ")) + "; " + unchecked, nil
	}
	return "cluster.redis: Redis has no append-only file and made no snapshot, but " + unchecked + "; check that save is \"\"", nil
}

func persistWarn(what string) string {
	return "cluster.redis: Redis writes to disk: " + what +
		"; it would keep leg nonces, wrapped identity keys and room state there: set save \"\" and appendonly no"
}

// isReply tells an error Redis answered (a refused or unknown command)
// from one of reaching it.
func isReply(err error) bool {
	var re redis.Error
	return errors.As(err, &re) && !errors.Is(err, redis.Nil)
}

// infoFields reads INFO's "key:value" lines.
func infoFields(info string) map[string]string {
	m := map[string]string{}
	for line := range strings.SplitSeq(info, "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), ":"); ok && !strings.HasPrefix(k, "#") {
			m[k] = v
		}
	}
	return m
}
