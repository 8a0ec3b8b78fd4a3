package store

import (
	"context"
	"errors"
	"net/url"
	"regexp"
	"slices"
	"strings"
)

// redactor takes the DSN and the passwords it holds out of error text. A
// driver error may quote the connection string (a parse error) or a part
// of it; the DSN is a secret of the configuration, so no error or log line
// of the store may carry it.
type redactor struct {
	secrets []string // longest first, so a password inside the DSN goes with it
}

func newRedactor(dsn string) redactor {
	if dsn == "" {
		return redactor{}
	}
	secrets := []string{dsn}
	if u, err := url.Parse(dsn); err == nil {
		if pw, ok := u.User.Password(); ok {
			secrets = append(secrets, pw)
		}
		for k, vs := range u.Query() {
			if strings.Contains(strings.ToLower(k), "password") {
				secrets = append(secrets, vs...)
			}
		}
	}
	// The forms a password takes in text: as given, and escaped as in a
	// URL's user part or query.
	for _, s := range slices.Clone(secrets[1:]) {
		secrets = append(secrets, url.QueryEscape(s), url.PathEscape(s), url.UserPassword("", s).String()[1:])
	}
	secrets = slices.DeleteFunc(secrets, func(s string) bool { return s == "" })
	slices.SortFunc(secrets, func(a, b string) int { return len(b) - len(a) })
	return redactor{secrets: slices.Compact(secrets)}
}

// redactedError is an error whose text has had the secrets taken out. It
// unwraps only to the context errors, never to the driver's error, whose
// text still holds them.
type redactedError struct {
	msg   string
	cause error // context.Canceled, context.DeadlineExceeded or nil
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.cause }

// err returns err with the secrets taken out of its text, nil for nil.
func (r redactor) err(err error) error {
	if err == nil {
		return nil
	}
	e := &redactedError{msg: r.text(err.Error())}
	switch {
	case errors.Is(err, context.Canceled):
		e.cause = context.Canceled
	case errors.Is(err, context.DeadlineExceeded):
		e.cause = context.DeadlineExceeded
	case errors.Is(err, ErrSchema):
		e.cause = ErrSchema
	case errors.Is(err, ErrNoStore):
		e.cause = ErrNoStore
	}
	return e
}

func (r redactor) text(s string) string {
	for _, secret := range r.secrets {
		s = strings.ReplaceAll(s, secret, "[redacted]")
	}
	// pgx quotes a DSN it cannot parse with the password masked; the rest
	// (user, options) is the configuration's secret too.
	return dsnInText.ReplaceAllString(s, "[redacted DSN]")
}

// dsnInText is a postgres URL inside a message.
var dsnInText = regexp.MustCompile("(?i)postgres(ql)?://[^\\s`'\"]+")
