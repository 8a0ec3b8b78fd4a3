package sipua

import (
	"github.com/groupbridge/groupbridge/internal/callerid"
	"github.com/groupbridge/groupbridge/internal/sipua/dialog"
)

// Call is one call, answered (handed to the Handler after the caller's
// ACK) or placed (Server.Dial): its dialog and media (the embedded
// *dialog.Call: ID, Dialed, Stream, Digits, Context, Hangup, SendDigits,
// ...) and what the server decided about it while screening: who is
// calling, how logs name them, the account they authenticated as and
// their place among calls in setup, and what Config.Gate let it in with. Its methods are safe for concurrent
// use.
type Call struct {
	*dialog.Call
	ident     callerid.Identity // who is calling; never logged (see label)
	label     string            // how log lines name the caller (Config.CallerLabel)
	user      string            // the sip.users account the caller authenticated as; "" when trusted
	setup     *setupHold        // the call's place among calls in setup (setup.go); nil: none
	admission any               // GateResult.Value (admission.go)
}

// Caller returns the caller's number, normalised: from P-Asserted-Identity
// or Remote-Party-ID when the source may assert one (Config.AssertIdentity),
// else from the From user; "" when nobody is named. It is for recognising
// a caller (through an HMAC) and must never be logged; use Label.
func (c *Call) Caller() string { return c.ident.Number }

// CallerPrivate reports whether the caller asked to withhold their
// identity (Privacy: id): Caller still tells them apart, but nothing shown
// may be derived from it.
func (c *Call) CallerPrivate() bool { return c.ident.Private }

// NoIdentity reports whether the call's source names nobody (it is in
// Config.NoIdentity and asserted no identity): Caller is "" and the caller
// is anonymous for this call only.
func (c *Call) NoIdentity() bool { return c.ident.Source == callerid.SourceNoIdentity }

// Label returns how log lines name the caller (Config.CallerLabel), fixed
// when the call was set up.
func (c *Call) Label() string { return c.label }

// User returns the account (Config.Users) the caller authenticated as, or ""
// when the call came from a trusted address.
func (c *Call) User() string { return c.user }

// shownNumber is the number of id that may be shown masked: none when
// withheld.
func shownNumber(id callerid.Identity) string {
	if id.Private {
		return ""
	}
	return id.Number
}

// callOf returns the server's Call of a dialog, nil for none.
func callOf(dc *dialog.Call) *Call {
	if dc == nil {
		return nil
	}
	c, _ := dc.Owner().(*Call)
	return c
}
