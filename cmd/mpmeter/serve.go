package main

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
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
	"github.com/mpmeter/mpmeter/audit"
	"github.com/mpmeter/mpmeter/awsjson"
	"github.com/mpmeter/mpmeter/internal/cli"
	"github.com/mpmeter/mpmeter/limits"
	"github.com/mpmeter/mpmeter/metrics"
	"github.com/mpmeter/mpmeter/notify"
	"github.com/mpmeter/mpmeter/purge"
	"github.com/mpmeter/mpmeter/ratelimit"
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
	adminListen, regions, adminToken                            string
	demo, pprof, audit                                          bool
	auditRetention                                              time.Duration
	usageWindow, futureTolerance, tokenTTL, clientTokenTTL      time.Duration
	maxSkew, shutdownTimeout, cacheTTL                          time.Duration
	credentialsTTL                                              time.Duration
	rateLimit                                                   float64
	rateBurst                                                   int
	quotas, quota                                               string
	tlsCert, tlsKey                                             string
	// Bounds of both listeners (package limits) and the API's body budget.
	maxConnections, maxInFlight int
	requestTimeout              time.Duration
	maxBodyMemory               int64
	metricsOnAPI                bool
	// Notifications (package notify).
	notifications                                   bool
	publicURL, snsTopicAccount, snsSignatureVersion string
	notificationRetryDelay                          time.Duration
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
	fs.StringVar(&c.keyEncryptionKey, "key-encryption-key", "", "secret that encrypts access-key secrets, session and credentials tokens and signing keys at rest (prefer MPMETER_KEY_ENCRYPTION_KEY)")
	fs.Float64Var(&c.rateLimit, "rate-limit", 0, "calls per second each account may make to each operation before ThrottlingException (0: no limit)")
	fs.IntVar(&c.rateBurst, "rate-burst", 10, "how many calls above --rate-limit a burst may make")
	fs.StringVar(&c.tlsCert, "tls-cert", "", "PEM certificate (chain) file: serve both listeners over HTTPS (with --tls-key)")
	fs.StringVar(&c.tlsKey, "tls-key", "", "PEM private key file of --tls-cert")
	fs.StringVar(&c.quotas, "quotas", "", "request quotas per account and region: aws (BatchMeterUsage 10/s, MeterUsage 10/s, RegisterUsage 5/s); empty: none")
	fs.StringVar(&c.quota, "quota", "", "quota overrides, Operation=rate[:burst] separated by commas (e.g. BatchMeterUsage=20:40)")
	fs.DurationVar(&c.cacheTTL, "cache-ttl", storecache.DefaultTTL, "how long marketplace rows changed by another node or process may be served from memory")
	fs.StringVar(&c.adminListen, "admin-listen", "", "address of the admin listener (/metrics, /healthz, and /debug/pprof with --pprof); empty: none")
	fs.BoolVar(&c.pprof, "pprof", false, "expose net/http/pprof on the admin listener")
	fs.BoolVar(&c.audit, "audit", true, "record every API call in the audit log (mpmeter audit list)")
	fs.DurationVar(&c.auditRetention, "audit-retention", audit.DefaultRetention, "how long audit events are kept (0: forever)")
	fs.StringVar(&c.adminToken, "admin-token", "", "bearer token of the admin API under /admin/v1/ (prefer MPMETER_ADMIN_TOKEN); empty: the admin API is off (--demo makes one up)")
	fs.StringVar(&c.logLevel, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&c.logFormat, "log-format", "text", "text or json")
	fs.DurationVar(&c.shutdownTimeout, "shutdown-timeout", 10*time.Second, "how long to let requests finish on SIGINT/SIGTERM before closing what is left")
	fs.IntVar(&c.maxConnections, "max-connections", limits.DefaultMaxConnections, "open connections per listener; beyond them requests answer 503 ServiceUnavailable")
	fs.IntVar(&c.maxInFlight, "max-in-flight", limits.DefaultMaxInFlight, "requests in flight per listener; beyond them requests answer 503 ServiceUnavailable")
	fs.DurationVar(&c.requestTimeout, "request-timeout", limits.DefaultRequestTimeout, "deadline of each request: reading it, the work (database included) and, with 5s more, the answer")
	fs.Int64Var(&c.maxBodyMemory, "max-body-memory", awsjson.DefaultMaxBodyBytesInFlight, "bytes of request bodies held at once; beyond them requests answer 503 ServiceUnavailable")
	fs.BoolVar(&c.metricsOnAPI, "metrics-on-api", false, "also serve /metrics on the API listener (it is always on --admin-listen)")
	fs.BoolVar(&c.notifications, "notifications", true, "send the buyer journey's notifications: fulfillment POSTs, SNS and EventBridge deliveries (docs/notifications.md)")
	fs.StringVar(&c.publicURL, "public-url", "", "this server's URL as notification endpoints reach it (SubscribeURL, SigningCertURL); empty: the API listener's")
	fs.StringVar(&c.snsTopicAccount, "sns-topic-account", notify.AWSTopicAccount, "the account in the SNS topics' ARNs")
	fs.StringVar(&c.snsSignatureVersion, "sns-signature-version", "1", "SignatureVersion of SNS messages: 1 (SHA1withRSA) or 2 (SHA256withRSA)")
	fs.DurationVar(&c.notificationRetryDelay, "notification-retry-delay", notify.DefaultRetryDelay, "delay between a failed notification POST and its retry (SNS's default policy: 3 retries, 20s apart)")
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
	if c.auditRetention < 0 {
		errs = append(errs, fmt.Errorf("--audit-retention must not be negative (0 keeps events forever)"))
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
	if c.snsSignatureVersion != "1" && c.snsSignatureVersion != "2" {
		errs = append(errs, fmt.Errorf("--sns-signature-version must be 1 or 2"))
	}
	if c.notificationRetryDelay <= 0 {
		errs = append(errs, fmt.Errorf("--notification-retry-delay must be positive"))
	}
	if (c.tlsCert == "") != (c.tlsKey == "") {
		errs = append(errs, fmt.Errorf("--tls-cert and --tls-key go together"))
	}
	if _, err := c.quotaTable(); err != nil {
		errs = append(errs, err)
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

// quotaTable is --quotas with --quota's overrides.
func (c *serveConfig) quotaTable() (ratelimit.Quotas, error) {
	q := ratelimit.Quotas{}
	switch c.quotas {
	case "":
	case "aws":
		q = ratelimit.AWSQuotas()
	default:
		return nil, fmt.Errorf("--quotas must be aws or empty, got %q", c.quotas)
	}
	overrides, err := ratelimit.ParseQuotas(c.quota)
	if err != nil {
		return nil, fmt.Errorf("--quota: %v", err)
	}
	for op, r := range overrides {
		q[op] = r
	}
	return q, nil
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
	if c.demo && c.adminToken == "" {
		c.adminToken = randomToken()
	}
	if c.demo && !dbGiven {
		dir, err := demoDir()
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
	st, err := sqlstore.Open(ctx, c.db, sqlstore.WithCommitObserver(m.ObserveCommit), sqlstore.WithAuditWriteObserver(m.ObserveAuditWrite), sqlstore.WithKeyEncryptionKey(c.keyEncryptionKey))
	if err != nil {
		return fmt.Errorf("opening database: %w", err)
	}
	defer st.Close()
	if err := checkSecrets(st.Secrets(), logger); err != nil {
		return err
	}
	regions := mpmeter.DefaultRegions()
	if err := regions.Add(c.regions); err != nil {
		return err
	}
	futureTolerance := c.futureTolerance
	if futureTolerance == 0 {
		futureTolerance = service.NoFutureTolerance
	}
	quotas, _ := c.quotaTable() // validated
	var sharedQuotas ratelimit.SharedBuckets
	if st.Dialect() == sqlstore.DialectPostgres {
		sharedQuotas = st // every node draws from the same buckets
	}
	// Listening before the server is built: its notifications need its
	// URL (SubscribeURL, SigningCertURL) from the start.
	tlsConfig, err := c.tlsConfig()
	if err != nil {
		return err
	}
	ln, err := listen(c.listen, tlsConfig)
	if err != nil {
		return err
	}
	endpoint := scheme(tlsConfig) + ln.Addr().String()
	publicURL := c.publicURL
	if publicURL == "" {
		publicURL = reachableEndpoint(endpoint)
	}
	srv, err := server.New(ctx, server.Config{
		NotificationsOff: !c.notifications,
		PublicURL:        publicURL,
		Notify: notify.Config{TopicAccount: c.snsTopicAccount, SignatureVersion: c.snsSignatureVersion,
			RetryDelay: c.notificationRetryDelay},
		Quotas:               quotas,
		SharedQuotas:         sharedQuotas,
		Store:                st,
		Metrics:              m,
		Seed:                 seedFile,
		UsageWindow:          c.usageWindow,
		FutureTolerance:      futureTolerance,
		Regions:              regions,
		TokenTTL:             c.tokenTTL,
		ClientTokenTTL:       c.clientTokenTTL,
		CredentialsTTL:       c.credentialsTTL,
		MaxSkew:              c.maxSkew,
		Build:                build(),
		RateLimit:            c.rateLimit,
		CacheTTL:             c.cacheTTL,
		RateBurst:            c.rateBurst,
		AuditOff:             !c.audit,
		AuditRetention:       c.auditRetention,
		AdminToken:           c.adminToken,
		Logger:               logger,
		MetricsOnAPI:         c.metricsOnAPI,
		MaxBodyBytesInFlight: c.maxBodyMemory,
	})
	if err != nil {
		ln.Close()
		return err
	}
	// After the listeners have shut down (the deferred returns below run
	// first) and before the store closes: the audit events still queued
	// are written.
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), c.shutdownTimeout)
		defer cancel()
		if err := srv.Close(ctx); err != nil {
			logger.Error("audit log: events lost at shutdown", "err", err)
		}
	}()

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
	fmt.Fprintf(stdout, "mpmeter: serving the AWS Marketplace Metering API at %s\n", reachableEndpoint(endpoint))
	if c.demo {
		printDemo(stdout, reachableEndpoint(endpoint), c.adminToken)
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
	servers := []*http.Server{limits.Serve(ln, srv.Handler, bounds, errc)}
	if c.adminListen != "" {
		adminLn, err := listen(c.adminListen, tlsConfig)
		if err != nil {
			servers[0].Close()
			return fmt.Errorf("--admin-listen: %w", err)
		}
		// The same timeouts and limits as the API listener.
		servers = append(servers, limits.Serve(adminLn, adminMux(srv, c.pprof), bounds, errc))
		logger.Info("admin listener", "endpoint", scheme(tlsConfig)+adminLn.Addr().String(), "pprof", c.pprof)
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

// tlsConfig loads --tls-cert and --tls-key; nil when not given.
func (c *serveConfig) tlsConfig() (*tls.Config, error) {
	if c.tlsCert == "" {
		return nil, nil
	}
	cert, err := tls.LoadX509KeyPair(c.tlsCert, c.tlsKey)
	if err != nil {
		return nil, fmt.Errorf("--tls-cert/--tls-key: %w", err)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, nil
}

// listen listens on addr, with TLS when cfg is non-nil.
func listen(addr string, cfg *tls.Config) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil || cfg == nil {
		return ln, err
	}
	return tls.NewListener(ln, cfg), nil
}

func scheme(cfg *tls.Config) string {
	if cfg != nil {
		return "https://"
	}
	return "http://"
}

// checkSecrets refuses a database whose secrets this process cannot read,
// and says how secrets are kept.
func checkSecrets(sec sqlstore.SecretsStatus, logger *slog.Logger) error {
	switch {
	case sec.Locked:
		return fmt.Errorf("opening database: %w", sqlstore.ErrKeyEncryptionKeyRequired)
	case !sec.Encrypted:
		logger.Warn("secrets are stored in plain text: access-key secrets, session tokens, credentials tokens and signing keys; " +
			"a copy of the database hands out working keys. Set MPMETER_KEY_ENCRYPTION_KEY (or --key-encryption-key) to encrypt them at rest")
	case sec.Resealed > 0:
		logger.Info("encrypted secrets that were stored in plain text or under the old key derivation", "secrets", sec.Resealed)
	}
	return nil
}

// demoDir makes the directory of --demo's throwaway database: in the
// temporary directory, or, where there is none (a FROM scratch image has no
// /tmp), in the working directory (the image's /data).
func demoDir() (string, error) {
	dir, err := os.MkdirTemp("", "mpmeter-demo-")
	if err == nil {
		return dir, nil
	}
	dir, err2 := os.MkdirTemp(".", ".mpmeter-demo-")
	if err2 != nil {
		return "", fmt.Errorf("--demo needs a directory for its temporary database: %w; nor in the working directory: %w", err, err2)
	}
	return dir, nil
}

// adminMux serves the operator's endpoints, apart from the API.
func adminMux(srv *server.Server, withPprof bool) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", srv.Metrics.Handler())
	mux.Handle("GET /healthz", srv.Health)
	mux.Handle(workloadcreds.Pattern, srv.Credentials)
	mux.Handle("/admin/", srv.Admin)
	if withPprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", redactedCmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	return mux
}

// randomToken is a demo admin token: 128 random bits, hex.
func randomToken() string {
	b := make([]byte, 16)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func printDemo(w io.Writer, endpoint, adminToken string) {
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

The admin API (docs/admin-api.md; the OpenAPI document is at %[1]s/admin/v1/openapi.json):
  export MPMETER_SERVER=%[1]s MPMETER_ADMIN_TOKEN=%[2]s
  curl -H "Authorization: Bearer $MPMETER_ADMIN_TOKEN" $MPMETER_SERVER/admin/v1/products

`, endpoint, adminToken)
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
