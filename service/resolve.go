package service

import (
	"context"
	"errors"
	"time"

	"github.com/mpmeter/mpmeter"
)

// ResolveCustomer turns a registration token into the agreement's identity.
// Only the product's seller may resolve it; resolving again answers the same.
func (s *Service) ResolveCustomer(ctx context.Context, caller mpmeter.Caller, in *mpmeter.ResolveCustomerInput) (*mpmeter.ResolveCustomerOutput, error) {
	invalid := invalidToken()
	tok, err := s.store.RegistrationToken(ctx, *in.RegistrationToken)
	if errors.Is(err, mpmeter.ErrNotFound) {
		return nil, invalid
	} else if err != nil {
		return nil, err
	}
	p, err := s.store.Product(ctx, tok.ProductCode)
	if errors.Is(err, mpmeter.ErrNotFound) {
		return nil, invalid
	} else if err != nil {
		return nil, err
	}
	// Another seller's token is indistinguishable from a made-up one.
	if p.SellerAccountID != caller.AccountID {
		return nil, invalid
	}
	if !s.clock.Now().Before(tok.ExpiresAt) {
		return nil, mpmeter.Errorf(mpmeter.CodeExpiredToken, "The submitted registration token has expired (it expired at %s). Redeem registration tokens as soon as the buyer's browser submits them.", tok.ExpiresAt.UTC().Format(time.RFC3339))
	}
	if p.ConcurrentAgreements {
		return s.resolveAgreement(ctx, tok, invalid)
	}
	var sub mpmeter.Subscription
	if tok.LicenseArn != "" {
		sub, err = s.store.Subscription(ctx, tok.LicenseArn)
		if errors.Is(err, mpmeter.ErrNotFound) {
			return nil, invalid
		} else if err != nil {
			return nil, err
		}
	} else {
		subs, err := s.store.SubscriptionsOf(ctx, tok.AccountID, tok.ProductCode)
		if err != nil {
			return nil, err
		}
		if len(subs) == 0 {
			return nil, invalid
		}
		sub, _, _ = pickSubscription(subs, mpmeter.Subscription.Active)
	}
	return &mpmeter.ResolveCustomerOutput{
		CustomerIdentifier:   &sub.CustomerIdentifier,
		CustomerAWSAccountId: &sub.AccountID,
		ProductCode:          &sub.ProductCode,
		LicenseArn:           &sub.LicenseArn,
	}, nil
}
