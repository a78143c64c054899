// Package storecache keeps the marketplace reads of the hot path (access
// keys, products, subscriptions) in memory in front of a Store, so that a
// 25-record BatchMeterUsage costs no database round trip before its write.
//
// Consistency: writes through this Store (the seed, the admin side, tests)
// drop the cache at once, so one process always reads its own writes. Writes
// by other processes on the same database (other nodes, the CLI) are seen
// within the TTL: an entry expires TTL after its load began, so TTL after a
// write committed no node serves what it replaced. The admin API's key
// revocation rests on that bound (it answers once TTL has passed; see
// docs/admin-api.md for why, and the cost of the alternative measured). Only found rows are cached: a key, customer or license
// created anywhere is usable as soon as it is committed. Usage records,
// idempotency tokens, registration tokens, entitlements, signing keys, the
// clock and the audit log are never cached.
package storecache

import (
	"context"
	"iter"
	"sync"
	"time"

	"github.com/mpmeter/mpmeter"
)

// DefaultTTL bounds how stale a cached marketplace row may be.
const DefaultTTL = time.Second

// maxEntries bounds each map; past it the map starts over (a full cache is
// only a performance matter).
const maxEntries = 200_000

// Store caches marketplace reads of the Store it wraps. It implements every
// method of mpmeter.Store itself (no embedding), so that a method added to
// the interface fails to compile here until someone decides whether it
// reads through the cache, writes through it (and invalidates), or passes
// by it.
type Store struct {
	under mpmeter.Store
	ttl   time.Duration
	now   func() time.Time

	mu             sync.RWMutex
	generation     uint64 // bumped by every local write: entries of older generations are void
	accessKeys     map[string]entry[mpmeter.AccessKey]
	products       map[string]entry[mpmeter.Product]
	subsByLicense  map[string]entry[mpmeter.Subscription]
	subsByCustomer map[[2]string]entry[mpmeter.Subscription] // (product, customer identifier)
	subsOf         map[[2]string]entry[[]mpmeter.Subscription]
	// faultRules holds the one list of fault rules (key struct{}{}), which
	// every API call reads.
	faultRules map[struct{}]entry[[]mpmeter.FaultRule]
}

type entry[T any] struct {
	value      T
	expires    time.Time
	generation uint64
}

// New wraps st. ttl <= 0 means DefaultTTL; now nil means time.Now.
func New(st mpmeter.Store, ttl time.Duration, now func() time.Time) *Store {
	if ttl <= 0 {
		ttl = DefaultTTL
	}
	if now == nil {
		now = time.Now
	}
	s := &Store{under: st, ttl: ttl, now: now}
	s.reset()
	return s
}

func (s *Store) reset() {
	s.accessKeys = map[string]entry[mpmeter.AccessKey]{}
	s.products = map[string]entry[mpmeter.Product]{}
	s.subsByLicense = map[string]entry[mpmeter.Subscription]{}
	s.subsByCustomer = map[[2]string]entry[mpmeter.Subscription]{}
	s.subsOf = map[[2]string]entry[[]mpmeter.Subscription]{}
	s.faultRules = map[struct{}]entry[[]mpmeter.FaultRule]{}
}

// cached returns m[k] when present and fresh, else loads it (outside the
// lock) and caches it unless a local write happened meanwhile.
func cached[K comparable, T any](s *Store, m func() map[K]entry[T], k K, load func() (T, error)) (T, error) {
	now := s.now()
	s.mu.RLock()
	e, ok := m()[k]
	gen := s.generation
	s.mu.RUnlock()
	if ok && e.generation == gen && now.Before(e.expires) {
		return e.value, nil
	}
	v, err := load()
	if err != nil {
		return v, err
	}
	s.mu.Lock()
	if s.generation == gen {
		mm := m()
		if len(mm) >= maxEntries {
			clear(mm)
		}
		mm[k] = entry[T]{value: v, expires: now.Add(s.ttl), generation: gen}
	}
	s.mu.Unlock()
	return v, nil
}

// invalidate voids every cached row: marketplace writes are rare, and a
// product's or subscription's change can touch several maps.
func (s *Store) invalidate() {
	s.mu.Lock()
	s.generation++
	s.reset()
	s.mu.Unlock()
}

// AccessKey implements mpmeter.Store.
func (s *Store) AccessKey(ctx context.Context, id string) (mpmeter.AccessKey, error) {
	return cached(s, func() map[string]entry[mpmeter.AccessKey] { return s.accessKeys }, id,
		func() (mpmeter.AccessKey, error) { return s.under.AccessKey(ctx, id) })
}

// Product implements mpmeter.Store.
func (s *Store) Product(ctx context.Context, code string) (mpmeter.Product, error) {
	return cached(s, func() map[string]entry[mpmeter.Product] { return s.products }, code,
		func() (mpmeter.Product, error) { return s.under.Product(ctx, code) })
}

// Subscription implements mpmeter.Store.
func (s *Store) Subscription(ctx context.Context, licenseArn string) (mpmeter.Subscription, error) {
	return cached(s, func() map[string]entry[mpmeter.Subscription] { return s.subsByLicense }, licenseArn,
		func() (mpmeter.Subscription, error) { return s.under.Subscription(ctx, licenseArn) })
}

// SubscriptionsByCustomers implements mpmeter.Store: cached customers come
// from memory, the rest from one query.
func (s *Store) SubscriptionsByCustomers(ctx context.Context, productCode string, ids []string) (map[string]mpmeter.Subscription, error) {
	now := s.now()
	out := make(map[string]mpmeter.Subscription, len(ids))
	var missing []string
	s.mu.RLock()
	gen := s.generation
	for _, id := range ids {
		if e, ok := s.subsByCustomer[[2]string{productCode, id}]; ok && e.generation == gen && now.Before(e.expires) {
			out[id] = e.value
		} else {
			missing = append(missing, id)
		}
	}
	s.mu.RUnlock()
	if len(missing) == 0 {
		return out, nil
	}
	loaded, err := s.under.SubscriptionsByCustomers(ctx, productCode, missing)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	if s.generation == gen {
		if len(s.subsByCustomer)+len(loaded) > maxEntries {
			clear(s.subsByCustomer)
		}
		for id, sub := range loaded {
			s.subsByCustomer[[2]string{productCode, id}] = entry[mpmeter.Subscription]{value: sub, expires: now.Add(s.ttl), generation: gen}
		}
	}
	s.mu.Unlock()
	for id, sub := range loaded {
		out[id] = sub
	}
	return out, nil
}

// SubscriptionsOf implements mpmeter.Store. An empty result is not cached
// (a new subscription must count at once). The slice is shared: callers must
// not modify it.
func (s *Store) SubscriptionsOf(ctx context.Context, accountID, productCode string) ([]mpmeter.Subscription, error) {
	subs, err := cached(s, func() map[[2]string]entry[[]mpmeter.Subscription] { return s.subsOf }, [2]string{accountID, productCode},
		func() ([]mpmeter.Subscription, error) {
			subs, err := s.under.SubscriptionsOf(ctx, accountID, productCode)
			if err == nil && len(subs) == 0 {
				return subs, errEmpty
			}
			return subs, err
		})
	if err == errEmpty {
		return subs, nil
	}
	return subs, err
}

// The marketplace writes: through to the store, then void the cache.

// PutAccount implements mpmeter.Store.
func (s *Store) PutAccount(ctx context.Context, a mpmeter.Account) error {
	defer s.invalidate()
	return s.under.PutAccount(ctx, a)
}

// PutAccessKey implements mpmeter.Store.
func (s *Store) PutAccessKey(ctx context.Context, k mpmeter.AccessKey) error {
	defer s.invalidate()
	return s.under.PutAccessKey(ctx, k)
}

// PutProduct implements mpmeter.Store.
func (s *Store) PutProduct(ctx context.Context, p mpmeter.Product) error {
	defer s.invalidate()
	return s.under.PutProduct(ctx, p)
}

// PutSubscription implements mpmeter.Store.
func (s *Store) PutSubscription(ctx context.Context, sub mpmeter.Subscription) error {
	defer s.invalidate()
	return s.under.PutSubscription(ctx, sub)
}

// PutRegistrationToken implements mpmeter.Store. Registration tokens are
// not cached.
func (s *Store) PutRegistrationToken(ctx context.Context, t mpmeter.RegistrationToken) error {
	return s.under.PutRegistrationToken(ctx, t)
}

// PutEntitlements implements mpmeter.Store. Entitlements are not cached:
// GetEntitlements is a seller's occasional read, not the metering hot path.
func (s *Store) PutEntitlements(ctx context.Context, licenseArn string, ents []mpmeter.Entitlement) error {
	return s.under.PutEntitlements(ctx, licenseArn, ents)
}

// What is never cached passes by: the admin side's reads, which must show
// the stored state (and its versions) as it is.

// Account implements mpmeter.Store.
func (s *Store) Account(ctx context.Context, id string) (mpmeter.Account, error) {
	return s.under.Account(ctx, id)
}

// Accounts implements mpmeter.Store.
func (s *Store) Accounts(ctx context.Context, p mpmeter.Page) ([]mpmeter.Account, error) {
	return s.under.Accounts(ctx, p)
}

// AccessKeys implements mpmeter.Store.
func (s *Store) AccessKeys(ctx context.Context, f mpmeter.AccessKeyFilter, p mpmeter.Page) ([]mpmeter.AccessKey, error) {
	return s.under.AccessKeys(ctx, f, p)
}

// Products implements mpmeter.Store.
func (s *Store) Products(ctx context.Context, p mpmeter.Page) ([]mpmeter.Product, error) {
	return s.under.Products(ctx, p)
}

// SubscriptionByAgreement implements mpmeter.Store.
func (s *Store) SubscriptionByAgreement(ctx context.Context, agreementID string) (mpmeter.Subscription, error) {
	return s.under.SubscriptionByAgreement(ctx, agreementID)
}

// Subscriptions implements mpmeter.Store.
func (s *Store) Subscriptions(ctx context.Context, f mpmeter.SubscriptionFilter, p mpmeter.Page) ([]mpmeter.Subscription, error) {
	return s.under.Subscriptions(ctx, f, p)
}

// RegistrationTokenByID implements mpmeter.Store.
func (s *Store) RegistrationTokenByID(ctx context.Context, id string) (mpmeter.RegistrationToken, error) {
	return s.under.RegistrationTokenByID(ctx, id)
}

// RegistrationTokens implements mpmeter.Store.
func (s *Store) RegistrationTokens(ctx context.Context, p mpmeter.Page) ([]mpmeter.RegistrationToken, error) {
	return s.under.RegistrationTokens(ctx, p)
}

// Entitlements implements mpmeter.Store.
func (s *Store) Entitlements(ctx context.Context, f mpmeter.EntitlementFilter) ([]mpmeter.Entitlement, error) {
	return s.under.Entitlements(ctx, f)
}

// RegistrationToken implements mpmeter.Store.
func (s *Store) RegistrationToken(ctx context.Context, token string) (mpmeter.RegistrationToken, error) {
	return s.under.RegistrationToken(ctx, token)
}

// RecordUsage implements mpmeter.Store.
func (s *Store) RecordUsage(ctx context.Context, recs []mpmeter.MeteringRecord, tok *mpmeter.IdempotencyToken) ([]mpmeter.MeteringOutcome, error) {
	return s.under.RecordUsage(ctx, recs, tok)
}

// WorkloadAccessKeys implements mpmeter.Store. Not cached: minted
// credentials must be seen by every node at once, and the container
// credentials endpoint is called a few times an hour per workload.
func (s *Store) WorkloadAccessKeys(ctx context.Context, workloadID string, validAt time.Time) ([]mpmeter.AccessKey, error) {
	return s.under.WorkloadAccessKeys(ctx, workloadID, validAt)
}

// PreviewUsage implements mpmeter.Store: a read of usage, never cached.
func (s *Store) PreviewUsage(ctx context.Context, rec mpmeter.MeteringRecord, tok *mpmeter.IdempotencyToken) (mpmeter.MeteringOutcome, error) {
	return s.under.PreviewUsage(ctx, rec, tok)
}

// Usage implements mpmeter.Store.
func (s *Store) Usage(ctx context.Context, f mpmeter.UsageFilter) ([]mpmeter.MeteringRecord, error) {
	return s.under.Usage(ctx, f)
}

// UsageTotals implements mpmeter.Store.
func (s *Store) UsageTotals(ctx context.Context, f mpmeter.UsageFilter) ([]mpmeter.UsageTotal, error) {
	return s.under.UsageTotals(ctx, f)
}

// UsageRecord implements mpmeter.Store (usage is never cached).
func (s *Store) UsageRecord(ctx context.Context, id string) (mpmeter.MeteringRecord, error) {
	return s.under.UsageRecord(ctx, id)
}

// UsagePage implements mpmeter.Store.
func (s *Store) UsagePage(ctx context.Context, f mpmeter.UsageFilter, cursor string, limit int) (mpmeter.UsagePage, error) {
	return s.under.UsagePage(ctx, f, cursor, limit)
}

// EachUsage implements mpmeter.Store.
func (s *Store) EachUsage(ctx context.Context, f mpmeter.UsageFilter) iter.Seq2[mpmeter.MeteringRecord, error] {
	return s.under.EachUsage(ctx, f)
}

// UsageSummary implements mpmeter.Store.
func (s *Store) UsageSummary(ctx context.Context, q mpmeter.UsageSummaryQuery) iter.Seq2[mpmeter.UsageSummaryLine, error] {
	return s.under.UsageSummary(ctx, q)
}

// PurgeExpired implements mpmeter.Store. Registration tokens it deletes are
// expired, which a cached copy already says; none is cached past --cache-ttl.
func (s *Store) PurgeExpired(ctx context.Context, now time.Time, limit int) (mpmeter.PurgeResult, error) {
	return s.under.PurgeExpired(ctx, now, limit)
}

// SigningKeys implements mpmeter.Store.
func (s *Store) SigningKeys(ctx context.Context) ([]mpmeter.SigningKey, error) {
	return s.under.SigningKeys(ctx)
}

// AddSigningKey implements mpmeter.Store.
func (s *Store) AddSigningKey(ctx context.Context, k mpmeter.SigningKey) error {
	return s.under.AddSigningKey(ctx, k)
}

// ClockOffset implements mpmeter.Store.
func (s *Store) ClockOffset(ctx context.Context) (time.Duration, error) {
	return s.under.ClockOffset(ctx)
}

// SetClockOffset implements mpmeter.Store.
func (s *Store) SetClockOffset(ctx context.Context, d time.Duration) error {
	return s.under.SetClockOffset(ctx, d)
}

// PutAuditEvents implements mpmeter.Store: the audit log is never cached.
func (s *Store) PutAuditEvents(ctx context.Context, events []mpmeter.AuditEvent) error {
	return s.under.PutAuditEvents(ctx, events)
}

// AuditEvents implements mpmeter.Store.
func (s *Store) AuditEvents(ctx context.Context, f mpmeter.AuditFilter) (mpmeter.AuditPage, error) {
	return s.under.AuditEvents(ctx, f)
}

// PurgeAuditEvents implements mpmeter.Store.
func (s *Store) PurgeAuditEvents(ctx context.Context, before time.Time, limit int) (int, error) {
	return s.under.PurgeAuditEvents(ctx, before, limit)
}

// AddFaultRule implements mpmeter.Store: write-through, then this node
// reads the rules again.
func (s *Store) AddFaultRule(ctx context.Context, r mpmeter.FaultRule) error {
	defer s.invalidate()
	return s.under.AddFaultRule(ctx, r)
}

// FaultRule implements mpmeter.Store (the admin API's read: not cached).
func (s *Store) FaultRule(ctx context.Context, id string) (mpmeter.FaultRule, error) {
	return s.under.FaultRule(ctx, id)
}

// FaultRules implements mpmeter.Store: cached like the marketplace rows,
// so every node sees another node's new or deleted rules within the TTL.
// The slice is shared: callers must not modify it.
func (s *Store) FaultRules(ctx context.Context) ([]mpmeter.FaultRule, error) {
	return cached(s, func() map[struct{}]entry[[]mpmeter.FaultRule] { return s.faultRules }, struct{}{},
		func() ([]mpmeter.FaultRule, error) { return s.under.FaultRules(ctx) })
}

// DeleteFaultRule implements mpmeter.Store.
func (s *Store) DeleteFaultRule(ctx context.Context, id string) error {
	defer s.invalidate()
	return s.under.DeleteFaultRule(ctx, id)
}

// DeleteFaultRules implements mpmeter.Store.
func (s *Store) DeleteFaultRules(ctx context.Context) (int, error) {
	defer s.invalidate()
	return s.under.DeleteFaultRules(ctx)
}

// TakeFaultCount implements mpmeter.Store: always the database's (the
// count is shared exactly). A take that found the rule spent drops the
// cached list, so this node stops asking at once rather than after the
// TTL.
func (s *Store) TakeFaultCount(ctx context.Context, id string, n int64) (int64, error) {
	took, err := s.under.TakeFaultCount(ctx, id, n)
	if err == nil && took < n {
		s.mu.Lock()
		clear(s.faultRules)
		s.mu.Unlock()
	}
	return took, err
}

// Close implements mpmeter.Store.
func (s *Store) Close() error { return s.under.Close() }

var _ mpmeter.Store = (*Store)(nil)

// errEmpty keeps empty SubscriptionsOf results out of the cache; it never
// leaves the package.
var errEmpty = emptyError{}

type emptyError struct{}

func (emptyError) Error() string { return "no subscriptions" }
