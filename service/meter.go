package service

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/mpmeter/mpmeter"
)

// workloadOf returns the calling workload, or the error an operation answers
// when the caller is not one.
func workloadOf(caller mpmeter.Caller, op string) (*mpmeter.Workload, error) {
	if caller.Workload == nil {
		return nil, mpmeter.Errorf(mpmeter.CodeAccessDenied, "%s must be called with the credentials of a workload (an EC2 instance, ECS task, EKS pod, Fargate task or AgentCore runtime); access key %s belongs to no workload.", op, caller.AccessKeyID)
	}
	return caller.Workload, nil
}

// entitled reports whether account holds an active subscription to product.
func (s *Service) entitled(ctx context.Context, account, product string) (bool, error) {
	subs, err := s.store.SubscriptionsOf(ctx, account, product)
	if err != nil {
		return false, err
	}
	_, active, _ := pickSubscription(subs, mpmeter.Subscription.Active)
	return active, nil
}

// MeterUsage meters one dimension of an AMI or container product for the
// calling workload's hour. The same request again answers the same
// MeteringRecordId; another quantity for that workload, dimension and hour is
// DuplicateRequestException (AgentCore runtimes may report many times an
// hour: each call is its own record). A ClientToken makes a retry answer the
// first answer; reused with other parameters it is IdempotencyConflictException.
// A DryRun makes every check of the real call, the stored hour and token
// included, writes nothing, and answers MeteringRecordId DryRunRecordID.
func (s *Service) MeterUsage(ctx context.Context, caller mpmeter.Caller, in *mpmeter.MeterUsageInput) (*mpmeter.MeterUsageOutput, error) {
	now := s.clock.Now()
	w, err := workloadOf(caller, mpmeter.OpMeterUsage)
	if err != nil {
		return nil, err
	}
	if caller.Region != w.Region {
		return nil, mpmeter.Errorf(mpmeter.CodeInvalidEndpointRegion, "The endpoint region %s differs from the region %s of workload %s: the Region of the Metering Service endpoint and the AWS Region of the resource must match.", caller.Region, w.Region, w.ID)
	}
	p, err := s.product(ctx, *in.ProductCode)
	if err != nil {
		return nil, err
	}
	if p.Type != mpmeter.ProductAMI && p.Type != mpmeter.ProductContainer {
		return nil, invalidProductCode()
	}
	if !p.HasDimension(*in.UsageDimension) {
		return nil, invalidUsageDimension(*in.UsageDimension, p)
	}
	ts := in.Timestamp.Time
	if err := s.checkTimestamp(now, ts); err != nil {
		return nil, err
	}
	quantity := quantityOf(in.UsageQuantity)
	allocs, err := allocations(in.UsageAllocations, quantity)
	if err != nil {
		return nil, err
	}
	ok, err := s.entitled(ctx, caller.AccountID, p.Code)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, customerNotEntitled(caller.AccountID, p.Code)
	}
	rec := mpmeter.MeteringRecord{
		MeteringRecordID:  newRecordID(),
		Kind:              mpmeter.UsageMeter,
		ProductCode:       p.Code,
		SellerAccountID:   p.SellerAccountID,
		CustomerAccountID: caller.AccountID,
		WorkloadID:        w.ID,
		Dimension:         *in.UsageDimension,
		Timestamp:         ts,
		Quantity:          quantity,
		Allocations:       allocs,
		Fingerprint:       fingerprint(quantity, allocs),
		CreatedAt:         now,
	}
	if w.Platform != mpmeter.PlatformAgentCore {
		rec.DedupKey = "meter|" + caller.AccountID + "|" + w.ID + "|" + p.Code + "|" + rec.Dimension + "|" + strconv.FormatInt(hourOf(ts), 10)
	}
	var tok *mpmeter.IdempotencyToken
	if ct := str(in.ClientToken); ct != "" {
		tok = &mpmeter.IdempotencyToken{
			Scope:       "MeterUsage|" + caller.AccountID + "|" + w.ID,
			Token:       ct,
			Fingerprint: meterRequestFingerprint(*in.ProductCode, ts, *in.UsageDimension, quantity, allocs),
			ExpiresAt:   now.Add(s.cfg.ClientTokenTTL),
		}
	}
	dryRun := in.DryRun != nil && *in.DryRun
	var outcomes []mpmeter.MeteringOutcome
	if dryRun {
		// Every check of a real call, the stored slot and token included,
		// but nothing is written.
		var o mpmeter.MeteringOutcome
		o, err = s.store.PreviewUsage(ctx, rec, tok)
		outcomes = []mpmeter.MeteringOutcome{o}
	} else {
		outcomes, err = s.store.RecordUsage(ctx, []mpmeter.MeteringRecord{rec}, tok)
	}
	if errors.Is(err, mpmeter.ErrIdempotencyConflict) {
		return nil, mpmeter.Errorf(mpmeter.CodeIdempotencyConflict, "ClientToken %q was already used with different parameters.", *in.ClientToken)
	} else if err != nil {
		return nil, err
	}
	o := outcomes[0]
	outcome := outcomeOf(o, rec)
	if !dryRun {
		s.observe(mpmeter.OpMeterUsage, outcome, 1)
	}
	if outcome == OutcomeDuplicate {
		return nil, mpmeter.Errorf(mpmeter.CodeDuplicateRequest, "A metering record has already been emitted by workload %s for dimension %q in the hour of %s with a different usageQuantity.", w.ID, rec.Dimension, ts.Truncate(time.Hour).UTC().Format(time.RFC3339))
	}
	if dryRun {
		id := DryRunRecordID
		return &mpmeter.MeterUsageOutput{MeteringRecordId: &id}, nil
	}
	id := o.Record.MeteringRecordID
	return &mpmeter.MeterUsageOutput{MeteringRecordId: &id}, nil
}

// DryRunRecordID is the MeteringRecordId of a DryRun that would have
// succeeded: AWS answers 200 {"MeteringRecordId": "DryRunOperation"} and
// stores nothing (spec/PROTOCOL.md).
const DryRunRecordID = "DryRunOperation"
