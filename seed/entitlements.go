package seed

import (
	"fmt"
	"math"
	"strconv"
	"time"
	"unicode/utf8"

	"gopkg.in/yaml.v3"

	"github.com/mpmeter/mpmeter"
)

// Entitlement is what a subscription's contract grants for one of the
// product's dimensions (GetEntitlements answers it to the seller).
type Entitlement struct {
	Dimension string `yaml:"dimension"`
	// Value is a YAML integer, number, boolean or string: the
	// EntitlementValue member GetEntitlements answers (IntegerValue,
	// DoubleValue, BooleanValue, StringValue). A quoted "10" is a string.
	Value EntitlementValue `yaml:"value"`
	// ExpiresAt is the contract's end (ExpirationDate); nil means none.
	ExpiresAt *time.Time `yaml:"expires_at,omitempty"`
}

// EntitlementValue is an entitlement's typed value, read from the YAML
// scalar's type.
type EntitlementValue struct {
	mpmeter.EntitlementValue
}

// UnmarshalYAML reads an integer, float, boolean or string scalar.
func (v *EntitlementValue) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: an entitlement value is an integer, a number, a boolean or a string", n.Line)
	}
	switch n.ShortTag() {
	case "!!int":
		var i int64
		if err := n.Decode(&i); err != nil {
			return fmt.Errorf("line %d: entitlement value %s: %w", n.Line, n.Value, err)
		}
		v.EntitlementValue = mpmeter.EntitlementInteger(i)
	case "!!float":
		var f float64
		if err := n.Decode(&f); err != nil {
			return fmt.Errorf("line %d: entitlement value %s: %w", n.Line, n.Value, err)
		}
		v.EntitlementValue = mpmeter.EntitlementDouble(f)
	case "!!bool":
		var b bool
		if err := n.Decode(&b); err != nil {
			return fmt.Errorf("line %d: entitlement value %s: %w", n.Line, n.Value, err)
		}
		v.EntitlementValue = mpmeter.EntitlementBoolean(b)
	case "!!str":
		v.EntitlementValue = mpmeter.EntitlementString(n.Value)
	default:
		return fmt.Errorf("line %d: entitlement value %q (%s) is not an integer, a number, a boolean or a string", n.Line, n.Value, n.ShortTag())
	}
	return nil
}

// MarshalYAML writes the value as the scalar Parse reads back to the same
// type (a string that looks like a number is quoted).
func (v EntitlementValue) MarshalYAML() (any, error) {
	switch ev := v.EntitlementValue; {
	case ev.IntegerValue != nil:
		return *ev.IntegerValue, nil
	case ev.DoubleValue != nil:
		f := *ev.DoubleValue
		text := strconv.FormatFloat(f, 'g', -1, 64)
		if f == math.Trunc(f) && !math.IsInf(f, 0) && math.Abs(f) < 1e15 {
			text = strconv.FormatFloat(f, 'f', 1, 64) // 3.0, not 3 (an integer)
		}
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!float", Value: text}, nil
	case ev.BooleanValue != nil:
		return *ev.BooleanValue, nil
	case ev.StringValue != nil:
		return *ev.StringValue, nil
	}
	return nil, nil
}

// CheckEntitlements checks a subscription's entitlements: each names a
// dimension (at most 255 characters), one of dimensions when dimensions is
// non-nil (the product's; nil when the product is unknown, a problem its
// caller reports), at most once, with a valid value
// (mpmeter.CheckEntitlementValue). Messages name the entry
// ("entitlements[1]: ..."). The seed and the admin API both check with it.
func CheckEntitlements(product string, dimensions []string, ents []Entitlement) []string {
	var dims map[string]bool
	if dimensions != nil {
		dims = make(map[string]bool, len(dimensions))
		for _, d := range dimensions {
			dims[d] = true
		}
	}
	var p []string
	seen := map[string]bool{}
	for j, e := range ents {
		where := fmt.Sprintf("entitlements[%d]: ", j)
		switch {
		case e.Dimension == "":
			p = append(p, where+"dimension is missing")
		case utf8.RuneCountInString(e.Dimension) > 255:
			p = append(p, fmt.Sprintf("%sdimension %q is longer than 255 characters", where, e.Dimension))
		case dims != nil && !dims[e.Dimension]:
			p = append(p, fmt.Sprintf("%sdimension %q is not one of product %q's dimensions", where, e.Dimension, product))
		case seen[e.Dimension]:
			p = append(p, fmt.Sprintf("%sdimension %q has an entitlement already", where, e.Dimension))
		}
		seen[e.Dimension] = true
		if err := mpmeter.CheckEntitlementValue(e.Value.EntitlementValue); err != nil {
			p = append(p, fmt.Sprintf("%svalue: %v", where, err))
		}
	}
	return p
}

// entitlements checks a subscription's entitlements against its product's
// dimensions (CheckEntitlements) and returns them normalised (times in
// UTC).
func (rv *resolver) entitlements(item, product string, ents []Entitlement) []Entitlement {
	if ents == nil {
		return nil
	}
	var dims []string
	if d := rv.dimensions[product]; d != nil {
		dims = make([]string, 0, len(d))
		for name := range d {
			dims = append(dims, name)
		}
	}
	for _, msg := range CheckEntitlements(product, dims, ents) {
		rv.errs.add(item, "%s", msg)
	}
	out := make([]Entitlement, 0, len(ents))
	for _, e := range ents {
		re := Entitlement{Dimension: e.Dimension, Value: e.Value}
		if e.ExpiresAt != nil {
			t := e.ExpiresAt.UTC()
			re.ExpiresAt = &t
		}
		out = append(out, re)
	}
	return out
}

// DomainEntitlements is ents as the store takes them.
func DomainEntitlements(ents []Entitlement) []mpmeter.Entitlement {
	out := make([]mpmeter.Entitlement, len(ents))
	for i, e := range ents {
		out[i] = mpmeter.Entitlement{Dimension: e.Dimension, Value: e.Value.EntitlementValue}
		if e.ExpiresAt != nil {
			out[i].ExpiresAt = *e.ExpiresAt
		}
	}
	return out
}
