package app

import (
	"context"
	"fmt"
	"net/netip"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/groupbridge/groupbridge/config"
	"github.com/groupbridge/groupbridge/internal/callflow"
	"github.com/groupbridge/groupbridge/internal/cluster"
	"github.com/groupbridge/groupbridge/internal/conference"
	"github.com/groupbridge/groupbridge/internal/conference/rules"
	"github.com/groupbridge/groupbridge/internal/group"
	"github.com/groupbridge/groupbridge/internal/relay"
	"github.com/groupbridge/groupbridge/internal/sipua"
	"github.com/groupbridge/groupbridge/internal/wallclock"
)

// clusterPart is what a node of a cluster adds to the bridge (the cluster
// section names a node): Redis, the shared keys and counters, the internal
// leg listener and the router that seats callers where their rooms are.
type clusterPart struct {
	cfg      *config.Cluster
	rdb      *redis.Client
	owners   *cluster.Owners
	nodes    *cluster.Nodes
	signer   *cluster.Signer
	idkeys   *cluster.IdentityKeys
	mirror   *cluster.Mirror
	guards   *cluster.GuardStore // the PIN limits' shared counts
	internal *sipua.Server
	router   *relay.Router

	beat   context.Context // the heartbeat's, ended at the stop
	unbeat context.CancelFunc
	beaten chan struct{}
}

// clusterOpenWait bounds talking to Redis at start (the persistence check).
const clusterOpenWait = 5 * time.Second

// openCluster connects to Redis and builds the shared parts of a node; the
// internal listener and the router come later (newClusterSIP), once the
// RTP engine and the rooms exist.
func openCluster(cfg *config.Cluster, admin string, clk wallclock.Clock, a *App) (*clusterPart, error) {
	// Not cluster.Connect: a node starts while Redis is down (its rooms
	// are taken when Redis answers) rather than stay down with it.
	opt, err := cluster.RedisOptions(cfg.Redis)
	if err != nil {
		return nil, fmt.Errorf("cluster.redis: %w", err)
	}
	rdb := redis.NewClient(opt)
	cp := &clusterPart{cfg: cfg, rdb: rdb}
	fail := func(key string, err error) (*clusterPart, error) {
		_ = rdb.Close()
		return nil, fmt.Errorf("%s: %w", key, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), clusterOpenWait)
	defer cancel()
	if warn, err := cluster.PersistenceWarning(ctx, rdb); err != nil {
		// Not fatal: a node starts while Redis is down and joins the
		// cluster when it is back (rooms it owns go on meanwhile).
		a.log.Warn("cluster: Redis not reachable at start", "redis", cfg.RedactedRedis(), "error", err.Error())
	} else if warn != "" {
		a.log.Warn("cluster: Redis persists to disk; a cluster's Redis should not (docs/CLUSTER.md)",
			"redis", cfg.RedactedRedis(), "detail", warn)
	}
	if cp.owners, err = cluster.NewOwners(rdb, cfg.Node, cfg.Lease); err != nil {
		return fail("cluster.node", err)
	}
	if cp.signer, err = cluster.NewSigner(cfg.Secret, rdb, clk); err != nil {
		return fail("cluster.secret", err)
	}
	if cp.idkeys, err = cluster.NewIdentityKeys(rdb, cfg.Secret, clk); err != nil {
		return fail("cluster.secret", err)
	}
	if cp.mirror, err = cluster.NewMirror(rdb, cfg.Node, 0, a.log); err != nil {
		return fail("cluster.node", err)
	}
	cp.guards = cluster.NewGuardStore(rdb, a.log)
	if cp.nodes, err = cluster.NewNodes(rdb, cluster.NodeInfo{Name: cfg.Node, Listen: cfg.ListenAddr().String(),
		Admin: admin, Started: time.Now()}, cfg.Lease, clk); err != nil {
		return fail("cluster.node", err)
	}
	return cp, nil
}

// identityKey is the call flow's key of the moment: the cluster's key of
// the day, or, while Redis cannot give it, fallback (this node's own), so
// that a caller is still recognised on this node.
func (cp *clusterPart) identityKey(fallback [32]byte, log func(error)) func(time.Time) [32]byte {
	return func(now time.Time) [32]byte {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		k, err := cp.idkeys.For(ctx, now)
		if err != nil {
			log(err)
			return fallback
		}
		return k
	}
}

// newClusterSIP builds the internal leg listener (cluster.listen: only
// cluster.peers, only signed legs) and the router.
func (a *App) newClusterSIP(base sipua.Config) error {
	cp := a.cluster
	ic := base
	ic.Listeners = []sipua.Listener{{Transport: "udp", Addr: cp.cfg.ListenAddr()}}
	ic.Trusted = cp.cfg.PeerPrefixes()
	ic.OnlyTrusted = true
	ic.AssertIdentity, ic.AssertTrusted, ic.NoIdentity = nil, false, nil
	ic.Users, ic.Register, ic.TLS = nil, nil, nil
	ic.Proxies = nil
	ic.Handler = sipua.HandlerFunc(a.serveLeg)
	ic.CallerLabel = func(*sipua.Call) string { return "internal" }
	// The bundle port: owners send the audio of this node's relayed
	// callers there, a datagram per tick (D32); the same cluster key
	// protects what this node sends as an owner.
	bundles, err := a.engine.OpenBundles(cp.signer.BundleKey(), cp.cfg.PeerPrefixes())
	if err != nil {
		return fmt.Errorf("cluster: bundle port: %w", err)
	}
	if cp.router, err = relay.New(relay.Config{
		Node: cp.cfg.Node, Owners: cp.owners, Nodes: cp.nodes, Signer: cp.signer, Mirror: cp.mirror,
		Conf: a.conf, Engine: a.engine, Bundles: bundles.Port(), Peers: cp.cfg.PeerPrefixes(), Lease: cp.cfg.Lease,
		Fallback: cp.cfg.Fallback == config.FallbackLocal, Log: a.log,
	}); err != nil {
		return err
	}
	ic.Gate = cp.router.Gate
	if cp.internal, err = sipua.New(ic); err != nil {
		return fmt.Errorf("cluster.listen: %w", err)
	}
	cp.router.SetInternal(cp.internal)
	return nil
}

// join is the call flow's Join on a cluster node.
func (cp *clusterPart) join(c callflow.Call, g group.Group, req conference.JoinRequest) (callflow.Member, error) {
	sc, ok := c.(sipCall)
	if !ok {
		return nil, fmt.Errorf("cluster: a call the router cannot relay (%T)", c)
	}
	return cp.router.Join(relayCall(sc), g, req)
}

// relayCall is a SIP call as the router takes it.
type relayCall struct{ *sipua.Call }

func (c relayCall) TelephoneEvent() int { return c.Call.Media().DTMFPT }

// serveLeg serves an internal leg the gate let in: its caller is seated
// here as the call flow seats another node's caller.
func (a *App) serveLeg(c *sipua.Call) {
	leg, ok := relay.LegOf(c)
	if !ok {
		c.Hangup("internal-error")
		return
	}
	if err := a.cluster.router.Bundle(c); err != nil {
		a.log.Warn("cluster: the leg's audio goes unbundled", "call", c.ID(), "error", err.Error())
	}
	a.flow.ServeLeg(sipCall{c}, callflow.Leg{Group: leg.Room, Role: leg.Role, Identity: leg.Identity,
		Language: leg.Language, Via: leg.From, Reconnect: leg.Reconnect})
}

// mirrorRoom hands a room's snapshot to the mirror when this node owns the
// room (conference.Config.Mirror).
func (cp *clusterPart) mirrorRoom(room string, snap rules.Snapshot) {
	if cp.router == nil {
		return
	}
	if epoch, ok := cp.router.Owns(room); ok {
		cp.mirror.Put(room, epoch, snap)
	}
}

// fenced holds a room still while this node may have lost it in a stall
// (conference.Config.Fenced).
func (cp *clusterPart) fenced(room string) bool {
	return cp.router != nil && cp.router.Fenced(room)
}

// unmirrorRoom deletes an ended session's mirror
// (conference.Config.MirrorEnded).
func (cp *clusterPart) unmirrorRoom(room string) {
	if cp.router == nil {
		return
	}
	if epoch, ok := cp.router.Owns(room); ok {
		cp.mirror.Delete(room, epoch)
	}
}

// start begins the heartbeat and the internal listener.
func (cp *clusterPart) start() error {
	if err := cp.internal.Start(); err != nil {
		return fmt.Errorf("cluster.listen: %w", err)
	}
	cp.beat, cp.unbeat = context.WithCancel(context.Background())
	cp.beaten = make(chan struct{})
	go func() {
		defer close(cp.beaten)
		cp.nodes.Run(cp.beat)
	}()
	go cp.mirror.Run(cp.beat)
	return nil
}

// draining tells the cluster this node takes no new calls, and hands the
// rooms other nodes' callers sit in to one of those nodes.
func (cp *clusterPart) draining() {
	cp.nodes.SetDraining(true)
	cp.router.Drain()
}

// stop ends the internal legs (bounded by ctx), the router, the heartbeat
// and the Redis connection, in that order.
func (cp *clusterPart) stop(ctx context.Context) error {
	var err error
	if cp.internal != nil {
		err = cp.internal.Shutdown(ctx)
	}
	if cp.router != nil {
		cp.router.Close()
	}
	if cp.unbeat != nil {
		cp.unbeat()
		<-cp.beaten
	}
	_ = cp.mirror.Close(ctx)
	_ = cp.rdb.Close()
	return err
}

// ListenAddr for the tests: the internal listener as bound.
func (cp *clusterPart) listenAddr() netip.AddrPort {
	for _, l := range cp.internal.Addrs() {
		return l.Addr
	}
	return netip.AddrPort{}
}

// clusterRooms are the rooms as the admin API shows them on a cluster
// node: each with its owner (this node) and the epoch it holds it at.
type clusterRooms struct {
	*conference.Conference
	node   string
	router *relay.Router
}

func (r clusterRooms) Snapshot() []conference.RoomView {
	views := r.Conference.Snapshot()
	for i := range views {
		views[i].Node = r.node
		views[i].Epoch, _ = r.router.Owns(views[i].Group)
	}
	return views
}
