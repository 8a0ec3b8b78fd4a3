package cluster

import (
	"context"
	"crypto/tls"
	"strings"
	"testing"
	"time"

	"github.com/groupbridge/groupbridge/internal/testkit"
)

func TestRedisOptions(t *testing.T) {
	opt, err := RedisOptions("rediss://gb:s3cret@redis.example.org:6380/2")
	if err != nil {
		t.Fatal(err)
	}
	if opt.Addr != "redis.example.org:6380" || opt.Username != "gb" || opt.Password != "s3cret" || opt.DB != 2 {
		t.Errorf("options %+v", opt)
	}
	if opt.TLSConfig == nil || opt.TLSConfig.ServerName != "redis.example.org" || opt.TLSConfig.InsecureSkipVerify ||
		opt.TLSConfig.RootCAs != nil || opt.TLSConfig.MinVersion < tls.VersionTLS12 {
		t.Errorf("TLS %+v: want verification against the system roots for redis.example.org", opt.TLSConfig)
	}
	if opt.DialTimeout != 2*time.Second || opt.ReadTimeout != time.Second || opt.WriteTimeout != time.Second || opt.MaxRetries != -1 {
		t.Errorf("timeouts %v %v %v, retries %d", opt.DialTimeout, opt.ReadTimeout, opt.WriteTimeout, opt.MaxRetries)
	}
	if opt, err := RedisOptions("redis://gb:pw@127.0.0.1"); err != nil || opt.TLSConfig != nil || opt.Addr != "127.0.0.1:6379" {
		t.Errorf("redis:// : %+v, %v", opt, err)
	}

	for _, pw := range []string{"Pa55%zzQx", "Pa55-zzQx"} { // unparseable, parseable
		for _, bad := range []string{
			"http://gb:" + pw + "@127.0.0.1:6379/0",
			"redis://gb:" + pw + "@127.0.0.1:6379/0?skip_verify=true",
			"rediss://gb:" + pw + "@127.0.0.1:6379/0?skip_verify=true",
			"redis://gb:" + pw + "@127.0.0.1:port/0",
			"redis://gb:" + pw + "@127.0.0.1:6379/db",
			"redis://gb:" + pw + "@:6379/0",
			"unix://gb:" + pw + "@/run/redis.sock",
			"redis://gb:" + pw + "@127.0.0.1:6379/0#x",
			"gb:" + pw + "@127.0.0.1",
		} {
			_, err := RedisOptions(bad)
			if err == nil {
				t.Errorf("%q accepted", bad)
				continue
			}
			if msg := err.Error(); strings.Contains(msg, "Pa55") || strings.Contains(msg, "zzQx") || !strings.HasPrefix(msg, "cluster.redis: ") {
				t.Errorf("%q: error %q shows the password or does not name cluster.redis", bad, msg)
			}
		}
	}
}

// A wrong password, or no server, is an error that names cluster.redis
// and holds no password.
func TestConnect(t *testing.T) {
	srv := testkit.StartRedis(t)
	c, err := Connect(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Set(context.Background(), "groupbridge:x", 1, time.Second).Err(); err != nil {
		t.Errorf("as the ACL user: %v", err)
	}
	_ = c.Close()

	wrong := "WrongPassw0rd-" + srv.Password()[:6]
	for name, u := range map[string]string{
		"wrong password":        strings.Replace(srv.URL(), srv.Password(), wrong, 1),
		"no server":             strings.Replace(srv.URL(), srv.Addr(), "127.0.0.1:1", 1),
		"TLS to a plain server": strings.Replace(srv.URL(), "redis://", "rediss://", 1),
	} {
		start := time.Now()
		c, err := Connect(u)
		if err == nil {
			_ = c.Close()
			t.Errorf("%s: connected", name)
			continue
		}
		msg := err.Error()
		if strings.Contains(msg, wrong) || strings.Contains(msg, srv.Password()) || !strings.HasPrefix(msg, "cluster.redis: ") {
			t.Errorf("%s: %q", name, msg)
		}
		if d := time.Since(start); d > RedisDialTimeout+RedisIOTimeout+time.Second {
			t.Errorf("%s: took %v", name, d)
		}
	}
}

func TestPersistenceWarning(t *testing.T) {
	srv := testkit.StartRedis(t)
	ctx := context.Background()
	admin := client(t, srv)
	// A user as a cautious operator makes it: no CONFIG; and one without
	// INFO either.
	for _, acl := range [][]any{
		{"ACL", "SETUSER", "noconfig", "on", ">noconfig-pw", "~*", "&*", "+@all", "-config"},
		{"ACL", "SETUSER", "noinfo", "on", ">noinfo-pw", "~*", "&*", "+@all", "-config", "-info"},
	} {
		if err := admin.Do(ctx, acl...).Err(); err != nil {
			t.Fatal(err)
		}
	}
	as := func(user string) string {
		return strings.Replace(srv.URL(), testkit.RedisUser+":"+srv.Password(), user+":"+user+"-pw", 1)
	}
	noConfig, err := Connect(as("noconfig"))
	if err != nil {
		t.Fatal(err)
	}
	defer noConfig.Close()
	noInfo, err := Connect(as("noinfo"))
	if err != nil {
		t.Fatal(err)
	}
	defer noInfo.Close()
	set := func(k, v string) {
		t.Helper()
		if err := admin.ConfigSet(ctx, k, v).Err(); err != nil {
			t.Fatal(err)
		}
	}
	check := func(step string, c interface{}, want []string, none bool) {
		t.Helper()
		var w string
		var err error
		switch c := c.(type) {
		case string:
			switch c {
			case "admin":
				w, err = PersistenceWarning(ctx, admin)
			case "noconfig":
				w, err = PersistenceWarning(ctx, noConfig)
			case "noinfo":
				w, err = PersistenceWarning(ctx, noInfo)
			}
		}
		if err != nil {
			t.Fatalf("%s: %v", step, err)
		}
		if none != (w == "") {
			t.Errorf("%s: warning %q", step, w)
		}
		for _, s := range want {
			if !strings.Contains(w, s) {
				t.Errorf("%s: warning %q does not say %q", step, w, s)
			}
		}
	}

	check("persistence off", "admin", nil, true)
	check("persistence off, no CONFIG", "noconfig", []string{"save points could not be checked", "CONFIG"}, false)
	check("no CONFIG nor INFO", "noinfo", []string{"could not check", "INFO"}, false)

	set("save", "3600 1")
	check("RDB on", "admin", []string{"RDB", "3600 1", "save \"\""}, false)
	set("save", "")
	set("appendonly", "yes")
	check("AOF on", "admin", []string{"append-only", "appendonly no"}, false)
	check("AOF on, no CONFIG", "noconfig", []string{"aof_enabled:1", "save points could not be checked"}, false)
	set("appendonly", "no")
	if err := admin.Save(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	check("a snapshot made, no CONFIG", "noconfig", []string{"RDB snapshots (1 since"}, false)

	srv.Stop()
	if _, err := PersistenceWarning(ctx, admin); err == nil {
		t.Error("Redis stopped: no error")
	}
}

// FuzzRedisOptions: no URL panics, and no error shows its password (which
// starts with a mark found nowhere else).
func FuzzRedisOptions(f *testing.F) {
	f.Add("redis", "gb", "pw", "127.0.0.1:6379/0")
	f.Add("rediss", "gb", "p%zz", "h:1/x?y#z")
	f.Add("redis", "", "", "[::1]:port")
	f.Fuzz(func(t *testing.T, scheme, user, pass, rest string) {
		const mark = "Qz7"
		if strings.Contains(scheme+user+rest, mark) {
			return
		}
		_, err := RedisOptions(scheme + "://" + user + ":" + mark + pass + "@" + rest)
		if err != nil && strings.Contains(err.Error(), mark) {
			t.Fatalf("error shows the password: %v", err)
		}
	})
}
