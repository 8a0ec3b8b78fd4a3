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
// {"error": "..."} with 400 (bad seat number), 401, 403 (sent by a page of
// another web site), 404 (no such room, seat, action or path), 405 (wrong
// method), 409 (refused by the session's rules), 415 (a POST without a token
// and without Content-Type: application/json), 421 (a Host the API does not
// answer to), 503 (shutting down) or 500 (a room did not answer).
//
// Browsers: a web page open on the operator's machine can send requests to
// a loopback API that has no token. Three checks keep such a page from
// acting: the Host header must name one of Config.Hosts (a DNS rebinding
// page sends its own name), a state-changing request whose Origin or
// Sec-Fetch-Site shows another site is refused, and a POST without a valid
// bearer token must say Content-Type: application/json, which a page of
// another origin cannot send without a CORS preflight this API never
// grants. /healthz is exempt from all three, as from the token: probes
// address the machine by whatever name they have, and it acts on nothing.
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
	"mime"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/groupbridge/groupbridge/internal/conference"
	"github.com/groupbridge/groupbridge/internal/conference/rules"
	"github.com/groupbridge/groupbridge/internal/logging"
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
	// Hosts are the names and addresses (admin.hosts) a request's Host
	// header may name, with any port or none. Nil: LocalHosts.
	Hosts []string
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

// LocalHosts returns the names of this machine that the API answers to
// when Config.Hosts is nil.
func LocalHosts() []string { return []string{"localhost", "127.0.0.1", "::1"} }

// NewHandler returns the admin API.
func NewHandler(cfg Config) http.Handler {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Hosts == nil {
		cfg.Hosts = LocalHosts()
	}
	h := &handler{cfg: cfg, hosts: make(map[string]bool, len(cfg.Hosts))}
	for _, name := range cfg.Hosts {
		if n, ok := hostName(name); ok {
			h.hosts[n] = true
		} else if n, ok := hostName("[" + name + "]"); ok {
			h.hosts[n] = true // a bare IPv6 address, as admin.hosts allows
		}
	}
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
	tokenSum []byte          // SHA-256 of the token; nil when none is required
	hosts    map[string]bool // Config.Hosts as hostName gives them
	mux      *http.ServeMux
}

// ServeHTTP checks the Host, the token and where a state-changing request
// came from, then routes. Only the exact /healthz path is open: load
// balancers and systemd probes carry no token.
func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	if r.URL.Path == "/healthz" {
		h.mux.ServeHTTP(w, r)
		return
	}
	refuse := func(status int, reason, msg string) {
		h.cfg.Logger.Warn("admin request refused: "+reason, "remote", r.RemoteAddr, "method", r.Method)
		writeError(w, status, msg)
	}
	if name, ok := hostName(r.Host); !ok || !h.hosts[name] {
		refuse(http.StatusMisdirectedRequest, "Host not in admin.hosts",
			"this API does not answer to the name in the Host header; admin.hosts lists the names it answers to")
		return
	}
	tokenOK := false
	if h.tokenSum != nil {
		ok, presented := h.authorized(r)
		if !ok {
			challenge := `Bearer realm="groupbridge"`
			if presented {
				challenge += `, error="invalid_token"`
			}
			w.Header().Set("WWW-Authenticate", challenge)
			refuse(http.StatusUnauthorized, "no valid token", "a valid bearer token is required")
			return
		}
		tokenOK = true
	}
	if !safeMethod(r.Method) {
		if crossSite(r) {
			refuse(http.StatusForbidden, "sent by another web site",
				"refused: the request came from a page of another web site (Origin or Sec-Fetch-Site)")
			return
		}
		// A page of another origin can POST a form without a preflight,
		// but not with this content type; a bearer token it cannot send.
		if r.Method == http.MethodPost && !tokenOK && !jsonContent(r) {
			refuse(http.StatusUnsupportedMediaType, "not JSON",
				"a POST without a bearer token needs Content-Type: application/json")
			return
		}
	}
	h.mux.ServeHTTP(w, r)
}

// safeMethod reports whether m changes nothing, by HTTP's definition.
func safeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions || m == http.MethodTrace
}

// hostName returns the name or address a Host header (or an admin.hosts
// entry) names, without its port, in lower case without a final dot, with
// an IP address in its canonical form; false when it is not a host.
func hostName(host string) (string, bool) {
	name := host
	if strings.HasPrefix(host, "[") {
		end := strings.IndexByte(host, ']')
		if end < 0 || !validPort(host[end+1:]) {
			return "", false
		}
		a, err := netip.ParseAddr(host[1:end])
		if err != nil || !a.Is6() || a.Zone() != "" {
			return "", false
		}
		return a.Unmap().String(), true
	}
	if i := strings.IndexByte(host, ':'); i >= 0 {
		if !validPort(host[i:]) {
			return "", false // a bare IPv6 address, or a bad port
		}
		name = host[:i]
	}
	name = strings.ToLower(strings.TrimSuffix(name, "."))
	if a, err := netip.ParseAddr(name); err == nil {
		return a.Unmap().String(), true
	}
	if name == "" || strings.ContainsAny(name, "[]:/@%") {
		return "", false
	}
	return name, true
}

// validPort accepts "" or ":" followed by 1 to 5 digits.
func validPort(s string) bool {
	if s == "" {
		return true
	}
	if len(s) < 2 || len(s) > 6 || s[0] != ':' {
		return false
	}
	for i := 1; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// crossSite reports whether a browser says r was sent by a page that is
// not this API's own origin: Sec-Fetch-Site (sent by current browsers) is
// cross-site or same-site (another port or subdomain of the same site),
// or Origin is present and not the origin the Host header names. Clients
// other than browsers send neither.
func crossSite(r *http.Request) bool {
	switch strings.ToLower(strings.TrimSpace(r.Header.Get("Sec-Fetch-Site"))) {
	case "cross-site", "same-site":
		return true
	}
	origins := r.Header.Values("Origin")
	if len(origins) == 0 {
		return false
	}
	if len(origins) > 1 {
		return true
	}
	// "null" (a sandboxed page or a file) fails to parse as ours below.
	u, err := url.Parse(origins[0])
	if err != nil || u.Host == "" || u.User != nil || (u.Path != "" && u.Path != "/") {
		return true
	}
	return !sameHostPort(u.Scheme, u.Host, r.Host)
}

// sameHostPort compares an origin's host[:port] with a Host header, with
// the scheme's default port filled in on both sides.
func sameHostPort(scheme, origin, host string) bool {
	var port string
	switch scheme {
	case "http":
		port = "80"
	case "https":
		port = "443"
	default:
		return false
	}
	norm := func(hp string) (string, bool) {
		name, ok := hostName(hp)
		if !ok {
			return "", false
		}
		p := port
		if _, pp, err := net.SplitHostPort(hp); err == nil {
			p = pp
		}
		return net.JoinHostPort(name, p), true
	}
	a, okA := norm(origin)
	b, okB := norm(host)
	return okA && okB && a == b
}

// jsonContent reports whether r's body is declared as JSON.
func jsonContent(r *http.Request) bool {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return err == nil && mt == "application/json"
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

// maskedOnly passes a caller through only as a tag (logging.Tags, the
// default of log.callers) or in a masked form (logging.MaskCaller's
// "+1•••••4567", "•••67", "a•••" or "anonymous"): a caller number that
// reached this far by mistake is not shown.
func maskedOnly(caller string) string {
	if caller == "" || logging.IsTag(caller) {
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
