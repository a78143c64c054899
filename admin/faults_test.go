package admin_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/marketplacemetering"

	"github.com/mpmeter/mpmeter/admin"
	"github.com/mpmeter/mpmeter/mpmetertest"
)

// The fault routes: add (validated), list in the order rules are tried,
// get with the remaining count, delete one, clear; a rule added through
// the API faults the next call at once.
func TestFaultRoutes(t *testing.T) {
	srv := newServer(t)
	var f admin.Fault
	must(t, srv, http.StatusCreated, http.MethodPost, "/admin/v1/faults",
		`{"id": "throttle-resolve", "operation": "ResolveCustomer", "kind": "throttling", "count": 1, "expires_in": "10m"}`, &f)
	if f.ID != "throttle-resolve" || f.Remaining == nil || *f.Remaining != 1 || !f.Active || f.ExpiresAt == nil ||
		f.ExpiresAt.Sub(f.CreatedAt).Minutes() != 10 {
		t.Fatalf("created %+v", f)
	}
	var gen admin.Fault
	must(t, srv, http.StatusCreated, http.MethodPost, "/admin/v1/faults", `{"kind": "latency", "latency": "5ms", "rate": 0.5}`, &gen)
	if !strings.HasPrefix(gen.ID, "f-") || gen.Latency != "5ms" || gen.Remaining != nil {
		t.Fatalf("created %+v", gen)
	}

	for _, bad := range []string{
		`{"kind": "throttling"}`,                              // neither rate nor count
		`{"kind": "throttling", "rate": 0.5, "count": 2}`,     // both
		`{"kind": "throttling", "rate": 1.5}`,                 // out of range
		`{"kind": "latency", "count": 1}`,                     // no latency
		`{"kind": "throttling", "count": 1, "latency": "1s"}`, // latency on another kind
		`{"kind": "unprocessed_records", "operation": "MeterUsage", "count": 1}`,
		`{"kind": "explode", "count": 1}`,
		`{"kind": "throttling", "count": 1, "account_id": "12"}`,
		`{"kind": "throttling", "count": 1, "id": "has space"}`,
		`{"kind": "throttling", "count": 1, "expires_in": "soon"}`,
	} {
		st, b := call(t, srv.URL, token, http.MethodPost, "/admin/v1/faults", bad, nil)
		if st != http.StatusBadRequest || !strings.Contains(string(b), "validation_failed") {
			t.Errorf("%s: %d %s", bad, st, b)
		}
	}
	st, b := call(t, srv.URL, token, http.MethodPost, "/admin/v1/faults", `{"id": "throttle-resolve", "kind": "throttling", "count": 1}`, nil)
	if st != http.StatusConflict || !strings.Contains(string(b), "already_exists") {
		t.Errorf("same id: %d %s", st, b)
	}

	var list admin.List[admin.Fault]
	must(t, srv, http.StatusOK, http.MethodGet, "/admin/v1/faults", nil, &list)
	if len(list.Items) != 2 || list.Items[0].ID != "throttle-resolve" || list.Items[1].ID != gen.ID {
		t.Fatalf("list %+v", list)
	}

	mc := marketplacemetering.NewFromConfig(srv.AWSConfig(mpmetertest.SellerKey, mpmetertest.SellerSecret), func(o *marketplacemetering.Options) { o.RetryMaxAttempts = 1 })
	_, err := mc.ResolveCustomer(context.Background(), &marketplacemetering.ResolveCustomerInput{RegistrationToken: aws.String(mpmetertest.Token)})
	if err == nil || !strings.Contains(err.Error(), "ThrottlingException") {
		t.Fatalf("the API's rule did not fault the call: %v", err)
	}
	must(t, srv, http.StatusOK, http.MethodGet, "/admin/v1/faults/throttle-resolve", nil, &f)
	if *f.Remaining != 0 || f.Active {
		t.Errorf("after the fault: %+v", f)
	}

	must(t, srv, http.StatusNoContent, http.MethodDelete, "/admin/v1/faults/throttle-resolve", nil, nil)
	must(t, srv, http.StatusNotFound, http.MethodDelete, "/admin/v1/faults/throttle-resolve", nil, nil)
	must(t, srv, http.StatusNotFound, http.MethodGet, "/admin/v1/faults/throttle-resolve", nil, nil)
	var cleared struct{ Deleted int }
	must(t, srv, http.StatusOK, http.MethodDelete, "/admin/v1/faults", nil, &cleared)
	if cleared.Deleted != 1 {
		t.Errorf("cleared %d, want 1", cleared.Deleted)
	}
	must(t, srv, http.StatusOK, http.MethodGet, "/admin/v1/faults", nil, &list)
	if len(list.Items) != 0 {
		t.Errorf("after clear: %+v", list)
	}
}
