package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	mm "github.com/aws/aws-sdk-go-v2/service/marketplacemetering"
	"github.com/aws/aws-sdk-go-v2/service/marketplacemetering/types"

	"github.com/mpmeter/mpmeter"
	"github.com/mpmeter/mpmeter/mpmetertest"
)

// The seller's question, answered from the database with mpmeter audit:
// did my BatchMeterUsage reach the service, and what did it answer?
func TestAuditCommand(t *testing.T) {
	srv := mpmetertest.New(t)
	c := mm.NewFromConfig(srv.AWSConfig(mpmetertest.SellerKey, mpmetertest.SellerSecret), func(o *mm.Options) { o.RetryMaxAttempts = 1 })
	ts := time.Now().Add(-time.Minute)
	out, err := c.BatchMeterUsage(t.Context(), &mm.BatchMeterUsageInput{ProductCode: aws.String(mpmetertest.SaaSProduct),
		UsageRecords: []types.UsageRecord{{CustomerIdentifier: aws.String(mpmetertest.Customer), Dimension: aws.String("users"), Quantity: aws.Int32(3), Timestamp: aws.Time(ts)}}})
	if err != nil {
		t.Fatal(err)
	}
	reqID, _ := awsmiddleware.GetRequestIDMetadata(out.ResultMetadata)
	c.ResolveCustomer(t.Context(), &mm.ResolveCustomerInput{RegistrationToken: aws.String("no-such-token")})
	srv.AuditEvents(t, mpmeter.AuditFilter{}) // written

	cli := func(args ...string) (string, string, error) {
		var stdout, stderr bytes.Buffer
		err := run(t.Context(), append([]string{"audit"}, append(args, "--db", srv.DB)...), &stdout, &stderr, func(string) string { return "" })
		return stdout.String(), stderr.String(), err
	}
	since, until := time.Now().Add(-5*time.Minute).UTC().Format(time.RFC3339), time.Now().Add(time.Minute).UTC().Format(time.RFC3339)
	stdout, stderr, err := cli("list", "--operation", "BatchMeterUsage", "--account", mpmetertest.SellerAccount, "--since", since, "--until", until)
	if err != nil {
		t.Fatalf("%v: %s", err, stderr)
	}
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "TIME") {
		t.Fatalf("want a header and one event:\n%s", stdout)
	}
	for _, want := range []string{"BatchMeterUsage", mpmetertest.SellerAccount, mpmetertest.SellerKey, " OK ", reqID, "1 records: 1 Success"} {
		if !strings.Contains(lines[1], want) {
			t.Errorf("%q missing in %q", want, lines[1])
		}
	}

	stdout, _, err = cli("list", "--error", "any", "-o", "json")
	var page struct {
		Events []mpmeter.AuditEvent `json:"events"`
	}
	if err != nil || json.Unmarshal([]byte(stdout), &page) != nil || len(page.Events) != 1 || page.Events[0].ErrorCode != "InvalidTokenException" {
		t.Fatalf("errors as JSON (%v):\n%s", err, stdout)
	}
	if strings.Contains(stdout, "no-such-token") {
		t.Error("the registration token is in the log")
	}

	stdout, _, err = cli("list", "--since", "1h", "--limit", "1", "--newest")
	if err != nil || !strings.Contains(stdout, "ResolveCustomer") || strings.Contains(stdout, "BatchMeterUsage") {
		t.Fatalf("newest first, one per page (%v):\n%s", err, stdout)
	}

	stdout, _, err = cli("export")
	if err != nil || strings.Count(stdout, "\n") != 2 || !strings.Contains(stdout, `"eventSource":"metering-marketplace.amazonaws.com"`) {
		t.Fatalf("export (%v):\n%s", err, stdout)
	}
	for _, bad := range [][]string{{"list", "--since", "yesterday"}, {"list", "--cursor", "nope"}, {"list", "-o", "yaml"}, {"frobnicate"}} {
		if _, _, err := cli(bad...); err == nil {
			t.Errorf("audit %v succeeded", bad)
		}
	}
}
