package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/mpmeter/mpmeter"
)

// groupCommitter folds concurrent RecordUsage calls into one SQLite write
// transaction: one BEGIN, one COMMIT and one fsync of the WAL for the whole
// group, instead of one per call. SQLite has one writer anyway, so callers
// would otherwise queue for it one commit (and one fsync) at a time.
//
// Each caller's work runs inside its own SAVEPOINT: an error of one caller
// (an idempotency conflict, a duplicate id) rolls back only its records, and
// the others still commit. Every caller is answered only after the COMMIT
// that holds its records has returned, so a success is as durable as
// without grouping; if the COMMIT fails, every caller of the group gets the
// error and none of their records is stored.
//
// Batching is natural rather than timed: while one group commits, callers
// queue up, and the next group takes everything queued (up to
// maxGroupRecords). An idle store commits a lone call at once.
type groupCommitter struct {
	s     *Store
	queue chan *groupCall
	stop  chan struct{}
	done  chan struct{}

	// closing guards queue: submit sends under the read lock, close sets
	// closed under the write lock, so nothing is queued after run's final
	// drain and every queued call is answered.
	closing sync.RWMutex
	closed  bool
}

type groupCall struct {
	ctx  context.Context
	prep *preparedRecords
	tok  *mpmeter.IdempotencyToken
	out  []mpmeter.MeteringOutcome
	err  error
	done chan struct{}
}

// maxGroupRecords bounds one group's size, and so the latency a caller pays
// for the callers ahead of it in its group.
const maxGroupRecords = 4096

var errClosed = errors.New("sqlstore: store is closed")

func newGroupCommitter(s *Store) *groupCommitter {
	g := &groupCommitter{s: s, queue: make(chan *groupCall, 1024), stop: make(chan struct{}), done: make(chan struct{})}
	go g.run()
	return g
}

// submit queues a call and waits for the commit that answers it. Once the
// committer has taken the call, submit waits for its outcome even if ctx
// ends: the answer must say whether the records were stored.
func (g *groupCommitter) submit(ctx context.Context, prep *preparedRecords, tok *mpmeter.IdempotencyToken) ([]mpmeter.MeteringOutcome, error) {
	c := &groupCall{ctx: ctx, prep: prep, tok: tok, done: make(chan struct{})}
	g.closing.RLock()
	if g.closed {
		g.closing.RUnlock()
		return nil, errClosed
	}
	select {
	case g.queue <- c:
	case <-ctx.Done():
		g.closing.RUnlock()
		return nil, fmt.Errorf("sqlstore: RecordUsage: %w", ctx.Err())
	}
	g.closing.RUnlock()
	<-c.done // run answers every call it was given, also when it stops
	return c.out, c.err
}

func (g *groupCommitter) run() {
	defer close(g.done)
	for {
		var first *groupCall
		select {
		case first = <-g.queue:
		case <-g.stop:
			for {
				select {
				case c := <-g.queue:
					c.err = errClosed
					close(c.done)
				default:
					return
				}
			}
		}
		group := []*groupCall{first}
		n := len(first.prep.recs)
	drain:
		for n < maxGroupRecords {
			select {
			case c := <-g.queue:
				group = append(group, c)
				n += len(c.prep.recs)
			default:
				break drain
			}
		}
		g.commit(group)
	}
}

// commit runs one group in one transaction and answers its callers.
func (g *groupCommitter) commit(group []*groupCall) {
	live := make([]*groupCall, 0, len(group))
	for _, c := range group {
		// A caller whose ctx ended while queued is not written at all.
		if err := c.ctx.Err(); err != nil {
			c.err = fmt.Errorf("sqlstore: RecordUsage: %w", err)
			close(c.done)
			continue
		}
		live = append(live, c)
	}
	if len(live) == 0 {
		return
	}
	start := time.Now()
	records := 0
	// The transaction's statements run under a context no caller can
	// cancel: interrupting SQLite mid-statement would roll back the whole
	// group, not just that caller's part.
	attempt := 0
	err := g.s.write(context.Background(), "RecordUsage", func(w *txn) error {
		attempt++
		records = 0
		for _, c := range live {
			c.out, c.err = nil, nil
			mark := len(w.pending)
			if _, err := w.stmt(wSavepoint).ExecContext(w.ctx); err != nil {
				return err
			}
			out, err := recordUsageTx(w, c.prep, c.tok)
			if err != nil && g.s.d.retryable(err, attempt) {
				// A race the transaction must be run again for (none on
				// SQLite's one writer today, but the dialect decides): the
				// whole group runs again, as one caller's transaction
				// would, instead of failing this caller.
				return err
			}
			if err != nil {
				if _, rerr := w.stmt(wRollbackToSavepoint).ExecContext(w.ctx); rerr != nil {
					return rerr
				}
				// The rows this caller created are gone with its savepoint.
				w.pending = w.pending[:mark]
				c.err = fmt.Errorf("sqlstore: RecordUsage: %w", err)
			} else {
				c.out = out
				records += len(c.prep.recs)
			}
			if _, err := w.stmt(wReleaseSavepoint).ExecContext(w.ctx); err != nil {
				return err
			}
		}
		return nil
	})
	if err == nil {
		g.s.observeCommit(records, time.Since(start))
	}
	for _, c := range live {
		if err != nil {
			c.out, c.err = nil, err
		}
		close(c.done)
	}
}

// close stops the committer after the group in progress.
func (g *groupCommitter) close() {
	g.closing.Lock()
	g.closed = true
	g.closing.Unlock()
	close(g.stop)
	<-g.done
}
