package sqlstore

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"

	"github.com/mpmeter/mpmeter"
	"github.com/mpmeter/mpmeter/seal"
)

// Secrets at rest. With a key encryption key (WithKeyEncryptionKey) the
// store seals (package seal) every secret it writes: access keys' secret,
// session_token and credentials_token, and signing keys' private_key_pem;
// it opens them as it reads them, so callers (the seed, the admin side, the
// container credentials endpoint, package keys) only ever see plain values.
// Without one, secrets are stored as given.
//
// Open sets this up once, in one write transaction (for PostgreSQL under an
// advisory lock, so nodes starting at once agree on one salt):
//   - a database without key_encryption settings gets new KDF parameters
//     and a check value;
//   - a database with them derives the key with the stored parameters and
//     refuses to open when the check value does not decrypt (a wrong key);
//   - every secret still in plain text (written before a key was set) is
//     sealed, and signing keys encrypted the old way (one SHA-256 of the
//     passphrase) are decrypted with it and sealed again.
//
// Without a key, a database whose secrets are encrypted opens locked
// (SecretsStatus.Locked): reading a secret fails with
// ErrKeyEncryptionKeyRequired, everything else works (mpmeter clock ...),
// and a server must refuse to start on it. A database without encrypted
// secrets reports them as plain text, which the caller warns about.

// WithKeyEncryptionKey makes the store seal secrets at rest under a key
// derived from passphrase (see the package's "Secrets at rest").
func WithKeyEncryptionKey(passphrase string) Option {
	return func(c *config) { c.keyEncryptionKey = passphrase }
}

// WithKDFParams sets the key derivation parameters a database gets when a
// key encryption key is first set on it (default seal.NewParams()). A
// database that has parameters keeps its own. For throwaway test databases,
// where the default's 64 MiB and tenth of a second per Open buy nothing.
func WithKDFParams(p seal.Params) Option { return func(c *config) { c.kdfParams = &p } }

// SecretsStatus says how the store keeps secrets.
type SecretsStatus struct {
	// Encrypted: secrets are sealed under the key encryption key.
	Encrypted bool
	// Resealed counts the secrets Open found in plain text (or encrypted
	// the old way) and sealed.
	Resealed int
	// Locked: the database's secrets are encrypted but the store was
	// opened without the key encryption key, so it cannot read them.
	Locked bool
}

// Secrets reports how the store keeps secrets.
func (s *Store) Secrets() SecretsStatus {
	return SecretsStatus{Encrypted: s.sealer != nil, Resealed: s.resealed, Locked: s.locked}
}

// ErrWrongKeyEncryptionKey: the configured key encryption key is not the
// one the database's secrets are sealed with.
var ErrWrongKeyEncryptionKey = errors.New("the key encryption key does not match the one this database's secrets are encrypted with (MPMETER_KEY_ENCRYPTION_KEY / --key-encryption-key)")

// ErrKeyEncryptionKeyRequired: the database's secrets are encrypted and no
// key encryption key was configured.
var ErrKeyEncryptionKeyRequired = errors.New("this database's secrets are encrypted: set the key encryption key it was encrypted with (MPMETER_KEY_ENCRYPTION_KEY / --key-encryption-key)")

const keyEncryptionSetting = "key_encryption"

// kekLockKey is the pg_advisory_xact_lock key of the secrets setup.
const kekLockKey int64 = 0x6d706d6b656b2121

// setupSecrets runs at Open, after the migrations; see "Secrets at rest".
func (s *Store) setupSecrets(ctx context.Context, cfg config) error {
	return s.write(ctx, "key encryption setup", func(w *txn) error {
		s.sealer, s.resealed, s.locked = nil, 0, false
		if s.d.name == DialectPostgres {
			if _, err := w.tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock($1)", kekLockKey); err != nil {
				return err
			}
		}
		var stored string
		err := w.tx.QueryRowContext(ctx, s.d.rebind(`SELECT value FROM settings WHERE name = ?`), keyEncryptionSetting).Scan(&stored)
		found := err == nil
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		if cfg.keyEncryptionKey == "" {
			locked := found
			if !locked {
				if locked, err = anyEncryptedSigningKey(w); err != nil {
					return err
				}
			}
			s.locked = locked
			return nil
		}
		var sealer *seal.Sealer
		if found {
			st, err := seal.DecodeStored(stored)
			if err != nil {
				return err
			}
			if sealer, err = seal.New(cfg.keyEncryptionKey, st.Params); err != nil {
				return err
			}
			if !sealer.VerifyCheck(st.Check) {
				return ErrWrongKeyEncryptionKey
			}
		} else {
			p := seal.NewParams()
			if cfg.kdfParams != nil {
				p = *cfg.kdfParams
				p.Salt = seal.NewParams().Salt
			}
			if sealer, err = seal.New(cfg.keyEncryptionKey, p); err != nil {
				return err
			}
			if _, err := w.exec(`INSERT INTO settings (name, value) VALUES (?, ?)`, keyEncryptionSetting,
				seal.Stored{Params: p, Check: sealer.Check()}.Encode()); err != nil {
				return err
			}
		}
		n, err := resealAccessKeys(w, sealer)
		if err != nil {
			return err
		}
		m, err := resealSigningKeys(w, sealer, cfg.keyEncryptionKey)
		if err != nil {
			return err
		}
		c, err := resealNotificationCertificate(w, sealer)
		if err != nil {
			return err
		}
		s.sealer, s.resealed = sealer, n+m+c
		return nil
	})
}

// anyEncryptedSigningKey reports signing keys encrypted the old way (a
// database an older mpmeter wrote with a key encryption key).
func anyEncryptedSigningKey(w *txn) (bool, error) {
	rows, err := w.tx.QueryContext(w.ctx, `SELECT private_key_pem FROM signing_keys`)
	if err != nil {
		return false, err
	}
	defer rows.Close()
	for rows.Next() {
		var pemBytes []byte
		if err := rows.Scan(&pemBytes); err != nil {
			return false, err
		}
		if seal.IsLegacySigningKey(pemBytes) || seal.IsSealed(string(pemBytes)) {
			return true, rows.Close()
		}
	}
	return false, rows.Err()
}

// resealAccessKeys seals the access keys' secrets still in plain text.
func resealAccessKeys(w *txn, sealer *seal.Sealer) (int, error) {
	type plainKey struct {
		id                   string
		secret, sess, credTk *string
	}
	q := w.s.d.rebind(`SELECT id, secret, session_token, credentials_token FROM access_keys
		WHERE secret NOT LIKE ? OR session_token NOT LIKE ? OR credentials_token NOT LIKE ?`)
	like := seal.Prefix + "%"
	rows, err := w.tx.QueryContext(w.ctx, q, like, like, like)
	if err != nil {
		return 0, err
	}
	var todo []plainKey
	for rows.Next() {
		var k plainKey
		if err := rows.Scan(&k.id, &k.secret, &k.sess, &k.credTk); err != nil {
			rows.Close()
			return 0, err
		}
		todo = append(todo, k)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, err
	}
	n := 0
	sealCol := func(v *string, col, id string) any {
		if v == nil {
			return nil
		}
		if seal.IsSealed(*v) {
			return *v
		}
		n++
		return sealer.SealString(*v, aad(col, id))
	}
	for _, k := range todo {
		if _, err := w.exec(`UPDATE access_keys SET secret = ?, session_token = ?, credentials_token = ? WHERE id = ?`,
			sealCol(k.secret, "secret", k.id), sealCol(k.sess, "session_token", k.id), sealCol(k.credTk, "credentials_token", k.id), k.id); err != nil {
			return 0, err
		}
	}
	return n, nil
}

// resealSigningKeys seals signing keys stored as plain PEM or encrypted the
// old way.
func resealSigningKeys(w *txn, sealer *seal.Sealer, passphrase string) (int, error) {
	rows, err := w.tx.QueryContext(w.ctx, `SELECT version, private_key_pem FROM signing_keys`)
	if err != nil {
		return 0, err
	}
	type key struct {
		version int
		pem     []byte
	}
	var keys []key
	for rows.Next() {
		var k key
		if err := rows.Scan(&k.version, &k.pem); err != nil {
			rows.Close()
			return 0, err
		}
		keys = append(keys, k)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, err
	}
	n := 0
	for _, k := range keys {
		if seal.IsSealed(string(k.pem)) {
			continue
		}
		plain := k.pem
		if seal.IsLegacySigningKey(k.pem) {
			if plain, err = seal.OpenLegacySigningKey(passphrase, k.version, k.pem); err != nil {
				return 0, fmt.Errorf("signing key version %d: %w", k.version, ErrWrongKeyEncryptionKey)
			}
		}
		sealed := sealer.Seal(plain, signingKeyAAD(k.version))
		if _, err := w.exec(`UPDATE signing_keys SET private_key_pem = ? WHERE version = ?`, []byte(sealed), k.version); err != nil {
			return 0, err
		}
		n++
	}
	return n, nil
}

// aad names where an access key's secret is stored.
func aad(column, id string) string { return "access_keys." + column + ":" + id }

func signingKeyAAD(version int) string {
	return "signing_keys.private_key_pem:" + strconv.Itoa(version)
}

// sealValue seals v for storage when the store has a key; "" stays "".
func (s *Store) sealValue(v, column, id string) string {
	if s.sealer == nil || v == "" {
		return v
	}
	return s.sealer.SealString(v, aad(column, id))
}

// openValue turns a stored value back into the secret.
func (s *Store) openValue(v, column, id string) (string, error) {
	if !seal.IsSealed(v) {
		return v, nil // plain: no key, or "" (absent)
	}
	if s.sealer == nil {
		return "", fmt.Errorf("access key %q: %s is encrypted: %w", id, column, ErrKeyEncryptionKeyRequired)
	}
	plain, err := s.sealer.OpenString(v, aad(column, id))
	if err != nil {
		return "", fmt.Errorf("access key %q: %s: %w", id, column, err)
	}
	return plain, nil
}

// openAccessKey opens the sealed fields of a scanned key.
func (s *Store) openAccessKey(k *mpmeter.AccessKey) error {
	var err error
	if k.Secret, err = s.openValue(k.Secret, "secret", k.ID); err != nil {
		return err
	}
	if k.SessionToken, err = s.openValue(k.SessionToken, "session_token", k.ID); err != nil {
		return err
	}
	k.CredentialsToken, err = s.openValue(k.CredentialsToken, "credentials_token", k.ID)
	return err
}

// sealSigningKey and openSigningKey do the same for private_key_pem.
func (s *Store) sealSigningKey(k mpmeter.SigningKey) []byte {
	if s.sealer == nil {
		return k.PrivateKeyPEM
	}
	return []byte(s.sealer.Seal(k.PrivateKeyPEM, signingKeyAAD(k.Version)))
}

func (s *Store) openSigningKey(k *mpmeter.SigningKey) error {
	if !bytes.HasPrefix(k.PrivateKeyPEM, []byte(seal.Prefix)) {
		return nil
	}
	if s.sealer == nil {
		return fmt.Errorf("signing key version %d is encrypted: %w", k.Version, ErrKeyEncryptionKeyRequired)
	}
	plain, err := s.sealer.Open(string(k.PrivateKeyPEM), signingKeyAAD(k.Version))
	if err != nil {
		return fmt.Errorf("signing key version %d: %w", k.Version, err)
	}
	k.PrivateKeyPEM = plain
	return nil
}
