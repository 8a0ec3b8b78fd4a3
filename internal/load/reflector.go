package load

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/groupbridge/groupbridge/internal/softphone"
)

// ServeReflector is the reference reflector: n UDP sockets on 127.0.0.1,
// one goroutine per socket sending every datagram back where it came from.
// It is deliberately the simplest program that moves the same packets as
// the bridge does, so that its CPU is the yardstick of plain packet I/O.
// It writes one line "ports P1 P2 ..." to w once all sockets are bound and
// runs until ctx ends.
func ServeReflector(ctx context.Context, n int, w io.Writer) error {
	if n < 1 || n > MaxCalls {
		return fmt.Errorf("load: reflector sockets %d: want 1-%d", n, MaxCalls)
	}
	conns := make([]*net.UDPConn, 0, n)
	defer func() {
		for _, c := range conns {
			_ = c.Close()
		}
	}()
	var line strings.Builder
	line.WriteString("ports")
	for range n {
		c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			return fmt.Errorf("load: reflector socket: %w", err)
		}
		conns = append(conns, c)
		line.WriteString(" " + strconv.Itoa(c.LocalAddr().(*net.UDPAddr).Port))
	}
	var wg sync.WaitGroup
	for _, c := range conns {
		wg.Go(func() {
			buf := make([]byte, 2048)
			for {
				n, from, err := c.ReadFromUDPAddrPort(buf)
				if err != nil {
					if errors.Is(err, net.ErrClosed) {
						return
					}
					continue
				}
				_, _ = c.WriteToUDPAddrPort(buf[:n], from)
			}
		})
	}
	if _, err := fmt.Fprintln(w, line.String()); err != nil {
		return fmt.Errorf("load: reflector ports: %w", err)
	}
	<-ctx.Done()
	for _, c := range conns {
		_ = c.Close()
	}
	conns = nil
	wg.Wait()
	return nil
}

// echoClient is one of the reflector's callers: it sends a 20 ms RTP
// stream (12-byte header, 160 bytes of µ-law silence) to its socket and
// counts what comes back.
type echoClient struct {
	conn  *net.UDPConn
	dst   netip.AddrPort
	epoch time.Time

	mu       sync.Mutex
	received int
	started  bool
	maxSeq   int64 // extended highest sequence number seen
	hist     softphone.IntervalHistogram
}

// snapshot returns the packets received and the extended highest
// sequence number so far, and optionally resets the interval histogram.
func (e *echoClient) snapshot(reset bool) (received int, maxSeq int64, hist softphone.IntervalHistogram) {
	e.mu.Lock()
	defer e.mu.Unlock()
	hist = e.hist
	if reset {
		e.hist.Reset()
	}
	return e.received, e.maxSeq, hist
}

func (e *echoClient) receive() {
	buf := make([]byte, 2048)
	for {
		n, err := e.conn.Read(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		if n < 12 {
			continue
		}
		at := int64(time.Since(e.epoch))
		seq := binary.BigEndian.Uint16(buf[2:4])
		e.mu.Lock()
		e.received++
		ext := int64(seq)
		if e.started {
			ext = e.maxSeq + int64(int16(seq-uint16(e.maxSeq)))
		}
		if !e.started || ext > e.maxSeq {
			e.maxSeq, e.started = ext, true
		}
		e.hist.Add(at)
		e.mu.Unlock()
	}
}

// send paces packets on an absolute 20 ms schedule, starting after offset,
// until ctx ends.
func (e *echoClient) send(ctx context.Context, offset time.Duration, ssrc uint32) {
	var pkt [12 + 160]byte
	pkt[0] = 0x80 // version 2; payload type 0 (PCMU)
	binary.BigEndian.PutUint32(pkt[8:12], ssrc)
	for i := 12; i < len(pkt); i++ {
		pkt[i] = 0xff // µ-law silence
	}
	start := time.Now().Add(offset)
	t := time.NewTimer(offset)
	defer t.Stop()
	for n := uint32(0); ; n++ {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		binary.BigEndian.PutUint16(pkt[2:4], uint16(n))
		binary.BigEndian.PutUint32(pkt[4:8], n*160)
		_, _ = e.conn.WriteToUDPAddrPort(pkt[:], e.dst)
		t.Reset(time.Until(start.Add(time.Duration(n+1) * 20 * time.Millisecond)))
	}
}

// runReflector starts the reflector as a child process, drives it with
// opts.Calls paced senders and measures it over opts.Duration after a
// second of warm-up.
func runReflector(ctx context.Context, opts Options) (*Report, error) {
	if opts.ReflectorCmd == nil {
		return nil, errors.New("load: no reflector command")
	}
	cmd := opts.ReflectorCmd(opts.Calls)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, fmt.Errorf("load: reflector stdin: %w", err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("load: reflector stdout: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("load: start reflector: %w", err)
	}
	defer stopChild(cmd, stdin)
	ports, err := readPorts(stdout, opts.Calls)
	if err != nil {
		return nil, err
	}

	// Deferred in this order so that they run as: close the sockets (ends
	// the receivers), stop the senders, wait for both.
	var wg sync.WaitGroup
	defer wg.Wait()
	sctx, stop := context.WithCancel(ctx)
	defer stop()
	epoch := time.Now()
	clients := make([]*echoClient, len(ports))
	for i, port := range ports {
		c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			stop()
			return nil, fmt.Errorf("load: reflector client socket: %w", err)
		}
		defer c.Close()
		e := &echoClient{conn: c, dst: netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), port), epoch: epoch}
		clients[i] = e
		wg.Go(e.receive)
		// Phases spread over the 20 ms like independently set-up calls.
		off := time.Duration(i) * 20 * time.Millisecond / time.Duration(len(ports))
		wg.Go(func() { e.send(sctx, off, uint32(i+1)) })
	}
	if err := sleep(ctx, time.Second); err != nil {
		return nil, err
	}

	pid := cmd.Process.Pid
	cpu0, err := procCPU(pid)
	if err != nil {
		return nil, err
	}
	self0, _ := procCPU(selfPID())
	t0 := time.Now()
	type snap struct {
		rx  int
		seq int64
	}
	before := make([]snap, len(clients))
	for i, e := range clients {
		rx, seq, _ := e.snapshot(true)
		before[i] = snap{rx, seq}
	}
	if err := sleep(ctx, opts.Duration); err != nil {
		return nil, err
	}
	window := time.Since(t0)
	cpu1, err := procCPU(pid)
	if err != nil {
		return nil, err
	}
	self1, _ := procCPU(selfPID())

	r := &Report{Calls: opts.Calls, Window: window.Seconds(), Up: len(clients)}
	counts := make([]int, len(clients))
	var merged softphone.IntervalHistogram
	var p99s []float64
	lost, received := 0, 0
	for i, e := range clients {
		rx, seq, h := e.snapshot(false)
		counts[i] = rx - before[i].rx
		received += counts[i]
		lost += max(0, int(seq-before[i].seq)-counts[i])
		merged.Merge(&h)
		p99s = append(p99s, ms(h.Quantile(0.99)))
	}
	r.Received = rates(counts, window)
	r.Intervals = intervals(&merged, p99s)
	r.Loss = loss(lost, received)
	c := cpuPerCaller(pid, cpu0, cpu1, len(clients), window)
	r.TargetCPU = &c
	r.LoadCPU = cpuPerCaller(selfPID(), self0, self1, len(clients), window)
	return r, nil
}

// readPorts reads the reflector's "ports ..." line.
func readPorts(r io.Reader, n int) ([]uint16, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	if !sc.Scan() {
		return nil, fmt.Errorf("load: reflector gave no ports: %w", errors.Join(sc.Err(), io.ErrUnexpectedEOF))
	}
	f := strings.Fields(sc.Text())
	if len(f) != n+1 || f[0] != "ports" {
		return nil, fmt.Errorf("load: reflector answered %d fields, want \"ports\" and %d ports", len(f), n)
	}
	ports := make([]uint16, n)
	for i, s := range f[1:] {
		p, err := strconv.ParseUint(s, 10, 16)
		if err != nil || p == 0 {
			return nil, fmt.Errorf("load: reflector port %q is not a port", s)
		}
		ports[i] = uint16(p)
	}
	go func() { _, _ = io.Copy(io.Discard, r) }() // never block the child on a full pipe
	return ports, nil
}

// stopChild ends the reflector: closing its stdin asks it to stop; if it
// has not within 5 s, it is killed.
func stopChild(cmd *exec.Cmd, stdin io.Closer) {
	_ = stdin.Close()
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		_ = cmd.Process.Kill()
		<-done
	}
}
