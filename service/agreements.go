package service

import (
	"context"
	"errors"

	"github.com/mpmeter/mpmeter"
)

// Concurrent Agreements: the SaaS integration AWS asks of new products since
// June 2026 (mpmeter.Product.ConcurrentAgreements). A buyer may hold several
// agreements (licenses) for one product; the agreements have no
// CustomerIdentifier, so usage names the customer by CustomerAWSAccountId and
// the agreement by LicenseArn, and every agreement is its own dedup slot
// (the batch dedup key is per license already). Products without the flag
// keep the older integration's rules.

// checkAgreementRecord applies a concurrent-agreements product's rules to
// one usage record, before its agreement is looked up.
//
//   - CustomerIdentifier: InvalidCustomerIdentifierException. The request is
//     well formed for the service model (which makes the member optional, not
//     forbidden, so it is no ValidationException); what is wrong is that this
//     product has no customer identifiers, so any one names a customer that
//     does not exist for it, which is exactly that error's meaning. AWS: "For
//     new SaaS product integrations, the CustomerIdentifier field is not
//     populated", and BatchMeterUsage "does not support CustomerIdentifier
//     for new integrations".
//   - No LicenseArn: InvalidLicenseException, even when the buyer holds only
//     one agreement. AWS documents that calls "require LicenseArn for each
//     UsageRecord" for these products, and a rule that depended on how many
//     agreements the buyer holds today would break an integration the day the
//     buyer makes a second purchase.
//
// The LicenseArn is then checked as for any product: it must exist and be
// the named account's agreement for this product (InvalidLicenseException).
func checkAgreementRecord(p mpmeter.Product, r *mpmeter.UsageRecord) error {
	if id := str(r.CustomerIdentifier); id != "" {
		return mpmeter.Errorf(mpmeter.CodeInvalidCustomerID, "You have metered usage for CustomerIdentifier %s, which does not exist for product %s: the product uses concurrent agreements, whose customers have no CustomerIdentifier. Name the customer by CustomerAWSAccountId and LicenseArn, as ResolveCustomer returns them.", id, p.Code)
	}
	if str(r.LicenseArn) == "" {
		return mpmeter.Errorf(mpmeter.CodeInvalidLicense, "Product %s uses concurrent agreements: each usage record needs the LicenseArn of the agreement it meters, with CustomerAWSAccountId %s.", p.Code, str(r.CustomerAWSAccountId))
	}
	return nil
}

// resolveAgreement answers ResolveCustomer for a registration token of a
// concurrent-agreements product: the one agreement the token names, by
// account id, license ARN and product code, and no CustomerIdentifier (the
// member is absent from the answer, "not populated"). A token names its
// agreement by LicenseArn; one without (a store not filled by seed, which
// always sets it) names the account's only agreement, and is
// InvalidTokenException when the account holds several or none.
func (s *Service) resolveAgreement(ctx context.Context, tok mpmeter.RegistrationToken, invalid error) (*mpmeter.ResolveCustomerOutput, error) {
	var sub mpmeter.Subscription
	if tok.LicenseArn != "" {
		var err error
		sub, err = s.store.Subscription(ctx, tok.LicenseArn)
		if errors.Is(err, mpmeter.ErrNotFound) {
			return nil, invalid
		} else if err != nil {
			return nil, err
		}
		if sub.AccountID != tok.AccountID || sub.ProductCode != tok.ProductCode {
			return nil, invalid
		}
	} else {
		subs, err := s.store.SubscriptionsOf(ctx, tok.AccountID, tok.ProductCode)
		if err != nil {
			return nil, err
		}
		if len(subs) != 1 {
			return nil, invalid
		}
		sub = subs[0]
	}
	return &mpmeter.ResolveCustomerOutput{
		CustomerAWSAccountId: &sub.AccountID,
		ProductCode:          &sub.ProductCode,
		LicenseArn:           &sub.LicenseArn,
	}, nil
}
