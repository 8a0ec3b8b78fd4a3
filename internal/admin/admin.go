// Package admin is the operator's HTTP interface: health, metrics, the
// live rooms, idempotent actions on them that go through the same session
// rules as the facilitator's keypad, the console (a web page) and the
// stored attendance.
//
//	GET  /healthz                                 200 "ok", or 503 and the reason (no token needed)
//	GET  /metrics                                 Config.Metrics
//	GET  /api/rooms                               the live rooms and their seats (no caller for a browser)
//	POST /api/rooms/{group}/seats/{n}/{action}    mute | unmute | wait | return | remove | facilitator
//	POST /api/rooms/{group}/{action}              lock | unlock | lecture-on | lecture-off | end
//	POST /api/drain                               stop taking calls; sessions end by themselves
//	GET  /                                        the console (HTML); /login without a session
//	GET  /login                                   the sign-in page (with a token)
//	GET  /console/{file}                          the console's script, style sheet and icon
//	POST /api/login                               {"token": "..."}: sets the session cookie
//	POST /api/logout                              clears the session cookie
//	GET  /api/console/session                     {"csrf": "...", "sign_out": bool}
//	GET  /api/events                              server-sent "rooms" events: the console's view
//	GET  /api/attendance                          sessions; ?group= &since= &until= &format=json|csv
//	GET  /api/attendance/chart/{name}.svg         sessions.svg, people.svg (same filters)
//
// With a token configured every request but /healthz, the sign-in page and
// its POST, and the console's files needs "Authorization: Bearer <token>"
// or the console's session cookie (gb_session: HttpOnly, SameSite=Strict,
// Secure over TLS, signed with a key derived from the token, 12 hours).
// Wrong tokens, as a bearer or at the sign-in, count against the source
// address: 5 within a minute block it for 5 minutes (429 and Retry-After),
// as the SIP gate does with digest failures. Answers under /api/ are JSON;
// errors are {"error": "..."} with 400 (bad seat number or filter), 401,
// 403 (sent by a page of another web site, or without the CSRF token), 404
// (no such room, seat, action or path), 405 (wrong method), 409 (refused
// by the session's rules), 415 (a POST without a token and without
// Content-Type: application/json), 421 (a Host the API does not answer
// to), 429 (too many wrong tokens), 503 (shutting down, or too many
// consoles) or 500 (a room did not answer).
//
// Browsers: a web page open on the operator's machine can send requests to
// a loopback API that has no token. These checks keep such a page from
// acting: the Host header must name one of Config.Hosts (a DNS rebinding
// page sends its own name); a state-changing request whose Origin or
// Sec-Fetch-Site shows another site is refused; one that carries the
// session cookie, an Origin or a Sec-Fetch-Site needs the session's
// X-CSRF-Token (which only the console's own script can read); and a POST
// without a valid bearer token must say Content-Type: application/json,
// which a page of another origin cannot send without a CORS preflight
// this API never grants. Scripts (a bearer token, or no browser headers)
// are not asked for a CSRF token. Every answer carries a
// Content-Security-Policy that allows only this origin's own files, no
// inline script, and no framing. /healthz is exempt from the Host and
// browser checks, as from the token: probes address the machine by
// whatever name they have, and it acts on nothing.
//
// Privacy: answers and logs never hold a PIN or a caller number. Callers
// appear in GET /api/rooms only in the masked form the conference was
// given; anything else in that field is replaced. The console's view
// (/api/events) has no caller field at all. Error answers are fixed texts
// that never repeat what the request said.
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

	"github.com/groupbridge/groupbridge/internal/attendance"
	"github.com/groupbridge/groupbridge/internal/conference"
	"github.com/groupbridge/groupbridge/internal/conference/rules"
	"github.com/groupbridge/groupbridge/internal/logging"
	"github.com/groupbridge/groupbridge/internal/wallclock"
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
	// Attendance is the stored attendance the console and
	// GET /api/attendance read. Nil: those routes answer 404.
	Attendance attendance.Reader
	// Clock gives session expiry, the wrong-token blocks and the event
	// stream's polling (nil: the system clock).
	Clock wallclock.Clock
}

// maxSeatDigits bounds the seat number in a path: seats are counted per
// session, and anything longer is no seat we could have.
const maxSeatDigits = 9

// LocalHosts returns the names of this machine that the API answers to
// when Config.Hosts is nil.
func LocalHosts() []string { return []string{"localhost", "127.0.0.1", "::1"} }

// NewHandler returns the admin API and console.
func NewHandler(cfg Config) *Handler {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Hosts == nil {
		cfg.Hosts = LocalHosts()
	}
	h := &Handler{cfg: cfg, clock: wallclock.Or(cfg.Clock), hosts: make(map[string]bool, len(cfg.Hosts)),
		guard: newTokenGuard()}
	h.sessions = sessions{key: sessionKey(cfg.Token), clock: h.clock}
	h.hub = newHub(cfg.Rooms, h.clock)
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
	route(http.MethodGet, "/{$}", h.page)
	route(http.MethodGet, "/login", h.loginPage)
	route(http.MethodGet, "/console/{file}", h.asset)
	route(http.MethodPost, "/api/login", h.login)
	route(http.MethodPost, "/api/logout", h.logout)
	route(http.MethodGet, "/api/console/session", h.consoleSession)
	route(http.MethodGet, "/api/events", h.events)
	route(http.MethodGet, "/api/attendance", h.attendance)
	route(http.MethodGet, "/api/attendance/chart/{chart}", h.attendanceChart)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "not found")
	})
	h.mux = mux
	return h
}

// Handler is the admin API and console. Close it when the server shuts
// down: http.Server.Shutdown waits for open event streams, which end only
// then (register Close with http.Server.RegisterOnShutdown).
type Handler struct {
	cfg      Config
	clock    wallclock.Clock
	tokenSum []byte          // SHA-256 of the token; nil when none is required
	hosts    map[string]bool // Config.Hosts as hostName gives them
	sessions sessions        // the console's cookies and CSRF tokens
	guard    *tokenGuard
	hub      *hub
	mux      *http.ServeMux
}

// Close ends the event streams and refuses new ones; the rest of the API
// goes on answering. It may be called more than once.
func (h *Handler) Close() { h.hub.close() }

// ServeHTTP checks the Host, the credentials and where a state-changing
// request came from, then routes. Only the exact /healthz path is open to
// any Host: load balancers and systemd probes carry no token.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	hd.Set("Cache-Control", "no-store")
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Content-Security-Policy", contentSecurity)
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("Referrer-Policy", "no-referrer")
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
	bearerOK := false
	if h.tokenSum != nil {
		ok, presented := h.authorized(r)
		switch {
		case presented && h.refuseBlocked(w, r, h.clock.Now()):
			return
		case presented && !ok:
			h.wrongToken(r, h.clock.Now())
		}
		bearerOK = ok
		if !ok && (presented || !h.sessions.signedIn(r)) && !openWithoutToken(r) {
			challenge := `Bearer realm="groupbridge"`
			if presented {
				challenge += `, error="invalid_token"`
			}
			hd.Set("WWW-Authenticate", challenge)
			refuse(http.StatusUnauthorized, "no valid token", "a valid bearer token is required, or sign in at /login")
			return
		}
	}
	if !safeMethod(r.Method) {
		if crossSite(r) {
			refuse(http.StatusForbidden, "sent by another web site",
				"refused: the request came from a page of another web site (Origin or Sec-Fetch-Site)")
			return
		}
		// A browser's request (it has the cookie, or says where it came
		// from) must prove it was sent by the console's own script. The
		// sign-in itself has no session yet; the Origin check covers it.
		if !bearerOK && r.URL.Path != "/api/login" && fromBrowser(r) && !h.sessions.csrfOK(r) {
			refuse(http.StatusForbidden, "no valid CSRF token",
				"refused: a request from a browser needs the X-CSRF-Token of its session (GET /api/console/session)")
			return
		}
		// A page of another origin can POST a form without a preflight,
		// but not with this content type; a bearer token it cannot send.
		if r.Method == http.MethodPost && !bearerOK && !jsonContent(r) {
			refuse(http.StatusUnsupportedMediaType, "not JSON",
				"a POST without a bearer token needs Content-Type: application/json")
			return
		}
	}
	h.mux.ServeHTTP(w, r)
}

// openWithoutToken reports whether r may be served without credentials
// when a token is configured: the console's files, the sign-in page and
// its POST, and GET / (which sends the browser to the sign-in page).
func openWithoutToken(r *http.Request) bool {
	p := r.URL.Path
	switch {
	case p == "/api/login" && r.Method == http.MethodPost:
		return true
	case r.Method != http.MethodGet && r.Method != http.MethodHead:
		return false
	}
	return p == "/" || p == "/login" || (strings.HasPrefix(p, "/console/") && !strings.Contains(p[len("/console/"):], "/"))
}

// authed reports whether r carries the bearer token or a valid session.
func (h *Handler) authed(r *http.Request) bool {
	ok, _ := h.authorized(r)
	return ok || h.sessions.signedIn(r)
}

// fromBrowser reports whether r looks sent by a browser: it carries a
// session cookie, an Origin or a Sec-Fetch-Site or Sec-Fetch-Mode header.
func fromBrowser(r *http.Request) bool {
	if _, err := r.Cookie(sessionCookie); err == nil {
		return true
	}
	for _, h := range []string{"Origin", "Sec-Fetch-Site", "Sec-Fetch-Mode"} {
		if len(r.Header.Values(h)) > 0 {
			return true
		}
	}
	return false
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
func (h *Handler) authorized(r *http.Request) (ok, presented bool) {
	scheme, token, found := strings.Cut(r.Header.Get("Authorization"), " ")
	if !found || !strings.EqualFold(scheme, "Bearer") {
		return false, false
	}
	return h.tokenMatches(strings.TrimSpace(token)), true
}

// tokenMatches reports whether token is the configured one.
func (h *Handler) tokenMatches(token string) bool {
	if h.tokenSum == nil {
		return false
	}
	// Compare digests so that the time taken tells nothing about the
	// token, its length included.
	sum := sha256.Sum256([]byte(token))
	return subtle.ConstantTimeCompare(sum[:], h.tokenSum) == 1
}

func (h *Handler) healthz(w http.ResponseWriter, r *http.Request) {
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

func (h *Handler) metrics(w http.ResponseWriter, r *http.Request) {
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
	Node       string     `json:"node,omitempty"`  // the owner, on a cluster node
	Epoch      int64      `json:"epoch,omitempty"` // its take of the room
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
	Via              string `json:"via,omitempty"` // the cluster node relaying the caller
}

func (h *Handler) rooms(w http.ResponseWriter, r *http.Request) {
	// A browser gets no caller at all, not even masked: no part of a
	// number reaches a browser. Scripts keep the field.
	browser := fromBrowser(r)
	views := h.cfg.Rooms.Snapshot()
	out := roomsAnswer{Rooms: make([]roomJSON, 0, len(views))}
	for _, v := range views {
		rj := roomJSON{
			Group: v.Group, Started: v.Started.UTC(), Locked: v.Locked, Lecture: v.Lecture,
			ShareTimer: v.ShareTimer, Node: v.Node, Epoch: v.Epoch, Seats: make([]seatJSON, 0, len(v.Seats)),
		}
		for _, s := range v.Seats {
			if browser {
				s.Caller = ""
			}
			rj.Seats = append(rj.Seats, seatJSON{
				Seat: s.Seat, Role: s.Role, Placement: s.Placement,
				Muted: s.Muted, SelfMuted: s.SelfMuted, FacilitatorMuted: s.FacilitatorMuted,
				Talking: s.Talking, HandRaised: s.HandRaised, Floor: s.Floor, Heard: s.Heard,
				Leaving: s.Leaving, Caller: maskedOnly(s.Caller), Via: s.Via,
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

func (h *Handler) seatAction(w http.ResponseWriter, r *http.Request) {
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

func (h *Handler) roomAction(w http.ResponseWriter, r *http.Request) {
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
func (h *Handler) act(w http.ResponseWriter, group string, a rules.Action, seat int) {
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

func (h *Handler) drain(w http.ResponseWriter, r *http.Request) {
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
