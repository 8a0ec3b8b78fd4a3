package sipua

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/groupbridge/groupbridge/internal/callerid"
	"github.com/groupbridge/groupbridge/media/g711"
	"github.com/groupbridge/groupbridge/media/rtpio"
)

// Call is one answered call, handed to the Handler after the caller's ACK.
// Its methods are safe for concurrent use.
type Call struct {
	srv       *Server
	id        string // short random id for logs; never derived from the caller
	dialogID  string
	ident     callerid.Identity // who is calling; never logged (see label)
	label     string            // how log lines name the caller (Config.CallerLabel)
	dialed    string
	transport string
	source    string   // where the INVITE came from: in-dialog requests go here
	laddr     sip.Addr // our address where the INVITE arrived (Contact, Via)
	sock      sip.Addr // the socket that took it, as sipgo keys it (UDP): requests leave from it
	user      string   // the sip.users account the caller authenticated as; "" when trusted
	started   time.Time
	outbound  bool // we placed the call (Dial): its INVITE is ours

	stream *rtpio.Stream
	digits chan byte

	ctx    context.Context
	cancel context.CancelCauseFunc

	localCSeq atomic.Uint32
	byeSent   atomic.Bool
	setup     atomic.Pointer[setupHold] // the call's place among calls in setup (setup.go)

	mu           sync.Mutex
	invite       *sip.Request          // the INVITE as answered (with our To tag), or ours with the callee's
	inviteTx     sip.ClientTransaction // our INVITE's, while it may bring 2xx retransmissions
	localTag     string
	remoteTarget sip.Uri
	routeSet     []sip.Uri
	morePeers    []netip.Addr // addresses the call's account answered a challenge from (dialog.go)
	remoteCSeq   uint32
	pending      *pendingAnswer // the caller's INVITE/re-INVITE not yet answered and ACKed
	media        Media
	local        Local
	direction    Direction
	lateOffer    bool
	confirmed    bool // the first 2xx was ACKed
	endReason    string
}

// pendingAnswer is an INVITE of the caller's being answered, then its 2xx
// waiting for the ACK.
type pendingAnswer struct {
	cseq     uint32
	acked    chan *sip.Request // receives the ACK (buffered 1)
	offer    bool              // our 2xx carried an offer: the ACK must carry the answer
	answered bool              // the 2xx is on its way (guarded by Call.mu): only now can an ACK come
}

// ID returns the call's log id: random, so it reveals nothing about the caller.
func (c *Call) ID() string { return c.id }

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

// shownNumber is the number of id that may be shown masked: none when
// withheld.
func shownNumber(id callerid.Identity) string {
	if id.Private {
		return ""
	}
	return id.Number
}

// Dialed returns the user part of the Request-URI: the number that was dialled.
func (c *Call) Dialed() string { return c.dialed }

// User returns the account (Config.Users) the caller authenticated as, or ""
// when the call came from a trusted address.
func (c *Call) User() string { return c.user }

// SourceIP returns the address the INVITE came from (the PBX for a trusted
// call), or an invalid Addr if it cannot be parsed. Like Caller, it
// identifies someone and must not be logged in full.
func (c *Call) SourceIP() netip.Addr {
	ap, err := netip.ParseAddrPort(c.source)
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}

// Stream returns the call's RTP stream.
func (c *Call) Stream() *rtpio.Stream { return c.stream }

// Digits delivers key presses from RFC 4733 events and SIP INFO, in order.
// Presses are kept while nobody reads (type-ahead), up to a bound.
func (c *Call) Digits() <-chan byte { return c.digits }

// Context is cancelled when the call ends, whoever ends it.
func (c *Call) Context() context.Context { return c.ctx }

// Codec returns the negotiated codec.
func (c *Call) Codec() g711.Codec {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.media.Codec
}

// OnHold reports whether the caller's phone has put us on hold (sendonly,
// inactive or c=0.0.0.0): its audio is never mixed then.
func (c *Call) OnHold() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return !c.direction.WeReceive() || c.media.Hold
}

// EndReason returns why the call ended, or "" while it is up.
func (c *Call) EndReason() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.endReason
}

// Hangup ends the call from our side with a BYE. The reason is for logs.
// It returns at once; the BYE transaction runs in the background and never
// holds the call's resources.
func (c *Call) Hangup(reason string) {
	if !c.end(reason) {
		return
	}
	c.srv.dlg.sendBye(c)
}

// end marks the call ended; it reports whether this call did it.
func (c *Call) end(reason string) bool {
	c.mu.Lock()
	if c.endReason != "" {
		c.mu.Unlock()
		return false
	}
	c.endReason = reason
	c.mu.Unlock()
	c.cancel(fmt.Errorf("call ended: %s", reason))
	return true
}

func (c *Call) pushDigit(d byte) {
	select {
	case c.digits <- d:
	default:
		// A caller mashing keys faster than anyone reads: drop, never block
		// the poller or a SIP handler.
		c.srv.digitsDropped.Add(1)
	}
}

// applyMedia points the stream at what the peer's SDP says.
func (c *Call) applyMedia(m Media) {
	c.mu.Lock()
	c.media = m
	c.direction = m.Direction
	c.mu.Unlock()
	c.stream.Update(rtpio.Params{
		Remote:  m.Addr,
		Allowed: c.mediaAllowed(),
		Codec:   m.Codec,
		AudioPT: m.AudioPT,
		DTMFPT:  m.DTMFPT,
		OnDigit: c.pushDigit,
		SRTP:    m.SRTP.Keys(),
		CallID:  c.id,
	})
	send := m.Direction.WeSend() && !m.Hold
	recv := m.Direction.WeReceive() && !m.Hold
	c.stream.SetDirection(send, recv)
}

// mediaAllowed is where the call's media may come from besides the
// address in its SDP (which the stream allows itself): the address its SIP
// came from, which is the PBX for a call through one and the public
// address of a phone behind NAT, and Config.MediaSources. Every accepted
// offer or answer passes it again with the new SDP address, so media
// follows the dialog.
func (c *Call) mediaAllowed() []netip.Prefix {
	allow := make([]netip.Prefix, 0, 1+len(c.srv.cfg.MediaSources))
	if ap, err := netip.ParseAddrPort(c.source); err == nil {
		a := ap.Addr().Unmap()
		allow = append(allow, netip.PrefixFrom(a, a.BitLen()))
	}
	return append(allow, c.srv.cfg.MediaSources...)
}

// mediaTimeout returns how long a call whose peer declared dir and m may
// go without media: hold's bound while it holds or has no stream.
func mediaTimeout(dir Direction, m *Media, rtp, hold time.Duration) time.Duration {
	if dir != SendRecv || m.Hold || m.Addr.Port() == 0 {
		return hold
	}
	return rtp
}

func newCallID() string {
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand never fails on Linux
	}
	return hex.EncodeToString(b[:])
}

func randUint64() uint64 {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err)
	}
	var v uint64
	for _, x := range b {
		v = v<<8 | uint64(x)
	}
	return v >> 2 // keep o= session ids positive in every parser
}

// unspecified reports whether an address must be replaced by a real one.
func unspecified(a netip.Addr) bool { return !a.IsValid() || a.IsUnspecified() }

// localSDP writes our side of an offer/answer exchange, the one place our
// SDP is made: the answer to offer, or, with none (an INVITE without an
// offer, or an INVITE of ours), our offer. An offer of ours carries the
// SRTP key in use, or under mode SRTPRequire a fresh one; it is kept in
// c.local.OfferKey for takeAnswer. An answer to an offer that kept the
// peer's key keeps ours, so that packets in flight while the peer reads it
// still decrypt. Every description bumps the o= version (RFC 3264 8).
func (c *Call) localSDP(offer *Media, mode SRTPMode) ([]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	cur := c.media.SRTP
	var key []byte
	switch {
	case offer != nil:
		if offer.SRTP != nil && cur != nil && offer.SRTP.Tag == cur.Tag && bytes.Equal(offer.SRTP.Remote, cur.Remote) {
			offer.SRTP.Local = cur.Local
		}
	case cur != nil:
		key = cur.Local
	case mode == SRTPRequire:
		var err error
		if key, err = newSRTPKey(); err != nil {
			return nil, err
		}
	}
	c.local.Version++
	c.local.OfferKey = key
	if offer == nil {
		return BuildOffer(c.local), nil
	}
	return BuildAnswer(c.local, *offer), nil
}

// takeAnswer reads the peer's answer to our offer (in the ACK of a 2xx
// that carried it, or in the 2xx to our INVITE) and points the stream at it.
func (c *Call) takeAnswer(body []byte) error {
	c.mu.Lock()
	key := c.local.OfferKey
	c.mu.Unlock()
	m, err := ParseAnswer(body, key)
	if err != nil {
		return err
	}
	c.applyMedia(m)
	return nil
}
