package awsjson

import (
	"errors"
	"testing"

	"github.com/mpmeter/mpmeter"
)

// FuzzDecodeValidate feeds any body to every operation's decoder and
// validator: nothing panics, every refusal is a SerializationException or
// ValidationException, and no answer grows with the request.
func FuzzDecodeValidate(f *testing.F) {
	for _, seed := range []string{
		`{"ProductCode":"exampleprod1","UsageRecords":[{"CustomerIdentifier":"c","Dimension":"users","Quantity":1,"Timestamp":1795514700}]}`,
		`{"ProductCode":"p","UsageRecords":[{},{},{}]}`,
		`{"productcode":"p","ProductCode":"q","PRODUCTCODE":"r"}`,
		`{"RegistrationToken":"a","RegistrationToken":"b"}`,
		`{"ProductCode":"p","Timestamp":"x","UsageDimension":"d","UsageQuantity":1.5,"UsageAllocations":[{"Tags":[{"Key":"","Value":""}]}]}`,
		`{"ProductCode":"p","PublicKeyVersion":1,"Nonce":"n"}`,
		`{"UsageRecords":[{"UsageAllocations":[{"AllocatedUsageQuantity":1,"Tags":[{},{},{},{},{},{}]}]}]}`,
		`null`, ``, `[`, `{"a":`, "{\"ProductCode\":\"\xff\"}",
	} {
		f.Add(seed)
	}
	h := NewHandler(nil, nil, Options{})
	f.Fuzz(func(t *testing.T, body string) {
		for name, op := range h.services[mpmeter.TargetPrefix].ops {
			in := op.newInput()
			err := decode([]byte(body), in)
			if err == nil {
				err = in.Validate()
				if err == nil {
					continue
				}
			}
			var e *mpmeter.Error
			if !errors.As(err, &e) || (e.Code != mpmeter.CodeSerialization && e.Code != mpmeter.CodeValidation) {
				t.Fatalf("%s: %v", name, err)
			}
			if len(e.Message) > 8192 {
				t.Fatalf("%s: a %d-byte message for a %d-byte body", name, len(e.Message), len(body))
			}
		}
	})
}
