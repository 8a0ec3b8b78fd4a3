package relay

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	"github.com/groupbridge/groupbridge/internal/cluster"
	"github.com/groupbridge/groupbridge/internal/conference/rules"
	"github.com/groupbridge/groupbridge/internal/group"
)

// holding is a room this node owns: its epoch and how long its lease is
// known to hold.
type holding struct {
	room  string
	epoch atomic.Int64
	// until is when the lease lapses unless renewed (Unix nanoseconds).
	until atomic.Int64
	// gone: the room was handed on (Drain); the renewals stop.
	gone atomic.Bool
	// tried is when the last renewal attempt ended (Unix nanoseconds),
	// whatever its outcome: a node that made none for a whole lease was
	// stalled (Fenced).
	tried atomic.Int64
}

// valid reports whether the lease still holds by this node's own count: a
// node that stalled (SIGSTOP) past its lease must not act on the room
// before Redis has told it whether it still owns it.
func (h *holding) valid() bool { return time.Now().UnixNano() < h.until.Load() }

func (h *holding) renewed(start time.Time, lease time.Duration) {
	h.until.Store(start.Add(lease).UnixNano())
}

// Fenced reports whether the room's lease is held by this node but no
// renewal was tried for a whole lease: the node was stalled (SIGSTOP, a
// paused VM) and the room may have moved meanwhile. Its room holds still
// until the next renewal says (conference.Config.Fenced). A renewal that
// failed for want of Redis does not fence: nobody else can take the room
// then, and it goes on.
func (r *Router) Fenced(room string) bool {
	h := r.holding(room)
	return h != nil && time.Now().UnixNano()-h.tried.Load() > int64(r.cfg.Lease)
}

// holding returns the room this node owns, or nil.
func (r *Router) holding(room string) *holding {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.held[room]
}

// Owns reports whether this node holds room's lease at some epoch, and
// which.
func (r *Router) Owns(room string) (epoch int64, ok bool) {
	if h := r.holding(room); h != nil {
		return h.epoch.Load(), true
	}
	return 0, false
}

// hold starts holding room, taken at epoch: a rebuilt session comes from
// the room's mirror when there is one, and the lease is renewed every
// lease/3 until the room is empty here (then released) or lost.
func (r *Router) hold(ctx context.Context, g group.Group, epoch int64) {
	start := time.Now()
	h := &holding{room: g.Name}
	h.epoch.Store(epoch)
	h.renewed(start, r.cfg.Lease)
	h.tried.Store(start.UnixNano())
	r.mu.Lock()
	r.held[g.Name] = h
	r.mu.Unlock()
	if r.cfg.Mirror != nil && !r.cfg.Conf.Has(g.Name) {
		r.restore(ctx, g, epoch)
	}
	r.wg.Add(1)
	go r.renew(g.Name, h)
}

// restore rebuilds g's room from its mirror, when a node that owned it
// before left one: the callers it had get their seats back as they come.
func (r *Router) restore(ctx context.Context, g group.Group, epoch int64) {
	raw, at, ok, err := r.cfg.Mirror.Load(ctx, g.Name)
	if err != nil {
		r.cfg.Log.Warn("room mirror unreadable; the room starts afresh", "group", g.Name, "error", err.Error())
		return
	}
	if !ok {
		return
	}
	snap, err := rules.DecodeSnapshot(raw)
	if err != nil {
		r.cfg.Log.Warn("room mirror unreadable; the room starts afresh", "group", g.Name, "error", err.Error())
		return
	}
	if err := r.cfg.Conf.Restore(g, snap); err != nil {
		r.cfg.Log.Warn("room not rebuilt from its mirror", "group", g.Name, "error", err.Error())
		return
	}
	r.cfg.Log.Info("room rebuilt from its mirror", "group", g.Name, "epoch", epoch, "mirror_epoch", at)
}

// renew keeps h's lease until the room is empty here or another node has
// taken it; Redis being unreachable changes nothing (the room goes on,
// and nobody else can take it either).
func (r *Router) renew(room string, h *holding) {
	defer r.wg.Done()
	t := time.NewTicker(r.cfg.Lease / 3)
	defer t.Stop()
	idle := 0
	for {
		select {
		case <-r.ctx.Done():
			r.release(room, h)
			return
		case <-t.C:
		}
		if h.gone.Load() {
			return
		}
		start := time.Now()
		ctx, cancel := context.WithTimeout(r.ctx, r.cfg.Lease/3)
		err := r.cfg.Owners.Renew(ctx, room, h.epoch.Load())
		if !errors.Is(err, cluster.ErrLost) {
			h.tried.Store(time.Now().UnixNano())
		}
		switch {
		case err == nil:
			h.renewed(start, r.cfg.Lease)
			if r.cfg.Conf.Has(room) {
				idle = 0
			} else if idle++; idle >= 2 {
				// Two renewals without a room: its session has ended.
				r.forget(room, h)
				if !r.cfg.Conf.Has(room) {
					cancel()
					r.release(room, h)
					return
				}
				// A caller started a new session meanwhile: keep it.
				r.mu.Lock()
				r.held[room] = h
				r.mu.Unlock()
				idle = 0
			}
		case errors.Is(err, cluster.ErrLost):
			back, rerr := r.reassert(ctx, room, h)
			if rerr != nil {
				h.tried.Store(time.Now().UnixNano())
				r.cfg.Log.Warn("room lease lost and not taken back yet", "group", room, "error", rerr.Error())
				break
			}
			if back {
				h.renewed(start, r.cfg.Lease)
				h.tried.Store(time.Now().UnixNano())
				break
			}
			cancel()
			r.giveUp(room, h)
			return
		default:
			r.cfg.Log.Warn("room lease not renewed; the room goes on", "group", room, "error", err.Error())
		}
		cancel()
	}
}

// reassert takes room again when its lease is gone but nobody else has
// it (Redis restarted empty, or this node stalled and nobody needed the
// room), at a higher epoch; it reports whether this node owns it again,
// and an error when Redis could not say.
func (r *Router) reassert(ctx context.Context, room string, h *holding) (bool, error) {
	claim, took, err := r.cfg.Owners.Reassert(ctx, room, max(h.epoch.Load(), r.seenOf(room)))
	if err != nil {
		return false, err
	}
	r.saw(room, claim.Epoch)
	if !took {
		return false, nil
	}
	h.epoch.Store(claim.Epoch)
	r.cfg.Log.Info("room lease taken again", "group", room, "epoch", claim.Epoch)
	return true, nil
}

// giveUp hands the room over to the node that took it: every caller here
// is let go with conference.ReasonMoved and joins it there.
func (r *Router) giveUp(room string, h *holding) {
	r.forget(room, h)
	moved := r.cfg.Conf.Handoff(room)
	r.cfg.Log.Warn("room taken by another node; its callers follow it", "group", room, "had_room", moved)
}

// release gives up an ended room's lease (the room deleted its mirror
// when its session ended: conference.Config.MirrorEnded).
func (r *Router) release(room string, h *holding) {
	r.forget(room, h) // no-op when already forgotten
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = r.cfg.Owners.Release(ctx, room, h.epoch.Load())
}

func (r *Router) forget(room string, h *holding) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.held[room] == h {
		delete(r.held, room)
	}
}
