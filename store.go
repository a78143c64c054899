package mpmeter

import (
	"context"
	"iter"
	"time"
)

// RegistrationTokenRetention is how long an expired registration token is
// kept before Store.PurgeExpired deletes it: for a day after expiry
// ResolveCustomer still answers ExpiredTokenException, as it did before
// purging existed, rather than InvalidTokenException.
const RegistrationTokenRetention = 24 * time.Hour

// Store is where the marketplace and its usage live. Implementations:
// sqlstore (SQLite, the embedded default; PostgreSQL for several nodes).
//
// Failure modes, for every method:
//   - ErrNotFound (possibly wrapped) when a looked-up row does not exist;
//     nothing else uses it.
//   - ErrIdempotencyConflict from RecordUsage and ErrExists from
//     AddSigningKey, as documented there.
//   - ErrExists, ErrConflict and ErrNotFound from versioned puts (below).
//   - A context error when ctx ends first; nothing was committed.
//   - Any other error means the database failed (unreachable, disk full,
//     corrupt, a constraint the caller should have prevented). Callers treat
//     it as internal and tell the client to retry: nothing of the failed call
//     was committed, or — when a PostgreSQL connection drops during COMMIT,
//     where the outcome cannot be known — it was committed and a retry finds
//     it (dedup keys and idempotency tokens make every write safe to retry).
//     A store never reports success for a write it did not commit durably.
//
// Versioned writes: Account, AccessKey, Product and Subscription carry a
// Version, the number of writes their row has had (1 after the first). A
// Put's Version says what it expects:
//   - 0: create or overwrite, whatever is stored (the seed's idempotent
//     upsert);
//   - CreateOnly: create; a row with the same key is ErrExists;
//   - n > 0: update the row only if its version is still n; another version
//     is ErrConflict, no row ErrNotFound. So two read-modify-write updates
//     racing each other cannot both win: one gets ErrConflict, never a lost
//     write.
//
// Every successful put bumps the stored version. A failed put changes
// nothing. A unique value another row holds (a subscription's customer
// identifier) is ErrExists for CreateOnly and versioned puts.
//
// Lists take a Page and return items in their key's order (accounts by id,
// access keys by id, products by code, subscriptions by agreement id,
// registration tokens by id), so a cursor (the last key seen) pages through
// them stably while rows are added.
//
// Implementations are safe for concurrent use.
type Store interface {
	// AccessKey returns the access key with this id.
	AccessKey(ctx context.Context, id string) (AccessKey, error)
	// Product returns the product with this code.
	Product(ctx context.Context, code string) (Product, error)
	// Subscription returns the subscription with this license ARN.
	Subscription(ctx context.Context, licenseArn string) (Subscription, error)
	// SubscriptionsByCustomers returns the product's subscriptions whose
	// CustomerIdentifier is one of ids, keyed by identifier; identifiers
	// without one are absent from the map (not ErrNotFound). One round trip
	// for a whole BatchMeterUsage.
	SubscriptionsByCustomers(ctx context.Context, productCode string, ids []string) (map[string]Subscription, error)
	// SubscriptionsOf returns the account's subscriptions to the product,
	// oldest first; an empty slice (not ErrNotFound) when there are none.
	SubscriptionsOf(ctx context.Context, accountID, productCode string) ([]Subscription, error)
	// WorkloadAccessKeys returns the access keys of the workload with this
	// id that work at validAt: its long-term keys and its temporary keys
	// that expire after validAt (expired ones, which pile up as credentials
	// rotate, are left out), ordered by id; an empty slice (not
	// ErrNotFound) when there are none.
	WorkloadAccessKeys(ctx context.Context, workloadID string, validAt time.Time) ([]AccessKey, error)
	// RegistrationToken returns the registration token with this value.
	RegistrationToken(ctx context.Context, token string) (RegistrationToken, error)

	// Account returns the account with this id.
	Account(ctx context.Context, id string) (Account, error)
	// Accounts lists accounts by id.
	Accounts(ctx context.Context, p Page) ([]Account, error)
	// AccessKeys lists the access keys matching f by id (revoked and
	// expired ones too).
	AccessKeys(ctx context.Context, f AccessKeyFilter, p Page) ([]AccessKey, error)
	// Products lists products by code, each with its dimensions.
	Products(ctx context.Context, p Page) ([]Product, error)
	// SubscriptionByAgreement returns the subscription with this agreement
	// id.
	SubscriptionByAgreement(ctx context.Context, agreementID string) (Subscription, error)
	// Subscriptions lists the subscriptions matching f by agreement id.
	Subscriptions(ctx context.Context, f SubscriptionFilter, p Page) ([]Subscription, error)
	// RegistrationTokenByID returns the registration token whose ID
	// (RegistrationTokenID) is id.
	RegistrationTokenByID(ctx context.Context, id string) (RegistrationToken, error)
	// RegistrationTokens lists registration tokens by ID.
	RegistrationTokens(ctx context.Context, p Page) ([]RegistrationToken, error)

	// PutAccount creates or updates an account by id (a versioned write).
	PutAccount(ctx context.Context, a Account) error
	// PutAccessKey creates or updates an access key by id (a versioned
	// write). Its account must exist. A stored RevokedAt is kept: a put
	// cannot un-revoke a key.
	PutAccessKey(ctx context.Context, k AccessKey) error
	// PutProduct creates or updates a product by code, replacing its
	// dimensions and their details (a versioned write). Its seller account
	// must exist.
	PutProduct(ctx context.Context, p Product) error
	// PutSubscription creates or updates a subscription by license ARN (a
	// versioned write). A CustomerIdentifier already used by another
	// subscription of the same product is an error. CreatedAt and
	// AgreementID are kept from the first put (an empty AgreementID becomes
	// AgreementIDFor(LicenseArn)). A Version-0 put of an active status clears
	// EndedAt, of another status keeps a stored EndedAt.
	PutSubscription(ctx context.Context, s Subscription) error
	// PutRegistrationToken creates or updates a registration token by value
	// (unversioned: tokens are issued, not edited). Its ID is derived.
	PutRegistrationToken(ctx context.Context, t RegistrationToken) error
	// PutEntitlements replaces the entitlements of the subscription with
	// this license ARN (which must exist) by ents, in one transaction; nil
	// removes them all. Each entitlement's LicenseArn and the subscription's
	// fields are ignored; a dimension named twice is an error. The caller
	// checks dimensions and values (CheckEntitlementValue).
	PutEntitlements(ctx context.Context, licenseArn string, ents []Entitlement) error
	// Entitlements returns the entitlements matching f, ordered by license
	// ARN then dimension, with their subscription's fields filled in; an
	// empty slice (not ErrNotFound) when none match.
	Entitlements(ctx context.Context, f EntitlementFilter) ([]Entitlement, error)

	// RecordUsage stores records atomically: all of them or none.
	//
	// A record whose DedupKey is non-empty and already stored (by an earlier
	// call or earlier in recs) is not stored again; its outcome has
	// Created=false and the stored record, which the caller compares by
	// Fingerprint. Concurrent calls with the same DedupKey store exactly one
	// record.
	//
	// With tok non-nil (then len(recs) must be 1): when an unexpired token of
	// the same Scope and Token is stored with the same Fingerprint, nothing is
	// stored and the outcome is the record the token answered first
	// (Created=false); with another Fingerprint the call fails with
	// ErrIdempotencyConflict. Otherwise the token is stored (replacing an
	// expired one) in the same transaction, pointing at the outcome's record.
	RecordUsage(ctx context.Context, recs []MeteringRecord, tok *IdempotencyToken) ([]MeteringOutcome, error)
	// PreviewUsage answers what RecordUsage([]MeteringRecord{rec}, tok)
	// would answer now, and writes nothing (MeterUsage's DryRun): the
	// token's first record (Created=false) or ErrIdempotencyConflict for an
	// unexpired token; the stored record (Created=false) when rec's DedupKey
	// is taken; otherwise Created=true with rec as the store would read it
	// back. A concurrent RecordUsage may change the answer a moment later.
	PreviewUsage(ctx context.Context, rec MeteringRecord, tok *IdempotencyToken) (MeteringOutcome, error)
	// Usage returns stored records matching f, ordered by Timestamp then
	// MeteringRecordID.
	Usage(ctx context.Context, f UsageFilter) ([]MeteringRecord, error)
	// UsageTotals sums the records matching f per product, customer account
	// and dimension, ordered by those three. f.Limit bounds the lines
	// returned, not the records summed. It is the usage report: the
	// database adds up the rows, so a day of a busy product costs one
	// index range scan, not a record each across the wire.
	UsageTotals(ctx context.Context, f UsageFilter) ([]UsageTotal, error)
	// UsageRecord returns the stored record with this MeteringRecordID.
	UsageRecord(ctx context.Context, id string) (MeteringRecord, error)
	// UsagePage returns up to limit (at least 1) records matching f in f's
	// order, starting after cursor ("" for the first page; otherwise a Next
	// of an earlier page with the same filter). The order is stable: pages
	// neither repeat nor skip records that existed when the first was read.
	// A malformed cursor is an error wrapping ErrInvalidCursor.
	UsagePage(ctx context.Context, f UsageFilter, cursor string, limit int) (UsagePage, error)
	// EachUsage streams the records matching f in f's order, without
	// holding them all in memory; iteration stops at the first error.
	EachUsage(ctx context.Context, f UsageFilter) iter.Seq2[MeteringRecord, error]
	// UsageSummary streams quantities summed by the database per period
	// and grouping, ordered by period start, then product, customer,
	// dimension and tag value.
	UsageSummary(ctx context.Context, q UsageSummaryQuery) iter.Seq2[UsageSummaryLine, error]
	// PurgeExpired deletes at most limit idempotency tokens that expired by
	// now and at most limit registration tokens expired for more than
	// RegistrationTokenRetention by now, in one short transaction. Metering
	// records are never purged.
	PurgeExpired(ctx context.Context, now time.Time, limit int) (PurgeResult, error)

	// SigningKeys returns every signing key version, oldest first. The
	// private key bytes are returned as they were put (the caller encrypts).
	SigningKeys(ctx context.Context) ([]SigningKey, error)
	// AddSigningKey stores a new key version. A version that exists already
	// is an error wrapping ErrExists (another node added it first; re-read
	// and use that one).
	AddSigningKey(ctx context.Context, k SigningKey) error

	// ClockOffset returns the virtual service clock's offset from wall time
	// (0 when never set). Every node on one database reads the same one.
	ClockOffset(ctx context.Context) (time.Duration, error)
	// SetClockOffset stores the virtual service clock's offset.
	SetClockOffset(ctx context.Context, d time.Duration) error

	// AddFaultRule stores a new fault rule (CheckFaultRule holds; its
	// Remaining is stored as given). A rule with the same ID is ErrExists.
	AddFaultRule(ctx context.Context, r FaultRule) error
	// FaultRule returns the fault rule with this id.
	FaultRule(ctx context.Context, id string) (FaultRule, error)
	// FaultRules returns every fault rule (expired and spent ones too),
	// ordered by CreatedAt then ID.
	FaultRules(ctx context.Context) ([]FaultRule, error)
	// DeleteFaultRule deletes the fault rule with this id (ErrNotFound
	// when there is none).
	DeleteFaultRule(ctx context.Context, id string) error
	// DeleteFaultRules deletes every fault rule and returns how many.
	DeleteFaultRules(ctx context.Context) (int, error)
	// TakeFaultCount takes up to n from the Remaining count of the rule
	// with this id, atomically (concurrent takes on every node together
	// never take more than the count), and returns how many it took: 0
	// when the rule is spent or gone.
	TakeFaultCount(ctx context.Context, id string, n int64) (int64, error)

	// PutAuditEvents stores audit events in one transaction: all or none.
	// An event whose EventID is stored already is skipped, so a batch can
	// be retried. Events must have an EventID; RequestParameters and
	// ResponseElements must be valid JSON or empty (audit.Redact writes
	// them so).
	PutAuditEvents(ctx context.Context, events []AuditEvent) error
	// AuditEvents returns one page of the events matching f, in f's order
	// (EventTime, then EventID), at most f.Limit of them; Next continues
	// it. A malformed f.Cursor is an error wrapping ErrInvalidCursor.
	AuditEvents(ctx context.Context, f AuditFilter) (AuditPage, error)
	// PurgeAuditEvents deletes at most limit of the oldest events with
	// EventTime before before, in one short transaction, and returns how
	// many it deleted; callers repeat until it returns fewer than limit.
	PurgeAuditEvents(ctx context.Context, before time.Time, limit int) (int, error)

	// Close releases the database. Calls after Close fail.
	Close() error
}
