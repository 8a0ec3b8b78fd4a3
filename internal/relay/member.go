package relay

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"time"

	"github.com/groupbridge/groupbridge/internal/callflow"
	"github.com/groupbridge/groupbridge/internal/cluster"
	"github.com/groupbridge/groupbridge/internal/conference"
	"github.com/groupbridge/groupbridge/internal/group"
	"github.com/groupbridge/groupbridge/internal/sipua"
	"github.com/groupbridge/groupbridge/media/g711"
	"github.com/groupbridge/groupbridge/media/rtpio"
)

// LegHeader carries an internal leg's signed terms (cluster.Signer).
const LegHeader = "X-Groupbridge-Leg"

// How long a leg may take: its answer, and the owner's first audio (the
// room sends every tick once the caller is seated).
const (
	legRing  = 3 * time.Second
	legSeat  = 3 * time.Second
	keyQueue = 32
)

// relayed is a caller of this node seated in a room on another node: the
// internal leg to the owner and the packet relay between it and the
// caller's stream. It is the callflow.Member the call flow drives.
type relayed struct {
	r      *Router
	room   string
	owner  cluster.Claim
	caller Call
	leg    *sipua.Call
	link   *rtpio.Relay
	mode   sipua.DigitMode
	keys   chan byte

	once   sync.Once
	done   chan struct{}
	reason string // written before done closes
}

// joinThere places an internal leg to the room's owner and relays the
// caller to it.
func (r *Router) joinThere(ctx context.Context, c Call, g group.Group, req conference.JoinRequest,
	claim cluster.Claim) (callflow.Member, bool, error) {
	info, ok, err := r.cfg.Nodes.Get(ctx, claim.Node)
	if err != nil {
		return nil, true, err
	}
	if !ok {
		// The owner has stopped beating: it is gone, and its lease
		// lapses soon; then this node takes the room.
		return nil, true, fmt.Errorf("owner node %s has no heartbeat", claim.Node)
	}
	addr, err := netip.ParseAddrPort(info.Listen)
	if err != nil || !r.peer(addr.Addr()) {
		r.cfg.Log.Error("owner node's cluster.listen is not in cluster.peers; cannot relay", "group", g.Name,
			"node", claim.Node, "listen", info.Listen)
		return nil, false, fmt.Errorf("relay: %s: node %s at %q: %w", g.Name, claim.Node, info.Listen, callflow.ErrUnavailable)
	}
	leg := cluster.Leg{From: r.cfg.Node, Room: g.Name, Role: req.Role, Language: req.Language,
		Identity: req.Identity, Epoch: claim.Epoch, Reconnect: req.Reconnect, Downlink: r.cfg.Bundles}
	var tag uint32
	opts := sipua.DialOptions{
		Transport:   "udp",
		From:        r.cfg.Node,
		RingTimeout: legRing,
		Codecs:      []g711.Codec{c.Codec()},
		DTMFPT:      c.TelephoneEvent(), // none (-1) when the caller has none: the owner hears its keys in-band
		Sign: func(callID string, sdp []byte) ([]sipua.Header, *rtpio.SRTPKeys, error) {
			tok, nonce, err := r.cfg.Signer.Sign(leg, callID, sdp)
			if err != nil {
				return nil, nil, err
			}
			tag = cluster.LegTag(nonce)
			dialler, answerer := r.cfg.Signer.LegKeys(nonce)
			return []sipua.Header{{Name: LegHeader, Value: tok}}, legKeys(dialler, answerer), nil
		},
	}
	lc, err := r.internal().Dial(ctx, "sip:groupbridge@"+addr.String(), opts)
	if err != nil {
		// Not the owner any more, or not reachable: look again.
		return nil, true, err
	}
	if r.cfg.Bundles != 0 {
		if err := lc.Stream().AcceptBundles(tag); err != nil {
			lc.Hangup("relay-failed")
			return nil, false, fmt.Errorf("relay: %s: %w", g.Name, err)
		}
	}
	link, err := r.cfg.Engine.Relay(c.Stream(), lc.Stream(), claim.Epoch)
	if err != nil {
		lc.Hangup("relay-failed")
		return nil, false, fmt.Errorf("relay: %s: %w", g.Name, err)
	}
	m := &relayed{r: r, room: g.Name, owner: claim, caller: c, leg: lc, link: link,
		keys: make(chan byte, keyQueue), done: make(chan struct{})}
	m.mode = sipua.DigitInfo
	if lc.Media().DTMFPT >= 0 {
		m.mode = sipua.DigitRFC4733
	}
	if err := m.seated(ctx); err != nil {
		m.stop("not-seated")
		var refused refusal
		if errors.As(err, &refused) {
			return nil, false, refused.err()
		}
		return nil, true, err
	}
	r.watch(m)
	go m.run()
	return m, false, nil
}

// seated waits for the owner's first audio, which says the room took the
// caller, or for its hang-up, which says why not.
func (m *relayed) seated(ctx context.Context) error {
	limit := time.NewTimer(legSeat)
	defer limit.Stop()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		if m.link.Stats().ToCaller > 0 {
			return nil
		}
		select {
		case <-m.leg.Context().Done():
			return refusal(m.leg.RemoteReason())
		case <-ctx.Done():
			return ctx.Err()
		case <-limit.C:
			return errors.New("the owner did not seat the caller in time")
		case <-tick.C:
		}
	}
}

// refusal is an owner's reason for not seating a caller.
type refusal string

func (r refusal) Error() string { return "owner refused: " + string(r) }

// err is the room's error for the reason, as the call flow words it.
func (r refusal) err() error {
	switch string(r) {
	case string(callflow.GroupFull):
		return conference.ErrFull
	case string(callflow.Locked):
		return conference.ErrLocked
	case string(callflow.Removed):
		return conference.ErrRemoved
	case string(callflow.Closed):
		return conference.ErrNotMeeting
	}
	return fmt.Errorf("relay: %w", conference.ErrClosed)
}

// run sends the caller's key presses over the leg and ends the member when
// the leg ends: with the owner's reason, or as moved when the owner went
// away without one.
func (m *relayed) run() {
	for {
		select {
		case d := <-m.keys:
			ctx, cancel := context.WithTimeout(m.leg.Context(), 2*time.Second)
			if err := m.leg.SendDigits(ctx, string(d), m.mode); err != nil && m.leg.Context().Err() == nil {
				m.r.cfg.Log.Warn("key press not relayed", "call", m.caller.ID(), "error", err.Error())
			}
			cancel()
		case <-m.leg.Context().Done():
			m.stop(m.r.ending(m.room, m.owner, m.leg.RemoteReason()))
			return
		case <-m.done:
			return
		}
	}
}

// ending is what a relayed caller is let go with when the owner at claim
// ended its leg with reason. An owner that is not the room's owner any
// more (it stalled past its lease, and its room may have ended by timers
// that ran out while it was stopped) has no say: its word is dropped,
// counted, and the caller follows the room. Redis unreachable: the word
// stands.
func (r *Router) ending(room string, claim cluster.Claim, reason string) string {
	reason = followed(reason)
	if reason == conference.ReasonMoved {
		return reason
	}
	ctx, cancel := context.WithTimeout(r.ctx, time.Second)
	defer cancel()
	now, owned, err := r.cfg.Owners.Owner(ctx, room)
	if err != nil || (owned && now.Node == claim.Node) {
		return reason
	}
	r.stale.Add(1)
	r.cfg.Log.Warn("an old owner's word dropped; the caller follows the room", "group", room,
		"old", claim.Node, "old_epoch", claim.Epoch, "reason", reason)
	return conference.ReasonMoved
}

// StaleWords counts the hang-ups of old owners the relays disregarded.
func (r *Router) StaleWords() uint64 { return r.stale.Load() }

// followed is what the caller is let go with when the owner ended the
// leg with reason: the room's own endings (removed, ended, ...) end the
// call; the owner going away (no word, its rooms closed at a stop, its
// SIP shut down) or the room moving sends the caller after the room,
// which another node takes from its mirror.
func followed(reason string) string {
	switch reason {
	case "", conference.ReasonMoved, "room-closed", "shutdown":
		return conference.ReasonMoved
	}
	return reason
}

// peer reports whether a is in cluster.peers.
func (r *Router) peer(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range r.cfg.Peers {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// Key relays a key press to the owner (one that came by SIP INFO: RFC 4733
// presses pass in the relayed packets).
func (m *relayed) Key(d byte) {
	select {
	case m.keys <- d:
	default: // a stuck leg: the caller's next try gets through
	}
}

func (m *relayed) Done() <-chan struct{} { return m.done }

func (m *relayed) Reason() string {
	select {
	case <-m.done:
		return m.reason
	default:
		return ""
	}
}

// Leave hangs up the leg: the caller has gone.
func (m *relayed) Leave() { m.stop("left") }

// Seat is not known here: the owner numbers the seats.
func (m *relayed) Seat() int { return 0 }

func (m *relayed) Restored() bool { return false }

// move ends the member because its room moved: the call flow joins the
// caller again where the room now is.
func (m *relayed) move() { m.stop(conference.ReasonMoved) }

// stop ends the relay and the leg, once, and tells the call flow why.
func (m *relayed) stop(reason string) {
	m.once.Do(func() {
		m.link.Stop() // the caller's stream is free again before done closes
		m.leg.Hangup(reason)
		m.reason = reason
		close(m.done)
		m.r.unwatch(m)
	})
}
