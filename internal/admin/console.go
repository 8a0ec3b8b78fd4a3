package admin

import (
	"io/fs"
	"net/http"
	"path"
	"strings"

	"github.com/groupbridge/groupbridge/internal/admin/console"
)

// contentSecurity is sent with every answer: the page runs only its own
// script and style sheet, talks only to this API and cannot be framed.
const contentSecurity = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; " +
	"connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"

// assetTypes are the files served under /console/, by extension.
var assetTypes = map[string]string{
	".js":  "text/javascript; charset=utf-8",
	".css": "text/css; charset=utf-8",
	".svg": "image/svg+xml",
}

// page serves the console (GET /). With a token, a browser without a
// valid session is sent to the sign-in page.
func (h *Handler) page(w http.ResponseWriter, r *http.Request) {
	if h.tokenSum != nil && !h.authed(r) {
		http.Redirect(w, r, "/login", http.StatusSeeOther)
		return
	}
	serveHTML(w, "index.html")
}

// loginPage serves the sign-in page, or sends a browser that needs none
// to the console.
func (h *Handler) loginPage(w http.ResponseWriter, r *http.Request) {
	if h.tokenSum == nil || h.authed(r) {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	serveHTML(w, "login.html")
}

func serveHTML(w http.ResponseWriter, name string) {
	b, err := fs.ReadFile(console.Files, name)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "the console is missing from this build")
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = w.Write(b)
}

// asset serves one embedded script, style sheet or image.
func (h *Handler) asset(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("file")
	ct, ok := assetTypes[path.Ext(name)]
	if !ok || strings.ContainsAny(name, "/\\") {
		writeError(w, http.StatusNotFound, "not found")
		return
	}
	b, err := fs.ReadFile(console.Files, name)
	if err != nil {
		writeError(w, http.StatusNotFound, "not found")
		return
	}
	w.Header().Set("Content-Type", ct)
	_, _ = w.Write(b)
}
