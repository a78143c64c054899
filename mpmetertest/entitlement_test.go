package mpmetertest_test

//lint:file-ignore SA1019 aws-sdk-go v1 is deprecated, and still one of the real clients mpmeter must serve: it is tested on purpose.

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go/aws"
	"github.com/aws/aws-sdk-go/aws/credentials"
	"github.com/aws/aws-sdk-go/aws/session"
	mes "github.com/aws/aws-sdk-go/service/marketplaceentitlementservice"
	smithycbor "github.com/aws/smithy-go/encoding/cbor"

	"github.com/mpmeter/mpmeter"
	"github.com/mpmeter/mpmeter/mpmetertest"
)

// The Entitlement Service through its real clients' two wire protocols:
// aws-sdk-go v1 (awsJson 1.1, X-Amz-Target AWSMPEntitlementService.*) and
// Smithy RPC v2 CBOR, encoded and decoded here with smithy-go's own CBOR
// codec (github.com/aws/smithy-go/encoding/cbor, what aws-sdk-go-v2's CBOR
// clients use): the aws-sdk-go-v2 marketplaceentitlementservice module is
// not available to this build, and JS v3 (test/node) drives a full CBOR
// client.

func entitlementClient(t *testing.T, srv *mpmetertest.Server, key, secret, region string) *mes.MarketplaceEntitlementService {
	t.Helper()
	sess, err := session.NewSession(&aws.Config{
		Endpoint:    aws.String(srv.URL),
		Region:      aws.String(region),
		Credentials: credentials.NewStaticCredentials(key, secret, ""),
		MaxRetries:  aws.Int(0),
	})
	if err != nil {
		t.Fatal(err)
	}
	return mes.New(sess)
}

func TestGetEntitlementsAWSSDKGoV1(t *testing.T) {
	srv := mpmetertest.New(t)
	c := entitlementClient(t, srv, mpmetertest.SellerKey, mpmetertest.SellerSecret, mpmetertest.Region)
	out, err := c.GetEntitlements(&mes.GetEntitlementsInput{ProductCode: aws.String(mpmetertest.ContractProduct)})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Entitlements) != 4 || out.NextToken != nil {
		t.Fatalf("%v", out)
	}
	expires, _ := time.Parse(time.RFC3339, mpmetertest.ContractExpires)
	got := map[string]*mes.Entitlement{}
	for _, e := range out.Entitlements {
		got[aws.StringValue(e.Dimension)] = e
		if aws.StringValue(e.CustomerIdentifier) != mpmetertest.ContractCustomer || aws.StringValue(e.ProductCode) != mpmetertest.ContractProduct {
			t.Errorf("%v", e)
		}
	}
	if e := got["users"]; aws.Int64Value(e.Value.IntegerValue) != 10 || !aws.TimeValue(e.ExpirationDate).Equal(expires) {
		t.Errorf("users: %v", e)
	}
	if e := got["storage_tb"]; aws.Float64Value(e.Value.DoubleValue) != 2.5 {
		t.Errorf("storage_tb: %v", e)
	}
	if e := got["premium_support"]; !aws.BoolValue(e.Value.BooleanValue) {
		t.Errorf("premium_support: %v", e)
	}
	if e := got["tier"]; aws.StringValue(e.Value.StringValue) != "gold" || e.ExpirationDate != nil {
		t.Errorf("tier: %v", e)
	}

	// The SDK's paginator walks NextToken.
	var dims []string
	err = c.GetEntitlementsPages(&mes.GetEntitlementsInput{ProductCode: aws.String(mpmetertest.ContractProduct), MaxResults: aws.Int64(1),
		Filter: map[string][]*string{"CUSTOMER_IDENTIFIER": {aws.String(mpmetertest.ContractCustomer)}, "DIMENSION": {aws.String("users"), aws.String("tier")}}},
		func(p *mes.GetEntitlementsOutput, last bool) bool {
			for _, e := range p.Entitlements {
				dims = append(dims, aws.StringValue(e.Dimension))
			}
			return true
		})
	if err != nil || strings.Join(dims, ",") != "tier,users" {
		t.Errorf("pages: %v, %v", dims, err)
	}

	// Errors: another seller, the filter combinations, a foreign NextToken,
	// another region.
	other := entitlementClient(t, srv, mpmetertest.OtherSellerKey, mpmetertest.OtherSellerSecret, mpmetertest.Region)
	_, err = other.GetEntitlements(&mes.GetEntitlementsInput{ProductCode: aws.String(mpmetertest.ContractProduct)})
	wantCode(t, err, "InvalidParameterException", 400)
	_, err = c.GetEntitlements(&mes.GetEntitlementsInput{ProductCode: aws.String(mpmetertest.ContractProduct),
		Filter: map[string][]*string{"DIMENSION": {aws.String("users")}}})
	if msg := wantCode(t, err, "InvalidParameterException", 400); !strings.Contains(msg, "Invalid filter combination") {
		t.Errorf("DIMENSION alone: %s", msg)
	}
	_, err = c.GetEntitlements(&mes.GetEntitlementsInput{ProductCode: aws.String(mpmetertest.ContractProduct), NextToken: aws.String("bm9wZQ")})
	wantCode(t, err, "InvalidParameterException", 400)
	west := entitlementClient(t, srv, mpmetertest.SellerKey, mpmetertest.SellerSecret, "eu-west-1")
	_, err = west.GetEntitlements(&mes.GetEntitlementsInput{ProductCode: aws.String(mpmetertest.ContractProduct)})
	wantCode(t, err, "DisabledApiException", 400)
}

// The server's own validation, which SDKs pre-empt, in awsJson.
func TestGetEntitlementsRawJSON(t *testing.T) {
	srv := mpmetertest.New(t)
	for _, c := range []struct{ body, code, msg string }{
		{`{}`, "InvalidParameterException", "Value null at 'productCode' failed to satisfy constraint: Member must not be null"},
		{`{"ProductCode":"examplecontract1","MaxResults":26}`, "InvalidParameterException", "Value '26' at 'maxResults'"},
		{`{"ProductCode":"examplecontract1","MaxResults":0}`, "InvalidParameterException", "Value '0' at 'maxResults'"},
		{`{"ProductCode":"examplecontract1","Filter":{"PRODUCT":["x"]}}`, "InvalidParameterException", "Map keys must satisfy constraint"},
		{`{"ProductCode":"examplecontract1","Filter":{"DIMENSION":[]}}`, "InvalidParameterException", "at 'filter.DIMENSION'"},
		{`{"ProductCode":"examplecontract1","Filter":{"CUSTOMER_IDENTIFIER":["a"],"CUSTOMER_AWS_ACCOUNT_ID":["1"]}}`, "InvalidParameterException", "mutually exclusive"},
		{`{"ProductCode":"examplecontract1","MaxResults":"5"}`, "SerializationException", ""},
		{`{"ProductCode":"examplecontract1","Filter":["DIMENSION"]}`, "SerializationException", ""},
	} {
		status, body := srv.Do(t, mpmetertest.Raw{TargetPrefix: mpmeter.EntitlementTargetPrefix, Target: "GetEntitlements", Body: c.body,
			Key: mpmetertest.SellerKey, Secret: mpmetertest.SellerSecret})
		typ, msg := rawError(t, body)
		if status != 400 || typ != c.code || !strings.Contains(msg, c.msg) {
			t.Errorf("%s: %d %s %q, want 400 %s with %q", c.body, status, typ, msg, c.code, c.msg)
		}
	}
	// The Metering target prefix does not reach the Entitlement operation.
	status, body := srv.Do(t, mpmetertest.Raw{Target: "GetEntitlements", Body: `{"ProductCode":"examplecontract1"}`,
		Key: mpmetertest.SellerKey, Secret: mpmetertest.SellerSecret})
	if typ, _ := rawError(t, body); status != 400 || typ != "UnknownOperationException" {
		t.Errorf("AWSMPMeteringService.GetEntitlements: %d %s", status, typ)
	}
}

const cborPath = "/service/AWSMPEntitlementService/operation/GetEntitlements"

// cborCall sends one signed RPC v2 CBOR request the way aws-sdk-go-v2 does.
func cborCall(t *testing.T, srv *mpmetertest.Server, path string, in smithycbor.Value, edit func(*mpmetertest.Raw)) (*http.Response, smithycbor.Map) {
	t.Helper()
	r := mpmetertest.Raw{Path: path, Key: mpmetertest.SellerKey, Secret: mpmetertest.SellerSecret,
		Header: http.Header{"Smithy-Protocol": {"rpc-v2-cbor"}, "Content-Type": {"application/cbor"}, "Accept": {"application/cbor"}}}
	if in != nil {
		r.Body = string(smithycbor.Encode(in))
	}
	if edit != nil {
		edit(&r)
	}
	resp, body := mpmetertest.DoHTTP(t, srv.URL, r)
	if resp.Header.Get("Smithy-Protocol") != "rpc-v2-cbor" || resp.Header.Get("Content-Type") != "application/cbor" {
		t.Fatalf("%d response headers %v (body % x): want Smithy-Protocol rpc-v2-cbor, Content-Type application/cbor", resp.StatusCode, resp.Header, body)
	}
	if resp.Header.Get("X-Amzn-ErrorType") != "" {
		t.Errorf("an RPC v2 CBOR response with X-Amzn-ErrorType %q", resp.Header.Get("X-Amzn-ErrorType"))
	}
	v, err := smithycbor.Decode(body)
	if err != nil {
		t.Fatalf("response % x is not CBOR: %v", body, err)
	}
	m, ok := v.(smithycbor.Map)
	if !ok {
		t.Fatalf("response %T is not a map", v)
	}
	return resp, m
}

func str(v smithycbor.Value) string {
	s, _ := v.(smithycbor.String)
	return string(s)
}

func TestGetEntitlementsRPCv2CBOR(t *testing.T) {
	srv := mpmetertest.New(t)
	resp, out := cborCall(t, srv, cborPath, smithycbor.Map{"ProductCode": smithycbor.String(mpmetertest.ContractProduct)}, nil)
	if resp.StatusCode != 200 {
		t.Fatalf("%d %v", resp.StatusCode, out)
	}
	if _, ok := out["NextToken"]; ok {
		t.Errorf("a NextToken on the only page")
	}
	list, ok := out["Entitlements"].(smithycbor.List)
	if !ok || len(list) != 4 {
		t.Fatalf("Entitlements %#v", out["Entitlements"])
	}
	expires, _ := time.Parse(time.RFC3339, mpmetertest.ContractExpires)
	for _, item := range list {
		e := item.(smithycbor.Map)
		value := e["Value"].(smithycbor.Map)
		if len(value) != 1 {
			t.Errorf("%s: Value %v has %d members, want exactly one", str(e["Dimension"]), value, len(value))
		}
		if str(e["CustomerIdentifier"]) != mpmetertest.ContractCustomer || str(e["CustomerAWSAccountId"]) != mpmetertest.BuyerAccount ||
			str(e["LicenseArn"]) != mpmetertest.ContractLicense || str(e["ProductCode"]) != mpmetertest.ContractProduct {
			t.Errorf("%v", e)
		}
		switch str(e["Dimension"]) {
		case "users":
			if n, err := smithycbor.AsInt32(value["IntegerValue"]); err != nil || n != 10 {
				t.Errorf("users: %v %v", value, err)
			}
			// ExpirationDate is tag 1 around epoch seconds.
			tag, ok := e["ExpirationDate"].(*smithycbor.Tag)
			if !ok || tag.ID != 1 {
				t.Fatalf("ExpirationDate %#v is not tag 1", e["ExpirationDate"])
			}
			if ts, err := smithycbor.AsTime(e["ExpirationDate"]); err != nil || !ts.Equal(expires) {
				t.Errorf("ExpirationDate %v %v, want %v", ts, err, expires)
			}
		case "storage_tb":
			if f, err := smithycbor.AsFloat64(value["DoubleValue"]); err != nil || f != 2.5 {
				t.Errorf("storage_tb: %v %v", value, err)
			}
		case "premium_support":
			if b, ok := value["BooleanValue"].(smithycbor.Bool); !ok || !bool(b) {
				t.Errorf("premium_support: %v", value)
			}
		case "tier":
			if str(value["StringValue"]) != "gold" {
				t.Errorf("tier: %v", value)
			}
			if _, ok := e["ExpirationDate"]; ok {
				t.Errorf("tier has an ExpirationDate")
			}
		default:
			t.Errorf("dimension %v", e["Dimension"])
		}
	}

	// Pages in CBOR: tokens round-trip, and the same token works in
	// awsJson too (one service, two encodings).
	in := smithycbor.Map{"ProductCode": smithycbor.String(mpmetertest.ContractProduct), "MaxResults": smithycbor.Uint(3)}
	_, page1 := cborCall(t, srv, cborPath, in, nil)
	token := str(page1["NextToken"])
	if len(page1["Entitlements"].(smithycbor.List)) != 3 || token == "" {
		t.Fatalf("page 1: %v", page1)
	}
	in["NextToken"] = smithycbor.String(token)
	_, page2 := cborCall(t, srv, cborPath, in, nil)
	if len(page2["Entitlements"].(smithycbor.List)) != 1 || page2["NextToken"] != nil {
		t.Fatalf("page 2: %v", page2)
	}
	status, body := srv.Do(t, mpmetertest.Raw{TargetPrefix: mpmeter.EntitlementTargetPrefix, Target: "GetEntitlements",
		Body: fmt.Sprintf(`{"ProductCode":%q,"MaxResults":3,"NextToken":%q}`, mpmetertest.ContractProduct, token), Key: mpmetertest.SellerKey, Secret: mpmetertest.SellerSecret})
	if status != 200 || !strings.Contains(string(body), `"Entitlements":[{`) {
		t.Errorf("the CBOR token in awsJson: %d %s", status, body)
	}

	// The absolute shape id routes too; a prefix before the last four
	// segments is ignored.
	for _, path := range []string{
		"/service/com.amazonaws.marketplaceentitlementservice.AWSMPEntitlementService/operation/GetEntitlements",
		"/v1" + cborPath,
	} {
		if resp, out := cborCall(t, srv, path, smithycbor.Map{"ProductCode": smithycbor.String(mpmetertest.ContractProduct)}, nil); resp.StatusCode != 200 {
			t.Errorf("%s: %d %v", path, resp.StatusCode, out)
		}
	}
}

// Errors in CBOR: __type is the absolute shape id, message the text, the
// status the error's; and the protocol's request rules.
func TestGetEntitlementsRPCv2CBORErrors(t *testing.T) {
	srv := mpmetertest.New(t)
	product := smithycbor.String(mpmetertest.ContractProduct)
	ns := mpmeter.EntitlementNamespace + "#"
	for _, c := range []struct {
		name   string
		path   string
		in     smithycbor.Value
		edit   func(*mpmetertest.Raw)
		status int
		typ    string
		msg    string
	}{
		{"another seller", cborPath, smithycbor.Map{"ProductCode": product}, func(r *mpmetertest.Raw) {
			r.Key, r.Secret = mpmetertest.OtherSellerKey, mpmetertest.OtherSellerSecret
		}, 400, "InvalidParameterException", "not a product of the calling seller"},
		{"no product code", cborPath, smithycbor.Map{}, nil, 400, "InvalidParameterException", "Value null at 'productCode'"},
		{"MaxResults 26", cborPath, smithycbor.Map{"ProductCode": product, "MaxResults": smithycbor.Uint(26)}, nil, 400, "InvalidParameterException", "Value '26' at 'maxResults'"},
		{"empty filter list", cborPath, smithycbor.Map{"ProductCode": product, "Filter": smithycbor.Map{"DIMENSION": smithycbor.List{}}}, nil, 400, "InvalidParameterException", "filter.DIMENSION"},
		{"a string for MaxResults", cborPath, smithycbor.Map{"ProductCode": product, "MaxResults": smithycbor.String("5")}, nil, 400, "SerializationException", "MaxResults"},
		{"not a map", cborPath, smithycbor.List{product}, nil, 400, "SerializationException", "CBOR map"},
		{"malformed", cborPath, nil, func(r *mpmetertest.Raw) { r.Body = "\xbf\x61" }, 400, "SerializationException", "CBOR"},
		{"a key twice", cborPath, nil, func(r *mpmetertest.Raw) {
			r.Body = "\xa2\x6bProductCode\x61a\x6bProductCode\x61b"
		}, 400, "SerializationException", "repeats"},
		{"no Smithy-Protocol", cborPath, smithycbor.Map{"ProductCode": product}, func(r *mpmetertest.Raw) { r.Header.Del("Smithy-Protocol") }, 400, "SerializationException", "Smithy-Protocol"},
		{"an X-Amz-Target", cborPath, smithycbor.Map{"ProductCode": product}, func(r *mpmetertest.Raw) {
			r.Header.Set("X-Amz-Target", "AWSMPEntitlementService.GetEntitlements")
		}, 400, "SerializationException", "X-Amz-Target"},
		{"JSON content type", cborPath, smithycbor.Map{"ProductCode": product}, func(r *mpmetertest.Raw) {
			r.Header.Set("Content-Type", "application/x-amz-json-1.1")
		}, 400, "SerializationException", "Content-Type"},
		{"another region", cborPath, smithycbor.Map{"ProductCode": product}, func(r *mpmetertest.Raw) { r.Region = "eu-west-1" }, 400, "DisabledApiException", "us-east-1"},
		{"unknown operation", "/service/AWSMPEntitlementService/operation/ListEntitlements", smithycbor.Map{}, nil, 400, "UnknownOperationException", "ListEntitlements"},
		{"the Metering Service (awsJson only)", "/service/AWSMPMeteringService/operation/ResolveCustomer", smithycbor.Map{}, nil, 400, "UnknownOperationException", ""},
		{"another namespace", "/service/com.example.AWSMPEntitlementService/operation/GetEntitlements", smithycbor.Map{}, nil, 400, "UnknownOperationException", ""},
		{"unsigned", cborPath, smithycbor.Map{"ProductCode": product}, func(r *mpmetertest.Raw) { r.Key = "" }, 403, "MissingAuthenticationTokenException", ""},
		{"unknown key", cborPath, smithycbor.Map{"ProductCode": product}, func(r *mpmetertest.Raw) { r.Key = "AKIANOSUCHKEY0000000" }, 403, "UnrecognizedClientException", ""},
	} {
		resp, out := cborCall(t, srv, c.path, c.in, c.edit)
		if resp.StatusCode != c.status || str(out["__type"]) != ns+c.typ || !strings.Contains(str(out["message"]), c.msg) {
			t.Errorf("%s: %d %v, want %d %s%s with %q", c.name, resp.StatusCode, out, c.status, ns, c.typ, c.msg)
		}
	}
}

// GetEntitlements is its own operation label in either protocol, and junk
// RPC v2 CBOR paths are "unknown", like junk targets.
func TestGetEntitlementsMetrics(t *testing.T) {
	srv := mpmetertest.New(t, mpmetertest.WithConfig(metricsOnAPI))
	c := entitlementClient(t, srv, mpmetertest.SellerKey, mpmetertest.SellerSecret, mpmetertest.Region)
	if _, err := c.GetEntitlements(&mes.GetEntitlementsInput{ProductCode: aws.String(mpmetertest.ContractProduct)}); err != nil {
		t.Fatal(err)
	}
	cborCall(t, srv, cborPath, smithycbor.Map{"ProductCode": smithycbor.String("nope")}, nil)
	for i := range 3 {
		cborCall(t, srv, fmt.Sprintf("/service/X%d/operation/Y", i), smithycbor.Map{}, nil)
	}
	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	got := grepLines(string(body), "mpmeter_requests_total{")
	for _, want := range []string{
		`mpmeter_requests_total{error="",operation="GetEntitlements"} 1`,
		`mpmeter_requests_total{error="InvalidParameterException",operation="GetEntitlements"} 1`,
		`mpmeter_requests_total{error="UnknownOperationException",operation="unknown"} 3`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("metrics lack %q in\n%s", want, got)
		}
	}
}
