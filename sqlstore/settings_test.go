package sqlstore

import (
	"context"
	"database/sql"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The settings the package comments promise are the ones in effect.

func TestSQLiteSettings(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "settings.db")
	s, err := Open(ctx, path, WithPoolSize(3), WithBusyTimeout(1500*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	for _, db := range []struct {
		name string
		db   *sql.DB
	}{{"writer", s.wdb}, {"reader", s.rdb}} {
		for pragma, want := range map[string]string{
			"journal_mode": "wal", "synchronous": "2", "foreign_keys": "1", "busy_timeout": "1500",
		} {
			var got string
			if err := db.db.QueryRowContext(ctx, "PRAGMA "+pragma).Scan(&got); err != nil {
				t.Fatal(err)
			}
			if !strings.EqualFold(got, want) {
				t.Errorf("%s: PRAGMA %s = %s, want %s", db.name, pragma, got, want)
			}
		}
	}
	if got := s.wdb.Stats().MaxOpenConnections; got != 1 {
		t.Errorf("writer pool size %d, want 1", got)
	}
	if got := s.rdb.Stats().MaxOpenConnections; got != 3 {
		t.Errorf("reader pool size %d, want 3", got)
	}

	// Readers cannot write.
	if _, err := s.rdb.ExecContext(ctx, "INSERT INTO accounts (id, name) VALUES ('1', 'x')"); err == nil {
		t.Error("a reader connection wrote")
	}

	// A write transaction holds the write lock from its BEGIN, before it has
	// written anything: another connection's BEGIN IMMEDIATE is refused.
	inTx, release, done := make(chan struct{}), make(chan struct{}), make(chan error)
	go func() {
		done <- s.write(ctx, "test", func(w *txn) error {
			close(inTx)
			<-release
			return nil
		})
	}()
	<-inTx
	other, err := sql.Open("sqlite", "file:"+path+"?_busy_timeout=0")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	_, err = other.ExecContext(ctx, "BEGIN IMMEDIATE")
	close(release)
	if err == nil || !strings.Contains(err.Error(), "SQLITE_BUSY") {
		t.Errorf("BEGIN IMMEDIATE during a write transaction: %v, want SQLITE_BUSY", err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestPostgresSettings(t *testing.T) {
	dsn := PostgresTestDSN(t)
	ctx := context.Background()
	// The server's default isolation is SERIALIZABLE here; write
	// transactions must still run READ COMMITTED.
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("default_transaction_isolation", "serializable")
	u.RawQuery = q.Encode()
	s, err := Open(ctx, u.String(), WithPoolSize(7), WithStatementTimeout(1234*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got := s.wdb.Stats().MaxOpenConnections; got != 7 {
		t.Errorf("pool size %d, want 7", got)
	}
	var timeout, app string
	if err := s.rdb.QueryRowContext(ctx, "SELECT current_setting('statement_timeout'), current_setting('application_name')").Scan(&timeout, &app); err != nil {
		t.Fatal(err)
	}
	if timeout != "1234ms" || app != "mpmeter" {
		t.Errorf("statement_timeout %q, application_name %q; want 1234ms, mpmeter", timeout, app)
	}
	var iso string
	err = s.write(ctx, "test", func(w *txn) error {
		return w.tx.QueryRowContext(ctx, "SHOW transaction_isolation").Scan(&iso)
	})
	if err != nil {
		t.Fatal(err)
	}
	if iso != "read committed" {
		t.Errorf("write transaction isolation %q, want read committed", iso)
	}
}
