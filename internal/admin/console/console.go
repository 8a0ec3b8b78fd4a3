// Package console holds the operator's console: its pages, script, style
// sheet and icon, embedded in the binary and served by the admin handler.
// Plain HTML, CSS and JavaScript: no build step, no framework, nothing
// fetched from another site.
package console

import "embed"

// Files are the console's files: index.html (the console), login.html
// (sign-in), *.js, *.css and *.svg (served under /console/).
//
//go:embed index.html login.html console.js login.js console.css icon.svg
var Files embed.FS
