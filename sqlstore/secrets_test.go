package sqlstore_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"database/sql"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mpmeter/mpmeter"
	"github.com/mpmeter/mpmeter/seal"
	"github.com/mpmeter/mpmeter/sqlstore"
	"github.com/mpmeter/mpmeter/storetest"
)

// cheapKDF keeps a store per test affordable; the default parameters are
// exercised by TestDefaultKDFParams.
func cheapKDF() sqlstore.Option {
	return sqlstore.WithKDFParams(seal.Params{KDF: seal.KDFArgon2id, Salt: []byte("replaced-by-random"), Time: 1, MemoryKiB: 256, Threads: 1})
}

func withKEK(kek string) []sqlstore.Option {
	return []sqlstore.Option{sqlstore.WithKeyEncryptionKey(kek), cheapKDF()}
}

// The conformance suite holds with secrets sealed.
func TestSQLiteEncrypted(t *testing.T) {
	storetest.Run(t, func(t *testing.T) mpmeter.Store { return openSQLite(t, withKEK("suite-kek")...) })
}

func TestPostgresEncrypted(t *testing.T) {
	postgresDSN(t)
	storetest.Run(t, func(t *testing.T) mpmeter.Store { return openPostgres(t, withKEK("suite-kek")...) })
}

// secretsDB is one database, reopened as a test needs, with raw access to
// its rows.
type secretsDB struct {
	dialect, dsn string
}

func (d secretsDB) open(t *testing.T, opts ...sqlstore.Option) (*sqlstore.Store, error) {
	t.Helper()
	return sqlstore.Open(context.Background(), d.dsn, opts...)
}

func (d secretsDB) mustOpen(t *testing.T, opts ...sqlstore.Option) *sqlstore.Store {
	t.Helper()
	s, err := d.open(t, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// raw runs a query on the database directly, past the store.
func (d secretsDB) raw(t *testing.T, q string, args ...any) *sql.Rows {
	t.Helper()
	driver, dsn := "pgx", d.dsn
	if d.dialect == sqlstore.DialectSQLite {
		driver, dsn = "sqlite", "file:"+d.dsn
	} else {
		q = strings.ReplaceAll(q, "?", "$1")
	}
	db, err := sql.Open(driver, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	rows, err := db.Query(q, args...)
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

// rawAccessKey returns the stored secret, session token and credentials
// token of a key.
func (d secretsDB) rawAccessKey(t *testing.T, id string) (secret, session, creds string) {
	t.Helper()
	rows := d.raw(t, `SELECT secret, COALESCE(session_token, ''), COALESCE(credentials_token, '') FROM access_keys WHERE id = ?`, id)
	defer rows.Close()
	if !rows.Next() {
		t.Fatalf("no access key %s", id)
	}
	if err := rows.Scan(&secret, &session, &creds); err != nil {
		t.Fatal(err)
	}
	return
}

func (d secretsDB) rawSigningKeys(t *testing.T) [][]byte {
	t.Helper()
	rows := d.raw(t, `SELECT private_key_pem FROM signing_keys ORDER BY version`)
	defer rows.Close()
	var out [][]byte
	for rows.Next() {
		var b []byte
		if err := rows.Scan(&b); err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

// forEachDialect runs f on a new SQLite file, and on a new PostgreSQL schema
// when one is configured.
func forEachDialect(t *testing.T, f func(t *testing.T, d secretsDB)) {
	t.Run("sqlite", func(t *testing.T) {
		f(t, secretsDB{dialect: sqlstore.DialectSQLite, dsn: filepath.Join(t.TempDir(), "secrets.db")})
	})
	t.Run("postgres", func(t *testing.T) {
		f(t, secretsDB{dialect: sqlstore.DialectPostgres, dsn: postgresDSN(t)})
	})
}

func putMarketplace(t *testing.T, s *sqlstore.Store) {
	t.Helper()
	ctx := context.Background()
	if err := s.PutAccount(ctx, mpmeter.Account{ID: "111122223333", Name: "a"}); err != nil {
		t.Fatal(err)
	}
	for _, k := range []mpmeter.AccessKey{
		{ID: "AKIALONGTERM", Secret: "long-term-secret", AccountID: "111122223333",
			Workload: &mpmeter.Workload{ID: "i-1", Platform: mpmeter.PlatformEC2, Region: "us-east-1"}, CredentialsToken: "the-credentials-token"},
		{ID: "ASIATEMPORARY", Secret: "temporary-secret", AccountID: "111122223333", SessionToken: "the-session-token",
			ExpiresAt: time.Now().Add(time.Hour).UTC().Truncate(time.Millisecond)},
	} {
		if err := s.PutAccessKey(ctx, k); err != nil {
			t.Fatal(err)
		}
	}
}

func newPrivateKeyPEM(t *testing.T) ([]byte, []byte) {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 1024) // a test key: size does not matter here
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return der, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

func wantSecretsReadable(t *testing.T, s *sqlstore.Store) {
	t.Helper()
	ctx := context.Background()
	k, err := s.AccessKey(ctx, "AKIALONGTERM")
	if err != nil || k.Secret != "long-term-secret" || k.CredentialsToken != "the-credentials-token" {
		t.Fatalf("AccessKey: %+v %v", k, err)
	}
	tmp, err := s.AccessKey(ctx, "ASIATEMPORARY")
	if err != nil || tmp.Secret != "temporary-secret" || tmp.SessionToken != "the-session-token" {
		t.Fatalf("AccessKey: %+v %v", tmp, err)
	}
	wk, err := s.WorkloadAccessKeys(ctx, "i-1", time.Now())
	if err != nil || len(wk) != 1 || wk[0].Secret != "long-term-secret" || wk[0].CredentialsToken != "the-credentials-token" {
		t.Fatalf("WorkloadAccessKeys: %+v %v", wk, err)
	}
}

func wantSealed(t *testing.T, d secretsDB) {
	t.Helper()
	for _, id := range []string{"AKIALONGTERM", "ASIATEMPORARY"} {
		secret, session, creds := d.rawAccessKey(t, id)
		for _, v := range []string{secret, session, creds} {
			if v != "" && !seal.IsSealed(v) {
				t.Errorf("%s: stored in plain text: %q", id, v)
			}
		}
	}
	for i, k := range d.rawSigningKeys(t) {
		if !seal.IsSealed(string(k)) {
			t.Errorf("signing key %d stored as %.40q", i+1, k)
		}
	}
}

func TestSecretsSealedAtRest(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d secretsDB) {
		ctx := context.Background()
		s := d.mustOpen(t, withKEK("the-kek")...)
		putMarketplace(t, s)
		_, plainPEM := newPrivateKeyPEM(t)
		if err := s.AddSigningKey(ctx, mpmeter.SigningKey{Version: 1, PrivateKeyPEM: plainPEM, PublicKeyPEM: []byte("pub"), CreatedAt: time.Now()}); err != nil {
			t.Fatal(err)
		}
		if sec := s.Secrets(); !sec.Encrypted || sec.Resealed != 0 || sec.Locked {
			t.Errorf("Secrets() = %+v", sec)
		}
		wantSecretsReadable(t, s)
		got, err := s.SigningKeys(ctx)
		if err != nil || len(got) != 1 || string(got[0].PrivateKeyPEM) != string(plainPEM) {
			t.Fatalf("SigningKeys: %v", err)
		}
		s.Close()
		wantSealed(t, d)
		if d.dialect == sqlstore.DialectSQLite {
			// Not in the file, nor in its WAL (the store closed and
			// checkpointed, but look at whatever is there).
			for _, suffix := range []string{"", "-wal"} {
				b, err := os.ReadFile(d.dsn + suffix)
				if err != nil && !errors.Is(err, os.ErrNotExist) {
					t.Fatal(err)
				}
				for _, secret := range []string{"long-term-secret", "temporary-secret", "the-session-token", "the-credentials-token", "PRIVATE KEY"} {
					if strings.Contains(string(b), secret) {
						t.Errorf("%q is in the database file%s", secret, suffix)
					}
				}
			}
		}

		// The same key opens it again (a restart) and reseals nothing.
		s = d.mustOpen(t, withKEK("the-kek")...)
		if sec := s.Secrets(); !sec.Encrypted || sec.Resealed != 0 {
			t.Errorf("after restart: Secrets() = %+v", sec)
		}
		wantSecretsReadable(t, s)
		s.Close()

		// A wrong key refuses to open.
		if _, err := d.open(t, withKEK("another-kek")...); !errors.Is(err, sqlstore.ErrWrongKeyEncryptionKey) {
			t.Fatalf("wrong key: %v", err)
		}

		// No key: the store opens locked, and secrets do not read.
		s = d.mustOpen(t)
		defer s.Close()
		if sec := s.Secrets(); sec.Encrypted || !sec.Locked {
			t.Errorf("without a key: Secrets() = %+v", sec)
		}
		if _, err := s.AccessKey(ctx, "AKIALONGTERM"); !errors.Is(err, sqlstore.ErrKeyEncryptionKeyRequired) {
			t.Errorf("AccessKey without a key: %v", err)
		}
		if _, err := s.SigningKeys(ctx); !errors.Is(err, sqlstore.ErrKeyEncryptionKeyRequired) {
			t.Errorf("SigningKeys without a key: %v", err)
		}
		if _, err := s.ClockOffset(ctx); err != nil {
			t.Errorf("the rest still works: %v", err)
		}
	})
}

// A database written without a key encryption key is sealed on the first
// start with one; one whose signing keys an older mpmeter encrypted (one
// SHA-256 of the passphrase) has them decrypted and sealed under the KDF's
// key.
func TestSecretsSealedOnFirstStartWithKey(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d secretsDB) {
		ctx := context.Background()
		s := d.mustOpen(t)
		if sec := s.Secrets(); sec.Encrypted || sec.Locked {
			t.Errorf("plain database: Secrets() = %+v", sec)
		}
		putMarketplace(t, s)
		der, plainPEM := newPrivateKeyPEM(t)
		for v, priv := range map[int][]byte{1: plainPEM, 2: seal.SealLegacySigningKeyForTest("the-kek", 2, der)} {
			if err := s.AddSigningKey(ctx, mpmeter.SigningKey{Version: v, PrivateKeyPEM: priv, PublicKeyPEM: []byte("pub"), CreatedAt: time.Now()}); err != nil {
				t.Fatal(err)
			}
		}
		s.Close()
		if secret, _, _ := d.rawAccessKey(t, "AKIALONGTERM"); secret != "long-term-secret" {
			t.Fatalf("setup: stored %q", secret)
		}

		// Without the key, a legacy-encrypted signing key locks the store.
		s = d.mustOpen(t)
		if !s.Secrets().Locked {
			t.Error("legacy-encrypted signing key, no key: not locked")
		}
		s.Close()
		// The old key under another passphrase does not decrypt: refused,
		// and nothing was changed.
		if _, err := d.open(t, withKEK("another-kek")...); !errors.Is(err, sqlstore.ErrWrongKeyEncryptionKey) {
			t.Fatalf("wrong key for the legacy signing key: %v", err)
		}
		if secret, _, _ := d.rawAccessKey(t, "AKIALONGTERM"); secret != "long-term-secret" {
			t.Fatalf("a refused start changed the database: %q", secret)
		}

		s = d.mustOpen(t, withKEK("the-kek")...)
		// 2 secrets + 1 credentials token + 1 session token, 2 signing keys.
		if sec := s.Secrets(); !sec.Encrypted || sec.Resealed != 6 {
			t.Errorf("first start with a key: Secrets() = %+v, want 6 resealed", sec)
		}
		wantSecretsReadable(t, s)
		keys, err := s.SigningKeys(ctx)
		if err != nil || len(keys) != 2 {
			t.Fatalf("SigningKeys: %v", err)
		}
		for _, k := range keys {
			block, _ := pem.Decode(k.PrivateKeyPEM)
			if block == nil || block.Type != "PRIVATE KEY" {
				t.Fatalf("version %d: not a plain PEM after resealing", k.Version)
			}
			if _, err := x509.ParsePKCS8PrivateKey(block.Bytes); err != nil {
				t.Fatalf("version %d: %v", k.Version, err)
			}
		}
		s.Close()
		wantSealed(t, d)
	})
}

// A sealed value is bound to its row and column: copied onto another key it
// does not open.
func TestSealedSecretBoundToItsRow(t *testing.T) {
	ctx := context.Background()
	d := secretsDB{dialect: sqlstore.DialectSQLite, dsn: filepath.Join(t.TempDir(), "bound.db")}
	s := d.mustOpen(t, withKEK("the-kek")...)
	putMarketplace(t, s)
	s.Close()
	secret, _, _ := d.rawAccessKey(t, "AKIALONGTERM")
	db, err := sql.Open("sqlite", "file:"+d.dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`UPDATE access_keys SET secret = ? WHERE id = 'ASIATEMPORARY'`, secret); err != nil {
		t.Fatal(err)
	}
	db.Close()
	s = d.mustOpen(t, withKEK("the-kek")...)
	defer s.Close()
	if _, err := s.AccessKey(ctx, "ASIATEMPORARY"); !errors.Is(err, seal.ErrWrongKey) {
		t.Fatalf("a secret moved to another row: %v", err)
	}
}

// Nodes starting at once on a new PostgreSQL database agree on one salt:
// each reads what the others sealed.
func TestConcurrentOpenWithKey(t *testing.T) {
	dsn := postgresDSN(t)
	ctx := context.Background()
	stores := make([]*sqlstore.Store, 4)
	errs := make([]error, len(stores))
	var wg sync.WaitGroup
	for i := range stores {
		wg.Add(1)
		go func() {
			defer wg.Done()
			stores[i], errs[i] = sqlstore.Open(ctx, dsn, withKEK("the-kek")...)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("node %d: %v", i, err)
		}
		defer stores[i].Close()
	}
	putMarketplace(t, stores[0])
	for i, s := range stores {
		if k, err := s.AccessKey(ctx, "AKIALONGTERM"); err != nil || k.Secret != "long-term-secret" {
			t.Errorf("node %d: %+v %v", i, k, err)
		}
	}
}

// The default parameters are what the package says, and a database opened
// with them stores them.
func TestDefaultKDFParams(t *testing.T) {
	p := seal.NewParams()
	if p.KDF != "argon2id" || p.Time != 3 || p.MemoryKiB != 64*1024 || p.Threads != 4 || len(p.Salt) != 16 {
		t.Fatalf("default params %+v", p)
	}
	d := secretsDB{dialect: sqlstore.DialectSQLite, dsn: filepath.Join(t.TempDir(), "kdf.db")}
	s := d.mustOpen(t, sqlstore.WithKeyEncryptionKey("the-kek"))
	s.Close()
	rows := d.raw(t, `SELECT value FROM settings WHERE name = 'key_encryption'`)
	defer rows.Close()
	var v string
	if !rows.Next() || rows.Scan(&v) != nil {
		t.Fatal("no key_encryption setting")
	}
	st, err := seal.DecodeStored(v)
	if err != nil || st.Time != 3 || st.MemoryKiB != 64*1024 || st.Threads != 4 || len(st.Salt) != 16 || st.Check == "" {
		t.Fatalf("stored %+v %v", st, err)
	}
}
