// Package workloadcreds hands a buyer's workload temporary credentials the
// way AWS does, so that workload code finds them through its SDK's default
// credential chain and never holds a long-term key.
//
// It serves the ECS container credentials endpoint: the URL an SDK reads
// from AWS_CONTAINER_CREDENTIALS_FULL_URI, fetched with the Authorization
// header from AWS_CONTAINER_AUTHORIZATION_TOKEN (or the file named by
// AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE), answering
//
//	{"AccessKeyId": "ASIA...", "SecretAccessKey": "...", "Token": "...",
//	 "Expiration": "2026-11-25T17:00:00Z", "AccountId": "444455556666"}
//
// A workload may fetch when one of its long-term keys has a
// CredentialsToken: the request's Authorization must be that token, and the
// credentials are for that key's account and workload. They are minted and
// stored as access keys in the database, so every node on it hands out and
// accepts the same ones; a workload gets the same credentials again until
// fewer than RenewBefore of their lifetime remain (SDKs refresh 15 minutes
// (botocore) or 5 minutes (Go, JavaScript) before Expiration), then new
// ones, while the old ones keep working until they expire.
//
// Expiry is by the service clock, so a test that moves the clock forward
// expires credentials as it expires registration tokens; the Expiration
// handed out is translated to wall time, which is what SDKs compare it with.
package workloadcreds

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base32"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/mpmeter/mpmeter"
)

// Store is what the issuer reads and writes; mpmeter.Store satisfies it.
type Store interface {
	WorkloadAccessKeys(ctx context.Context, workloadID string, validAt time.Time) ([]mpmeter.AccessKey, error)
	PutAccessKey(ctx context.Context, k mpmeter.AccessKey) error
}

const (
	// DefaultTTL is how long minted credentials last.
	DefaultTTL = time.Hour
	// MinTTL is the shortest lifetime allowed: credentials must outlast
	// RenewBefore, and botocore refuses credentials that expire within 10
	// minutes of being fetched.
	MinTTL = 30 * time.Minute
	// RenewBefore is how close to its expiry a workload's credentials are
	// replaced: more than botocore's 15-minute advisory refresh, so an SDK
	// that refreshes gets new credentials rather than the same again.
	RenewBefore = 20 * time.Minute
)

// ErrUnauthorized: no long-term key of the workload has the presented
// credentials token (or the workload does not exist).
var ErrUnauthorized = errors.New("workloadcreds: no key of this workload has that credentials token")

// Issuer mints and hands out workloads' temporary credentials.
type Issuer struct {
	store  Store
	clock  mpmeter.Clock
	wall   func() time.Time
	ttl    time.Duration
	logger *slog.Logger

	// mu makes concurrent fetches of one process mint once; nodes on one
	// database may each mint, which only leaves one more valid key.
	mu sync.Mutex
}

// Config is what an Issuer needs.
type Config struct {
	// Store keeps the minted credentials, so every node serves and accepts
	// the same ones. Required.
	Store Store
	// Clock is the service clock credentials expire by. Required.
	Clock mpmeter.Clock
	// WallClock converts expiry to the wall time SDKs refresh by; nil
	// means time.Now.
	WallClock func() time.Time
	// TTL is the lifetime of minted credentials: 0 means DefaultTTL, and
	// less than MinTTL is raised to it (SDKs refresh well before expiry).
	TTL time.Duration
	// Logger; nil means slog.Default().
	Logger *slog.Logger
}

// New returns an Issuer, or an error naming what cfg lacks.
func New(cfg Config) (*Issuer, error) {
	switch {
	case cfg.Store == nil:
		return nil, errors.New("workloadcreds: Config.Store is required")
	case cfg.Clock == nil:
		return nil, errors.New("workloadcreds: Config.Clock is required")
	case cfg.TTL < 0:
		return nil, fmt.Errorf("workloadcreds: negative Config.TTL %s", cfg.TTL)
	}
	if cfg.WallClock == nil {
		cfg.WallClock = time.Now
	}
	if cfg.TTL == 0 {
		cfg.TTL = DefaultTTL
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Issuer{store: cfg.Store, clock: cfg.Clock, wall: cfg.WallClock, ttl: max(cfg.TTL, MinTTL), logger: cfg.Logger}, nil
}

// Credentials returns the workload's current temporary credentials when
// authorization is one of its long-term keys' credentials tokens, minting
// new ones when none has more than RenewBefore left. The error wraps
// ErrUnauthorized when the token is not the workload's; any other error is
// the store's.
func (i *Issuer) Credentials(ctx context.Context, workloadID, authorization string) (mpmeter.AccessKey, error) {
	i.mu.Lock()
	defer i.mu.Unlock()
	now := i.clock.Now()
	keys, err := i.store.WorkloadAccessKeys(ctx, workloadID, now)
	if err != nil {
		return mpmeter.AccessKey{}, fmt.Errorf("workloadcreds: keys of workload %q: %w", workloadID, err)
	}
	var role *mpmeter.AccessKey
	for j := range keys {
		k := &keys[j]
		// Every candidate is compared, in constant time, so the answer's
		// timing says nothing about which token came close.
		if k.CredentialsToken != "" && !k.Temporary() && k.Workload != nil &&
			subtle.ConstantTimeCompare([]byte(k.CredentialsToken), []byte(authorization)) == 1 && role == nil {
			role = k
		}
	}
	if role == nil || authorization == "" {
		return mpmeter.AccessKey{}, ErrUnauthorized
	}
	var current *mpmeter.AccessKey
	for j := range keys {
		k := &keys[j]
		if k.Temporary() && !k.ExpiresAt.IsZero() && k.AccountID == role.AccountID &&
			(current == nil || k.ExpiresAt.After(current.ExpiresAt)) {
			current = k
		}
	}
	if current != nil && current.ExpiresAt.Sub(now) > RenewBefore {
		return *current, nil
	}
	minted, err := mint(role, now.Add(i.ttl).Truncate(time.Second))
	if err != nil {
		return mpmeter.AccessKey{}, err
	}
	if err := i.store.PutAccessKey(ctx, minted); err != nil {
		return mpmeter.AccessKey{}, fmt.Errorf("workloadcreds: storing credentials of workload %q: %w", workloadID, err)
	}
	i.logger.Info("minted temporary credentials", "workload", workloadID, "access_key_id", minted.ID,
		"expires", minted.ExpiresAt.Format(time.RFC3339))
	return minted, nil
}

// idEncoding writes access key ids in AWS's alphabet (A-Z, 2-7).
var idEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// mint makes temporary credentials for role's account and workload:
// an ASIA... id of AWS's length (20), a 40-character secret and a session
// token, all from crypto/rand.
func mint(role *mpmeter.AccessKey, expires time.Time) (mpmeter.AccessKey, error) {
	var id [10]byte
	var secret [30]byte
	var token [96]byte
	for _, b := range [][]byte{id[:], secret[:], token[:]} {
		if _, err := rand.Read(b); err != nil {
			return mpmeter.AccessKey{}, fmt.Errorf("workloadcreds: %w", err)
		}
	}
	w := *role.Workload
	return mpmeter.AccessKey{
		ID:           "ASIA" + idEncoding.EncodeToString(id[:]),
		Secret:       base64.StdEncoding.EncodeToString(secret[:]),
		AccountID:    role.AccountID,
		Workload:     &w,
		SessionToken: base64.StdEncoding.EncodeToString(token[:]),
		ExpiresAt:    expires,
	}, nil
}

// Response is the container credentials endpoint's JSON, as the ECS agent
// writes it (RoleArn aside: mpmeter has no roles).
type Response struct {
	AccessKeyID     string `json:"AccessKeyId"`
	SecretAccessKey string `json:"SecretAccessKey"`
	Token           string `json:"Token"`
	Expiration      string `json:"Expiration"` // RFC 3339, UTC, whole seconds
	AccountID       string `json:"AccountId"`
}

// endpointError is the error body the SDKs' endpoint credential clients
// parse (aws-sdk-go-v2's endpointcreds reads code and message).
type endpointError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Pattern is the route the handler serves; the workload id is the rest of
// the path (ids such as ECS task ARNs hold slashes).
const Pattern = "GET /credentials/workloads/{workload...}"

// ServeHTTP answers Pattern: the workload's credentials for its
// credentials token in the Authorization header.
func (i *Issuer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	workload := r.PathValue("workload")
	auth := r.Header.Get("Authorization")
	if auth == "" {
		writeJSON(w, http.StatusUnauthorized, endpointError{"Unauthorized",
			"the Authorization header (AWS_CONTAINER_AUTHORIZATION_TOKEN) is missing"})
		return
	}
	k, err := i.Credentials(r.Context(), workload, auth)
	switch {
	case errors.Is(err, ErrUnauthorized):
		writeJSON(w, http.StatusForbidden, endpointError{"AccessDenied",
			"the Authorization header is not a credentials token of workload " + workload})
		return
	case err != nil:
		i.logger.Error("container credentials", "workload", workload, "err", err)
		writeJSON(w, http.StatusInternalServerError, endpointError{"InternalError", "internal error; retry"})
		return
	}
	// The SDKs compare Expiration with their wall clock: hand out the wall
	// time at which the service clock reaches the expiry, rounded down so
	// they never hold credentials longer than they work.
	offset := i.clock.Now().Sub(i.wall())
	expiration := k.ExpiresAt.Add(-offset).UTC().Truncate(time.Second)
	writeJSON(w, http.StatusOK, Response{
		AccessKeyID:     k.ID,
		SecretAccessKey: k.Secret,
		Token:           k.SessionToken,
		Expiration:      expiration.Format(time.RFC3339),
		AccountID:       k.AccountID,
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	body, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(body)
}
