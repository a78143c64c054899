package admin_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/mpmeter/mpmeter/mpmetertest"
	"github.com/mpmeter/mpmeter/server"
)

// fuzzRoutes are the admin operations that take input: a body, path
// parameters or query parameters.
var fuzzRoutes = []struct{ method, path string }{
	{http.MethodPost, "/admin/v1/accounts"},
	{http.MethodPatch, "/admin/v1/accounts/{id}"},
	{http.MethodPost, "/admin/v1/access-keys"},
	{http.MethodGet, "/admin/v1/access-keys"},
	{http.MethodPost, "/admin/v1/products"},
	{http.MethodPatch, "/admin/v1/products/{id}"},
	{http.MethodPost, "/admin/v1/subscriptions"},
	{http.MethodGet, "/admin/v1/subscriptions"},
	{http.MethodPost, "/admin/v1/subscriptions/{id}/cancel"},
	{http.MethodPut, "/admin/v1/subscriptions/{id}/entitlements"},
	{http.MethodPost, "/admin/v1/registration-tokens"},
	{http.MethodPut, "/admin/v1/clock"},
	{http.MethodPost, "/admin/v1/clock/advance"},
	{http.MethodPost, "/admin/v1/faults"},
	{http.MethodGet, "/admin/v1/usage/records"},
	{http.MethodGet, "/admin/v1/usage/summaries"},
	{http.MethodGet, "/admin/v1/audit/events"},
}

// FuzzAdminAPI sends any body, path parameter and query to the admin
// operations of a real server (SQLite store): every answer is below 500 and
// is JSON (the {code, message} envelope on errors), whatever the input.
func FuzzAdminAPI(f *testing.F) {
	seeds := []struct {
		route      int
		param, qry string
		body       string
	}{
		{0, "", "", `{"id":"210987654321","name":"x"}`},
		{1, "111122223333", "", `{"name":"y","version":1}`},
		{2, "", "", `{"account_id":"444455556666"}`},
		{4, "", "", `{"code":"p1","seller_id":"111122223333","type":"saas","dimensions":[{"name":"users","price":"0.05"}]}`},
		{6, "", "", `{"account_id":"444455556666","product_code":"exampleprod1","free_trial":true}`},
		{9, "agmt-x", "", `{"entitlements":[{"dimension":"users","value":1e308}]}`},
		{11, "", "", `{"time":"2026-01-01T00:00:00Z"}`},
		{12, "", "", `{"duration":"-9999999h"}`},
		{13, "", "", `{"kind":"latency","latency":"5m","count":1}`},
		{14, "", "from=x&limit=-1&cursor=%00", ``},
		{15, "", "period=week&group_by=tag:", ``},
		{16, "", "error=any&order=sideways", ``},
	}
	for _, s := range seeds {
		f.Add(s.route, s.param, s.qry, s.body)
	}
	srv := mpmetertest.New(f, mpmetertest.WithConfig(func(c *server.Config) { c.AdminToken = token }))
	f.Fuzz(func(t *testing.T, route int, param, query, body string) {
		r := fuzzRoutes[((route%len(fuzzRoutes))+len(fuzzRoutes))%len(fuzzRoutes)]
		path := strings.Replace(r.path, "{id}", url.PathEscape(param), 1)
		u := srv.URL + path
		if query != "" {
			u += "?" + query
		}
		req, err := http.NewRequest(r.method, u, strings.NewReader(body))
		if err != nil {
			t.Skip("not a request an HTTP client can send")
		}
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Skip("not a request an HTTP client can send: ", err)
		}
		defer resp.Body.Close()
		var answer json.RawMessage
		decodeErr := json.NewDecoder(resp.Body).Decode(&answer)
		if resp.StatusCode >= 500 {
			t.Fatalf("%s %s %q: %d %s", r.method, u, body, resp.StatusCode, answer)
		}
		if resp.StatusCode != http.StatusNoContent && decodeErr != nil {
			t.Fatalf("%s %s %q: %d, not JSON: %v", r.method, u, body, resp.StatusCode, decodeErr)
		}
	})
}
