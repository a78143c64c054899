package rpcv2cbor_test

import (
	"testing"

	"github.com/mpmeter/mpmeter"
	"github.com/mpmeter/mpmeter/rpcv2cbor"
)

func TestParsePath(t *testing.T) {
	for path, want := range map[string]rpcv2cbor.Route{
		"/service/AWSMPEntitlementService/operation/GetEntitlements":                                             {Service: "AWSMPEntitlementService", Operation: "GetEntitlements"},
		"/v1/service/AWSMPEntitlementService/operation/GetEntitlements/":                                         {Service: "AWSMPEntitlementService", Operation: "GetEntitlements"},
		"/service/com.amazonaws.marketplaceentitlementservice.AWSMPEntitlementService/operation/GetEntitlements": {Service: "AWSMPEntitlementService", Namespace: "com.amazonaws.marketplaceentitlementservice", Operation: "GetEntitlements"},
	} {
		if got, ok := rpcv2cbor.ParsePath(path); !ok || got != want {
			t.Errorf("%s: %+v %v, want %+v", path, got, ok, want)
		}
	}
	for _, path := range []string{"/", "/service/X/operation", "/service//operation/Y", "/services/X/operation/Y", "/service/X/operations/Y"} {
		if got, ok := rpcv2cbor.ParsePath(path); ok {
			t.Errorf("%s routed to %+v", path, got)
		}
	}
}

// Decode takes definite and indefinite lengths, null/undefined members and
// an empty body; it refuses what is not one map of the right types.
func TestDecode(t *testing.T) {
	c := rpcv2cbor.New()
	decode := func(body string) (*mpmeter.GetEntitlementsInput, error) {
		var in mpmeter.GetEntitlementsInput
		err := c.Decode([]byte(body), &in)
		return &in, err
	}
	for name, body := range map[string]string{
		"definite":   "\xa2\x6bProductCode\x61p\x6aMaxResults\x05",
		"indefinite": "\xbf\x6bProductCode\x7f\x61p\xff\x6aMaxResults\x05\xff",
	} {
		in, err := decode(body)
		if err != nil || *in.ProductCode != "p" || *in.MaxResults != 5 {
			t.Errorf("%s: %+v %v", name, in, err)
		}
	}
	in, err := decode("\xa2\x6bProductCode\x61p\x69NextToken\xf7") // undefined is null
	if err != nil || in.NextToken != nil {
		t.Errorf("undefined member: %+v %v", in, err)
	}
	in, err = decode("\xa1\x66Filter\xa1\x69DIMENSION\x82\x61a\x61b")
	if err != nil || len(in.Filter["DIMENSION"]) != 2 {
		t.Errorf("filter: %+v %v", in, err)
	}
	// A non-text key names no member: ignored like an unknown member.
	if in, err := decode("\xa1\x01\x61a"); err != nil || in.ProductCode != nil {
		t.Errorf("a non-text key: %+v %v", in, err)
	}
	if in, err := decode(""); err != nil || in.ProductCode != nil {
		t.Errorf("empty body: %+v %v", in, err)
	}
	for name, body := range map[string]string{
		"a list":          "\x81\x61p",
		"trailing bytes":  "\xa0\xa0",
		"a float count":   "\xa1\x6aMaxResults\xfb\x40\x14\x00\x00\x00\x00\x00\x00",
		"wrong case":      "\xa1\x6bproductcode\x61p",
		"truncated":       "\xa1\x6bProductCode",
		"invalid utf-8":   "\xa1\x6bProductCode\x61\xff",
		"a key twice":     "\xa2\x6bProductCode\x61a\x6bProductCode\x61b",
		"filter not list": "\xa1\x66Filter\xa1\x69DIMENSION\x61a",
	} {
		in, err := decode(body)
		if name == "wrong case" {
			// Not an error (unknown members are ignored), but not ProductCode.
			if err != nil || in.ProductCode != nil {
				t.Errorf("%s: %+v %v", name, in, err)
			}
			continue
		}
		if mpmeter.CodeOf(err) != mpmeter.CodeSerialization {
			t.Errorf("%s: %+v %v, want SerializationException", name, in, err)
		}
	}
}
