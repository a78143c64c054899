package mpmetertest_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/mpmeter/mpmeter/mpmetertest"
)

// FuzzHandler sends signed requests of any target and body through the
// whole server on a real SQLite store: every answer is JSON, and none is a
// 5xx (an internal error is a bug the input found).
func FuzzHandler(f *testing.F) {
	for _, s := range [][2]string{
		{"BatchMeterUsage", `{"ProductCode":"exampleprod1","UsageRecords":[{"CustomerIdentifier":"cust-example-1","Dimension":"users","Quantity":1,"Timestamp":1795514700}]}`},
		{"BatchMeterUsage", `{"UsageRecords":[{"CustomerAWSAccountId":"444455556666","LicenseArn":"arn:aws:license-manager::444455556666:license/l-0123456789abcdef","Dimension":"users","Quantity":1,"Timestamp":1795514700,"UsageAllocations":[{"AllocatedUsageQuantity":1,"Tags":[{"Key":"k","Value":"v"}]}]}]}`},
		{"ResolveCustomer", `{"RegistrationToken":"demo-token-1"}`},
		{"MeterUsage", `{"ProductCode":"exampleami1","Timestamp":1795514700,"UsageDimension":"vcpu_hours","UsageQuantity":1,"DryRun":true}`},
		{"RegisterUsage", `{"ProductCode":"examplecontainer1","PublicKeyVersion":1,"Nonce":"n"}`},
		{"Nope", `{}`},
		{"BatchMeterUsage", `{"ProductCode":"exampleprod1","UsageRecords":[{},{}]}`},
	} {
		f.Add(s[0], s[1])
	}
	srv := mpmetertest.New(f)
	f.Fuzz(func(t *testing.T, target, body string) {
		// A target no HTTP client can send (a control byte in a header
		// value) never reaches a server: net/http refuses it first.
		if strings.ContainsFunc(target, func(r rune) bool { return (r < ' ' && r != '\t') || r == 0x7f }) {
			t.Skip("not a sendable header value")
		}
		status, answer := srv.Do(t, mpmetertest.Raw{Target: target, Body: body, Key: mpmetertest.SellerKey, Secret: mpmetertest.SellerSecret})
		if status >= 500 {
			t.Fatalf("%s %q answered %d %s", target, body, status, answer)
		}
		if !json.Valid(answer) {
			t.Fatalf("%s %q answered %d with non-JSON %q", target, body, status, answer)
		}
	})
}
