package softphone

import (
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"

	"github.com/groupbridge/groupbridge/media/dtmf"
	"github.com/groupbridge/groupbridge/media/g711"
	"github.com/groupbridge/groupbridge/media/pcm"
	"github.com/groupbridge/groupbridge/media/tone"
)

const (
	rtpHeaderLen = 12
	// maxLagFrames is how far the sender may fall behind its schedule before
	// it stops catching up: after a long stall (a starved CPU under load) a
	// burst of stale frames would only flood the peer's jitter buffer, so the
	// missed frames are skipped. Their timestamps are skipped too, so the
	// media clock stays true and the peer sees a gap, not a time warp.
	maxLagFrames = 5
	// maxLayoutGap is the largest timestamp gap Received fills with zeros;
	// a bigger jump is a restarted clock, not silence (8 kHz units, 10 s).
	maxLayoutGap = 10 * pcm.SampleRate
	// inbandDBFS is the level of each of the two sines of an in-band digit.
	inbandDBFS = -12
)

// rxSlot is one 20 ms chunk of received audio, still G.711-encoded so that a
// minute of it costs about 200 bytes per packet, not 360.
type rxSlot struct {
	arrival int64 // ns since the stream's epoch (monotonic)
	ts      uint32
	ssrc    uint32
	seq     uint16
	n       uint16 // valid bytes in payload
	codec   g711.Codec
	payload [pcm.FrameSamples]byte
}

// rxStats counts received RTP like an RFC 3550 receiver report does:
// expected packets come from the extended highest sequence number.
type rxStats struct {
	packets  int // valid RTP packets of any type
	events   int // telephone-event packets
	started  bool
	ssrc     uint32
	baseSeq  int64 // extended sequence number of the SSRC's first packet
	maxSeq   int64 // extended highest sequence number seen
	recvCur  int   // packets received from the current SSRC
	lostPrev int   // losses of earlier SSRCs
}

func (st *rxStats) add(ssrc uint32, seq uint16) {
	st.packets++
	if !st.started || ssrc != st.ssrc {
		if st.started {
			st.lostPrev += st.lostCur()
		}
		st.started, st.ssrc = true, ssrc
		st.baseSeq, st.maxSeq, st.recvCur = int64(seq), int64(seq), 0
	}
	st.recvCur++
	// The 16-bit difference to the highest number seen tells a late packet
	// (negative) from a new one, across wrap-around.
	ext := st.maxSeq + int64(int16(seq-uint16(st.maxSeq)))
	if ext > st.maxSeq {
		st.maxSeq = ext
	}
	if ext < st.baseSeq {
		// A packet older than the first one seen still belongs to the stream.
		st.baseSeq = ext
	}
}

func (st *rxStats) lostCur() int {
	if !st.started {
		return 0
	}
	return max(0, int(st.maxSeq-st.baseSeq+1)-st.recvCur)
}

// audioSource is what the phone "says" while no digit plays.
type audioSource struct {
	sine    *tone.Sine
	samples []int16 // played once, then silence
	pos     int
}

func (a *audioSource) fill(f *pcm.Frame) {
	switch {
	case a.samples != nil:
		n := copy(f[:], a.samples[a.pos:])
		clear(f[n:])
		a.pos += n
		if a.pos >= len(a.samples) {
			a.samples, a.pos = nil, 0
		}
	case a.sine != nil:
		a.sine.Fill(f)
	default:
		f.Silence()
	}
}

// digitPlan is a run of key presses the sender plays out, one packet per
// tick, interleaved with the ordinary audio in the gaps.
type digitPlan struct {
	mode       DigitMode
	presses    [][]dtmf.Event // DigitRFC4733: the events of each press
	tones      [][2]*tone.Sine
	pressTicks int // DigitInband: frames per press
	gapTicks   int
	i          int // current press
	k          int // packet of the press, or frame of the gap
	gap        bool
	eventTS    uint32
	cancelled  bool
	done       chan struct{}
}

// mediaParams are the negotiated sending parameters.
type mediaParams struct {
	remote  netip.AddrPort
	codec   g711.Codec
	eventPT int
	send    bool // the negotiated directions let the phone send
}

// stream is a phone's RTP endpoint: one UDP socket, a paced sender and a
// receiver that keeps the last Config.Keep of audio.
type stream struct {
	conn  *net.UDPConn
	local netip.AddrPort
	// nat, once set by rebind, is the socket the phone uses instead of
	// conn, as after a NAT rebinding; natMu orders rebind with close.
	nat   atomic.Pointer[net.UDPConn]
	natMu sync.Mutex
	epoch time.Time
	log   *slog.Logger
	ssrc  uint32

	txMu   sync.Mutex
	params mediaParams
	src    audioSource
	plan   *digitPlan
	seq    uint16
	tsBase uint32
	marked bool // the first audio packet carried the marker
	frame  pcm.Frame
	txBuf  [maxPacketLen]byte
	sent   int
	// txSRTP encrypts what the phone sends with its own key (nil: plain
	// RTP); set before start and only used by the sender goroutine.
	txSRTP *srtp.Context
	txHdr  rtp.Header
	encBuf [maxPacketLen]byte
	// impair, when set before start, stands between the packetizer and the
	// socket; only the sender goroutine touches its queue.
	impair *impairer

	rxMu      sync.Mutex
	ring      []rxSlot
	next      int // ring index of the next write
	count     int // slots in use
	stats     rxStats
	rxPkt     rtp.Packet
	rxEventPT int // telephone-event PT to classify, -1 none
	arrivals  IntervalHistogram
	// kernelTimes: the socket delivers SO_TIMESTAMPNS receive times.
	kernelTimes bool
	// rxSRTP decrypts with the bridge's key; set once the answer arrives,
	// while the receiver already runs. Packets before it are kept only if
	// they are plain. srtpFailed counts packets that failed to decrypt or
	// authenticate.
	rxSRTP     atomic.Pointer[srtp.Context]
	srtpFailed atomic.Int64
	// srtpPending drops everything received until rxSRTP is set: an SRTP
	// packet racing the 200 OK parses as RTP and would be kept as noise.
	srtpPending atomic.Bool
	// lateFrames counts frames sent (or handed to the impairment) more
	// than a frame after their time, skippedFrames those never sent
	// because the sender fell maxLagFrames behind: this process, not the
	// peer, was starved.
	lateFrames, skippedFrames atomic.Int64

	quit chan struct{}
	wg   sync.WaitGroup
	// recvDone is closed when the current receive loop has returned: a
	// rebind waits for it, so the two loops never share the receive state
	// (the SRTP context above all) at once.
	recvDone  chan struct{}
	startOnce sync.Once
	closeOnce sync.Once
}

// newStream binds a UDP socket on ip:0 and starts receiving at once, so
// media that races the 200 OK is kept. keep bounds the received audio
// stored; 0 stores nothing.
func newStream(ip netip.Addr, keep time.Duration, log *slog.Logger) (*stream, error) {
	conn, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(ip, 0)))
	if err != nil {
		return nil, fmt.Errorf("softphone: bind RTP socket on %s: %w", ip, err)
	}
	s := newStreamState(keep, log)
	s.conn = conn
	s.local = conn.LocalAddr().(*net.UDPAddr).AddrPort()
	s.kernelTimes = enableTimestamps(conn)
	s.startReceiving(conn)
	return s, nil
}

// socket is the UDP socket in use: conn, or the one of the latest rebind.
func (s *stream) socket() *net.UDPConn {
	if c := s.nat.Load(); c != nil {
		return c
	}
	return s.conn
}

// rebind moves the stream to a new port of the same address without a
// word to the peer, as a NAT does when it drops a mapping and makes a new
// one: the socket in use is closed (what is sent to it is lost) and the
// stream goes on from the new one, with the same SSRC and sequence.
func (s *stream) rebind() (netip.AddrPort, error) {
	s.natMu.Lock()
	defer s.natMu.Unlock()
	select {
	case <-s.quit:
		return netip.AddrPort{}, net.ErrClosed
	default:
	}
	old := s.socket()
	conn, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(s.local.Addr(), 0)))
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("softphone: rebind RTP socket on %s: %w", s.local.Addr(), err)
	}
	enableTimestamps(conn)
	s.nat.Store(conn)
	_ = old.Close() // ends the old receive loop
	<-s.recvDone
	s.startReceiving(conn)
	return conn.LocalAddr().(*net.UDPAddr).AddrPort(), nil
}

// startReceiving runs the receive loop on conn.
func (s *stream) startReceiving(conn *net.UDPConn) {
	done := make(chan struct{})
	s.recvDone = done
	s.wg.Add(1)
	go s.receiveLoop(conn, done)
}

// newStreamState builds everything but the socket, for tests and benchmarks
// that drive the packet paths directly.
func newStreamState(keep time.Duration, log *slog.Logger) *stream {
	s := &stream{
		epoch:  time.Now(),
		log:    log,
		ssrc:   rand.Uint32(),
		seq:    uint16(rand.Uint32()),
		tsBase: rand.Uint32(),
		quit:   make(chan struct{}),
	}
	s.params.eventPT = -1
	s.rxEventPT = -1
	if n := int(keep / pcm.FrameDuration); n > 0 {
		s.ring = make([]rxSlot, n)
	}
	return s
}

// start begins sending to p.remote at 20 ms pacing. Later calls only update
// the parameters (see update).
func (s *stream) start(p mediaParams) {
	s.update(p)
	s.startOnce.Do(func() {
		s.wg.Add(1)
		go s.sendLoop()
	})
}

// update changes the sending parameters, as after a re-INVITE.
func (s *stream) update(p mediaParams) {
	s.txMu.Lock()
	s.params = p
	s.txMu.Unlock()
	s.rxMu.Lock()
	s.rxEventPT = p.eventPT
	s.rxMu.Unlock()
}

func (s *stream) mediaParams() mediaParams {
	s.txMu.Lock()
	defer s.txMu.Unlock()
	return s.params
}

// close stops both goroutines and releases the socket; it waits for them.
func (s *stream) close() {
	s.closeOnce.Do(func() {
		close(s.quit)
		if s.conn != nil {
			_ = s.conn.Close() // unblocks the receiver
		}
		s.natMu.Lock()
		if c := s.nat.Load(); c != nil {
			_ = c.Close()
		}
		s.natMu.Unlock()
		s.wg.Wait()
		s.txMu.Lock()
		if p := s.plan; p != nil {
			s.plan = nil
			close(p.done)
		}
		s.txMu.Unlock()
	})
}

func (s *stream) sendLoop() {
	defer s.wg.Done()
	// The schedule is absolute (start + n·20 ms): sleeping 20 ms per packet
	// would add each wake-up's lateness to every later packet. With an
	// impairment the same goroutine also serves its delay queue, waking at
	// whichever comes first, the next frame or the next release.
	start := time.Now()
	t := time.NewTimer(0)
	defer t.Stop()
	var n int64
	for {
		select {
		case <-s.quit:
			return
		case <-t.C:
		}
		now := time.Since(start)
		due := int64(now / pcm.FrameDuration)
		if due-n > maxLagFrames {
			s.skippedFrames.Add(due - n)
			n = due
		}
		if due > n {
			// Frame n's time was due·20 ms ago or more.
			s.lateFrames.Add(due - n)
		}
		for ; n <= due; n++ {
			b, dst, ok := s.nextPacket(n)
			switch {
			case s.impair != nil && ok:
				// Its ideal send time, so that a late wake-up does not add
				// to the configured delay.
				s.impair.push(b, dst, int64(time.Duration(n)*pcm.FrameDuration))
			case s.impair != nil:
				s.impair.idle()
			case ok:
				s.write(b, dst)
			}
		}
		wake := time.Duration(n) * pcm.FrameDuration
		if s.impair != nil {
			// The same now as the frames: every packet due by then has been
			// pushed, so packets leave in release order whatever the
			// goroutine's lateness.
			for {
				b, dst, ok := s.impair.pop(int64(now))
				if !ok {
					break
				}
				s.write(b, dst)
			}
			if r, ok := s.impair.next(); ok {
				wake = min(wake, time.Duration(r))
			}
		}
		t.Reset(time.Until(start.Add(wake)))
	}
}

// write sends one datagram; a closed socket is the call ending, not news.
func (s *stream) write(b []byte, dst netip.AddrPort) {
	if _, err := s.socket().WriteToUDPAddrPort(b, dst); err != nil && !errors.Is(err, net.ErrClosed) {
		s.log.Debug("RTP send failed", "to", dst, "error", err)
	}
}

// nextPacket builds the packet for frame n of the schedule in s.txBuf. It
// returns false when nothing is to be sent (no address, not sending).
// It allocates nothing: it runs 50 times a second per phone.
func (s *stream) nextPacket(n int64) ([]byte, netip.AddrPort, bool) {
	s.txMu.Lock()
	defer s.txMu.Unlock()
	p := s.params
	ts := s.tsBase + uint32(n)*pcm.FrameSamples
	h := rtp.Header{Version: 2, SSRC: s.ssrc, Timestamp: ts, PayloadType: uint8(p.codec)}

	if plan := s.plan; plan != nil && plan.mode == DigitRFC4733 && p.eventPT < 0 {
		// A re-INVITE took telephone-event away mid-plan: nothing to send it with.
		s.plan = nil
		close(plan.done)
	}
	var payload int
	if plan := s.plan; plan != nil && !plan.gap {
		switch plan.mode {
		case DigitRFC4733:
			ev := plan.presses[plan.i][plan.k]
			if plan.k == 0 {
				plan.eventTS = ts
				h.Marker = true
			}
			h.Timestamp = plan.eventTS
			h.PayloadType = uint8(p.eventPT)
			payload, _ = ev.MarshalTo(s.txBuf[rtpHeaderLen:]) // 4 bytes into a larger buffer cannot fail
			plan.k++
			if plan.k == len(plan.presses[plan.i]) {
				s.pressDone(plan)
			}
		default: // DigitInband
			t := plan.tones[plan.i]
			t[0].Fill(&s.frame)
			t[1].Mix(s.frame[:])
			payload = p.codec.Encode(s.txBuf[rtpHeaderLen:], s.frame[:])
			plan.k++
			if plan.k == plan.pressTicks {
				s.pressDone(plan)
			}
		}
	} else {
		if plan != nil {
			plan.k++
			if plan.k >= plan.gapTicks {
				plan.gap, plan.k = false, 0
			}
		}
		s.src.fill(&s.frame)
		payload = p.codec.Encode(s.txBuf[rtpHeaderLen:], s.frame[:])
		if !s.marked {
			h.Marker, s.marked = true, true
		}
	}
	if !p.send || !p.remote.IsValid() || p.remote.Port() == 0 || p.remote.Addr().IsUnspecified() {
		return nil, netip.AddrPort{}, false
	}
	h.SequenceNumber = s.seq
	s.seq++
	hn, err := h.MarshalTo(s.txBuf[:])
	if err != nil || hn != rtpHeaderLen {
		return nil, netip.AddrPort{}, false
	}
	s.sent++
	out := s.txBuf[:rtpHeaderLen+payload]
	if s.txSRTP != nil {
		// encBuf has room for the 10-byte tag, so pion writes into it
		// without allocating.
		if out, err = s.txSRTP.EncryptRTP(s.encBuf[:0], out, &s.txHdr); err != nil {
			s.log.Debug("SRTP encrypt failed", "error", err)
			return nil, netip.AddrPort{}, false
		}
	}
	return out, p.remote, true
}

// setSRTP installs the SDES keys: ours encrypts what the phone sends, the
// bridge's decrypts what it receives (RFC 4568: each side sends with the
// key it announced). It must run before start.
func (s *stream) setSRTP(local, remote [srtpKeyLen]byte) error {
	tx, err := newSRTPContext(local)
	if err != nil {
		return err
	}
	rx, err := newSRTPContext(remote)
	if err != nil {
		return err
	}
	s.txMu.Lock()
	s.txSRTP = tx
	s.txMu.Unlock()
	s.rxSRTP.Store(rx)
	return nil
}

// newSRTPContext makes an AES_CM_128_HMAC_SHA1_80 context for a 30-byte
// master key || master salt.
func newSRTPContext(keySalt [srtpKeyLen]byte) (*srtp.Context, error) {
	c, err := srtp.CreateContext(keySalt[:16], keySalt[16:], srtp.ProtectionProfileAes128CmHmacSha1_80)
	if err != nil {
		return nil, fmt.Errorf("softphone: SRTP context: %w", err)
	}
	return c, nil
}

// pressDone moves plan past its current press; the caller holds txMu.
func (s *stream) pressDone(plan *digitPlan) {
	plan.i++
	plan.k = 0
	if plan.i == len(plan.presses)+len(plan.tones) || plan.cancelled {
		s.plan = nil
		close(plan.done)
		return
	}
	plan.gap = plan.gapTicks > 0
}

// play queues plan and returns the channel closed when it has been sent.
func (s *stream) play(plan *digitPlan) (<-chan struct{}, error) {
	s.txMu.Lock()
	defer s.txMu.Unlock()
	if s.plan != nil {
		return nil, errors.New("softphone: digits already playing")
	}
	select {
	case <-s.quit:
		return nil, ErrEnded
	default:
	}
	s.plan = plan
	return plan.done, nil
}

// cancelPlan ends plan early: a press under way is ended properly (its end
// packets go out with the duration reached so far) and no further press
// starts.
func (s *stream) cancelPlan(plan *digitPlan) {
	s.txMu.Lock()
	defer s.txMu.Unlock()
	if s.plan != plan {
		return
	}
	plan.cancelled = true
	switch {
	case plan.gap || plan.k == 0:
		s.plan = nil
		close(plan.done)
	case plan.mode == DigitRFC4733:
		evs := plan.presses[plan.i]
		if last := len(evs) - 3; plan.k < last {
			end := evs[plan.k-1].Duration + dtmf.DefaultStep
			evs = append(evs[:plan.k], evs[last:]...)
			for j := plan.k; j < len(evs); j++ {
				evs[j].Duration = end
			}
			plan.presses[plan.i] = evs
		}
	default:
		plan.pressTicks = plan.k + 1
	}
}

func (s *stream) setSource(src audioSource) {
	s.txMu.Lock()
	s.src = src
	s.txMu.Unlock()
}

func (s *stream) receiveLoop(conn *net.UDPConn, done chan struct{}) {
	defer s.wg.Done()
	defer close(done)
	buf := make([]byte, 2048)
	dec := make([]byte, 2048)
	oob := make([]byte, 64)
	var hdr rtp.Header
	for {
		n, oobn, _, _, err := conn.ReadMsgUDPAddrPort(buf, oob)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			select {
			case <-s.quit:
				return
			default:
			}
			s.log.Debug("RTP receive failed", "error", err)
			continue
		}
		b := buf[:n]
		if c := s.rxSRTP.Load(); c == nil && s.srtpPending.Load() {
			continue
		} else if c != nil {
			// Into dec: pion would otherwise allocate per packet.
			if b, err = c.DecryptRTP(dec[:0], b, &hdr); err != nil {
				s.srtpFailed.Add(1)
				continue
			}
		}
		s.store(b, s.arrival(oob[:oobn]))
	}
}

// arrival is when a datagram reached the socket, as an offset from the
// epoch: the kernel's receive timestamp when the socket has them, so that
// the intervals measured are the network's and not how soon this process
// was scheduled (a load test shares the CPUs with the bridge it measures);
// else the time now.
func (s *stream) arrival(oob []byte) int64 {
	if s.kernelTimes {
		if at, ok := kernelTimestamp(oob); ok {
			return int64(at.Sub(s.epoch))
		}
	}
	return int64(time.Since(s.epoch))
}

// store records one received datagram that arrived at the given offset from
// the epoch. Anything that is not RTP version 2 is dropped. It allocates
// nothing for well-formed packets.
func (s *stream) store(b []byte, arrival int64) {
	s.rxMu.Lock()
	defer s.rxMu.Unlock()
	pkt := &s.rxPkt
	if err := pkt.Unmarshal(b); err != nil || pkt.Version != 2 {
		return
	}
	pt := int(pkt.PayloadType)
	if pt >= 72 && pt <= 76 {
		// RTCP (SR, RR, SDES, BYE, APP: RFC 5761's rule) sent by a peer to
		// what it took for our RTCP port: not our stream.
		return
	}
	s.stats.add(pkt.SSRC, pkt.SequenceNumber)
	s.arrivals.Add(arrival)
	if pt == s.rxEventPT {
		s.stats.events++
		return
	}
	if pt != int(g711.PCMU) && pt != int(g711.PCMA) || len(s.ring) == 0 {
		return
	}
	// Longer packets (30 or 40 ms ptime) are kept as 20 ms slots.
	for off := 0; off < len(pkt.Payload); off += pcm.FrameSamples {
		sl := &s.ring[s.next]
		sl.arrival = arrival
		sl.ts = pkt.Timestamp + uint32(off)
		sl.ssrc = pkt.SSRC
		sl.seq = pkt.SequenceNumber
		sl.codec = g711.Codec(pt)
		sl.n = uint16(copy(sl.payload[:], pkt.Payload[off:]))
		s.next = (s.next + 1) % len(s.ring)
		s.count = min(s.count+1, len(s.ring))
	}
}

// received lays out the audio that arrived after since (see Media.Received).
func (s *stream) received(since time.Time) []int16 {
	cut := int64(since.Sub(s.epoch))
	if since.IsZero() {
		cut = -1 << 63
	}
	s.rxMu.Lock()
	defer s.rxMu.Unlock()
	// Slot indices in arrival order, oldest first.
	var idx []int
	for i := range s.count {
		j := (s.next - s.count + i + len(s.ring)) % len(s.ring)
		if s.ring[j].arrival > cut {
			idx = append(idx, j)
		}
	}
	var out []int16
	for start := 0; start < len(idx); {
		end := start + 1
		for end < len(idx) && s.ring[idx[end]].ssrc == s.ring[idx[start]].ssrc {
			end++
		}
		out = s.appendSegment(out, idx[start:end])
		start = end
	}
	return out
}

// appendSegment lays out the slots of one SSRC by timestamp: sorted, gaps
// filled with zeros, duplicates overwriting each other. Positions are taken
// relative to the first arrival as signed 32-bit differences, which is
// right across timestamp wrap-around.
func (s *stream) appendSegment(out []int16, seg []int) []int16 {
	type pos struct {
		rel int64
		j   int
	}
	ts0 := s.ring[seg[0]].ts
	ps := make([]pos, len(seg))
	for i, j := range seg {
		ps[i] = pos{rel: int64(int32(s.ring[j].ts - ts0)), j: j}
	}
	slices.SortStableFunc(ps, func(a, b pos) int {
		switch {
		case a.rel < b.rel:
			return -1
		case a.rel > b.rel:
			return 1
		}
		return 0
	})
	for c := 0; c < len(ps); {
		// A run without gaps over maxLayoutGap is laid out as one block.
		e := c + 1
		end := ps[c].rel + int64(s.ring[ps[c].j].n)
		for e < len(ps) && ps[e].rel-end <= maxLayoutGap {
			end = max(end, ps[e].rel+int64(s.ring[ps[e].j].n))
			e++
		}
		base := ps[c].rel
		off := len(out)
		out = append(out, make([]int16, end-base)...)
		for _, p := range ps[c:e] {
			sl := &s.ring[p.j]
			at := off + int(p.rel-base)
			sl.codec.Decode(out[at:at+int(sl.n)], sl.payload[:sl.n])
		}
		c = e
	}
	return out
}

func (s *stream) impairStats() (sent, dropped, duplicated, reordered int) {
	if s.impair != nil {
		return s.impair.counters()
	}
	s.txMu.Lock()
	defer s.txMu.Unlock()
	return s.sent, 0, 0, 0
}

func (s *stream) rtpStats() (received, lost, events int) {
	s.rxMu.Lock()
	defer s.rxMu.Unlock()
	return s.stats.packets, s.stats.lostPrev + s.stats.lostCur(), s.stats.events
}
