package sqlstore_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/mpmeter/mpmeter"
	"github.com/mpmeter/mpmeter/sqlstore"
)

// The database holds access key secrets: it and its -wal and -shm files are
// created readable by their owner only, whatever the umask lets through.
func TestSQLiteFilesAreCreatedPrivate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "private.db")
	st, err := sqlstore.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	// A write, so that the -wal and -shm files exist.
	if err := st.PutAccount(context.Background(), mpmeter.Account{ID: "111122223333", Name: "x"}); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{path, path + "-wal", path + "-shm"} {
		fi, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		if mode := fi.Mode().Perm(); mode != 0o600 {
			t.Errorf("%s has mode %#o, want 0600", filepath.Base(f), mode)
		}
	}
}
