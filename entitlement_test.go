package mpmeter_test

import (
	"strings"
	"testing"
	"time"

	"github.com/fxamacker/cbor/v2"

	"github.com/mpmeter/mpmeter"
)

// The Entitlement model's constraints answer InvalidParameterException (its
// model has no ValidationException) in AWS's validation message format,
// filter keys and lists included.
func TestGetEntitlementsValidation(t *testing.T) {
	s := func(v string) *string { return &v }
	n := func(v int64) *int64 { return &v }
	for _, c := range []struct {
		in   mpmeter.GetEntitlementsInput
		want string // "" when valid
	}{
		{mpmeter.GetEntitlementsInput{ProductCode: s("p")}, ""},
		{mpmeter.GetEntitlementsInput{ProductCode: s("p"), MaxResults: n(25), NextToken: s("a b")}, ""},
		{mpmeter.GetEntitlementsInput{}, "1 validation error detected: Value null at 'productCode' failed to satisfy constraint: Member must not be null"},
		{mpmeter.GetEntitlementsInput{ProductCode: s("")}, "Value '' at 'productCode' failed to satisfy constraint: Member must have length greater than or equal to 1"},
		{mpmeter.GetEntitlementsInput{ProductCode: s("p"), MaxResults: n(0)}, "Value '0' at 'maxResults' failed to satisfy constraint: Member must have value greater than or equal to 1"},
		{mpmeter.GetEntitlementsInput{ProductCode: s("p"), MaxResults: n(26)}, "Value '26' at 'maxResults' failed to satisfy constraint: Member must have value less than or equal to 25"},
		{mpmeter.GetEntitlementsInput{ProductCode: s("p"), NextToken: s(" ")}, "Value ' ' at 'nextToken' failed to satisfy constraint: Member must satisfy regular expression pattern: \\S+"},
		{mpmeter.GetEntitlementsInput{ProductCode: s("p"), Filter: map[string][]string{"DIMENSION": {}}}, "Value '[]' at 'filter.DIMENSION' failed to satisfy constraint: Member must have length greater than or equal to 1"},
		{mpmeter.GetEntitlementsInput{ProductCode: s("p"), Filter: map[string][]string{"REGION": {"x"}}}, "Value 'REGION' at 'filter' failed to satisfy constraint: Map keys must satisfy constraint: [Member must satisfy enum value set: [CUSTOMER_IDENTIFIER, DIMENSION, CUSTOMER_AWS_ACCOUNT_ID, LICENSE_ARN]]"},
		{mpmeter.GetEntitlementsInput{MaxResults: n(99), Filter: map[string][]string{"LICENSE_ARN": nil}}, "3 validation errors detected"},
	} {
		err := c.in.Validate()
		if c.want == "" {
			if err != nil {
				t.Errorf("%+v: %v", c.in, err)
			}
			continue
		}
		e, ok := err.(*mpmeter.Error)
		if !ok || e.Code != mpmeter.CodeInvalidParameter || !strings.Contains(e.Message, c.want) {
			t.Errorf("%+v: %v, want InvalidParameterException with %q", c.in, err, c.want)
		}
	}
}

// CBOR timestamps are tag 1 around epoch seconds: an integer when whole,
// else a double; both read back, and nothing else is a timestamp.
func TestTimestampCBOR(t *testing.T) {
	for ts, want := range map[time.Time][]byte{
		time.Unix(1893456000, 0):     {0xc1, 0x1a, 0x70, 0xdb, 0xd8, 0x80},                         // 1(1893456000)
		time.Unix(1893456000, 250e6): {0xc1, 0xfb, 0x41, 0xdc, 0x36, 0xf6, 0x20, 0x10, 0x00, 0x00}, // 1(1893456000.25)
	} {
		b, err := cbor.Marshal(mpmeter.Timestamp{Time: ts})
		if err != nil || string(b) != string(want) {
			t.Errorf("%v: % x, %v; want % x", ts, b, err, want)
		}
		var back mpmeter.Timestamp
		if err := cbor.Unmarshal(b, &back); err != nil || !back.Equal(ts) {
			t.Errorf("%v read back as %v, %v", ts, back, err)
		}
	}
	for _, bad := range [][]byte{
		{0x1a, 0x70, 0xdc, 0x1f, 0x80}, // untagged
		{0xc0, 0x61, 0x78},             // tag 0 (a date string)
		{0xc1, 0x61, 0x78},             // tag 1 around a string
		{0xc1, 0xf9, 0x7c, 0x00},       // 1(Infinity)
	} {
		var ts mpmeter.Timestamp
		if err := cbor.Unmarshal(bad, &ts); err == nil {
			t.Errorf("% x accepted as %v", bad, ts)
		}
	}
}

func TestCheckEntitlementValue(t *testing.T) {
	i := int64(1)
	for name, v := range map[string]mpmeter.EntitlementValue{
		"none":        {},
		"two":         {IntegerValue: &i, StringValue: new(string)},
		"over int32":  mpmeter.EntitlementInteger(1 << 31),
		"under int32": mpmeter.EntitlementInteger(-1<<31 - 1),
	} {
		if mpmeter.CheckEntitlementValue(v) == nil {
			t.Errorf("%s accepted", name)
		}
	}
	for _, v := range []mpmeter.EntitlementValue{mpmeter.EntitlementInteger(-1 << 31), mpmeter.EntitlementDouble(0), mpmeter.EntitlementBoolean(false), mpmeter.EntitlementString("")} {
		if err := mpmeter.CheckEntitlementValue(v); err != nil {
			t.Errorf("%+v: %v", v, err)
		}
	}
}
