package seed

import (
	"context"
	"errors"
	"fmt"

	"github.com/mpmeter/mpmeter"
)

// Source is the part of an mpmeter.Store that Export reads.
type Source interface {
	Accounts(ctx context.Context, p mpmeter.Page) ([]mpmeter.Account, error)
	AccessKeys(ctx context.Context, f mpmeter.AccessKeyFilter, p mpmeter.Page) ([]mpmeter.AccessKey, error)
	Products(ctx context.Context, p mpmeter.Page) ([]mpmeter.Product, error)
	Subscriptions(ctx context.Context, f mpmeter.SubscriptionFilter, p mpmeter.Page) ([]mpmeter.Subscription, error)
	RegistrationTokens(ctx context.Context, p mpmeter.Page) ([]mpmeter.RegistrationToken, error)
	Entitlements(ctx context.Context, f mpmeter.EntitlementFilter) ([]mpmeter.Entitlement, error)
	FaultRules(ctx context.Context) ([]mpmeter.FaultRule, error)
	FaultRule(ctx context.Context, id string) (mpmeter.FaultRule, error)
}

// NotificationSource is what Export reads of where notifications go, when
// its Source has it (a store that keeps notifications,
// mpmeter.NotificationStore).
type NotificationSource interface {
	SNSSubscriptions(ctx context.Context, productCode, topic string, p mpmeter.Page) ([]mpmeter.SNSSubscription, error)
	EventBridgeTargets(ctx context.Context, accountID string, p mpmeter.Page) ([]mpmeter.EventBridgeTarget, error)
}

// exportPage is how many rows Export reads per query.
const exportPage = 500

// Export reads the whole marketplace in src as a seed file that Apply (and
// ApplyNotifications) put back as it is: every generated value (customer
// identifiers, license ARNs, agreement ids, token expiry, fault rule ids)
// written out explicitly, secrets included (the file is as secret as the
// database). Accounts, keys, products, subscriptions (by agreement id),
// tokens (by id), fault rules (in the order they are tried), SNS
// subscriptions (by ARN) and EventBridge targets (by id) come in the store's
// list order, so exporting the same marketplace twice gives the same file.
// SNS subscriptions and EventBridge targets are exported when src is also a
// NotificationSource. What a seed file cannot say is not exported:
// creation times, subscriptions' end times, versions, SNS subscription ARNs
// (derived from the topic, by the server that applies the file).
func Export(ctx context.Context, src Source) (*File, error) {
	f := &File{}
	accounts, err := mpmeter.AllPages(ctx, exportPage, func(p mpmeter.Page) ([]mpmeter.Account, error) { return src.Accounts(ctx, p) },
		func(a mpmeter.Account) string { return a.ID })
	if err != nil {
		return nil, fmt.Errorf("seed: export accounts: %w", err)
	}
	keys, err := mpmeter.AllPages(ctx, exportPage, func(p mpmeter.Page) ([]mpmeter.AccessKey, error) {
		return src.AccessKeys(ctx, mpmeter.AccessKeyFilter{}, p)
	}, func(k mpmeter.AccessKey) string { return k.ID })
	if err != nil {
		return nil, fmt.Errorf("seed: export access keys: %w", err)
	}
	keysOf := map[string][]AccessKey{}
	for _, k := range keys {
		keysOf[k.AccountID] = append(keysOf[k.AccountID], exportKey(k))
	}
	for _, a := range accounts {
		f.Accounts = append(f.Accounts, Account{ID: a.ID, Name: a.Name, AccessKeys: keysOf[a.ID]})
	}
	products, err := mpmeter.AllPages(ctx, exportPage, func(p mpmeter.Page) ([]mpmeter.Product, error) { return src.Products(ctx, p) },
		func(p mpmeter.Product) string { return p.Code })
	if err != nil {
		return nil, fmt.Errorf("seed: export products: %w", err)
	}
	for _, p := range products {
		ep := Product{Code: p.Code, Seller: p.SellerAccountID, Type: p.Type, Dimensions: append([]string(nil), p.Dimensions...),
			ConcurrentAgreements: p.ConcurrentAgreements, FulfillmentURL: p.FulfillmentURL}
		for name, d := range p.DimensionDetails {
			if ep.DimensionDetails == nil {
				ep.DimensionDetails = map[string]DimensionDetails{}
			}
			ep.DimensionDetails[name] = DimensionDetails{Description: d.Description, Unit: d.Unit, Price: d.PricePerUnit}
		}
		f.Products = append(f.Products, ep)
	}
	subs, err := mpmeter.AllPages(ctx, exportPage, func(p mpmeter.Page) ([]mpmeter.Subscription, error) {
		return src.Subscriptions(ctx, mpmeter.SubscriptionFilter{}, p)
	}, func(s mpmeter.Subscription) string { return s.AgreementID })
	if err != nil {
		return nil, fmt.Errorf("seed: export subscriptions: %w", err)
	}
	entsOf := map[string][]Entitlement{} // license ARN -> its entitlements
	for _, p := range products {
		ents, err := allEntitlements(ctx, src, p.Code)
		if err != nil {
			return nil, fmt.Errorf("seed: export entitlements of %s: %w", p.Code, err)
		}
		for _, e := range ents {
			entsOf[e.LicenseArn] = append(entsOf[e.LicenseArn], ExportEntitlement(e))
		}
	}
	for _, s := range subs {
		f.Subscriptions = append(f.Subscriptions, Subscription{Account: s.AccountID, Product: s.ProductCode,
			CustomerIdentifier: s.CustomerIdentifier, LicenseArn: s.LicenseArn, Status: s.Status,
			AgreementID: s.AgreementID, OfferID: s.OfferID, FreeTrial: s.FreeTrial,
			Entitlements: entsOf[s.LicenseArn]})
	}
	tokens, err := mpmeter.AllPages(ctx, exportPage, func(p mpmeter.Page) ([]mpmeter.RegistrationToken, error) { return src.RegistrationTokens(ctx, p) },
		func(t mpmeter.RegistrationToken) string { return t.ID })
	if err != nil {
		return nil, fmt.Errorf("seed: export registration tokens: %w", err)
	}
	for _, t := range tokens {
		e := t.ExpiresAt.UTC()
		f.RegistrationTokens = append(f.RegistrationTokens, RegistrationToken{Token: t.Token, Account: t.AccountID,
			Product: t.ProductCode, LicenseArn: t.LicenseArn, ExpiresAt: &e})
	}
	rules, err := src.FaultRules(ctx)
	if err != nil {
		return nil, fmt.Errorf("seed: export fault rules: %w", err)
	}
	for _, listed := range rules {
		r := listed
		if r.Count > 0 {
			// The list may be a cache's (storecache's, up to its TTL
			// old), and a count is spent by every call it faults: the
			// rule's own read is the database's.
			r, err = src.FaultRule(ctx, listed.ID)
			if errors.Is(err, mpmeter.ErrNotFound) {
				continue // deleted since
			}
			if err != nil {
				return nil, fmt.Errorf("seed: export fault rule %s: %w", listed.ID, err)
			}
		}
		f.Faults = append(f.Faults, exportFault(r))
	}
	if ns, ok := src.(NotificationSource); ok {
		if err := exportNotifications(ctx, ns, f); err != nil {
			return nil, err
		}
	}
	return f, nil
}

// exportNotifications adds src's SNS subscriptions and EventBridge targets
// to f.
func exportNotifications(ctx context.Context, src NotificationSource, f *File) error {
	subs, err := mpmeter.AllPages(ctx, exportPage, func(p mpmeter.Page) ([]mpmeter.SNSSubscription, error) { return src.SNSSubscriptions(ctx, "", "", p) },
		func(s mpmeter.SNSSubscription) string { return s.ARN })
	if err != nil {
		return fmt.Errorf("seed: export SNS subscriptions: %w", err)
	}
	for _, s := range subs {
		es := SNSSubscription{Product: s.ProductCode, Topic: s.Topic, Protocol: s.Protocol, Endpoint: s.Endpoint}
		if !s.ConfirmedAt.IsZero() {
			c := s.ConfirmedAt.UTC()
			es.ConfirmedAt = &c
		}
		f.SNSSubscriptions = append(f.SNSSubscriptions, es)
	}
	targets, err := mpmeter.AllPages(ctx, exportPage, func(p mpmeter.Page) ([]mpmeter.EventBridgeTarget, error) { return src.EventBridgeTargets(ctx, "", p) },
		func(t mpmeter.EventBridgeTarget) string { return t.ID })
	if err != nil {
		return fmt.Errorf("seed: export EventBridge targets: %w", err)
	}
	for _, t := range targets {
		f.EventBridgeTargets = append(f.EventBridgeTargets, EventBridgeTarget{Account: t.AccountID, Endpoint: t.Endpoint})
	}
	return nil
}

// allEntitlements reads every entitlement of a product, of every
// subscription whatever its status, page by page.
func allEntitlements(ctx context.Context, src Source, product string) ([]mpmeter.Entitlement, error) {
	var out []mpmeter.Entitlement
	f := mpmeter.EntitlementFilter{ProductCode: product, Limit: exportPage}
	for {
		page, err := src.Entitlements(ctx, f)
		if err != nil {
			return nil, err
		}
		out = append(out, page...)
		if len(page) < f.Limit {
			return out, nil
		}
		last := page[len(page)-1]
		f.After = &mpmeter.EntitlementPosition{LicenseArn: last.LicenseArn, Dimension: last.Dimension}
	}
}

// ExportEntitlement is a stored entitlement as a seed file writes it.
func ExportEntitlement(e mpmeter.Entitlement) Entitlement {
	out := Entitlement{Dimension: e.Dimension, Value: EntitlementValue{e.Value}}
	if !e.ExpiresAt.IsZero() {
		t := e.ExpiresAt.UTC()
		out.ExpiresAt = &t
	}
	return out
}

func exportKey(k mpmeter.AccessKey) AccessKey {
	ek := AccessKey{ID: k.ID, Secret: k.Secret, SessionToken: k.SessionToken, CredentialsToken: k.CredentialsToken}
	if w := k.Workload; w != nil {
		ek.Workload = &Workload{ID: w.ID, Platform: w.Platform, Region: w.Region}
	}
	if !k.ExpiresAt.IsZero() {
		e := k.ExpiresAt.UTC()
		ek.ExpiresAt = &e
	}
	if !k.RevokedAt.IsZero() {
		r := k.RevokedAt.UTC()
		ek.RevokedAt = &r
	}
	return ek
}
