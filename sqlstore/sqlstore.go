// Package sqlstore is mpmeter's Store on SQL databases: SQLite (embedded, the
// default: one process, one file) and PostgreSQL (several nodes sharing one
// database). Both dialects share every query and code path; they differ in
// how connections are opened, in the DDL of their migrations, in placeholder
// syntax, and in which errors are worth retrying.
//
// Both dialects talk through database/sql. For PostgreSQL that is pgx's
// database/sql driver (pgx/v5/stdlib) rather than pgxpool: one set of queries,
// one transaction helper and one scan path serve both dialects, and pgx still
// caches a prepared statement per connection, so the cost over pgxpool is a
// thin adapter layer, not extra round trips.
//
// Data conventions (the same in both dialects, see migrations/): times are
// stored as integer unix milliseconds and read back in UTC, so sub-millisecond
// precision is dropped; an empty DedupKey or CustomerIdentifier is stored as
// NULL, which never collides with another; zero times are stored as given.
package sqlstore

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"github.com/mpmeter/mpmeter"
	"github.com/mpmeter/mpmeter/seal"
)

// Dialect names, as Store.Dialect reports them.
const (
	DialectSQLite   = "sqlite"
	DialectPostgres = "postgres"
)

// Option configures Open.
type Option func(*config)

type config struct {
	poolSize         int
	statementTimeout time.Duration
	busyTimeout      time.Duration
	noGroupCommit    bool
	commitObserver   func(records int, d time.Duration)
	keyEncryptionKey string
	kdfParams        *seal.Params
	auditObserver    func(events int, d time.Duration)
}

// WithoutGroupCommit makes every SQLite RecordUsage call its own
// transaction (and fsync), as PostgreSQL's always are. For measuring what
// group commit buys; there is no other reason to use it.
func WithoutGroupCommit() Option { return func(c *config) { c.noGroupCommit = true } }

// WithCommitObserver makes f hear about every RecordUsage commit: how many
// records it wrote and how long it took (metrics).
func WithCommitObserver(f func(records int, d time.Duration)) Option {
	return func(c *config) { c.commitObserver = f }
}

// WithAuditWriteObserver makes f hear about every PutAuditEvents
// transaction: how many events and how long it held the database (from
// BEGIN to COMMIT; on SQLite, time the one writer spent on the audit log).
func WithAuditWriteObserver(f func(events int, d time.Duration)) Option {
	return func(c *config) { c.auditObserver = f }
}

// WithPoolSize sets the most connections the store opens: for PostgreSQL the
// whole pool (default 10; every node has its own, and they share the server's
// max_connections), for SQLite the read pool (default 4; writes always use
// one connection of their own).
func WithPoolSize(n int) Option { return func(c *config) { c.poolSize = n } }

// WithStatementTimeout sets PostgreSQL's statement_timeout (default 30s, or
// the DSN's own statement_timeout when it sets one): a statement stuck behind
// a lock or a runaway query fails instead of holding a connection forever.
// Migrations run without it. SQLite ignores it.
func WithStatementTimeout(d time.Duration) Option {
	return func(c *config) { c.statementTimeout = d }
}

// WithBusyTimeout sets SQLite's busy_timeout (default 5s): how long a
// connection waits for a lock another process holds (a backup, the CLI
// against the same file) before failing with SQLITE_BUSY. PostgreSQL ignores
// it.
func WithBusyTimeout(d time.Duration) Option { return func(c *config) { c.busyTimeout = d } }

// Store is an mpmeter.Store on SQLite or PostgreSQL. It is safe for
// concurrent use.
type Store struct {
	d *dialect
	// wdb runs every write transaction. For SQLite it holds exactly one
	// connection: SQLite lets one writer in at a time anyway, and queueing
	// writers in database/sql's pool (which honours each caller's ctx) is
	// cheaper and fairer than letting several connections spin on
	// SQLITE_BUSY. For PostgreSQL wdb and rdb are the same pool.
	wdb *sql.DB
	// rdb runs reads. For SQLite it is a pool of query_only connections:
	// in WAL mode readers never block the writer nor wait for it.
	rdb *sql.DB

	wst [numWriteStmts]*sql.Stmt // prepared on wdb
	rst [numReadStmts]*sql.Stmt  // prepared on rdb

	// inserts[n-1] inserts n records in one statement (prepared on wdb at
	// Open: for SQLite, wdb's one connection is busy inside a transaction
	// when a statement is needed).
	inserts [insertChunk]*sql.Stmt
	// auditInsert inserts auditChunk audit events (prepared on wdb, as
	// inserts).
	auditInsert *sql.Stmt

	// group folds concurrent RecordUsage calls into one transaction
	// (SQLite only; nil otherwise).
	group          *groupCommitter
	commitObserver func(records int, d time.Duration)
	auditObserver  func(events int, d time.Duration)

	// sealer seals secrets at rest; nil: stored as given (secrets.go).
	sealer   *seal.Sealer
	resealed int
	locked   bool

	quotaSQL string // TakeToken's statement in the dialect

	// dicts caches the ids of usage_records' dictionary rows.
	dicts *dictionaries

	closeOnce sync.Once
	closeErr  error
}

var _ mpmeter.Store = (*Store)(nil)

// Open opens the store at dsn and brings its schema up to date. A dsn that
// starts with postgres:// or postgresql:// is a PostgreSQL connection URL
// (any libpq/pgx parameter may be added, e.g. search_path); anything else is
// the path of a SQLite database file, created if missing. ":memory:" is not
// supported: the store opens several connections, and each would see its own
// empty in-memory database.
func Open(ctx context.Context, dsn string, opts ...Option) (*Store, error) {
	var cfg config
	for _, o := range opts {
		o(&cfg)
	}
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		return openPostgres(ctx, dsn, cfg)
	}
	return openSQLite(ctx, dsn, cfg)
}

// Dialect returns "sqlite" or "postgres".
func (s *Store) Dialect() string { return s.d.name }

// Close releases the database. Calls after Close fail; Close itself may be
// called again and returns the first call's result.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		if s.group != nil {
			s.group.close()
		}
		var errs []error
		for _, st := range append(append(append(s.wst[:], s.rst[:]...), s.inserts[:]...), s.auditInsert) {
			if st != nil {
				errs = append(errs, st.Close())
			}
		}
		// Readers first: for SQLite the last connection to close checkpoints
		// the WAL into the database file, and that should be the writer's.
		if s.rdb != s.wdb {
			errs = append(errs, s.rdb.Close())
		}
		errs = append(errs, s.wdb.Close())
		s.closeErr = errors.Join(errs...)
	})
	return s.closeErr
}

// observeCommit reports one RecordUsage commit to the observer, if any.
func (s *Store) observeCommit(records int, d time.Duration) {
	if s.commitObserver != nil {
		s.commitObserver(records, d)
	}
}

// prepare prepares the store's fixed statements: writes on wdb (for SQLite,
// its one connection keeps them for the life of the store), reads on rdb.
func (s *Store) prepare(ctx context.Context) error {
	s.quotaSQL = s.takeTokenQuery()
	for i, q := range writeSQL {
		st, err := s.wdb.PrepareContext(ctx, s.d.rebind(q))
		if err != nil {
			return fmt.Errorf("sqlstore: prepare %q: %w", q, err)
		}
		s.wst[i] = st
	}
	for i, q := range readSQL {
		st, err := s.rdb.PrepareContext(ctx, s.d.rebind(q))
		if err != nil {
			return fmt.Errorf("sqlstore: prepare %q: %w", q, err)
		}
		s.rst[i] = st
	}
	for n := 1; n <= insertChunk; n++ {
		st, err := s.wdb.PrepareContext(ctx, s.d.rebind(insertRecordsSQL(n)))
		if err != nil {
			return fmt.Errorf("sqlstore: prepare the %d-record insert: %w", n, err)
		}
		s.inserts[n-1] = st
	}
	st, err := s.wdb.PrepareContext(ctx, s.d.rebind(insertAuditSQL(auditChunk)))
	if err != nil {
		return fmt.Errorf("sqlstore: prepare the audit insert: %w", err)
	}
	s.auditInsert = st
	return s.backfill(ctx)
}

// txn is one write transaction. Statements are bound to it on first use and
// reused for the rest of it, so a call (or, later, a group commit of many
// callers) pays for binding once per statement, not once per record.
type txn struct {
	ctx   context.Context
	tx    *sql.Tx
	s     *Store
	bound [numWriteStmts]*sql.Stmt
	// pending are the dictionary ids this transaction created or found,
	// published to the cache once it has committed.
	pending []interned
}

func (w *txn) stmt(k writeStmt) *sql.Stmt {
	if w.bound[k] == nil {
		w.bound[k] = w.tx.StmtContext(w.ctx, w.s.wst[k])
	}
	return w.bound[k]
}

// insertStmt returns the transaction's statement inserting rows records.
func (w *txn) insertStmt(rows int) (*sql.Stmt, error) {
	if rows < 1 || rows > len(w.s.inserts) {
		return nil, fmt.Errorf("sqlstore: no insert statement for %d rows", rows)
	}
	return w.tx.StmtContext(w.ctx, w.s.inserts[rows-1]), nil
}

// exec runs an ad-hoc statement (written with ? placeholders) in the
// transaction.
func (w *txn) exec(q string, args ...any) (sql.Result, error) {
	return w.tx.ExecContext(w.ctx, w.s.d.rebind(q), args...)
}

// maxAttempts bounds how often write retries a transaction that lost a race
// (see dialect.retryable) before giving up with the last error.
const maxAttempts = 10

// errRetry is returned inside a transaction that lost a race the database
// did not report as an error (e.g. another caller stored an unexpired
// idempotency token after we looked); write runs the transaction again.
var errRetry = errors.New("sqlstore: lost a race with a concurrent transaction")

// write runs fn in one write transaction and commits it, running it again
// (from a fresh transaction) when it fails in a way the dialect says a retry
// can fix. On error nothing of fn was committed. op names the operation in
// errors.
func (s *Store) write(ctx context.Context, op string, fn func(w *txn) error) error {
	for attempt := 1; ; attempt++ {
		err := s.tryWrite(ctx, fn)
		if err == nil {
			return nil
		}
		if cerr := ctxErr(ctx); cerr != nil {
			// Whatever the driver made of it (SQLite's "interrupted", a
			// dial timeout, a closed connection), the cause is the
			// caller's ctx, and the transaction was rolled back.
			return fmt.Errorf("sqlstore: %s: %w", op, cerr)
		}
		if !s.d.retryable(err, attempt) {
			return fmt.Errorf("sqlstore: %s: %w", op, err)
		}
		if err := sleep(ctx, backoff(attempt)); err != nil {
			return fmt.Errorf("sqlstore: %s: %w", op, err)
		}
	}
}

// commitTimeout bounds a COMMIT that was sent when the caller's ctx ended;
// see tryWrite.
const commitTimeout = time.Minute

// tryWrite runs fn in one transaction and commits it.
//
// The caller's ctx bounds the wait for a connection (for SQLite, the queue
// for the one writer), BEGIN, and every statement fn runs: when it ends, the
// transaction is rolled back. But not COMMIT: the drivers tie COMMIT to the
// transaction's context, and a COMMIT that the client abandons may still
// complete on the server (pgx closes the connection; PostgreSQL commits
// anyway), so the caller would be told "context error" for a write that was
// committed, which the Store contract rules out. So the transaction runs
// under its own context, which follows ctx until just before COMMIT and is
// then detached: once sent, COMMIT is let finish (within commitTimeout) and
// its own result is reported.
func (s *Store) tryWrite(ctx context.Context, fn func(w *txn) error) error {
	conn, err := s.wdb.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close() // back to the pool
	txCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), commitTimeout)
	defer cancel()
	detach := context.AfterFunc(ctx, cancel) // follow ctx until detach()
	tx, err := conn.BeginTx(txCtx, s.d.txOptions)
	if err != nil {
		return err
	}
	w := &txn{ctx: ctx, tx: tx, s: s}
	if err := fn(w); err != nil {
		_ = tx.Rollback() // the error that matters is fn's
		return err
	}
	if !detach() || ctxErr(ctx) != nil {
		_ = tx.Rollback()
		return cmp.Or(ctxErr(ctx), context.Canceled)
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	s.dicts.publish(w.pending)
	return nil
}

// ctxErr is ctx.Err(), also when ctx's deadline has passed but its timer has
// not fired yet: a driver's network deadline (set from ctx's) can expire
// first, and its error is then really ctx's.
func ctxErr(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if d, ok := ctx.Deadline(); ok && !time.Now().Before(d) {
		return context.DeadlineExceeded
	}
	return nil
}

// backoff is a jittered, capped exponential delay before retry attempt+1,
// so that transactions which deadlocked each other do not collide again.
func backoff(attempt int) time.Duration {
	d := time.Millisecond << min(attempt, 7) // 2ms .. 128ms
	return d/2 + rand.N(d/2)
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// readErr turns a read's error into the Store contract's: sql.ErrNoRows
// becomes ErrNotFound (what names the row), a failure caused by ctx is ctx's
// error, anything else is the database's.
func readErr(ctx context.Context, err error, what string, args ...any) error {
	name := fmt.Sprintf(what, args...)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return fmt.Errorf("sqlstore: %s: %w", name, mpmeter.ErrNotFound)
	case ctxErr(ctx) != nil:
		return fmt.Errorf("sqlstore: %s: %w", name, ctxErr(ctx))
	default:
		return fmt.Errorf("sqlstore: %s: %w", name, err)
	}
}

// ms and fromMS convert between time.Time and the stored unix milliseconds.
// The zero time round-trips: fromMS(ms(time.Time{})).IsZero() is true.
func ms(t time.Time) int64 { return t.UnixMilli() }

func fromMS(v int64) time.Time { return time.UnixMilli(v).UTC() }

// nullable stores "" as NULL, for columns where absent must not collide in a
// UNIQUE constraint.
func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}
