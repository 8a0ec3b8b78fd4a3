// Package logging builds the process's slog logger and keeps secrets out of
// it: callers are shown masked, and libraries' log lines (sipgo writes whole
// raw SIP messages when parsing fails) pass through a redacting handler.
// Throttle spaces a repeated line (a flood, an attack) to one a minute.
//
// It must not know the bridge's calls, rooms or configuration: it is handed
// values and formats them.
package logging

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"unicode/utf8"
)

// New returns a logger writing text or JSON ("text" | "json") to w.
func New(format string, w io.Writer, level slog.Leveler) (*slog.Logger, error) {
	opts := &slog.HandlerOptions{Level: level}
	switch format {
	case "", "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("log format %q: must be text or json", format)
}

// MaskCaller shows a caller number the way an operator may see it:
// "+15551234567" becomes "+1•••••4567". The mask has a fixed width so that
// it does not tell the number's length. Short numbers (extensions) keep
// only their last two digits; an empty number is "anonymous".
func MaskCaller(n string) string {
	if n == "" {
		return "anonymous"
	}
	digits := 0
	for _, r := range n {
		if r >= '0' && r <= '9' {
			digits++
		}
	}
	if digits < len(strings.TrimPrefix(n, "+")) || digits == 0 {
		// Not a phone number (a SIP user name): show its first letter only.
		r, _ := utf8.DecodeRuneInString(n)
		return string(r) + "•••"
	}
	plus := strings.HasPrefix(n, "+")
	d := strings.TrimPrefix(n, "+")
	switch {
	case len(d) >= 8:
		p := ""
		if plus {
			p = "+"
		}
		return p + d[:1] + "•••••" + d[len(d)-4:]
	case len(d) > 2:
		return "•••" + d[len(d)-2:]
	}
	return "•••"
}

// RedactDigits replaces every run of four or more digits in s with "#…#",
// and cuts s to a bounded length. Library messages may embed a PIN typed in
// an INFO body or a caller number in a raw header; this removes both.
func RedactDigits(s string) string {
	const maxLen = 300
	if len(s) > maxLen {
		s = s[:maxLen] + "…"
	}
	var b strings.Builder
	run := 0
	flush := func(seg string) {
		if run >= 4 {
			b.WriteString("#…#")
		} else {
			b.WriteString(seg)
		}
	}
	start := 0
	for i := 0; i < len(s); i++ {
		if s[i] >= '0' && s[i] <= '9' {
			if run == 0 {
				start = i
			}
			run++
			continue
		}
		if run > 0 {
			flush(s[start:i])
			run = 0
		}
		b.WriteByte(s[i])
	}
	if run > 0 {
		flush(s[start:])
	}
	return b.String()
}

// dropKeys are attributes libraries use for raw message dumps.
var dropKeys = map[string]bool{"data": true, "msg": true, "message": true, "raw": true, "body": true}

// redactHandler rewrites every record of a library before the real handler
// sees it.
type redactHandler struct {
	next  slog.Handler
	level slog.Level
}

// Library returns a logger for third-party code: records below min are
// dropped, raw message dumps are removed and digit runs are masked in every
// message and attribute.
func Library(base *slog.Logger, min slog.Level, component string) *slog.Logger {
	return slog.New(&redactHandler{next: base.Handler(), level: min}).With("component", component)
}

func (h *redactHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.level && h.next.Enabled(ctx, l)
}

func (h *redactHandler) Handle(ctx context.Context, r slog.Record) error {
	out := slog.NewRecord(r.Time, r.Level, RedactDigits(r.Message), r.PC)
	r.Attrs(func(a slog.Attr) bool {
		if a2, ok := redactAttr(a); ok {
			out.AddAttrs(a2)
		}
		return true
	})
	return h.next.Handle(ctx, out)
}

func redactAttr(a slog.Attr) (slog.Attr, bool) {
	if dropKeys[strings.ToLower(a.Key)] {
		return a, false
	}
	v := a.Value.Resolve()
	switch v.Kind() {
	case slog.KindGroup:
		var attrs []any
		for _, g := range v.Group() {
			if g2, ok := redactAttr(g); ok {
				attrs = append(attrs, g2)
			}
		}
		return slog.Group(a.Key, attrs...), true
	case slog.KindInt64, slog.KindUint64, slog.KindFloat64, slog.KindBool, slog.KindDuration, slog.KindTime:
		return a, true
	}
	return slog.String(a.Key, RedactDigits(v.String())), true
}

func (h *redactHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	var kept []slog.Attr
	for _, a := range attrs {
		if a2, ok := redactAttr(a); ok {
			kept = append(kept, a2)
		}
	}
	return &redactHandler{next: h.next.WithAttrs(kept), level: h.level}
}

func (h *redactHandler) WithGroup(name string) slog.Handler {
	return &redactHandler{next: h.next.WithGroup(name), level: h.level}
}
