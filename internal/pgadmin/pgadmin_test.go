package pgadmin

import (
	"context"
	"database/sql"
	"os"
	"strings"
	"testing"
)

func TestName(t *testing.T) {
	if n, err := Name("postgres://u:p@127.0.0.1:5432/bench_0a1b?sslmode=disable"); err != nil || n != "bench_0a1b" {
		t.Fatalf("Name = %q, %v", n, err)
	}
	for _, bad := range []string{"mpmeter.db", "postgres://127.0.0.1:5432", "postgres://127.0.0.1:5432/"} {
		if _, err := Name(bad); err == nil {
			t.Errorf("Name(%q) succeeded", bad)
		}
	}
	if _, err := CreateDatabase(context.Background(), "postgres://127.0.0.1:1/x", "Bad-Prefix"); err == nil || !strings.Contains(err.Error(), "prefix") {
		t.Errorf("a bad prefix: %v", err)
	}
}

// On the test server (MPMETER_TEST_POSTGRES_DSN): a created database is
// new, usable, has a size, and is gone after DropDatabase (twice is fine),
// even with a session still open on it.
func TestCreateDrop(t *testing.T) {
	admin := os.Getenv("MPMETER_TEST_POSTGRES_DSN")
	if admin == "" {
		t.Skip("MPMETER_TEST_POSTGRES_DSN not set")
	}
	ctx := context.Background()
	dsn, err := CreateDatabase(ctx, admin, "pgadmin_test")
	if err != nil {
		t.Fatal(err)
	}
	name, _ := Name(dsn)
	if !strings.HasPrefix(name, "pgadmin_test_") || len(name) != len("pgadmin_test_")+12 {
		t.Fatalf("name %q", name)
	}
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, "CREATE TABLE t (x int)"); err != nil {
		t.Fatal(err)
	}
	if n, err := Size(ctx, dsn); err != nil || n <= 0 {
		t.Fatalf("Size = %d, %v", n, err)
	}
	if err := DropDatabase(ctx, admin, dsn); err != nil {
		t.Fatal(err)
	}
	if err := DropDatabase(ctx, admin, dsn); err != nil {
		t.Fatalf("dropping again: %v", err)
	}
	var exists bool
	adb, _ := sql.Open("pgx", admin)
	defer adb.Close()
	if err := adb.QueryRowContext(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&exists); err != nil || exists {
		t.Fatalf("database still there: %v %v", exists, err)
	}
}
