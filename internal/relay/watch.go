package relay

import (
	"context"
	"time"
)

// watching is a room on another node that this node relays callers to:
// its owner is looked up every lease/3, and when it changed (the owner
// died, stalled or gave the room up) the relays are fenced at the new
// epoch and their callers follow the room.
type watching struct {
	room    string
	members map[*relayed]struct{}
	stop    chan struct{}
}

// watch adds m to its room's watch, starting one for the room if needed.
func (r *Router) watch(m *relayed) {
	r.mu.Lock()
	defer r.mu.Unlock()
	w := r.watched[m.room]
	if w == nil {
		w = &watching{room: m.room, members: map[*relayed]struct{}{}, stop: make(chan struct{})}
		r.watched[m.room] = w
		r.wg.Add(1)
		go r.follow(w)
	}
	w.members[m] = struct{}{}
}

// unwatch takes m off its room's watch, ending the watch with the last.
func (r *Router) unwatch(m *relayed) {
	r.mu.Lock()
	defer r.mu.Unlock()
	w := r.watched[m.room]
	if w == nil {
		return
	}
	delete(w.members, m)
	if len(w.members) == 0 {
		delete(r.watched, m.room)
		close(w.stop)
	}
}

// follow looks up w's owner until the watch ends. Redis unreachable
// changes nothing: the relays go on to the owner they have.
func (r *Router) follow(w *watching) {
	defer r.wg.Done()
	t := time.NewTicker(r.cfg.Lease / 3)
	defer t.Stop()
	for {
		select {
		case <-r.ctx.Done():
			return
		case <-w.stop:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(r.ctx, r.cfg.Lease/3)
		claim, owned, err := r.cfg.Owners.Owner(ctx, w.room)
		cancel()
		if err != nil {
			continue
		}
		if owned {
			r.saw(w.room, claim.Epoch)
		}
		for _, m := range r.members(w) {
			switch {
			case owned && claim.Node == m.owner.Node:
				// The same owner (perhaps at a higher epoch after a Redis
				// restart): the leg stands.
			case owned:
				// Another node has the room: nothing the old owner sends
				// is let through any more, then the caller follows.
				m.link.SetEpoch(claim.Epoch)
				m.move()
			default:
				// The owner's lease lapsed: it died or stalled. The
				// caller's re-join takes the room (or finds who did).
				m.link.SetEpoch(m.owner.Epoch + 1)
				m.move()
			}
		}
	}
}

func (r *Router) members(w *watching) []*relayed {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]*relayed, 0, len(w.members))
	for m := range w.members {
		out = append(out, m)
	}
	return out
}
