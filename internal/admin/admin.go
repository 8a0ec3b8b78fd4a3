// Package admin is the operator's HTTP interface: health, metrics, the
// live rooms, and idempotent actions on them that go through the same
// session rules as the facilitator's keypad.
//
//	GET  /healthz                                 200 "ok", or 503 and the reason (no token needed)
//	GET  /metrics                                 Config.Metrics
//	GET  /api/rooms                               the live rooms and their seats
//	POST /api/rooms/{group}/seats/{n}/{action}    mute | unmute | wait | return | remove | facilitator
//	POST /api/rooms/{group}/{action}              lock | unlock | lecture-on | lecture-off | end
//	POST /api/drain                               stop taking calls; sessions end by themselves
//
// With a token configured every request but /healthz needs
// "Authorization: Bearer <token>". Answers under /api/ are JSON; errors are
// {"error": "..."} with 400 (bad seat number), 401, 404 (no such room, seat,
// action or path), 405 (wrong method), 409 (refused by the session's
// rules), 503 (shutting down) or 500 (a room did not answer).
//
// Privacy: answers and logs never hold a PIN or a caller number. Callers
// appear only in the masked form the conference was given; anything else in
// that field is replaced. Error answers are fixed texts that never repeat
// what the request said.
package admin

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/groupbridge/groupbridge/internal/conference"
	"github.com/groupbridge/groupbridge/internal/conference/rules"
)

// Rooms is what the API reads and acts on; *conference.Conference is one.
type Rooms interface {
	// Snapshot returns the live rooms.
	Snapshot() []conference.RoomView
	// Act carries out an action on group's live session. group is the name
	// as the request spelled it (decoded); matching it case-insensitively
	// is Act's job, as *conference.Conference does.
	Act(group string, a rules.Action, seat int) error
}

// Config is what the handler serves.
type Config struct {
	// Token, when not empty, is the bearer token every request but /healthz
	// must carry. The caller decides when an empty token is acceptable
	// (only on a loopback address).
	Token string
	// Rooms are the live rooms.
	Rooms Rooms
	// Drain stops taking new calls and lets sessions end by themselves. It
	// may be called more than once. Nil: POST /api/drain answers 501.
	Drain func()
	// Metrics serves /metrics (behind the token). Nil: 404.
	Metrics http.Handler
	// Health reports why the process should not get traffic (nil: healthy).
	// Its error text is sent to the prober. Nil Health: always healthy.
	Health func() error
	// Logger gets one line per action and per refused request (nil:
	// slog.Default).
	Logger *slog.Logger
}

// maxSeatDigits bounds the seat number in a path: seats are counted per
// session, and anything longer is no seat we could have.
const maxSeatDigits = 9

// NewHandler returns the admin API.
func NewHandler(cfg Config) http.Handler {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	h := &handler{cfg: cfg}
	if cfg.Token != "" {
		sum := sha256.Sum256([]byte(cfg.Token))
		h.tokenSum = sum[:]
	}
	mux := http.NewServeMux()
	// Each route is registered with its method and once more without, so
	// that a wrong method gets a JSON 405 (the ServeMux's own is text).
	route := func(method, path string, fn http.HandlerFunc) {
		mux.HandleFunc(method+" "+path, fn)
		allow := method
		if method == http.MethodGet {
			allow = "GET, HEAD"
		}
		mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Allow", allow)
			writeError(w, http.StatusMethodNotAllowed, "method not allowed; use "+method)
		})
	}
	route(http.MethodGet, "/healthz", h.healthz)
	route(http.MethodGet, "/metrics", h.metrics)
	route(http.MethodGet, "/api/rooms", h.rooms)
	route(http.MethodPost, "/api/rooms/{group}/seats/{n}/{action}", h.seatAction)
	route(http.MethodPost, "/api/rooms/{group}/{action}", h.roomAction)
	route(http.MethodPost, "/api/drain", h.drain)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "not found")
	})
	h.mux = mux
	return h
}

type handler struct {
	cfg      Config
	tokenSum []byte // SHA-256 of the token; nil when none is required
	mux      *http.ServeMux
}

// ServeHTTP checks the token, then routes. Only the exact /healthz path is
// open: load balancers and systemd probes carry no token.
func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	if h.tokenSum != nil && r.URL.Path != "/healthz" {
		if ok, presented := h.authorized(r); !ok {
			challenge := `Bearer realm="groupbridge"`
			if presented {
				challenge += `, error="invalid_token"`
			}
			w.Header().Set("WWW-Authenticate", challenge)
			h.cfg.Logger.Warn("admin request refused: no valid token", "remote", r.RemoteAddr, "method", r.Method)
			writeError(w, http.StatusUnauthorized, "a valid bearer token is required")
			return
		}
	}
	h.mux.ServeHTTP(w, r)
}

// authorized reports whether r carries the token, and whether it carried a
// bearer token at all (for the challenge's error code).
func (h *handler) authorized(r *http.Request) (ok, presented bool) {
	scheme, token, found := strings.Cut(r.Header.Get("Authorization"), " ")
	if !found || !strings.EqualFold(scheme, "Bearer") {
		return false, false
	}
	token = strings.TrimSpace(token)
	// Compare digests so that the time taken tells nothing about the
	// token, its length included.
	sum := sha256.Sum256([]byte(token))
	return subtle.ConstantTimeCompare(sum[:], h.tokenSum) == 1, true
}

func (h *handler) healthz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if h.cfg.Health != nil {
		if err := h.cfg.Health(); err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte(err.Error()))
			return
		}
	}
	_, _ = w.Write([]byte("ok"))
}

func (h *handler) metrics(w http.ResponseWriter, r *http.Request) {
	if h.cfg.Metrics == nil {
		writeError(w, http.StatusNotFound, "metrics are not enabled")
		return
	}
	h.cfg.Metrics.ServeHTTP(w, r)
}

// roomsAnswer is the JSON of GET /api/rooms.
type roomsAnswer struct {
	Rooms []roomJSON `json:"rooms"`
}

type roomJSON struct {
	Group      string     `json:"group"`
	Started    time.Time  `json:"started"`
	Locked     bool       `json:"locked"`
	Lecture    bool       `json:"lecture"`
	ShareTimer bool       `json:"share_timer"`
	Seats      []seatJSON `json:"seats"`
}

type seatJSON struct {
	Seat             int    `json:"seat"`
	Role             string `json:"role"`
	Placement        string `json:"placement"`
	Muted            bool   `json:"muted"`
	SelfMuted        bool   `json:"self_muted"`
	FacilitatorMuted bool   `json:"facilitator_muted"`
	Talking          bool   `json:"talking"`
	HandRaised       bool   `json:"hand_raised"`
	Floor            bool   `json:"floor"`
	Heard            bool   `json:"heard"`
	Leaving          bool   `json:"leaving"`
	Caller           string `json:"caller"`
}

func (h *handler) rooms(w http.ResponseWriter, r *http.Request) {
	views := h.cfg.Rooms.Snapshot()
	out := roomsAnswer{Rooms: make([]roomJSON, 0, len(views))}
	for _, v := range views {
		rj := roomJSON{
			Group: v.Group, Started: v.Started.UTC(), Locked: v.Locked, Lecture: v.Lecture,
			ShareTimer: v.ShareTimer, Seats: make([]seatJSON, 0, len(v.Seats)),
		}
		for _, s := range v.Seats {
			rj.Seats = append(rj.Seats, seatJSON{
				Seat: s.Seat, Role: s.Role, Placement: s.Placement,
				Muted: s.Muted, SelfMuted: s.SelfMuted, FacilitatorMuted: s.FacilitatorMuted,
				Talking: s.Talking, HandRaised: s.HandRaised, Floor: s.Floor, Heard: s.Heard,
				Leaving: s.Leaving, Caller: maskedOnly(s.Caller),
			})
		}
		out.Rooms = append(out.Rooms, rj)
	}
	writeJSON(w, http.StatusOK, out)
}

// maskedOnly passes a caller through only in a masked form
// (logging.MaskCaller's "+1•••••4567", "•••67", "a•••" or "anonymous"):
// a caller number that reached this far by mistake is not shown.
func maskedOnly(caller string) string {
	if caller == "" || caller == "anonymous" {
		return caller
	}
	digits := 0
	for _, r := range caller {
		if r >= '0' && r <= '9' {
			digits++
		}
	}
	if !strings.Contains(caller, "•") || digits > 5 {
		return "•••"
	}
	return caller
}

func (h *handler) seatAction(w http.ResponseWriter, r *http.Request) {
	a, err := rules.ParseAction(r.PathValue("action"))
	if err != nil || !a.SeatAction() {
		writeError(w, http.StatusNotFound, "no such seat action")
		return
	}
	seat, ok := parseSeat(r.PathValue("n"))
	if !ok {
		writeError(w, http.StatusBadRequest, "bad seat number: a whole number from 1")
		return
	}
	h.act(w, r.PathValue("group"), a, seat)
}

func (h *handler) roomAction(w http.ResponseWriter, r *http.Request) {
	a, err := rules.ParseAction(r.PathValue("action"))
	if err != nil || a.SeatAction() {
		writeError(w, http.StatusNotFound, "no such room action")
		return
	}
	h.act(w, r.PathValue("group"), a, 0)
}

// parseSeat accepts digits only (no sign, no spaces) for a seat from 1.
func parseSeat(s string) (int, bool) {
	if s == "" || len(s) > maxSeatDigits {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.Atoi(s)
	return n, err == nil && n >= 1
}

// act carries out a on group and answers with the outcome.
func (h *handler) act(w http.ResponseWriter, group string, a rules.Action, seat int) {
	err := h.cfg.Rooms.Act(group, a, seat)
	if err == nil {
		h.cfg.Logger.Info("admin action", "group", group, "action", a.String(), "seat", seat)
		writeJSON(w, http.StatusOK, map[string]any{"ok": true})
		return
	}
	status, msg := http.StatusInternalServerError, "the room did not answer"
	switch {
	case errors.Is(err, conference.ErrNoSuchRoom):
		status, msg = http.StatusNotFound, "no such room: the group has no live session"
	case errors.Is(err, rules.ErrNoSeat):
		status, msg = http.StatusNotFound, "no caller in that seat"
	case errors.Is(err, rules.ErrUnknownAction):
		status, msg = http.StatusNotFound, "no such action"
	case errors.Is(err, rules.ErrFacilitator):
		status, msg = http.StatusConflict, "not done to a facilitator"
	case errors.Is(err, rules.ErrWaiting):
		status, msg = http.StatusConflict, "the caller is in waiting: return them first"
	case errors.Is(err, rules.ErrLobby):
		status, msg = http.StatusConflict, "the caller is in the lobby until a facilitator joins"
	case errors.Is(err, rules.ErrEnded):
		status, msg = http.StatusConflict, "the session has ended"
	case errors.Is(err, conference.ErrClosed):
		status, msg = http.StatusServiceUnavailable, "the bridge is shutting down"
	}
	// The group is left out of the log: a name that matched no room is
	// whatever the client typed.
	h.cfg.Logger.Info("admin action refused", "action", a.String(), "seat", seat, "status", status, "reason", msg)
	writeError(w, status, msg)
}

func (h *handler) drain(w http.ResponseWriter, r *http.Request) {
	if h.cfg.Drain == nil {
		writeError(w, http.StatusNotImplemented, "drain is not available")
		return
	}
	h.cfg.Drain()
	h.cfg.Logger.Info("admin drain: new calls are refused; sessions end by themselves")
	writeJSON(w, http.StatusAccepted, map[string]any{"draining": true})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}
