package store

import (
	"context"
	"errors"
	"io"
	"net"

	"github.com/jackc/pgx/v5/pgconn"
)

// unreachable reports whether err (a driver's, not yet redacted) says the
// PostgreSQL server could not be reached: nothing listening, no route, a
// timeout, a connection cut, or a server starting up or shutting down. Such
// a server may come back by itself (a node restarting while the shared
// database restarts), so the bridge starts without it. Everything else
// needs an operator: the server's own refusals (a wrong password, no such
// database or role), a DSN the driver cannot use, a name no DNS server
// knows, a schema newer than this groupbridge.
func unreachable(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case "57P01", "57P02", "57P03", // admin or crash shutdown, cannot connect now
			"53300": // too many connections
			return true
		}
		return false
	}
	if errors.Is(err, ErrSchema) {
		return false
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		return !dnsErr.IsNotFound
	}
	var netErr net.Error
	return errors.As(err, &netErr) || errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
}
