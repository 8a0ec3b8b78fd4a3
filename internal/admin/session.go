package admin

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"io"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/groupbridge/groupbridge/internal/wallclock"
)

// The console's session: a signed cookie, kept by nobody but the browser.
// Its value is base64url(expiry || nonce || HMAC-SHA256(key, expiry ||
// nonce)); the key is derived from admin.token, so a restart of the
// bridge with the same token keeps the page signed in. Without a token
// (a loopback API) the key is random per process and the page fetches a
// new anonymous session when its event stream reconnects.
//
// The CSRF token of a session is HMAC(key, "csrf" || expiry || nonce):
// a page of another site can make the browser send the cookie, but it
// cannot read the token the console's own script reads from
// GET /api/console/session.
const (
	sessionCookie = "gb_session"
	sessionLife   = 12 * time.Hour
	csrfHeader    = "X-CSRF-Token"

	sessionIDLen  = 8 + 16 // expiry (Unix seconds, big-endian) and nonce
	sessionRawLen = sessionIDLen + sha256.Size
	maxLoginBody  = 4 << 10
)

// sessionKey derives the cookie key from the token, or makes a random one
// without a token.
func sessionKey(token string) []byte {
	if token == "" {
		k := make([]byte, 32)
		if _, err := rand.Read(k); err != nil {
			panic("admin: no randomness for the session key: " + err.Error())
		}
		return k
	}
	m := hmac.New(sha256.New, []byte(token))
	m.Write([]byte("groupbridge admin console session v1"))
	return m.Sum(nil)
}

// newSession returns a cookie value that expires at exp.
func newSession(key []byte, exp time.Time) string {
	raw := make([]byte, sessionIDLen, sessionRawLen)
	binary.BigEndian.PutUint64(raw, uint64(exp.Unix()))
	if _, err := rand.Read(raw[8:sessionIDLen]); err != nil {
		panic("admin: no randomness for a session: " + err.Error())
	}
	m := hmac.New(sha256.New, key)
	m.Write(raw)
	return base64.RawURLEncoding.EncodeToString(m.Sum(raw))
}

// parseSession checks a cookie value and returns its id (expiry and
// nonce); false when it is malformed, forged or expired at now.
func parseSession(key []byte, value string, now time.Time) ([]byte, bool) {
	if len(value) != base64.RawURLEncoding.EncodedLen(sessionRawLen) {
		return nil, false
	}
	raw, err := base64.RawURLEncoding.Strict().DecodeString(value)
	if err != nil || len(raw) != sessionRawLen {
		return nil, false
	}
	m := hmac.New(sha256.New, key)
	m.Write(raw[:sessionIDLen])
	if !hmac.Equal(m.Sum(nil), raw[sessionIDLen:]) {
		return nil, false
	}
	exp := binary.BigEndian.Uint64(raw)
	if exp > math.MaxInt64 || !now.Before(time.Unix(int64(exp), 0)) {
		return nil, false
	}
	return raw[:sessionIDLen], true
}

// csrfToken is the token a session's state-changing requests carry.
func csrfToken(key, id []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("csrf"))
	m.Write(id)
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// sessions reads and starts the console's sessions under one key.
type sessions struct {
	key   []byte
	clock wallclock.Clock
}

// of returns the id of r's valid session cookie, if it has one.
func (s sessions) of(r *http.Request) ([]byte, bool) {
	c, err := r.Cookie(sessionCookie)
	if err != nil {
		return nil, false
	}
	return parseSession(s.key, c.Value, s.clock.Now())
}

// signedIn reports whether r carries a valid session cookie.
func (s sessions) signedIn(r *http.Request) bool {
	_, ok := s.of(r)
	return ok
}

// csrfOK reports whether r carries the CSRF token of its session cookie.
func (s sessions) csrfOK(r *http.Request) bool {
	id, ok := s.of(r)
	if !ok {
		return false
	}
	got := r.Header.Get(csrfHeader)
	return got != "" && hmac.Equal([]byte(got), []byte(csrfToken(s.key, id)))
}

// start starts a session in the browser and returns its CSRF token.
func (s sessions) start(w http.ResponseWriter, r *http.Request) string {
	exp := s.clock.Now().Add(sessionLife)
	value := newSession(s.key, exp)
	http.SetCookie(w, &http.Cookie{
		Name: sessionCookie, Value: value, Path: "/", Expires: exp, MaxAge: int(sessionLife / time.Second),
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil,
	})
	id, _ := parseSession(s.key, value, s.clock.Now())
	return csrfToken(s.key, id)
}

// login checks the token a person typed into the sign-in page. Wrong
// tokens count against the source like wrong bearer tokens do.
func (h *Handler) login(w http.ResponseWriter, r *http.Request) {
	if h.tokenSum == nil {
		writeError(w, http.StatusNotFound, "no admin.token is configured: the console needs no sign-in")
		return
	}
	now := h.clock.Now()
	if h.refuseBlocked(w, r, now) {
		return
	}
	var body struct {
		Token string `json:"token"`
	}
	dec := json.NewDecoder(io.LimitReader(r.Body, maxLoginBody))
	if err := dec.Decode(&body); err != nil || body.Token == "" {
		writeError(w, http.StatusBadRequest, `the body must be JSON: {"token": "..."}`)
		return
	}
	if !h.tokenMatches(body.Token) {
		h.wrongToken(r, now)
		writeError(w, http.StatusUnauthorized, "wrong token")
		return
	}
	h.guard.forgive(remoteAddr(r.RemoteAddr))
	csrf := h.sessions.start(w, r)
	h.cfg.Logger.Info("admin console sign-in", "remote", r.RemoteAddr)
	writeJSON(w, http.StatusOK, map[string]any{"ok": true, "csrf": csrf})
}

// logout ends the session in this browser. The cookie is stateless: a
// copy taken elsewhere stays valid until it expires, or until the token
// changes.
func (h *Handler) logout(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{
		Name: sessionCookie, Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil,
	})
	writeJSON(w, http.StatusOK, map[string]any{"ok": true})
}

// consoleSession answers the CSRF token of the request's session, and
// starts a session when there is none (a loopback API without a token, or
// a request that carried the bearer token).
func (h *Handler) consoleSession(w http.ResponseWriter, r *http.Request) {
	// sign_out tells the page whether a sign-out button means anything.
	id, ok := h.sessions.of(r)
	csrf := ""
	if ok {
		csrf = csrfToken(h.sessions.key, id)
	} else {
		csrf = h.sessions.start(w, r)
	}
	writeJSON(w, http.StatusOK, map[string]any{"csrf": csrf, "sign_out": h.tokenSum != nil})
}

// wrongToken counts a wrong token from r's source and logs when it gets
// the source blocked.
func (h *Handler) wrongToken(r *http.Request, now time.Time) {
	if h.guard.fail(remoteAddr(r.RemoteAddr), now) {
		h.cfg.Logger.Warn("admin source blocked after repeated wrong tokens",
			"remote", r.RemoteAddr, "for", guardBlockFor.String())
	}
}

// refuseBlocked answers 429 when r's source is blocked for wrong tokens.
func (h *Handler) refuseBlocked(w http.ResponseWriter, r *http.Request, now time.Time) bool {
	left := h.guard.blocked(remoteAddr(r.RemoteAddr), now)
	if left <= 0 {
		return false
	}
	w.Header().Set("Retry-After", strconv.Itoa(int((left+time.Second-1)/time.Second)))
	h.cfg.Logger.Warn("admin request refused: source blocked for wrong tokens", "remote", r.RemoteAddr, "method", r.Method)
	writeError(w, http.StatusTooManyRequests, "too many wrong tokens from this address: try again later")
	return true
}
