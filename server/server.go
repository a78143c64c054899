// Package server assembles a running mpmeter from its parts: store, seed,
// signing keys, service, SigV4 verifier and the awsJson handler, behind one
// HTTP mux. cmd/mpmeter, mpmetertest and the benchmark all build on it, so
// the binary, in-process test servers and benchmark targets are the same
// server.
package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/mpmeter/mpmeter"
	"github.com/mpmeter/mpmeter/admin"
	"github.com/mpmeter/mpmeter/audit"
	"github.com/mpmeter/mpmeter/awsjson"
	"github.com/mpmeter/mpmeter/faults"
	"github.com/mpmeter/mpmeter/internal/buildinfo"
	"github.com/mpmeter/mpmeter/keys"
	"github.com/mpmeter/mpmeter/metrics"
	"github.com/mpmeter/mpmeter/middleware"
	"github.com/mpmeter/mpmeter/notify"
	"github.com/mpmeter/mpmeter/ratelimit"
	"github.com/mpmeter/mpmeter/rollup"
	"github.com/mpmeter/mpmeter/seed"
	"github.com/mpmeter/mpmeter/service"
	"github.com/mpmeter/mpmeter/sigv4"
	"github.com/mpmeter/mpmeter/storecache"
	"github.com/mpmeter/mpmeter/vclock"
	"github.com/mpmeter/mpmeter/web"
	"github.com/mpmeter/mpmeter/workloadcreds"
)

// Config is everything a server needs. Zero durations mean the defaults.
type Config struct {
	// Store is the store the server runs on, already open (sqlstore.Open;
	// with sqlstore.WithKeyEncryptionKey it encrypts secrets at rest).
	// The caller owns it: it closes it after the server is done (after
	// http.Server.Shutdown and Server.Close); New and Server never close it. New wraps it in
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
	// RateLimit is the calls per second each account may make to each
	// operation (AWS allows a seller about 10 BatchMeterUsage calls a
	// second); 0 means no limit. RateBurst is the bucket size.
	RateLimit float64
	RateBurst int
	// Quotas are per-operation rates per account and region
	// (ratelimit.AWSQuotas() is AWS's); an operation they name is limited
	// by them instead of RateLimit.
	Quotas ratelimit.Quotas
	// SharedQuotas keeps the quota buckets in the database all nodes
	// share (the PostgreSQL *sqlstore.Store); nil keeps them in this
	// process.
	SharedQuotas ratelimit.SharedBuckets
	// CacheTTL bounds how long marketplace rows (keys, products,
	// subscriptions) changed by another process or node may be served stale;
	// this process's own writes are seen at once. 0 means storecache's
	// default (1s).
	CacheTTL time.Duration
	// CredentialsTTL is the lifetime of the temporary credentials the
	// container credentials endpoint mints; 0 means workloadcreds.DefaultTTL
	// (1 hour), the least is workloadcreds.MinTTL (30 minutes).
	CredentialsTTL time.Duration
	// Build is what GET /healthz reports; the zero Info means the running
	// binary's (buildinfo.Read).
	Build buildinfo.Info
	// MetricsOnAPI also serves /metrics on the API handler; by default it
	// is only on the admin listener (cmd/mpmeter's --admin-listen), out of
	// reach of API clients.
	MetricsOnAPI bool
	// MaxBodyBytesInFlight bounds the memory held by request bodies
	// (awsjson.Options); 0 means awsjson's default.
	MaxBodyBytesInFlight int64

	// AuditOff switches the audit log off (serve --audit=false): no call
	// is recorded. Otherwise every API call is (package audit).
	AuditOff bool
	// AuditRetention is how long audit events are kept, by the service
	// clock; 0 keeps them forever (serve's --audit-retention defaults to
	// audit.DefaultRetention).
	AuditRetention time.Duration
	// AuditFlushInterval and AuditQueueSize tune the audit writer; 0 means
	// audit.DefaultFlushInterval and audit.DefaultQueueSize.
	AuditFlushInterval time.Duration
	AuditQueueSize     int

	// AdminToken is the admin API's bearer token; empty turns the admin
	// API off (every /admin/ path answers 404).
	AdminToken string
	// AdminRoutes register more areas' admin operations (audit, usage).
	AdminRoutes []func(api huma.API)

	// FaultsOff skips fault injection entirely (the benchmark's ceiling):
	// no fault rule is read on the request path. Otherwise the rules in
	// the store apply (package faults, docs/retries.md).
	FaultsOff bool
	// FaultRand draws rate fault rules; nil: randomly seeded.
	FaultRand *rand.Rand
	// Notifications (package notify): the fulfillment POST, SNS and
	// EventBridge deliveries. NotificationsOff switches them off (the admin
	// API then stores subscription changes without sending anything).
	NotificationsOff bool
	// PublicURL is this server's URL as notification endpoints reach it
	// (SubscribeURL, SigningCertURL, UnsubscribeURL, fulfillment links);
	// empty means http://127.0.0.1:8080. cmd/mpmeter and mpmetertest
	// listen first and set it to the listener's.
	PublicURL string
	// Notify tunes the notifier; its Store, Clock, BaseURL, Metrics and
	// Logger are the server's.
	Notify notify.Config

	// UsageRollupOff runs no background roller (package rollup): the daily
	// usage rollup is then left as it is, and summaries read the records of
	// every day not rolled up. Otherwise a store that keeps the rollup
	// (sqlstore) has it kept up to date by the service clock and windows.
	UsageRollupOff bool
	// UsageRollupInterval is how often the roller looks for closed days;
	// 0 means a minute.
	UsageRollupInterval time.Duration

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
	// Audit records every call (nil when Config.AuditOff). Close flushes
	// it. The admin API records its calls with Audit.AdminMiddleware.
	Audit *audit.Recorder
	// Admin is the admin API (mounted at /admin/, on the API listener and
	// the admin listener).
	Admin *admin.API
	// SeedSummary says what the seed put in the store.
	SeedSummary seed.Summary
	// Health answers GET /healthz (also on cmd/mpmeter's admin listener).
	Health http.Handler
	// Clock is the service clock (Config.Clock, or the virtual clock New
	// made): what background work such as purging judges expiry by.
	Clock mpmeter.Clock
	// Notifier sends the buyer journey's notifications (nil when
	// Config.NotificationsOff). Its workers run from New until Close.
	Notifier *notify.Notifier
	// UsageRollup is what the background roller runs with, from New until
	// Close (nil when Config.UsageRollupOff or the store keeps no rollup):
	// rollup.Round(ctx, *UsageRollup) rolls up what is closed now.
	UsageRollup *rollup.Config

	stopRollup func() // stops the roller and waits for it
}

// entitlementNotifier sends entitlement-updated and License Updated when
// the admin API changed a contract's entitlements.
type entitlementNotifier struct{ n *notify.Notifier }

func (e entitlementNotifier) EntitlementsUpdated(ctx context.Context, c admin.EntitlementChange) error {
	return e.n.EntitlementsUpdated(ctx, c.Subscription)
}

func baseURL(configured string) func() string {
	u := strings.TrimRight(configured, "/")
	if u == "" {
		u = "http://127.0.0.1:8080"
	}
	return func() string { return u }
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
	var err error
	s.Keys, err = keys.New(keys.Config{Store: st, Clock: cfg.Clock})
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
	s.Credentials, err = workloadcreds.New(workloadcreds.Config{Store: st, Clock: cfg.Clock, WallClock: cfg.WallClock, TTL: cfg.CredentialsTTL, Logger: cfg.Logger})
	if err != nil {
		return fail(err)
	}
	agreements, err := service.NewAgreementService(service.AgreementConfig{Store: st})
	if err != nil {
		return fail(err)
	}
	apiOpts := awsjson.Options{Logger: cfg.Logger, Entitlement: s.Service, Agreement: agreements, MaxBodyBytesInFlight: cfg.MaxBodyBytesInFlight}
	if !cfg.FaultsOff {
		apiOpts.Faults = faults.New(faults.Config{Store: st, Clock: cfg.Clock, Observer: s.Metrics, Logger: cfg.Logger, Rand: cfg.FaultRand})
	}
	if cfg.Regions != nil {
		apiOpts.Regions = cfg.Regions
	}
	limiter := ratelimit.New(ratelimit.Config{
		Quotas:  cfg.Quotas,
		Default: ratelimit.Rate{PerSecond: cfg.RateLimit, Burst: float64(cfg.RateBurst)},
		Shared:  cfg.SharedQuotas,
		Now:     cfg.WallClock,
		Logger:  cfg.Logger,
	})
	if limiter.Limits() {
		apiOpts.Limiter = limiter
	}
	api := awsjson.NewHandler(s.Service, verifier, apiOpts)
	adminCfg := admin.Config{}
	if _, ok := cfg.Store.(mpmeter.NotificationStore); !ok && !cfg.NotificationsOff {
		// A store that keeps no notifications (the benchmark's ceiling,
		// test doubles): the admin API stores changes without them.
		cfg.Logger.Debug("notifications off: the store keeps no outbox")
		cfg.NotificationsOff = true
	}
	if !cfg.NotificationsOff {
		nc := cfg.Notify
		nc.Store, nc.Clock, nc.BaseURL, nc.Metrics, nc.Logger = st, cfg.Clock, baseURL(cfg.PublicURL), s.Metrics, cfg.Logger
		if nc.WallClock == nil {
			nc.WallClock = cfg.WallClock
		}
		if s.Notifier, err = notify.New(ctx, nc); err != nil {
			return fail(err)
		}
		if cfg.Seed != nil {
			sum, err := cfg.Seed.ApplyNotifications(ctx, s.Notifier)
			if err != nil {
				return fail(fmt.Errorf("applying seed: %w", err))
			}
			s.SeedSummary.SNSSubscriptions, s.SeedSummary.EventBridgeTargets = sum.SNSSubscriptions, sum.EventBridgeTargets
		}
		adminCfg.Notifications, adminCfg.NotificationStore = s.Notifier, st
		adminCfg.EntitlementNotifier = entitlementNotifier{s.Notifier}
	} else if cfg.Seed != nil && len(cfg.Seed.SNSSubscriptions)+len(cfg.Seed.EventBridgeTargets) > 0 {
		cfg.Logger.Warn("notifications are off: the seed's sns_subscriptions and eventbridge_targets are not applied",
			"sns_subscriptions", len(cfg.Seed.SNSSubscriptions), "eventbridge_targets", len(cfg.Seed.EventBridgeTargets))
	}
	s.Admin, err = admin.New(admin.Config{
		Notifications:       adminCfg.Notifications,
		NotificationStore:   adminCfg.NotificationStore,
		EntitlementNotifier: adminCfg.EntitlementNotifier,
		Token:               cfg.AdminToken,
		Store:               st,
		Clock:               cfg.Clock,
		Keys:                s.Keys,
		RevocationDelay:     revocationDelay(cfg.Store, cfg.CacheTTL),
		TokenTTL:            cfg.TokenTTL,
		Routes:              append([]func(huma.API){admin.FaultRoutes(admin.FaultsConfig{Store: st, Clock: cfg.Clock})}, cfg.AdminRoutes...),
		Logger:              cfg.Logger,
	})
	if err != nil {
		return fail(err)
	}
	wrapOpts := middleware.Options{Logger: cfg.Logger, Observer: s.Metrics, OnPanic: awsjson.WriteInternalError}
	if !cfg.AuditOff {
		// Last: nothing after it can fail, so New never leaves a writer
		// running behind an error.
		s.Audit, err = audit.New(audit.Config{
			Store: st, Clock: cfg.Clock, Observer: s.Metrics, Logger: cfg.Logger,
			Retention: cfg.AuditRetention, FlushInterval: cfg.AuditFlushInterval, QueueSize: cfg.AuditQueueSize,
		})
		if err != nil {
			return fail(err)
		}
		wrapOpts.Recorder = s.Audit
	}

	mux := http.NewServeMux()
	mux.Handle("/", middleware.Wrap(api, wrapOpts))
	if cfg.Build == (buildinfo.Info{}) {
		cfg.Build = buildinfo.Read(buildinfo.Info{})
	}
	s.Health = healthHandler(cfg.Build)
	mux.Handle("GET /healthz", s.Health)
	mux.HandleFunc("GET /keys/public/{version}", s.servePublicKey)
	if cfg.MetricsOnAPI {
		mux.Handle("GET /metrics", s.Metrics.Handler())
	}
	mux.Handle(workloadcreds.Pattern, s.Credentials)
	adminHandler := s.Audit.AdminMiddleware(s.Admin)
	mux.Handle("/admin/", adminHandler)
	// The web console (docs/console.md): its changes are calls of the
	// admin handler above, in process.
	console, err := web.New(web.Config{Token: cfg.AdminToken, Store: st, Clock: cfg.Clock, Admin: adminHandler, Logger: cfg.Logger})
	if err != nil {
		s.Close(ctx) // the audit writer started above
		return fail(err)
	}
	mux.Handle(web.Prefix, console)
	if s.Notifier != nil {
		s.Notifier.Routes(mux)
		s.Notifier.Start() // last: nothing after it can fail
	}
	if ru, ok := cfg.Store.(rollup.Store); ok && !cfg.UsageRollupOff {
		s.UsageRollup = &rollup.Config{Store: ru, Clock: cfg.Clock, Interval: cfg.UsageRollupInterval, Observer: s.Metrics, Logger: cfg.Logger,
			ClosedAfter: rollup.ClosedAfter(s.Service.UsageWindow(), s.Service.FutureTolerance())}
		ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		stopped := make(chan struct{})
		go func() {
			defer close(stopped)
			rollup.Run(ctx, *s.UsageRollup)
		}()
		s.stopRollup = func() { cancel(); <-stopped }
	}
	s.Handler = mux
	return s, nil
}

// healthHandler answers 200 with the build's identity, once New has
// returned (the store is open, migrated and seeded): what a load
// balancer, a container HEALTHCHECK (mpmeter healthcheck) or an operator
// asking "which build is this node?" reads.
func healthHandler(build buildinfo.Info) http.Handler {
	body, _ := json.Marshal(struct {
		Status string `json:"status"`
		buildinfo.Info
	}{"ok", build})
	body = append(body, '\n')
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(body)
	})
}

// Close stops what the server runs in the background (the usage roller, the
// notifier's workers) and writes the audit events still queued. Call it
// after the HTTP server has shut down (no request in flight) and before
// closing the store; ctx bounds the wait.
func (s *Server) Close(ctx context.Context) error {
	if s.stopRollup != nil {
		s.stopRollup()
	}
	if s.Notifier != nil {
		s.Notifier.Stop()
	}
	if s.Audit == nil {
		return nil
	}
	return s.Audit.Close(ctx)
}

// revocationDelay is how long an admin revoke waits before it answers: the
// cache TTL of every node that may hold the key (see admin.Config). A
// SQLite database serves one process, whose own cache the revoke clears at
// once; a PostgreSQL one is shared by nodes that must all have dropped the
// key, which they have once the TTL has passed (every node needs the same
// --cache-ttl).
func revocationDelay(st mpmeter.Store, ttl time.Duration) time.Duration {
	if d, ok := st.(interface{ Dialect() string }); ok && d.Dialect() == "sqlite" {
		return 0
	}
	if ttl <= 0 {
		ttl = storecache.DefaultTTL
	}
	return ttl
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
