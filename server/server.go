// Package server assembles a running mpmeter from its parts: store, seed,
// signing keys, service, SigV4 verifier and the awsJson handler, behind one
// HTTP mux. cmd/mpmeter and mpmetertest both build on it, so the binary and
// in-process test servers are the same server.
package server

import (
	"context"
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
	"github.com/mpmeter/mpmeter/ratelimit"
	"github.com/mpmeter/mpmeter/seed"
	"github.com/mpmeter/mpmeter/service"
	"github.com/mpmeter/mpmeter/sigv4"
	"github.com/mpmeter/mpmeter/sqlstore"
	"github.com/mpmeter/mpmeter/storecache"
	"github.com/mpmeter/mpmeter/vclock"
	"github.com/mpmeter/mpmeter/workloadcreds"
)

// Config is everything a server needs. Zero durations mean the defaults.
type Config struct {
	// DB is a SQLite file path or a postgres:// URL.
	DB string
	// Seed is applied at start (idempotently) when non-nil.
	Seed *seed.File
	// Clock is the service clock; nil means the virtual clock kept in the
	// database (wall time until someone sets it: mpmeter clock ...), so
	// every node on one database agrees on the time.
	Clock mpmeter.Clock
	// WallClock is what SigV4's skew check compares with; nil means
	// time.Now. Tests with recorded signatures replace it.
	WallClock func() time.Time

	UsageWindow     time.Duration
	FutureTolerance time.Duration
	TokenTTL        time.Duration // registration tokens seeded without expires_at
	ClientTokenTTL  time.Duration
	MaxSkew         time.Duration
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
	// DiscardUsage switches the usage write off: every record is answered
	// as stored and none is. Only for measuring the benchmark's ceiling.
	DiscardUsage bool

	Logger *slog.Logger
}

// DefaultTokenTTL is how long a registration token stays valid.
const DefaultTokenTTL = 4 * time.Hour

// Server is an assembled mpmeter.
type Server struct {
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
}

// New opens the store, applies the seed, ensures a signing key, and builds
// the HTTP handler. Close the returned server's Store when done.
func New(ctx context.Context, cfg Config) (*Server, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.TokenTTL <= 0 {
		cfg.TokenTTL = DefaultTokenTTL
	}
	m := metrics.New()
	db, err := sqlstore.Open(ctx, cfg.DB, sqlstore.WithCommitObserver(m.ObserveCommit))
	if err != nil {
		return nil, fmt.Errorf("opening database: %w", err)
	}
	st := storecache.New(db, cfg.CacheTTL, cfg.WallClock)
	s := &Server{Store: st, Logger: cfg.Logger, Metrics: m}
	fail := func(err error) (*Server, error) {
		st.Close()
		return nil, err
	}
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
	s.Keys, err = keys.New(st, cfg.Clock, cfg.KeyEncryptionKey)
	if err != nil {
		return fail(err)
	}
	if err := s.Keys.Ensure(ctx); err != nil {
		return fail(fmt.Errorf("signing keys: %w", err))
	}
	var serviceStore mpmeter.Store = st
	if cfg.DiscardUsage {
		cfg.Logger.Warn("usage records are discarded (benchmark ceiling mode): nothing metered is stored")
		serviceStore = discardUsage{st}
	}
	s.Service = service.New(serviceStore, cfg.Clock, service.Config{
		UsageWindow:     cfg.UsageWindow,
		FutureTolerance: cfg.FutureTolerance,
		ClientTokenTTL:  cfg.ClientTokenTTL,
	}, s.Keys)
	verifier := &sigv4.Verifier{Keys: st, Now: cfg.WallClock, MaxSkew: cfg.MaxSkew, ServiceClock: cfg.Clock}
	s.Credentials = workloadcreds.New(st, cfg.Clock, cfg.WallClock, cfg.CredentialsTTL, cfg.Logger)
	s.Service.SetObserver(s.Metrics)
	apiOpts := awsjson.Options{Logger: cfg.Logger, Observer: s.Metrics}
	if cfg.RateLimit > 0 {
		apiOpts.Limiter = ratelimit.New(cfg.RateLimit, cfg.RateBurst, cfg.WallClock)
	}
	api := awsjson.NewHandler(s.Service, verifier, apiOpts)

	mux := http.NewServeMux()
	mux.Handle("/", api)
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

// Close closes the store.
func (s *Server) Close() error { return s.Store.Close() }
