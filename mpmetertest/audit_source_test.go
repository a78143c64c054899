package mpmetertest_test

//lint:file-ignore SA1019 aws-sdk-go v1 is deprecated, and still one of the real clients mpmeter must serve: it is tested on purpose.

import (
	"testing"

	"github.com/aws/aws-sdk-go/aws"
	mes "github.com/aws/aws-sdk-go/service/marketplaceentitlementservice"
	mm "github.com/aws/aws-sdk-go/service/marketplacemetering"
	smithycbor "github.com/aws/smithy-go/encoding/cbor"

	"github.com/mpmeter/mpmeter"
	"github.com/mpmeter/mpmeter/mpmetertest"
)

// GetEntitlements is recorded as a call to the Entitlement Service, in both
// of its protocols; the Metering API's calls keep theirs.
func TestAuditEventSourceOfEntitlementCalls(t *testing.T) {
	srv := mpmetertest.New(t)
	ec := entitlementClient(t, srv, mpmetertest.SellerKey, mpmetertest.SellerSecret, "us-east-1")
	if _, err := ec.GetEntitlements(&mes.GetEntitlementsInput{ProductCode: aws.String(mpmetertest.ContractProduct)}); err != nil {
		t.Fatal(err)
	}
	// A refused one (another seller's product) too.
	_, err := ec.GetEntitlements(&mes.GetEntitlementsInput{ProductCode: aws.String("otherprod1")})
	wantCode(t, err, "InvalidParameterException", 400)
	if resp, out := cborCall(t, srv, cborPath, smithycbor.Map{"ProductCode": smithycbor.String(mpmetertest.ContractProduct)}, nil); resp.StatusCode != 200 {
		t.Fatalf("CBOR: %d %v", resp.StatusCode, out)
	}
	if _, err := seller(t, srv).ResolveCustomer(&mm.ResolveCustomerInput{RegistrationToken: aws.String("demo-token-1")}); err != nil {
		t.Fatal(err)
	}

	ents := srv.AuditEvents(t, mpmeter.AuditFilter{EventName: mpmeter.OpGetEntitlements})
	if len(ents) != 3 {
		t.Fatalf("%d GetEntitlements events, want 3", len(ents))
	}
	for _, ev := range ents {
		if ev.EventSource != "entitlement-marketplace.amazonaws.com" {
			t.Errorf("GetEntitlements event %s (error %q): eventSource %q", ev.EventID, ev.ErrorCode, ev.EventSource)
		}
	}
	bySource := srv.AuditEvents(t, mpmeter.AuditFilter{EventSource: mpmeter.AuditSourceEntitlement})
	if len(bySource) != 3 {
		t.Errorf("%d events of the Entitlement Service's source, want 3", len(bySource))
	}
	resolve := srv.AuditEvents(t, mpmeter.AuditFilter{EventName: mpmeter.OpResolveCustomer})
	if len(resolve) != 1 || resolve[0].EventSource != mpmeter.AuditSourceMetering {
		t.Errorf("ResolveCustomer events %+v, want one of source %s", resolve, mpmeter.AuditSourceMetering)
	}
}
