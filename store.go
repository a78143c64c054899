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
//   - A context error when ctx ends first; nothing was committed.
//   - Any other error means the database failed (unreachable, disk full,
//     corrupt, a constraint the caller should have prevented). Callers treat
//     it as internal and tell the client to retry: nothing of the failed call
//     was committed, or — when a PostgreSQL connection drops during COMMIT,
//     where the outcome cannot be known — it was committed and a retry finds
//     it (dedup keys and idempotency tokens make every write safe to retry).
//     A store never reports success for a write it did not commit durably.
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

	// PutAccount creates or updates an account by id.
	PutAccount(ctx context.Context, a Account) error
	// PutAccessKey creates or updates an access key by id. Its account must
	// exist.
	PutAccessKey(ctx context.Context, k AccessKey) error
	// PutProduct creates or updates a product by code, replacing its
	// dimensions. Its seller account must exist.
	PutProduct(ctx context.Context, p Product) error
	// PutSubscription creates or updates a subscription by license ARN. A
	// CustomerIdentifier already used by another subscription of the same
	// product is an error. CreatedAt is kept from the first put.
	PutSubscription(ctx context.Context, s Subscription) error
	// PutRegistrationToken creates or updates a registration token by value.
	PutRegistrationToken(ctx context.Context, t RegistrationToken) error

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
	// A malformed cursor is an error.
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

	// Close releases the database. Calls after Close fail.
	Close() error
}
