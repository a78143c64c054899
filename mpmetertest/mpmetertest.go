// Package mpmetertest starts a seeded, in-process mpmeter for Go tests — the
// project's own and anyone else's:
//
//	srv := mpmetertest.New(t)
//	sess := session.Must(session.NewSession(&aws.Config{
//		Endpoint:    aws.String(srv.URL),
//		Region:      aws.String(srv.Region),
//		Credentials: credentials.NewStaticCredentials(mpmetertest.SellerKey, mpmetertest.SellerSecret, ""),
//	}))
//	client := marketplacemetering.New(sess)
//
// The server uses the built-in demo marketplace (see the seed package and
// the constants below) unless WithSeed says otherwise, a SQLite database in
// t.TempDir() unless WithDSN says otherwise (PostgresDSN makes a PostgreSQL
// one), and a Clock the test can move.
package mpmetertest

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/mpmeter/mpmeter"
	"github.com/mpmeter/mpmeter/audit"
	"github.com/mpmeter/mpmeter/internal/pgadmin"
	"github.com/mpmeter/mpmeter/metrics"
	"github.com/mpmeter/mpmeter/seal"
	"github.com/mpmeter/mpmeter/seed"
	"github.com/mpmeter/mpmeter/server"
	"github.com/mpmeter/mpmeter/sqlstore"
)

// Demo marketplace credentials and names (see seed.Demo).
const (
	Region = "us-east-1"

	SellerAccount = "111122223333"
	SellerKey     = "AKIAEXAMPLESELLER001"
	SellerSecret  = "seller-secret"

	OtherSellerKey    = "AKIAEXAMPLEOTHER0001"
	OtherSellerSecret = "other-secret"

	BuyerAccount = "444455556666"
	BuyerKey     = "AKIAEXAMPLEBUYER0001"
	BuyerSecret  = "buyer-secret"

	EC2Key        = "AKIAEXAMPLEEC2000001"
	EC2Secret     = "ec2-secret"
	ECSKey        = "AKIAEXAMPLEECS000001"
	ECSSecret     = "ecs-secret"
	EKSKey        = "AKIAEXAMPLEEKS000001"
	EKSSecret     = "eks-secret"
	FargateKey    = "AKIAEXAMPLEFARGATE01"
	FargateSecret = "fargate-secret"
	AgentKey      = "AKIAEXAMPLEAGENT0001"
	AgentSecret   = "agent-secret"

	// The demo workloads' ids and the credentials tokens with which they
	// fetch temporary credentials (Server.CredentialsURL).
	EC2Workload             = "i-0123456789abcdef0"
	EC2CredentialsToken     = "demo-ec2-credentials-token"
	ECSWorkload             = "arn:aws:ecs:us-east-1:444455556666:task/demo/0123456789abcdef"
	ECSCredentialsToken     = "demo-ecs-credentials-token"
	EKSWorkload             = "demo/metering-agent-7d4b9c6f5-x2k8p"
	EKSCredentialsToken     = "demo-eks-credentials-token"
	FargateWorkload         = "arn:aws:ecs:us-east-1:444455556666:task/demo-fargate/fedcba9876543210"
	FargateCredentialsToken = "demo-fargate-credentials-token"

	// Temporary credentials of the ECS task (no expiry), and expired ones
	// of the EC2 instance.
	ECSTemporaryKey     = "ASIAEXAMPLEECS000001"
	ECSTemporarySecret  = "ecs-temporary-secret"
	ECSSessionToken     = "demo-ecs-session-token"
	ExpiredKey          = "ASIAEXAMPLEEXPIRED01"
	ExpiredSecret       = "expired-secret"
	ExpiredSessionToken = "demo-expired-session-token"

	// Workloads of the buyer whose subscriptions are cancelled.
	CancelledEC2Key    = "AKIAEXAMPLECANCEL001"
	CancelledEC2Secret = "cancelled-ec2-secret"
	CancelledECSKey    = "AKIAEXAMPLECANCEL002"
	CancelledECSSecret = "cancelled-ecs-secret"

	SaaSProduct      = "exampleprod1"
	AMIProduct       = "exampleami1"
	ContainerProduct = "examplecontainer1"
	OtherProduct     = "otherprod1"
	// ContractProduct is the demo's SaaS contract: ContractCustomer's
	// subscription (ContractLicense) has entitlements users=10,
	// storage_tb=2.5, premium_support=true (all until ContractExpires) and
	// tier="gold" (no expiration date); CancelledAccount's cancelled one has
	// users=5, which GetEntitlements does not answer.
	ContractProduct  = "examplecontract1"
	ContractCustomer = "cust-contract-1"
	ContractLicense  = "arn:aws:license-manager::444455556666:license/l-0c0a000000000001"

	Customer          = "cust-example-1"
	CustomerLicense   = "arn:aws:license-manager::444455556666:license/l-0123456789abcdef"
	CancelledCustomer = "cust-cancelled-1"
	CancelledAccount  = "123456789012"

	// ContractExpires is the demo contract's ExpirationDate, RFC 3339.
	ContractExpires = "2030-01-01T00:00:00Z"

	Token          = "demo-token-1"
	TokenCancelled = "demo-token-cancelled"
	TokenOther     = "demo-token-other"
	TokenExpired   = "demo-token-expired"

	// CAProduct is the demo's SaaS product with concurrent agreements:
	// BuyerAccount holds two, CALicense1 and CALicense2, whose registration
	// tokens are TokenCA1 and TokenCA2.
	CAProduct  = "exampleca1"
	CALicense1 = "arn:aws:license-manager::444455556666:license/l-0ca1000000000001"
	CALicense2 = "arn:aws:license-manager::444455556666:license/l-0ca2000000000002"
	TokenCA1   = "demo-token-ca-1"
	TokenCA2   = "demo-token-ca-2"
)

// KeyEncryptionKey is the key encryption key of test servers' databases.
const KeyEncryptionKey = "mpmetertest"

// TestKDFParams are argon2id parameters for throwaway test databases: one
// pass over 1 MiB instead of seal's default 3 over 64 MiB (the salt is
// replaced by a random one).
func TestKDFParams() seal.Params {
	return seal.Params{KDF: seal.KDFArgon2id, Salt: []byte("replaced-by-random"), Time: 1, MemoryKiB: 1024, Threads: 1}
}

// Server is a running in-process mpmeter.
type Server struct {
	*server.Server
	// URL is the endpoint to give an SDK.
	URL string
	// Region is a region every operation is available in.
	Region string
	// Clock is the service clock; moving it never breaks signatures.
	Clock *Clock
	// DB is the database: the SQLite file, or WithDSN's.
	DB string
}

type options struct {
	seed   *seed.File
	dsn    string
	config func(*server.Config)
}

// Option configures New.
type Option func(*options)

// WithSeed replaces the demo marketplace.
func WithSeed(f *seed.File) Option { return func(o *options) { o.seed = f } }

// WithDSN stores the marketplace in the database dsn names (what
// sqlstore.Open takes: a PostgresDSN, say) instead of a new SQLite file.
func WithDSN(dsn string) Option { return func(o *options) { o.dsn = dsn } }

// PostgresEnv names the PostgreSQL server PostgresDSN creates databases on:
// a postgres:// URL whose user may create databases.
const PostgresEnv = "MPMETER_TEST_POSTGRES_DSN"

// PostgresDSN creates a new, empty database on the server PostgresEnv
// names, dropped when t ends, and returns its URL (for WithDSN or
// sqlstore.Open); without PostgresEnv it skips t.
func PostgresDSN(t testing.TB) string {
	t.Helper()
	admin := os.Getenv(PostgresEnv)
	if admin == "" {
		t.Skip(PostgresEnv + " is not set")
	}
	dsn, err := pgadmin.CreateDatabase(context.Background(), admin, "mpmetertest")
	if err != nil {
		t.Fatalf("mpmetertest: %v", err)
	}
	t.Cleanup(func() {
		if err := pgadmin.DropDatabase(context.Background(), admin, dsn); err != nil {
			t.Errorf("mpmetertest: %v", err)
		}
	})
	return dsn
}

// WithConfig edits the server configuration before the server starts.
func WithConfig(edit func(*server.Config)) Option { return func(o *options) { o.config = edit } }

// New starts a server and stops it when the test ends.
func New(t testing.TB, opts ...Option) *Server {
	t.Helper()
	o := options{seed: seed.Demo()}
	for _, opt := range opts {
		opt(&o)
	}
	clock := &Clock{}
	db := o.dsn
	if db == "" {
		db = filepath.Join(t.TempDir(), "mpmeter.db")
	}
	// Warnings and errors only: a passing test stays quiet, an internal
	// error still shows up.
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	m := metrics.New()
	// Secrets are encrypted at rest as in production, under KDF parameters
	// cheap enough for a server per test.
	st, err := sqlstore.Open(context.Background(), db, sqlstore.WithCommitObserver(m.ObserveCommit),
		sqlstore.WithAuditWriteObserver(m.ObserveAuditWrite),
		sqlstore.WithKeyEncryptionKey(KeyEncryptionKey), sqlstore.WithKDFParams(TestKDFParams()))
	if err != nil {
		t.Fatalf("mpmetertest: opening the store: %v", err)
	}
	// Listening first: the server's notifications carry its URL.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		st.Close()
		t.Fatalf("mpmetertest: listening: %v", err)
	}
	cfg := server.Config{Store: st, Metrics: m, Seed: o.seed, Clock: clock, Logger: logger, PublicURL: "http://" + ln.Addr().String()}
	if o.config != nil {
		o.config(&cfg)
	}
	srv, err := server.New(context.Background(), cfg)
	if err != nil {
		ln.Close()
		st.Close()
		t.Fatalf("mpmetertest: starting server: %v", err)
	}
	hs := &httptest.Server{Listener: ln, Config: &http.Server{Handler: srv.Handler}}
	hs.Start()
	t.Cleanup(func() {
		hs.Close()
		// The audit events still queued are written before the store
		// closes.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := srv.Close(ctx); err != nil {
			t.Errorf("mpmetertest: closing the server: %v", err)
		}
		st.Close()
	})
	return &Server{Server: srv, URL: hs.URL, Region: Region, Clock: clock, DB: db}
}

// AuditEvents writes the audit events still queued and returns every event
// matching f (all pages; f.Limit and f.Cursor are ignored). It fails the
// test when the audit log is off.
func (s *Server) AuditEvents(t testing.TB, f mpmeter.AuditFilter) []mpmeter.AuditEvent {
	t.Helper()
	if s.Audit == nil {
		t.Fatal("mpmetertest: the audit log is off (server.Config.AuditOff)")
	}
	if err := s.Audit.Flush(context.Background()); err != nil {
		t.Fatalf("mpmetertest: flushing the audit log: %v", err)
	}
	events := []mpmeter.AuditEvent{}
	for ev, err := range audit.All(context.Background(), s.Store, f) {
		if err != nil {
			t.Fatalf("mpmetertest: reading the audit log: %v", err)
		}
		events = append(events, ev)
	}
	return events
}

// CredentialsURL is the container credentials endpoint of a workload: what
// AWS_CONTAINER_CREDENTIALS_FULL_URI is set to, with the workload's
// credentials token in AWS_CONTAINER_AUTHORIZATION_TOKEN.
func (s *Server) CredentialsURL(workloadID string) string {
	return s.URL + "/credentials/workloads/" + workloadID
}

// Clock is a service clock a test can set or advance. Its zero value is the
// wall clock.
type Clock struct {
	mu     sync.Mutex
	offset time.Duration
}

// Now returns wall time moved by the clock's offset.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.offset)
}

// Advance moves the clock forward by d (backward when negative).
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.offset += d
}

// Set makes the clock read t now (and run on from there).
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.offset = time.Until(t)
}
