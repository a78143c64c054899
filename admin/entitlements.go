package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/mpmeter/mpmeter"
	"github.com/mpmeter/mpmeter/seed"
)

// EntitlementNotifier hears about a subscription's entitlements changed
// through the admin API, after the change committed: where the
// entitlement-updated notifications start. It must not block for long
// (the admin call waits for it); an error is logged, the change stands.
type EntitlementNotifier interface {
	EntitlementsUpdated(ctx context.Context, change EntitlementChange) error
}

// EntitlementChange is one replacement of a subscription's entitlements.
type EntitlementChange struct {
	Subscription  mpmeter.Subscription
	Before, After []mpmeter.Entitlement
}

// noNotifier is the EntitlementNotifier when Config names none.
type noNotifier struct{}

func (noNotifier) EntitlementsUpdated(context.Context, EntitlementChange) error { return nil }

// EntitlementValue is an entitlement's value in JSON: an integer (a number
// written without a fraction or exponent: 10), a number (2.5, 10.0, 1e3),
// a boolean or a string ("10" is a string), as GetEntitlements answers it
// in IntegerValue, DoubleValue, BooleanValue or StringValue. A number
// written back keeps its type: 10.0 stays 10.0.
type EntitlementValue struct {
	mpmeter.EntitlementValue
}

// Schema implements huma.SchemaProvider: a number, boolean or string.
func (EntitlementValue) Schema(huma.Registry) *huma.Schema {
	return &huma.Schema{
		Description: "An integer (no fraction or exponent: 10), a number (2.5, 10.0), a boolean or a string (\"10\" is a string): GetEntitlements' IntegerValue, DoubleValue, BooleanValue or StringValue.",
		AnyOf:       []*huma.Schema{{Type: huma.TypeNumber}, {Type: huma.TypeBoolean}, {Type: huma.TypeString}},
	}
}

// UnmarshalJSON reads the value's type from the JSON token.
func (v *EntitlementValue) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case len(b) == 0 || string(b) == "null":
		return errors.New("an entitlement value is an integer, a number, a boolean or a string, not null")
	case b[0] == '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		v.EntitlementValue = mpmeter.EntitlementString(s)
	case string(b) == "true" || string(b) == "false":
		v.EntitlementValue = mpmeter.EntitlementBoolean(b[0] == 't')
	case bytes.ContainsAny(b, ".eE"):
		f, err := strconv.ParseFloat(string(b), 64)
		if err != nil {
			return errors.New("entitlement value " + string(b) + " is not a finite number")
		}
		v.EntitlementValue = mpmeter.EntitlementDouble(f)
	default:
		i, err := strconv.ParseInt(string(b), 10, 64)
		if err != nil {
			return errors.New("entitlement value " + string(b) + " is outside the 32-bit range of the model's Integer")
		}
		v.EntitlementValue = mpmeter.EntitlementInteger(i)
	}
	return nil
}

// MarshalJSON writes the value so that UnmarshalJSON reads it back to the
// same type: a whole double with ".0".
func (v EntitlementValue) MarshalJSON() ([]byte, error) {
	switch ev := v.EntitlementValue; {
	case ev.IntegerValue != nil:
		return strconv.AppendInt(nil, *ev.IntegerValue, 10), nil
	case ev.DoubleValue != nil:
		f := *ev.DoubleValue
		if math.IsInf(f, 0) || math.IsNaN(f) {
			return nil, errors.New("entitlement value is not finite")
		}
		b := strconv.AppendFloat(nil, f, 'g', -1, 64)
		if !bytes.ContainsAny(b, ".eE") {
			b = append(b, ".0"...)
		}
		return b, nil
	case ev.BooleanValue != nil:
		return strconv.AppendBool(nil, *ev.BooleanValue), nil
	case ev.StringValue != nil:
		return json.Marshal(*ev.StringValue)
	}
	return []byte("null"), nil
}

// Entitlement is what a subscription's contract grants for one dimension.
type Entitlement struct {
	Dimension string           `json:"dimension" minLength:"1" maxLength:"255" doc:"One of the product's dimensions; at most one entitlement each."`
	Value     EntitlementValue `json:"value"`
	ExpiresAt *time.Time       `json:"expires_at,omitempty" doc:"The contract's end (GetEntitlements' ExpirationDate); none when absent."`
}

// Entitlements is a subscription's entitlements.
type Entitlements struct {
	AgreementID  string        `json:"agreement_id"`
	AccountID    string        `json:"account_id"`
	ProductCode  string        `json:"product_code"`
	Entitlements []Entitlement `json:"entitlements"`
}

type entitlementsPut struct {
	AgreementID string `path:"agreement_id"`
	Body        struct {
		Entitlements []Entitlement `json:"entitlements" maxItems:"1000" doc:"The whole set: it replaces the stored one ([] removes every entitlement)."`
	}
}

type entitlementsOutput struct{ Body Entitlements }

func (a *API) registerEntitlements(api huma.API) {
	huma.Register(api, op("get-entitlements", http.MethodGet, "/subscriptions/{agreement_id}/entitlements",
		"A subscription's entitlements (what GetEntitlements answers while it is active and they have not expired)", "subscriptions"),
		func(ctx context.Context, in *agreementPath) (*entitlementsOutput, error) {
			sub, err := a.cfg.Store.SubscriptionByAgreement(ctx, in.AgreementID)
			if err != nil {
				return nil, a.storeErr(ctx, "subscription "+in.AgreementID, err)
			}
			ents, err := a.entitlementsOf(ctx, sub)
			if err != nil {
				return nil, err
			}
			return &entitlementsOutput{entitlementsOut(sub, ents)}, nil
		})
	huma.Register(api, op("put-entitlements", http.MethodPut, "/subscriptions/{agreement_id}/entitlements",
		"Replace a subscription's entitlements (the seed's rules: the product's dimensions, one each, 32-bit integers, finite numbers)", "subscriptions"),
		func(ctx context.Context, in *entitlementsPut) (*entitlementsOutput, error) {
			what := "subscription " + in.AgreementID
			sub, err := a.cfg.Store.SubscriptionByAgreement(ctx, in.AgreementID)
			if err != nil {
				return nil, a.storeErr(ctx, what, err)
			}
			p, err := a.cfg.Store.Product(ctx, sub.ProductCode)
			if err != nil {
				return nil, a.storeErr(ctx, "product "+sub.ProductCode, err)
			}
			ents := make([]seed.Entitlement, len(in.Body.Entitlements))
			for i, e := range in.Body.Entitlements {
				ents[i] = seed.Entitlement{Dimension: e.Dimension, Value: seed.EntitlementValue{EntitlementValue: e.Value.EntitlementValue}, ExpiresAt: e.ExpiresAt}
				if e.ExpiresAt != nil {
					t := e.ExpiresAt.UTC()
					ents[i].ExpiresAt = &t
				}
			}
			if err := invalidAll("entitlements", seed.CheckEntitlements(p.Code, p.Dimensions, ents)); err != nil {
				return nil, err
			}
			before, err := a.entitlementsOf(ctx, sub)
			if err != nil {
				return nil, err
			}
			if err := a.storeErr(ctx, what, a.cfg.Store.PutEntitlements(ctx, sub.LicenseArn, seed.DomainEntitlements(ents))); err != nil {
				return nil, err
			}
			after, err := a.entitlementsOf(ctx, sub)
			if err != nil {
				return nil, err
			}
			if !sameEntitlements(before, after) {
				if err := a.notifier().EntitlementsUpdated(ctx, EntitlementChange{Subscription: sub, Before: before, After: after}); err != nil {
					a.cfg.Logger.Error("admin: entitlement notification failed", "agreement_id", sub.AgreementID, "err", err)
				}
			}
			return &entitlementsOutput{entitlementsOut(sub, after)}, nil
		})
}

func (a *API) notifier() EntitlementNotifier {
	if a.cfg.EntitlementNotifier == nil {
		return noNotifier{}
	}
	return a.cfg.EntitlementNotifier
}

// entitlementsOf reads every entitlement of sub (whatever its status and
// their expiry), in dimension order.
func (a *API) entitlementsOf(ctx context.Context, sub mpmeter.Subscription) ([]mpmeter.Entitlement, error) {
	ents, err := a.cfg.Store.Entitlements(ctx, mpmeter.EntitlementFilter{ProductCode: sub.ProductCode, LicenseArns: []string{sub.LicenseArn}})
	if err != nil {
		return nil, a.storeErr(ctx, "entitlements of "+sub.AgreementID, err)
	}
	return ents, nil
}

func entitlementsOut(sub mpmeter.Subscription, ents []mpmeter.Entitlement) Entitlements {
	out := Entitlements{AgreementID: sub.AgreementID, AccountID: sub.AccountID, ProductCode: sub.ProductCode, Entitlements: make([]Entitlement, 0, len(ents))}
	for _, e := range ents {
		oe := Entitlement{Dimension: e.Dimension, Value: EntitlementValue{e.Value}}
		if !e.ExpiresAt.IsZero() {
			t := e.ExpiresAt.UTC()
			oe.ExpiresAt = &t
		}
		out.Entitlements = append(out.Entitlements, oe)
	}
	return out
}

// sameEntitlements reports whether two reads of one subscription's
// entitlements hold the same values.
func sameEntitlements(x, y []mpmeter.Entitlement) bool {
	if len(x) != len(y) {
		return false
	}
	for i := range x {
		a, b := x[i], y[i]
		if a.Dimension != b.Dimension || !a.ExpiresAt.Equal(b.ExpiresAt) {
			return false
		}
		ja, _ := json.Marshal(EntitlementValue{a.Value})
		jb, _ := json.Marshal(EntitlementValue{b.Value})
		if !bytes.Equal(ja, jb) {
			return false
		}
	}
	return true
}
