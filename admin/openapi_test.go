package admin_test

import (
	"context"
	"encoding/json"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/danielgtaylor/huma/v2"

	"github.com/mpmeter/mpmeter/admin"
	"github.com/mpmeter/mpmeter/mpmetertest"
	"github.com/mpmeter/mpmeter/server"
)

// documented returns "METHOD /admin/v1/path" of every operation in the
// OpenAPI document served at /admin/v1/openapi.json.
func documented(t *testing.T, base string) []string {
	t.Helper()
	var doc struct {
		OpenAPI string                                `json:"openapi"`
		Paths   map[string]map[string]json.RawMessage `json:"paths"`
	}
	st, b := call(t, base, token, http.MethodGet, "/admin/v1/openapi.json", nil, &doc)
	if st != http.StatusOK {
		t.Fatalf("openapi.json: %d %s", st, b)
	}
	if doc.OpenAPI != "3.1.0" {
		t.Errorf("openapi %q, want 3.1.0", doc.OpenAPI)
	}
	var ops []string
	for path, methods := range doc.Paths {
		for m := range methods {
			ops = append(ops, strings.ToUpper(m)+" "+admin.Prefix+path)
		}
	}
	slices.Sort(ops)
	return ops
}

// served are the patterns on the admin mux, less the document's own routes.
func served(a *admin.API) []string {
	var out []string
	for _, p := range a.Patterns() {
		if strings.Contains(p, admin.Prefix+"/openapi") {
			continue
		}
		out = append(out, p)
	}
	slices.Sort(out)
	return out
}

// Every route is documented and every documented route is served: with
// huma the document is generated from the routes, and this holds it to that,
// including against a handler registered on the mux behind huma's back.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	srv := newServer(t)
	doc := documented(t, srv.URL)
	routes := served(srv.Admin)
	if !slices.Equal(doc, routes) {
		t.Errorf("documented and served differ:\ndocumented %v\nserved     %v", doc, routes)
	}
	if len(doc) < 25 {
		t.Errorf("only %d operations documented: %v", len(doc), doc)
	}
	// Every documented operation answers (with made-up ids, a JSON
	// not_found is fine; the mux's "no route" or 405 is not).
	param := regexp.MustCompile(`\{[^}]+\}`)
	for _, op := range doc {
		method, path, _ := strings.Cut(op, " ")
		path = param.ReplaceAllString(path, "x")
		var body any
		if method != http.MethodGet {
			body = "{}"
		}
		st, b := call(t, srv.URL, token, method, path, body, nil)
		if st == http.StatusMethodNotAllowed || st == http.StatusUnauthorized || strings.Contains(string(b), "no such admin route") {
			t.Errorf("%s (%s): %d %s", op, path, st, b)
		}
	}
}

// The check above does catch a route the document lacks.
func TestOpenAPICheckCatchesUndocumentedRoute(t *testing.T) {
	srv := mpmetertest.New(t, mpmetertest.WithConfig(func(c *server.Config) {
		c.AdminToken = token
		c.AdminRoutes = []func(huma.API){func(api huma.API) {
			// Registered on the mux, not as a documented operation.
			api.Adapter().Handle(&huma.Operation{Method: http.MethodGet, Path: "/sneaky"}, func(ctx huma.Context) { ctx.SetStatus(http.StatusOK) })
			huma.Register(api, huma.Operation{OperationID: "extra", Method: http.MethodGet, Path: "/extra"},
				func(_ context.Context, _ *struct{}) (*struct{}, error) { return &struct{}{}, nil })
		}}
	}))
	doc := documented(t, srv.URL)
	routes := served(srv.Admin)
	if !slices.Contains(doc, "GET /admin/v1/extra") {
		t.Errorf("a route another area registered is not documented: %v", doc)
	}
	if slices.Contains(doc, "GET /admin/v1/sneaky") || !slices.Contains(routes, "GET /admin/v1/sneaky") || slices.Equal(doc, routes) {
		t.Errorf("the undocumented route went unnoticed:\ndocumented %v\nserved     %v", doc, routes)
	}
}
