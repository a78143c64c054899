// Package server assembles a running mpmeter from its parts: store, seed,
// signing keys, service, SigV4 verifier and the awsJson handler, behind one
// HTTP mux. cmd/mpmeter, mpmetertest and the benchmark all build on it, so
// the binary, in-process test servers and benchmark targets are the same
// server.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/mpmeter/mpmeter"
	"github.com/mpmeter/mpmeter/awsjson"
	"github.com/mpmeter/mpmeter/keys"
	"github.com/mpmeter/mpmeter/metrics"
	"github.com/mpmeter/mpmeter/middleware"
	"github.com/mpmeter/mpmeter/ratelimit"
	"github.com/mpmeter/mpmeter/seed"
	"github.com/mpmeter/mpmeter/service"
	"github.com/mpmeter/mpmeter/sigv4"
	"github.com/mpmeter/mpmeter/storecache"
	"github.com/mpmeter/mpmeter/vclock"
	"github.com/mpmeter/mpmeter/workloadcreds"
)

// Config is everything a server needs. Zero durations mean the defaults.
type Config struct {
	// Store is the store the server runs on, already open (sqlstore.Open).
	// The caller owns it: it closes it after the server is done (after
	// http.Server.Shutdown); New and Server never close it. New wraps it in
	// the marketplace read cache (storecache, see CacheTTL), so this
	// process's writes go through Server.Store, which the cache sees.
	Store mpmeter.Store
	// Metrics is what the server reports to and serves at /metrics; nil
	// means a new metrics.New(). The store's commit sizes and latencies
	// reach it only if the caller opened the store with
	// sqlstore.WithCommitObserver(Metrics.ObserveCommit) of the same
	// Metrics, so a caller that wants them creates Metrics first.
	Metrics *metrics.Metrics
	// Seed is applied at start (idempotently) when non-nil.
	Seed *seed.File
	// Clock is the service clock; nil means the virtual clock kept in the
	// database (wall time until someone sets it: mpmeter clock ...), so
	// every node on one database agrees on the time.
	Clock mpmeter.Clock
	// WallClock is what SigV4's skew check compares with; nil means
	// time.Now. Tests with recorded signatures replace it.
	WallClock func() time.Time

	// UsageWindow and FutureTolerance: see service.Config (FutureTolerance
	// 0 is service.DefaultFutureTolerance, service.NoFutureTolerance none).
	UsageWindow     time.Duration
	FutureTolerance time.Duration
	// Regions says where each operation is offered; nil means
	// mpmeter.DefaultRegions().
	Regions *mpmeter.Regions

	TokenTTL       time.Duration // registration tokens seeded without expires_at
	ClientTokenTTL time.Duration
	MaxSkew        time.Duration
	// KeyEncryptionKey encrypts signing keys at rest; empty stores them
	// unencrypted (a warning is logged).
	KeyEncryptionKey string
	// RateLimit is the calls per second each account may make to each
	// operation (AWS allows a seller about 10 BatchMeterUsage calls a
	// second); 0 means no limit. RateBurst is the bucket size.
	RateLimit float64
	RateBurst int
	// CacheTTL bounds how long marketplace rows (keys, products,
	// subscriptions) changed by another process or node may be served stale;
	// this process's own writes are seen at once. 0 means storecache's
	// default (1s).
	CacheTTL time.Duration
	// CredentialsTTL is the lifetime of the temporary credentials the
	// container credentials endpoint mints; 0 means workloadcreds.DefaultTTL
	// (1 hour), the least is workloadcreds.MinTTL (30 minutes).
	CredentialsTTL time.Duration

	Logger *slog.Logger
}

// DefaultTokenTTL is how long a registration token stays valid.
const DefaultTokenTTL = 4 * time.Hour

// Server is an assembled mpmeter.
type Server struct {
	// Store is Config.Store behind the marketplace read cache.
	Store   mpmeter.Store
	Keys    *keys.Manager
	Service *service.Service
	Metrics *metrics.Metrics
	// Credentials serves workloads' temporary credentials (mounted at
	// workloadcreds.Pattern).
	Credentials *workloadcreds.Issuer
	Handler     http.Handler
	Logger      *slog.Logger
	// SeedSummary says what the seed put in the store.
	SeedSummary seed.Summary
	// Clock is the service clock (Config.Clock, or the virtual clock New
	// made): what background work such as purging judges expiry by.
	Clock mpmeter.Clock
}

// New applies the seed to cfg.Store, ensures a signing key, and builds the
// HTTP handler. It does not close cfg.Store, also not when it fails.
func New(ctx context.Context, cfg Config) (*Server, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.TokenTTL <= 0 {
		cfg.TokenTTL = DefaultTokenTTL
	}
	if cfg.Store == nil {
		return nil, errors.New("server: Config.Store is nil: open one with sqlstore.Open")
	}
	m := cfg.Metrics
	if m == nil {
		m = metrics.New()
	}
	st := storecache.New(cfg.Store, cfg.CacheTTL, cfg.WallClock)
	s := &Server{Store: st, Logger: cfg.Logger, Metrics: m}
	fail := func(err error) (*Server, error) { return nil, err }
	if cfg.Clock == nil {
		vc, err := vclock.New(ctx, st, 0)
		if err != nil {
			return fail(fmt.Errorf("service clock: %w", err))
		}
		if off := vc.Offset(); off != 0 {
			cfg.Logger.Info("the service clock is virtual", "offset", off.String(), "now", vc.Now().UTC().Format(time.RFC3339))
		}
		cfg.Clock = vc
	}
	s.Clock = cfg.Clock
	if cfg.Seed != nil {
		sum, err := cfg.Seed.Apply(ctx, st, cfg.Clock.Now(), cfg.TokenTTL)
		if err != nil {
			return fail(fmt.Errorf("applying seed: %w", err))
		}
		s.SeedSummary = sum
	}
	if cfg.KeyEncryptionKey == "" {
		cfg.Logger.Warn("signing keys are stored unencrypted: set --key-encryption-key (MPMETER_KEY_ENCRYPTION_KEY) to encrypt them at rest")
	}
	var err error
	s.Keys, err = keys.New(keys.Config{Store: st, Clock: cfg.Clock, EncryptionKey: cfg.KeyEncryptionKey})
	if err != nil {
		return fail(err)
	}
	if err := s.Keys.Ensure(ctx); err != nil {
		return fail(fmt.Errorf("signing keys: %w", err))
	}
	s.Service, err = service.New(service.Config{
		Store:           st,
		Clock:           cfg.Clock,
		Signer:          s.Keys,
		Observer:        s.Metrics,
		UsageWindow:     cfg.UsageWindow,
		FutureTolerance: cfg.FutureTolerance,
		ClientTokenTTL:  cfg.ClientTokenTTL,
	})
	if err != nil {
		return fail(err)
	}
	verifier := &sigv4.Verifier{Keys: st, Now: cfg.WallClock, MaxSkew: cfg.MaxSkew, ServiceClock: cfg.Clock}
	s.Credentials = workloadcreds.New(st, cfg.Clock, cfg.WallClock, cfg.CredentialsTTL, cfg.Logger)
	apiOpts := awsjson.Options{Logger: cfg.Logger}
	if cfg.Regions != nil {
		apiOpts.Regions = cfg.Regions
	}
	if cfg.RateLimit > 0 {
		apiOpts.Limiter = ratelimit.New(cfg.RateLimit, cfg.RateBurst, cfg.WallClock)
	}
	api := awsjson.NewHandler(s.Service, verifier, apiOpts)

	mux := http.NewServeMux()
	mux.Handle("/", middleware.Wrap(api, middleware.Options{Logger: cfg.Logger, Observer: s.Metrics, OnPanic: awsjson.WriteInternalError}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /keys/public/{version}", s.servePublicKey)
	mux.Handle("GET /metrics", s.Metrics.Handler())
	mux.Handle(workloadcreds.Pattern, s.Credentials)
	s.Handler = mux
	return s, nil
}

// servePublicKey answers GET /keys/public/{version} (a number, optionally
// with ".pem") with the PEM a seller's container verifies tokens with.
func (s *Server) servePublicKey(w http.ResponseWriter, r *http.Request) {
	v, err := strconv.Atoi(strings.TrimSuffix(r.PathValue("version"), ".pem"))
	if err != nil || v < 1 {
		http.Error(w, "version must be a positive number", http.StatusBadRequest)
		return
	}
	pemBytes, err := s.Keys.PublicKeyPEM(r.Context(), v)
	if err != nil {
		http.Error(w, fmt.Sprintf("no public key version %d", v), http.StatusNotFound)
		return
	}
	w.Header().Set("Content-Type", "application/x-pem-file")
	w.Write(pemBytes)
}
