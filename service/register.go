package service

import (
	"context"
	"errors"
	"time"

	"github.com/mpmeter/mpmeter"
)

// RegisterUsage entitles a paid container at launch and starts its metering:
// it answers a JWT signed with the requested public key version. Only the
// first registration of a workload checks the subscription: a task or pod
// that registered keeps working after the buyer unsubscribes, as AWS does.
func (s *Service) RegisterUsage(ctx context.Context, caller mpmeter.Caller, in *mpmeter.RegisterUsageInput) (*mpmeter.RegisterUsageOutput, error) {
	now := s.clock.Now()
	w := caller.Workload
	if w == nil || (w.Platform != mpmeter.PlatformECS && w.Platform != mpmeter.PlatformEKS && w.Platform != mpmeter.PlatformFargate) {
		platform := "a non-workload credential"
		if w != nil {
			platform = w.Platform
		}
		return nil, mpmeter.Errorf(mpmeter.CodePlatformNotSupported, "AWS Marketplace does not support metering usage from the underlying platform (%s). Currently, Amazon ECS, Amazon EKS, and AWS Fargate are supported.", platform)
	}
	if caller.Region != w.Region {
		return nil, mpmeter.Errorf(mpmeter.CodeInvalidRegion, "RegisterUsage must be called in the same AWS Region the task was launched in: called in %s, workload %s runs in %s.", caller.Region, w.ID, w.Region)
	}
	p, err := s.product(ctx, *in.ProductCode)
	if err != nil {
		return nil, err
	}
	if p.Type != mpmeter.ProductContainer {
		return nil, invalidProductCode()
	}
	rec := mpmeter.MeteringRecord{
		MeteringRecordID:  newRecordID(),
		Kind:              mpmeter.UsageRegister,
		ProductCode:       p.Code,
		SellerAccountID:   p.SellerAccountID,
		CustomerAccountID: caller.AccountID,
		WorkloadID:        w.ID,
		Dimension:         "registration",
		Timestamp:         now,
		Quantity:          1,
		// A workload registers a product once; later calls (container
		// restarts in the same task) find that registration.
		DedupKey:    "register|" + caller.AccountID + "|" + w.ID + "|" + p.Code,
		Fingerprint: "registration",
		CreatedAt:   now,
	}
	registered, err := s.registeredBefore(ctx, rec)
	if err != nil {
		return nil, err
	}
	if !registered {
		ok, err := s.entitled(ctx, caller.AccountID, p.Code)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, customerNotEntitled(caller.AccountID, p.Code)
		}
	}
	if s.signer == nil {
		return nil, errors.New("RegisterUsage: no token signer configured")
	}
	claims := map[string]any{
		"productCode":       p.Code,
		"publicKeyVersion":  *in.PublicKeyVersion,
		"iat":               now.Unix(),
		"customerAccountId": caller.AccountID,
		// The API reference's illustration uses PascalCase names; AWS's own
		// Java verification sample reads camelCase. Both are carried.
		"ProductCode":      p.Code,
		"PublicKeyVersion": *in.PublicKeyVersion,
	}
	if in.Nonce != nil {
		claims["nonce"] = *in.Nonce
		claims["Nonce"] = *in.Nonce
	}
	token, rotatedAt, err := s.signer.Sign(ctx, int(*in.PublicKeyVersion), claims)
	if errors.Is(err, mpmeter.ErrNoSuchKeyVersion) {
		return nil, mpmeter.Errorf(mpmeter.CodeInvalidPublicKeyVersion, "Public Key version %d is invalid.", *in.PublicKeyVersion)
	} else if err != nil {
		return nil, err
	}
	outcomes, err := s.store.RecordUsage(ctx, []mpmeter.MeteringRecord{rec}, nil)
	if err != nil {
		return nil, err
	}
	s.observe(mpmeter.OpRegisterUsage, outcomeOf(outcomes[0], rec), 1)
	out := &mpmeter.RegisterUsageOutput{Signature: &token}
	if !rotatedAt.IsZero() {
		out.PublicKeyRotationTimestamp = &mpmeter.Timestamp{Time: rotatedAt.UTC().Truncate(time.Millisecond)}
	}
	return out, nil
}

// registeredBefore reports whether the workload has registered the product:
// whether rec's dedup slot (one registration per workload and product) is
// taken. One lookup of the store's unique dedup index, however much usage
// the product has.
func (s *Service) registeredBefore(ctx context.Context, rec mpmeter.MeteringRecord) (bool, error) {
	o, err := s.store.PreviewUsage(ctx, rec, nil)
	if err != nil {
		return false, err
	}
	return !o.Created, nil
}
