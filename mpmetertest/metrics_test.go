package mpmetertest_test

//lint:file-ignore SA1019 aws-sdk-go v1 is deprecated, and still one of the real clients mpmeter must serve: it is tested on purpose.

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go/aws"
	mm "github.com/aws/aws-sdk-go/service/marketplacemetering"

	"github.com/mpmeter/mpmeter/mpmetertest"
	"github.com/mpmeter/mpmeter/server"
)

// metricsOnAPI serves /metrics on the API handler, as --metrics-on-api does.
func metricsOnAPI(c *server.Config) { c.MetricsOnAPI = true }

// By default /metrics is not on the API listener: unsigned clients must
// not read it (it is on the admin listener).
func TestNoMetricsOnAPIByDefault(t *testing.T) {
	srv := mpmetertest.New(t)
	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode == 200 {
		t.Errorf("/metrics answered 200 on the API handler")
	}
}

func TestMetrics(t *testing.T) {
	srv := mpmetertest.New(t, mpmetertest.WithConfig(metricsOnAPI))
	c := seller(t, srv)
	ts := time.Now().Add(-time.Minute)
	in := &mm.BatchMeterUsageInput{ProductCode: aws.String(mpmetertest.SaaSProduct), UsageRecords: []*mm.UsageRecord{
		record(mpmetertest.Customer, "users", 1, ts), record(mpmetertest.CancelledCustomer, "users", 1, ts),
	}}
	for i := 0; i < 2; i++ {
		if _, err := c.BatchMeterUsage(in); err != nil {
			t.Fatal(err)
		}
	}
	c.ResolveCustomer(&mm.ResolveCustomerInput{RegistrationToken: aws.String("nope")})

	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, want := range []string{
		`mpmeter_requests_total{error="",operation="BatchMeterUsage"} 2`,
		`mpmeter_requests_total{error="InvalidTokenException",operation="ResolveCustomer"} 1`,
		`mpmeter_records_total{operation="BatchMeterUsage",outcome="accepted"} 1`,
		`mpmeter_records_total{operation="BatchMeterUsage",outcome="identical"} 1`,
		`mpmeter_records_total{operation="BatchMeterUsage",outcome="not_subscribed"} 2`,
		`mpmeter_request_duration_seconds_count{operation="BatchMeterUsage"} 2`,
		`mpmeter_store_commit_records_sum 2`, // two calls of one record each (the second finds it stored)
		`mpmeter_store_commit_records_count 2`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %q in\n%s", want, grepLines(string(body), "mpmeter_store"))
		}
	}
}

func grepLines(s, prefix string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(l, prefix) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// Five unsigned requests with made-up targets once made five new series;
// through the real server (SigV4 included) they are one "unknown" series.
func TestMetricsJunkTargetsAddNoSeries(t *testing.T) {
	srv := mpmetertest.New(t, mpmetertest.WithConfig(metricsOnAPI))
	for i := 0; i < 5; i++ {
		status, _ := srv.Do(t, mpmetertest.Raw{Target: "MadeUp" + strings.Repeat("x", i), Body: `{}`})
		if status != 403 {
			t.Fatalf("unsigned junk answered %d", status)
		}
	}
	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	got := grepLines(string(body), "mpmeter_requests_total{")
	if want := `mpmeter_requests_total{error="MissingAuthenticationTokenException",operation="unknown"} 5`; got != want {
		t.Errorf("series:\n%s\nwant:\n%s", got, want)
	}
}
