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
	"strings"
	"sync"
	"time"

	"github.com/mpmeter/mpmeter"
	"github.com/mpmeter/mpmeter/awsjson"
	"github.com/mpmeter/mpmeter/internal/cli"
	"github.com/mpmeter/mpmeter/limits"
	"github.com/mpmeter/mpmeter/metrics"
	"github.com/mpmeter/mpmeter/seed"
	"github.com/mpmeter/mpmeter/server"
	"github.com/mpmeter/mpmeter/service"
	"github.com/mpmeter/mpmeter/sqlstore"
	"github.com/mpmeter/mpmeter/storecache"
)

// serveConfig is the serve command's settings.
type serveConfig struct {
	listen, db, seedPath, logLevel, logFormat, keyEncryptionKey string
	adminListen                                                 string
	demo, pprof                                                 bool
	usageWindow, futureTolerance, tokenTTL, clientTokenTTL      time.Duration
	maxSkew, shutdownTimeout, cacheTTL                          time.Duration
	rateLimit                                                   float64
	rateBurst                                                   int
	// Bounds of both listeners (package limits) and the API's body budget.
	maxConnections, maxInFlight int
	requestTimeout              time.Duration
	maxBodyMemory               int64
	metricsOnAPI                bool
}

func serveFlags(c *serveConfig) *flag.FlagSet {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.StringVar(&c.listen, "listen", "127.0.0.1:8080", "address to serve the API on (port 0 picks a free one)")
	fs.StringVar(&c.db, "db", "mpmeter.db", "SQLite database file, or a postgres:// URL")
	fs.StringVar(&c.seedPath, "seed", "", "YAML seed file to apply at start (idempotent)")
	fs.BoolVar(&c.demo, "demo", false, "start with the built-in demo seed in a temporary database (unless --db is given)")
	fs.DurationVar(&c.usageWindow, "usage-window", service.DefaultUsageWindow, "how far in the past usage timestamps are accepted")
	fs.DurationVar(&c.futureTolerance, "future-tolerance", 0, "how far in the future usage timestamps are accepted")
	fs.DurationVar(&c.tokenTTL, "token-ttl", server.DefaultTokenTTL, "lifetime of seeded registration tokens without expires_at")
	fs.DurationVar(&c.clientTokenTTL, "client-token-ttl", service.DefaultClientTokenTTL, "how long MeterUsage ClientTokens are remembered")
	fs.DurationVar(&c.maxSkew, "max-skew", 15*time.Minute, "allowed difference between a request's X-Amz-Date and the wall clock")
	fs.StringVar(&c.keyEncryptionKey, "key-encryption-key", "", "secret that encrypts RegisterUsage signing keys at rest (prefer the environment variable)")
	fs.Float64Var(&c.rateLimit, "rate-limit", 0, "calls per second each account may make to each operation before ThrottlingException (0: no limit)")
	fs.IntVar(&c.rateBurst, "rate-burst", 10, "how many calls above --rate-limit a burst may make")
	fs.DurationVar(&c.cacheTTL, "cache-ttl", storecache.DefaultTTL, "how long marketplace rows changed by another node or process may be served from memory")
	fs.StringVar(&c.adminListen, "admin-listen", "", "address of the admin listener (/metrics, /healthz, and /debug/pprof with --pprof); empty: none")
	fs.BoolVar(&c.pprof, "pprof", false, "expose net/http/pprof on the admin listener")
	fs.StringVar(&c.logLevel, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&c.logFormat, "log-format", "text", "text or json")
	fs.DurationVar(&c.shutdownTimeout, "shutdown-timeout", 10*time.Second, "how long to let requests finish on SIGINT/SIGTERM before closing what is left")
	fs.IntVar(&c.maxConnections, "max-connections", limits.DefaultMaxConnections, "open connections per listener; beyond them requests answer 503 ServiceUnavailable")
	fs.IntVar(&c.maxInFlight, "max-in-flight", limits.DefaultMaxInFlight, "requests in flight per listener; beyond them requests answer 503 ServiceUnavailable")
	fs.DurationVar(&c.requestTimeout, "request-timeout", limits.DefaultRequestTimeout, "deadline of each request: reading it, the work (database included) and, with 5s more, the answer")
	fs.Int64Var(&c.maxBodyMemory, "max-body-memory", awsjson.DefaultMaxBodyBytesInFlight, "bytes of request bodies held at once; beyond them requests answer 503 ServiceUnavailable")
	fs.BoolVar(&c.metricsOnAPI, "metrics-on-api", false, "also serve /metrics on the API listener (it is always on --admin-listen)")
	return fs
}

func (c *serveConfig) validate() error {
	var errs []error
	for name, d := range map[string]time.Duration{"cache-ttl": c.cacheTTL, "usage-window": c.usageWindow, "token-ttl": c.tokenTTL, "client-token-ttl": c.clientTokenTTL, "max-skew": c.maxSkew} {
		if d <= 0 {
			errs = append(errs, fmt.Errorf("--%s must be positive, got %s", name, d))
		}
	}
	if c.futureTolerance < 0 {
		errs = append(errs, fmt.Errorf("--future-tolerance must not be negative"))
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
	if c.maxConnections < 1 || c.maxInFlight < 1 {
		errs = append(errs, fmt.Errorf("--max-connections and --max-in-flight must be at least 1"))
	}
	if c.requestTimeout <= 0 || c.shutdownTimeout <= 0 {
		errs = append(errs, fmt.Errorf("--request-timeout and --shutdown-timeout must be positive"))
	}
	if c.maxBodyMemory < awsjson.MaxBodyBytes {
		errs = append(errs, fmt.Errorf("--max-body-memory must be at least %d (one request's limit)", awsjson.MaxBodyBytes))
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
	srv, err := server.New(ctx, server.Config{
		Store:            st,
		Metrics:          m,
		Seed:             seedFile,
		UsageWindow:      c.usageWindow,
		FutureTolerance:  c.futureTolerance,
		TokenTTL:         c.tokenTTL,
		ClientTokenTTL:   c.clientTokenTTL,
		MaxSkew:          c.maxSkew,
		KeyEncryptionKey: c.keyEncryptionKey,
		RateLimit:        c.rateLimit,
		CacheTTL:         c.cacheTTL,
		RateBurst:        c.rateBurst,
		Logger:           logger,

		MetricsOnAPI:         c.metricsOnAPI,
		MaxBodyBytesInFlight: c.maxBodyMemory,
	})
	if err != nil {
		return err
	}

	ln, err := net.Listen("tcp", c.listen)
	if err != nil {
		return err
	}
	endpoint := "http://" + ln.Addr().String()
	bounds := limits.Options{
		MaxConnections: c.maxConnections,
		MaxInFlight:    c.maxInFlight,
		RequestTimeout: c.requestTimeout,
		Reject: func(w http.ResponseWriter, r *http.Request) {
			// Counted as an unknown operation: the target is not
			// looked at before the request is admitted.
			srv.Metrics.ObserveRequest("unknown", mpmeter.CodeServiceUnavailable, 0)
			rejectBusy(w, r)
		},
		Logger: logger,
	}
	logger.Info("listening", "endpoint", endpoint, "db", cli.RedactDSN(c.db), "accounts", srv.SeedSummary.Accounts, "products", srv.SeedSummary.Products)
	fmt.Fprintf(stdout, "mpmeter: serving the AWS Marketplace Metering API at %s\n", endpoint)
	if c.demo {
		printDemo(stdout, endpoint)
	}

	errc := make(chan error, 2)
	servers := []*http.Server{limits.Serve(ln, srv.Handler, bounds, errc)}
	if c.adminListen != "" {
		adminLn, err := net.Listen("tcp", c.adminListen)
		if err != nil {
			servers[0].Close()
			return fmt.Errorf("--admin-listen: %w", err)
		}
		// The same timeouts and limits as the API listener.
		servers = append(servers, limits.Serve(adminLn, adminMux(srv, c.pprof), bounds, errc))
		logger.Info("admin listener", "endpoint", "http://"+adminLn.Addr().String(), "pprof", c.pprof)
	}
	select {
	case err := <-errc:
		for _, hs := range servers {
			hs.Close()
		}
		return err
	case <-ctx.Done():
	}
	logger.Info("shutting down", "timeout", c.shutdownTimeout.String())
	shutdown(servers, c.shutdownTimeout, logger)
	return nil
}

// shutdown drains every server at once: each stops accepting, lets the
// requests in flight finish within timeout, and then has what is still open
// (a trickling upload, a stuck request) closed. Stopping is the operator's
// wish, so running out of time is logged, not an error.
func shutdown(servers []*http.Server, timeout time.Duration, logger *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var wg sync.WaitGroup
	for _, hs := range servers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := hs.Shutdown(ctx); err != nil {
				logger.Warn("requests still open at the shutdown timeout were closed", "err", err)
				hs.Close()
			}
		}()
	}
	wg.Wait()
}

// rejectBusy is the answer beyond a listener's bounds: AWS's
// ServiceUnavailable, which SDKs retry with backoff.
func rejectBusy(w http.ResponseWriter, _ *http.Request) {
	awsjson.WriteError(w, &mpmeter.Error{Code: mpmeter.CodeServiceUnavailable, Message: "The service is unavailable. Retry your request."})
}

// adminMux serves the operator's endpoints, apart from the API.
func adminMux(srv *server.Server, withPprof bool) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", srv.Metrics.Handler())
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok\n")) })
	if withPprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", redactedCmdline)
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
  Buyer workloads (MeterUsage/RegisterUsage): EC2 AKIAEXAMPLEEC2000001/ec2-secret, ECS AKIAEXAMPLEECS000001/ecs-secret

Try it with the AWS CLI:
  export AWS_ACCESS_KEY_ID=AKIAEXAMPLESELLER001 AWS_SECRET_ACCESS_KEY=seller-secret AWS_DEFAULT_REGION=us-east-1
  aws meteringmarketplace resolve-customer --endpoint-url %[1]s --registration-token demo-token-1
  aws meteringmarketplace batch-meter-usage --endpoint-url %[1]s --product-code exampleprod1 \
      --usage-records "CustomerIdentifier=cust-example-1,Dimension=users,Quantity=3,Timestamp=$(date +%%s)"

`, endpoint)
}

// secretFlags are the flags whose values never leave the process.
var secretFlags = map[string]bool{"key-encryption-key": true}

// redactedCmdline is pprof.Cmdline without secrets: the values of
// secretFlags are replaced and --db is redacted (cli.RedactDSN).
func redactedCmdline(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fmt.Fprint(w, strings.Join(redactArgs(os.Args), "\x00"))
}

func redactArgs(args []string) []string {
	out := make([]string, len(args))
	valueOf := "" // the flag whose value the next argument is
	for i, a := range args {
		out[i] = a
		if valueOf != "" {
			out[i] = redactValue(valueOf, a)
			valueOf = ""
			continue
		}
		name, value, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !strings.HasPrefix(a, "-") || (!secretFlags[name] && name != "db") {
			continue
		}
		if hasValue {
			out[i] = a[:len(a)-len(value)] + redactValue(name, value)
		} else {
			valueOf = name
		}
	}
	return out
}

func redactValue(flag, value string) string {
	if flag == "db" {
		return cli.RedactDSN(value)
	}
	return "***"
}
