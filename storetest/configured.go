package storetest

import (
	"context"
	"fmt"
	"time"

	"github.com/mpmeter/mpmeter"
)

// Configured is the marketplace and the configuration a store holds, as its
// read methods answer them, without what a seed file does not carry:
// creation and end times, versions (a fault rule's creation time orders the
// rules, and their order is kept). Times are in UTC. Exporting a store's
// seed and applying it to a new one must give an equal Configured
// (seed.Export), read here without the export's code.
type Configured struct {
	Accounts           []mpmeter.Account
	AccessKeys         []mpmeter.AccessKey
	Products           []mpmeter.Product
	Subscriptions      []mpmeter.Subscription
	RegistrationTokens []mpmeter.RegistrationToken
	Entitlements       []mpmeter.Entitlement
	FaultRules         []mpmeter.FaultRule
	// SNSSubscriptions and EventBridgeTargets are read when the store is
	// an mpmeter.NotificationStore.
	SNSSubscriptions   []mpmeter.SNSSubscription
	EventBridgeTargets []mpmeter.EventBridgeTarget
}

// ReadConfigured reads every item of st's marketplace and configuration,
// page by page.
func ReadConfigured(ctx context.Context, st mpmeter.Store) (Configured, error) {
	var c Configured
	var err error
	if c.Accounts, err = mpmeter.AllPages(ctx, readPage, func(p mpmeter.Page) ([]mpmeter.Account, error) { return st.Accounts(ctx, p) },
		func(a mpmeter.Account) string { return a.ID }); err != nil {
		return c, fmt.Errorf("accounts: %w", err)
	}
	for i := range c.Accounts {
		c.Accounts[i].Version = 0
	}
	if c.AccessKeys, err = mpmeter.AllPages(ctx, readPage, func(p mpmeter.Page) ([]mpmeter.AccessKey, error) {
		return st.AccessKeys(ctx, mpmeter.AccessKeyFilter{}, p)
	}, func(k mpmeter.AccessKey) string { return k.ID }); err != nil {
		return c, fmt.Errorf("access keys: %w", err)
	}
	for i := range c.AccessKeys {
		k := &c.AccessKeys[i]
		k.Version, k.ExpiresAt, k.RevokedAt = 0, utc(k.ExpiresAt), utc(k.RevokedAt)
	}
	if c.Products, err = mpmeter.AllPages(ctx, readPage, func(p mpmeter.Page) ([]mpmeter.Product, error) { return st.Products(ctx, p) },
		func(p mpmeter.Product) string { return p.Code }); err != nil {
		return c, fmt.Errorf("products: %w", err)
	}
	for i := range c.Products {
		c.Products[i].Version = 0
	}
	if c.Subscriptions, err = mpmeter.AllPages(ctx, readPage, func(p mpmeter.Page) ([]mpmeter.Subscription, error) {
		return st.Subscriptions(ctx, mpmeter.SubscriptionFilter{}, p)
	}, func(s mpmeter.Subscription) string { return s.AgreementID }); err != nil {
		return c, fmt.Errorf("subscriptions: %w", err)
	}
	for i := range c.Subscriptions {
		s := &c.Subscriptions[i]
		s.Version, s.CreatedAt, s.EndedAt = 0, time.Time{}, time.Time{}
	}
	if c.RegistrationTokens, err = mpmeter.AllPages(ctx, readPage, func(p mpmeter.Page) ([]mpmeter.RegistrationToken, error) {
		return st.RegistrationTokens(ctx, p)
	}, func(t mpmeter.RegistrationToken) string { return t.ID }); err != nil {
		return c, fmt.Errorf("registration tokens: %w", err)
	}
	for i := range c.RegistrationTokens {
		t := &c.RegistrationTokens[i]
		t.CreatedAt, t.ExpiresAt = time.Time{}, utc(t.ExpiresAt)
	}
	for _, p := range c.Products {
		ents, err := st.Entitlements(ctx, mpmeter.EntitlementFilter{ProductCode: p.Code})
		if err != nil {
			return c, fmt.Errorf("entitlements of %s: %w", p.Code, err)
		}
		for _, e := range ents {
			e.ExpiresAt = utc(e.ExpiresAt)
			c.Entitlements = append(c.Entitlements, e)
		}
	}
	rules, err := st.FaultRules(ctx) // a cache's slice, maybe: not to be modified
	if err != nil {
		return c, fmt.Errorf("fault rules: %w", err)
	}
	for _, listed := range rules {
		// A cached list (storecache) may hold an older remaining count;
		// the rule's own read is the database's.
		r, err := st.FaultRule(ctx, listed.ID)
		if err != nil {
			return c, fmt.Errorf("fault rule %s: %w", listed.ID, err)
		}
		r.CreatedAt, r.ExpiresAt = time.Time{}, utc(r.ExpiresAt)
		c.FaultRules = append(c.FaultRules, r)
	}
	ns, ok := st.(mpmeter.NotificationStore)
	if !ok {
		return c, nil
	}
	if c.SNSSubscriptions, err = mpmeter.AllPages(ctx, readPage, func(p mpmeter.Page) ([]mpmeter.SNSSubscription, error) {
		return ns.SNSSubscriptions(ctx, "", "", p)
	}, func(s mpmeter.SNSSubscription) string { return s.ARN }); err != nil {
		return c, fmt.Errorf("SNS subscriptions: %w", err)
	}
	for i := range c.SNSSubscriptions {
		s := &c.SNSSubscriptions[i]
		s.CreatedAt, s.ConfirmedAt = time.Time{}, utc(s.ConfirmedAt)
	}
	if c.EventBridgeTargets, err = mpmeter.AllPages(ctx, readPage, func(p mpmeter.Page) ([]mpmeter.EventBridgeTarget, error) {
		return ns.EventBridgeTargets(ctx, "", p)
	}, func(t mpmeter.EventBridgeTarget) string { return t.ID }); err != nil {
		return c, fmt.Errorf("EventBridge targets: %w", err)
	}
	for i := range c.EventBridgeTargets {
		c.EventBridgeTargets[i].CreatedAt = time.Time{}
	}
	return c, nil
}

// readPage is how many rows ReadConfigured reads per query.
const readPage = 500

// utc is t in UTC; the zero time stays zero.
func utc(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return t.UTC()
}
