//go:build linux

// Package rtpio carries RTP audio over UDP for thousands of calls at once.
//
// Each call gets its own port pair (RTP on an even port P, RTCP on P+1),
// because that is what PBXs and carriers expect and what makes latching
// safe. The sockets are not read by a goroutine per call: at 20 ms pacing a
// goroutine wake-up per packet costs more than the packet itself (see
// docs/DECISIONS.md, D1). Instead a few poller goroutines each own an epoll
// instance and, every 2 ms, read every socket that is readable (see poller
// for why they never block in epoll_wait). Received audio is checked
// against the latched source (only addresses the call's signalling named
// are ever latched; see latch), decoded from G.711 and placed in the
// stream's adaptive jitter buffer
// (media/jitter), from which the mixing clock reads it in order, with
// losses concealed, with Stream.ReadFrame, where key tones in the audio of
// callers without telephone-event are also detected and cut. RFC 4733
// telephone-events go to a dtmf.Decoder; digits of either kind come out as
// OnDigit calls. Stream.WriteFrame packetizes and sends 20 ms of audio per
// call of the clock, and Stream.WriteShared sends a frame many streams
// share (a room's common mix) with its encoding made once. RTCP reports
// from the caller are parsed on the same pollers and our own reports ride
// on WriteFrame, giving each stream the quality figures of Stream.Quality.
// A Relay joins two streams (a caller and an internal leg to another node)
// and forwards each packet out of the other as it arrives, with no jitter
// buffer or codec in between.
//
// Nothing on the per-packet paths allocates. The package is Linux-only
// (epoll).
package rtpio

import (
	crand "crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/groupbridge/groupbridge/media/jitter"
)

// ErrNoPorts is returned by Engine.Open when every port pair of the
// configured range is either in use by a stream or taken by another socket.
var ErrNoPorts = errors.New("rtpio: no free RTP port pair in range")

// ErrClosed is returned by Engine.Open after Engine.Close.
var ErrClosed = errors.New("rtpio: engine closed")

// defaultPollers is used when Config.Pollers is zero: the target machines
// have two cores, and one poller per core keeps both busy without
// oversubscribing them.
const defaultPollers = 2

// Config says where streams bind and how many poller goroutines serve them.
type Config struct {
	// Address is the local address every RTP and RTCP socket binds to. An
	// IPv4 address makes IPv4 sockets, an IPv6 one IPv6 sockets; the IPv6
	// unspecified address (::) makes dual-stack sockets that also serve
	// IPv4 peers.
	Address netip.Addr
	// PortMin and PortMax bound the ports used, both inclusive. RTP takes
	// the even port P of a pair and RTCP takes P+1, so the range must hold
	// at least one even port whose successor is also in range.
	PortMin, PortMax int
	// Pollers is the number of epoll poller goroutines; 0 means 2.
	Pollers int
	// JitterMin and JitterMax bound the adaptive delay of every stream's
	// jitter buffer; 0 takes the buffer's defaults (20 and 200 ms).
	JitterMin, JitterMax time.Duration
	// Logger receives rare events (latching, strangers' packets, poller
	// trouble); nil discards.
	Logger *slog.Logger
}

// Engine owns the port range, the poller goroutines and every Stream opened
// on it. All methods are safe for concurrent use.
type Engine struct {
	cfg    Config
	log    *slog.Logger
	family int // unix.AF_INET or unix.AF_INET6

	firstPort int // the lowest even port of the range
	pairs     int // number of port pairs in the range

	// slots maps a port pair index to its open stream. Pollers look streams
	// up here by the slot number carried in the epoll event, with one
	// atomic load and no lock.
	slots []atomic.Pointer[Stream]
	// gen numbers every Open so that an epoll event that was already
	// returned for a stream closed since cannot reach the stream that
	// reuses its slot.
	gen atomic.Uint32

	// cname is the SDES CNAME of every stream's reports: random, so it
	// reveals nothing about the host (RFC 7022).
	cname string
	// rtcpInterval is the mean time between a stream's reports; tests
	// shorten it before opening streams.
	rtcpInterval time.Duration

	pollers []*poller
	next    atomic.Uint32 // round-robin poller choice

	// lostClosed totals the losses of streams already closed; lostMax is
	// the highest engine-wide loss total reported, which keeps the total
	// from dipping when a packet counted missing arrives late after all.
	lostClosed atomic.Uint64
	lostMax    atomic.Uint64

	stop chan struct{} // closed by Close: the pollers return
	wg   sync.WaitGroup

	// bnd is the bundle port, nil until OpenBundles (see bundle.go).
	bnd atomic.Pointer[bundles]

	// relayMu serialises linking and unlinking streams in relays (see
	// Relay for the lock order).
	relayMu sync.Mutex

	mu     sync.Mutex // guards inUse, freed, closed
	inUse  []bool
	freed  []time.Time // when each pair was last released; zero: never
	closed bool

	closeOnce sync.Once
	closeErr  error
}

// NewEngine validates cfg, creates the poller epoll instances and starts
// the poller goroutines.
func NewEngine(cfg Config) (*Engine, error) {
	if !cfg.Address.IsValid() {
		return nil, errors.New("rtpio: config: address is not set")
	}
	if cfg.Address.Zone() != "" {
		return nil, fmt.Errorf("rtpio: config: address %s: zoned addresses are not supported", cfg.Address)
	}
	cfg.Address = cfg.Address.Unmap()
	if cfg.PortMin < 1 || cfg.PortMax > 65535 || cfg.PortMin > cfg.PortMax {
		return nil, fmt.Errorf("rtpio: config: port range %d-%d is not within 1-65535", cfg.PortMin, cfg.PortMax)
	}
	first := cfg.PortMin + cfg.PortMin%2
	pairs := (cfg.PortMax - first + 1) / 2
	if pairs < 1 {
		return nil, fmt.Errorf("rtpio: config: port range %d-%d holds no even/odd port pair", cfg.PortMin, cfg.PortMax)
	}
	if cfg.Pollers < 0 {
		return nil, fmt.Errorf("rtpio: config: pollers %d is negative", cfg.Pollers)
	}
	if cfg.JitterMin < 0 || cfg.JitterMax < 0 || cfg.JitterMax > 0 && cfg.JitterMax < cfg.JitterMin {
		return nil, fmt.Errorf("rtpio: config: jitter buffer delay %v-%v is not a range of positive durations", cfg.JitterMin, cfg.JitterMax)
	}
	if cfg.JitterMin > jitter.MaxDelayLimit || cfg.JitterMax > jitter.MaxDelayLimit {
		return nil, fmt.Errorf("rtpio: config: jitter buffer delay %v-%v is above the limit of %v", cfg.JitterMin, cfg.JitterMax, jitter.MaxDelayLimit)
	}
	if cfg.Pollers == 0 {
		cfg.Pollers = defaultPollers
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	e := &Engine{
		cfg:       cfg,
		log:       log,
		family:    unix.AF_INET,
		firstPort: first,
		pairs:     pairs,
		slots:     make([]atomic.Pointer[Stream], pairs),
		inUse:     make([]bool, pairs),
		freed:     make([]time.Time, pairs),
		stop:      make(chan struct{}),

		cname:        newCNAME(),
		rtcpInterval: defaultRTCPInterval,
	}
	if cfg.Address.Is6() {
		e.family = unix.AF_INET6
	}

	for i := range cfg.Pollers {
		p, err := newPoller(e, i)
		if err != nil {
			for _, q := range e.pollers {
				_ = q.close()
			}
			return nil, err
		}
		e.pollers = append(e.pollers, p)
	}
	for _, p := range e.pollers {
		e.wg.Add(1)
		go p.run()
	}
	return e, nil
}

// Close stops the pollers, closes every open stream and releases the epoll
// instances. It is idempotent and returns the first call's result. It must
// not be called from an OnDigit callback (it waits for the pollers).
func (e *Engine) Close() error {
	e.closeOnce.Do(func() {
		e.mu.Lock()
		e.closed = true // no Open can register a stream from here on
		e.mu.Unlock()

		close(e.stop)
		var errs []error
		e.wg.Wait()

		for i := range e.slots {
			if s := e.slots[i].Load(); s != nil {
				if err := s.Close(); err != nil {
					errs = append(errs, err)
				}
			}
		}
		for _, p := range e.pollers {
			if err := p.close(); err != nil {
				errs = append(errs, fmt.Errorf("rtpio: close epoll %d: %w", p.id, err))
			}
		}
		e.closeErr = errors.Join(errs...)
	})
	return e.closeErr
}

// Tick reads every packet that has arrived, on all pollers, at once. The
// mixing clock calls it first on each tick (register the engine before any
// room), so that a frame that arrived just before the tick is in its jitter
// buffer when the rooms read it, whatever the phase between a caller's
// packets and the pollers' 2 ms looks: otherwise a caller whose packets
// land just before the tick would miss it every other frame and the jitter
// buffer would keep adapting to that.
func (e *Engine) Tick(time.Time) {
	for _, p := range e.pollers {
		if p.streams.Load() > 0 {
			p.look()
		}
	}
}

// Stats returns the process-wide counters: the sum over every stream ever
// opened on this engine, including closed ones.
func (e *Engine) Stats() Stats {
	var st Stats
	for _, p := range e.pollers {
		st.add(p.counters.snapshot())
	}
	// Losses and playout depth are read from the open streams here, at
	// the (rare) time someone asks, rather than published per frame.
	lost := e.lostClosed.Load()
	var depth time.Duration
	open := 0
	for i := range e.slots {
		s := e.slots[i].Load()
		if s == nil || s.bnd != nil {
			continue
		}
		s.q.mu.Lock()
		lost += s.q.in.lost()
		s.q.mu.Unlock()
		s.play.mu.Lock()
		depth += s.play.buf.Stats().CurrentDelay
		s.play.mu.Unlock()
		open++
	}
	for {
		high := e.lostMax.Load()
		if lost <= high {
			lost = high
			break
		}
		if e.lostMax.CompareAndSwap(high, lost) {
			break
		}
	}
	st.Lost = lost
	if open > 0 {
		st.MeanPlayoutDelay = depth / time.Duration(open)
	}
	return st
}

// newCNAME returns 96 random bits in base64, 16 characters (RFC 7022).
func newCNAME() string {
	var b [cnameLen * 3 / 4]byte
	_, _ = crand.Read(b[:]) // documented never to fail
	return base64.RawURLEncoding.EncodeToString(b[:])
}
