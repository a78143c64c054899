package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"path/filepath"
	"time"

	"github.com/mpmeter/mpmeter"
	"github.com/mpmeter/mpmeter/internal/cli"
	"github.com/mpmeter/mpmeter/metrics"
	"github.com/mpmeter/mpmeter/purge"
	"github.com/mpmeter/mpmeter/seed"
	"github.com/mpmeter/mpmeter/server"
	"github.com/mpmeter/mpmeter/service"
	"github.com/mpmeter/mpmeter/sqlstore"
	"github.com/mpmeter/mpmeter/storecache"
	"github.com/mpmeter/mpmeter/workloadcreds"
)

// serveConfig is the serve command's settings.
type serveConfig struct {
	listen, db, seedPath, logLevel, logFormat, keyEncryptionKey string
	adminListen, regions                                        string
	demo, pprof                                                 bool
	usageWindow, futureTolerance, tokenTTL, clientTokenTTL      time.Duration
	maxSkew, shutdownTimeout, cacheTTL                          time.Duration
	credentialsTTL                                              time.Duration
	rateLimit                                                   float64
	rateBurst                                                   int
}

func serveFlags(c *serveConfig) *flag.FlagSet {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.StringVar(&c.listen, "listen", "127.0.0.1:8080", "address to serve the API on (port 0 picks a free one)")
	fs.StringVar(&c.db, "db", "mpmeter.db", "SQLite database file, or a postgres:// URL")
	fs.StringVar(&c.seedPath, "seed", "", "YAML seed file to apply at start (idempotent)")
	fs.BoolVar(&c.demo, "demo", false, "start with the built-in demo seed in a temporary database (unless --db is given)")
	fs.DurationVar(&c.usageWindow, "usage-window", service.DefaultUsageWindow, "how long after the event usage is accepted (24h: AWS's newer rule; last month's usage is always refused from 06:00 UTC on the 1st)")
	fs.DurationVar(&c.futureTolerance, "future-tolerance", service.DefaultFutureTolerance, "how far in the future usage timestamps are accepted (0: not at all)")
	fs.StringVar(&c.regions, "regions", "", "more regions to offer: REGION (every operation) or OPERATION=REGION, separated by commas")
	fs.DurationVar(&c.tokenTTL, "token-ttl", server.DefaultTokenTTL, "lifetime of seeded registration tokens without expires_at")
	fs.DurationVar(&c.clientTokenTTL, "client-token-ttl", service.DefaultClientTokenTTL, "how long MeterUsage ClientTokens are remembered")
	fs.DurationVar(&c.credentialsTTL, "credentials-ttl", workloadcreds.DefaultTTL, "lifetime of the temporary credentials the container credentials endpoint mints (at least 30m)")
	fs.DurationVar(&c.maxSkew, "max-skew", 15*time.Minute, "allowed difference between a request's X-Amz-Date and the wall clock")
	fs.StringVar(&c.keyEncryptionKey, "key-encryption-key", "", "secret that encrypts RegisterUsage signing keys at rest (prefer the environment variable)")
	fs.Float64Var(&c.rateLimit, "rate-limit", 0, "calls per second each account may make to each operation before ThrottlingException (0: no limit)")
	fs.IntVar(&c.rateBurst, "rate-burst", 10, "how many calls above --rate-limit a burst may make")
	fs.DurationVar(&c.cacheTTL, "cache-ttl", storecache.DefaultTTL, "how long marketplace rows changed by another node or process may be served from memory")
	fs.StringVar(&c.adminListen, "admin-listen", "", "address of the admin listener (/metrics, /healthz, and /debug/pprof with --pprof); empty: none")
	fs.BoolVar(&c.pprof, "pprof", false, "expose net/http/pprof on the admin listener")
	fs.StringVar(&c.logLevel, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&c.logFormat, "log-format", "text", "text or json")
	fs.DurationVar(&c.shutdownTimeout, "shutdown-timeout", 10*time.Second, "how long to let requests finish on SIGINT/SIGTERM")
	return fs
}

func (c *serveConfig) validate() error {
	var errs []error
	for name, d := range map[string]time.Duration{"cache-ttl": c.cacheTTL, "usage-window": c.usageWindow, "token-ttl": c.tokenTTL, "client-token-ttl": c.clientTokenTTL, "max-skew": c.maxSkew} {
		if d <= 0 {
			errs = append(errs, fmt.Errorf("--%s must be positive, got %s", name, d))
		}
	}
	if c.credentialsTTL < workloadcreds.MinTTL {
		errs = append(errs, fmt.Errorf("--credentials-ttl must be at least %s (credentials are renewed %s before they expire), got %s",
			workloadcreds.MinTTL, workloadcreds.RenewBefore, c.credentialsTTL))
	}
	if c.futureTolerance < 0 {
		errs = append(errs, fmt.Errorf("--future-tolerance must not be negative"))
	}
	if err := mpmeter.DefaultRegions().Add(c.regions); err != nil {
		errs = append(errs, fmt.Errorf("--regions: %v", err))
	}
	if _, _, err := net.SplitHostPort(c.listen); err != nil {
		errs = append(errs, fmt.Errorf("--listen %q: %v", c.listen, err))
	}
	if c.logFormat != "text" && c.logFormat != "json" {
		errs = append(errs, fmt.Errorf("--log-format must be text or json"))
	}
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(c.logLevel)); err != nil {
		errs = append(errs, fmt.Errorf("--log-level: %v", err))
	}
	if c.rateLimit < 0 || c.rateBurst < 1 {
		errs = append(errs, fmt.Errorf("--rate-limit must not be negative and --rate-burst must be at least 1"))
	}
	if c.pprof && c.adminListen == "" {
		errs = append(errs, fmt.Errorf("--pprof needs --admin-listen: profiles are never served on the API listener"))
	}
	if c.db == "" {
		errs = append(errs, fmt.Errorf("--db must not be empty"))
	}
	return errors.Join(errs...)
}

func newLogger(w io.Writer, level, format string) *slog.Logger {
	var lvl slog.Level
	lvl.UnmarshalText([]byte(level))
	opts := &slog.HandlerOptions{Level: lvl}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

func serve(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	var c serveConfig
	fs := serveFlags(&c)
	if err := parseFlags(fs, args, getenv, stderr); err != nil {
		return err
	}
	dbGiven := false
	fs.Visit(func(f *flag.Flag) { dbGiven = dbGiven || f.Name == "db" })
	dbGiven = dbGiven || getenv("MPMETER_DB") != ""
	if err := c.validate(); err != nil {
		return err
	}
	logger := newLogger(stderr, c.logLevel, c.logFormat)

	var seedFile *seed.File
	switch {
	case c.seedPath != "":
		f, err := seed.Load(c.seedPath)
		if err != nil {
			return err
		}
		seedFile = f
	case c.demo:
		seedFile = seed.Demo()
	}
	if c.demo && !dbGiven {
		dir, err := os.MkdirTemp("", "mpmeter-demo-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		c.db = filepath.Join(dir, "demo.db")
	}

	// The store is this command's: opened here, closed after the
	// listener has shut down. Its commit observer feeds the server's
	// metrics.
	m := metrics.New()
	st, err := sqlstore.Open(ctx, c.db, sqlstore.WithCommitObserver(m.ObserveCommit))
	if err != nil {
		return fmt.Errorf("opening database: %w", err)
	}
	defer st.Close()
	regions := mpmeter.DefaultRegions()
	if err := regions.Add(c.regions); err != nil {
		return err
	}
	futureTolerance := c.futureTolerance
	if futureTolerance == 0 {
		futureTolerance = service.NoFutureTolerance
	}
	srv, err := server.New(ctx, server.Config{
		Store:            st,
		Metrics:          m,
		Seed:             seedFile,
		UsageWindow:      c.usageWindow,
		FutureTolerance:  futureTolerance,
		Regions:          regions,
		TokenTTL:         c.tokenTTL,
		ClientTokenTTL:   c.clientTokenTTL,
		CredentialsTTL:   c.credentialsTTL,
		MaxSkew:          c.maxSkew,
		KeyEncryptionKey: c.keyEncryptionKey,
		RateLimit:        c.rateLimit,
		CacheTTL:         c.cacheTTL,
		RateBurst:        c.rateBurst,
		Logger:           logger,
	})
	if err != nil {
		return err
	}

	ln, err := net.Listen("tcp", c.listen)
	if err != nil {
		return err
	}
	endpoint := "http://" + ln.Addr().String()
	hs := &http.Server{
		Handler:           srv.Handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	logger.Info("listening", "endpoint", endpoint, "db", cli.RedactDSN(c.db), "accounts", srv.SeedSummary.Accounts, "products", srv.SeedSummary.Products)
	fmt.Fprintf(stdout, "mpmeter: serving the AWS Marketplace Metering API at %s\n", endpoint)
	if c.demo {
		printDemo(stdout, endpoint)
	}

	// Expired client and registration tokens are deleted in the
	// background, stopped before the store is closed.
	purgeCtx, stopPurge := context.WithCancel(ctx)
	purged := make(chan struct{})
	go func() {
		defer close(purged)
		purge.Run(purgeCtx, purge.Config{Store: srv.Store, Clock: srv.Clock, Observer: m, Logger: logger})
	}()
	defer func() { stopPurge(); <-purged }()

	errc := make(chan error, 2)
	go func() { errc <- hs.Serve(ln) }()
	if c.adminListen != "" {
		adminLn, err := net.Listen("tcp", c.adminListen)
		if err != nil {
			return fmt.Errorf("--admin-listen: %w", err)
		}
		admin := &http.Server{Handler: adminMux(srv, c.pprof), ReadHeaderTimeout: 10 * time.Second}
		defer admin.Close()
		go func() { errc <- admin.Serve(adminLn) }()
		logger.Info("admin listener", "endpoint", "http://"+adminLn.Addr().String(), "pprof", c.pprof)
	}
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	logger.Info("shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), c.shutdownTimeout)
	defer cancel()
	return hs.Shutdown(shutdownCtx)
}

// adminMux serves the operator's endpoints, apart from the API.
func adminMux(srv *server.Server, withPprof bool) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", srv.Metrics.Handler())
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok\n")) })
	mux.Handle(workloadcreds.Pattern, srv.Credentials)
	if withPprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	return mux
}

func printDemo(w io.Writer, endpoint string) {
	fmt.Fprintf(w, `
Demo marketplace loaded (a temporary database unless --db was given).
  Seller 111122223333:  AWS_ACCESS_KEY_ID=AKIAEXAMPLESELLER001  AWS_SECRET_ACCESS_KEY=seller-secret
  SaaS product exampleprod1 (dimensions users, gigabytes); customer cust-example-1; registration token demo-token-1
  SaaS product exampleca1 with concurrent agreements: buyer 444455556666 holds two; tokens demo-token-ca-1, demo-token-ca-2
  Buyer workloads (MeterUsage/RegisterUsage): EC2 AKIAEXAMPLEEC2000001/ec2-secret, ECS AKIAEXAMPLEECS000001/ecs-secret

Try it with the AWS CLI:
  export AWS_ACCESS_KEY_ID=AKIAEXAMPLESELLER001 AWS_SECRET_ACCESS_KEY=seller-secret AWS_DEFAULT_REGION=us-east-1
  aws meteringmarketplace resolve-customer --endpoint-url %[1]s --registration-token demo-token-1
  aws meteringmarketplace batch-meter-usage --endpoint-url %[1]s --product-code exampleprod1 \
      --usage-records "CustomerIdentifier=cust-example-1,Dimension=users,Quantity=3,Timestamp=$(date +%%s)"

`, endpoint)
}
