package app

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/groupbridge/groupbridge/internal/testkit"
	"github.com/groupbridge/groupbridge/media/g711"
)

// The latency benchmark of issue 11 (make bench-latency; BENCHMARKS.md):
// a baresip talker plays twenty 200 ms chirps from a WAV file, a sipp
// listener sits in the same room, tcpdump captures both streams on lo,
// and the capture alone decides the figures: each burst's onset on the
// wire into the bridge against its onset on the wire out, and each output
// packet matched by correlation to the input samples it carries. Not part
// of make test: it needs root (sipp's RFC 4733 replay, tcpdump) and 40 s.

const (
	benchBursts    = 20
	benchBurst     = 200 * time.Millisecond
	benchGap       = 800 * time.Millisecond
	benchLead      = 8 * time.Second // PIN entry of both callers happens in here
	benchRate      = 8000
	onsetAmplitude = 1000 // |sample| that counts as the burst having begun
)

func TestBenchLatency(t *testing.T) {
	if os.Getenv("GROUPBRIDGE_BENCH_LATENCY") == "" {
		t.Skip("latency benchmark: set GROUPBRIDGE_BENCH_LATENCY=1 (make bench-latency)")
	}
	needRoot(t)
	sipp := sippPath(t)
	baresipBin := testkit.NeedBinary(t, "baresip")
	tcpdump := testkit.NeedBinary(t, "tcpdump", "/usr/sbin/tcpdump")
	dir := t.TempDir()

	lo, hi := rtpRange()
	y := testYAMLPorts("", "", lo, hi)
	// Only to see where the time goes (BENCHMARKS.md); the figures are
	// for the default.
	if jm := os.Getenv("GROUPBRIDGE_BENCH_JITTER_MIN"); jm != "" {
		y += "\naudio:\n  jitter_min: " + jm + "\n"
		t.Logf("audio.jitter_min: %s (not the default)", jm)
	}
	a, logs := startApp(t, y)
	target := sipAddr(t, a, "udp")

	// Capture every RTP packet into or out of the bridge's port range.
	pcapFile := filepath.Join(dir, "rtp.pcap")
	capCmd := exec.Command(tcpdump, "-i", "lo", "-n", "-U", "-s", "256",
		"--time-stamp-precision=nano", "-w", pcapFile,
		"udp", "and", "portrange", fmt.Sprintf("%d-%d", lo, hi))
	capErr := &testkit.LogBuffer{}
	capCmd.Stderr = capErr
	if err := capCmd.Start(); err != nil {
		t.Fatalf("tcpdump: %v", err)
	}
	capDone := make(chan struct{})
	go func() { _ = capCmd.Wait(); close(capDone) }()
	stopCapture := func() {
		_ = capCmd.Process.Signal(os.Interrupt) // our own child, by PID
		select {
		case <-capDone:
		case <-time.After(5 * time.Second):
			_ = capCmd.Process.Kill()
			<-capDone
		}
	}
	t.Cleanup(stopCapture)
	waitFor(t, 10*time.Second, func() bool { return strings.Contains(capErr.String(), "listening on") }, "tcpdump to listen")

	// The listener: sipp joins and stays silent.
	sippMedia := freeUDPPort(t)
	sf, err := filepath.Abs(filepath.Join("..", "..", "testdata", "sipp", "listen_member.xml"))
	if err != nil {
		t.Fatal(err)
	}
	total := benchLead + benchBursts*(benchBurst+benchGap)
	sippCtx, sippCancel := context.WithCancel(context.Background())
	sippCmd := exec.CommandContext(sippCtx, sipp, "-sf", sf, "-s", "groupbridge",
		"-i", "127.0.0.1", "-p", strconv.Itoa(freeUDPPort(t)),
		"-mi", "127.0.0.1", "-mp", strconv.Itoa(sippMedia),
		"-m", "1", "-d", strconv.Itoa(int((total + 20*time.Second).Milliseconds())),
		"-nostdin", "-timeout", "120s", target)
	sippCmd.Dir = dir
	if err := os.WriteFile(filepath.Join(dir, "silence.ulaw"), bytes.Repeat([]byte{0xff}, benchRate), 0o600); err != nil {
		t.Fatal(err)
	}
	sippOut := &testkit.LogBuffer{}
	sippCmd.Stdout, sippCmd.Stderr = sippOut, sippOut
	if err := sippCmd.Start(); err != nil {
		t.Fatalf("sipp: %v", err)
	}
	sippDone := make(chan struct{})
	go func() { _ = sippCmd.Wait(); close(sippDone) }()
	t.Cleanup(func() { sippCancel(); <-sippDone })
	logs.waitCount(t, 15*time.Second, 1, "call joined")

	// The talker: baresip plays the chirps from the moment it is answered;
	// the lead silence covers its PIN.
	wav := filepath.Join(dir, "chirps.wav")
	if err := os.WriteFile(wav, chirpWAV(), 0o600); err != nil {
		t.Fatal(err)
	}
	b := startBaresipWith(t, baresipBin, []string{
		"poll_method epoll",
		"net_interface 127.0.0.1",
		"sip_listen 127.0.0.1:0",
		"audio_player none,none",
		"audio_source aufile," + wav,
		"ausrc_srate 8000",
		"ausrc_channels 1",
		"module_path /usr/lib/baresip/modules",
		"module stdio.so",
		"module g711.so",
		"module aufile.so",
		"module_app account.so",
		"module_app menu.so",
	}, "<sip:talker@127.0.0.1>;regint=0;audio_codecs=PCMU\n")
	b.send(t, fmt.Sprintf("/dial sip:groupbridge@%s\n", target))
	b.waitOutput(t, "Call established")
	for _, d := range "1234#" {
		b.send(t, string(d))
		time.Sleep(300 * time.Millisecond)
	}
	logs.waitCount(t, 10*time.Second, 2, "call joined")
	time.Sleep(total + time.Second)
	stopCapture()

	raw, err := os.ReadFile(pcapFile)
	if err != nil {
		t.Fatal(err)
	}
	pkts, err := parsePcapRTP(raw)
	if err != nil {
		t.Fatalf("capture: %v", err)
	}
	// Out is what the bridge sent sipp; in is the stream into the bridge
	// that carries the bursts (sipp's silence carries none).
	var out []rtpCapture
	bySrc := map[int][]rtpCapture{}
	for _, p := range pkts {
		switch {
		case p.pt != 0:
		case p.dstPort == sippMedia:
			out = append(out, p)
		case p.dstPort >= lo && p.dstPort <= hi && (p.srcPort < lo || p.srcPort > hi):
			bySrc[p.srcPort] = append(bySrc[p.srcPort], p)
		}
	}
	var in []rtpCapture
	for _, s := range bySrc {
		if len(onsets(s)) > len(onsets(in)) {
			in = s
		}
	}
	r := measureLatency(in, out)
	t.Logf("captured %d talker packets in (RFC 3550 jitter %.1f ms, interval p10-p90 %s), %d listener packets out (interval p10-p90 %s)",
		len(in), interarrivalJitter(in), intervalSpread(in), len(out), intervalSpread(out))
	if r.bursts < benchBursts/2 {
		t.Fatalf("only %d of %d bursts reached the listener", r.bursts, benchBursts)
	}
	t.Logf("latency: onset in to onset out median %.1f ms p90 %.1f ms (%d bursts); packet delay median %.1f ms p90 %.1f ms (%d packets)",
		r.onsetMedian, r.onsetP90, r.bursts, r.packetMedian, r.packetP90, r.packets)
	// Each call's delay depends on its phase against the room's clock
	// (docs/DECISIONS.md, D18): make bench-latency pools these over runs.
	var sb strings.Builder
	for _, d := range r.onsets {
		fmt.Fprintf(&sb, " %.2f", d)
	}
	t.Logf("onsets ms:%s", sb.String())
}

// waitFor polls cond every 20 ms for up to d.
func waitFor(t *testing.T, d time.Duration, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited %v for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// chirpWAV is the talker's microphone: benchLead of silence, then
// benchBursts linear chirps (300 to 3300 Hz, so every 20 ms of a burst
// differs from every other) separated by benchGap of silence; 8 kHz mono.
func chirpWAV() []byte {
	var s []int16
	silence := func(d time.Duration) { s = append(s, make([]int16, int(d.Seconds()*benchRate))...) }
	silence(benchLead)
	n := int(benchBurst.Seconds() * benchRate)
	for i := 0; i < benchBursts; i++ {
		const f0, f1 = 300.0, 3300.0
		dur := benchBurst.Seconds()
		for k := 0; k < n; k++ {
			tt := float64(k) / benchRate
			phase := 2 * math.Pi * (f0*tt + (f1-f0)*tt*tt/(2*dur))
			s = append(s, int16(8000*math.Sin(phase)))
		}
		silence(benchGap)
	}
	var b bytes.Buffer
	data := len(s) * 2
	b.WriteString("RIFF")
	_ = binary.Write(&b, binary.LittleEndian, uint32(36+data))
	b.WriteString("WAVEfmt ")
	for _, v := range []any{uint32(16), uint16(1), uint16(1), uint32(benchRate), uint32(benchRate * 2), uint16(2), uint16(16)} {
		_ = binary.Write(&b, binary.LittleEndian, v)
	}
	b.WriteString("data")
	_ = binary.Write(&b, binary.LittleEndian, uint32(data))
	_ = binary.Write(&b, binary.LittleEndian, s)
	return b.Bytes()
}

// rtpCapture is one captured RTP packet.
type rtpCapture struct {
	at               time.Duration // capture time since the first packet
	srcPort, dstPort int
	pt               uint8
	ts               uint32
	payload          []byte
}

// parsePcapRTP reads a libpcap file of IPv4/UDP/RTP packets (Ethernet
// link type, as tcpdump writes for lo; nanosecond or microsecond stamps).
func parsePcapRTP(b []byte) ([]rtpCapture, error) {
	if len(b) < 24 {
		return nil, errors.New("short pcap header")
	}
	le := binary.LittleEndian
	var frac time.Duration
	switch le.Uint32(b) {
	case 0xa1b23c4d:
		frac = time.Nanosecond
	case 0xa1b2c3d4:
		frac = time.Microsecond
	default:
		return nil, fmt.Errorf("not a little-endian pcap file (magic %x)", le.Uint32(b))
	}
	if link := le.Uint32(b[20:]); link != 1 {
		return nil, fmt.Errorf("link type %d, want Ethernet (1)", link)
	}
	var out []rtpCapture
	var first time.Duration
	for off := 24; off+16 <= len(b); {
		sec, sub, caplen := le.Uint32(b[off:]), le.Uint32(b[off+4:]), int(le.Uint32(b[off+8:]))
		off += 16
		if off+caplen > len(b) {
			break // tcpdump stopped mid-record
		}
		pkt := b[off : off+caplen]
		off += caplen
		at := time.Duration(sec)*time.Second + time.Duration(sub)*frac
		if first == 0 {
			first = at
		}
		if len(pkt) < 14+20 || binary.BigEndian.Uint16(pkt[12:]) != 0x0800 {
			continue
		}
		ip := pkt[14:]
		ihl := int(ip[0]&0x0f) * 4
		if ip[9] != 17 || len(ip) < ihl+8+12 {
			continue
		}
		udp := ip[ihl:]
		rtp := udp[8:]
		if rtp[0]>>6 != 2 {
			continue
		}
		hdr := 12 + 4*int(rtp[0]&0x0f)
		if rtp[0]&0x10 != 0 && len(rtp) >= hdr+4 {
			hdr += 4 + 4*int(binary.BigEndian.Uint16(rtp[hdr+2:]))
		}
		if len(rtp) < hdr {
			continue
		}
		out = append(out, rtpCapture{
			at:      at - first,
			srcPort: int(binary.BigEndian.Uint16(udp[0:])),
			dstPort: int(binary.BigEndian.Uint16(udp[2:])),
			pt:      rtp[1] & 0x7f,
			ts:      binary.BigEndian.Uint32(rtp[4:]),
			payload: rtp[hdr:],
		})
	}
	return out, nil
}

// latencyResult is what measureLatency found, in milliseconds.
type latencyResult struct {
	bursts, packets         int
	onsets                  []float64 // each burst's onset in to onset out, ms
	onsetMedian, onsetP90   float64
	packetMedian, packetP90 float64
}

// measureLatency pairs each burst onset of the talker's stream (in) with
// the first onset of the listener's stream (out) within 500 ms after it,
// and matches every loud output packet to the input samples it carries
// (best normalised correlation over the 300 ms before it). A sample's
// wire time is its packet's capture time plus its offset in the packet,
// on both sides. Streams are PCMU.
func measureLatency(in, out []rtpCapture) latencyResult {
	var r latencyResult
	inOn := onsets(in)
	outOn := onsets(out)
	var od []float64
	j := 0
	for _, t0 := range inOn {
		for j < len(outOn) && outOn[j] < t0 {
			j++
		}
		if j < len(outOn) && outOn[j]-t0 < 500*time.Millisecond {
			od = append(od, ms(outOn[j]-t0))
			j++
		}
	}
	r.bursts, r.onsets = len(od), od
	r.onsetMedian, r.onsetP90 = quantile(od, 0.5), quantile(od, 0.9)

	// The talker's samples on one timeline indexed by RTP timestamp, and
	// the wire time of each sample.
	if len(in) == 0 {
		return r
	}
	ts0 := in[0].ts
	var line []float64
	var wire []time.Duration
	for _, p := range in {
		pos := int(p.ts - ts0)
		if pos < 0 || pos > 10*60*benchRate {
			continue
		}
		for need := pos + len(p.payload); len(line) < need; {
			line = append(line, 0)
			wire = append(wire, -1)
		}
		for k, c := range p.payload {
			line[pos+k] = float64(g711.DecodeUlawSample(c))
			wire[pos+k] = p.at + time.Duration(k)*time.Second/benchRate
		}
	}
	var pd []float64
	for _, p := range out {
		o := decode(p.payload)
		if peak(o) < onsetAmplitude {
			continue
		}
		best, bestAt := 0.9, -1
		for i := range line {
			if wire[i] < 0 || wire[i] > p.at || p.at-wire[i] > 300*time.Millisecond || i+len(o) > len(line) {
				continue
			}
			if c := ncc(o, line[i:i+len(o)]); c > best {
				best, bestAt = c, i
			}
		}
		if bestAt >= 0 {
			pd = append(pd, ms(p.at-wire[bestAt]))
		}
	}
	r.packets = len(pd)
	r.packetMedian, r.packetP90 = quantile(pd, 0.5), quantile(pd, 0.9)
	return r
}

// onsets returns the wire time of the first loud sample of each burst: a
// sample at or above onsetAmplitude after at least 300 ms without one.
func onsets(ps []rtpCapture) []time.Duration {
	var on []time.Duration
	last := time.Duration(-time.Hour)
	for _, p := range ps {
		for k, c := range p.payload {
			if abs16(g711.DecodeUlawSample(c)) < onsetAmplitude {
				continue
			}
			at := p.at + time.Duration(k)*time.Second/benchRate
			if at-last >= 300*time.Millisecond {
				on = append(on, at)
			}
			last = at
		}
	}
	return on
}

func decode(b []byte) []float64 {
	s := make([]float64, len(b))
	for i, c := range b {
		s[i] = float64(g711.DecodeUlawSample(c))
	}
	return s
}

func peak(s []float64) float64 {
	m := 0.0
	for _, v := range s {
		m = math.Max(m, math.Abs(v))
	}
	return m
}

func abs16(v int16) int {
	if v < 0 {
		return -int(v)
	}
	return int(v)
}

// ncc is the normalised correlation of two equal-length signals.
func ncc(a, b []float64) float64 {
	var ab, aa, bb float64
	for i := range a {
		ab += a[i] * b[i]
		aa += a[i] * a[i]
		bb += b[i] * b[i]
	}
	if aa == 0 || bb == 0 {
		return 0
	}
	return ab / math.Sqrt(aa*bb)
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// quantile is the q-quantile of v (nearest rank); NaN when v is empty.
func quantile(v []float64, q float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	i := int(math.Ceil(q*float64(len(s)))) - 1
	if i < 0 {
		i = 0
	}
	return s[i]
}

// synthStream cuts s into 20 ms PCMU packets captured from at0 on, one
// every 20 ms.
func synthStream(s []int16, at0 time.Duration) []rtpCapture {
	var ps []rtpCapture
	for i := 0; i+160 <= len(s); i += 160 {
		b := make([]byte, 160)
		for k := range b {
			b[k] = g711.EncodeUlawSample(s[i+k])
		}
		ps = append(ps, rtpCapture{at: at0 + time.Duration(i)*time.Second/benchRate, ts: uint32(i), payload: b})
	}
	return ps
}

// The measurement itself: streams with a known delay, re-framing and cut
// onsets give back exactly that delay.
func TestMeasureLatency(t *testing.T) {
	wav := chirpWAV()
	pcm := make([]int16, (len(wav)-44)/2)
	_ = binary.Read(bytes.NewReader(wav[44:]), binary.LittleEndian, pcm)
	burstStart := int(benchLead.Seconds() * benchRate)
	period := int((benchBurst + benchGap).Seconds() * benchRate)
	tests := []struct {
		name                string
		delay               time.Duration // whole packets of delay on the wire
		shift               int           // samples the output is re-framed by
		cut                 int           // samples cut from each burst's start
		wantOnset, wantPckt float64       // ms
	}{
		{"60 ms, aligned", 60 * time.Millisecond, 0, 0, 60, 60},
		{"40 ms, re-framed by 5 ms", 40 * time.Millisecond, 40, 0, 45, 45},
		{"40 ms, 30 ms of each onset cut", 40 * time.Millisecond, 0, 240, 70, 40},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := make([]int16, len(pcm))
			copy(o[tt.shift:], pcm)
			for b := 0; b < benchBursts; b++ {
				start := burstStart + b*period + tt.shift
				for k := start; k < start+tt.cut; k++ {
					o[k] = 0
				}
			}
			r := measureLatency(synthStream(pcm, 0), synthStream(o, tt.delay))
			if r.bursts != benchBursts {
				t.Errorf("%d bursts paired, want %d", r.bursts, benchBursts)
			}
			if math.Abs(r.onsetMedian-tt.wantOnset) > 0.5 || math.Abs(r.onsetP90-tt.wantOnset) > 0.5 {
				t.Errorf("onset delay median %.2f p90 %.2f ms, want %.1f", r.onsetMedian, r.onsetP90, tt.wantOnset)
			}
			if r.packets < benchBursts*5 || math.Abs(r.packetMedian-tt.wantPckt) > 0.5 {
				t.Errorf("packet delay median %.2f ms over %d packets, want %.1f", r.packetMedian, r.packets, tt.wantPckt)
			}
		})
	}
}

// interarrivalJitter is the RFC 3550 (A.8) interarrival jitter at the end
// of the capture, in ms.
func interarrivalJitter(ps []rtpCapture) float64 {
	var j float64
	for i := 1; i < len(ps); i++ {
		d := ms(ps[i].at-ps[i-1].at) - float64(int32(ps[i].ts-ps[i-1].ts))*1000/benchRate
		j += (math.Abs(d) - j) / 16
	}
	return j
}

// intervalSpread gives the 10th and 90th percentiles of the gaps between
// packets.
func intervalSpread(ps []rtpCapture) string {
	var g []float64
	for i := 1; i < len(ps); i++ {
		g = append(g, ms(ps[i].at-ps[i-1].at))
	}
	return fmt.Sprintf("%.1f-%.1f ms", quantile(g, 0.1), quantile(g, 0.9))
}
