package service

import (
	"context"
	"errors"
	"strconv"

	"github.com/mpmeter/mpmeter"
)

// BatchMeterUsage meters usage of one SaaS product for up to 25 customers.
//
// The whole request fails (nothing stored) when the product is not the
// caller's SaaS product, a dimension is not the product's, a timestamp is
// outside the window, a customer identifier or license does not exist or does
// not match, or allocations are wrong. Otherwise each record gets a status:
// Success (stored now, or the same record stored before: its original
// MeteringRecordId), CustomerNotSubscribed (no active subscription), or
// DuplicateRecord (the same customer, dimension and hour was metered with
// another quantity). The stored records of one call are committed together.
func (s *Service) BatchMeterUsage(ctx context.Context, caller mpmeter.Caller, in *mpmeter.BatchMeterUsageInput) (*mpmeter.BatchMeterUsageOutput, error) {
	plan, err := s.planBatch(ctx, caller, in)
	if err != nil {
		return nil, err
	}
	var outcomes []mpmeter.MeteringOutcome
	if len(plan.toStore) > 0 {
		if outcomes, err = s.store.RecordUsage(ctx, plan.toStore, nil); err != nil {
			return nil, err
		}
	}
	out, counts := plan.answer(in, outcomes)
	s.observe(mpmeter.OpBatchMeterUsage, OutcomeAccepted, counts.accepted)
	s.observe(mpmeter.OpBatchMeterUsage, OutcomeIdentical, counts.identical)
	s.observe(mpmeter.OpBatchMeterUsage, OutcomeDuplicate, counts.duplicate)
	s.observe(mpmeter.OpBatchMeterUsage, OutcomeNotSubscribed, counts.notSubscribed)
	return out, nil
}

// batchPlan is what a BatchMeterUsage that passed every whole-request check
// stores: the records of subscribed customers, and for each usage record
// the index of its record in toStore, or -1 when its customer is not
// subscribed.
type batchPlan struct {
	toStore []mpmeter.MeteringRecord
	stored  []int
}

// batchCounts are a batch's records by outcome.
type batchCounts struct {
	accepted, identical, duplicate, notSubscribed int
}

// planBatch applies the whole-request checks, for every record before any
// is stored, so that a batch with one bad record stores nothing, and builds
// the records to store.
func (s *Service) planBatch(ctx context.Context, caller mpmeter.Caller, in *mpmeter.BatchMeterUsageInput) (batchPlan, error) {
	now := s.clock.Now()
	product, err := s.batchProduct(ctx, caller, in)
	if err != nil {
		return batchPlan{}, err
	}
	for i := range in.UsageRecords {
		r := &in.UsageRecords[i]
		if err := s.checkTimestamp(now, r.Timestamp.Time); err != nil {
			return batchPlan{}, err
		}
		if !product.HasDimension(*r.Dimension) {
			return batchPlan{}, invalidUsageDimension(*r.Dimension, product)
		}
	}
	// The customers named by identifier, in one round trip.
	ids := make([]string, 0, len(in.UsageRecords))
	for i := range in.UsageRecords {
		if id := str(in.UsageRecords[i].CustomerIdentifier); id != "" {
			ids = append(ids, id)
		}
	}
	byCustomer, err := s.store.SubscriptionsByCustomers(ctx, product.Code, ids)
	if err != nil {
		return batchPlan{}, err
	}
	plan := batchPlan{
		toStore: make([]mpmeter.MeteringRecord, 0, len(in.UsageRecords)),
		stored:  make([]int, len(in.UsageRecords)),
	}
	for i := range in.UsageRecords {
		r := &in.UsageRecords[i]
		quantity := quantityOf(r.Quantity)
		allocs, err := allocations(r.UsageAllocations, quantity)
		if err != nil {
			return batchPlan{}, err
		}
		sub, subscribed, err := s.batchSubscription(ctx, product, r, byCustomer)
		if err != nil {
			return batchPlan{}, err
		}
		if !subscribed {
			plan.stored[i] = -1
			continue
		}
		plan.stored[i] = len(plan.toStore)
		plan.toStore = append(plan.toStore, mpmeter.MeteringRecord{
			MeteringRecordID:   newRecordID(),
			Kind:               mpmeter.UsageBatch,
			ProductCode:        product.Code,
			SellerAccountID:    product.SellerAccountID,
			CustomerAccountID:  sub.AccountID,
			CustomerIdentifier: sub.CustomerIdentifier,
			LicenseArn:         sub.LicenseArn,
			Dimension:          *r.Dimension,
			Timestamp:          r.Timestamp.Time,
			Quantity:           quantity,
			Allocations:        allocs,
			// One slot per agreement, dimension and hour: the customer may
			// be named by identifier or by account, it is the same slot.
			DedupKey:    "batch|" + sub.LicenseArn + "|" + *r.Dimension + "|" + strconv.FormatInt(hourOf(r.Timestamp.Time), 10),
			Fingerprint: fingerprint(quantity, allocs),
			CreatedAt:   now,
		})
	}
	return plan, nil
}

// answer turns the store's outcomes (one per plan.toStore) into the
// response: Success with the record's MeteringRecordId (the original one for
// the same record again), DuplicateRecord, or CustomerNotSubscribed.
func (plan batchPlan) answer(in *mpmeter.BatchMeterUsageInput, outcomes []mpmeter.MeteringOutcome) (*mpmeter.BatchMeterUsageOutput, batchCounts) {
	out := &mpmeter.BatchMeterUsageOutput{
		Results:            make([]mpmeter.UsageRecordResult, len(in.UsageRecords)),
		UnprocessedRecords: []mpmeter.UsageRecord{},
	}
	var counts batchCounts
	for i := range in.UsageRecords {
		res := &out.Results[i]
		res.UsageRecord = &in.UsageRecords[i]
		status := mpmeter.UsageRecordResultStatusSuccess
		if j := plan.stored[i]; j < 0 {
			counts.notSubscribed++
			status = mpmeter.UsageRecordResultStatusCustomerNotSubscribed
		} else {
			o := outcomes[j]
			switch outcomeOf(o, plan.toStore[j]) {
			case OutcomeAccepted:
				counts.accepted++
			case OutcomeIdentical:
				counts.identical++
			default:
				counts.duplicate++
				status = mpmeter.UsageRecordResultStatusDuplicateRecord
			}
			if status == mpmeter.UsageRecordResultStatusSuccess {
				id := o.Record.MeteringRecordID
				res.MeteringRecordId = &id
			}
		}
		res.Status = &status
	}
	return out, counts
}

// batchProduct finds the product the batch meters: by ProductCode, or (in
// the newer model, where ProductCode is optional) by the records' licenses.
func (s *Service) batchProduct(ctx context.Context, caller mpmeter.Caller, in *mpmeter.BatchMeterUsageInput) (mpmeter.Product, error) {
	code := str(in.ProductCode)
	if code == "" {
		for i := range in.UsageRecords {
			// Validation saw to it that every record has a LicenseArn.
			arn := str(in.UsageRecords[i].LicenseArn)
			sub, err := s.store.Subscription(ctx, arn)
			if errors.Is(err, mpmeter.ErrNotFound) {
				return mpmeter.Product{}, invalidLicense(arn)
			} else if err != nil {
				return mpmeter.Product{}, err
			}
			if code == "" {
				code = sub.ProductCode
			} else if sub.ProductCode != code {
				return mpmeter.Product{}, mpmeter.Errorf(mpmeter.CodeInvalidLicense, "All usage records of one request must be for one product: license %s is for another product.", arn)
			}
		}
	}
	p, err := s.product(ctx, code)
	if err != nil {
		return p, err
	}
	if p.SellerAccountID != caller.AccountID || p.Type != mpmeter.ProductSaaS {
		if str(in.ProductCode) == "" {
			return p, mpmeter.Errorf(mpmeter.CodeInvalidLicense, "The license is not for a SaaS product of the calling seller.")
		}
		return p, invalidProductCode()
	}
	return p, nil
}

// batchSubscription finds the agreement a record meters and whether it is
// active. Customer identifiers that do not exist and licenses that do not
// match fail the whole request; a customer without an active agreement does
// not (CustomerNotSubscribed).
func (s *Service) batchSubscription(ctx context.Context, p mpmeter.Product, r *mpmeter.UsageRecord, byCustomer map[string]mpmeter.Subscription) (mpmeter.Subscription, bool, error) {
	if p.ConcurrentAgreements {
		if err := checkAgreementRecord(p, r); err != nil {
			return mpmeter.Subscription{}, false, err
		}
	}
	arn := str(r.LicenseArn)
	if id := str(r.CustomerIdentifier); id != "" {
		sub, ok := byCustomer[id]
		if !ok {
			return sub, false, mpmeter.Errorf(mpmeter.CodeInvalidCustomerID, "You have metered usage for CustomerIdentifier %s, which does not exist for product %s.", id, p.Code)
		}
		if arn != "" && arn != sub.LicenseArn {
			return sub, false, invalidLicense(arn)
		}
		return sub, sub.MetersAt(s.clock.Now()), nil
	}
	account := str(r.CustomerAWSAccountId)
	if arn != "" {
		sub, err := s.store.Subscription(ctx, arn)
		if errors.Is(err, mpmeter.ErrNotFound) || (err == nil && (sub.AccountID != account || sub.ProductCode != p.Code)) {
			return sub, false, invalidLicense(arn)
		} else if err != nil {
			return sub, false, err
		}
		return sub, sub.MetersAt(s.clock.Now()), nil
	}
	subs, err := s.store.SubscriptionsOf(ctx, account, p.Code)
	if err != nil {
		return mpmeter.Subscription{}, false, err
	}
	now := s.clock.Now()
	return pickSubscription(subs, func(sub mpmeter.Subscription) bool { return sub.MetersAt(now) })
}

// pickSubscription chooses among an account's agreements for one product
// when the caller did not name a license: the newest one that meters (for
// BatchMeterUsage: active, or cancelled within its final hour; otherwise
// active), else the newest (which then does not).
func pickSubscription(subs []mpmeter.Subscription, meters func(mpmeter.Subscription) bool) (mpmeter.Subscription, bool, error) {
	if len(subs) == 0 {
		return mpmeter.Subscription{}, false, nil
	}
	for i := len(subs) - 1; i >= 0; i-- {
		if meters(subs[i]) {
			return subs[i], true, nil
		}
	}
	return subs[len(subs)-1], false, nil
}
