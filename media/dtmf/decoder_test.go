package dtmf

import (
	"strings"
	"testing"
	"time"
)

// pkt is one telephone-event packet as the RTP read loop hands it over.
type pkt struct {
	ssrc    uint32
	ts      uint32
	payload []byte
	at      time.Duration // arrival, from the start of the scenario
}

var t0 = time.Date(2025, 3, 1, 19, 0, 0, 0, time.UTC)

func wire(ev Event) []byte {
	b := make([]byte, EventLen)
	if _, err := ev.MarshalTo(b); err != nil {
		panic(err)
	}
	return b
}

const sippSSRC = 0x0e05384e

// sippTS are the RTP timestamps in sipp 3.6.1's dtmf_2833_<digit>.pcap
// captures for the digits the tests use (read from the files).
var sippTS = map[byte]uint32{'0': 17632, '1': 13280, '2': 23200, '3': 31040}

// sippCapture reproduces one of sipp's per-digit captures: first packet
// duration 0, updates every 20 ms growing by 320, three end packets back
// to back, all with the capture's fixed SSRC and timestamp.
func sippCapture(digit byte, start time.Duration) []pkt {
	code, _ := EventCode(digit)
	ts := sippTS[digit]
	var ps []pkt
	for i := range 7 {
		ev := Event{Code: code, Volume: 10, Duration: uint16(i * 320)}
		ps = append(ps, pkt{sippSSRC, ts, wire(ev), start + time.Duration(i)*20*time.Millisecond})
	}
	end := Event{Code: code, End: true, Volume: 10, Duration: 2240}
	for range 3 {
		ps = append(ps, pkt{sippSSRC, ts, wire(end), start + 140*time.Millisecond})
	}
	return ps
}

// phonePress is a press as Press builds it, sent every 20 ms.
func phonePress(ssrc, ts uint32, digit byte, samples uint16, start time.Duration) []pkt {
	code, _ := EventCode(digit)
	var ps []pkt
	at := start
	for _, ev := range Press(code, samples, 160) {
		ps = append(ps, pkt{ssrc, ts, wire(ev), at})
		if !ev.End {
			at += 20 * time.Millisecond
		}
	}
	return ps
}

func concat(parts ...[]pkt) []pkt {
	var all []pkt
	for _, p := range parts {
		all = append(all, p...)
	}
	return all
}

func one(ssrc, ts uint32, ev Event, at time.Duration) []pkt {
	return []pkt{{ssrc, ts, wire(ev), at}}
}

// run feeds ps to a fresh decoder and returns, per packet, the digit
// reported or '.'.
func run(ps []pkt) string {
	var d Decoder
	out := make([]byte, len(ps))
	for i, p := range ps {
		out[i] = '.'
		if digit, ok := d.Feed(p.ssrc, p.ts, p.payload, t0.Add(p.at)); ok {
			out[i] = digit
		}
	}
	return string(out)
}

func reported(s string) string { return strings.ReplaceAll(s, ".", "") }

const ms = time.Millisecond

func TestDecoderScenarios(t *testing.T) {
	// sipp's capture of '1' ends at 140 ms; ended at 140 ms plus the gap.
	longPress := func(wrapsSameTS bool) []pkt {
		var ps []pkt
		for i := range 1000 { // 20 s: the 16-bit duration wraps twice
			ev := Event{Code: 5, Volume: 10, Duration: uint16(i * 160)}
			ps = append(ps, pkt{7, 1000, wire(ev), time.Duration(i) * 20 * ms})
		}
		if wrapsSameTS {
			return ps
		}
		// RFC 4733 segments: at 0xFFFF the sender starts a new event
		// at timestamp + 0xFFFF and restarts the duration.
		ps = ps[:410] // up to duration 65440
		ps = append(ps, one(7, 1000, Event{Code: 5, Volume: 10, Duration: 0xffff}, 8200*ms)...)
		for i := range 300 {
			ev := Event{Code: 5, Volume: 10, Duration: uint16(i * 160)}
			ps = append(ps, pkt{7, 1000 + 0xffff, wire(ev), 8220*ms + time.Duration(i)*20*ms})
		}
		end := Event{Code: 5, End: true, Volume: 10, Duration: 300 * 160}
		for range 3 {
			ps = append(ps, pkt{7, 1000 + 0xffff, wire(end), 14220 * ms})
		}
		return ps
	}

	tests := []struct {
		name string
		ps   []pkt
		want string // per packet: the digit reported, '.' for none
	}{
		{
			name: "sipp capture: first packet duration 0, three end packets",
			ps:   sippCapture('1', 0),
			want: "1.........",
		},
		{
			name: "phone press: one digit at the first packet",
			ps:   phonePress(42, 5000, '#', 800, 0),
			want: "#.......",
		},
		{
			name: "PIN 1123 from sipp per-digit captures: same capture replayed counts twice",
			ps: concat(sippCapture('1', 0), sippCapture('1', 1000*ms),
				sippCapture('2', 2000*ms), sippCapture('3', 3000*ms)),
			want: "1........." + "1........." + "2........." + "3.........",
		},
		{
			name: "sipp replay after only a short pause still counts",
			ps:   concat(sippCapture('1', 0), sippCapture('1', 250*ms)),
			want: "1.........1.........",
		},
		{
			name: "PIN 31: timestamps (and sipp's sequence numbers) run backwards",
			ps:   concat(sippCapture('3', 0), sippCapture('1', 500*ms)),
			want: "3.........1.........",
		},
		{
			name: "PIN 121 from captures: the earlier key comes back",
			ps:   concat(sippCapture('1', 0), sippCapture('2', 500*ms), sippCapture('1', 1000*ms)),
			want: "1.........2.........1.........",
		},
		{
			name: "two equal digits with different timestamps",
			ps:   concat(phonePress(9, 1000, '5', 800, 0), phonePress(9, 1000+2400, '5', 800, 300*ms)),
			want: "5.......5.......",
		},
		{
			name: "equal digits back to back, new timestamp within the gap",
			ps:   concat(phonePress(9, 1000, '5', 800, 0), phonePress(9, 1000+1200, '5', 800, 130*ms)),
			want: "5.......5.......",
		},
		{
			name: "late reordered in-event packet shortly after the end",
			ps: concat(sippCapture('1', 0),
				one(sippSSRC, 13280, Event{Code: 1, Volume: 10, Duration: 960}, 170*ms)),
			want: "1..........",
		},
		{
			name: "end packet retransmitted long after the end",
			ps: concat(sippCapture('1', 0),
				one(sippSSRC, 13280, Event{Code: 1, End: true, Volume: 10, Duration: 2240}, 900*ms)),
			want: "1..........",
		},
		{
			name: "late packets keep extending the quiet window",
			ps: concat(sippCapture('1', 0),
				one(sippSSRC, 13280, Event{Code: 1, Volume: 10, Duration: 1600}, 220*ms),
				one(sippSSRC, 13280, Event{Code: 1, Volume: 10, Duration: 1920}, 300*ms)),
			want: "1...........",
		},
		{
			name: "late packet of the previous key after the next key began",
			ps: concat(sippCapture('1', 0), sippCapture('2', 160*ms),
				one(sippSSRC, 13280, Event{Code: 1, End: true, Volume: 10, Duration: 2240}, 180*ms),
				one(sippSSRC, 13280, Event{Code: 1, Volume: 10, Duration: 1920}, 185*ms)),
			want: "1.........2...........",
		},
		{
			name: "end packets all lost, then the same key with a new timestamp",
			ps: concat(phonePress(9, 1000, '7', 800, 0)[:5],
				phonePress(9, 1000+1600, '7', 800, 200*ms)),
			want: "7....7.......",
		},
		{
			name: "end packets all lost, then another key",
			ps:   concat(phonePress(9, 1000, '7', 800, 0)[:5], phonePress(9, 1000+1600, '8', 800, 200*ms)),
			want: "7....8.......",
		},
		{
			name: "stale key: ends lost, then sipp replays the same capture",
			ps:   concat(sippCapture('1', 0)[:7], sippCapture('1', 1000*ms)),
			want: "1......1.........",
		},
		{
			name: "stale key: only the first packet seen, then replayed",
			ps:   concat(sippCapture('1', 0)[:1], sippCapture('1', 1000*ms)),
			want: "11.........",
		},
		{
			name: "loss inside a press: growing duration after a long gap is the same press",
			ps: concat(sippCapture('1', 0)[:2],
				one(sippSSRC, 13280, Event{Code: 1, Volume: 10, Duration: 1600}, 100*ms),
				sippCapture('1', 0)[7:]),
			want: "1.....",
		},
		{
			name: "only end packets arrive",
			ps:   sippCapture('1', 0)[7:],
			want: "1..",
		},
		{
			name: "only the first packet arrives",
			ps:   sippCapture('2', 0)[:1],
			want: "2",
		},
		{
			name: "long press, duration wraps twice with the same timestamp",
			ps:   longPress(true),
			want: "5" + strings.Repeat(".", 999),
		},
		{
			name: "long press split into RFC 4733 segments",
			ps:   longPress(false),
			want: "5" + strings.Repeat(".", 410+300+3),
		},
		{
			name: "flash and unknown events are ignored, also inside a press",
			ps: concat(
				one(9, 500, Event{Code: 16, Volume: 10}, 0),
				phonePress(9, 1000, '4', 480, 10*ms)[:2],
				one(9, 1000, Event{Code: 16, End: true, Volume: 10, Duration: 320}, 45*ms),
				one(9, 1160, Event{Code: 200, Volume: 10}, 50*ms),
				phonePress(9, 1000, '4', 480, 10*ms)[2:],
				one(9, 1000, Event{Code: 16, Volume: 10, Duration: 0}, 400*ms)),
			want: "." + "4." + ".." + "...." + ".",
		},
		{
			name: "short payloads are ignored",
			ps: concat([]pkt{{9, 1000, nil, 0}, {9, 1000, []byte{3, 0x8a, 0}, 0}},
				phonePress(9, 1000, '3', 320, 0)),
			want: "..3....",
		},
		{
			name: "multi-event payload: the first event counts",
			ps: []pkt{
				{9, 1000, []byte{6, 10, 0, 0, 7, 10, 0, 0}, 0},
				{9, 1000, []byte{6, 10, 0, 160, 8, 10, 0, 160}, 20 * ms},
				{9, 1000, []byte{6, 0x8a, 1, 64, 9, 0x8a, 1, 64}, 40 * ms},
			},
			want: "6..",
		},
		{
			name: "new SSRC with the same timestamp is a new press",
			ps:   concat(phonePress(9, 1000, '2', 320, 0), phonePress(10, 1000, '2', 320, 300*ms)),
			want: "2....2....",
		},
		{
			name: "sender reusing one timestamp for different keys",
			ps:   concat(phonePress(9, 1000, '2', 320, 0), phonePress(9, 1000, '9', 320, 300*ms)),
			want: "2....9....",
		},
		{
			name: "arrival time going backwards adds no digit",
			ps: concat(sippCapture('1', 500*ms),
				one(sippSSRC, 13280, Event{Code: 1, Volume: 10}, 0)),
			want: "1..........",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if len(tt.want) != len(tt.ps) {
				t.Fatalf("bad test: %d packets, want has %d", len(tt.ps), len(tt.want))
			}
			if got := run(tt.ps); got != tt.want {
				t.Errorf("digits per packet\n got %s (%q)\nwant %s (%q)", got, reported(got), tt.want, reported(tt.want))
			}
		})
	}
}

func TestDecoderReset(t *testing.T) {
	var d Decoder
	p := sippCapture('1', 0)
	if _, ok := d.Feed(p[0].ssrc, p[0].ts, p[0].payload, t0); !ok {
		t.Fatal("first packet reported no digit")
	}
	if _, ok := d.Feed(p[1].ssrc, p[1].ts, p[1].payload, t0.Add(20*ms)); ok {
		t.Fatal("second packet reported a digit")
	}
	d.Reset()
	if digit, ok := d.Feed(p[1].ssrc, p[1].ts, p[1].payload, t0.Add(40*ms)); !ok || digit != '1' {
		t.Fatalf("after Reset: %q, %v; want '1', true", digit, ok)
	}
}

func TestFeedAllocs(t *testing.T) {
	ps := concat(sippCapture('1', 0), sippCapture('1', 300*ms), sippCapture('2', 600*ms))
	var d Decoder
	n := testing.AllocsPerRun(20, func() {
		for _, p := range ps {
			d.Feed(p.ssrc, p.ts, p.payload, t0.Add(p.at))
		}
	})
	if n != 0 {
		t.Fatalf("Feed allocates %v times per scenario", n)
	}
}

func BenchmarkFeed(b *testing.B) {
	ps := concat(sippCapture('1', 0), sippCapture('2', 300*ms))
	var d Decoder
	now := t0
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		p := ps[i]
		// Keep arrival times moving so every replay is a fresh press.
		now = now.Add(20 * ms)
		d.Feed(p.ssrc, p.ts, p.payload, now)
		if i++; i == len(ps) {
			i = 0
		}
	}
}

// FuzzDecoderFeed feeds random packet sequences. Each 7-byte record is one
// packet: SSRC choice, timestamp choice, code, E|volume, duration (2 bytes)
// and an arrival step in 10 ms units (negative steps included). Small
// choice sets make events collide, repeat and interleave.
//
// Besides not panicking, the decoder may only report a digit for a packet
// whose event (SSRC, timestamp, code) differs from that of the previous
// digit packet, or that arrives more than RepressGap after the previous
// packet of its own event: anything else would be one press counted twice.
func FuzzDecoderFeed(f *testing.F) {
	f.Add([]byte{0, 0, 1, 10, 0, 0, 2, 0, 0, 1, 10, 1, 64, 2, 0, 0, 1, 0x8a, 1, 64, 0})
	f.Add([]byte{0, 0, 1, 0x8a, 8, 192, 0, 0, 0, 1, 0x8a, 8, 192, 0, 0, 0, 1, 10, 0, 0, 30})
	f.Add([]byte{0, 1, 5, 10, 0xff, 0xff, 2, 0, 2, 5, 10, 0, 0, 2, 0, 1, 5, 10, 0, 0, 200})
	f.Add([]byte{1, 0, 16, 10, 0, 0, 2, 0, 0, 16, 0x8a, 0, 160, 2, 2, 3, 11, 0x8a, 0, 0, 0x80})
	f.Fuzz(func(t *testing.T, data []byte) {
		ssrcs := [...]uint32{1, 0xdeadbeef}
		stamps := [...]uint32{0, 160, 0xffff, 0xffffff00}
		type key struct {
			ssrc, ts uint32
			code     uint8
		}
		var (
			d       Decoder
			now     = t0
			prevKey key
			havePrv bool
			lastAt  = map[key]time.Time{}
		)
		for len(data) >= 7 {
			rec := data[:7]
			data = data[7:]
			ssrc := ssrcs[rec[0]%2]
			ts := stamps[rec[1]%4]
			payload := rec[2:6]
			if rec[0]&0x80 != 0 {
				payload = payload[:rec[0]&3] // short payload
			}
			now = now.Add(time.Duration(int8(rec[6])) * 10 * ms)

			digit, ok := d.Feed(ssrc, ts, payload, now)
			ev, err := ParseEvent(payload)
			valid := err == nil && ev.Code <= MaxDigitCode
			if !valid {
				if ok {
					t.Fatalf("digit %q from an ignored payload % x", digit, payload)
				}
				continue
			}
			k := key{ssrc, ts, ev.Code}
			if ok {
				if want, _ := EventDigit(ev.Code); digit != want {
					t.Fatalf("digit %q for event code %d", digit, ev.Code)
				}
				last, seen := lastAt[k]
				if havePrv && prevKey == k && seen && now.Sub(last) <= RepressGap {
					t.Fatalf("event %+v counted again %v after its previous packet", k, now.Sub(last))
				}
			}
			lastAt[k] = now
			prevKey, havePrv = k, true
		}
	})
}
