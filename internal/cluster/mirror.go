package cluster

// This file holds the room mirror: the owner of a room keeps the latest
// state of its session in Redis (groupbridge:room:<room>:state), so that
// the node taking the room over when the owner dies can rebuild it. Every
// write is fenced by the owner's epoch: a stalled old owner cannot
// overwrite what the new one wrote.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// State is a room's state as the mirror writes it (rules.Snapshot): its
// encoding is all the mirror needs.
type State interface {
	Encode() ([]byte, error)
}

// DefaultMirrorKeep is how long a mirrored state outlives its last write
// or refresh when its owner stops refreshing it.
const DefaultMirrorKeep = time.Minute

// mirrorWait bounds one write to Redis.
const mirrorWait = 2 * time.Second

// writeScript writes the state (KEYS[2]: epoch and snap, expiring after
// ARGV[4] ms) only while the room's owner (KEYS[1]) is exactly ARGV[1],
// "node epoch".
var writeScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[2], 'epoch', ARGV[2], 'snap', ARGV[3])
redis.call('PEXPIRE', KEYS[2], ARGV[4])
return 1
`)

// keepScript extends the state's life while the owner is still ARGV[1].
var keepScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
return redis.call('PEXPIRE', KEYS[2], ARGV[2])
`)

// deleteScript removes the state while the owner is still ARGV[1], or,
// once the room was released (no owner), when the state is ARGV[2]'s
// epoch: an owner may release its room before its last delete lands.
var deleteScript = redis.NewScript(`
local o = redis.call('GET', KEYS[1])
if o == ARGV[1] or (not o and redis.call('HGET', KEYS[2], 'epoch') == ARGV[2]) then
  redis.call('DEL', KEYS[2])
  return 1
end
return 0
`)

// Mirror writes the latest state of each room this node owns to Redis,
// in the background: Put and Delete never wait for Redis (a room's tick
// calls them). Writes to one room are one at a time and coalesce: while
// one is in flight only the latest state waits, the ones it replaced are
// never written. A write Redis refuses because the room's owner is not
// this node at that epoch any more is dropped (Fenced); one that fails
// (Redis unreachable) is tried again until a newer state replaces it. A
// written state is kept alive (Keep) while this node owns the room, and
// lapses when it stops.
type Mirror struct {
	rdb    redis.Cmdable
	node   string
	keep   time.Duration
	retry  time.Duration
	prefix string
	log    *slog.Logger

	ctx    context.Context // canceled when Close gives up
	cancel context.CancelFunc
	stop   chan struct{} // closed by Close
	wg     sync.WaitGroup

	mu     sync.Mutex
	rooms  map[string]*mirrored
	closed bool

	written, fenced, failed atomic.Uint64
}

// mirrored is one room's mirror.
type mirrored struct {
	epoch int64
	next  State // waiting to be written; nil for none
	del   bool  // a delete waits
	busy  bool  // a writer runs for the room
	live  bool  // the state in Redis is ours: keep it alive
}

// NewMirror returns node's mirror into rdb. keep is how long a state
// outlives the last write or refresh (0: DefaultMirrorKeep); it is
// refreshed every keep/3 while the room is this node's. Run it with Run;
// stop it with Close.
func NewMirror(rdb redis.Cmdable, node string, keep time.Duration, log *slog.Logger) (*Mirror, error) {
	if !nodeName.MatchString(node) {
		return nil, fmt.Errorf("cluster: mirror: node name %q: want [a-z0-9-], 1-32 characters", node)
	}
	if keep == 0 {
		keep = DefaultMirrorKeep
	}
	if keep < 300*time.Millisecond {
		return nil, fmt.Errorf("cluster: mirror: keep %v: at least 300ms", keep)
	}
	if log == nil {
		log = slog.Default()
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Mirror{rdb: rdb, node: node, keep: keep, retry: min(time.Second, keep/3), prefix: "groupbridge:room:",
		log: log, ctx: ctx, cancel: cancel, stop: make(chan struct{}), rooms: map[string]*mirrored{}}, nil
}

func (m *Mirror) keys(room string) []string {
	return []string{m.prefix + room + ":owner", m.prefix + room + ":state"}
}

func (m *Mirror) owner(epoch int64) string { return m.node + " " + strconv.FormatInt(epoch, 10) }

// Put queues state as room's latest, written with epoch (the epoch this
// node took the room at). It returns at once; a state still waiting is
// replaced. Nothing after Close.
func (m *Mirror) Put(room string, epoch int64, state State) {
	m.queue(room, epoch, state, false)
}

// Delete queues the removal of room's state (its session ended), fenced
// like a write. It returns at once.
func (m *Mirror) Delete(room string, epoch int64) {
	m.queue(room, epoch, nil, true)
}

func (m *Mirror) queue(room string, epoch int64, state State, del bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return
	}
	r := m.rooms[room]
	if r == nil {
		r = &mirrored{}
		m.rooms[room] = r
	}
	r.epoch, r.next, r.del = epoch, state, del
	if !r.busy {
		r.busy = true
		m.wg.Add(1)
		go m.flush(room, r)
	}
}

// flush writes room's waiting states one at a time until none waits.
func (m *Mirror) flush(room string, r *mirrored) {
	defer m.wg.Done()
	for {
		m.mu.Lock()
		epoch, state, del := r.epoch, r.next, r.del
		if state == nil && !del {
			r.busy = false
			if !r.live && m.rooms[room] == r {
				delete(m.rooms, room)
			}
			m.mu.Unlock()
			return
		}
		r.next, r.del = nil, false
		m.mu.Unlock()

		ok, err := m.write(room, epoch, state, del)
		m.mu.Lock()
		switch {
		case err != nil && r.next == nil && !r.del && !m.closed:
			// Nothing newer: this one is tried again after a pause.
			r.next, r.del = state, del
		case err == nil:
			r.live = ok && !del
		}
		m.mu.Unlock()
		if err != nil {
			select {
			case <-m.stop:
			case <-time.After(m.retry):
			}
		}
	}
}

// write carries out one write or delete. ok is false when it was fenced
// (or the state would not encode: nothing to retry); err is a failure to
// reach Redis, worth trying again.
func (m *Mirror) write(room string, epoch int64, state State, del bool) (ok bool, err error) {
	ctx, cancel := context.WithTimeout(m.ctx, mirrorWait)
	defer cancel()
	var n int64
	if del {
		n, err = deleteScript.Run(ctx, m.rdb, m.keys(room), m.owner(epoch), epoch).Int64()
	} else {
		b, encErr := state.Encode()
		if encErr != nil {
			m.failed.Add(1)
			m.log.Error("room state not mirrored: it does not encode", "room", room, "error", encErr.Error())
			return false, nil
		}
		n, err = writeScript.Run(ctx, m.rdb, m.keys(room), m.owner(epoch), epoch, b, m.keep.Milliseconds()).Int64()
	}
	if err != nil {
		m.failed.Add(1)
		m.log.Warn("room state not mirrored, trying again", "room", room, "error", err.Error())
		return false, err
	}
	if n != 1 {
		m.fenced.Add(1)
		if !del {
			m.log.Info("room state not mirrored: the room is not this node's at that epoch", "room", room, "epoch", epoch)
		}
		return false, nil
	}
	m.written.Add(1)
	return true, nil
}

// Run keeps the states this node wrote alive, every keep/3, while it
// still owns their rooms, until ctx ends or Close.
func (m *Mirror) Run(ctx context.Context) {
	t := time.NewTicker(m.keep / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-m.stop:
			return
		case <-t.C:
			m.refresh()
		}
	}
}

// refresh extends the life of every live state; a room no longer this
// node's is let go (its new owner keeps its own).
func (m *Mirror) refresh() {
	type job struct {
		room  string
		epoch int64
		r     *mirrored
	}
	var jobs []job
	m.mu.Lock()
	for room, r := range m.rooms {
		if r.live {
			jobs = append(jobs, job{room, r.epoch, r})
		}
	}
	m.mu.Unlock()
	for _, j := range jobs {
		ctx, cancel := context.WithTimeout(m.ctx, mirrorWait)
		n, err := keepScript.Run(ctx, m.rdb, m.keys(j.room), m.owner(j.epoch), m.keep.Milliseconds()).Int64()
		cancel()
		if err != nil {
			continue // Redis unreachable: the next round tries again
		}
		if n != 1 {
			m.mu.Lock()
			if j.r.epoch == j.epoch {
				j.r.live = false
				if !j.r.busy && m.rooms[j.room] == j.r {
					delete(m.rooms, j.room)
				}
			}
			m.mu.Unlock()
		}
	}
}

// Close stops taking states and waits until those waiting are written,
// or ctx ends (then it gives up on them and returns ctx's error).
func (m *Mirror) Close(ctx context.Context) error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil
	}
	m.closed = true
	m.mu.Unlock()
	close(m.stop)
	done := make(chan struct{})
	go func() { m.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		m.cancel()
		<-done
		return fmt.Errorf("cluster: mirror: states left unwritten: %w", ctx.Err())
	}
}

// Load returns room's mirrored state and the epoch it was written at;
// ok is false when there is none. The state is as stored: decode it with
// rules.DecodeSnapshot.
func (m *Mirror) Load(ctx context.Context, room string) (state []byte, epoch int64, ok bool, err error) {
	v, err := m.rdb.HMGet(ctx, m.keys(room)[1], "epoch", "snap").Result()
	if err != nil {
		return nil, 0, false, fmt.Errorf("cluster: load %q's state: %w", room, err)
	}
	if len(v) != 2 || (v[0] == nil && v[1] == nil) {
		return nil, 0, false, nil
	}
	e, _ := v[0].(string)
	s, _ := v[1].(string)
	epoch, perr := strconv.ParseInt(e, 10, 64)
	if perr != nil || epoch < 1 || s == "" {
		return nil, 0, false, fmt.Errorf("cluster: load %q's state: %w", room, errBadState)
	}
	return []byte(s), epoch, true, nil
}

var errBadState = errors.New("stored state is not an epoch and a snapshot")

// Written, Fenced and Failed count the mirror's writes (deletes included):
// done, refused because the room was not this node's at that epoch, and
// failed (Redis unreachable, or a state that would not encode).
func (m *Mirror) Written() uint64 { return m.written.Load() }

// Fenced: see Written.
func (m *Mirror) Fenced() uint64 { return m.fenced.Load() }

// Failed: see Written.
func (m *Mirror) Failed() uint64 { return m.failed.Load() }
