// Package seal encrypts mpmeter's secrets at rest: access-key secrets,
// session tokens, workloads' credentials tokens and the private keys that
// sign RegisterUsage tokens. SigV4 needs an access key's secret itself (a
// hash would not do), so secrets are encrypted, not hashed: AES-256-GCM
// under a key derived from the operator's key encryption key (a passphrase)
// by argon2id, with a random salt and the KDF parameters kept in the
// database next to what they protect. A copied database file without the
// passphrase hands out no working key.
//
// A sealed value is text: Prefix, then the unpadded base64 of a 12-byte
// random nonce and the ciphertext with its tag. Every value is bound to
// where it is stored (the additional data names the column and the row), so
// a ciphertext moved to another row or column does not open.
package seal

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"
)

// Prefix starts every sealed value.
const Prefix = "mpmeter-sealed:v1:"

// KDFArgon2id is the only key derivation function: argon2id (RFC 9106).
const KDFArgon2id = "argon2id"

// Params are the key derivation's settings: stored with the database, so a
// database keeps opening with the parameters it was sealed with even after
// the defaults change.
type Params struct {
	KDF       string `json:"kdf"`
	Salt      []byte `json:"salt"`
	Time      uint32 `json:"time"`       // passes
	MemoryKiB uint32 `json:"memory_kib"` // memory in KiB
	Threads   uint8  `json:"threads"`
}

// Default KDF parameters: RFC 9106's second recommended option (argon2id,
// 3 passes, 64 MiB, 4 lanes) with a 16-byte salt. Deriving the key costs
// 0.2–0.6 s and 64 MiB once per process start (BenchmarkDeriveDefault), and
// as much per guess to whoever holds a copied database file.
const (
	DefaultTime      = 3
	DefaultMemoryKiB = 64 * 1024
	DefaultThreads   = 4
	saltBytes        = 16
)

// NewParams returns the default parameters with a fresh random salt.
func NewParams() Params {
	return Params{KDF: KDFArgon2id, Salt: randomBytes(saltBytes), Time: DefaultTime, MemoryKiB: DefaultMemoryKiB, Threads: DefaultThreads}
}

// Validate reports parameters this package cannot use.
func (p Params) Validate() error {
	switch {
	case p.KDF != KDFArgon2id:
		return fmt.Errorf("seal: unknown key derivation function %q", p.KDF)
	case len(p.Salt) < 8:
		return errors.New("seal: the salt is shorter than 8 bytes")
	case p.Time < 1 || p.MemoryKiB < 8*uint32(p.Threads) || p.Threads < 1:
		return fmt.Errorf("seal: invalid argon2id parameters (time %d, memory %d KiB, threads %d)", p.Time, p.MemoryKiB, p.Threads)
	}
	return nil
}

// Sealer seals and opens values under one derived key. Safe for concurrent
// use.
type Sealer struct {
	aead cipher.AEAD
}

// New derives the key from passphrase with p and returns a Sealer.
func New(passphrase string, p Params) (*Sealer, error) {
	if passphrase == "" {
		return nil, errors.New("seal: the key encryption key is empty")
	}
	if err := p.Validate(); err != nil {
		return nil, err
	}
	key := argon2.IDKey([]byte(passphrase), p.Salt, p.Time, p.MemoryKiB, p.Threads, 32)
	return newSealer(key)
}

func newSealer(key []byte) (*Sealer, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &Sealer{aead: aead}, nil
}

// Seal encrypts plain for the place named by aad (e.g.
// "access_keys.secret:AKIA...").
func (s *Sealer) Seal(plain []byte, aad string) string {
	nonce := randomBytes(s.aead.NonceSize())
	sealed := s.aead.Seal(nonce, nonce, plain, []byte(aad))
	return Prefix + base64.RawStdEncoding.EncodeToString(sealed)
}

// SealString is Seal of a string.
func (s *Sealer) SealString(plain, aad string) string { return s.Seal([]byte(plain), aad) }

// ErrWrongKey is returned by Open when a value does not decrypt: another
// key encryption key sealed it, it was moved from another place, or it was
// altered.
var ErrWrongKey = errors.New("seal: the value does not decrypt with this key encryption key")

// Open decrypts a value Seal returned for the same aad.
func (s *Sealer) Open(sealed, aad string) ([]byte, error) {
	rest, ok := strings.CutPrefix(sealed, Prefix)
	if !ok {
		return nil, errors.New("seal: the value is not sealed")
	}
	raw, err := base64.RawStdEncoding.DecodeString(rest)
	if err != nil || len(raw) < s.aead.NonceSize()+s.aead.Overhead() {
		return nil, errors.New("seal: the sealed value is malformed")
	}
	n := s.aead.NonceSize()
	plain, err := s.aead.Open(nil, raw[:n], raw[n:], []byte(aad))
	if err != nil {
		return nil, ErrWrongKey
	}
	return plain, nil
}

// OpenString is Open returning a string.
func (s *Sealer) OpenString(sealed, aad string) (string, error) {
	b, err := s.Open(sealed, aad)
	return string(b), err
}

// IsSealed reports whether v is a sealed value (by its prefix).
func IsSealed(v string) bool { return strings.HasPrefix(v, Prefix) }

// Check is what a Sealer seals to let a later start tell a wrong key
// encryption key from the right one before it touches any secret.
const checkPlaintext = "mpmeter key encryption key check"

const checkAAD = "settings.key_encryption:check"

// Check returns a value for VerifyCheck.
func (s *Sealer) Check() string { return s.SealString(checkPlaintext, checkAAD) }

// VerifyCheck reports whether check was made by Check under the same key.
func (s *Sealer) VerifyCheck(check string) bool {
	plain, err := s.OpenString(check, checkAAD)
	return err == nil && plain == checkPlaintext
}

// Stored is what a database keeps about its key encryption: the KDF
// parameters and a check value (JSON in a settings row).
type Stored struct {
	Params
	Check string `json:"check"`
}

// Encode returns the JSON of st.
func (st Stored) Encode() string {
	b, _ := json.Marshal(st)
	return string(b)
}

// DecodeStored parses what Encode returned.
func DecodeStored(v string) (Stored, error) {
	var st Stored
	if err := json.Unmarshal([]byte(v), &st); err != nil {
		return Stored{}, fmt.Errorf("seal: the stored key encryption settings are not valid JSON: %w", err)
	}
	return st, st.Params.Validate()
}

// LegacyPEMType is the PEM block type of a signing key encrypted the way
// mpmeter did before this package: AES-256-GCM under one SHA-256 of the
// passphrase, nonce first, the version number as additional data.
const LegacyPEMType = "MPMETER ENCRYPTED PRIVATE KEY"

// IsLegacySigningKey reports whether privatePEM is a signing key encrypted
// the old way.
func IsLegacySigningKey(privatePEM []byte) bool {
	block, _ := pem.Decode(privatePEM)
	return block != nil && block.Type == LegacyPEMType
}

// OpenLegacySigningKey decrypts a signing key encrypted the old way and
// returns its plain PEM ("PRIVATE KEY", PKCS#8), to be sealed again.
func OpenLegacySigningKey(passphrase string, version int, privatePEM []byte) ([]byte, error) {
	block, _ := pem.Decode(privatePEM)
	if block == nil || block.Type != LegacyPEMType {
		return nil, errors.New("seal: not a legacy encrypted signing key")
	}
	k := sha256.Sum256([]byte("mpmeter signing keys\x00" + passphrase))
	s, err := newSealer(k[:])
	if err != nil {
		return nil, err
	}
	n := s.aead.NonceSize()
	if len(block.Bytes) < n {
		return nil, errors.New("seal: the legacy encrypted signing key is too short")
	}
	der, err := s.aead.Open(nil, block.Bytes[:n], block.Bytes[n:], []byte(strconv.Itoa(version)))
	if err != nil {
		return nil, ErrWrongKey
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// SealLegacySigningKeyForTest encrypts a PKCS#8 DER key the old way, so that
// tests can build a database as an older mpmeter wrote it.
func SealLegacySigningKeyForTest(passphrase string, version int, der []byte) []byte {
	k := sha256.Sum256([]byte("mpmeter signing keys\x00" + passphrase))
	s, err := newSealer(k[:])
	if err != nil {
		panic(err)
	}
	nonce := randomBytes(s.aead.NonceSize())
	sealed := s.aead.Seal(nonce, nonce, der, []byte(strconv.Itoa(version)))
	return pem.EncodeToMemory(&pem.Block{Type: LegacyPEMType, Bytes: sealed})
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand.Read never fails on supported platforms
	}
	return b
}
