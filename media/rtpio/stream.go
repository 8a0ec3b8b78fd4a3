//go:build linux

package rtpio

import (
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/netip"
	"sync"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"
	"golang.org/x/sys/unix"

	"github.com/groupbridge/groupbridge/media/dtmf"
	"github.com/groupbridge/groupbridge/media/g711"
	"github.com/groupbridge/groupbridge/media/jitter"
	"github.com/groupbridge/groupbridge/media/pcm"
)

// Params are what SDP negotiated for one call's audio.
type Params struct {
	// Remote is the media address from SDP. It may be the zero value when
	// it is not known yet (an INVITE without an offer); the stream then
	// latches the first allowed source that passes probation.
	Remote netip.AddrPort
	// Allowed are the networks besides Remote's address that media (RTP
	// and RTCP) may come from: the address the call's SIP came from and
	// any the operator lists. Packets from every other address are dropped
	// whatever the caller does, and never latched. Nil allows Remote's
	// address alone.
	Allowed []netip.Prefix
	// CallID is the call's log id, carried by the stream's log lines.
	// Update ignores it.
	CallID string
	// Codec is used both to decode received audio and to encode sent audio.
	Codec g711.Codec
	// AudioPT is the payload type of audio, normally uint8(Codec).
	AudioPT uint8
	// DTMFPT is the telephone-event payload type the caller offered (101
	// for most phones, 96 for linphone), or -1 for none: then key presses
	// are detected in the audio, which delays it by 60 ms (see ReadFrame).
	DTMFPT int
	// OnDigit is called for each key press, after the stream's locks are
	// released (so it may call Update, SetDirection or Close, but not
	// Engine.Close). RFC 4733 presses are reported from a poller
	// goroutine; with DTMFPT -1 key tones in the audio are detected and
	// reported from ReadFrame, on the mixing clock's goroutine. Either
	// way it must not block: every stream of that poller, or the whole
	// room's clock, waits while it runs.
	OnDigit func(digit byte)
	// SRTP, when set, protects the stream with SRTP and SRTCP of the
	// keys' profile (AES_CM_128_HMAC_SHA1_80 for SDES, AEAD_AES_128_GCM
	// for the cluster's legs): what arrives is authenticated and
	// decrypted (failures are dropped, counted as SRTPAuth), what leaves
	// is encrypted. Nil is plain RTP.
	SRTP *SRTPKeys
}

// validate checks the fields a stream cannot work without.
func (p *Params) validate() error {
	if !p.Codec.Valid() {
		return fmt.Errorf("rtpio: codec %v is not G.711", p.Codec)
	}
	if p.AudioPT > 127 {
		return fmt.Errorf("rtpio: audio payload type %d is above 127", p.AudioPT)
	}
	if p.DTMFPT < -1 || p.DTMFPT > 127 {
		return fmt.Errorf("rtpio: telephone-event payload type %d is not -1 or 0-127", p.DTMFPT)
	}
	if p.DTMFPT == int(p.AudioPT) {
		return fmt.Errorf("rtpio: telephone-event and audio share payload type %d", p.AudioPT)
	}
	for _, a := range p.Allowed {
		if !a.IsValid() {
			return fmt.Errorf("rtpio: allowed network %v is not valid", a)
		}
	}
	if p.SRTP != nil {
		return p.SRTP.Validate()
	}
	return nil
}

// allowedNets copies a into a slice the stream owns, with IPv4-mapped
// networks turned into IPv4 ones: received sources are unmapped, and
// Prefix.Contains never matches across families.
func allowedNets(a []netip.Prefix) []netip.Prefix {
	out := make([]netip.Prefix, 0, len(a))
	for _, p := range a {
		if ip := p.Addr(); ip.Is4In6() {
			p = netip.PrefixFrom(ip.Unmap(), max(p.Bits()-96, 0)).Masked()
		}
		out = append(out, p)
	}
	return out
}

// normalRemote unmaps IPv4-mapped addresses (received sources are unmapped
// too, so they compare equal) and turns port 0, which SDP uses for a
// rejected stream, into "no remote".
func normalRemote(a netip.AddrPort) netip.AddrPort {
	if !a.IsValid() || a.Port() == 0 {
		return netip.AddrPort{}
	}
	return netip.AddrPortFrom(a.Addr().Unmap(), a.Port())
}

// Stream is one call's RTP port pair. ReadFrame and WriteFrame are meant
// for the single goroutine that runs the mixing clock; every other method
// may be called from any goroutine.
type Stream struct {
	e      *Engine
	p      *poller
	log    *slog.Logger // the engine's, with the call's id
	slot   int
	gen    uint32 // matches the epoll event data; see Engine.gen
	port   int
	fd     int // RTP socket; valid until Close
	rtcpFd int // RTCP socket (port+1); valid until Close
	ssrc   uint32
	// epoch is the origin of the arrival times that the jitter estimate
	// compares with RTP timestamps; it is read from the monotonic clock.
	epoch time.Time

	c tally // this stream's counters and its last sign of life

	// bnd is set on the engine's bundle port only (see OpenBundles).
	bnd *bundles

	// relay is the Relay this stream is part of, nil when none; guarded
	// by the engine's relayMu.
	relay *Relay

	closeOnce sync.Once
	closeErr  error

	// rx is the receive side, owned by the stream's poller; Update,
	// SetDirection, Stats and Close take the lock briefly.
	rx struct {
		mu      sync.Mutex
		closed  bool
		codec   g711.Codec
		audioPT uint8
		dtmfPT  int
		onDigit func(byte)
		recv    bool
		sdp     netip.AddrPort
		latch   latch
		// strangerLog is when strangers' packets were last logged, and
		// strangers how many were dropped since (see Stream.stranger).
		strangerLog time.Time
		strangers   uint64
		dtmf        dtmf.Decoder
		// srtp decrypts with the caller's key; nil for plain RTP. keys
		// are the ones in use, so that Update rebuilds only on a change.
		srtp *srtp.Context
		keys *SRTPKeys
		// link sends what this stream accepts out of another stream
		// instead of playing it (see Relay); nil in frame mode.
		link *relayLink
		// bundled: bundles may carry this stream's packets, named by
		// its port and bundleTag (AcceptBundles).
		bundled   bool
		bundleTag uint32
	}

	// play is the receive side between the poller (Push) and the clock
	// (ReadFrame); it has its own lock so the clock never waits for a
	// socket drain. rx.mu nests outside it.
	play player

	// q holds the receive statistics and what RTCP told us. Its lock is a
	// leaf: the poller takes it under rx.mu for each packet, WriteFrame
	// under tx.mu for each report.
	q struct {
		mu   sync.Mutex
		in   rxStats
		out  OutboundQuality
		sent [srHistory]sentSR // our latest SRs, newest first
	}

	// tx is the send side, used by WriteFrame; Update, SetDirection,
	// latching and Close take the lock briefly.
	tx sender
}

// player is a stream's playout side: the jitter buffer and, for a caller
// without telephone-event, the in-band key filter behind it.
type player struct {
	mu  sync.Mutex
	buf *jitter.Buffer
	// filter cuts in-band key tones for a caller without
	// telephone-event (DTMFPT -1); nil otherwise. kinds remembers
	// what the buffer gave for each frame in the filter's delay
	// line, n counts the frames that went in.
	filter  *dtmf.Filter
	kinds   [dtmf.MaxFilterDelay + 1]jitter.Kind
	n       int
	onDigit func(byte)
	// relayed: the stream's packets are relayed, nothing is played.
	relayed bool
}

// sender is a stream's send side: the RTP header it advances, where
// audio and reports go, and the SRTP context and buffers that let
// sending allocate nothing.
type sender struct {
	mu       sync.Mutex
	closed   bool
	send     bool
	codec    g711.Codec
	dst      rawAddr        // where audio goes, for sendto(2); unset: nowhere to send
	remote   netip.AddrPort // the peer's address as last set, reachable or not
	hdr      rtp.Header
	started  bool // a packet has been sent (the next needs no marker)
	lastSend time.Time
	buf      [rtpHeaderLen + pcm.FrameSamples]byte
	eventTS  uint32 // the timestamp of the key press WriteEvent is sending
	dtmfPT   int    // the peer's telephone-event payload type, -1 for none: what relayed key presses go out as

	// bundle, when set, takes the audio instead of the socket: it goes
	// in bundles to bundleDst, tagged bundleTag (SendBundled).
	bundle    *bundleOut
	bundleDst netip.AddrPort
	bundleTag uint32

	// RTCP sending: see rtcp.go.
	rtcpSeen        netip.AddrPort // where the peer's RTCP comes from; zero until seen
	rtcpDstRaw      rawAddr        // where the last report went, for sendto(2)
	nextRTCP        time.Time      // zero: the first report is not scheduled yet
	sentSinceReport bool           // audio went out since our previous report
	rtpPackets      uint32         // RTP packets sent, for the SR's sender info
	rtpOctets       uint32         // their payload octets
	rtcpBuf         [rtcpBufSize]byte

	// SRTP sending: srtp encrypts with our key (nil for plain RTP)
	// into enc and rtcpEnc, reused so that sending allocates nothing;
	// encHdr is pion's scratch header.
	srtp    *srtp.Context
	enc     [rtpHeaderLen + pcm.FrameSamples + srtpTagLen]byte
	rtcpEnc [rtcpBufSize + srtcpTrailerLen]byte
	encHdr  rtp.Header
	rtcpHdr rtcp.Header
}

// rtpHeaderLen is the size of the RTP header the stream sends (no CSRC, no
// extension).
const rtpHeaderLen = 12

// markerGap is the pause in sending after which the next packet carries
// the marker bit and a timestamp advanced by the real elapsed time: the
// receiver's jitter buffer then knows a talkspurt starts (RFC 3551 4.1)
// instead of seeing a burst of late packets.
const markerGap = 60 * time.Millisecond

// Open binds a free port pair (RTP on even port P, RTCP on P+1) and
// registers both sockets with a poller. The pair is picked at random, so
// that an outsider cannot tell which port the next call gets; a pair freed
// less than reuseDelay ago is handed out only when no other is free, so a
// late packet of the old call does not reach a new one. A port already
// bound by another socket is skipped. It returns ErrNoPorts when no pair is
// free and ErrClosed after Close.
func (e *Engine) Open(p Params) (*Stream, error) { return e.open(p, nil) }

// open is Open; a non-nil b makes the stream the engine's bundle port.
func (e *Engine) open(p Params, b *bundles) (*Stream, error) {
	if err := p.validate(); err != nil {
		return nil, err
	}
	srtpOut, srtpIn, err := srtpContexts(p.SRTP)
	if err != nil {
		return nil, err
	}
	allow := allowedNets(p.Allowed)
	log := e.log
	if p.CallID != "" {
		log = log.With("call", p.CallID)
	}
	now := time.Now()
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return nil, ErrClosed
	}
	start, stride := randomWalk(e.pairs)
	for pass := range 2 {
		for k := range e.pairs {
			i := (start + k*stride) % e.pairs
			if e.inUse[i] || pass == 0 && !e.freed[i].IsZero() && now.Sub(e.freed[i]) < reuseDelay {
				continue
			}
			port := e.firstPort + 2*i
			rtpFd, err := e.bind(port)
			if errors.Is(err, unix.EADDRINUSE) {
				continue
			}
			if err != nil {
				return nil, err
			}
			rtcpFd, err := e.bind(port + 1)
			if err != nil {
				_ = unix.Close(rtpFd)
				if errors.Is(err, unix.EADDRINUSE) {
					continue
				}
				return nil, err
			}
			s := e.newStream(p, allow, i, port, rtpFd, rtcpFd)
			s.bnd = b
			s.log = log
			s.tx.srtp, s.rx.srtp, s.rx.keys = srtpOut, srtpIn, p.SRTP
			if err := s.register(); err != nil {
				_ = unix.Close(rtpFd)
				_ = unix.Close(rtcpFd)
				return nil, err
			}
			e.inUse[i] = true
			return s, nil
		}
	}
	return nil, ErrNoPorts
}

// reuseDelay is how long a freed port pair rests while others are free:
// longer than a packet of the old call can still be on its way.
const reuseDelay = 10 * time.Second

// randomWalk returns a random start and a random step coprime with n, so
// that start + k*step (mod n) for k = 0..n-1 visits every index once, in
// an order an outsider cannot predict.
func randomWalk(n int) (start, step int) {
	start = rand.IntN(n)
	if n <= 2 {
		return start, 1
	}
	for {
		step = 1 + rand.IntN(n-1)
		if gcd(step, n) == 1 {
			return start, step
		}
	}
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// bind makes one non-blocking UDP socket bound to the engine address.
func (e *Engine) bind(port int) (int, error) {
	fd, err := unix.Socket(e.family, unix.SOCK_DGRAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, unix.IPPROTO_UDP)
	if err != nil {
		return -1, fmt.Errorf("rtpio: socket: %w", err)
	}
	var sa unix.Sockaddr
	if e.family == unix.AF_INET {
		sa = &unix.SockaddrInet4{Port: port, Addr: e.cfg.Address.As4()}
	} else {
		if e.cfg.Address.IsUnspecified() {
			// Serve IPv4 peers too, whatever net.ipv6.bindv6only says.
			if err := unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, 0); err != nil {
				_ = unix.Close(fd)
				return -1, fmt.Errorf("rtpio: clear IPV6_V6ONLY: %w", err)
			}
		}
		sa = &unix.SockaddrInet6{Port: port, Addr: e.cfg.Address.As16()}
	}
	if err := unix.Bind(fd, sa); err != nil {
		_ = unix.Close(fd)
		return -1, fmt.Errorf("rtpio: bind %s: %w", netip.AddrPortFrom(e.cfg.Address, uint16(port)), err)
	}
	return fd, nil
}

// newStream builds a stream around two bound sockets; it is not yet
// visible to pollers.
func (e *Engine) newStream(p Params, allow []netip.Prefix, slot, port, rtpFd, rtcpFd int) *Stream {
	s := &Stream{
		e:      e,
		log:    e.log,
		p:      e.pollers[int(e.next.Add(1)-1)%len(e.pollers)],
		slot:   slot,
		gen:    e.gen.Add(1) & 0x7fffffff, // 31 bits: the low bit of the event data says RTP/RTCP
		port:   port,
		fd:     rtpFd,
		rtcpFd: rtcpFd,
		ssrc:   rand.Uint32(),
		epoch:  time.Now(),
	}
	s.c.sum = &s.p.counters
	s.c.touch(s.epoch)
	remote := normalRemote(p.Remote)
	s.rx.codec, s.rx.audioPT, s.rx.dtmfPT, s.rx.onDigit = p.Codec, p.AudioPT, p.DTMFPT, p.OnDigit
	s.rx.recv = true
	s.rx.sdp = remote
	s.rx.latch.reset(remote, allow)
	s.play.buf = jitter.New(jitter.Config{MinDelay: e.cfg.JitterMin, MaxDelay: e.cfg.JitterMax})
	s.play.setInband(p)
	s.tx.send = true
	s.tx.codec = p.Codec
	s.tx.dtmfPT = p.DTMFPT
	s.tx.hdr = rtp.Header{
		Version:        2,
		PayloadType:    p.AudioPT,
		SequenceNumber: uint16(rand.Uint32()),
		Timestamp:      rand.Uint32(),
		SSRC:           s.ssrc,
	}
	s.tx.setDst(s.e, remote)
	return s
}

// register publishes s in its slot and adds both sockets to its poller.
func (s *Stream) register() error {
	s.e.slots[s.slot].Store(s)
	for i, fd := range [2]int{s.fd, s.rtcpFd} {
		ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(s.slot), Pad: int32(s.gen<<1 | uint32(i))}
		if err := unix.EpollCtl(s.p.epfd, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
			if i == 1 {
				_ = unix.EpollCtl(s.p.epfd, unix.EPOLL_CTL_DEL, s.fd, nil)
			}
			s.e.slots[s.slot].Store(nil)
			return fmt.Errorf("rtpio: register port %d with poller %d: %w", s.port+i, s.p.id, err)
		}
	}
	if s.bnd != nil {
		// The bundle port alone does not keep the poller looking: a
		// node without calls idles. Legs that take bundles do
		// (AcceptBundles).
		return nil
	}
	s.p.wake()
	return nil
}

// wake counts one more reason for p to look at its sockets, and starts it
// looking if it had none.
func (p *poller) wake() {
	if p.streams.Add(1) == 1 {
		select {
		case p.kick <- struct{}{}:
		default: // already kicked
		}
	}
}

// sentRTP counts one RTP packet of payload bytes sent (or bundled), for
// the next sender report. The caller holds t.mu.
func (t *sender) sentRTP(payload int) {
	t.sentSinceReport = true
	t.rtpPackets++
	t.rtpOctets += uint32(payload)
}

// setDst points sending at a. A remote of the other address family than
// e's sockets (an IPv6 peer on IPv4 sockets, or an IPv4 peer on sockets
// bound to one IPv6 address) cannot be reached: sending stops instead of
// failing on every frame. The caller holds t.mu or owns the stream
// exclusively.
func (t *sender) setDst(e *Engine, a netip.AddrPort) {
	t.dst = rawAddr{}
	t.remote = a
	t.rtcpSeen = netip.AddrPort{}
	if !a.IsValid() {
		return
	}
	ip := a.Addr()
	if e.family == unix.AF_INET && ip.Is4() ||
		e.family == unix.AF_INET6 && (ip.Is6() || e.cfg.Address.IsUnspecified()) {
		t.dst.set(e.family, a)
	}
}

// LocalAddr returns the RTP address: the engine address and the stream's
// even port. An unspecified engine address (0.0.0.0 or ::) is returned as
// is; the SIP layer puts its own external address into SDP.
func (s *Stream) LocalAddr() netip.AddrPort {
	return netip.AddrPortFrom(s.e.cfg.Address, uint16(s.port))
}

// Update applies a re-negotiation (re-INVITE). The codec and payload types
// take effect with the next packet. Allowed replaces the allowed networks
// (a source latched before stays while it is allowed). A changed Remote
// resets latching: the new SDP address is trusted at once and sending goes
// there. An invalid
// Params (a codec other than G.711, bad payload types) is ignored with a
// logged warning, as the SIP layer should have refused it.
func (s *Stream) Update(p Params) {
	if err := p.validate(); err != nil {
		s.log.Warn("rtpio: update ignored", "port", s.port, "err", err)
		return
	}
	remote := normalRemote(p.Remote)
	allow := allowedNets(p.Allowed)
	s.rx.mu.Lock()
	defer s.rx.mu.Unlock()
	if s.rx.closed {
		return
	}
	// New SDES keys (a re-INVITE may rekey or drop SRTP) start fresh
	// contexts; the same keys keep the running ones and their rollover
	// and replay state.
	rekey := !p.SRTP.equal(s.rx.keys)
	var srtpOut *srtp.Context
	if rekey {
		var srtpIn *srtp.Context
		var err error
		if srtpOut, srtpIn, err = srtpContexts(p.SRTP); err != nil {
			s.log.Warn("rtpio: update ignored", "port", s.port, "err", err)
			return
		}
		s.rx.srtp, s.rx.keys = srtpIn, p.SRTP
	}
	s.rx.codec, s.rx.audioPT, s.rx.dtmfPT, s.rx.onDigit = p.Codec, p.AudioPT, p.DTMFPT, p.OnDigit
	s.play.mu.Lock()
	s.play.setInband(p)
	s.play.mu.Unlock()
	moved := remote != s.rx.sdp
	if moved {
		s.rx.sdp = remote
		s.rx.latch.reset(remote, allow)
	} else {
		s.rx.latch.setAllowed(allow)
	}
	s.tx.mu.Lock()
	defer s.tx.mu.Unlock()
	s.tx.codec = p.Codec
	s.tx.dtmfPT = p.DTMFPT
	s.tx.hdr.PayloadType = p.AudioPT
	if rekey {
		s.tx.srtp = srtpOut
	}
	if cur := s.rx.latch.cur; moved || cur != s.tx.remote {
		// Also when the latched source is no longer allowed: sending
		// goes back to the SDP address.
		s.tx.setDst(s.e, cur)
	}
}

// SetDirection sets the media direction from SDP. With recv false,
// incoming audio is dropped (counted as Direction) but still proves the
// caller alive for LastActivity, and DTMF is still decoded. With send
// false WriteFrame sends nothing; when sending resumes the first packet
// carries the marker bit.
func (s *Stream) SetDirection(send, recv bool) {
	s.rx.mu.Lock()
	s.rx.recv = recv
	s.rx.mu.Unlock()
	s.tx.mu.Lock()
	s.tx.send = send
	s.tx.mu.Unlock()
}

// inbandDelay is the in-band DTMF filter's delay line in frames: 60 ms,
// which the filter's documentation recommends so that tones confirmed
// late are still cut from their first sample. It applies only to callers
// without telephone-event.
const inbandDelay = 3

// setInband installs the in-band key tone filter when the caller has no
// telephone-event, and removes it (with its delay) when it has. An
// existing filter is kept, so a re-INVITE does not cut the delay line.
// The caller holds pl.mu or owns the stream exclusively.
func (pl *player) setInband(p Params) {
	pl.onDigit = p.OnDigit
	switch {
	case p.DTMFPT >= 0:
		pl.filter = nil
	case pl.filter == nil:
		pl.filter = dtmf.NewFilter(inbandDelay)
		for i := range pl.kinds {
			pl.kinds[i] = jitter.Silence
		}
		pl.n = 0
	}
}

// ReadFrame puts the next 20 ms of the caller's audio into f for the
// mixing clock, from the jitter buffer, which plays packets in timestamp
// order at a delay that follows the network's jitter. It returns true for
// received audio and for loss concealment (a fading repeat of the last
// audio standing in for missing packets), and false with f silenced when
// there is nothing to play.
//
// For a caller without telephone-event (DTMFPT -1) the audio also passes
// an in-band DTMF filter: f is then the audio of 60 ms earlier, with
// every frame that carried part of a key tone silenced (and false
// returned for it), and each key press detected is reported to OnDigit
// from this call. With telephone-event no filter runs and nothing is
// delayed.
func (s *Stream) ReadFrame(f *pcm.Frame) bool {
	return s.readFrame(f, time.Now())
}

// readFrame is ReadFrame at the clock tick now. The digit callback runs
// after the playout lock is released, so that it may call back into the
// stream.
func (s *Stream) readFrame(f *pcm.Frame, now time.Time) bool {
	played, digit, onDigit := s.play.pop(f, now, &s.c)
	if onDigit != nil {
		onDigit(digit)
	}
	return played
}

// pop takes the next frame from the jitter buffer through the in-band
// key filter, under pl.mu, released by a deferred call so that a panic in
// the buffer or the filter cannot leave it held (the poller that serves
// this and other streams would block on it for ever). Concealment is
// counted in c. It returns the OnDigit callback when a key press was
// detected.
func (pl *player) pop(f *pcm.Frame, now time.Time, c *tally) (played bool, digit byte, onDigit func(byte)) {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	if pl.relayed {
		*f = pcm.Frame{}
		return false, 0, nil
	}
	kind := pl.buf.Pop(f, now)
	if kind == jitter.Concealed {
		c.concealed()
	}
	fl := pl.filter
	if fl == nil {
		return kind != jitter.Silence, 0, nil
	}
	// The frame that comes out of the filter went in Delay() frames ago:
	// its kind decides the result, and a frame the filter cut is silence.
	size := len(pl.kinds)
	pl.kinds[pl.n%size] = kind
	pl.n++
	d, pressed := fl.Process(f, f)
	played = pl.n > fl.Delay() && pl.kinds[(pl.n-1-fl.Delay())%size] != jitter.Silence && *f != (pcm.Frame{})
	if pressed {
		return played, d, pl.onDigit
	}
	return played, 0, nil
}

// WriteFrame encodes f with the negotiated codec and sends it as one RTP
// packet to the latched remote (the SDP address until a NAT-ed source is
// latched). Sequence numbers advance by one and timestamps by 160 per
// frame from random starting values; the first packet, and the first
// after more than 60 ms without sending, carry the marker bit, and after
// such a pause the timestamp also advances by the time that passed. It
// sends nothing without a remote or after Close, and no audio when sending
// is off. A full socket buffer drops the frame (counted as SendError): it
// never blocks. It must not be called concurrently with itself.
//
// WriteFrame also sends the stream's RTCP reports, about every 5 s
// (randomised between 0.5 and 1.5 times that, RFC 3550 6.2) to the peer's
// RTCP address: a sender report while audio goes out, a receiver report
// while sending is off. The clock should therefore call it every tick
// for every stream, even one that sends nothing.
func (s *Stream) WriteFrame(f *pcm.Frame) { s.write(f, nil) }

// WriteShared is WriteFrame for a frame that many streams send: the
// payload is sh's encoding under this stream's codec, made once for all of
// them (see g711.Shared). Nothing is sent before sh's first Set. Streams
// that share sh must be written from one goroutine.
func (s *Stream) WriteShared(sh *g711.Shared) { s.write(nil, sh) }

// write is WriteFrame (sh nil) and WriteShared (f nil).
func (s *Stream) write(f *pcm.Frame, sh *g711.Shared) {
	s.tx.mu.Lock()
	defer s.tx.mu.Unlock()
	if s.tx.closed || !s.tx.dst.valid() {
		return
	}
	now := time.Now()
	if s.tx.send && (sh == nil || sh.Frame() != nil) {
		s.sendFrame(f, sh, now)
	}
	if !now.Before(s.tx.nextRTCP) {
		s.rtcpDue(now)
	}
}

// sendFrame packetizes and sends f, or sh's encoding when sh is set. The
// caller holds s.tx.mu.
func (s *Stream) sendFrame(f *pcm.Frame, sh *g711.Shared, now time.Time) {
	h := &s.tx.hdr
	h.Marker = false
	switch {
	case !s.tx.started:
		s.tx.started = true
		h.Marker = true
	default:
		h.SequenceNumber++
		gap := now.Sub(s.tx.lastSend)
		if gap > markerGap {
			h.Marker = true
			h.Timestamp += uint32(gap / (time.Second / pcm.SampleRate))
		} else {
			h.Timestamp += pcm.FrameSamples
		}
	}
	s.tx.lastSend = now
	buf := s.tx.buf[:]
	n, err := h.MarshalTo(buf)
	if err != nil { // cannot happen: the header has a fixed 12-byte shape
		s.c.drop(dropSendError)
		return
	}
	if sh != nil {
		enc := sh.Encoded(s.tx.codec)
		if s.tx.bundle != nil {
			s.addBundled(h, enc, true)
			s.tx.sentRTP(len(enc))
			return
		}
		n += copy(buf[n:], enc)
	} else {
		n += s.tx.codec.Encode(buf[n:], f[:])
	}
	out := buf[:n]
	if s.tx.bundle != nil {
		s.addBundled(h, out[rtpHeaderLen:], false)
		s.tx.sentRTP(n - rtpHeaderLen)
		return
	}
	if s.tx.srtp != nil {
		// enc has room for the tag, so pion writes into it and allocates nothing.
		if out, err = s.tx.srtp.EncryptRTP(s.tx.enc[:], out, &s.tx.encHdr); err != nil {
			s.c.drop(dropSendError)
			return
		}
	}
	if sendto(s.fd, out, &s.tx.dst) != 0 {
		s.c.drop(dropSendError)
		return
	}
	s.tx.sentRTP(n - rtpHeaderLen)
	s.c.out(len(out))
}

// LastActivity is the arrival time of the last packet accepted from the
// caller: audio, DTMF or any other payload type from the latched source
// (even while receiving is off), or valid RTCP from its address. It starts at
// the time of Open, so a call that never sends times out too.
func (s *Stream) LastActivity() time.Time {
	return time.Unix(0, s.c.last.Load())
}

// Stats returns the stream's counters, its latched source and its jitter
// buffer's figures.
func (s *Stream) Stats() StreamStats {
	st := StreamStats{Stats: s.c.own.snapshot()}
	s.rx.mu.Lock()
	st.Latched = s.rx.latch.cur
	s.rx.mu.Unlock()
	s.play.mu.Lock()
	st.Playout = s.play.buf.Stats()
	s.play.mu.Unlock()
	return st
}

// Close unregisters both sockets from the poller, closes them and returns
// the port pair to the engine. It is idempotent and safe to call while a
// poller is serving the stream or WriteFrame runs: it waits for both to
// finish their current packet, so a closed descriptor (whose number the
// kernel may reuse for another stream) is never read or written.
func (s *Stream) Close() error {
	s.closeOnce.Do(func() {
		s.rx.mu.Lock()
		s.tx.mu.Lock()
		s.rx.closed = true
		s.tx.closed = true
		s.stopBundling()
		var errs []error
		for _, fd := range [2]int{s.fd, s.rtcpFd} {
			// Removing before closing matters only if the descriptor were
			// duplicated; the kernel drops it from epoll on close anyway.
			_ = unix.EpollCtl(s.p.epfd, unix.EPOLL_CTL_DEL, fd, nil)
			if err := unix.Close(fd); err != nil {
				errs = append(errs, fmt.Errorf("rtpio: close socket of port %d: %w", s.port, err))
			}
		}
		s.tx.mu.Unlock()
		s.rx.mu.Unlock()
		if s.bnd == nil {
			s.p.streams.Add(-1)
		}
		if s.rx.bundled {
			s.e.bnd.Load().s.p.streams.Add(-1)
		}
		s.e.release(s)
		s.closeErr = errors.Join(errs...)
	})
	return s.closeErr
}

// release frees the slot and the port pair of a closed stream.
func (e *Engine) release(s *Stream) {
	e.slots[s.slot].CompareAndSwap(s, nil)
	// Its losses stay in the engine's total; added only once Stats can no
	// longer find it among the open streams, so never counted twice.
	s.q.mu.Lock()
	e.lostClosed.Add(s.q.in.lost())
	s.q.mu.Unlock()
	e.mu.Lock()
	e.inUse[s.slot] = false
	e.freed[s.slot] = time.Now()
	e.mu.Unlock()
}
