package seed_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mpmeter/mpmeter"
	"github.com/mpmeter/mpmeter/seed"
)

const entitlementSeed = `
accounts:
  - id: "111122223333"
  - id: "444455556666"
products:
  - {code: contract1, seller: "111122223333", type: ami, dimensions: [a, b, c, d, e]}
subscriptions:
  - account: "444455556666"
    product: contract1
    entitlements:
      - {dimension: a, value: 10, expires_at: 2030-01-01T00:00:00Z}
      - {dimension: b, value: 2.5}
      - {dimension: c, value: true}
      - {dimension: d, value: gold}
      - {dimension: e, value: "10"}
`

// Each YAML scalar type is its own EntitlementValue member; the file
// marshals back to the same types; Apply stores them and replaces them
// only when the subscription lists entitlements.
func TestEntitlementsParseMarshalApply(t *testing.T) {
	f := mustParse(t, entitlementSeed)
	if err := f.Validate(); err != nil {
		t.Fatal(err)
	}
	check := func(name string, f *seed.File) {
		t.Helper()
		ents := f.Subscriptions[0].Entitlements
		if len(ents) != 5 {
			t.Fatalf("%s: %d entitlements", name, len(ents))
		}
		v := func(i int) mpmeter.EntitlementValue { return ents[i].Value.EntitlementValue }
		if v(0).IntegerValue == nil || *v(0).IntegerValue != 10 || ents[0].ExpiresAt == nil || !ents[0].ExpiresAt.Equal(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)) {
			t.Errorf("%s: a = %+v", name, ents[0])
		}
		if v(1).DoubleValue == nil || *v(1).DoubleValue != 2.5 {
			t.Errorf("%s: b = %+v", name, v(1))
		}
		if v(2).BooleanValue == nil || !*v(2).BooleanValue {
			t.Errorf("%s: c = %+v", name, v(2))
		}
		if v(3).StringValue == nil || *v(3).StringValue != "gold" {
			t.Errorf("%s: d = %+v", name, v(3))
		}
		if v(4).StringValue == nil || *v(4).StringValue != "10" {
			t.Errorf("%s: e (quoted) = %+v, want the string 10", name, v(4))
		}
	}
	check("parsed", f)
	out, err := f.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	check("marshalled and parsed again", mustParse(t, string(out)))

	ctx := context.Background()
	st := openStore(t, filepath.Join(t.TempDir(), "mpmeter.db"))
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	sum, err := f.Apply(ctx, st, now, time.Hour)
	if err != nil || sum.Entitlements != 5 {
		t.Fatalf("Apply = %+v, %v", sum, err)
	}
	got, err := st.Entitlements(ctx, mpmeter.EntitlementFilter{ProductCode: "contract1"})
	if err != nil || len(got) != 5 || got[0].Dimension != "a" || got[0].CustomerAccountID != "444455556666" {
		t.Fatalf("stored = %+v, %v", got, err)
	}
	// Without entitlements: the stored ones stay; with an empty list: gone.
	f.Subscriptions[0].Entitlements = nil
	if _, err := f.Apply(ctx, st, now, time.Hour); err != nil {
		t.Fatal(err)
	}
	if got, _ := st.Entitlements(ctx, mpmeter.EntitlementFilter{ProductCode: "contract1"}); len(got) != 5 {
		t.Errorf("after a seed without entitlements: %d stored, want 5", len(got))
	}
	f.Subscriptions[0].Entitlements = []seed.Entitlement{}
	if _, err := f.Apply(ctx, st, now, time.Hour); err != nil {
		t.Fatal(err)
	}
	if got, _ := st.Entitlements(ctx, mpmeter.EntitlementFilter{ProductCode: "contract1"}); len(got) != 0 {
		t.Errorf("after a seed with entitlements: []: %d stored, want 0", len(got))
	}
}

func TestEntitlementsValidation(t *testing.T) {
	for name, tc := range map[string]struct{ entitlements, want string }{
		"not a dimension":   {`[{dimension: zz, value: 1}]`, `dimension "zz" is not one of product "contract1"'s dimensions`},
		"twice":             {`[{dimension: a, value: 1}, {dimension: a, value: 2}]`, `dimension "a" has an entitlement already`},
		"no dimension":      {`[{value: 1}]`, `dimension is missing`},
		"no value":          {`[{dimension: a}]`, `exactly one of integer, double, boolean and string`},
		"beyond 32 bits":    {`[{dimension: a, value: 2147483648}]`, `outside the 32-bit range`},
		"not finite":        {`[{dimension: a, value: .inf}]`, `must be finite`},
		"a list":            {`[{dimension: a, value: [1]}]`, `is an integer, a number, a boolean or a string`},
		"null":              {`[{dimension: a, value: null}]`, `exactly one of integer, double, boolean and string`},
		"unknown field":     {`[{dimension: a, value: 1, amount: 2}]`, `field amount not found`},
		"bad expires_at":    {`[{dimension: a, value: 1, expires_at: soon}]`, `line 10: expires_at`},
		"largest int32 ok":  {`[{dimension: a, value: 2147483647}, {dimension: b, value: -2147483648}]`, ``},
		"empty list is ok":  {`[]`, ``},
		"quoted number ok":  {`[{dimension: a, value: "1"}]`, ``},
		"float exponent ok": {`[{dimension: a, value: 1.5e3}]`, ``},
	} {
		t.Run(name, func(t *testing.T) {
			doc := strings.Replace(entitlementSeed, entitlementSeed[strings.Index(entitlementSeed, "    entitlements:"):],
				"    entitlements: "+tc.entitlements+"\n", 1)
			f, err := seed.Parse([]byte(doc))
			if err == nil {
				err = f.Validate()
			}
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}
