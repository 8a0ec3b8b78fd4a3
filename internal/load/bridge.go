package load

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/groupbridge/groupbridge/internal/softphone"
)

// caller is one simulated member.
type caller struct {
	idx, room, k int
	freq         float64
	sampled      bool
	agent        *softphone.Agent

	phone   *softphone.Phone
	answer  time.Duration // INVITE to answer
	answerT time.Time
	cause   string // failure cause, "" when the call is up
	err     error

	rx0, lost0 int
	stalls0    int // frames sent late or skipped before the window
}

// toneFreq is the tone of the k-th caller of a room: 50 Hz apart from
// 300 Hz, wrapping below 3.4 kHz so that large rooms stay in the
// telephone band (callers 62 apart then share a tone).
func toneFreq(k int) float64 { return 300 + 50*float64(k%62) }

// roomSize is how many of n callers assigned round-robin land in room r
// of m.
func roomSize(n, m, r int) int { return (n - r + m - 1) / m }

// runBridge places the calls, measures the window and hangs up.
func runBridge(ctx context.Context, opts Options) (*Report, error) {
	log := opts.Logger
	nAgents := (opts.Calls + callsPerAgent - 1) / callsPerAgent
	agents := make([]*softphone.Agent, 0, nAgents)
	defer func() {
		for _, a := range agents {
			_ = a.Close()
		}
	}()
	for range nAgents {
		a, err := softphone.NewAgent(softphone.AgentConfig{UserAgent: "groupbridge-load", Logger: opts.PhoneLogger})
		if err != nil {
			return nil, fmt.Errorf("load: %w", err)
		}
		agents = append(agents, a)
	}

	sample := opts.Sample
	if sample == 0 {
		sample = min(opts.Rooms, 20)
	}
	callers := make([]*caller, opts.Calls)
	for i := range callers {
		room, k := i%opts.Rooms, i/opts.Rooms
		callers[i] = &caller{
			idx: i, room: room, k: k, freq: toneFreq(k),
			// The first callers cover the rooms one each; a room of one has
			// nobody to hear.
			sampled: i < sample && roomSize(opts.Calls, opts.Rooms, room) > 1,
			agent:   agents[i%len(agents)],
		}
	}

	log.Info("placing calls", "calls", opts.Calls, "rooms", opts.Rooms, "rate", opts.Rate, "agents", len(agents))
	start := time.Now()
	var wg sync.WaitGroup
	for i, c := range callers {
		if err := sleep(ctx, time.Until(start.Add(time.Duration(float64(i)/opts.Rate*float64(time.Second))))); err != nil {
			wg.Wait()
			hangupAll(callers)
			return nil, err
		}
		wg.Go(func() { setup(ctx, opts, c) })
	}
	wg.Wait()
	setups := setupReport(callers, start)
	log.Info("calls placed", "succeeded", setups.Succeeded, "attempted", setups.Attempted)
	defer func() {
		log.Info("hanging up")
		hangupAll(callers)
	}()
	if err := sleep(ctx, settle); err != nil {
		return nil, err
	}

	up := make([]*caller, 0, len(callers))
	for _, c := range callers {
		if c.phone != nil {
			up = append(up, c)
		}
	}
	var cpu0, self0 time.Duration
	if opts.PID > 0 {
		var err error
		if cpu0, err = procCPU(opts.PID); err != nil {
			return nil, err
		}
	}
	self0, _ = procCPU(selfPID())
	t0 := time.Now()
	for _, c := range up {
		m := c.phone.Media()
		c.rx0, c.lost0 = m.RTPStats()
		late, skipped := m.SendStalls()
		c.stalls0 = late + skipped
		m.ResetArrivalIntervals()
	}
	log.Info("measuring", "window", opts.Duration.String(), "calls_up", len(up))
	if err := sleep(ctx, opts.Duration); err != nil {
		return nil, err
	}
	window := time.Since(t0)
	var cpu1 time.Duration
	if opts.PID > 0 {
		var err error
		if cpu1, err = procCPU(opts.PID); err != nil {
			return nil, err
		}
	}
	self1, _ := procCPU(selfPID())

	r := &Report{
		Target: opts.Target, Transport: opts.Transport, Digits: opts.Digits,
		Calls: opts.Calls, Rooms: opts.Rooms, Window: window.Seconds(),
		Setups: setups,
	}
	var (
		counts         []int
		p99s           []float64
		merged         softphone.IntervalHistogram
		lost, received int
	)
	for _, c := range up {
		select {
		case <-c.phone.Done():
			// The bridge hung up during the window: not up throughout.
			setups.Failures["ended early"]++
			continue
		default:
		}
		rx, lo := c.phone.Media().RTPStats()
		counts = append(counts, rx-c.rx0)
		received += rx - c.rx0
		lost += lo - c.lost0
		h := c.phone.Media().ArrivalHistogram()
		merged.Merge(&h)
		p99s = append(p99s, ms(h.Quantile(0.99)))
	}
	r.Up = len(counts)
	r.Received = rates(counts, window)
	r.Intervals = intervals(&merged, p99s)
	r.Loss = loss(lost, received)
	r.Tone = toneCheck(callers, time.Now(), min(toneWindow, window))
	if opts.PID > 0 {
		c := cpuPerCaller(opts.PID, cpu0, cpu1, r.Up, window)
		r.TargetCPU = &c
	}
	r.LoadCPU = cpuPerCaller(selfPID(), self0, self1, r.Up, window)
	if len(setups.Failures) == 0 {
		setups.Failures = nil
	}
	return r, nil
}

// setup dials one caller, enters its room's PIN and starts its tone.
func setup(ctx context.Context, opts Options, c *caller) {
	keep := time.Duration(-1)
	if c.sampled {
		keep = 10 * time.Second
	}
	dctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	te, mode := 0, softphone.DigitRFC4733
	if opts.Digits == DigitsInfo {
		te, mode = -1, softphone.DigitInfo
	}
	t := time.Now()
	p, err := softphone.Dial(dctx, softphone.Config{
		Server:    opts.Target,
		Transport: opts.Transport,
		Dialed:    opts.Dialed,
		// Distinct numbers, so that per-caller limits see distinct callers.
		Caller:         fmt.Sprintf("+1555%07d", c.idx),
		Agent:          c.agent,
		TelephoneEvent: te,
		Keep:           keep,
		Logger:         opts.PhoneLogger,
	})
	if err != nil {
		c.cause, c.err = softphone.FailureCause(err), err
		return
	}
	c.answer, c.answerT = time.Since(t), time.Now()
	c.phone = p
	if err := p.SendDigits(dctx, opts.PINs[c.room]+"#", mode); err != nil {
		c.cause = "digits"
		hangup(p)
		c.phone = nil
		return
	}
	p.Media().SendTone(c.freq, toneDBFS)
}

func setupReport(callers []*caller, start time.Time) *Setups {
	s := &Setups{Attempted: len(callers), Failures: map[string]int{}}
	var lat []float64
	var last time.Time
	for _, c := range callers {
		if c.cause != "" {
			s.Failures[c.cause]++
			if c.cause == "error" && s.FirstError == "" && c.err != nil {
				s.FirstError = c.err.Error()
			}
		}
		if !c.answerT.IsZero() {
			lat = append(lat, ms(c.answer))
			if c.answerT.After(last) {
				last = c.answerT
			}
		}
		if c.phone != nil {
			s.Succeeded++
		}
	}
	if n := len(lat); n > 0 {
		if d := last.Sub(start); d > 0 {
			s.PerSecond = float64(n) / d.Seconds()
		}
		s.LatencyMax = percentile(lat, 1)
		s.LatencyP50 = percentile(lat, 0.5)
	}
	return s
}

// toneCheck judges the sampled listeners: each must hear the tone of some
// room-mate in at least 90% of the 100 ms blocks of the span before end
// (inside the window, so join prompts are over). With
// max_talkers the bridge mixes only a few of many equally loud talkers, so
// the check asks for any room-mate, not a particular one. It also counts
// the frames the sampled rooms' callers sent late or skipped in the window.
func toneCheck(callers []*caller, end time.Time, span time.Duration) *ToneCheck {
	tc := &ToneCheck{WorstFraction: 1}
	sampledRooms := map[int]bool{}
	for _, l := range callers {
		if l.sampled && l.phone != nil {
			sampledRooms[l.room] = true
		}
	}
	for _, o := range callers {
		if sampledRooms[o.room] && o.phone != nil {
			late, skipped := o.phone.Media().SendStalls()
			tc.TalkerStalls += late + skipped - o.stalls0
		}
	}
	for _, l := range callers {
		if !l.sampled || l.phone == nil {
			continue
		}
		tc.Sampled++
		got := l.phone.Media().Received(end.Add(-span))
		// 200 ms off the end: packets still in flight are not silence.
		if trim := 200 * 8; len(got) > trim {
			got = got[:len(got)-trim]
		}
		best := 0.0
		seen := map[float64]bool{l.freq: true} // its own tone is not its room
		for _, o := range callers {
			if o.room != l.room || seen[o.freq] || o.phone == nil {
				continue
			}
			seen[o.freq] = true
			frac, _ := softphone.ToneBlocks(got, o.freq, 100*time.Millisecond, -35)
			best = max(best, frac)
		}
		if best >= 0.9 {
			tc.Heard++
		}
		tc.WorstFraction = min(tc.WorstFraction, best)
	}
	if tc.Sampled == 0 {
		tc.WorstFraction = 0
	}
	return tc
}

func hangup(p *softphone.Phone) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = p.Hangup(ctx)
}

// hangupAll ends every call, 64 at a time.
func hangupAll(callers []*caller) {
	sem := make(chan struct{}, 64)
	var wg sync.WaitGroup
	for _, c := range callers {
		if c.phone == nil {
			continue
		}
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			hangup(c.phone)
		})
	}
	wg.Wait()
}
