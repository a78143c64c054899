// Package service holds the rules of the Metering API (who may meter which
// product, subscription and license checks, timestamp windows, hourly
// deduplication, idempotency and registration tokens) and of the
// Entitlement Service (GetEntitlements, entitlements.go). It reads time only from
// its Clock and talks only to the Store.
package service

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/mpmeter/mpmeter"
)

// Store is the part of mpmeter.Store the rules read and write.
type Store interface {
	Product(ctx context.Context, code string) (mpmeter.Product, error)
	Subscription(ctx context.Context, licenseArn string) (mpmeter.Subscription, error)
	SubscriptionsByCustomers(ctx context.Context, productCode string, ids []string) (map[string]mpmeter.Subscription, error)
	SubscriptionsOf(ctx context.Context, accountID, productCode string) ([]mpmeter.Subscription, error)
	RegistrationToken(ctx context.Context, token string) (mpmeter.RegistrationToken, error)
	RecordUsage(ctx context.Context, recs []mpmeter.MeteringRecord, tok *mpmeter.IdempotencyToken) ([]mpmeter.MeteringOutcome, error)
	PreviewUsage(ctx context.Context, rec mpmeter.MeteringRecord, tok *mpmeter.IdempotencyToken) (mpmeter.MeteringOutcome, error)
	Usage(ctx context.Context, f mpmeter.UsageFilter) ([]mpmeter.MeteringRecord, error)
	Entitlements(ctx context.Context, f mpmeter.EntitlementFilter) ([]mpmeter.Entitlement, error)
}

// Config is what a Service needs and its tunable rules. Zero durations mean
// the defaults; a negative UsageWindow or ClientTokenTTL is an error
// (a negative FutureTolerance means none: NoFutureTolerance).
type Config struct {
	// Store holds the marketplace and the usage. Required.
	Store Store
	// Clock is the service clock every rule reads. Required.
	Clock mpmeter.Clock
	// Signer signs RegisterUsage entitlement tokens; without one,
	// RegisterUsage fails as an internal error.
	Signer mpmeter.TokenSigner
	// Observer, when set, hears how many records each call metered.
	Observer Observer

	// UsageWindow is how long after the event a usage record is accepted: a
	// timestamp ts is refused once now-ts >= UsageWindow. The API reference
	// and the service model say 6 hours (the default); AWS's newer SDK
	// documentation says 24 hours, which is this set to 24h.
	//
	// Whatever the window, usage of a calendar month (UTC) is refused from
	// 06:00:00 UTC on the first day of the next month (MonthEndGrace): at
	// 05:59:59 last month's record is accepted, at 06:00:00 it is not. With
	// a window of 6 hours or less the window refuses such a record already,
	// so the cut-off only binds for longer windows, as in AWS's newer rule.
	UsageWindow time.Duration
	// FutureTolerance is how far ahead of the service clock a usage
	// timestamp may be. 0 means DefaultFutureTolerance; NoFutureTolerance
	// (any negative value) means none.
	FutureTolerance time.Duration
	// ClientTokenTTL is how long a MeterUsage ClientToken is remembered.
	ClientTokenTTL time.Duration
}

// Defaults.
const (
	DefaultUsageWindow    = 6 * time.Hour
	DefaultClientTokenTTL = 24 * time.Hour
	// DefaultFutureTolerance lets through a usage timestamp up to 15
	// minutes ahead of the service clock: as far as SigV4 lets a client's
	// clock run ahead (the default --max-skew, AWS's 15 minutes). SDKs stamp
	// usage with their host's clock (botocore truncates to whole seconds,
	// aws-sdk-go v1/v2 and JavaScript v3 send milliseconds), so a correct
	// client on another host is ahead by its clock's offset, and a client
	// whose signature is accepted is never more than this ahead.
	DefaultFutureTolerance = 15 * time.Minute
	// NoFutureTolerance makes FutureTolerance none: a timestamp after the
	// service clock's now is refused.
	NoFutureTolerance time.Duration = -1
	// MonthEndGrace is how long into a month the previous month's usage is
	// still accepted.
	MonthEndGrace = 6 * time.Hour
)

// Service implements mpmeter.MeteringService.
type Service struct {
	store    Store
	clock    mpmeter.Clock
	cfg      Config
	signer   mpmeter.TokenSigner
	observer Observer
}

// Observer hears how many records each call metered, by outcome:
// accepted (stored now), identical (stored before: the same record again),
// duplicate (another quantity for a metered slot), not_subscribed.
type Observer interface {
	ObserveRecords(op, outcome string, n int)
}

// Record outcomes for Observer.
const (
	OutcomeAccepted      = "accepted"
	OutcomeIdentical     = "identical"
	OutcomeDuplicate     = "duplicate"
	OutcomeNotSubscribed = "not_subscribed"
)

// observe reports n records of one outcome.
func (s *Service) observe(op, outcome string, n int) {
	if s.observer != nil && n > 0 {
		s.observer.ObserveRecords(op, outcome, n)
	}
}

// outcomeOf names what happened to one record the store was given.
func outcomeOf(o mpmeter.MeteringOutcome, rec mpmeter.MeteringRecord) string {
	switch {
	case o.Created:
		return OutcomeAccepted
	case sameRecord(o.Record, rec):
		return OutcomeIdentical
	}
	return OutcomeDuplicate
}

// New returns a Service, or an error naming what cfg lacks.
func New(cfg Config) (*Service, error) {
	switch {
	case cfg.Store == nil:
		return nil, errors.New("service: Config.Store is required")
	case cfg.Clock == nil:
		return nil, errors.New("service: Config.Clock is required")
	case cfg.UsageWindow < 0, cfg.ClientTokenTTL < 0:
		return nil, fmt.Errorf("service: negative duration in Config (UsageWindow %s, ClientTokenTTL %s)", cfg.UsageWindow, cfg.ClientTokenTTL)
	}
	if cfg.UsageWindow == 0 {
		cfg.UsageWindow = DefaultUsageWindow
	}
	if cfg.ClientTokenTTL == 0 {
		cfg.ClientTokenTTL = DefaultClientTokenTTL
	}
	switch {
	case cfg.FutureTolerance == 0:
		cfg.FutureTolerance = DefaultFutureTolerance
	case cfg.FutureTolerance < 0:
		cfg.FutureTolerance = 0
	}
	return &Service{store: cfg.Store, clock: cfg.Clock, cfg: cfg, signer: cfg.Signer, observer: cfg.Observer}, nil
}

var _ mpmeter.MeteringService = (*Service)(nil)

// UsageWindow is the usage window in force (Config.UsageWindow, the default
// applied): a call stores no usage stamped this long before its now.
func (s *Service) UsageWindow() time.Duration { return s.cfg.UsageWindow }

// FutureTolerance is how far ahead of the service clock a usage timestamp
// may be (Config.FutureTolerance, the default applied; 0 for none).
func (s *Service) FutureTolerance() time.Duration { return s.cfg.FutureTolerance }

// invalidProductCode is the answer for a product that does not exist, is not
// the caller's, or is not of the kind the operation meters: AWS does not tell
// them apart, so a caller cannot probe other sellers' product codes.
func invalidProductCode() error {
	return mpmeter.Errorf(mpmeter.CodeInvalidProductCode, "The product code passed does not match the product code used for publishing the product.")
}

// The answers several operations share, written once.

func invalidUsageDimension(dimension string, p mpmeter.Product) error {
	return mpmeter.Errorf(mpmeter.CodeInvalidUsageDimension, "The usage dimension %q does not match one of the UsageDimensions associated with product %s.", dimension, p.Code)
}

func customerNotEntitled(account, product string) error {
	return mpmeter.Errorf(mpmeter.CodeCustomerNotEntitled, "Account %s does not have a valid subscription for product %s.", account, product)
}

func invalidLicense(arn string) error {
	return mpmeter.Errorf(mpmeter.CodeInvalidLicense, "The LicenseArn %s is not valid for this customer and product.", arn)
}

func invalidToken() error {
	return mpmeter.Errorf(mpmeter.CodeInvalidToken, "Registration token is invalid.")
}

// product looks up a product for an operation.
func (s *Service) product(ctx context.Context, code string) (mpmeter.Product, error) {
	p, err := s.store.Product(ctx, code)
	if errors.Is(err, mpmeter.ErrNotFound) {
		return p, invalidProductCode()
	}
	return p, err
}

// checkTimestamp applies the usage window and the month-end cut-off to one
// usage timestamp (see Config.UsageWindow).
func (s *Service) checkTimestamp(now, ts time.Time) error {
	latest := now.Add(s.cfg.FutureTolerance)
	if ts.After(latest) {
		return mpmeter.Errorf(mpmeter.CodeTimestampOutOfBounds,
			"The timestamp value %s is out of the allowed range: it is more than %s in the future (latest accepted: %s).",
			ts.UTC().Format(time.RFC3339), s.cfg.FutureTolerance, latest.UTC().Format(time.RFC3339))
	}
	if now.Sub(ts) >= s.cfg.UsageWindow {
		return mpmeter.Errorf(mpmeter.CodeTimestampOutOfBounds,
			"The timestamp value %s is out of the allowed range: usage records are not accepted %s or more after the event (earliest accepted: after %s).",
			ts.UTC().Format(time.RFC3339), s.cfg.UsageWindow, now.Add(-s.cfg.UsageWindow).UTC().Format(time.RFC3339))
	}
	if cutoff := monthCutoff(ts); !now.Before(cutoff) {
		return mpmeter.Errorf(mpmeter.CodeTimestampOutOfBounds,
			"The timestamp value %s is out of the allowed range: usage of %s was accepted until %s.",
			ts.UTC().Format(time.RFC3339), ts.UTC().Format("January 2006"), cutoff.Format(time.RFC3339))
	}
	return nil
}

// monthCutoff is when usage at ts stops being accepted whatever the window:
// MonthEndGrace into the first day of the month (UTC) after ts's.
func monthCutoff(ts time.Time) time.Time {
	u := ts.UTC()
	return time.Date(u.Year(), u.Month()+1, 1, 0, 0, 0, 0, time.UTC).Add(MonthEndGrace)
}

// allocations checks usage allocations against the record's quantity and
// returns them in domain form.
func allocations(in []mpmeter.UsageAllocation, quantity int64) ([]mpmeter.Allocation, error) {
	if in == nil {
		return nil, nil
	}
	var sum int64
	out := make([]mpmeter.Allocation, len(in))
	seenSets := make(map[string]bool, len(in))
	for i, a := range in {
		out[i].Quantity = *a.AllocatedUsageQuantity
		sum += out[i].Quantity
		keys := make(map[string]bool, len(a.Tags))
		for _, t := range a.Tags {
			if keys[*t.Key] {
				return nil, mpmeter.Errorf(mpmeter.CodeInvalidTag, "Tag keys must be unique within a usage allocation: %q appears more than once.", *t.Key)
			}
			keys[*t.Key] = true
			out[i].Tags = append(out[i].Tags, mpmeter.AllocationTag{Key: *t.Key, Value: *t.Value})
		}
		set := tagSetKey(out[i].Tags)
		if seenSets[set] {
			return nil, mpmeter.Errorf(mpmeter.CodeInvalidUsageAllocations, "Each usage allocation must have a unique set of tags.")
		}
		seenSets[set] = true
	}
	if sum != quantity {
		return nil, mpmeter.Errorf(mpmeter.CodeInvalidUsageAllocations, "Sum of allocated usage quantities (%d) is not equal to the usage quantity (%d).", sum, quantity)
	}
	return out, nil
}

// hourOf is the dedup hour of a usage timestamp.
func hourOf(t time.Time) int64 { return t.Truncate(time.Hour).Unix() }

// newRecordID returns a MeteringRecordId: a UUID, as AWS's are. Version 7
// (time-ordered) rather than 4: consecutive ids sort together, so the store's
// unique index on them grows at its end instead of writing a random page
// per record.
func newRecordID() string { return uuid.Must(uuid.NewV7()).String() }

func str(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

func quantityOf(p *int64) int64 {
	if p == nil {
		return 0
	}
	return *p
}
