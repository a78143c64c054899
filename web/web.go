// Package web is mpmeter's web console, served by the same binary at
// /console/ (docs/console.md): an overview that refreshes itself, a usage
// explorer with charts and CSV downloads, customers and subscriptions with a
// buyer simulator, the API call log (the audit log), notification
// deliveries, signing keys and the service clock.
//
// Pages are html/template rendered on the server; htmx (polling the
// overview) and Chart.js (the usage chart) are vendored into static/ from
// the npm registry by vendor.sh and embedded, so the binary serves every
// byte itself and nothing loads from elsewhere.
//
// Reads come from the store directly (narrow interfaces: Store), so looking
// at pages adds nothing to the audit log. Every change — subscribe, cancel,
// rotate a key, move the clock — is a call of the admin API, made in
// process through its handler (Config.Admin): the console runs exactly the
// admin API's rules and side effects (notifications included), and the call
// is recorded in the audit log as an admin call like any other.
package web

import (
	"context"
	"embed"
	"errors"
	"html/template"
	"io/fs"
	"iter"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/mpmeter/mpmeter"
	"github.com/mpmeter/mpmeter/internal/adminclient"
)

// Prefix is where the console is mounted.
const Prefix = "/console/"

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Store is what the console reads from mpmeter.Store.
type Store interface {
	Accounts(ctx context.Context, p mpmeter.Page) ([]mpmeter.Account, error)
	Products(ctx context.Context, p mpmeter.Page) ([]mpmeter.Product, error)
	Product(ctx context.Context, code string) (mpmeter.Product, error)
	Subscriptions(ctx context.Context, f mpmeter.SubscriptionFilter, p mpmeter.Page) ([]mpmeter.Subscription, error)
	SigningKeys(ctx context.Context) ([]mpmeter.SigningKey, error)
	UsageSummary(ctx context.Context, q mpmeter.UsageSummaryQuery) iter.Seq2[mpmeter.UsageSummaryLine, error]
	EachUsage(ctx context.Context, f mpmeter.UsageFilter) iter.Seq2[mpmeter.MeteringRecord, error]
	AuditEvents(ctx context.Context, f mpmeter.AuditFilter) (mpmeter.AuditPage, error)
}

// Config is what the console runs on.
type Config struct {
	// Token is the admin token: the console's login. Empty turns the
	// console off (every path under /console/ answers 404, as /admin/ does).
	Token string
	Store Store
	// Clock is the service clock (what "now" means for the overview and
	// the usage explorer's default range).
	Clock mpmeter.Clock
	// Admin is the admin API's handler as the server mounts it at /admin/
	// (behind the audit log's middleware): the console's changes are calls
	// of it, made in process.
	Admin http.Handler
	// Deliveries is the notification delivery log; nil reads it through
	// the admin API's /notifications/deliveries routes (AdminDeliveries),
	// and the page says "not configured" while the server has none.
	Deliveries DeliveryLog
	// WallClock is what sessions expire by (never the service clock,
	// which tests move by days); nil means time.Now.
	WallClock func() time.Time
	// SessionTTL is how long a login lasts; 0 means 12 hours.
	SessionTTL time.Duration
	Logger     *slog.Logger
}

// Console is the web console's HTTP handler.
type Console struct {
	cfg     Config
	admin   *adminclient.Client
	auth    sessions
	pages   map[string]*template.Template
	static  http.Handler
	handler http.Handler
}

// New builds the console. With an empty Token it answers 404 everywhere.
func New(cfg Config) (*Console, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.WallClock == nil {
		cfg.WallClock = time.Now
	}
	if cfg.SessionTTL <= 0 {
		cfg.SessionTTL = 12 * time.Hour
	}
	c := &Console{cfg: cfg}
	if cfg.Token == "" {
		c.handler = http.NotFoundHandler()
		return c, nil
	}
	if cfg.Store == nil || cfg.Clock == nil || cfg.Admin == nil {
		return nil, errors.New("web: Config.Store, Clock and Admin are required")
	}
	// The admin API in process: requests go straight to its handler, with
	// the token, through no socket.
	client, err := adminclient.New("http://console.invalid", cfg.Token, &http.Client{Transport: inProcess{cfg.Admin}})
	if err != nil {
		return nil, err
	}
	c.admin = client
	if c.cfg.Deliveries == nil {
		c.cfg.Deliveries = AdminDeliveries{Client: client}
	}
	c.auth = newSessions(cfg.Token, cfg.WallClock, cfg.SessionTTL)
	if c.pages, err = parsePages(); err != nil {
		return nil, err
	}
	sub, err := fs.Sub(staticFS, "static")
	if err != nil {
		return nil, err
	}
	c.static = http.StripPrefix(Prefix+"static/", cacheStatic(http.FileServerFS(sub)))
	c.handler = c.routes()
	return c, nil
}

// ServeHTTP serves one console request.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c.handler.ServeHTTP(w, r)
}

func (c *Console) routes() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET "+Prefix+"static/", c.static)
	mux.HandleFunc("GET "+Prefix+"login", c.loginPage)
	mux.HandleFunc("POST "+Prefix+"login", c.login)
	mux.HandleFunc("POST "+Prefix+"logout", c.authed(c.logout))

	mux.HandleFunc("GET "+Prefix+"{$}", c.authed(c.overview))
	mux.HandleFunc("GET "+Prefix+"fragments/overview", c.authed(c.overviewFragment))
	mux.HandleFunc("GET "+Prefix+"usage", c.authed(c.usage))
	mux.HandleFunc("GET "+Prefix+"usage/summary.csv", c.authed(c.usageSummaryCSV))
	mux.HandleFunc("GET "+Prefix+"usage/records.csv", c.authed(c.usageRecordsCSV))
	mux.HandleFunc("GET "+Prefix+"subscriptions", c.authed(c.subscriptions))
	mux.HandleFunc("POST "+Prefix+"subscriptions", c.authed(c.subscriptionAction))
	mux.HandleFunc("GET "+Prefix+"calls", c.authed(c.calls))
	mux.HandleFunc("GET "+Prefix+"calls/{event}", c.authed(c.call))
	mux.HandleFunc("GET "+Prefix+"deliveries", c.authed(c.deliveries))
	mux.HandleFunc("POST "+Prefix+"deliveries", c.authed(c.deliveryAction))
	mux.HandleFunc("GET "+Prefix+"keys", c.authed(c.keys))
	mux.HandleFunc("POST "+Prefix+"keys", c.authed(c.keyAction))
	mux.HandleFunc("GET "+Prefix+"clock", c.authed(c.clock))
	mux.HandleFunc("POST "+Prefix+"clock", c.authed(c.clockAction))
	return securityHeaders(mux)
}

// securityHeaders: everything is served from here (the CSP says so to the
// browser), nothing may frame the console, no MIME sniffing.
func securityHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'")
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("Referrer-Policy", "same-origin")
		hd.Set("X-Frame-Options", "DENY")
		h.ServeHTTP(w, r)
	})
}

// cacheStatic lets browsers keep the assets for an hour: they change only
// with the binary.
func cacheStatic(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=3600")
		h.ServeHTTP(w, r)
	})
}

type remoteAddrKey struct{}

// inProcess is an http.RoundTripper that serves requests with a handler:
// the admin API called without a socket.
type inProcess struct{ h http.Handler }

func (t inProcess) RoundTrip(r *http.Request) (*http.Response, error) {
	rec := httptest.NewRecorder()
	// The browser is the admin call's caller: the audit log records its
	// address.
	if addr, ok := r.Context().Value(remoteAddrKey{}).(string); ok {
		r.RemoteAddr = addr
	}
	if i := strings.Index(r.URL.Path, "/admin/"); i > 0 {
		r.URL.Path = r.URL.Path[i:]
	}
	if r.Body == nil {
		r.Body = http.NoBody // what a server request always has
	}
	t.h.ServeHTTP(rec, r)
	return rec.Result(), nil
}
