package store

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/groupbridge/groupbridge/internal/attendance"
	"github.com/groupbridge/groupbridge/internal/wallclock"
)

// Writer timings. The backoff runs on the store's clock; an attempt's
// own deadline is real time, as it bounds network and disk I/O.
const (
	retryFirst   = 250 * time.Millisecond
	retryMax     = 10 * time.Second
	attemptLimit = 15 * time.Second
	pruneEvery   = 24 * time.Hour
	batchMax     = 500
)

// DefaultMaxQueue is how many records (sessions and day rows) a Writer
// holds while the database is away when WriterOptions.MaxQueue is 0: a
// busy bridge's weeks of sessions, a few tens of megabytes.
const DefaultMaxQueue = 200_000

// WriterOptions configure a Writer.
type WriterOptions struct {
	// OnError is called for every failed write and every record refused by
	// a full queue (the app counts groupbridge_attendance_write_errors_total).
	// It must not block.
	OnError func()
	// MaxQueue bounds the records waiting; 0 is DefaultMaxQueue.
	MaxQueue int
}

// Writer is the attendance.Recorder of a read-write Store. Its methods
// put the record in a queue and return at once; one goroutine writes the
// queue in batches, one transaction each. A failed write keeps its rows,
// is counted (OnError) and logged, and is tried again after a backoff
// (250 ms doubling to 10 s), so rows outlive a database restart. Rows are
// lost only beyond MaxQueue (counted and logged) or when the process
// stops before they could be written (Close logs how many).
//
// On a store Open returned not ready, each attempt first connects it
// (ping, migrate, prune), on the same backoff and counted the same way; the
// first attempt is made at once.
//
// A session is stored once however often its write is tried (its ID is
// the key). Day counts are added: a commit whose answer was lost would
// count them twice, which errs towards a wrong PIN too many.
type Writer struct {
	st      *Store
	onError func()
	max     int

	mu       sync.Mutex
	sessions []attendance.Session
	days     map[dayKey]dayCounts
	inflight int // records of the batch being written, which count as queued
	dropped  int // records refused by a full queue, or given after Close
	closed   bool

	wake    chan struct{}
	closing chan context.Context
	cancel  context.CancelFunc // ends the writes in progress; Close's ctx did
	retry   wallclock.Timer    // the next attempt after a failure
	prune   wallclock.Timer    // the daily prune
	base    context.Context
	done    chan struct{}
	left    int // records not written when the loop ended
}

var _ attendance.Recorder = (*Writer)(nil)

// NewWriter starts a Writer on s, which must be open read-write.
func (s *Store) NewWriter(o WriterOptions) *Writer {
	if s.ro {
		panic("store: NewWriter on a read-only store")
	}
	w := &Writer{
		st: s, onError: o.OnError, max: o.MaxQueue,
		days: map[dayKey]dayCounts{},
		wake: make(chan struct{}, 1), closing: make(chan context.Context, 1), done: make(chan struct{}),
	}
	if w.onError == nil {
		w.onError = func() {}
	}
	if w.max <= 0 {
		w.max = DefaultMaxQueue
	}
	w.base, w.cancel = context.WithCancel(context.Background())
	// Made here, not in run: a test that moves the clock after NewWriter
	// finds them armed.
	w.retry = s.clock.NewTimer(time.Hour)
	w.retry.Stop()
	w.prune = s.clock.NewTimer(pruneEvery)
	if !s.Ready() {
		w.wake <- struct{}{} // connect now, with nothing queued yet
	}
	go w.run()
	return w
}

// Session queues a session's record.
func (w *Writer) Session(s attendance.Session) {
	w.add(func() { w.sessions = append(w.sessions, s) }, dayKey{})
}

// WrongPIN counts a wrong PIN on group's number ("" the access number) on
// the local date of at.
func (w *Writer) WrongPIN(group string, at time.Time) {
	k := dayKey{at.Local().Format(dayLayout), group}
	w.add(func() { c := w.days[k]; c.wrongPINs++; w.days[k] = c }, k)
}

// Closed counts a caller told group is not meeting, on the local date of
// at.
func (w *Writer) Closed(group string, at time.Time) {
	k := dayKey{at.Local().Format(dayLayout), group}
	w.add(func() { c := w.days[k]; c.closed++; w.days[k] = c }, k)
}

// add runs put under the lock unless the queue is full or the Writer is
// closed; k is the day row put adds to (a count on a row already queued
// takes no room).
func (w *Writer) add(put func(), k dayKey) {
	w.mu.Lock()
	_, queued := w.days[k]
	full := len(w.sessions)+len(w.days)+w.inflight >= w.max && !(k.day != "" && queued)
	if w.closed || full {
		w.dropped++
		n, closed := w.dropped, w.closed
		w.mu.Unlock()
		w.onError()
		// The first and then every thousandth: a flood of lines would not
		// say more.
		if n == 1 || n%1000 == 0 {
			if closed {
				w.st.log.Error("attendance record given after the writer closed: not written", "dropped", n)
			} else {
				w.st.log.Error("attendance queue full: records dropped", "max_queue", w.max, "dropped", n)
			}
		}
		return
	}
	put()
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// Close writes what is queued, trying until ctx ends, and stops the
// Writer. It returns an error naming how many records were not written
// (also logged). Records given after Close are dropped.
func (w *Writer) Close(ctx context.Context) error {
	w.mu.Lock()
	first := !w.closed
	w.closed = true
	w.mu.Unlock()
	if first {
		w.closing <- ctx
		stop := context.AfterFunc(ctx, w.cancel)
		defer stop()
	}
	<-w.done
	if w.left > 0 {
		return fmt.Errorf("attendance: %d records not written to %s", w.left, w.st.where)
	}
	return nil
}

func (w *Writer) run() {
	defer close(w.done)
	defer w.cancel()
	retry, prune := w.retry, w.prune
	defer prune.Stop()
	backoff := retryFirst
	waiting := false // a failed write: the retry timer brings the next
	failures := 0
	for {
		select {
		case <-w.wake:
			if waiting {
				continue
			}
		case <-retry.C():
			waiting = false
		case <-prune.C():
			prune.Reset(pruneEvery)
			// A store not ready prunes when it connects.
			if err := w.pruneIfReady(); err != nil {
				w.st.log.Warn("attendance: pruning old rows failed; trying again tomorrow", "store", w.st.where, "error", err.Error())
			}
			if waiting {
				continue
			}
		case <-w.closing:
			w.final(retry, backoff)
			return
		}
		if err := w.flush(); err != nil {
			failures++
			// The retry is armed before the failure is told (OnError):
			// whoever learns of it and moves the clock on finds it set.
			retry.Reset(backoff)
			msg := "attendance not written; keeping it and trying again"
			if !w.st.Ready() {
				msg = "attendance store not reachable; keeping records and trying again"
			}
			w.st.log.Warn(msg, "store", w.st.where, "error", err.Error(), "queued", w.queued(), "retry_in", backoff.String())
			w.onError()
			waiting, backoff = true, min(backoff*2, retryMax)
			continue
		}
		if failures > 0 {
			w.st.log.Info("attendance written again", "store", w.st.where, "failed_writes", failures)
		}
		failures, backoff = 0, retryFirst
	}
}

// final is the loop at Close: write until the queue is empty or Close's
// ctx ends (w.base is cancelled then), backing off between failures.
func (w *Writer) final(retry wallclock.Timer, backoff time.Duration) {
	for {
		err := w.flush()
		if err == nil {
			return
		}
		w.onError()
		if w.base.Err() != nil {
			w.left = w.queued()
			w.st.log.Error("attendance not written at stop", "store", w.st.where, "records", w.left, "error", err.Error())
			return
		}
		w.st.log.Warn("attendance not written; trying again before stopping", "store", w.st.where, "error", err.Error(), "queued", w.queued())
		retry.Reset(backoff)
		backoff = min(backoff*2, retryMax)
		select {
		case <-retry.C():
		case <-w.base.Done():
		}
	}
}

func (w *Writer) pruneIfReady() error {
	if !w.st.Ready() {
		return nil
	}
	return w.st.Prune(w.base)
}

func (w *Writer) queued() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.sessions) + len(w.days) + w.inflight
}

// flush connects a store not ready, then writes the queue in batches until
// it is empty; a failed batch goes back to the queue's head.
func (w *Writer) flush() error {
	ctx, cancel := context.WithTimeout(w.base, attemptLimit)
	err := w.st.connect(ctx)
	cancel()
	if err != nil {
		return err
	}
	for {
		ss, days := w.take()
		if len(ss) == 0 && len(days) == 0 {
			return nil
		}
		ctx, cancel := context.WithTimeout(w.base, attemptLimit)
		err := w.st.write(ctx, ss, days)
		cancel()
		if err != nil {
			w.giveBack(ss, days)
			return err
		}
		w.written()
	}
}

// take removes a batch from the queue.
func (w *Writer) take() ([]attendance.Session, map[dayKey]dayCounts) {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := min(len(w.sessions), batchMax)
	ss := slices.Clone(w.sessions[:n])
	w.sessions = slices.Clone(w.sessions[n:])
	var days map[dayKey]dayCounts
	for k, c := range w.days {
		if len(days) == batchMax {
			break
		}
		if days == nil {
			days = map[dayKey]dayCounts{}
		}
		days[k] = c
		delete(w.days, k)
	}
	w.inflight = len(ss) + len(days)
	return ss, days
}

// written ends a batch that was written.
func (w *Writer) written() {
	w.mu.Lock()
	w.inflight = 0
	w.mu.Unlock()
}

// giveBack puts a batch that was not written back at the queue's head;
// day counts queued meanwhile are added to it.
func (w *Writer) giveBack(ss []attendance.Session, days map[dayKey]dayCounts) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.inflight = 0
	w.sessions = append(ss, w.sessions...)
	for k, c := range days {
		q := w.days[k]
		w.days[k] = dayCounts{q.wrongPINs + c.wrongPINs, q.closed + c.closed}
	}
}
