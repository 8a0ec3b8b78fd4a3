package metrics

import (
	"errors"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// scrapeCollector turns the app's registered functions into const metrics
// at each scrape, so that the figures the app already keeps are read once
// per scrape instead of being counted again on the hot paths. It also
// exposes the registration state kept in Metrics.regState.
type scrapeCollector struct {
	mu          sync.Mutex // guards the functions below
	callsActive func() int
	rooms       func() (rooms, members, waiting int)
	rtp         func() RTPStats
	clock       func() (ticks, late int64)

	regState *atomic.Uint32

	callsActiveDesc, roomsDesc, roomMembersDesc  *prometheus.Desc
	rtpPacketsDesc, rtpBytesDesc, rtpDroppedDesc *prometheus.Desc
	rtpLostDesc, rtpLateDesc, rtpConcealedDesc   *prometheus.Desc
	rtcpPacketsDesc, jitterDepthDesc             *prometheus.Desc
	ticksDesc, lateTicksDesc                     *prometheus.Desc
	registeredDesc, regStateDesc                 *prometheus.Desc

	dropIdx map[string]int
}

func newScrapeCollector(regState *atomic.Uint32) *scrapeCollector {
	desc := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(prometheus.BuildFQName(namespace, "", name), help, labels, nil)
	}
	return &scrapeCollector{
		regState: regState,
		dropIdx:  indexOf(dropReasons),

		callsActiveDesc: desc("calls_active", "Calls up now, in the IVR or in a room."),
		roomsDesc:       desc("rooms", "Rooms with a live session."),
		roomMembersDesc: desc("room_members", "Callers in rooms: in the mix (placement=room) or in a waiting area (placement=waiting).", "placement"),

		rtpPacketsDesc:   desc("rtp_packets_total", "Media datagrams (RTP and RTCP) received (direction=in) and sent (direction=out).", "direction"),
		rtpBytesDesc:     desc("rtp_bytes_total", "UDP payload bytes of media datagrams received and sent.", "direction"),
		rtpDroppedDesc:   desc("rtp_dropped_total", "Media datagrams or audio thrown away, by reason.", "reason"),
		rtpLostDesc:      desc("rtp_lost_total", "RTP packets never received, from sequence-number gaps."),
		rtpLateDesc:      desc("rtp_late_total", "Audio packets that arrived after their play-out time."),
		rtpConcealedDesc: desc("rtp_concealed_total", "Audio frames made up by packet loss concealment."),
		rtcpPacketsDesc:  desc("rtcp_packets_total", "RTCP reports received (direction=in) and sent (direction=out).", "direction"),
		jitterDepthDesc:  desc("jitter_buffer_depth_seconds", "Mean current jitter-buffer delay over active streams."),

		ticksDesc:     desc("mixer_ticks_total", "Mixing clock ticks."),
		lateTicksDesc: desc("mixer_late_ticks_total", "Mixing clock ticks that started late."),

		registeredDesc: desc("sip_registered", "1 while registered to the PBX (sip.register), else 0."),
		regStateDesc:   desc("sip_registration_state", "Registration to the PBX: 1 for the current state, 0 for the others.", "state"),
	}
}

// Describe implements prometheus.Collector.
func (c *scrapeCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{
		c.callsActiveDesc, c.roomsDesc, c.roomMembersDesc,
		c.rtpPacketsDesc, c.rtpBytesDesc, c.rtpDroppedDesc,
		c.rtpLostDesc, c.rtpLateDesc, c.rtpConcealedDesc,
		c.rtcpPacketsDesc, c.jitterDepthDesc,
		c.ticksDesc, c.lateTicksDesc,
		c.registeredDesc, c.regStateDesc,
	} {
		ch <- d
	}
}

// errPanicked is what a scrape reports for a registered function that
// panicked. The panic value is left out on purpose: it is the app's text
// and could hold anything, and scrape errors end up in responses and logs.
var errPanicked = errors.New("groupbridge metrics: a registered function panicked during the scrape")

// call runs f, turning a panic into ok=false so that one broken function
// costs only its own series: the client's registry would recover too, but
// it would drop the rest of this collector and print the panic value.
func call[T any](f func() T) (v T, ok bool) {
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	return f(), true
}

// Collect implements prometheus.Collector.
func (c *scrapeCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	callsActive, rooms, rtp, clock := c.callsActive, c.rooms, c.rtp, c.clock
	c.mu.Unlock()

	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, labels...)
	}

	if callsActive != nil {
		if n, ok := call(callsActive); ok {
			gauge(c.callsActiveDesc, float64(n))
		} else {
			ch <- prometheus.NewInvalidMetric(c.callsActiveDesc, errPanicked)
		}
	}

	if rooms != nil {
		type roomCounts struct{ rooms, members, waiting int }
		if r, ok := call(func() roomCounts {
			var r roomCounts
			r.rooms, r.members, r.waiting = rooms()
			return r
		}); ok {
			gauge(c.roomsDesc, float64(r.rooms))
			gauge(c.roomMembersDesc, float64(r.members), "room")
			gauge(c.roomMembersDesc, float64(r.waiting), "waiting")
		} else {
			ch <- prometheus.NewInvalidMetric(c.roomsDesc, errPanicked)
		}
	}

	if rtp != nil {
		if s, ok := c.rtpStats(rtp); ok {
			counter(c.rtpPacketsDesc, float64(s.PacketsIn), "in")
			counter(c.rtpPacketsDesc, float64(s.PacketsOut), "out")
			counter(c.rtpBytesDesc, float64(s.BytesIn), "in")
			counter(c.rtpBytesDesc, float64(s.BytesOut), "out")
			for i, n := range s.dropped {
				counter(c.rtpDroppedDesc, float64(n), dropReasons[i])
			}
			counter(c.rtpLostDesc, float64(s.Lost))
			counter(c.rtpLateDesc, float64(s.Late))
			counter(c.rtpConcealedDesc, float64(s.Concealed))
			counter(c.rtcpPacketsDesc, float64(s.RTCPIn), "in")
			counter(c.rtcpPacketsDesc, float64(s.RTCPOut), "out")
			gauge(c.jitterDepthDesc, s.JitterDepthSeconds)
		} else {
			ch <- prometheus.NewInvalidMetric(c.rtpPacketsDesc, errPanicked)
		}
	}

	if clock != nil {
		type ticks struct{ all, late int64 }
		if t, ok := call(func() ticks {
			var t ticks
			t.all, t.late = clock()
			return t
		}); ok {
			counter(c.ticksDesc, float64(t.all))
			counter(c.lateTicksDesc, float64(t.late))
		} else {
			ch <- prometheus.NewInvalidMetric(c.ticksDesc, errPanicked)
		}
	}

	state := int(c.regState.Load())
	registered := 0.0
	if registrationStates[state] == RegistrationRegistered {
		registered = 1
	}
	gauge(c.registeredDesc, registered)
	for i, s := range registrationStates {
		v := 0.0
		if i == state {
			v = 1
		}
		gauge(c.regStateDesc, v, s)
	}
}

// rtpScrape is RTPStats with Dropped folded onto dropReasons.
type rtpScrape struct {
	RTPStats
	dropped []uint64 // indexed like dropReasons
}

// rtpStats reads f and folds its Dropped map onto the allow list: known
// reasons keep their count, every other key (whatever text it holds) adds
// to "other" and is never shown. The fold runs inside the panic guard
// with f. The map must not be written while f's caller reads it (Go stops
// the process on that, beyond any recover): f should return a fresh map or
// one it no longer touches.
func (c *scrapeCollector) rtpStats(f func() RTPStats) (rtpScrape, bool) {
	other := c.dropIdx[Other]
	return call(func() rtpScrape {
		s := rtpScrape{RTPStats: f(), dropped: make([]uint64, len(dropReasons))}
		for k, n := range s.Dropped {
			i, ok := c.dropIdx[k]
			if !ok {
				i = other
			}
			s.dropped[i] += n
		}
		return s
	})
}
