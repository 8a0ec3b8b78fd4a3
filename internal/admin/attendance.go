package admin

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/groupbridge/groupbridge/internal/admin/chart"
	"github.com/groupbridge/groupbridge/internal/attendance"
)

// attendanceWait bounds one read of the store: a console must not hang on
// a database that does not answer.
const attendanceWait = 10 * time.Second

// maxGroupParam bounds the group filter: no group name is longer.
const maxGroupParam = 200

// filterError is a bad query parameter, named in the answer.
type filterError struct{ param, msg string }

func (e *filterError) Error() string { return e.param + ": " + e.msg }

// parseFilter reads ?group=&since=&until= as the attendance command's
// flags do: since and until are local dates (YYYY-MM-DD), until takes in
// the whole of its day. Each parameter may be given once.
func parseFilter(q url.Values, loc *time.Location) (attendance.Filter, error) {
	var f attendance.Filter
	one := func(name string) (string, error) {
		switch v := q[name]; len(v) {
		case 0:
			return "", nil
		case 1:
			return v[0], nil
		}
		return "", &filterError{name, "given more than once"}
	}
	g, err := one("group")
	if err != nil {
		return f, err
	}
	if len(g) > maxGroupParam {
		return f, &filterError{"group", "too long to be a group's name"}
	}
	f.Group = g
	date := func(name string, addDays int) (time.Time, error) {
		v, err := one(name)
		if err != nil || v == "" {
			return time.Time{}, err
		}
		d, err := time.ParseInLocation("2006-01-02", v, loc)
		if err != nil {
			return time.Time{}, &filterError{name, "not a date; write YYYY-MM-DD, like 2026-01-31"}
		}
		return d.AddDate(0, 0, addDays), nil
	}
	if f.Since, err = date("since", 0); err != nil {
		return f, err
	}
	if f.Until, err = date("until", 1); err != nil {
		return f, err
	}
	if !f.Since.IsZero() && !f.Until.IsZero() && !f.Since.Before(f.Until) {
		return f, &filterError{"since", "is after until"}
	}
	return f, nil
}

// readAttendance answers the filter's sessions (and days, when asked), or
// writes the error and returns false.
func (h *Handler) readAttendance(w http.ResponseWriter, r *http.Request, withDays bool) ([]attendance.Session, []attendance.Day, bool) {
	if h.cfg.Attendance == nil {
		writeError(w, http.StatusNotFound, "this bridge keeps no records of its meetings")
		return nil, nil, false
	}
	f, err := parseFilter(r.URL.Query(), time.Local)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return nil, nil, false
	}
	ctx, cancel := context.WithTimeout(r.Context(), attendanceWait)
	defer cancel()
	ss, err := h.cfg.Attendance.Sessions(ctx, f)
	var days []attendance.Day
	if err == nil && withDays {
		days, err = h.cfg.Attendance.Days(ctx, f)
	}
	if err != nil {
		// The store redacts its own errors (a DSN holds a password).
		h.cfg.Logger.Error("admin attendance read failed", "error", err.Error())
		if errors.Is(err, attendance.ErrNotReady) {
			writeError(w, http.StatusServiceUnavailable, "the attendance store is not reachable yet; meetings are recorded once it is")
		} else {
			writeError(w, http.StatusInternalServerError, "the attendance store did not answer")
		}
		return nil, nil, false
	}
	return ss, days, true
}

// attendance serves GET /api/attendance: JSON (the default) or a CSV
// download, written by package attendance's writers.
func (h *Handler) attendance(w http.ResponseWriter, r *http.Request) {
	format := r.URL.Query().Get("format")
	var write func(io.Writer, []attendance.Session, []attendance.Day) error
	switch format {
	case "", "json":
		write = attendance.WriteJSON
	case "csv":
		write = attendance.WriteCSV
	default:
		writeError(w, http.StatusBadRequest, "format: use json or csv")
		return
	}
	ss, days, ok := h.readAttendance(w, r, true)
	if !ok {
		return
	}
	var b bytes.Buffer
	if err := write(&b, ss, days); err != nil {
		writeError(w, http.StatusInternalServerError, "the attendance could not be written")
		return
	}
	if format == "csv" {
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		w.Header().Set("Content-Disposition", `attachment; filename="attendance.csv"`)
	} else {
		w.Header().Set("Content-Type", "application/json")
	}
	_, _ = w.Write(b.Bytes())
}

// attendanceChart serves the SVG charts.
func (h *Handler) attendanceChart(w http.ResponseWriter, r *http.Request) {
	draw := map[string]func(io.Writer, []attendance.Report, *time.Location) error{
		"sessions.svg": chart.SessionsPerWeek,
		"people.svg":   chart.PeoplePerSession,
	}[r.PathValue("chart")]
	if draw == nil {
		writeError(w, http.StatusNotFound, "no such chart")
		return
	}
	ss, _, ok := h.readAttendance(w, r, false)
	if !ok {
		return
	}
	var b bytes.Buffer
	if err := draw(&b, attendance.Reports(ss), time.Local); err != nil {
		writeError(w, http.StatusInternalServerError, "the chart could not be drawn")
		return
	}
	w.Header().Set("Content-Type", "image/svg+xml")
	_, _ = w.Write(b.Bytes())
}
