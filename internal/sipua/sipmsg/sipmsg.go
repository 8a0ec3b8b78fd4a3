// Package sipmsg holds the small facts of SIP messages that both of the
// user agent's layers (the screening in sipua and the dialogs in
// sipua/dialog) use: RFC 3261's timers, what we allow, Via and tag
// helpers, random ids, short error texts. It knows no call, no dialog and
// no policy; it imports only sipgo's message types and logging.
package sipmsg

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/netip"
	"runtime/debug"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/groupbridge/groupbridge/internal/logging"
)

// Timers of RFC 3261 for retransmissions (17.1.1.1).
const (
	T1 = 500 * time.Millisecond
	T2 = 4 * time.Second
)

// Allowed is our Allow header: the methods we serve.
const Allowed = "INVITE, ACK, BYE, CANCEL, OPTIONS, INFO"

// Reliable reports whether transport retransmits by itself, so that we
// must not (RFC 3261 17.2.1: 2xx retransmission is for UDP only).
func Reliable(transport string) bool {
	return strings.EqualFold(transport, "tcp") || strings.EqualFold(transport, "tls")
}

// HasToTag reports whether req's To has a tag: it belongs in a dialog.
func HasToTag(req *sip.Request) bool {
	to := req.To()
	if to == nil {
		return false
	}
	tag, ok := to.Params.Get("tag")
	return ok && tag != ""
}

// NewVia is the Via of a request we send from host:port over transport,
// with a branch of its own and rport (RFC 3581) for the answer's way back.
func NewVia(transport, host string, port int) *sip.ViaHeader {
	via := &sip.ViaHeader{ProtocolName: "SIP", ProtocolVersion: "2.0", Transport: strings.ToUpper(transport),
		Host: host, Port: port, Params: sip.NewParams()}
	via.Params.Add("branch", sip.GenerateBranch())
	via.Params.Add("rport", "")
	return via
}

// NewID returns a short random id (12 hex digits) for logs and Call-IDs:
// it reveals nothing about a caller.
func NewID() string {
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand never fails on Linux
	}
	return hex.EncodeToString(b[:])
}

// RandUint64 returns a random number below 2^62, so that o= session ids
// stay positive in every parser.
func RandUint64() uint64 {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err)
	}
	var v uint64
	for _, x := range b {
		v = v<<8 | uint64(x)
	}
	return v >> 2
}

// Shorten keeps error texts from peers' messages short in our errors and
// logs.
func Shorten(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}

// WarningText keeps a Warning header value short and quote-free.
func WarningText(err error) string {
	t := strings.NewReplacer(`"`, "'", "\r", " ", "\n", " ").Replace(err.Error())
	return Shorten(t)
}

// Recover is the recover boundary of a goroutine we start: a panic is
// logged, with digit runs masked, and the goroutine ends.
func Recover(log *slog.Logger, what string) {
	if r := recover(); r != nil {
		log.Error("panic recovered", "in", what, "panic", logging.RedactDigits(fmt.Sprint(r)),
			"stack", logging.RedactDigits(string(debug.Stack())))
	}
}

// Version is the only SIP version we speak (RFC 3261 7.1).
const Version = "SIP/2.0"

// Unspecified reports whether an address must be replaced by a real one.
func Unspecified(a netip.Addr) bool { return !a.IsValid() || a.IsUnspecified() }
