package metrics_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/mpmeter/mpmeter"
	"github.com/mpmeter/mpmeter/awsjson"
	"github.com/mpmeter/mpmeter/metrics"
	"github.com/mpmeter/mpmeter/middleware"
)

// verifier accepts only "Authorization: ok".
type verifier struct{}

func (verifier) VerifyRequest(_ context.Context, r *http.Request, readBody func() ([]byte, error)) (mpmeter.Caller, error) {
	if r.Header.Get("Authorization") != "ok" {
		return mpmeter.Caller{}, &mpmeter.Error{Code: mpmeter.CodeMissingAuthentication, Message: "Missing Authentication Token"}
	}
	if _, err := readBody(); err != nil {
		return mpmeter.Caller{}, err
	}
	return mpmeter.Caller{AccountID: "111122223333", Region: "us-east-1"}, nil
}

// service answers ResolveCustomer; nothing else is called here.
type service struct{ mpmeter.MeteringService }

func (service) ResolveCustomer(context.Context, mpmeter.Caller, *mpmeter.ResolveCustomerInput) (*mpmeter.ResolveCustomerOutput, error) {
	return &mpmeter.ResolveCustomerOutput{}, nil
}

// api is the API handler as the server assembles it, measured by m.
func api(m *metrics.Metrics) http.Handler {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	return middleware.Wrap(awsjson.NewHandler(service{}, verifier{}, awsjson.Options{Logger: quiet}),
		middleware.Options{Logger: quiet, Observer: m, OnPanic: awsjson.WriteInternalError})
}

func call(h http.Handler, target, auth string) int {
	r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(`{"RegistrationToken":"t"}`))
	r.Header.Set("X-Amz-Target", target)
	if auth != "" {
		r.Header.Set("Authorization", auth)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w.Code
}

// series returns the scraped sample lines of one metric, sorted.
func series(t *testing.T, m *metrics.Metrics, name string) []string {
	t.Helper()
	w := httptest.NewRecorder()
	m.Handler().ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	var out []string
	for _, l := range strings.Split(w.Body.String(), "\n") {
		if strings.HasPrefix(l, name+"{") {
			out = append(out, l)
		}
	}
	sort.Strings(out)
	return out
}

// Made-up targets, signed or not, add no series: they are all "unknown".
func TestJunkTargetsAddNoSeries(t *testing.T) {
	m := metrics.New()
	h := api(m)
	for i, target := range []string{
		"AWSMPMeteringService.DeleteEverything", "AWSMPMeteringService.Batch\nMeterUsage", "x", "",
		mpmeter.TargetPrefix + "." + strings.Repeat("Z", 5000),
	} {
		if code := call(h, target, ""); code != 403 {
			t.Fatalf("unsigned junk %d answered %d", i, code)
		}
	}
	if code := call(h, "AWSMPMeteringService.Nope", "ok"); code != 400 {
		t.Fatalf("signed junk answered %d", code)
	}
	want := []string{
		`mpmeter_requests_total{error="MissingAuthenticationTokenException",operation="unknown"} 5`,
		`mpmeter_requests_total{error="UnknownOperationException",operation="unknown"} 1`,
	}
	if got := series(t, m, "mpmeter_requests_total"); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("series:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if got := series(t, m, "mpmeter_request_duration_seconds_count"); len(got) != 1 || !strings.Contains(got[0], `operation="unknown"} 6`) {
		t.Errorf("latency series %v", got)
	}
}

// Known operations are labelled with their name, signed or not.
func TestKnownOperationsLabelled(t *testing.T) {
	m := metrics.New()
	h := api(m)
	target := mpmeter.TargetPrefix + "." + mpmeter.OpResolveCustomer
	call(h, target, "ok")
	call(h, target, "ok")
	call(h, target, "")
	want := []string{
		`mpmeter_requests_total{error="",operation="ResolveCustomer"} 2`,
		`mpmeter_requests_total{error="MissingAuthenticationTokenException",operation="ResolveCustomer"} 1`,
	}
	if got := series(t, m, "mpmeter_requests_total"); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("series:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// An error name that is not in the error table (a bug, not input) is
// counted as "unknown" rather than opening a series per name.
func TestUnknownErrorNames(t *testing.T) {
	m := metrics.New()
	m.ObserveRequest(mpmeter.OpMeterUsage, "MadeUpException", time.Millisecond)
	m.ObserveRequest(mpmeter.OpMeterUsage, mpmeter.CodeThrottling, time.Millisecond)
	want := []string{
		`mpmeter_requests_total{error="ThrottlingException",operation="MeterUsage"} 1`,
		`mpmeter_requests_total{error="unknown",operation="MeterUsage"} 1`,
	}
	if got := series(t, m, "mpmeter_requests_total"); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("series:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestRecordsAndCommits(t *testing.T) {
	m := metrics.New()
	m.ObserveRecords(mpmeter.OpBatchMeterUsage, "accepted", 3)
	m.ObserveRecords(mpmeter.OpBatchMeterUsage, "accepted", 2)
	m.ObserveCommit(5, 2*time.Millisecond)
	if got := series(t, m, "mpmeter_records_total"); len(got) != 1 || got[0] != `mpmeter_records_total{operation="BatchMeterUsage",outcome="accepted"} 5` {
		t.Errorf("records %v", got)
	}
	w := httptest.NewRecorder()
	m.Handler().ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	for _, want := range []string{"mpmeter_store_commit_records_sum 5", "mpmeter_store_commit_records_count 1", "go_goroutines"} {
		if !strings.Contains(w.Body.String(), want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}
