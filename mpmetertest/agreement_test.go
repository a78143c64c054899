package mpmetertest_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	ma "github.com/aws/aws-sdk-go-v2/service/marketplaceagreement"
	"github.com/aws/aws-sdk-go-v2/service/marketplaceagreement/schemas"
	"github.com/aws/aws-sdk-go-v2/service/marketplaceagreement/types"
	"github.com/aws/smithy-go/transport/http/protocol/awsjson"

	"github.com/mpmeter/mpmeter"
	"github.com/mpmeter/mpmeter/mpmetertest"
	"github.com/mpmeter/mpmeter/seed"
)

// The Agreement Service through aws-sdk-go-v2's marketplaceagreement client
// (v1.30.8), in both protocols it can speak: Smithy RPC v2 CBOR, its
// default since v1.30.0, and awsJson 1.0, the protocol of the model the
// service's older clients (boto3, JS v3) were generated from.

const (
	agreeSeller       = "AKIAAGREESELLER00001"
	agreeSellerSecret = "seller-secret"
	agreeOther        = "AKIAAGREEOTHER000001"
	agreeOtherSecret  = "other-secret"
	agreeBuyer        = "AKIAAGREEBUYER000001"
	agreeBuyerSecret  = "buyer-secret"
)

func agreementServer(t *testing.T) *mpmetertest.Server {
	t.Helper()
	data, err := os.ReadFile("testdata/agreements.yaml")
	if err != nil {
		t.Fatal(err)
	}
	f, err := seed.Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	return mpmetertest.New(t, mpmetertest.WithSeed(f))
}

// agreementClients are the client in each protocol.
func agreementClients(srv *mpmetertest.Server, key, secret string) map[string]*ma.Client {
	cfg := srv.AWSConfig(key, secret)
	return map[string]*ma.Client{
		"cbor": ma.NewFromConfig(cfg, func(o *ma.Options) { o.RetryMaxAttempts = 1 }),
		"awsjson1.0": ma.NewFromConfig(cfg, func(o *ma.Options) {
			o.RetryMaxAttempts = 1
			o.Protocol = awsjson.New10(schemas.AWSMPCommerceService_v20200301)
		}),
	}
}

// agreementOf is the agreement id the store (and so the admin API, the
// audit log and the exports) gives the account's subscription to product.
func agreementOf(t *testing.T, srv *mpmetertest.Server, account, product string) mpmeter.Subscription {
	t.Helper()
	subs, err := srv.Store.SubscriptionsOf(context.Background(), account, product)
	if err != nil || len(subs) != 1 {
		t.Fatalf("subscriptions of %s to %s: %v %v", account, product, subs, err)
	}
	return subs[0]
}

func TestDescribeAgreementAWSSDKGoV2(t *testing.T) {
	srv := agreementServer(t)
	ctx := context.Background()
	payg := agreementOf(t, srv, "444455556666", "payg1")
	contract := agreementOf(t, srv, "444455556666", "contract1")
	for name, c := range agreementClients(srv, agreeSeller, agreeSellerSecret) {
		t.Run(name, func(t *testing.T) {
			out, err := c.DescribeAgreement(ctx, &ma.DescribeAgreementInput{AgreementId: aws.String(payg.AgreementID)})
			if err != nil {
				t.Fatal(err)
			}
			if aws.ToString(out.AgreementId) != payg.AgreementID || aws.ToString(out.Acceptor.AccountId) != "444455556666" ||
				aws.ToString(out.Proposer.AccountId) != "111122223333" || out.Status != types.AgreementStatusActive ||
				aws.ToString(out.AgreementType) != "PurchaseAgreement" || out.EndTime != nil {
				t.Fatalf("%+v", out)
			}
			if !out.StartTime.Equal(payg.CreatedAt.Truncate(time.Millisecond)) || !out.AcceptanceTime.Equal(*out.StartTime) {
				t.Errorf("start %v acceptance %v, created %v", out.StartTime, out.AcceptanceTime, payg.CreatedAt)
			}
			ps := out.ProposalSummary
			if aws.ToString(ps.OfferId) != "offer-abc123" || len(ps.Resources) != 1 ||
				aws.ToString(ps.Resources[0].Id) != mpmeter.ProductIDFor("payg1") || aws.ToString(ps.Resources[0].Type) != "SaaSProduct" {
				t.Errorf("%+v", ps)
			}
			if aws.ToString(out.EstimatedCharges.AgreementValue) != "0" || aws.ToString(out.EstimatedCharges.CurrencyCode) != "USD" {
				t.Errorf("%+v", out.EstimatedCharges)
			}

			// The contract ends with its entitlements; its value is
			// seats 10 × 12.5 + premium_support (boolean, not counted).
			out, err = c.DescribeAgreement(ctx, &ma.DescribeAgreementInput{AgreementId: aws.String(contract.AgreementID)})
			if err != nil {
				t.Fatal(err)
			}
			if out.EndTime == nil || !out.EndTime.Equal(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)) || aws.ToString(out.EstimatedCharges.AgreementValue) != "125" {
				t.Errorf("%v %+v", out.EndTime, out.EstimatedCharges)
			}
			if aws.ToString(out.ProposalSummary.OfferId) != mpmeter.PublicOfferIDFor("contract1") {
				t.Errorf("offer %q", aws.ToString(out.ProposalSummary.OfferId))
			}
		})
	}
}

func TestDescribeAgreementNotFoundAWSSDKGoV2(t *testing.T) {
	srv := agreementServer(t)
	ctx := context.Background()
	payg := agreementOf(t, srv, "444455556666", "payg1")
	other := agreementOf(t, srv, "444455556666", "otherprod1")
	for name, c := range agreementClients(srv, agreeSeller, agreeSellerSecret) {
		t.Run(name, func(t *testing.T) {
			// Another seller's agreement and one that does not exist: the
			// same ResourceNotFoundException.
			for _, id := range []string{other.AgreementID, "agmt-doesnotexist0000000000"} {
				_, err := c.DescribeAgreement(ctx, &ma.DescribeAgreementInput{AgreementId: aws.String(id)})
				var rnf *types.ResourceNotFoundException
				if !errors.As(err, &rnf) || aws.ToString(rnf.ResourceId) != id || rnf.ResourceType != types.ResourceTypeAgreement || aws.ToString(rnf.RequestId) == "" {
					t.Fatalf("%s: %v", id, err)
				}
			}
		})
	}
	// The buyer is the acceptor: it sees its agreement; the other seller
	// does not see this seller's.
	for name, c := range agreementClients(srv, agreeBuyer, agreeBuyerSecret) {
		if _, err := c.DescribeAgreement(ctx, &ma.DescribeAgreementInput{AgreementId: aws.String(payg.AgreementID)}); err != nil {
			t.Errorf("%s: acceptor: %v", name, err)
		}
	}
	for name, c := range agreementClients(srv, agreeOther, agreeOtherSecret) {
		_, err := c.DescribeAgreement(ctx, &ma.DescribeAgreementInput{AgreementId: aws.String(payg.AgreementID)})
		var rnf *types.ResourceNotFoundException
		if !errors.As(err, &rnf) {
			t.Errorf("%s: other seller: %v", name, err)
		}
	}
}

func TestGetAgreementTermsAWSSDKGoV2(t *testing.T) {
	srv := agreementServer(t)
	ctx := context.Background()
	payg := agreementOf(t, srv, "444455556666", "payg1")
	contract := agreementOf(t, srv, "444455556666", "contract1")
	for name, c := range agreementClients(srv, agreeSeller, agreeSellerSecret) {
		t.Run(name, func(t *testing.T) {
			out, err := c.GetAgreementTerms(ctx, &ma.GetAgreementTermsInput{AgreementId: aws.String(payg.AgreementID)})
			if err != nil {
				t.Fatal(err)
			}
			if len(out.AcceptedTerms) != 3 || out.NextToken != nil {
				t.Fatalf("%d terms %v", len(out.AcceptedTerms), out.NextToken)
			}
			usage, ok := out.AcceptedTerms[0].(*types.AcceptedTermMemberUsageBasedPricingTerm)
			if !ok || aws.ToString(usage.Value.Type) != "UsageBasedPricingTerm" || aws.ToString(usage.Value.CurrencyCode) != "USD" || len(usage.Value.RateCards) != 1 {
				t.Fatalf("%#v", out.AcceptedTerms[0])
			}
			prices := map[string]*string{}
			for _, rc := range usage.Value.RateCards[0].RateCard {
				prices[aws.ToString(rc.DimensionKey)] = rc.Price
			}
			if len(prices) != 3 || aws.ToString(prices["users"]) != "0.05" || aws.ToString(prices["gigabytes"]) != "0.125" || prices["requests"] != nil {
				t.Errorf("%v", prices)
			}
			trial, ok := out.AcceptedTerms[1].(*types.AcceptedTermMemberFreeTrialPricingTerm)
			if !ok || aws.ToString(trial.Value.Duration) != "P30D" || len(trial.Value.Grants) != 3 {
				t.Fatalf("%#v", out.AcceptedTerms[1])
			}
			validity, ok := out.AcceptedTerms[2].(*types.AcceptedTermMemberValidityTerm)
			if !ok || validity.Value.AgreementEndDate != nil || validity.Value.AgreementStartDate == nil {
				t.Fatalf("%#v", out.AcceptedTerms[2])
			}

			// The contract: its entitlements as a configurable upfront
			// term, the dimension without one as usage-based pricing.
			out, err = c.GetAgreementTerms(ctx, &ma.GetAgreementTermsInput{AgreementId: aws.String(contract.AgreementID)})
			if err != nil {
				t.Fatal(err)
			}
			if len(out.AcceptedTerms) != 3 {
				t.Fatalf("%d terms", len(out.AcceptedTerms))
			}
			upfront, ok := out.AcceptedTerms[0].(*types.AcceptedTermMemberConfigurableUpfrontPricingTerm)
			if !ok || len(upfront.Value.RateCards) != 1 || upfront.Value.Configuration == nil {
				t.Fatalf("%#v", out.AcceptedTerms[0])
			}
			chosen := map[string]int32{}
			for _, d := range upfront.Value.Configuration.Dimensions {
				chosen[aws.ToString(d.DimensionKey)] = d.DimensionValue
			}
			if len(chosen) != 2 || chosen["seats"] != 10 || chosen["premium_support"] != 1 {
				t.Errorf("configuration %v", chosen)
			}
			if len(upfront.Value.RateCards[0].RateCard) != 3 {
				t.Errorf("rate card %+v", upfront.Value.RateCards[0].RateCard)
			}
			overage, ok := out.AcceptedTerms[1].(*types.AcceptedTermMemberUsageBasedPricingTerm)
			if !ok || len(overage.Value.RateCards[0].RateCard) != 1 || aws.ToString(overage.Value.RateCards[0].RateCard[0].DimensionKey) != "overage_gb" {
				t.Errorf("%#v", out.AcceptedTerms[1])
			}

			// Pages of one term, in the same order.
			var ids []string
			var token *string
			for range 5 {
				page, err := c.GetAgreementTerms(ctx, &ma.GetAgreementTermsInput{AgreementId: aws.String(contract.AgreementID), MaxResults: aws.Int32(1), NextToken: token})
				if err != nil {
					t.Fatal(err)
				}
				for _, term := range page.AcceptedTerms {
					ids = append(ids, termType(term))
				}
				if token = page.NextToken; token == nil {
					break
				}
			}
			if strings.Join(ids, ",") != "ConfigurableUpfrontPricingTerm,UsageBasedPricingTerm,ValidityTerm" {
				t.Errorf("paged terms %v", ids)
			}
		})
	}
}

func termType(term types.AcceptedTerm) string {
	switch v := term.(type) {
	case *types.AcceptedTermMemberConfigurableUpfrontPricingTerm:
		return aws.ToString(v.Value.Type)
	case *types.AcceptedTermMemberUsageBasedPricingTerm:
		return aws.ToString(v.Value.Type)
	case *types.AcceptedTermMemberFreeTrialPricingTerm:
		return aws.ToString(v.Value.Type)
	case *types.AcceptedTermMemberValidityTerm:
		return aws.ToString(v.Value.Type)
	}
	return "?"
}

func filters(kv ...string) []types.Filter {
	var out []types.Filter
	for i := 0; i+1 < len(kv); i += 2 {
		out = append(out, types.Filter{Name: aws.String(kv[i]), Values: []string{kv[i+1]}})
	}
	return out
}

func TestSearchAgreementsAWSSDKGoV2(t *testing.T) {
	srv := agreementServer(t)
	ctx := context.Background()
	payg := agreementOf(t, srv, "444455556666", "payg1")
	contract := agreementOf(t, srv, "444455556666", "contract1")
	cancelled := agreementOf(t, srv, "210987654321", "payg1")
	expired := agreementOf(t, srv, "444455556666", "ami1")
	for name, c := range agreementClients(srv, agreeSeller, agreeSellerSecret) {
		t.Run(name, func(t *testing.T) {
			search := func(fs []types.Filter, sort *types.Sort) []string {
				t.Helper()
				out, err := c.SearchAgreements(ctx, &ma.SearchAgreementsInput{Catalog: aws.String("AWSMarketplace"), Filters: fs, Sort: sort})
				if err != nil {
					t.Fatal(err)
				}
				var ids []string
				for _, s := range out.AgreementViewSummaries {
					ids = append(ids, aws.ToString(s.AgreementId))
				}
				return ids
			}
			// All four of the seller's, EndTime descending: no end (the
			// pay-as-you-go one) first, then the contract's 2030, then the
			// ended ones (latest first).
			all := search(filters("PartyType", "Proposer", "AgreementType", "PurchaseAgreement"), nil)
			if len(all) != 4 || all[0] != payg.AgreementID || all[1] != contract.AgreementID {
				t.Fatalf("%v", all)
			}
			asc := search(filters("PartyType", "Proposer"), &types.Sort{SortBy: aws.String("EndTime"), SortOrder: types.SortOrderAscending})
			if len(asc) != 4 || asc[3] != payg.AgreementID || asc[2] != contract.AgreementID {
				t.Errorf("ascending %v", asc)
			}
			for _, tc := range []struct {
				filters []types.Filter
				want    []string
			}{
				{filters("PartyType", "Proposer", "ResourceIdentifier", mpmeter.ProductIDFor("payg1")), []string{payg.AgreementID, cancelled.AgreementID}},
				{filters("PartyType", "Proposer", "ResourceIdentifier", "payg1", "Status", "CANCELLED"), []string{cancelled.AgreementID}},
				{filters("PartyType", "Proposer", "ResourceType", "AmiProduct"), []string{expired.AgreementID}},
				{filters("PartyType", "Proposer", "AcceptorAccountId", "210987654321"), []string{cancelled.AgreementID}},
				{filters("PartyType", "Proposer", "OfferId", "offer-abc123"), []string{payg.AgreementID}},
				{filters("PartyType", "Proposer", "AfterEndTime", "2029-01-01T00:00:00Z"), []string{payg.AgreementID, contract.AgreementID}},
				{filters("PartyType", "Proposer", "BeforeEndTime", "2031-01-01T00:00:00Z", "Status", "ACTIVE"), []string{contract.AgreementID}},
				{filters("PartyType", "Proposer", "Status", "RENEWED"), nil},
			} {
				if got := search(tc.filters, nil); strings.Join(got, ",") != strings.Join(tc.want, ",") {
					t.Errorf("%v: got %v, want %v", tc.filters, got, tc.want)
				}
			}

			// Pages of one through the same order, then no token.
			var paged []string
			var token *string
			for range 6 {
				out, err := c.SearchAgreements(ctx, &ma.SearchAgreementsInput{Filters: filters("PartyType", "Proposer"), MaxResults: aws.Int32(1), NextToken: token})
				if err != nil {
					t.Fatal(err)
				}
				for _, s := range out.AgreementViewSummaries {
					paged = append(paged, aws.ToString(s.AgreementId))
				}
				if token = out.NextToken; token == nil {
					break
				}
			}
			if strings.Join(paged, ",") != strings.Join(all, ",") {
				t.Errorf("paged %v, all %v", paged, all)
			}

			// PartyType is required; the model's ValidationException
			// carries its reason.
			_, err := c.SearchAgreements(ctx, &ma.SearchAgreementsInput{Filters: filters("AgreementType", "PurchaseAgreement")})
			var ve *types.ValidationException
			if !errors.As(err, &ve) || ve.Reason != types.ValidationExceptionReasonMissingPartyType || len(ve.Fields) != 1 {
				t.Fatalf("%v", err)
			}
		})
	}
	// The buyer as acceptor: its own four (the other seller's product too).
	for name, c := range agreementClients(srv, agreeBuyer, agreeBuyerSecret) {
		out, err := c.SearchAgreements(ctx, &ma.SearchAgreementsInput{Filters: filters("PartyType", "Acceptor")})
		if err != nil || len(out.AgreementViewSummaries) != 4 {
			t.Errorf("%s: acceptor: %v %v", name, out, err)
		}
	}
}

// The model's constraints and the service's rules, as raw awsJson 1.0
// requests (the SDK validates required members itself).
func TestAgreementValidationRaw(t *testing.T) {
	srv := agreementServer(t)
	for _, tc := range []struct {
		target, body, reason, field string
	}{
		{"DescribeAgreement", `{}`, "MISSING_AGREEMENT_ID", "agreementId"},
		{"DescribeAgreement", `{"agreementId": ""}`, "INVALID_AGREEMENT_ID", "agreementId"},
		{"GetAgreementTerms", `{"agreementId": "agmt-x", "maxResults": 51}`, "INVALID_MAX_RESULTS", "maxResults"},
		{"SearchAgreements", `{"filters": [{"name": "PartyType", "values": ["Proposer", "Acceptor"]}]}`, "INVALID_FILTER_VALUES", "filters.1.member.values"},
		{"SearchAgreements", `{"filters": [{"name": "PartyType", "values": ["Seller"]}]}`, "INVALID_PARTY_TYPE", "filters.1.member.values"},
		{"SearchAgreements", `{"filters": [{"name": "PartyType", "values": ["Proposer"]}, {"name": "Colour", "values": ["red"]}]}`, "INVALID_FILTER_NAME", "filters.2.member.name"},
		{"SearchAgreements", `{"filters": [{"name": "PartyType", "values": ["Proposer"]}], "sort": {"sortBy": "StartTime"}}`, "INVALID_SORT_BY", "sort.sortBy"},
		{"SearchAgreements", `{"filters": [{"name": "PartyType", "values": ["Proposer"]}], "catalog": "Other"}`, "INVALID_CATALOG", "catalog"},
		{"SearchAgreements", `{"filters": [{"name": "PartyType", "values": ["Proposer"]}], "nextToken": "bm90LWEtdG9rZW4"}`, "INVALID_NEXT_TOKEN", "nextToken"},
	} {
		status, body := srv.Do(t, mpmetertest.Raw{TargetPrefix: mpmeter.AgreementTargetPrefix, Target: tc.target, Body: tc.body,
			Key: agreeSeller, Secret: agreeSellerSecret,
			Header: http.Header{"Content-Type": {"application/x-amz-json-1.0"}}})
		var got struct {
			Type      string `json:"__type"`
			Message   string `json:"message"`
			Reason    string `json:"reason"`
			RequestID string `json:"requestId"`
			Fields    []struct{ Name, Message string }
		}
		if err := json.Unmarshal(body, &got); err != nil {
			t.Fatal(err)
		}
		if status != 400 || got.Type != "ValidationException" || got.Reason != tc.reason || len(got.Fields) == 0 || got.Fields[0].Name != tc.field || got.RequestID == "" {
			t.Errorf("%s %s: %d %s", tc.target, tc.body, status, body)
		}
	}
	// An awsJson 1.1 Content-Type is not this service's.
	status, body := srv.Do(t, mpmetertest.Raw{TargetPrefix: mpmeter.AgreementTargetPrefix, Target: "SearchAgreements", Body: `{}`,
		Key: agreeSeller, Secret: agreeSellerSecret, Header: http.Header{"Content-Type": {"application/x-amz-json-1.1"}}})
	if status != 400 || !strings.Contains(string(body), "SerializationException") {
		t.Errorf("%d %s", status, body)
	}
	// Outside the service's regions: DisabledApiException.
	status, body = srv.Do(t, mpmetertest.Raw{TargetPrefix: mpmeter.AgreementTargetPrefix, Target: "SearchAgreements", Body: `{}`, Region: "eu-west-1",
		Key: agreeSeller, Secret: agreeSellerSecret, Header: http.Header{"Content-Type": {"application/x-amz-json-1.0"}}})
	if status != 400 || !strings.Contains(string(body), "DisabledApiException") {
		t.Errorf("%d %s", status, body)
	}
}

// The agreement id SearchAgreements answers is the one the audit log
// records for the subscription's metering (and the admin API lists).
func TestAgreementIDIsTheSubscriptions(t *testing.T) {
	srv := agreementServer(t)
	ctx := context.Background()
	sub := agreementOf(t, srv, "444455556666", "payg1")
	if sub.AgreementID != mpmeter.AgreementIDFor(sub.LicenseArn) {
		t.Fatalf("%s", sub.AgreementID)
	}
	c := agreementClients(srv, agreeSeller, agreeSellerSecret)["cbor"]
	out, err := c.SearchAgreements(ctx, &ma.SearchAgreementsInput{Filters: filters("PartyType", "Proposer", "AcceptorAccountId", "444455556666", "ResourceIdentifier", "payg1")})
	if err != nil || len(out.AgreementViewSummaries) != 1 || aws.ToString(out.AgreementViewSummaries[0].AgreementId) != sub.AgreementID {
		t.Fatalf("%v %v", out, err)
	}
	evs := srv.AuditEvents(t, mpmeter.AuditFilter{EventName: "SearchAgreements"})
	if len(evs) != 1 || !strings.Contains(string(evs[0].ResponseElements), sub.AgreementID) {
		t.Errorf("audit %+v", evs)
	}
}
