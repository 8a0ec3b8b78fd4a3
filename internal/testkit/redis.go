package testkit

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Redis is a Redis server of one test: Debian's redis-server on 127.0.0.1
// at a free port, its files in a fresh temporary directory, persistence
// off (as a cluster's Redis should run), the default user disabled and
// one ACL user with a password, so a test also reaches it as a node does.
type Redis struct {
	t        testing.TB
	bin      string
	dir      string
	port     int
	password string
	log      LogBuffer

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

// RedisUser is the ACL user a test's Redis knows.
const RedisUser = "groupbridge"

// StartRedis starts a Redis server for t and stops it, removing its files,
// when t ends. It skips t when redis-server is not installed (fails under
// GROUPBRIDGE_REQUIRE_PEERS=1).
func StartRedis(t testing.TB) *Redis {
	t.Helper()
	r := &Redis{t: t, bin: NeedBinary(t, "redis-server", "/usr/bin/redis-server")}
	dir, err := os.MkdirTemp("", "testkit-redis-")
	if err != nil {
		t.Fatal(err)
	}
	r.dir = dir
	t.Cleanup(func() {
		r.Stop()
		_ = os.RemoveAll(dir)
	})
	r.password = randomHex(t, 16)
	r.port = freeTCPPort(t)
	conf := fmt.Sprintf(`bind 127.0.0.1
port %d
protected-mode yes
dir %s
save ""
appendonly no
daemonize no
loglevel notice
user default off
user %s on >%s ~* &* +@all
`, r.port, dir, RedisUser, r.password)
	if err := os.WriteFile(filepath.Join(dir, "redis.conf"), []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	r.Start()
	return r
}

// URL returns the redis:// URL of the ACL user, with its password.
func (r *Redis) URL() string {
	return fmt.Sprintf("redis://%s:%s@%s/0", RedisUser, r.password, r.Addr())
}

// Addr returns the server's host:port.
func (r *Redis) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(r.port)) }

// Password returns the ACL user's password, for a test that must not find
// it in a message.
func (r *Redis) Password() string { return r.password }

// Log returns what the server has logged.
func (r *Redis) Log() string { return r.log.String() }

// Start starts the server on its port, empty (persistence is off), and
// returns once it accepts connections. It is started already when
// StartRedis returns; Start is for starting it again after Stop.
func (r *Redis) Start() {
	r.t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cmd != nil {
		r.t.Fatal("testkit.Redis.Start: the server is running")
	}
	cmd := exec.Command(r.bin, filepath.Join(r.dir, "redis.conf"))
	cmd.Dir = r.dir
	cmd.Stdout, cmd.Stderr = &r.log, &r.log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		r.t.Fatalf("redis-server: %v", err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	r.cmd, r.done = cmd, done
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", r.Addr(), 200*time.Millisecond)
		if err == nil {
			_ = c.Close()
			return
		}
		select {
		case <-done:
			r.cmd = nil
			r.t.Fatalf("redis-server exited at start:\n%s", r.log.String())
		default:
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("redis-server did not listen within 10 s:\n%s", r.log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Stop stops the server (SIGTERM, then SIGKILL after 10 s) and waits for it
// to exit; everything it held is gone. It does nothing when it is stopped.
func (r *Redis) Stop() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cmd == nil {
		return
	}
	pid := r.cmd.Process.Pid
	_ = syscall.Kill(pid, syscall.SIGTERM)
	select {
	case <-r.done:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		<-r.done
	}
	r.cmd = nil
}
