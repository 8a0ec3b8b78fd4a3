package testkit

import (
	"crypto/rand"
	"encoding/hex"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// PG is a PostgreSQL server of one test: Debian's binaries, a cluster made
// by initdb in a fresh temporary directory, listening on 127.0.0.1 at a
// free port (and on a Unix socket in its data directory, never the
// system's). The superuser postgres logs in over TCP with a password
// (scram-sha-256), so a test can also try a wrong one.
type PG struct {
	t        testing.TB
	bin      string // the directory of initdb and postgres
	root     string // the temporary directory, removed at cleanup
	data     string
	port     int
	password string
	cred     *syscall.Credential // the postgres user's, when the test runs as root
	log      LogBuffer

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has been waited for
}

// pgReady is the line postgres logs once it takes connections.
const pgReady = "database system is ready to accept connections"

// Postgres starts a PostgreSQL server for t and stops it, removing its
// files, when t ends. It skips t when PostgreSQL is not installed (fails
// under GROUPBRIDGE_REQUIRE_PEERS=1).
func Postgres(t testing.TB) *PG {
	t.Helper()
	initdb := NeedBinary(t, "initdb", "/usr/lib/postgresql/*/bin/initdb")
	// A symlink in PATH (/usr/local/bin/initdb) leads to the directory
	// that holds postgres and psql of the same version.
	if real, err := filepath.EvalSymlinks(initdb); err == nil {
		initdb = real
	}
	p := &PG{t: t, bin: filepath.Dir(initdb)}
	if !executable(filepath.Join(p.bin, "postgres")) {
		t.Fatalf("%s has initdb but no postgres", p.bin)
	}
	if os.Geteuid() == 0 {
		// postgres refuses to run as root: run it as Debian's postgres user.
		u, err := user.Lookup("postgres")
		if err != nil {
			t.Fatalf("running as root, and no user postgres to run PostgreSQL as: %v", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		p.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), NoSetGroups: true}
	}

	root, err := os.MkdirTemp(os.TempDir(), "groupbridge-pg-")
	if err != nil {
		t.Fatal(err)
	}
	p.root = root
	t.Cleanup(func() {
		p.Stop()
		if err := os.RemoveAll(root); err != nil {
			t.Errorf("removing %s: %v", root, err)
		}
	})
	// The postgres user must reach its files through every directory
	// above them.
	if err := os.Chmod(root, 0o755); err != nil {
		t.Fatal(err)
	}
	if p.cred != nil {
		if dir := untraversable(root); dir != "" {
			t.Fatalf("%s is not searchable by other users, so the postgres user cannot reach %s: set TMPDIR to a directory it can reach", dir, root)
		}
	}
	p.data = filepath.Join(root, "data")
	p.password = randomHex(t, 16)
	pwfile := filepath.Join(root, "pwfile")
	if err := os.WriteFile(pwfile, []byte(p.password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p.chown(root)
	p.chown(pwfile)

	cmd := exec.Command(initdb, "-D", p.data, "-U", "postgres", "--pwfile", pwfile,
		"--auth-local=trust", "--auth-host=scram-sha-256",
		"--encoding=UTF8", "--locale=C", "--no-sync", "--no-instructions")
	cmd.Dir = root
	cmd.Env = pgEnv()
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: p.cred}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	if err := os.Remove(pwfile); err != nil {
		t.Fatal(err)
	}
	p.port = freeTCPPort(t)
	p.Start()
	return p
}

// DSN returns the URL that connects to the database postgres as the
// superuser postgres, with its password.
func (p *PG) DSN() string {
	u := url.URL{
		Scheme:   "postgres",
		User:     url.UserPassword("postgres", p.password),
		Host:     net.JoinHostPort("127.0.0.1", strconv.Itoa(p.port)),
		Path:     "/postgres",
		RawQuery: "sslmode=disable",
	}
	return u.String()
}

// Password returns the superuser's password, for a test that must not
// find it in a message.
func (p *PG) Password() string { return p.password }

// Log returns what postgres has logged, for a failing test's message.
func (p *PG) Log() string { return p.log.String() }

// Start starts the server on its data directory and port, and returns once
// it takes connections. It is started already when Postgres returns; Start
// is for starting it again after Stop.
func (p *PG) Start() {
	p.t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil {
		p.t.Fatal("testkit.PG.Start: the server is running")
	}
	readyBefore := strings.Count(p.log.String(), pgReady)
	cmd := exec.Command(filepath.Join(p.bin, "postgres"), "-D", p.data,
		"-c", "listen_addresses=127.0.0.1",
		"-c", "port="+strconv.Itoa(p.port),
		"-c", "unix_socket_directories="+p.data,
		"-c", "fsync=off",
		"-c", "synchronous_commit=off",
		"-c", "full_page_writes=off",
		"-c", "max_connections=40",
		"-c", "shared_buffers=16MB",
		"-c", "dynamic_shared_memory_type=mmap",
		"-c", "logging_collector=off")
	cmd.Dir = p.root
	cmd.Env = pgEnv()
	cmd.Stdout = &p.log
	cmd.Stderr = &p.log
	// Its own process group: a kill at cleanup reaches its children too.
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: p.cred, Setpgid: true}
	if err := cmd.Start(); err != nil {
		p.t.Fatalf("starting postgres: %v", err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	p.cmd, p.done = cmd, done

	deadline := time.Now().Add(30 * time.Second)
	for strings.Count(p.log.String(), pgReady) == readyBefore {
		select {
		case <-done:
			p.cmd = nil
			p.t.Fatalf("postgres exited at start:\n%s", p.log.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("postgres did not take connections within 30s:\n%s", p.log.String())
		}
	}
}

// Stop shuts the server down (fast: open sessions are ended) and waits for
// it to exit; after 10 s it is killed. It does nothing when it is stopped.
func (p *PG) Stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return
	}
	pid := p.cmd.Process.Pid
	_ = syscall.Kill(pid, syscall.SIGINT)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-pid, syscall.SIGKILL) // its process group
		<-p.done
	}
	p.cmd = nil
}

// chown gives path to the postgres user when the test runs as root.
func (p *PG) chown(path string) {
	if p.cred == nil {
		return
	}
	if err := os.Chown(path, int(p.cred.Uid), int(p.cred.Gid)); err != nil {
		p.t.Fatal(err)
	}
}

// untraversable returns the first directory above dir that other users
// cannot search, or "".
func untraversable(dir string) string {
	for d := filepath.Dir(dir); ; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if err != nil || fi.Mode().Perm()&0o001 == 0 {
			return d
		}
		if d == filepath.Dir(d) {
			return ""
		}
	}
}

// pgEnv is the environment for PostgreSQL's programs: the test's without
// any PG* variable, which could point them at another server.
func pgEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PG") {
			env = append(env, kv)
		}
	}
	return append(env, "LC_ALL=C")
}

func randomHex(t testing.TB, n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// freeTCPPort returns a port on 127.0.0.1 that was free a moment ago.
func freeTCPPort(t testing.TB) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
