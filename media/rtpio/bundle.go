//go:build linux

package rtpio

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"time"
	"unsafe"

	"github.com/pion/rtp"
	"golang.org/x/sys/unix"

	"github.com/groupbridge/groupbridge/media/g711"
)

// Bundles carry a room owner's audio to a relay node (docs/DECISIONS.md,
// D32). Without them the owner sends each relayed caller's frame on that
// caller's leg: a system call and an SRTP encryption per caller per tick.
// With them, the frames of every leg toward one relay node are gathered
// during the mixing tick and sent after it as one AES-GCM datagram from
// the engine's bundle port to the relay node's, the room's common mix
// once however many listen to it. The relay node takes each frame as if
// it had arrived on the leg it names, and relays it to the caller.
//
// Only that direction is bundled: callers' packets reach the relay node
// spread over the 20 ms, and holding them to bundle would delay them.
//
// A datagram is
//
//	"GBB1" | instance (8) | counter (8) | AES-128-GCM(plaintext) | tag (16)
//
// with the first 20 bytes as additional data. The key is derived from the
// cluster's bundle key and the instance, a random number each engine
// draws at start, so a restarted node never reuses a nonce (the counter).
// The plaintext is
//
//	entries (2) | entries × bundleEntryLen | payloads
//
// and an entry is the relay node's leg port (2), the leg's tag (4), marker
// and payload type (1), sequence number (2), timestamp (4), SSRC (4) and
// its payload's offset (2) and length (2) among the payloads. The tag
// tells a leg from an earlier one on a reused port.

const (
	// BundleKeyLen is the length of the key OpenBundles takes.
	BundleKeyLen = 32

	bundleMagic     = "GBB1"
	bundleHeaderLen = 4 + 8 + 8
	bundleTagLen    = 16
	bundleEntryLen  = 2 + 4 + 1 + 2 + 4 + 4 + 2 + 2
	// bundleMax bounds a datagram's plaintext so that the whole datagram
	// fits a 1500-byte Ethernet MTU with its IPv6 and UDP headers: a
	// fragmented datagram is lost whole when one fragment is.
	bundleMax = 1400
	// bundleRecent is how many payloads of one datagram are remembered for
	// sharing: a room's common mix and its codecs.
	bundleRecent = 4
	// bundlePeers bounds the instances a receiver keeps keys and replay
	// windows for: the nodes of a cluster and their restarts.
	bundlePeers = 64
	// bundleWindow is how far behind the newest counter of an instance a
	// datagram may arrive and still be taken once.
	bundleWindow = 64
	bundleLabel  = "groupbridge downlink bundle v1"
	// bundleDrain bounds the datagrams one look reads from the bundle
	// port: a tick's bundles for a thousand callers, and a flood cannot
	// hold the poller.
	bundleDrain = 256
	// bundleRcvBuf is the bundle port's receive buffer: a thousand
	// relayed callers' tick is about 200 KB of bundles.
	bundleRcvBuf = 1 << 20
)

// ErrNoBundles is returned by Stream.SendBundled on an engine without
// OpenBundles.
var ErrNoBundles = errors.New("rtpio: bundles are not open on this engine")

// bundles is an engine's bundle port: what it sends (out) and what it
// takes in.
type bundles struct {
	e     *Engine
	s     *Stream // the bundle port; its counters count the datagrams
	key   []byte
	allow []netip.Prefix

	mu       sync.Mutex
	aead     cipher.AEAD
	instance [8]byte
	counter  uint64
	dsts     map[netip.AddrPort]*bundleOut
	plain    [bundleMax]byte
	aad      [bundleHeaderLen]byte
	nonce    [12]byte
	wire     [bundleHeaderLen + bundleMax + bundleTagLen]byte

	// peers are the senders' keys and replay windows; only the bundle
	// port's poller uses them, under p.mu.
	peers map[[8]byte]*bundlePeer
}

// bundleOut is what waits to go to one relay node this tick.
type bundleOut struct {
	dst      rawAddr
	refs     int
	n        int // entries
	entries  []byte
	payloads []byte
	recent   [bundleRecent]sharedPayload
	nRecent  int
}

// sharedPayload is a payload already in a bundle, by its first byte's
// address: the encoding of a frame many streams share.
type sharedPayload struct {
	p   *byte
	n   int
	off int
}

// bundlePeer is one sending instance as a receiver knows it.
type bundlePeer struct {
	aead cipher.AEAD
	high uint64
	seen uint64 // bit i: counter high-i was taken
}

// BundleFlush is the mixing clock's last ticker (clock.AddLast): it sends
// what the rooms' ticks gathered.
type BundleFlush struct{ e *Engine }

// Tick sends the bundles.
func (f BundleFlush) Tick(time.Time) { f.e.FlushBundles() }

// BundleFlusher returns the ticker that sends e's bundles.
func (e *Engine) BundleFlusher() BundleFlush { return BundleFlush{e} }

// OpenBundles opens e's bundle port, one port pair of its range, and
// returns its address. key (BundleKeyLen bytes, the same on every node)
// protects what is sent and received there; datagrams are taken only from
// allow. Calling it again returns the same port.
func (e *Engine) OpenBundles(key []byte, allow []netip.Prefix) (netip.AddrPort, error) {
	if len(key) != BundleKeyLen {
		return netip.AddrPort{}, fmt.Errorf("rtpio: bundle key is %d bytes, want %d", len(key), BundleKeyLen)
	}
	if b := e.bnd.Load(); b != nil {
		return b.s.LocalAddr(), nil
	}
	b := &bundles{e: e, key: append([]byte(nil), key...), allow: allowedNets(allow),
		dsts: map[netip.AddrPort]*bundleOut{}, peers: map[[8]byte]*bundlePeer{}}
	if _, err := rand.Read(b.instance[:]); err != nil {
		return netip.AddrPort{}, err
	}
	aead, err := bundleAEAD(b.key, b.instance)
	if err != nil {
		return netip.AddrPort{}, err
	}
	b.aead = aead
	s, err := e.open(Params{Codec: g711.PCMU, DTMFPT: -1}, b)
	if err != nil {
		return netip.AddrPort{}, err
	}
	// A tick's bundles arrive at once: room for several ticks of them
	// (best effort, up to the kernel's net.core.rmem_max).
	_ = unix.SetsockoptInt(s.fd, unix.SOL_SOCKET, unix.SO_RCVBUF, bundleRcvBuf)
	b.s = s
	if !e.bnd.CompareAndSwap(nil, b) {
		_ = s.Close()
		return e.bnd.Load().s.LocalAddr(), nil
	}
	return s.LocalAddr(), nil
}

// BundleStats returns the bundle port's counters: datagrams sent and
// received, and those dropped (Malformed, ForeignSource for a source outside
// allow or an entry for no leg, SRTPAuth for a failed authentication,
// Duplicate for a replay, SendError).
func (e *Engine) BundleStats() Stats {
	b := e.bnd.Load()
	if b == nil {
		return Stats{}
	}
	return b.s.c.own.snapshot()
}

func bundleAEAD(key []byte, instance [8]byte) (cipher.AEAD, error) {
	k, err := hkdf.Key(sha256.New, key, instance[:], bundleLabel, 16)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(k)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// SendBundled makes s send its audio in bundles to port, the bundle port of
// the node its remote address belongs to (a relay node), tagged tag, the
// tag that node's leg was given (AcceptBundles). RTCP stays on s.
func (s *Stream) SendBundled(port uint16, tag uint32) error {
	b := s.e.bnd.Load()
	if b == nil {
		return ErrNoBundles
	}
	t := &s.tx
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return ErrClosed
	}
	if !t.remote.IsValid() || port == 0 {
		return errors.New("rtpio: bundles: the stream has no remote address or the port is 0")
	}
	dst := netip.AddrPortFrom(t.remote.Addr(), port)
	b.mu.Lock()
	defer b.mu.Unlock()
	if t.bundle != nil {
		b.unref(t.bundleDst)
	}
	o := b.dsts[dst]
	if o == nil {
		o = &bundleOut{entries: make([]byte, 0, bundleMax), payloads: make([]byte, 0, bundleMax)}
		o.dst.set(s.e.family, dst)
		if !o.dst.valid() {
			return fmt.Errorf("rtpio: bundles: %v is not reachable from this engine's sockets", dst)
		}
		b.dsts[dst] = o
	}
	o.refs++
	t.bundle, t.bundleDst, t.bundleTag = o, dst, tag
	return nil
}

// unref forgets one stream's use of dst. The caller holds b.mu.
func (b *bundles) unref(dst netip.AddrPort) {
	o := b.dsts[dst]
	if o == nil {
		return
	}
	if o.refs--; o.refs <= 0 {
		b.seal(o)
		delete(b.dsts, dst)
	}
}

// stopBundling ends s's sending in bundles (Close). The caller holds
// s.tx.mu.
func (s *Stream) stopBundling() {
	if s.tx.bundle == nil {
		return
	}
	b := s.e.bnd.Load()
	b.mu.Lock()
	b.unref(s.tx.bundleDst)
	b.mu.Unlock()
	s.tx.bundle = nil
}

// AcceptBundles lets s take the frames that bundles name it by its port
// and tag: s is a leg to an owner node that sends in bundles.
// The bundle port's poller looks at its sockets while such a leg is open.
func (s *Stream) AcceptBundles(tag uint32) error {
	b := s.e.bnd.Load()
	if b == nil {
		return ErrNoBundles
	}
	s.rx.mu.Lock()
	defer s.rx.mu.Unlock()
	if s.rx.closed {
		return ErrClosed
	}
	if !s.rx.bundled {
		b.s.p.wake()
	}
	s.rx.bundled, s.rx.bundleTag = true, tag
	return nil
}

// addBundled puts one packet of s in its bundle instead of sending it:
// h's fields and payload, whose storage is shared by other streams when
// shared is set. The caller holds s.tx.mu.
func (s *Stream) addBundled(h *rtp.Header, payload []byte, shared bool) {
	b := s.e.bnd.Load()
	o := s.tx.bundle
	b.mu.Lock()
	defer b.mu.Unlock()
	off := -1
	if shared {
		for _, r := range o.recent[:min(o.nRecent, bundleRecent)] {
			if r.p == unsafe.SliceData(payload) && r.n == len(payload) {
				off = r.off
				break
			}
		}
	}
	need := bundleEntryLen
	if off < 0 {
		need += len(payload)
	}
	if 2+len(o.entries)+len(o.payloads)+need > bundleMax {
		b.seal(o)
		off, need = -1, bundleEntryLen+len(payload)
	}
	if 2+need > bundleMax {
		s.c.drop(dropSendError) // longer than any 20 ms frame
		return
	}
	if off < 0 {
		off = len(o.payloads)
		o.payloads = append(o.payloads, payload...)
		if shared {
			o.recent[o.nRecent%bundleRecent] = sharedPayload{p: unsafe.SliceData(payload), n: len(payload), off: off}
			o.nRecent++
		}
	}
	mpt := h.PayloadType & 0x7f
	if h.Marker {
		mpt |= 0x80
	}
	e := o.entries
	e = binary.BigEndian.AppendUint16(e, s.tx.remote.Port())
	e = binary.BigEndian.AppendUint32(e, s.tx.bundleTag)
	e = append(e, mpt)
	e = binary.BigEndian.AppendUint16(e, h.SequenceNumber)
	e = binary.BigEndian.AppendUint32(e, h.Timestamp)
	e = binary.BigEndian.AppendUint32(e, h.SSRC)
	e = binary.BigEndian.AppendUint16(e, uint16(off))
	e = binary.BigEndian.AppendUint16(e, uint16(len(payload)))
	o.entries = e
	o.n++
	s.c.outOwn(rtpHeaderLen + len(payload))
}

// FlushBundles sends every bundle gathered since the last flush. The
// mixing clock calls it after each tick (BundleFlusher).
func (e *Engine) FlushBundles() {
	b := e.bnd.Load()
	if b == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, o := range b.dsts {
		b.seal(o)
	}
}

// seal encrypts and sends what o holds, if anything, and empties it. The
// caller holds b.mu.
func (b *bundles) seal(o *bundleOut) {
	if o.n == 0 {
		return
	}
	plain := b.plain[:0]
	plain = binary.BigEndian.AppendUint16(plain, uint16(o.n))
	plain = append(plain, o.entries...)
	plain = append(plain, o.payloads...)
	o.entries, o.payloads, o.n, o.nRecent = o.entries[:0], o.payloads[:0], 0, 0

	b.counter++
	copy(b.aad[:], bundleMagic)
	copy(b.aad[4:], b.instance[:])
	binary.BigEndian.PutUint64(b.aad[12:], b.counter)
	binary.BigEndian.PutUint64(b.nonce[4:], b.counter)
	out := append(b.wire[:0], b.aad[:]...)
	out = b.aead.Seal(out, b.nonce[:], plain, b.aad[:])

	s := b.s
	s.tx.mu.Lock()
	defer s.tx.mu.Unlock()
	if s.tx.closed {
		return
	}
	if sendto(s.fd, out, &o.dst) != 0 {
		s.c.drop(dropSendError)
		return
	}
	s.c.out(len(out))
}

// serveBundles reads the datagrams waiting at the bundle port s, up to
// bundleDrain, and delivers their frames. Unlike a caller's socket, which
// holds one packet per 20 ms, this one gets a burst each tick (a bundle
// per few rooms) that one read per look would let overflow. The caller
// holds p.mu, so p's scratch space is its own; s's receive lock is held
// only for each read, so that taking each leg's below nests no two
// receive locks.
func (p *poller) serveBundles(s *Stream, now time.Time) {
	for range bundleDrain {
		s.rx.mu.Lock()
		if s.rx.closed {
			s.rx.mu.Unlock()
			return
		}
		n, from, errno := p.recv(s.fd)
		s.rx.mu.Unlock()
		if errno == unix.EAGAIN {
			return
		}
		if errno != 0 {
			continue // EINTR, or a pending socket error this read consumed
		}
		s.c.in(n)
		if n > len(p.buf) {
			s.c.drop(dropMalformed)
			continue
		}
		p.takeBundle(s.bnd, p.buf[:n], from, now)
	}
}

// takeBundle authenticates one bundle datagram and delivers its entries.
func (p *poller) takeBundle(b *bundles, pkt []byte, from netip.AddrPort, now time.Time) {
	s := b.s
	if !inNets(b.allow, from.Addr()) {
		s.c.drop(dropForeignSource)
		return
	}
	if len(pkt) < bundleHeaderLen+bundleTagLen || len(pkt) > bundleHeaderLen+bundleMax+bundleTagLen ||
		string(pkt[:4]) != bundleMagic {
		s.c.drop(dropMalformed)
		return
	}
	inst := [8]byte(pkt[4:12])
	ctr := binary.BigEndian.Uint64(pkt[12:20])
	peer, known := b.peers[inst]
	if !known {
		aead, err := bundleAEAD(b.key, inst)
		if err != nil {
			s.c.drop(dropMalformed)
			return
		}
		peer = &bundlePeer{aead: aead}
	}
	if !peer.fresh(ctr) {
		s.c.drop(dropDuplicate)
		return
	}
	binary.BigEndian.PutUint64(p.bnonce[4:], ctr)
	plain, err := peer.aead.Open(p.bplain[:0], p.bnonce[:], pkt[bundleHeaderLen:], pkt[:bundleHeaderLen])
	if err != nil {
		s.c.drop(dropSRTPAuth)
		return
	}
	if !known {
		if len(b.peers) >= bundlePeers {
			for k := range b.peers { // any one: an old instance of a restarted node
				delete(b.peers, k)
				break
			}
		}
		b.peers[inst] = peer
	}
	peer.mark(ctr)
	if err := eachEntry(plain, func(port uint16, tag uint32, h *rtp.Header, payload []byte) {
		p.deliverBundled(s, port, tag, h, payload, now)
	}, &p.bhdr); err != nil {
		s.c.drop(dropMalformed)
	}
}

// inNets reports whether a is in one of nets.
func inNets(nets []netip.Prefix, a netip.Addr) bool {
	for _, n := range nets {
		if n.Contains(a) {
			return true
		}
	}
	return false
}

// eachEntry checks a bundle's plaintext whole, then calls f for each entry
// with h (filled in) and the entry's payload, which alias plain.
func eachEntry(plain []byte, f func(port uint16, tag uint32, h *rtp.Header, payload []byte), h *rtp.Header) error {
	if len(plain) < 2 {
		return errors.New("short")
	}
	n := int(binary.BigEndian.Uint16(plain))
	if n == 0 || len(plain) < 2+n*bundleEntryLen {
		return errors.New("entries")
	}
	ents, pay := plain[2:2+n*bundleEntryLen], plain[2+n*bundleEntryLen:]
	for i := range n {
		e := ents[i*bundleEntryLen:]
		off, ln := int(binary.BigEndian.Uint16(e[17:])), int(binary.BigEndian.Uint16(e[19:]))
		if ln == 0 || off+ln > len(pay) || binary.BigEndian.Uint16(e) == 0 {
			return errors.New("entry")
		}
	}
	for i := range n {
		e := ents[i*bundleEntryLen:]
		*h = rtp.Header{
			Version:        2,
			Marker:         e[6]&0x80 != 0,
			PayloadType:    e[6] & 0x7f,
			SequenceNumber: binary.BigEndian.Uint16(e[7:]),
			Timestamp:      binary.BigEndian.Uint32(e[9:]),
			SSRC:           binary.BigEndian.Uint32(e[13:]),
		}
		off, ln := int(binary.BigEndian.Uint16(e[17:])), int(binary.BigEndian.Uint16(e[19:]))
		f(binary.BigEndian.Uint16(e), binary.BigEndian.Uint32(e[2:]), h, pay[off:off+ln])
	}
	return nil
}

// deliverBundled hands one bundled frame to the leg it names, as if it
// had arrived on the leg's socket and passed its checks (the bundle's
// authentication stands for SRTP and latching). An entry for no open leg
// that accepts bundles with that tag is dropped, counted on the bundle
// port.
func (p *poller) deliverBundled(bs *Stream, port uint16, tag uint32, h *rtp.Header, payload []byte, now time.Time) {
	e := bs.e
	i := (int(port) - e.firstPort) / 2
	if int(port) < e.firstPort || i >= e.pairs || (int(port)-e.firstPort)%2 != 0 {
		bs.c.drop(dropForeignSource)
		return
	}
	s := e.slots[i].Load()
	if s == nil {
		bs.c.drop(dropForeignSource)
		return
	}
	s.rx.mu.Lock()
	if s.rx.closed || !s.rx.bundled || s.rx.bundleTag != tag {
		s.rx.mu.Unlock()
		bs.c.drop(dropForeignSource)
		return
	}
	p.nDigits = 0
	s.c.inOwn(rtpHeaderLen + len(payload))
	s.accept(p, h, payload, now)
	var onDigit func(byte)
	if p.nDigits > 0 {
		onDigit = s.rx.onDigit
	}
	s.rx.mu.Unlock()
	p.deliverDigits(onDigit)
}

// fresh reports whether counter ctr was not taken before and is not too
// old to tell.
func (b *bundlePeer) fresh(ctr uint64) bool {
	if ctr == 0 {
		return false
	}
	if ctr > b.high {
		return true
	}
	d := b.high - ctr
	return d < bundleWindow && b.seen&(1<<d) == 0
}

// mark records ctr as taken.
func (b *bundlePeer) mark(ctr uint64) {
	if ctr > b.high {
		if d := ctr - b.high; d >= bundleWindow {
			b.seen = 1
		} else {
			b.seen = b.seen<<d | 1
		}
		b.high = ctr
		return
	}
	b.seen |= 1 << (b.high - ctr)
}
