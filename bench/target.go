package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/mpmeter/mpmeter"
	"github.com/mpmeter/mpmeter/internal/pgadmin"
	"github.com/mpmeter/mpmeter/keys"
	"github.com/mpmeter/mpmeter/metrics"
	"github.com/mpmeter/mpmeter/seed"
	"github.com/mpmeter/mpmeter/server"
	"github.com/mpmeter/mpmeter/sqlstore"
)

// Target kinds.
const (
	// KindSQLite: mpmeter on a SQLite file in a new temporary directory.
	KindSQLite = "sqlite"
	// KindPostgres: mpmeter on a new PostgreSQL database.
	KindPostgres = "postgres"
	// KindPostgres2: two mpmeter nodes (two servers, two pools) on one new
	// PostgreSQL database; the load is spread over both.
	KindPostgres2 = "postgres2"
	// KindCeiling: the same server on a store whose usage write is
	// switched off (discardUsage: records answered Success, never stored),
	// on SQLite for the marketplace reads.
	KindCeiling = "ceiling"
)

// Target name suffixes: a target named "sqlite:noaudit" is the sqlite
// target with the audit log off, "sqlite:audit" with it on, whatever
// TargetOptions.NoAudit says; back-to-back A/B runs name both.
const (
	AuditSuffix   = ":audit"
	NoAuditSuffix = ":noaudit"
)

// ParseTarget splits a target name into its kind and whether its servers
// record the audit log: as mpmeter serve does (on) unless noAudit, the
// ceiling never (it stores nothing), a suffix overriding both.
func ParseTarget(name string, noAudit bool) (kind string, audit bool) {
	switch {
	case strings.HasSuffix(name, AuditSuffix):
		return strings.TrimSuffix(name, AuditSuffix), true
	case strings.HasSuffix(name, NoAuditSuffix):
		return strings.TrimSuffix(name, NoAuditSuffix), false
	}
	return name, !noAudit && name != KindCeiling
}

// TargetOptions tune Start.
type TargetOptions struct {
	// NoAudit switches the servers' audit log off (see ParseTarget).
	NoAudit bool
	// Dir is where SQLite targets put their temporary directory; empty
	// means the system's temporary directory. It should be a real disk:
	// the benchmark measures durable commits.
	Dir string
	// Template is a seeded SQLite file (NewTemplate) that SQLite targets
	// copy instead of applying the seed.
	Template *Template
	// Logger is the servers' logger; nil means errors only, to stderr (no
	// per-request lines: logging every request is not what is measured,
	// and the ceiling's and unencrypted keys' warnings are expected).
	Logger *slog.Logger
	// SeedWorkers is how many seed puts PostgreSQL targets run at once
	// (default 16).
	SeedWorkers int
	// Progress, when set, gets a line per setup step.
	Progress io.Writer
	// KeepDB, when set, is where a SQLite target's database file is moved
	// when it stops, instead of being removed: a growth run leaves its
	// filled store behind, to measure a separate server process on it.
	KeepDB string
}

// Target is a running in-process server (or several nodes of one).
type Target struct {
	// Name is the target as named (with its suffix), Kind its kind.
	Name string
	Kind string
	// Audit says whether the servers record the audit log.
	Audit     bool
	Endpoints []string
	// Store is the first node's store (for checks and the growth
	// pre-fill).
	Store mpmeter.Store
	// DBPath is the SQLite file; DSN the PostgreSQL database created for
	// this target (dropped by Stop).
	DBPath, DSN string
	// SetupSeconds is how long creating and seeding the database took.
	SetupSeconds float64

	stops   []func()
	flushes []func(context.Context) error
}

// FlushAudit waits until every node's audit log has written what it
// queued (nothing to do with the audit log off).
func (t *Target) FlushAudit(ctx context.Context) error {
	for _, f := range t.flushes {
		if err := f(ctx); err != nil {
			return err
		}
	}
	return nil
}

// Endpoint is the first node's endpoint.
func (t *Target) Endpoint() string { return t.Endpoints[0] }

// Stop shuts the servers down and removes the database.
func (t *Target) Stop() {
	for i := len(t.stops) - 1; i >= 0; i-- {
		t.stops[i]()
	}
	t.stops = nil
}

// DBBytes is the database's size on disk: the SQLite file and its WAL, or
// pg_database_size.
func (t *Target) DBBytes(ctx context.Context) (int64, error) {
	if t.DBPath != "" {
		var n int64
		for _, suffix := range []string{"", "-wal"} {
			fi, err := os.Stat(t.DBPath + suffix)
			if err == nil {
				n += fi.Size()
			} else if !errors.Is(err, os.ErrNotExist) {
				return 0, err
			}
		}
		return n, nil
	}
	if t.DSN != "" {
		return pgadmin.Size(ctx, t.DSN)
	}
	return 0, errors.New("bench: target has no database")
}

// Template is a seeded SQLite database that targets copy, so that a large
// marketplace is seeded once per benchmark, not once per target.
type Template struct {
	Path string
	dir  string
}

// Remove deletes the template.
func (t *Template) Remove() { os.RemoveAll(t.dir) }

// NewTemplate seeds m into a new SQLite file. It is built in dir; empty
// means /dev/shm when it exists (seeding does one commit per item, and a
// commit on tmpfs costs no fsync), else the temporary directory. The copies
// targets make live on a real disk (TargetOptions.Dir).
func NewTemplate(ctx context.Context, m *seed.File, dir string) (*Template, error) {
	if dir == "" {
		dir = os.TempDir()
		if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() {
			dir = "/dev/shm"
		}
	}
	d, err := os.MkdirTemp(dir, "mpmeter-bench-template-")
	if err != nil {
		return nil, err
	}
	t := &Template{Path: filepath.Join(d, "template.db"), dir: d}
	st, err := sqlstore.Open(ctx, t.Path)
	if err != nil {
		t.Remove()
		return nil, err
	}
	_, err = m.ApplyConcurrently(ctx, st, time.Now(), server.DefaultTokenTTL, 4)
	if err == nil {
		err = ensureSigningKey(ctx, st)
	}
	if cerr := st.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Remove()
		return nil, err
	}
	return t, nil
}

func (t *Template) copyTo(path string) error {
	for _, suffix := range []string{"", "-wal"} {
		src, err := os.Open(t.Path + suffix)
		if errors.Is(err, os.ErrNotExist) && suffix != "" {
			continue
		} else if err != nil {
			return err
		}
		dst, err := os.Create(path + suffix)
		if err == nil {
			_, err = io.Copy(dst, src)
			if err == nil {
				err = dst.Sync()
			}
			if cerr := dst.Close(); err == nil {
				err = cerr
			}
		}
		src.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

// Start starts an in-process target of kind (KindSQLite, KindPostgres,
// KindPostgres2, KindCeiling) seeded with m. PostgreSQL kinds need dsn, a
// URL of a database on the server that the user may create databases from:
// Start creates a new database bench_<random> there and Stop drops it. Call
// Stop when done, also after an error from the benchmark.
//
// Servers run with pprof label side=server (the load generator's workers
// carry side=client), so a CPU profile of a run splits the two.
func Start(ctx context.Context, name, dsn string, m *seed.File, opts TargetOptions) (_ *Target, err error) {
	kind, withAudit := ParseTarget(name, opts.NoAudit)
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	}
	if opts.SeedWorkers <= 0 {
		opts.SeedWorkers = 16
	}
	progress := func(format string, args ...any) {
		if opts.Progress != nil {
			fmt.Fprintf(opts.Progress, "  [%s] "+format+"\n", append([]any{name}, args...)...)
		}
	}
	t := &Target{Name: name, Kind: kind, Audit: withAudit}
	defer func() {
		if err != nil {
			t.Stop()
		}
	}()
	began := time.Now()
	cfg := server.Config{Logger: opts.Logger, AuditOff: !withAudit}
	var db string // what the nodes' stores open
	nodes := 1
	switch kind {
	case KindSQLite, KindCeiling:
		dir, err := os.MkdirTemp(opts.Dir, "mpmeter-bench-"+kind+"-")
		if err != nil {
			return nil, err
		}
		t.DBPath = filepath.Join(dir, "bench.db")
		keep := opts.KeepDB
		t.stops = append(t.stops, func() {
			// The servers have stopped (stops run last first), so the
			// last connection has closed and checkpointed: the file alone
			// is the whole database.
			if keep != "" && kind == KindSQLite {
				if err := os.Rename(t.DBPath, keep); err != nil {
					progress("keeping the database: %v", err)
				} else {
					progress("database kept at %s", keep)
				}
			}
			os.RemoveAll(dir)
		})
		if opts.Template != nil {
			if err := opts.Template.copyTo(t.DBPath); err != nil {
				return nil, fmt.Errorf("bench: copying the seeded template: %w", err)
			}
		} else {
			cfg.Seed = m // server.New applies it
		}
		db = t.DBPath
	case KindPostgres, KindPostgres2:
		if dsn == "" {
			return nil, errors.New("bench: a PostgreSQL target needs a DSN (--postgres-dsn or MPMETER_BENCH_POSTGRES_DSN)")
		}
		if kind == KindPostgres2 {
			nodes = 2
		}
		t.DSN, err = pgadmin.CreateDatabase(ctx, dsn, "bench")
		if err != nil {
			return nil, fmt.Errorf("bench: %w", err)
		}
		created := t.DSN
		t.stops = append(t.stops, func() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if err := pgadmin.DropDatabase(ctx, dsn, created); err != nil {
				progress("%v", err)
			}
		})
		name, _ := pgadmin.Name(created)
		progress("created database %s; seeding", name)
		// Seed through a store of its own whose sessions commit without
		// waiting for the WAL flush: seeding is setup, not what is measured.
		st, err := sqlstore.Open(ctx, withParam(t.DSN, "synchronous_commit", "off"), sqlstore.WithPoolSize(opts.SeedWorkers))
		if err != nil {
			return nil, err
		}
		_, err = m.ApplyConcurrently(ctx, st, time.Now(), server.DefaultTokenTTL, opts.SeedWorkers)
		if err == nil {
			err = ensureSigningKey(ctx, st)
		}
		st.Close()
		if err != nil {
			return nil, err
		}
		db = t.DSN
	default:
		return nil, fmt.Errorf("bench: unknown target %q (want %s, %s, %s or %s)", kind, KindSQLite, KindPostgres, KindPostgres2, KindCeiling)
	}
	progress("database ready in %.1fs; starting %d node(s)", time.Since(began).Seconds(), nodes)

	for range nodes {
		var srv *server.Server
		var st *sqlstore.Store
		var ln net.Listener
		var hs *http.Server
		var startErr error
		// Everything the server starts (its connection goroutines, the
		// database's) inherits the label.
		pprof.Do(ctx, pprof.Labels("side", "server"), func(ctx context.Context) {
			// Each node has its own store (its own pool), as separate
			// processes would, and its own metrics fed by the store's
			// commit observer, as in mpmeter serve.
			m := metrics.New()
			st, startErr = sqlstore.Open(ctx, db, sqlstore.WithCommitObserver(m.ObserveCommit), sqlstore.WithAuditWriteObserver(m.ObserveAuditWrite))
			if startErr != nil {
				return
			}
			node := cfg
			node.Store, node.Metrics = st, m
			node.MetricsOnAPI = true // the suite reads the store's counters from /metrics
			if kind == KindCeiling {
				node.Store = discardUsage{st}
			}
			srv, startErr = server.New(ctx, node)
			if startErr == nil {
				ln, startErr = net.Listen("tcp", "127.0.0.1:0")
			}
			if startErr != nil {
				st.Close()
				return
			}
			hs = &http.Server{
				Handler:           srv.Handler,
				ReadHeaderTimeout: 10 * time.Second,
				IdleTimeout:       120 * time.Second,
				ErrorLog:          slog.NewLogLogger(opts.Logger.Handler(), slog.LevelWarn),
			}
			go hs.Serve(ln)
		})
		if startErr != nil {
			return nil, fmt.Errorf("bench: starting the %s server: %w", kind, startErr)
		}
		t.stops = append(t.stops, func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			hs.Shutdown(ctx)
			srv.Close(ctx) // the audit events still queued
			st.Close()
		})
		if srv.Audit != nil {
			t.flushes = append(t.flushes, srv.Audit.Flush)
		}
		if t.Store == nil {
			t.Store = srv.Store
		}
		t.Endpoints = append(t.Endpoints, "http://"+ln.Addr().String())
	}
	t.SetupSeconds = time.Since(began).Seconds()
	return t, nil
}

// withParam adds a query parameter to a URL DSN (pgx passes unknown ones to
// the server as session settings).
func withParam(dsn, k, v string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		return dsn
	}
	q := u.Query()
	q.Set(k, v)
	u.RawQuery = q.Encode()
	return u.String()
}

// ensureSigningKey creates the RegisterUsage signing key while seeding (RSA
// key generation takes a second or two), unencrypted as the targets'
// servers expect, so that starting a server does not.
func ensureSigningKey(ctx context.Context, st mpmeter.Store) error {
	km, err := keys.New(keys.Config{Store: st, Clock: mpmeter.WallClock{}})
	if err != nil {
		return err
	}
	return km.Ensure(ctx)
}
