package main

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	mm "github.com/aws/aws-sdk-go-v2/service/marketplacemetering"
	"github.com/aws/aws-sdk-go-v2/service/marketplacemetering/types"

	"github.com/mpmeter/mpmeter/admin"
	"github.com/mpmeter/mpmeter/internal/testbin"
	"github.com/mpmeter/mpmeter/mpmetertest"
)

// eventually polls cond until it holds (the audit log reaches the
// database in batches); it fails the test after a generous bound.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("never: %s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// usage, audit tail and faults through the CLI against a real server,
// with the calls made by a real AWS client.
func TestCLIUsageAuditFaults(t *testing.T) {
	endpoint := startServe(t, "--demo", "--admin-token", cliToken, "--db", filepath.Join(t.TempDir(), "cli.db"))
	r := cliRunner{t, map[string]string{"MPMETER_SERVER": endpoint, "MPMETER_ADMIN_TOKEN": cliToken}}
	c := mm.NewFromConfig(mpmetertest.AWSConfig(endpoint, mpmetertest.Region, mpmetertest.SellerKey, mpmetertest.SellerSecret),
		func(o *mm.Options) { o.RetryMaxAttempts = 1 })
	ts := time.Now().Add(-time.Hour).UTC().Truncate(time.Second)
	calls := 0
	// meter makes a BatchMeterUsage call, each stored one an hour earlier
	// (the same customer, dimension and hour would be a DuplicateRecord).
	meter := func(t *testing.T, quantity int32) (requestID string, err error) {
		at := ts.Add(-time.Duration(calls) * time.Hour)
		out, err := c.BatchMeterUsage(t.Context(), &mm.BatchMeterUsageInput{ProductCode: aws.String(mpmetertest.SaaSProduct),
			UsageRecords: []types.UsageRecord{{CustomerIdentifier: aws.String(mpmetertest.Customer), Dimension: aws.String("users"),
				Quantity: aws.Int32(quantity), Timestamp: aws.Time(at)}}})
		if err != nil {
			return "", err
		}
		if len(out.Results) != 1 || out.Results[0].Status != types.UsageRecordResultStatusSuccess {
			t.Fatalf("BatchMeterUsage: %+v", out.Results)
		}
		calls++
		id, _ := awsmiddleware.GetRequestIDMetadata(out.ResultMetadata)
		return id, nil
	}
	firstRequest, err := meter(t, 7)
	if err != nil {
		t.Fatal(err)
	}

	var records []admin.UsageRecord
	t.Run("usage list, get", func(t *testing.T) {
		r := cliRunner{t, r.env}
		r.json(&records, "usage", "list", "--product", mpmetertest.SaaSProduct, "--operation", "BatchMeterUsage")
		if len(records) != 1 || records[0].Quantity != 7 || records[0].Dimension != "users" || !records[0].Timestamp.Equal(ts) {
			t.Fatalf("usage list: %+v", records)
		}
		var got admin.UsageRecord
		r.json(&got, "usage", "get", records[0].MeteringRecordID)
		if got.MeteringRecordID != records[0].MeteringRecordID || got.Quantity != 7 {
			t.Fatalf("usage get: %+v", got)
		}
		if out := r.ok("usage", "list"); !strings.Contains(out, records[0].MeteringRecordID) || !strings.HasPrefix(out, "TIMESTAMP") {
			t.Fatalf("usage list (table):\n%s", out)
		}
		var none []admin.UsageRecord
		r.json(&none, "usage", "list", "--dimension", "gigabytes")
		if len(none) != 0 {
			t.Fatalf("--dimension gigabytes: %+v", none)
		}
		r.fails(exitNotFound, "usage", "get", "no-such-record")
		r.fails(exitUsage, "usage", "list", "--from", "yesterday") // the server's validation_failed
	})

	t.Run("usage report", func(t *testing.T) {
		r := cliRunner{t, r.env}
		out := r.ok("usage", "report", "--by", "day", "--group", "product,dimension", "--format", "csv")
		rows, err := csv.NewReader(strings.NewReader(out)).ReadAll()
		if err != nil || len(rows) != 2 {
			t.Fatalf("report csv (%v):\n%s", err, out)
		}
		col := map[string]string{}
		for i, name := range rows[0] {
			col[name] = rows[1][i]
		}
		day := ts.Truncate(24 * time.Hour).Format(time.RFC3339)
		if col["period_start"] != day || col["product_code"] != mpmetertest.SaaSProduct || col["dimension"] != "users" || col["quantity"] != "7" {
			t.Fatalf("report csv line: %v", col)
		}
		if out := r.ok("usage", "report", "--by", "day"); !strings.Contains(out, day) || !strings.Contains(out, " 7 ") {
			t.Fatalf("report table:\n%s", out)
		}
		var line map[string]any
		if out := r.ok("usage", "report", "--by", "hour", "--format", "json"); json.Unmarshal([]byte(out), &line) != nil || line["quantity"] != 7.0 {
			t.Fatalf("report --format json: %s", out)
		}
		r.fails(exitUsage, "usage", "report", "--by", "week")
		r.fails(exitUsage, "usage", "report", "--group", "colour") // the server's validation_failed
	})

	t.Run("usage export", func(t *testing.T) {
		r := cliRunner{t, r.env}
		out := r.ok("usage", "export", "--kind", "records", "--format", "jsonl")
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if len(lines) != len(records) {
			t.Fatalf("export: %d lines, %d records:\n%s", len(lines), len(records), out)
		}
		for i, l := range lines {
			var got admin.UsageRecord
			if err := json.Unmarshal([]byte(l), &got); err != nil {
				t.Fatal(err)
			}
			want, _ := json.Marshal(records[i])
			gotJSON, _ := json.Marshal(got)
			if string(gotJSON) != string(want) {
				t.Fatalf("export line %d:\n%s\nlist:\n%s", i, gotJSON, want)
			}
		}
		file := filepath.Join(t.TempDir(), "feed.csv")
		r.ok("usage", "export", "--kind", "feed", "--format", "csv", "-f", file)
		r.fails(exitUsage, "usage", "export", "--kind", "everything")
	})

	t.Run("audit tail", func(t *testing.T) {
		r := cliRunner{t, r.env}
		eventually(t, "audit tail shows the BatchMeterUsage", func() bool {
			out := r.ok("audit", "tail", "--operation", "BatchMeterUsage")
			return strings.Contains(out, firstRequest) && strings.Contains(out, "1 records: 1 Success")
		})

		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		var out, errOut testbin.Buffer
		done := make(chan error, 1)
		env := func(k string) string { return r.env[k] }
		go func() {
			done <- run(ctx, []string{"audit", "tail", "--follow", "--source", "metering", "-o", "json"}, &out, &errOut, env)
		}()
		eventually(t, "tail --follow prints the earlier call", func() bool { return strings.Contains(out.String(), firstRequest) })
		later, err := meter(t, 2)
		if err != nil {
			t.Fatal(err)
		}
		eventually(t, "tail --follow prints the call made after it started", func() bool { return strings.Contains(out.String(), later) })
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("tail --follow, cancelled: %v\n%s", err, errOut.String())
		}
		seen := map[string]int{}
		for l := range strings.SplitSeq(strings.TrimSpace(out.String()), "\n") {
			var ev struct {
				RequestID string `json:"requestID"`
			}
			if err := json.Unmarshal([]byte(l), &ev); err != nil {
				t.Fatalf("not a JSON line: %q", l)
			}
			seen[ev.RequestID]++
		}
		if seen[firstRequest] != 1 || seen[later] != 1 {
			t.Fatalf("each event once: %v", seen)
		}
	})

	t.Run("faults", func(t *testing.T) {
		r := cliRunner{t, r.env}
		var f admin.Fault
		r.json(&f, "faults", "add", "--kind", "throttling", "--count", "1", "--operation", "BatchMeterUsage")
		if f.Kind != "throttling" || f.Count != 1 || !f.Active {
			t.Fatalf("faults add: %+v", f)
		}
		var fs []admin.Fault
		r.json(&fs, "faults", "list")
		if len(fs) != 1 || fs[0].ID != f.ID {
			t.Fatalf("faults list: %+v", fs)
		}
		_, err := meter(t, 1)
		if te := new(types.ThrottlingException); !errors.As(err, &te) {
			t.Fatalf("the call after faults add: %v", err)
		}
		if _, err := meter(t, 1); err != nil {
			t.Fatalf("the count was 1: %v", err)
		}
		r.json(&f, "faults", "add", "--kind", "throttling", "--rate", "1")
		if out := r.ok("faults", "clear", f.ID); !strings.Contains(out, "deleted 1") {
			t.Fatalf("faults clear ID: %s", out)
		}
		if _, err := meter(t, 1); err != nil {
			t.Fatalf("after faults clear ID: %v", err)
		}
		if out := r.ok("faults", "clear"); !strings.Contains(out, "deleted 1") { // the spent count rule
			t.Fatalf("faults clear: %s", out)
		}
		r.json(&fs, "faults", "list")
		if len(fs) != 0 {
			t.Fatalf("after faults clear: %+v", fs)
		}
		r.fails(exitUsage, "faults", "add", "--kind", "throttling") // neither rate nor count
		r.fails(exitUsage, "faults", "add", "--count", "1")
		r.fails(exitNotFound, "faults", "clear", "f-nosuch")
	})
}
