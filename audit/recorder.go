// Package audit is mpmeter's audit log: every call, data plane and admin,
// recorded as a CloudTrail-style mpmeter.AuditEvent in the store's own
// database, without slowing the call down.
//
// A request never waits for the audit log. Recording an event builds it on
// the request's goroutine (the redacted, size-capped parameters and
// response, marshalled once) and hands it to a bounded queue without
// blocking; when the queue is full the event is dropped and counted
// (mpmeter_audit_dropped_total). One goroutine per Recorder drains the queue
// and writes batches with Store.PutAuditEvents: every FlushInterval (500
// ms) or as soon as BatchSize events are waiting, so the log is at most
// about FlushInterval plus one write behind the API. Close writes
// everything queued before it returns.
//
// The loss window: events are in memory until their batch commits. A
// process killed without Close (kill -9, a crash, a power cut) loses the
// events of at most the last FlushInterval plus the batch being written;
// the API's own writes (usage records) are unaffected, they commit before
// the call is answered. A database failure drops the batch after a few
// retries (reason write_failed) and logs it.
//
// The data plane is captured by middleware (Recorder implements
// middleware.Recorder); the admin API records its calls with Record or
// wraps its handler with AdminMiddleware. See docs/audit.md.
package audit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/mpmeter/mpmeter"
)

// Store is the part of mpmeter.Store the audit log writes to.
type Store interface {
	PutAuditEvents(ctx context.Context, events []mpmeter.AuditEvent) error
	PurgeAuditEvents(ctx context.Context, before time.Time, limit int) (int, error)
}

// Observer hears about what the writer does (package metrics). It must be
// fast and safe for concurrent use.
type Observer interface {
	// AuditWritten: a batch of events was committed, in d.
	AuditWritten(events int, d time.Duration)
	// AuditDropped: events were lost, for reason (one of the Drop*
	// constants).
	AuditDropped(reason string, events int)
	// AuditPurged: events older than the retention were deleted.
	AuditPurged(events int)
}

// Reasons an event is dropped.
const (
	// DropQueueFull: the writer fell behind and the queue was full.
	DropQueueFull = "queue_full"
	// DropWriteFailed: the database refused the batch, also on retry.
	DropWriteFailed = "write_failed"
	// DropClosed: the event came after Close.
	DropClosed = "closed"
)

// Defaults of Config.
const (
	DefaultQueueSize     = 16384
	DefaultQueueBytes    = 64 << 20
	DefaultFlushInterval = 500 * time.Millisecond
	DefaultBatchSize     = 1024
	DefaultPurgeInterval = 10 * time.Minute
	// DefaultRetention is mpmeter serve's --audit-retention.
	DefaultRetention = 30 * 24 * time.Hour
	// PurgeBatch is how many events one purge transaction deletes.
	PurgeBatch = 1000
)

// Config configures New. Zero values mean the defaults.
type Config struct {
	Store Store
	// Clock stamps events and judges the retention (the service clock).
	Clock    mpmeter.Clock
	Observer Observer // nil: none
	Logger   *slog.Logger
	// QueueSize bounds the events waiting to be written, QueueBytes their
	// parameters' and responses' bytes; past either, events are dropped.
	QueueSize  int
	QueueBytes int64
	// FlushInterval is the longest an event waits for its batch when the
	// API is quiet; BatchSize the most events one batch writes.
	FlushInterval time.Duration
	BatchSize     int
	// Retention is how long events are kept (by EventTime, on the service
	// clock); 0 keeps them forever. PurgeInterval is how often the purger
	// runs (the first run is at start).
	Retention     time.Duration
	PurgeInterval time.Duration
}

// Recorder records audit events. Its methods are safe for concurrent use.
type Recorder struct {
	cfg     Config
	queue   chan queued
	flushes chan chan struct{}
	stop    chan struct{}
	done    chan struct{}
	bytes   atomic.Int64
	// inflight counts the API calls begun and not yet recorded
	// (BeginRequest, RecordRequest).
	inflight atomic.Int64

	// closing guards queue the way groupCommitter's does: Record sends
	// under the read lock, Close sets closed under the write lock, so no
	// event is queued after the writer's final drain.
	closing sync.RWMutex
	closed  bool
	once    sync.Once
}

type queued struct {
	ev   mpmeter.AuditEvent
	size int64
}

// New starts a Recorder's writer (and its purger, with a Retention). Stop
// it with Close.
func New(cfg Config) (*Recorder, error) {
	if cfg.Store == nil || cfg.Clock == nil {
		return nil, errors.New("audit: Config.Store and Config.Clock are required")
	}
	if cfg.Retention < 0 {
		return nil, fmt.Errorf("audit: negative retention %s", cfg.Retention)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.QueueSize <= 0 {
		cfg.QueueSize = DefaultQueueSize
	}
	if cfg.QueueBytes <= 0 {
		cfg.QueueBytes = DefaultQueueBytes
	}
	if cfg.FlushInterval <= 0 {
		cfg.FlushInterval = DefaultFlushInterval
	}
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = DefaultBatchSize
	}
	if cfg.PurgeInterval <= 0 {
		cfg.PurgeInterval = DefaultPurgeInterval
	}
	r := &Recorder{
		cfg:     cfg,
		queue:   make(chan queued, cfg.QueueSize),
		flushes: make(chan chan struct{}),
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
	}
	var wg sync.WaitGroup
	wg.Go(r.write)
	if cfg.Retention > 0 {
		wg.Go(r.purgeLoop)
	}
	go func() { wg.Wait(); close(r.done) }()
	return r, nil
}

// Record queues ev to be written, filling what it leaves empty: EventID, EventTime
// (now), EventVersion, EventType, EventCategory. It never blocks: when the
// queue is full, or after Close, the event is dropped and counted.
// ev.RequestParameters and ev.ResponseElements must already be redacted
// (Redact). A nil Recorder (the audit log is off) records nothing.
func (r *Recorder) Record(_ context.Context, ev mpmeter.AuditEvent) {
	if r == nil { // the audit log is off
		return
	}
	r.fill(&ev)
	size := int64(len(ev.RequestParameters) + len(ev.ResponseElements) + len(ev.ErrorMessage) + len(ev.UserAgent))
	r.closing.RLock()
	defer r.closing.RUnlock()
	if r.closed {
		r.dropped(DropClosed, 1)
		return
	}
	if r.bytes.Add(size) > r.cfg.QueueBytes {
		r.bytes.Add(-size)
		r.dropped(DropQueueFull, 1)
		return
	}
	select {
	case r.queue <- queued{ev: ev, size: size}:
	default:
		r.bytes.Add(-size)
		r.dropped(DropQueueFull, 1)
	}
}

func (r *Recorder) fill(ev *mpmeter.AuditEvent) {
	if ev.EventTime.IsZero() {
		ev.EventTime = r.cfg.Clock.Now()
	}
	ev.EventTime = ev.EventTime.UTC()
	if ev.EventID == "" {
		id, err := uuid.NewV7()
		if err != nil {
			id = uuid.New()
		}
		ev.EventID = id.String()
	}
	if ev.EventVersion == "" {
		ev.EventVersion = mpmeter.AuditEventVersion
	}
	if ev.EventType == "" {
		ev.EventType = mpmeter.AuditEventTypeAPICall
	}
	if ev.EventCategory == "" {
		ev.EventCategory = "Management"
		ev.ManagementEvent = true
	}
}

func (r *Recorder) dropped(reason string, n int) {
	if r.cfg.Observer != nil {
		r.cfg.Observer.AuditDropped(reason, n)
	}
}

// Flush waits until no API call is in flight (a call's response can reach
// its client a moment before the call is recorded), then writes every event
// queued and returns once they are committed (or dropped), or when ctx
// ends. Tests use it to read the log at once, between calls; under
// constant load it may wait for a pause. The server never needs it.
func (r *Recorder) Flush(ctx context.Context) error {
	for r.inflight.Load() > 0 {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Millisecond):
		}
	}
	reply := make(chan struct{})
	select {
	case r.flushes <- reply:
	case <-r.done:
		return errors.New("audit: recorder is closed")
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-reply:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close stops accepting events, writes everything queued and stops the
// purger. It returns when that is done, or with ctx's error when ctx ends
// first (the writer then finishes on its own). Call it after the HTTP
// server has shut down (no request in flight) and before the store is
// closed. Calling it again waits for the first call's work.
func (r *Recorder) Close(ctx context.Context) error {
	r.once.Do(func() {
		r.closing.Lock()
		r.closed = true
		r.closing.Unlock()
		close(r.stop)
	})
	select {
	case <-r.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("audit: flushing the queue at close: %w", ctx.Err())
	}
}

// write is the writer goroutine: batches by size or by time.
func (r *Recorder) write() {
	ticker := time.NewTicker(r.cfg.FlushInterval)
	defer ticker.Stop()
	batch := make([]mpmeter.AuditEvent, 0, r.cfg.BatchSize)
	var batchBytes int64
	add := func(q queued) {
		batch = append(batch, q.ev)
		batchBytes += q.size
	}
	flush := func() {
		if len(batch) > 0 {
			r.writeBatch(batch)
			r.bytes.Add(-batchBytes)
			clear(batch)
			batch, batchBytes = batch[:0], 0
		}
	}
	// drain takes everything queued now, writing full batches on the way.
	drain := func() {
		for {
			select {
			case q := <-r.queue:
				add(q)
				if len(batch) >= r.cfg.BatchSize {
					flush()
				}
			default:
				return
			}
		}
	}
	for {
		select {
		case q := <-r.queue:
			add(q)
			if len(batch) >= r.cfg.BatchSize {
				flush()
			}
		case <-ticker.C:
			flush()
		case reply := <-r.flushes:
			drain()
			flush()
			close(reply)
		case <-r.stop:
			drain()
			flush()
			return
		}
	}
}

// writeAttempts bounds how often a batch is tried before it is dropped;
// the waits between them add up to about a second, during which new
// events queue (and past the queue's size are dropped, never waited for).
const writeAttempts = 4

func (r *Recorder) writeBatch(batch []mpmeter.AuditEvent) {
	var err error
	for attempt := 1; attempt <= writeAttempts; attempt++ {
		start := time.Now()
		// Not the request's context (long gone) nor one Close cancels: a
		// batch that was started is let finish, bounded by the timeout.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err = r.cfg.Store.PutAuditEvents(ctx, batch)
		cancel()
		if err == nil {
			if r.cfg.Observer != nil {
				r.cfg.Observer.AuditWritten(len(batch), time.Since(start))
			}
			return
		}
		if attempt < writeAttempts {
			time.Sleep(time.Duration(attempt*attempt) * 50 * time.Millisecond)
		}
	}
	r.cfg.Logger.Error("audit log: dropping a batch the database refused", "events", len(batch), "err", err)
	r.dropped(DropWriteFailed, len(batch))
}

// Purge deletes the events older than the retention now, PurgeBatch at a
// time (short transactions, so the API's writes are never held up long),
// and returns how many it deleted. Without a retention it deletes nothing.
func (r *Recorder) Purge(ctx context.Context) (int, error) {
	if r.cfg.Retention <= 0 {
		return 0, nil
	}
	before := r.cfg.Clock.Now().Add(-r.cfg.Retention)
	total := 0
	for {
		n, err := r.cfg.Store.PurgeAuditEvents(ctx, before, PurgeBatch)
		total += n
		if n > 0 && r.cfg.Observer != nil {
			r.cfg.Observer.AuditPurged(n)
		}
		if err != nil || n < PurgeBatch {
			return total, err
		}
		// Let the writers in between two batches.
		select {
		case <-ctx.Done():
			return total, ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func (r *Recorder) purgeLoop() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-r.stop
		cancel()
	}()
	ticker := time.NewTicker(r.cfg.PurgeInterval)
	defer ticker.Stop()
	for {
		if n, err := r.Purge(ctx); err != nil && ctx.Err() == nil {
			r.cfg.Logger.Error("audit log: purge failed", "err", err)
		} else if n > 0 {
			r.cfg.Logger.Info("audit log: purged events past the retention", "events", n, "retention", r.cfg.Retention.String())
		}
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
	}
}
