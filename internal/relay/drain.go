package relay

import (
	"context"
	"time"
)

// drainTake is how long a draining node's caller waits for another node to
// take a room before its own node takes it after all (nobody else had a
// caller in it).
const drainTake = 3 * time.Second

// Drain hands the rooms this node owns that callers of other nodes sit in
// to one of those nodes, so that an operator can stop this node without
// waiting for those meetings to end: the lease is given up (the mirror
// kept), the room here stops, and every caller follows the room to the
// node that takes it from its mirror (the first relay to notice). This
// node takes no room from now on while another may. Rooms of this node's
// callers alone go on here until they end.
func (r *Router) Drain() {
	r.draining.Store(true)
	shared := map[string]bool{}
	for _, v := range r.cfg.Conf.Snapshot() {
		for _, s := range v.Seats {
			if s.Via != "" {
				shared[v.Group] = true
			}
		}
	}
	r.mu.Lock()
	var give []*holding
	for room, h := range r.held {
		if shared[room] {
			give = append(give, h)
		}
	}
	r.mu.Unlock()
	for _, h := range give {
		h.gone.Store(true)
		r.forget(h.room, h)
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := r.cfg.Owners.Release(ctx, h.room, h.epoch.Load())
		cancel()
		if err != nil {
			r.cfg.Log.Warn("draining: room lease not given up; it lapses instead", "group", h.room, "error", err.Error())
		}
		r.cfg.Conf.Handoff(h.room)
		r.cfg.Log.Info("draining: room handed on", "group", h.room)
	}
}
