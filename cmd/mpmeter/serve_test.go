package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/marketplacemetering"
	"github.com/aws/aws-sdk-go-v2/service/marketplacemetering/types"

	"github.com/mpmeter/mpmeter/internal/testbin"
	"github.com/mpmeter/mpmeter/mpmetertest"
)

// startServe runs `mpmeter serve args...` until the test ends and returns
// its endpoint.
func startServe(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var stdout, stderr testbin.Buffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, append([]string{"serve", "--listen", "127.0.0.1:0"}, args...), &stdout, &stderr, func(string) string { return "" })
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve returned %v\nstderr:\n%s", err, stderr.String())
		}
	})
	endpointRE := regexp.MustCompile(`API at (http://\S+)`)
	for range 600 {
		if m := endpointRE.FindStringSubmatch(stdout.String()); m != nil {
			return m[1]
		}
		select {
		case err := <-done:
			done <- err
			t.Fatalf("serve exited before serving: %v\nstderr:\n%s", err, stderr.String())
		case <-time.After(50 * time.Millisecond):
		}
	}
	t.Fatalf("serve printed no endpoint\nstdout:\n%s\nstderr:\n%s", stdout.String(), stderr.String())
	return ""
}

// A FROM scratch image has no /tmp: --demo then keeps its throwaway
// database in the working directory (the image's /data), meters, and
// removes it at exit.
func TestServeDemoWithoutTempDir(t *testing.T) {
	work := t.TempDir()
	t.Chdir(work)
	t.Setenv("TMPDIR", filepath.Join(work, "no-such-dir"))
	if _, err := os.MkdirTemp("", "x"); err == nil {
		t.Fatal("the test's TMPDIR is usable: it tests nothing")
	}
	t.Run("serve", func(t *testing.T) {
		endpoint := startServe(t, "--demo")
		if entries, _ := os.ReadDir(work); len(entries) != 1 || !strings.HasPrefix(entries[0].Name(), ".mpmeter-demo-") {
			t.Errorf("working directory holds %v, want one .mpmeter-demo-* directory", entries)
		}
		client := marketplacemetering.NewFromConfig(mpmetertest.AWSConfig(endpoint, mpmetertest.Region, mpmetertest.SellerKey, mpmetertest.SellerSecret))
		out, err := client.BatchMeterUsage(t.Context(), &marketplacemetering.BatchMeterUsageInput{
			ProductCode: aws.String(mpmetertest.SaaSProduct),
			UsageRecords: []types.UsageRecord{{
				CustomerIdentifier: aws.String(mpmetertest.Customer), Dimension: aws.String("users"),
				Quantity: aws.Int32(3), Timestamp: aws.Time(time.Now()),
			}},
		})
		if err != nil || len(out.Results) != 1 || out.Results[0].Status != types.UsageRecordResultStatusSuccess {
			t.Fatalf("BatchMeterUsage: %+v %v", out, err)
		}
	})
	if entries, _ := os.ReadDir(work); len(entries) != 0 {
		t.Errorf("the demo database was left behind: %v", entries)
	}
}

func TestHealthzAndHealthcheckReportTheBuild(t *testing.T) {
	endpoint := startServe(t, "--demo", "--db", filepath.Join(t.TempDir(), "h.db"))
	resp, err := http.Get(endpoint + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var health struct{ Status, Version, Commit, Date, Go string }
	if err := json.NewDecoder(resp.Body).Decode(&health); err != nil || resp.StatusCode != 200 {
		t.Fatalf("/healthz: %d %v", resp.StatusCode, err)
	}
	want := build()
	if health.Status != "ok" || health.Version != want.Version || health.Commit != want.Commit || health.Date != want.Date || health.Go == "" {
		t.Fatalf("/healthz says %+v, the binary is %+v", health, want)
	}

	var out, errOut bytes.Buffer
	if err := run(t.Context(), []string{"healthcheck", "--url", endpoint + "/healthz"}, &out, &errOut, os.Getenv); err != nil || !strings.Contains(out.String(), `"status":"ok"`) {
		t.Fatalf("healthcheck of a healthy server: %v %s %s", err, out.String(), errOut.String())
	}
	if err := run(t.Context(), []string{"healthcheck", "--url", endpoint + "/no-such-path"}, &out, &errOut, os.Getenv); err == nil || !strings.Contains(err.Error(), "answered 400") {
		t.Fatalf("healthcheck of a path that is no health check: %v", err)
	}
	port := endpoint[strings.LastIndex(endpoint, ":")+1:]
	env := func(k string) string { return map[string]string{"MPMETER_LISTEN": "0.0.0.0:" + port}[k] }
	if err := run(t.Context(), []string{"healthcheck"}, &out, &errOut, env); err != nil {
		t.Fatalf("healthcheck with the port from MPMETER_LISTEN: %v", err)
	}
}

func TestDefaultHealthURL(t *testing.T) {
	for listen, want := range map[string]string{
		"":               "http://127.0.0.1:8080/healthz",
		"0.0.0.0:8080":   "http://127.0.0.1:8080/healthz",
		":9000":          "http://127.0.0.1:9000/healthz",
		"[::]:7000":      "http://127.0.0.1:7000/healthz",
		"127.0.0.1:0":    "http://127.0.0.1:8080/healthz",
		"not an address": "http://127.0.0.1:8080/healthz",
	} {
		if got := defaultHealthURL(listen); got != want {
			t.Errorf("defaultHealthURL(%q) = %q, want %q", listen, got, want)
		}
	}
}

func TestVersionCommand(t *testing.T) {
	var out bytes.Buffer
	if err := run(t.Context(), []string{"version"}, &out, &out, os.Getenv); err != nil {
		t.Fatal(err)
	}
	b := build()
	for _, want := range []string{"mpmeter " + b.Version, "commit  " + b.Commit, "date    " + b.Date} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("version printed %q, lacking %q", out.String(), want)
		}
	}
	out.Reset()
	if err := run(t.Context(), []string{"version", "--json"}, &out, &out, os.Getenv); err != nil || !strings.Contains(out.String(), `"version":"`+b.Version+`"`) {
		t.Fatalf("version --json: %v %s", err, out.String())
	}
}

func TestReachableEndpoint(t *testing.T) {
	for in, want := range map[string]string{
		"http://[::]:8080":       "http://127.0.0.1:8080",
		"http://0.0.0.0:8080":    "http://127.0.0.1:8080",
		"http://127.0.0.1:41234": "http://127.0.0.1:41234",
		"http://[::1]:8080":      "http://[::1]:8080",
		"http://10.1.2.3:8080":   "http://10.1.2.3:8080",
	} {
		if got := reachableEndpoint(in); got != want {
			t.Errorf("reachableEndpoint(%q) = %q, want %q", in, got, want)
		}
	}
}
