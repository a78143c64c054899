package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	"modernc.org/sqlite" // registers the "sqlite" driver
	sqlite3 "modernc.org/sqlite/lib"
)

// openSQLite opens the SQLite database file at path.
//
// The connection settings, each deliberate:
//
//   - journal_mode=WAL. A commit appends to the write-ahead log and is
//     complete once it is in the log; readers keep reading the last committed
//     state meanwhile, so reads never block the writer nor the writer reads.
//     Against kill -9 this is what counts: once COMMIT returns the log frames
//     are in the operating system (written with write(2)), which keeps them
//     when the process dies, and the next open replays the log.
//   - synchronous=FULL. In WAL mode every commit also fsyncs the log before
//     COMMIT returns. That is what survives power loss or a kernel crash,
//     where the page cache is lost: NORMAL would only fsync at checkpoints,
//     so the last commits before a power cut could vanish after their 200.
//     The price is one fsync per transaction; group commit amortises it.
//   - fullfsync=1. On macOS fsync(2) does not flush the drive's own cache;
//     F_FULLFSYNC does. Without it FULL is not durable there. Other systems
//     ignore it.
//   - busy_timeout. Another process may hold the write lock (a backup, the
//     CLI run against the same file, a second server by mistake); wait this
//     long for it instead of failing at once with SQLITE_BUSY.
//   - foreign_keys=on. SQLite does not enforce REFERENCES without it, per
//     connection.
//   - _txlock=immediate (writer): write transactions start with BEGIN
//     IMMEDIATE, see sqliteDialect.
//   - query_only (readers): the read pool cannot write by mistake, which
//     would bypass the single-writer rule.
//   - temp_store=MEMORY. Group commit gives each caller a SAVEPOINT, and
//     SQLite keeps the pages a savepoint may roll back in a sub-journal, a
//     temporary file by default: a write(2) per page per record. In memory
//     it costs nothing durable: a sub-journal only matters until its
//     transaction ends, and the WAL alone makes commits durable.
//   - cache_size=-8192 (8 MiB, the writer only; readers keep the default
//     2 MiB). Bigger is slower here, not faster: at every COMMIT SQLite
//     truncates the page cache to the database's size, and when it takes
//     the slow path that walks every slot of the cache's hash table, whose
//     size follows the cache's. With 64 MiB that walk was 8% of the whole
//     process's CPU under BatchMeterUsage load and cost ~20% of the
//     records/s (docs/benchmarks.md). Pages that miss the cache come back
//     from the operating system's page cache with one pread.
func openSQLite(ctx context.Context, path string, cfg config) (*Store, error) {
	if path == "" || path == ":memory:" || strings.HasPrefix(path, "file:") {
		return nil, fmt.Errorf("sqlstore: SQLite needs a database file path, not %q", path)
	}
	if err := createPrivate(path); err != nil {
		return nil, err
	}
	busy := cfg.busyTimeout
	if busy <= 0 {
		busy = 5 * time.Second
	}
	readers := cfg.poolSize
	if readers <= 0 {
		readers = max(4, runtime.GOMAXPROCS(0))
	}

	common := url.Values{}
	common.Set("_busy_timeout", strconv.FormatInt(busy.Milliseconds(), 10))
	common.Set("_synchronous", "FULL") // readers too: the last connection to close checkpoints
	common.Set("_foreign_keys", "on")
	common.Add("_pragma", "fullfsync(1)")
	common.Add("_pragma", "temp_store(MEMORY)")
	// The path goes in a file: URI, escaped, so that a '?' or '#' in it is
	// part of the name and not the start of parameters.
	base := "file:" + (&url.URL{Path: path}).EscapedPath() + "?"

	wq := cloneValues(common)
	wq.Set("_journal_mode", "WAL")
	wq.Set("_txlock", "immediate")
	wq.Add("_pragma", "cache_size(-8192)")

	wdb, err := sql.Open("sqlite", base+wq.Encode())
	if err != nil {
		return nil, fmt.Errorf("sqlstore: open %s: %w", path, err)
	}
	// The single writer: one connection, kept open for good, so its
	// prepared statements live as long as the store.
	wdb.SetMaxOpenConns(1)
	wdb.SetMaxIdleConns(1)
	wdb.SetConnMaxLifetime(0)
	wdb.SetConnMaxIdleTime(0)
	if err := connectSQLite(ctx, wdb, busy); err != nil {
		wdb.Close()
		return nil, fmt.Errorf("sqlstore: open %s: %w", path, err)
	}
	if err := migrate(ctx, wdb, sqliteDialect, DialectSQLite); err != nil {
		wdb.Close()
		return nil, fmt.Errorf("sqlstore: open %s: %w", path, err)
	}

	rq := cloneValues(common)
	rq.Set("_query_only", "on")
	rdb, err := sql.Open("sqlite", base+rq.Encode())
	if err != nil {
		wdb.Close()
		return nil, fmt.Errorf("sqlstore: open %s: %w", path, err)
	}
	rdb.SetMaxOpenConns(readers)
	rdb.SetMaxIdleConns(readers)

	s := &Store{d: sqliteDialect, wdb: wdb, rdb: rdb, commitObserver: cfg.commitObserver, auditObserver: cfg.auditObserver, dicts: newDictionaries()}
	if !cfg.noGroupCommit {
		s.group = newGroupCommitter(s)
	}
	if err := s.prepare(ctx); err != nil {
		s.Close()
		return nil, err
	}
	if err := s.setupSecrets(ctx, cfg); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// connectSQLite opens the writer's connection (applying the DSN's settings)
// and checks them. Switching a new database file to WAL needs an exclusive
// lock, and SQLite reports SQLITE_BUSY for it at once, without waiting
// busy_timeout, when another process is opening the same new file at the
// same moment; so that step is retried here, for up to busy_timeout.
func connectSQLite(ctx context.Context, db *sql.DB, busy time.Duration) error {
	deadline := time.Now().Add(busy)
	for attempt := 1; ; attempt++ {
		err := checkSQLite(ctx, db)
		var se *sqlite.Error
		if err == nil || !errors.As(err, &se) || se.Code()&0xff != sqlite3.SQLITE_BUSY || time.Now().After(deadline) {
			return err
		}
		if err := sleep(ctx, backoff(attempt)); err != nil {
			return err
		}
	}
}

// checkSQLite reads back the settings the writer's DSN asked for. A DSN
// parameter the driver does not know is ignored silently, and WAL cannot be
// entered on every filesystem; a store that is not in the mode its
// durability argument assumes must not start.
func checkSQLite(ctx context.Context, db *sql.DB) error {
	checks := []struct{ pragma, want string }{
		{"journal_mode", "wal"},
		{"synchronous", "2"}, // FULL
		{"foreign_keys", "1"},
	}
	for _, c := range checks {
		var got string
		if err := db.QueryRowContext(ctx, "PRAGMA "+c.pragma).Scan(&got); err != nil {
			return fmt.Errorf("PRAGMA %s: %w", c.pragma, err)
		}
		if !strings.EqualFold(got, c.want) {
			return errors.New("PRAGMA " + c.pragma + " is " + got + ", want " + c.want)
		}
	}
	return nil
}

func cloneValues(v url.Values) url.Values {
	c := make(url.Values, len(v))
	for k, vs := range v {
		c[k] = append([]string(nil), vs...)
	}
	return c
}

// createPrivate creates the database file, if it does not exist yet, readable
// by its owner only (0600): it holds access key secrets. SQLite gives the
// -wal and -shm files it creates beside it the database file's permissions,
// so they are 0600 too. An existing file keeps its mode: that is the
// operator's choice.
func createPrivate(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("sqlstore: creating %s: %w", path, err)
	}
	return f.Close()
}
