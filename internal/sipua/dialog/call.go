package dialog

import (
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/groupbridge/groupbridge/media/g711"
	"github.com/groupbridge/groupbridge/media/rtpio"
)

// Call is one dialog, answered (NewInbound) or placed (Dial), with its
// RTP stream. Its methods are safe for concurrent use; its lock is the
// dialog package's alone. What a call is for, and who the caller is, the
// layers above keep (Owner).
type Call struct {
	layer     *Layer // sends our BYE, counts dropped digits, lists media sources
	owner     any    // what the layer above keeps of the call (Owner)
	id        string // short random id for logs; never derived from the caller
	dialogID  string
	dialed    string
	transport string
	source    string     // where the INVITE came from: in-dialog requests go here
	origin    netip.Addr // the caller's own address a proxy named; invalid: none
	laddr     sip.Addr   // our address where the INVITE arrived (Contact, Via)
	sock      sip.Addr   // the socket that took it, as sipgo keys it (UDP): requests leave from it
	started   time.Time
	outbound  bool // we placed the call (Dial): its INVITE is ours

	stream *rtpio.Stream
	digits chan byte

	ctx    context.Context
	cancel context.CancelCauseFunc

	localTag string // our tag in the dialog, fixed when the call is made

	localCSeq atomic.Uint32
	byeSent   atomic.Bool

	mu           sync.Mutex
	invite       *sip.Request          // the INVITE as answered (with our To tag), or ours with the callee's
	inviteTx     sip.ClientTransaction // our INVITE's, while it may bring 2xx retransmissions
	remoteTarget sip.Uri
	routeSet     []sip.Uri
	morePeers    []netip.Addr // addresses added by AddPeer (peer.go)
	remoteCSeq   uint32
	pending      *pendingAnswer // the caller's INVITE/re-INVITE not yet answered and ACKed
	media        Media
	local        Local
	direction    Direction
	lateOffer    bool
	confirmed    bool // the first 2xx was ACKed
	endReason    string
	remoteReason string // the text of the peer's BYE's Reason header (reason.go)
	// outOfBand, when set, are the call's SRTP keys, agreed outside SIP
	// (Inbound.SRTP, DialOptions.Sign): no a=crypto is offered, taken or
	// answered, and these protect the stream whatever the SDP says.
	outOfBand *rtpio.SRTPKeys
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

// Dialed returns the user part of the Request-URI: the number that was dialled.
func (c *Call) Dialed() string { return c.dialed }

// Owner returns what the layer above gave NewInbound or Dial for this
// call (sipua's *Call): the dialog layer never looks inside.
func (c *Call) Owner() any { return c.owner }

// LocalTag returns our tag in the dialog: the To tag of the peer's
// requests in a call we answered, the From tag of one we placed.
func (c *Call) LocalTag() string { return c.localTag }

// Transport returns the call's SIP transport in upper case ("UDP").
func (c *Call) Transport() string { return c.transport }

// Started returns when the call was set up (on the layer's clock).
func (c *Call) Started() time.Time { return c.started }

// SourceIP returns the address the INVITE came from (the PBX for a trusted
// call), or, when a proxy named the caller's own address (Inbound.Origin),
// that one; an invalid Addr if it cannot be parsed. Like Caller, it
// identifies someone and must not be logged in full.
func (c *Call) SourceIP() netip.Addr {
	if c.origin.IsValid() {
		return c.origin
	}
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

// RemoteReason returns the text of the Reason header of the peer's BYE
// (reason.go: cleaned, at most 64 bytes), or "" when the peer gave none
// or did not end the call. EndReason is then "remote-bye".
func (c *Call) RemoteReason() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.remoteReason
}

// Media returns what the peer's last SDP says, as applied to the stream.
func (c *Call) Media() Media {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.media
}

// Negotiating reports whether an INVITE of the peer's is being answered or
// its 2xx waits for the ACK: a new offer would get 491 or 500 now.
func (c *Call) Negotiating() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.pending != nil
}

// Hangup ends the call from our side with a BYE. The reason is for logs
// and goes to the peer in the BYE's Reason header (reason.go), so it must
// name no caller. It returns at once; the BYE transaction runs in the background and never
// holds the call's resources.
func (c *Call) Hangup(reason string) {
	if !c.end(reason) {
		return
	}
	c.layer.sendBye(c)
}

// end marks the call ended; it reports whether this call did it.
func (c *Call) end(reason string) bool { return c.endBy(reason, "") }

// endBy is end with the peer's reason (RemoteReason), when the peer ended it.
func (c *Call) endBy(reason, remote string) bool {
	c.mu.Lock()
	if c.endReason != "" {
		c.mu.Unlock()
		return false
	}
	c.endReason, c.remoteReason = reason, remote
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
	}
}

// applyMedia points the stream at what the peer's SDP says.
func (c *Call) applyMedia(m Media) {
	keys := m.SRTP.Keys()
	c.mu.Lock()
	c.media = m
	c.direction = m.Direction
	if c.outOfBand != nil {
		keys = c.outOfBand
	}
	c.mu.Unlock()
	c.stream.Update(rtpio.Params{
		Remote:  m.Addr,
		Allowed: mediaAllowed(c.source, c.origin, c.layer.cfg.MediaSources),
		Codec:   m.Codec,
		AudioPT: m.AudioPT,
		DTMFPT:  m.DTMFPT,
		OnDigit: c.pushDigit,
		SRTP:    keys,
		CallID:  c.id,
	})
	send := m.Direction.WeSend() && !m.Hold
	recv := m.Direction.WeReceive() && !m.Hold
	c.stream.SetDirection(send, recv)
}

// mediaAllowed is where a call's media may come from besides the
// address in its SDP (which the stream allows itself): the address its
// SIP came from (source), which is the PBX for a call through one and the
// public address of a phone behind NAT, the caller's own address a proxy
// named (origin, when valid: a phone behind NAT whose SIP reached us
// through Kamailio), and Config.MediaSources. Every accepted offer or
// answer passes it again with the new SDP address, so media follows the
// dialog.
func mediaAllowed(source string, origin netip.Addr, sources []netip.Prefix) []netip.Prefix {
	allow := make([]netip.Prefix, 0, 2+len(sources))
	if ap, err := netip.ParseAddrPort(source); err == nil {
		a := ap.Addr().Unmap()
		allow = append(allow, netip.PrefixFrom(a, a.BitLen()))
	}
	if origin.IsValid() {
		allow = append(allow, netip.PrefixFrom(origin, origin.BitLen()))
	}
	return append(allow, sources...)
}

// mediaTimeout returns how long a call whose peer declared dir and m may
// go without media: hold's bound while it holds or has no stream.
func mediaTimeout(dir Direction, m *Media, rtp, hold time.Duration) time.Duration {
	if dir != SendRecv || m.Hold || m.Addr.Port() == 0 {
		return hold
	}
	return rtp
}

// localSDP writes our side of an offer/answer exchange, the one place our
// SDP is made: the answer to offer, or, with none (an INVITE without an
// offer, or an INVITE of ours), our offer. An offer of ours carries the
// SRTP key in use, or under mode SRTPRequire a fresh one; it is kept in
// c.local.OfferKey for takeAnswer. An answer to an offer that kept the
// peer's key keeps ours, so that packets in flight while the peer reads it
// still decrypt. A call keyed out of band offers no key. Every description bumps the o= version (RFC 3264 8).
func (c *Call) localSDP(offer *Media, mode SRTPMode) ([]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.outOfBand != nil {
		mode = SRTPOff
	}
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
	key, codecs, dtmfPT := c.local.OfferKey, c.local.Codecs, c.local.DTMFPT
	c.mu.Unlock()
	m, err := ParseAnswer(body, key)
	if err != nil {
		return err
	}
	if len(codecs) > 0 && !slices.Contains(codecs, m.Codec) {
		return fmt.Errorf("%w: the answer's %v was not offered", ErrNoCommonCodec, m.Codec)
	}
	if dtmfPT < 0 {
		m.DTMFPT = -1 // none offered: a telephone-event in the answer is not agreed
	}
	c.applyMedia(m)
	return nil
}

// setOutOfBand keys the call's media outside SIP (see Call.outOfBand)
// with copies of keys; nil leaves it to SDES. It checks the keys against
// their profile first: rtpio would ignore an update with bad keys and
// leave the call without media.
func (c *Call) setOutOfBand(keys *rtpio.SRTPKeys) error {
	if keys == nil {
		return nil
	}
	if err := keys.Validate(); err != nil {
		return err
	}
	k := &rtpio.SRTPKeys{Local: bytes.Clone(keys.Local), Remote: bytes.Clone(keys.Remote), Profile: keys.Profile}
	c.mu.Lock()
	c.outOfBand = k
	c.mu.Unlock()
	return nil
}

// keyedOutOfBand reports whether the call's keys were agreed outside SIP.
func (c *Call) keyedOutOfBand() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.outOfBand != nil
}
