package service_test

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/mpmeter/mpmeter"
	"github.com/mpmeter/mpmeter/service"
)

// The Agreement Service's rules below HTTP, on the demo marketplace in a
// real store.

func agreementService(t *testing.T) (*fixture, *service.AgreementService) {
	t.Helper()
	f := newFixture(t)
	a, err := service.NewAgreementService(service.AgreementConfig{Store: f.store})
	if err != nil {
		t.Fatal(err)
	}
	return f, a
}

func strp(s string) *string { return &s }

func proposerFilters(kv ...string) []mpmeter.AgreementFilter {
	out := []mpmeter.AgreementFilter{{Name: strp("PartyType"), Values: []string{"Proposer"}}}
	for i := 0; i+1 < len(kv); i += 2 {
		out = append(out, mpmeter.AgreementFilter{Name: strp(kv[i]), Values: []string{kv[i+1]}})
	}
	return out
}

func searchIDs(t *testing.T, out *mpmeter.SearchAgreementsOutput, err error) []string {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, s := range out.AgreementViewSummaries {
		ids = append(ids, *s.AgreementId)
	}
	return ids
}

func TestSearchAgreementsOrderAndEnds(t *testing.T) {
	f, a := agreementService(t)
	seller := f.caller(sellerKey)
	// Cancel the buyer's SaaS subscription an hour after the cancelled
	// buyer's ended: it then ends latest of the ended ones.
	sub, err := f.store.Subscription(f.ctx, license)
	if err != nil {
		t.Fatal(err)
	}
	sub.Status, sub.EndedAt, sub.Version = mpmeter.SubscriptionCancelled, t0.Add(time.Hour), 0
	if err := f.store.PutSubscription(f.ctx, sub); err != nil {
		t.Fatal(err)
	}
	out, err := a.SearchAgreements(f.ctx, seller, &mpmeter.SearchAgreementsInput{Filters: proposerFilters("ResourceIdentifier", saasProduct)})
	ids := searchIDs(t, out, err)
	if len(ids) != 2 || ids[0] != sub.AgreementID {
		t.Fatalf("%v (cancelled last: %s)", ids, sub.AgreementID)
	}
	for _, s := range out.AgreementViewSummaries {
		if *s.Status != mpmeter.AgreementStatusCANCELLED || s.EndTime == nil {
			t.Errorf("%s: %s %v", *s.AgreementId, *s.Status, s.EndTime)
		}
	}
	// Ascending reverses it; the product id selects the same product.
	asc, err := a.SearchAgreements(f.ctx, seller, &mpmeter.SearchAgreementsInput{
		Filters: proposerFilters("ResourceIdentifier", mpmeter.ProductIDFor(saasProduct)),
		Sort:    &mpmeter.AgreementSort{SortOrder: strp(mpmeter.SortOrderASCENDING)},
	})
	if got := searchIDs(t, asc, err); !slices.Equal(got, []string{ids[1], ids[0]}) {
		t.Errorf("ascending %v", got)
	}
}

func TestSearchAgreementsTokenIsBoundToItsQuery(t *testing.T) {
	f, a := agreementService(t)
	seller := f.caller(sellerKey)
	one := int64(1)
	first, err := a.SearchAgreements(f.ctx, seller, &mpmeter.SearchAgreementsInput{Filters: proposerFilters(), MaxResults: &one})
	if err != nil || first.NextToken == nil || len(first.AgreementViewSummaries) != 1 {
		t.Fatalf("%v %v", first, err)
	}
	for name, in := range map[string]*mpmeter.SearchAgreementsInput{
		"other filters": {Filters: proposerFilters("Status", "ACTIVE"), NextToken: first.NextToken},
		"other order":   {Filters: proposerFilters(), Sort: &mpmeter.AgreementSort{SortOrder: strp(mpmeter.SortOrderASCENDING)}, NextToken: first.NextToken},
		"tampered":      {Filters: proposerFilters(), NextToken: strp((*first.NextToken)[:len(*first.NextToken)-2] + "AA")},
	} {
		_, err := a.SearchAgreements(f.ctx, seller, in)
		var e *mpmeter.Error
		if !errors.As(err, &e) || e.Code != mpmeter.CodeValidation || e.Members["reason"] != mpmeter.ValidationExceptionReasonINVALID_NEXT_TOKEN {
			t.Errorf("%s: %v", name, err)
		}
	}
	// The right query continues after the first.
	next, err := a.SearchAgreements(f.ctx, seller, &mpmeter.SearchAgreementsInput{Filters: proposerFilters(), MaxResults: &one, NextToken: first.NextToken})
	if ids := searchIDs(t, next, err); len(ids) != 1 || ids[0] == *first.AgreementViewSummaries[0].AgreementId {
		t.Errorf("%v", ids)
	}
}

func TestAgreementsOfOtherPartiesAreNotFound(t *testing.T) {
	f, a := agreementService(t)
	sub, err := f.store.Subscription(f.ctx, license)
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{otherSellerKey, cancelledEC2} {
		_, err := a.GetAgreementTerms(f.ctx, f.caller(key), &mpmeter.GetAgreementTermsInput{AgreementId: &sub.AgreementID})
		if mpmeter.CodeOf(err) != mpmeter.CodeResourceNotFound {
			t.Errorf("%s: %v", key, err)
		}
	}
	// The seller's terms token is refused for another agreement.
	one := int64(1)
	terms, err := a.GetAgreementTerms(f.ctx, f.caller(sellerKey), &mpmeter.GetAgreementTermsInput{AgreementId: &sub.AgreementID, MaxResults: &one})
	if err != nil || terms.NextToken == nil {
		t.Fatalf("%v %v", terms, err)
	}
	subs, err := f.store.SubscriptionsOf(f.ctx, buyer, amiProduct)
	if err != nil || len(subs) != 1 {
		t.Fatal(subs, err)
	}
	_, err = a.GetAgreementTerms(f.ctx, f.caller(sellerKey), &mpmeter.GetAgreementTermsInput{AgreementId: &subs[0].AgreementID, NextToken: terms.NextToken})
	if mpmeter.CodeOf(err) != mpmeter.CodeValidation {
		t.Errorf("%v", err)
	}
}

// A search reads the store a page at a time and keeps only its best
// maxResults+1: paging through more subscriptions than one scan page gives
// every agreement once, in order.
func TestSearchAgreementsBeyondOneScanPage(t *testing.T) {
	f, a := agreementService(t)
	const n = 1100
	for i := range n {
		account := fmt.Sprintf("9%011d", i)
		if err := f.store.PutAccount(f.ctx, mpmeter.Account{ID: account, Name: "buyer"}); err != nil {
			t.Fatal(err)
		}
		s := mpmeter.Subscription{AccountID: account, ProductCode: amiProduct, LicenseArn: "arn:aws:license-manager::" + account + ":license/l-bulk",
			Status: mpmeter.SubscriptionActive, CreatedAt: t0}
		if i%3 == 0 {
			s.Status, s.EndedAt = mpmeter.SubscriptionExpired, t0.Add(time.Duration(i)*time.Minute)
		}
		if err := f.store.PutSubscription(f.ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	seen := map[string]bool{}
	var prevEnd *time.Time
	var token *string
	max := int64(50)
	pages := 0
	for {
		out, err := a.SearchAgreements(f.ctx, f.caller(sellerKey), &mpmeter.SearchAgreementsInput{Filters: proposerFilters("ResourceType", "AmiProduct"), MaxResults: &max, NextToken: token})
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, s := range out.AgreementViewSummaries {
			if seen[*s.AgreementId] {
				t.Fatalf("%s twice", *s.AgreementId)
			}
			seen[*s.AgreementId] = true
			if s.EndTime != nil {
				if prevEnd != nil && s.EndTime.After(*prevEnd) {
					t.Fatalf("not descending: %v after %v", s.EndTime, prevEnd)
				}
				end := s.EndTime.Time
				prevEnd = &end
			} else if prevEnd != nil {
				t.Fatalf("an agreement without an end after one with an end")
			}
		}
		if token = out.NextToken; token == nil {
			break
		}
	}
	if want := n + 2; len(seen) != want || pages != (want+49)/50 { // the demo's two AMI subscriptions too
		t.Errorf("%d agreements in %d pages, want %d", len(seen), pages, want)
	}
}
