// Package keys manages the RSA keys that sign RegisterUsage entitlement
// tokens: one 2048-bit key per version, created on first start, stored in the
// Store (which encrypts the private key at rest when it has a key encryption
// key: sqlstore.WithKeyEncryptionKey), rotated by adding a version. Old
// versions keep signing and verifying; tokens signed with a rotated-out
// version say when it rotated.
package keys

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"sort"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/mpmeter/mpmeter"
)

// Store is the part of mpmeter.Store the keys live in.
type Store interface {
	SigningKeys(ctx context.Context) ([]mpmeter.SigningKey, error)
	AddSigningKey(ctx context.Context, k mpmeter.SigningKey) error
}

// Config is what a Manager needs.
type Config struct {
	// Store keeps the key versions. Required.
	Store Store
	// Clock dates new versions (their creation is the previous version's
	// rotation time). Required.
	Clock mpmeter.Clock
}

// Manager signs tokens with the stored key versions. Safe for concurrent use.
type Manager struct {
	store  Store
	clock  mpmeter.Clock
	random io.Reader

	mu       sync.RWMutex
	versions map[int]*version
	loadedAt time.Time // wall time of the last load
}

// refreshAfter bounds how long a rotation by another process or node (mpmeter
// keys rotate, a second server on the same database) goes unseen: Sign reloads
// the versions when they are older than this.
const refreshAfter = 5 * time.Second

type version struct {
	key       *rsa.PrivateKey
	publicPEM []byte
	createdAt time.Time
}

// New returns a Manager; it reads no key until Ensure.
func New(cfg Config) (*Manager, error) {
	if cfg.Store == nil {
		return nil, errors.New("keys: Config.Store is required")
	}
	if cfg.Clock == nil {
		return nil, errors.New("keys: Config.Clock is required")
	}
	return &Manager{store: cfg.Store, clock: cfg.Clock, random: rand.Reader, versions: map[int]*version{}}, nil
}

// Ensure loads the stored versions and creates version 1 when there is none.
func (m *Manager) Ensure(ctx context.Context) error {
	if err := m.load(ctx); err != nil {
		return err
	}
	m.mu.RLock()
	n := len(m.versions)
	m.mu.RUnlock()
	if n > 0 {
		return nil
	}
	_, err := m.add(ctx, 1)
	return err
}

// Rotate adds the next key version and returns its number.
func (m *Manager) Rotate(ctx context.Context) (int, error) {
	if err := m.load(ctx); err != nil {
		return 0, err
	}
	return m.add(ctx, m.Latest()+1)
}

// Latest returns the newest version number (0 when there is none).
func (m *Manager) Latest() int {
	m.mu.RLock()
	defer m.mu.RUnlock()
	latest := 0
	for v := range m.versions {
		if v > latest {
			latest = v
		}
	}
	return latest
}

// Versions returns the version numbers, oldest first.
func (m *Manager) Versions() []int {
	m.mu.RLock()
	defer m.mu.RUnlock()
	out := make([]int, 0, len(m.versions))
	for v := range m.versions {
		out = append(out, v)
	}
	sort.Ints(out)
	return out
}

// PublicKeyPEM returns the PEM ("PUBLIC KEY", PKIX) of a version.
func (m *Manager) PublicKeyPEM(ctx context.Context, v int) ([]byte, error) {
	ver, err := m.version(ctx, v)
	if err != nil {
		return nil, err
	}
	return ver.publicPEM, nil
}

var _ mpmeter.TokenSigner = (*Manager)(nil)

// Sign implements mpmeter.TokenSigner: a PS256 JWT (RSASSA-PSS, SHA-256,
// salt length equal to the hash length).
func (m *Manager) Sign(ctx context.Context, v int, claims map[string]any) (string, time.Time, error) {
	ver, err := m.version(ctx, v)
	if err != nil {
		return "", time.Time{}, err
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodPS256, jwt.MapClaims(claims))
	signed, err := tok.SignedString(ver.key)
	if err != nil {
		return "", time.Time{}, err
	}
	return signed, m.rotatedAt(v), nil
}

// rotatedAt is when version v stopped being the newest: the next version's
// creation time, or zero while v is current.
func (m *Manager) rotatedAt(v int) time.Time {
	m.mu.RLock()
	defer m.mu.RUnlock()
	var next *version
	for n, ver := range m.versions {
		if n > v && (next == nil || ver.createdAt.Before(next.createdAt)) {
			next = ver
		}
	}
	if next == nil {
		return time.Time{}
	}
	return next.createdAt
}

// version returns a version, reloading from the store once when it is not
// known here: another node may have rotated.
func (m *Manager) version(ctx context.Context, v int) (*version, error) {
	m.mu.RLock()
	ver, fresh := m.versions[v], time.Since(m.loadedAt) < refreshAfter
	m.mu.RUnlock()
	if ver != nil && fresh {
		return ver, nil
	}
	if err := m.load(ctx); err != nil {
		return nil, err
	}
	m.mu.RLock()
	ver = m.versions[v]
	m.mu.RUnlock()
	if ver == nil {
		return nil, fmt.Errorf("key version %d: %w", v, mpmeter.ErrNoSuchKeyVersion)
	}
	return ver, nil
}

func (m *Manager) load(ctx context.Context) error {
	stored, err := m.store.SigningKeys(ctx)
	if err != nil {
		return err
	}
	loaded := make(map[int]*version, len(stored))
	for _, sk := range stored {
		ver, err := m.decode(sk)
		if err != nil {
			return fmt.Errorf("signing key version %d: %w", sk.Version, err)
		}
		loaded[sk.Version] = ver
	}
	m.mu.Lock()
	m.versions, m.loadedAt = loaded, time.Now()
	m.mu.Unlock()
	return nil
}

func (m *Manager) add(ctx context.Context, v int) (int, error) {
	key, err := rsa.GenerateKey(m.random, 2048)
	if err != nil {
		return 0, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return 0, err
	}
	pubDER, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return 0, err
	}
	private := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	sk := mpmeter.SigningKey{
		Version:       v,
		PrivateKeyPEM: private,
		PublicKeyPEM:  pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}),
		CreatedAt:     m.clock.Now().UTC(),
	}
	err = m.store.AddSigningKey(ctx, sk)
	if err != nil && !errors.Is(err, mpmeter.ErrExists) {
		return 0, err
	}
	// ErrExists: another node created this version first; use theirs.
	return v, m.load(ctx)
}

func (m *Manager) decode(sk mpmeter.SigningKey) (*version, error) {
	block, _ := pem.Decode(sk.PrivateKeyPEM)
	if block == nil {
		return nil, errors.New("private key is not PEM")
	}
	if block.Type != "PRIVATE KEY" {
		// An older mpmeter's "MPMETER ENCRYPTED PRIVATE KEY" is turned
		// into a plain one by the store opened with the key encryption
		// key (sqlstore.WithKeyEncryptionKey).
		return nil, fmt.Errorf("unexpected PEM block %q (is the store opened with the key encryption key?)", block.Type)
	}
	parsed, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, err
	}
	key, ok := parsed.(*rsa.PrivateKey)
	if !ok {
		return nil, errors.New("private key is not RSA")
	}
	return &version{key: key, publicPEM: sk.PublicKeyPEM, createdAt: sk.CreatedAt}, nil
}
