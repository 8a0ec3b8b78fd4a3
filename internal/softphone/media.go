package softphone

import (
	"net"
	"net/netip"
	"time"

	"github.com/groupbridge/groupbridge/media/g711"
	"github.com/groupbridge/groupbridge/media/tone"
)

// Media is a call's RTP side, reached by Phone.Media: the audio the phone
// sends (a tone, samples, silence), the audio it received, the addresses
// and codec the call negotiated, and the counters a test or the load tool
// judges the call by. The SIP dialog stays with Phone. All methods are
// safe for concurrent use.
type Media struct {
	st *stream
}

// Codec returns the G.711 law the bridge chose.
func (m *Media) Codec() g711.Codec { return m.st.mediaParams().codec }

// TelephoneEvent returns the telephone-event payload type of the answer,
// or -1 when RFC 4733 digits cannot be sent.
func (m *Media) TelephoneEvent() int { return m.st.mediaParams().eventPT }

// LocalRTP returns the phone's RTP socket address.
func (m *Media) LocalRTP() netip.AddrPort {
	if c := m.st.nat.Load(); c != nil {
		return c.LocalAddr().(*net.UDPAddr).AddrPort()
	}
	return m.st.local
}

// RebindRTP moves the phone's RTP to a new port of the same address
// without telling the bridge, as a NAT does when it drops a mapping and
// makes a new one mid-call: the old socket is closed, so whatever is sent
// to it is lost, and the stream goes on from the new port with the same
// SSRC and sequence numbers (and SRTP context). It returns the new address.
func (m *Media) RebindRTP() (netip.AddrPort, error) { return m.st.rebind() }

// RemoteRTP returns where the phone sends RTP: the address in the bridge's
// latest SDP.
func (m *Media) RemoteRTP() netip.AddrPort { return m.st.mediaParams().remote }

// SendTone makes the phone send a steady sine of freqHz at dBFS until told
// otherwise.
func (m *Media) SendTone(freqHz, dBFS float64) {
	m.st.setSource(audioSource{sine: tone.NewSine(freqHz, dBFS)})
}

// SendSilence makes the phone send silence (it keeps sending packets).
func (m *Media) SendSilence() { m.st.setSource(audioSource{}) }

// SendSamples plays s (8 kHz linear PCM) once, then silence. s is copied.
func (m *Media) SendSamples(s []int16) {
	m.st.setSource(audioSource{samples: append([]int16(nil), s...)})
}

// Received returns the decoded audio of the packets that arrived after
// since, laid out by RTP timestamp rather than arrival: packets are put in
// timestamp order, timestamp gaps (loss, silence suppression) become zeros
// and duplicates land on the same place, so a test judges the signal on
// media time, free of scheduling jitter. Each SSRC the bridge used is laid
// out on its own and the runs are joined in arrival order; a timestamp jump
// of more than 10 s is joined without filling. Only the last Config.Keep of
// audio is kept. Telephone-events are not audio and are left out. This is
// the layout ToneBlocks expects: a peer's jitter, reordering and duplicates
// do not show in it, its losses show as zeros where they belong.
func (m *Media) Received(since time.Time) []int16 { return m.st.received(since) }

// ImpairStats returns what the impairment layer (Config.Impair) has done:
// sent counts the RTP packets the phone sent into it, what a perfect network
// would have delivered; dropped, duplicated and reordered count the packets
// it lost, delivered twice and held back behind their successor. So
// dropped/sent is the loss rate the bridge sees. Packets still in flight
// when the call ends are never delivered. Without an impairment sent counts
// the packets sent and the rest are 0.
func (m *Media) ImpairStats() (sent, dropped, duplicated, reordered int) {
	return m.st.impairStats()
}

// SRTPFailed returns how many received packets failed SRTP decryption or
// authentication (always 0 without Config.SRTP).
func (m *Media) SRTPFailed() int { return int(m.st.srtpFailed.Load()) }

// SendStalls returns how many frames this phone sent more than a frame
// (20 ms) after their time and how many it never sent because it fell
// more than 100 ms behind. Either means the phone's own process was
// starved of CPU: what the peer heard then measures the machine.
func (m *Media) SendStalls() (late, skipped int) {
	return int(m.st.lateFrames.Load()), int(m.st.skippedFrames.Load())
}

// RTPStats returns the RTP packets received (of any payload type) and the
// packets lost by sequence number, as an RTCP receiver report counts them.
func (m *Media) RTPStats() (received, lost int) {
	received, lost, _ = m.st.rtpStats()
	return received, lost
}

// ArrivalIntervals returns the median, the 99th percentile and the longest
// interval between consecutive RTP packet arrivals (any payload type) since
// the call began or since ResetArrivalIntervals. A steady 20 ms stream
// gives about 20 ms for all three; the spread above 20 ms is the jitter
// the phone saw.
func (m *Media) ArrivalIntervals() (p50, p99, maximum time.Duration) {
	h := m.ArrivalHistogram()
	return h.Quantile(0.5), h.Quantile(0.99), h.Max()
}

// ArrivalHistogram returns a copy of the phone's arrival-interval
// histogram (about 3 KB), for merging over many phones.
func (m *Media) ArrivalHistogram() IntervalHistogram {
	s := m.st
	s.rxMu.Lock()
	defer s.rxMu.Unlock()
	return s.arrivals
}

// ResetArrivalIntervals starts a new measuring window for ArrivalIntervals.
func (m *Media) ResetArrivalIntervals() {
	s := m.st
	s.rxMu.Lock()
	s.arrivals.Reset()
	s.rxMu.Unlock()
}
