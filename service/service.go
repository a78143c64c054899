// Package service holds the rules of the Metering API: who may meter which
// product, subscription and license checks, timestamp windows, hourly
// deduplication, idempotency and registration tokens. It reads time only from
// its Clock and talks only to the Store.
package service

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/mpmeter/mpmeter"
)

// Config holds the service's tunable rules. Zero values mean the defaults.
type Config struct {
	// UsageWindow is how far back a usage timestamp may be: AWS accepts
	// records up to 6 hours after the event.
	UsageWindow time.Duration
	// FutureTolerance is how far ahead of the service clock a usage
	// timestamp may be. AWS accepts none; a little helps clients whose clock
	// runs ahead of a virtual service clock.
	FutureTolerance time.Duration
	// ClientTokenTTL is how long a MeterUsage ClientToken is remembered.
	ClientTokenTTL time.Duration
}

// Defaults.
const (
	DefaultUsageWindow    = 6 * time.Hour
	DefaultClientTokenTTL = 24 * time.Hour
)

// Service implements mpmeter.MeteringService.
type Service struct {
	store    mpmeter.Store
	clock    mpmeter.Clock
	cfg      Config
	signer   TokenSigner
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

// SetObserver makes o hear about metered records.
func (s *Service) SetObserver(o Observer) { s.observer = o }

// observe reports n records of one outcome.
func (s *Service) observe(op, outcome string, n int) {
	if s.observer != nil && n > 0 {
		s.observer.ObserveRecords(op, outcome, n)
	}
}

// outcomeOf names what happened to one record the store was given.
func outcomeOf(o mpmeter.MeteringOutcome, fingerprint string) string {
	switch {
	case o.Created:
		return OutcomeAccepted
	case o.Record.Fingerprint == fingerprint:
		return OutcomeIdentical
	}
	return OutcomeDuplicate
}

// TokenSigner signs RegisterUsage entitlement tokens (package keys).
type TokenSigner interface {
	// Sign returns a JWT over claims signed with key version, and the time
	// the version was rotated out (zero while it is current).
	Sign(ctx context.Context, version int, claims map[string]any) (token string, rotatedAt time.Time, err error)
}

// New returns a Service. signer may be nil until RegisterUsage is needed.
func New(store mpmeter.Store, clock mpmeter.Clock, cfg Config, signer TokenSigner) *Service {
	if cfg.UsageWindow <= 0 {
		cfg.UsageWindow = DefaultUsageWindow
	}
	if cfg.ClientTokenTTL <= 0 {
		cfg.ClientTokenTTL = DefaultClientTokenTTL
	}
	return &Service{store: store, clock: clock, cfg: cfg, signer: signer}
}

var _ mpmeter.MeteringService = (*Service)(nil)

// invalidProductCode is the answer for a product that does not exist, is not
// the caller's, or is not of the kind the operation meters: AWS does not tell
// them apart, so a caller cannot probe other sellers' product codes.
func invalidProductCode() error {
	return mpmeter.Errorf(mpmeter.CodeInvalidProductCode, "The product code passed does not match the product code used for publishing the product.")
}

// product looks up a product for an operation.
func (s *Service) product(ctx context.Context, code string) (mpmeter.Product, error) {
	p, err := s.store.Product(ctx, code)
	if errors.Is(err, mpmeter.ErrNotFound) {
		return p, invalidProductCode()
	}
	return p, err
}

// checkTimestamp applies the usage window to one usage timestamp.
func (s *Service) checkTimestamp(now, ts time.Time) error {
	earliest := now.Add(-s.cfg.UsageWindow)
	latest := now.Add(s.cfg.FutureTolerance)
	if ts.Before(earliest) || ts.After(latest) {
		return mpmeter.Errorf(mpmeter.CodeTimestampOutOfBounds,
			"The timestamp value %s is out of the allowed range [%s, %s]: usage is accepted up to %s after the event and not in the future.",
			ts.UTC().Format(time.RFC3339), earliest.UTC().Format(time.RFC3339), latest.UTC().Format(time.RFC3339), s.cfg.UsageWindow)
	}
	return nil
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

// tagSetKey names a set of tags independent of order.
func tagSetKey(tags []mpmeter.AllocationTag) string {
	sorted := slices.Clone(tags)
	slices.SortFunc(sorted, func(a, b mpmeter.AllocationTag) int { return strings.Compare(a.Key, b.Key) })
	b, _ := json.Marshal(sorted)
	return string(b)
}

// fingerprint is what makes two records in one dedup slot "the same record
// again": the quantity and the allocations.
func fingerprint(quantity int64, allocs []mpmeter.Allocation) string {
	if len(allocs) == 0 {
		return fmt.Sprintf("q=%d", quantity)
	}
	b, _ := json.Marshal(allocs)
	sum := sha256.Sum256(b)
	return fmt.Sprintf("q=%d;a=%s", quantity, hex.EncodeToString(sum[:12]))
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
