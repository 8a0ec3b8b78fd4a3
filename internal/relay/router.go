// Package relay seats a cluster node's callers in their rooms wherever
// the rooms are: here when this node owns the room (taking it when nobody
// does), otherwise on the owner node through an internal SIP leg whose
// audio and key presses this node relays packet by packet. It keeps this
// node's room leases renewed, gives a room up when another node has taken
// it, follows a room whose owner changed, and checks the internal legs
// other nodes place to rooms owned here (Gate).
//
// It decides where a caller sits, nothing of what happens in the room:
// the room's rules are conference's on the owner, the call's life is
// callflow's on the node the caller called.
package relay

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/groupbridge/groupbridge/internal/callflow"
	"github.com/groupbridge/groupbridge/internal/cluster"
	"github.com/groupbridge/groupbridge/internal/conference"
	"github.com/groupbridge/groupbridge/internal/group"
	"github.com/groupbridge/groupbridge/internal/sipua"
	"github.com/groupbridge/groupbridge/internal/wallclock"
	"github.com/groupbridge/groupbridge/media/g711"
	"github.com/groupbridge/groupbridge/media/rtpio"
)

// Config is what a Router works with.
type Config struct {
	Node   string // this node's name (cluster.node)
	Owners *cluster.Owners
	Nodes  *cluster.Nodes
	Signer *cluster.Signer
	Mirror *cluster.Mirror
	// Conf is this node's rooms.
	Conf *conference.Conference
	// Internal is the server of this node's internal legs
	// (cluster.listen): legs to owners are placed from it, so that their
	// requests come from an address in the owners' cluster.peers. It
	// needs the Router's Gate, so it may be set after New (SetInternal).
	Internal *sipua.Server
	Engine   *rtpio.Engine
	// Bundles is Engine's bundle port (rtpio.Engine.OpenBundles): owners
	// send the audio of this node's legs there, bundled (D32). 0: each
	// leg's audio comes on the leg.
	Bundles uint16
	Peers   []netip.Prefix
	Lease   time.Duration
	// Fallback: a join whose room's owner Redis cannot tell opens the room
	// here (cluster.fallback: local), which may split it.
	Fallback bool
	Log      *slog.Logger
	Clock    wallclock.Clock
	// Refused is told of each join refused because Redis could not be
	// asked (the metric).
	Refused func()
}

// Router places this node's callers in their rooms; see the package
// comment.
type Router struct {
	cfg   Config
	token [32]byte // keys the per-call tokens of callers without a number

	ctx    context.Context // ends at Close: the leases and watches
	cancel context.CancelFunc
	wg     sync.WaitGroup

	draining atomic.Bool   // Drain: take no room another node may take
	stale    atomic.Uint64 // old owners' words dropped (ending)

	mu      sync.Mutex
	held    map[string]*holding  // rooms this node owns
	watched map[string]*watching // rooms this node relays callers to
	seen    map[string]int64     // the highest epoch known of each room
}

// joinWait bounds one caller's join: the look-ups, a take, a leg placed
// and seated; a settling cluster (Redis just restarted) makes it retry.
const joinWait = 10 * time.Second

// New returns a Router; Start is not needed: leases and watches start
// with the joins that need them.
func New(cfg Config) (*Router, error) {
	if cfg.Owners == nil || cfg.Nodes == nil || cfg.Signer == nil || cfg.Conf == nil || cfg.Engine == nil {
		return nil, errors.New("relay: Config needs Owners, Nodes, Signer, Conf and Engine")
	}
	if cfg.Lease <= 0 {
		return nil, errors.New("relay: Config.Lease must be positive")
	}
	cfg.Clock = wallclock.Or(cfg.Clock)
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Refused == nil {
		cfg.Refused = func() {}
	}
	r := &Router{cfg: cfg, held: map[string]*holding{}, watched: map[string]*watching{}, seen: map[string]int64{}}
	if _, err := rand.Read(r.token[:]); err != nil {
		return nil, err
	}
	r.ctx, r.cancel = context.WithCancel(context.Background())
	return r, nil
}

// SetInternal gives the router the internal leg server, built with its
// Gate; before it, no leg can be placed.
func (r *Router) SetInternal(s *sipua.Server) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.cfg.Internal = s
}

func (r *Router) internal() *sipua.Server {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.cfg.Internal
}

// Close stops renewing and watching and gives up this node's rooms (their
// sessions have ended by then: the app closes the rooms first).
func (r *Router) Close() {
	r.cancel()
	r.wg.Wait()
}

// Call is what the router needs of a caller's call: its stream, which a
// relay forwards, and what its SDP negotiated, which the leg repeats.
type Call interface {
	ID() string
	Context() context.Context // done when the call is gone
	Stream() *rtpio.Stream
	Codec() g711.Codec
	// TelephoneEvent is the caller's telephone-event payload type, -1 for
	// none (its keys are then heard in-band, by the owner).
	TelephoneEvent() int
}

// Join seats the caller of c in g's room: here, or relayed to the room's
// owner. A caller without a number gets a per-call token as identity, so
// that a move finds its seat.
func (r *Router) Join(c Call, g group.Group, req conference.JoinRequest) (callflow.Member, error) {
	if req.Identity == "" {
		req.Identity = r.callToken(c.ID())
	}
	ctx, cancel := context.WithTimeout(c.Context(), joinWait)
	defer cancel()
	started := time.Now()
	for wait := 50 * time.Millisecond; ; wait = min(2*wait, time.Second) {
		m, retry, err := r.try(ctx, c, g, req, started)
		if !retry {
			return m, err
		}
		select {
		case <-ctx.Done():
			r.cfg.Refused()
			return nil, fmt.Errorf("relay: %s: %w: %v", g.Name, callflow.ErrUnavailable, err)
		case <-time.After(wait):
		}
	}
}

// try is one attempt at Join; retry says the cluster was moving (a take
// lost, an owner that no longer owns) and another attempt may succeed.
func (r *Router) try(ctx context.Context, c Call, g group.Group, req conference.JoinRequest, started time.Time) (m callflow.Member, retry bool, err error) {
	h := r.holding(g.Name)
	if h != nil && h.valid() {
		return r.joinHere(g, req)
	}
	claim, owned, err := r.cfg.Owners.Owner(ctx, g.Name)
	if err != nil {
		if h != nil {
			// Ours when Redis was last heard, and nobody can take it while
			// Redis cannot be reached: the room goes on here.
			return r.joinHere(g, req)
		}
		if r.cfg.Fallback {
			r.cfg.Log.Warn("cluster unreachable: the room opens here (cluster.fallback: local)", "group", g.Name,
				"error", err.Error())
			return r.joinHere(g, req)
		}
		r.cfg.Refused()
		r.cfg.Log.Warn("cluster unreachable: join refused", "group", g.Name, "error", err.Error())
		return nil, false, fmt.Errorf("relay: %s: %w: %v", g.Name, callflow.ErrUnavailable, err)
	}
	if !owned {
		if r.draining.Load() && time.Since(started) < drainTake {
			// Another node takes it (Drain); the caller follows there.
			return nil, true, errors.New("draining: waiting for another node to take the room")
		}
		claim, took, err := r.cfg.Owners.Take(ctx, g.Name, r.seenOf(g.Name))
		if err != nil {
			return nil, true, err
		}
		r.saw(g.Name, claim.Epoch)
		if !took {
			return nil, true, errors.New("another node took the room first")
		}
		r.hold(ctx, g, claim.Epoch)
		return r.joinHere(g, req)
	}
	r.saw(g.Name, claim.Epoch)
	if claim.Node == r.cfg.Node {
		if h == nil {
			// Ours in Redis but not held here: a lease from before a
			// restart of this node. Wait for it to lapse.
			return nil, true, errors.New("the room's lease is this node's from before")
		}
		return r.joinHere(g, req)
	}
	return r.joinThere(ctx, c, g, req, claim)
}

// joinHere seats the caller in the room on this node.
func (r *Router) joinHere(g group.Group, req conference.JoinRequest) (callflow.Member, bool, error) {
	p, err := r.cfg.Conf.Join(g, req)
	if err != nil {
		return nil, false, err
	}
	return p, false, nil
}

// callToken is the identity of a caller without a number: the same for
// every join of one call, unlinkable to anything else.
func (r *Router) callToken(callID string) string {
	mac := hmac.New(sha256.New, r.token[:])
	mac.Write([]byte(callID))
	return "call-" + hex.EncodeToString(mac.Sum(nil)[:16])
}

func (r *Router) seenOf(room string) int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.seen[room]
}

// saw records an epoch of room; the highest is kept (a take never goes
// below it, even after Redis lost its counters).
func (r *Router) saw(room string, epoch int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if epoch > r.seen[room] {
		r.seen[room] = epoch
	}
}
