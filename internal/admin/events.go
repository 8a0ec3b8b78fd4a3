package admin

import (
	"bytes"
	"encoding/json"
	"net/http"
	"sync"
	"time"

	"github.com/groupbridge/groupbridge/internal/conference"
	"github.com/groupbridge/groupbridge/internal/wallclock"
)

// The console's live view: GET /api/events is a server-sent event stream
// whose "rooms" events carry the rooms as consoleRoom, at once on connect
// and whenever the view changes. The view is built here, field by field,
// and has no caller field at all: whatever log.callers says, no number or
// masked number reaches the page.
type consoleRoom struct {
	Group        string        `json:"group"`
	Started      time.Time     `json:"started"`
	MeetingStart *time.Time    `json:"meeting_start"`
	MeetingEnd   *time.Time    `json:"meeting_end"`
	Locked       bool          `json:"locked"`
	Lecture      bool          `json:"lecture"`
	Node         string        `json:"node,omitempty"` // the owner, on a cluster node
	Seats        []consoleSeat `json:"seats"`
}

type consoleSeat struct {
	Seat             int    `json:"seat"`
	Role             string `json:"role"`
	Talking          bool   `json:"talking"`
	Muted            bool   `json:"muted"`
	SelfMuted        bool   `json:"self_muted"`
	FacilitatorMuted bool   `json:"facilitator_muted"`
	Hand             bool   `json:"hand"`
	Floor            bool   `json:"floor"`
	Placement        string `json:"placement"`
	Leaving          bool   `json:"leaving"`
	Via              string `json:"via,omitempty"` // the cluster node relaying the caller
}

// consoleView is the JSON of the console's view of views.
func consoleView(views []conference.RoomView) []byte {
	out := make([]consoleRoom, 0, len(views))
	utc := func(t time.Time) *time.Time {
		if t.IsZero() {
			return nil
		}
		t = t.UTC()
		return &t
	}
	for _, v := range views {
		r := consoleRoom{
			Group: v.Group, Started: v.Started.UTC(), MeetingStart: utc(v.MeetingStart), MeetingEnd: utc(v.MeetingEnd),
			Locked: v.Locked, Lecture: v.Lecture, Node: v.Node, Seats: make([]consoleSeat, 0, len(v.Seats)),
		}
		for _, s := range v.Seats {
			r.Seats = append(r.Seats, consoleSeat{
				Seat: s.Seat, Role: s.Role, Talking: s.Talking, Muted: s.Muted, SelfMuted: s.SelfMuted,
				FacilitatorMuted: s.FacilitatorMuted, Hand: s.HandRaised, Floor: s.Floor,
				Placement: s.Placement, Leaving: s.Leaving, Via: s.Via,
			})
		}
		out = append(out, r)
	}
	b, _ := json.Marshal(out) // plain structs: cannot fail
	return b
}

const (
	// pollEvery is how often the rooms are looked at while a console
	// listens: a talking mark shows within half a second.
	pollEvery = 200 * time.Millisecond
	// maxListeners bounds the open event streams: each holds a connection
	// and a goroutine.
	maxListeners = 16
	// keepAliveEvery sends a comment on a quiet stream, so that proxies
	// and the browser see it is alive.
	keepAliveEvery = 15 * time.Second
	// writeWait is how long one event may take to reach a client; a
	// stalled client is dropped.
	writeWait = 10 * time.Second
)

// hub polls the rooms for the event streams: one goroutine, running only
// while at least one stream is open, sends the view when it changed.
type hub struct {
	rooms Rooms
	clock wallclock.Clock

	mu        sync.Mutex
	listeners map[chan []byte]struct{}
	polling   bool
	closed    bool
	done      chan struct{} // closed by close: streams end
}

func newHub(rooms Rooms, clock wallclock.Clock) *hub {
	return &hub{rooms: rooms, clock: clock, listeners: make(map[chan []byte]struct{}), done: make(chan struct{})}
}

// join adds a listener; false when the hub is closed or full.
func (h *hub) join() (chan []byte, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed || len(h.listeners) >= maxListeners {
		return nil, false
	}
	ch := make(chan []byte, 1)
	h.listeners[ch] = struct{}{}
	if !h.polling {
		h.polling = true
		go h.poll()
	}
	return ch, true
}

func (h *hub) leave(ch chan []byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.listeners, ch)
}

// close ends every stream and the poller; new streams are refused.
func (h *hub) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.closed {
		h.closed = true
		close(h.done)
	}
}

// poll sends the view to every listener when it changed, until the last
// listener leaves or the hub closes.
func (h *hub) poll() {
	var last []byte
	t := h.clock.NewTimer(pollEvery)
	defer t.Stop()
	for {
		select {
		case <-h.done:
			h.mu.Lock()
			h.polling = false
			h.mu.Unlock()
			return
		case <-t.C():
		}
		view := consoleView(h.rooms.Snapshot())
		h.mu.Lock()
		if len(h.listeners) == 0 || h.closed {
			h.polling = false
			h.mu.Unlock()
			return
		}
		if !bytes.Equal(view, last) {
			last = view
			for ch := range h.listeners {
				// Only the newest view matters to a slow listener.
				select {
				case <-ch:
				default:
				}
				ch <- view
			}
		}
		h.mu.Unlock()
		t.Reset(pollEvery)
	}
}

// events serves the stream. It ends when the client goes, when the handler
// is closed (the server shuts down) or when a write stalls.
func (h *Handler) events(w http.ResponseWriter, r *http.Request) {
	ch, ok := h.hub.join()
	if !ok {
		w.Header().Set("Retry-After", "5")
		writeError(w, http.StatusServiceUnavailable, "too many console connections, or shutting down")
		return
	}
	defer h.hub.leave(ch)
	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "text/event-stream")
	w.WriteHeader(http.StatusOK)
	send := func(chunks ...[]byte) bool {
		// The server's write timeout is for ordinary answers; a stream
		// gets a deadline per write instead.
		_ = rc.SetWriteDeadline(time.Now().Add(writeWait))
		for _, c := range chunks {
			if _, err := w.Write(c); err != nil {
				return false
			}
		}
		return rc.Flush() == nil
	}
	var sent []byte
	event := func(view []byte) bool {
		if bytes.Equal(view, sent) {
			return true // the poller's first look, seen already
		}
		sent = view
		return send([]byte("event: rooms\ndata: "), view, []byte("\n\n"))
	}
	if !send([]byte("retry: 2000\n\n")) || !event(consoleView(h.cfg.Rooms.Snapshot())) {
		return
	}
	keepAlive := h.clock.NewTimer(keepAliveEvery)
	defer keepAlive.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-h.hub.done:
			return
		case view := <-ch:
			if !event(view) {
				return
			}
		case <-keepAlive.C():
			if !send([]byte(": keep-alive\n\n")) {
				return
			}
		}
		keepAlive.Reset(keepAliveEvery)
	}
}
