// Package admin is mpmeter's admin API: JSON over HTTP under /admin/v1/,
// for creating and inspecting the marketplace while the server runs, on
// every node (docs/admin-api.md).
//
// The routes are huma operations (github.com/danielgtaylor/huma/v2, on the
// standard library's ServeMux through its humago adapter, so no other
// router): the OpenAPI 3.1 document at /admin/v1/openapi.json is generated
// from the registered operations and their Go types, so a route cannot be
// missing from it or documented without existing, and request bodies are
// validated against that same schema before a handler runs (unknown fields
// included). Handlers add the marketplace rules, which are the seed file's
// (package seed's Check functions: one home per rule).
//
// Areas register their routes with a func(huma.API) each: this package's
// (Register: the marketplace, the clock, signing keys, the seed export) and
// other packages' (Config.Routes), so audit log or usage queries are added
// without touching this one.
package admin

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/danielgtaylor/huma/v2/adapters/humago"

	"github.com/mpmeter/mpmeter"
	"github.com/mpmeter/mpmeter/audit"
	"github.com/mpmeter/mpmeter/seed"
)

// Prefix is where the admin API lives; every path below it needs the token.
const Prefix = "/admin/v1"

// Store is the part of mpmeter.Store the admin API reads and writes.
type Store interface {
	seed.Source
	Account(ctx context.Context, id string) (mpmeter.Account, error)
	PutAccount(ctx context.Context, a mpmeter.Account) error
	AccessKey(ctx context.Context, id string) (mpmeter.AccessKey, error)
	PutAccessKey(ctx context.Context, k mpmeter.AccessKey) error
	Product(ctx context.Context, code string) (mpmeter.Product, error)
	PutProduct(ctx context.Context, p mpmeter.Product) error
	SubscriptionByAgreement(ctx context.Context, agreementID string) (mpmeter.Subscription, error)
	PutSubscription(ctx context.Context, s mpmeter.Subscription) error
	RegistrationTokenByID(ctx context.Context, id string) (mpmeter.RegistrationToken, error)
	PutRegistrationToken(ctx context.Context, t mpmeter.RegistrationToken) error
	SigningKeys(ctx context.Context) ([]mpmeter.SigningKey, error)
	PutEntitlements(ctx context.Context, licenseArn string, ents []mpmeter.Entitlement) error
	AuditEvents(ctx context.Context, f mpmeter.AuditFilter) (mpmeter.AuditPage, error)
	UsageStore // usage.go: records, summaries, exports
}

// SettableClock is a service clock the admin API can move (vclock.Clock).
type SettableClock interface {
	mpmeter.Clock
	Offset() time.Duration
	Set(ctx context.Context, t time.Time) error
	Advance(ctx context.Context, d time.Duration) error
	Reset(ctx context.Context) error
}

// KeyRotator adds signing key versions (keys.Manager).
type KeyRotator interface {
	Rotate(ctx context.Context) (int, error)
}

// Config is what the admin API runs on.
type Config struct {
	// Token is the bearer token every request must carry; empty means the
	// admin API is off: every path under /admin/ answers 404.
	Token string
	Store Store
	// Clock is the service clock; when it is a SettableClock the clock
	// routes can move it, otherwise they answer 409 clock_not_settable.
	Clock mpmeter.Clock
	Keys  KeyRotator
	// RevocationDelay is how long a revoke waits after it committed before
	// it answers: the marketplace cache TTL of the nodes sharing the
	// database (storecache), after which none of them serves the key. 0
	// when no other process caches this database's keys.
	RevocationDelay time.Duration
	// TokenTTL is the lifetime of an issued registration token when the
	// request gives none.
	TokenTTL time.Duration
	// EntitlementNotifier hears about entitlements changed through the
	// API (entitlements.go); nil: nobody.
	EntitlementNotifier EntitlementNotifier
	// Routes register more areas' operations (audit, usage, ...).
	Routes []func(api huma.API)
	// Notifications, when set, makes subscription changes send what AWS
	// sends (fulfillment POST, SNS, EventBridge) in the same transaction,
	// and adds the notification routes (admin/notifications.go), which
	// read NotificationStore.
	Notifications     Notifications
	NotificationStore NotificationStore
	Logger            *slog.Logger
}

// API is the admin API's HTTP handler.
type API struct {
	cfg     Config
	huma    huma.API
	mux     *recordingMux
	handler http.Handler
	digest  [32]byte // sha256 of the token
}

// New builds the admin API. With an empty Token it serves 404 for
// everything.
func New(cfg Config) (*API, error) {
	if cfg.Token != "" && cfg.Store == nil {
		return nil, errors.New("admin: Config.Store is nil")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.TokenTTL <= 0 {
		cfg.TokenTTL = 4 * time.Hour
	}
	a := &API{cfg: cfg, mux: &recordingMux{ServeMux: http.NewServeMux()}, digest: sha256.Sum256([]byte(cfg.Token))}
	hc := huma.DefaultConfig("mpmeter admin API", "1")
	hc.Info.Description = "Create and inspect mpmeter's marketplace while it runs. Authenticate with `Authorization: Bearer <token>`. Errors are `{\"code\", \"message\"}`; see docs/admin-api.md."
	hc.OpenAPIPath = "/openapi"
	hc.DocsPath = ""     // no HTML docs page (it loads scripts from a CDN)
	hc.SchemasPath = ""  // schemas are inline in the document
	hc.CreateHooks = nil // no $schema members or Link headers: the JSON shapes are exactly the documented ones
	hc.Components.SecuritySchemes = map[string]*huma.SecurityScheme{"bearer": {Type: "http", Scheme: "bearer"}}
	hc.Security = []map[string][]string{{"bearer": {}}}
	a.huma = humago.NewWithPrefix(a.mux, Prefix, hc)
	// Before any Register: huma binds an API's middlewares to an
	// operation when it is registered.
	a.huma.UseMiddleware(a.recordCall)
	Register(a.huma, a)
	for _, r := range cfg.Routes {
		r(a.huma)
	}
	a.handler = a.mux
	return a, nil
}

// Huma returns the huma API, for registering more operations.
func (a *API) Huma() huma.API { return a.huma }

// ServeHTTP authenticates and serves one admin request.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	call := audit.AdminCallFrom(r.Context())
	if a.cfg.Token == "" {
		// Anyone can send these, and nothing is served: recording them
		// would only let strangers fill the audit log.
		call.Skip = true
		writeError(w, &Error{Status: http.StatusNotFound, Code: CodeNotFound, Message: "the admin API is off: start the server with --admin-token (MPMETER_ADMIN_TOKEN)"})
		return
	}
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if d := sha256.Sum256([]byte(got)); !ok || subtle.ConstantTimeCompare(d[:], a.digest[:]) != 1 {
		// Digests compared, so neither the length nor a prefix of the
		// token leaks through timing.
		probe(r, call)
		w.Header().Set("WWW-Authenticate", `Bearer realm="mpmeter admin"`)
		writeCallError(w, call, &Error{Status: http.StatusUnauthorized, Code: CodeUnauthorized, Message: "missing or wrong bearer token (Authorization: Bearer <admin token>)"})
		return
	}
	probe(r, call) // until an operation's middleware (recordCall) says which it is
	if !strings.HasPrefix(r.URL.Path, Prefix+"/") {
		writeCallError(w, call, &Error{Status: http.StatusNotFound, Code: CodeNotFound, Message: "no such admin path; the API is under " + Prefix + "/"})
		return
	}
	rec := &statusRecorder{ResponseWriter: w, call: call}
	a.handler.ServeHTTP(rec, r)
}

// Patterns returns every pattern registered on the admin mux, by huma or
// not: a test compares them with the OpenAPI document.
func (a *API) Patterns() []string { return a.mux.patterns() }

// recordingMux is a ServeMux that remembers its patterns.
type recordingMux struct {
	*http.ServeMux
	mu   sync.Mutex
	pats []string
}

func (m *recordingMux) HandleFunc(pattern string, h func(http.ResponseWriter, *http.Request)) {
	m.mu.Lock()
	m.pats = append(m.pats, pattern)
	m.mu.Unlock()
	// A route the mux does not know answers our JSON 404/405, not the
	// mux's text: see statusRecorder.
	m.ServeMux.HandleFunc(pattern, h)
}

func (m *recordingMux) Handle(pattern string, h http.Handler) { m.HandleFunc(pattern, h.ServeHTTP) }

func (m *recordingMux) patterns() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]string(nil), m.pats...)
}

// statusRecorder turns the mux's own text 404 and 405 (no route) into the
// admin API's JSON errors.
type statusRecorder struct {
	http.ResponseWriter
	wrote   bool
	swallow bool
	call    *audit.AdminCall
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.wrote {
		return
	}
	s.wrote = true
	if (code == http.StatusNotFound || code == http.StatusMethodNotAllowed) && !strings.HasPrefix(s.Header().Get("Content-Type"), "application/json") {
		s.swallow = true
		e := &Error{Status: code, Code: CodeNotFound, Message: "no such admin route"}
		if code == http.StatusMethodNotAllowed {
			e.Code, e.Message = CodeMethodNotAllowed, "the route does not take this method"
		}
		s.Header().Del("X-Content-Type-Options")
		writeCallError(s.ResponseWriter, s.call, e)
		return
	}
	s.ResponseWriter.WriteHeader(code)
}

// Unwrap lets http.ResponseController reach the connection's writer
// (streamed exports flush through it).
func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

func (s *statusRecorder) Write(b []byte) (int, error) {
	if !s.wrote {
		s.WriteHeader(http.StatusOK)
	}
	if s.swallow {
		return len(b), nil
	}
	return s.ResponseWriter.Write(b)
}

// Error codes of admin errors (the code member), each with one HTTP status.
const (
	CodeValidation       = "validation_failed"  // 400: the request is malformed or breaks a rule
	CodeUnauthorized     = "unauthorized"       // 401: no or wrong bearer token
	CodeNotFound         = "not_found"          // 404: no such resource (or route, or the API is off)
	CodeMethodNotAllowed = "method_not_allowed" // 405
	CodeConflict         = "conflict"           // 409: a stale version, or a state change the state forbids
	CodeAlreadyExists    = "already_exists"     // 409: the id (or a unique value) is taken
	CodeClockNotSettable = "clock_not_settable" // 409: the server runs on a fixed clock
	CodeTooLarge         = "request_too_large"  // 413
	CodeInternal         = "internal_error"     // 500: the database failed; retry
)

// Error is every admin error's body: {"code": "...", "message": "..."}.
type Error struct {
	Status  int    `json:"-"`
	Code    string `json:"code" doc:"What went wrong, one of validation_failed, unauthorized, not_found, method_not_allowed, conflict, already_exists, clock_not_settable, request_too_large, internal_error."`
	Message string `json:"message" doc:"What went wrong, for people."`
}

func (e *Error) Error() string  { return e.Code + ": " + e.Message }
func (e *Error) GetStatus() int { return e.Status }

// writeCallError is writeError for an error answered outside an
// operation: the audit log records it too.
func writeCallError(w http.ResponseWriter, call *audit.AdminCall, e *Error) {
	if call != nil {
		call.ErrorCode, call.ErrorMessage = e.Code, e.Message
	}
	writeError(w, e)
}

func writeError(w http.ResponseWriter, e *Error) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(e.Status)
	json.NewEncoder(w).Encode(e)
}

// huma builds its own errors (request validation, unknown routes' bodies,
// panics) with huma.NewError; this makes them ours. huma offers no
// per-API hook, so it is set once, at init, and never changed after; every
// huma API in the process is this one.
func init() {
	huma.NewError = func(status int, msg string, errs ...error) huma.StatusError {
		e := &Error{Status: status, Message: msg}
		var details []string
		for _, err := range errs {
			if err == nil {
				continue
			}
			if d, ok := err.(huma.ErrorDetailer); ok {
				det := d.ErrorDetail()
				s := det.Message
				if det.Location != "" {
					s = det.Location + ": " + s
				}
				details = append(details, s)
			} else {
				details = append(details, err.Error())
			}
		}
		if len(details) > 0 {
			e.Message = strings.TrimSuffix(msg, ".") + ": " + strings.Join(details, "; ")
		}
		switch {
		case status == http.StatusUnprocessableEntity || status == http.StatusBadRequest:
			e.Status, e.Code = http.StatusBadRequest, CodeValidation
		case status == http.StatusUnauthorized:
			e.Code = CodeUnauthorized
		case status == http.StatusNotFound:
			e.Code = CodeNotFound
		case status == http.StatusMethodNotAllowed:
			e.Code = CodeMethodNotAllowed
		case status == http.StatusConflict:
			e.Code = CodeConflict
		case status == http.StatusRequestEntityTooLarge:
			e.Code = CodeTooLarge
		case status >= 500:
			e.Code, e.Message = CodeInternal, "internal error; retry"
		default:
			e.Code = CodeValidation
		}
		return e
	}
}

func invalid(format string, args ...any) error {
	return &Error{Status: http.StatusBadRequest, Code: CodeValidation, Message: fmt.Sprintf(format, args...)}
}

func invalidAll(what string, problems []string) error {
	if len(problems) == 0 {
		return nil
	}
	return invalid("%s: %s", what, strings.Join(problems, "; "))
}

func notFound(format string, args ...any) error {
	return &Error{Status: http.StatusNotFound, Code: CodeNotFound, Message: fmt.Sprintf(format, args...)}
}

func conflict(format string, args ...any) error {
	return &Error{Status: http.StatusConflict, Code: CodeConflict, Message: fmt.Sprintf(format, args...)}
}

// storeErr turns a store error into an admin error: not found, a stale
// version, a taken id; anything else is internal (logged, the client told
// to retry; nothing was committed).
func (a *API) storeErr(ctx context.Context, what string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, mpmeter.ErrNotFound):
		return notFound("%s does not exist", what)
	case errors.Is(err, mpmeter.ErrConflict):
		return conflict("%s was changed by someone else since the version given; read it again and retry", what)
	case errors.Is(err, mpmeter.ErrExists):
		return &Error{Status: http.StatusConflict, Code: CodeAlreadyExists, Message: what + " exists already (or a unique value of it is taken)"}
	case ctx.Err() != nil:
		return &Error{Status: http.StatusServiceUnavailable, Code: CodeInternal, Message: "request cancelled"}
	}
	a.cfg.Logger.Error("admin: store failed", "what", what, "err", err)
	return &Error{Status: http.StatusInternalServerError, Code: CodeInternal, Message: "internal error; retry"}
}

// Pagination. A cursor is opaque to clients: the last key of the page,
// encoded. Lists are in key order, so paging is stable while rows are added.

const (
	defaultLimit = 100
	maxLimit     = 1000
)

// PageParams are every list's query parameters.
type PageParams struct {
	Limit  int    `query:"limit" minimum:"1" maximum:"1000" default:"100" doc:"At most this many items (1-1000)."`
	Cursor string `query:"cursor" doc:"next_cursor of the previous page; empty for the first."`
}

func (p PageParams) page() (mpmeter.Page, error) {
	limit := p.Limit
	if limit == 0 {
		limit = defaultLimit
	}
	pg := mpmeter.Page{Limit: limit + 1} // one more: is there a next page?
	if p.Cursor != "" {
		b, err := base64.RawURLEncoding.DecodeString(p.Cursor)
		after, ok := strings.CutPrefix(string(b), "c1:")
		if err != nil || !ok {
			return pg, invalid("cursor %q is not a cursor this API gave", p.Cursor)
		}
		pg.After = after
	}
	return pg, nil
}

// cut trims a page fetched with one item more than asked and returns the
// next cursor ("" at the end).
func cut[T any](items []T, pg mpmeter.Page, key func(T) string) ([]T, string) {
	if len(items) < pg.Limit {
		return items, ""
	}
	items = items[:pg.Limit-1]
	return items, base64.RawURLEncoding.EncodeToString([]byte("c1:" + key(items[len(items)-1])))
}

// List is every list's body.
type List[T any] struct {
	Items      []T    `json:"items"`
	NextCursor string `json:"next_cursor" doc:"Pass as cursor for the next page; empty on the last page."`
}
