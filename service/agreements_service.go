package service

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/mpmeter/mpmeter"
)

// The Agreement Service's read side (DescribeAgreement, GetAgreementTerms,
// SearchAgreements) over the same marketplace the Metering API meters: an
// agreement is a subscription, and its id is the subscription's AgreementID
// (the admin API's agreement_id, the audit log's and the exports').
//
//   - Parties: the proposer is the product's seller, the acceptor the
//     subscribing buyer. An agreement is visible to both and to no one
//     else: another account's agreement id answers ResourceNotFoundException
//     exactly like one that does not exist, so ids cannot be probed (AWS's
//     model documents ResourceNotFoundException as "a resource which does
//     not exist" and AccessDeniedException as missing permissions, which
//     SigV4 keys here do not have).
//   - Status: active, cancelled, expired are ACTIVE, CANCELLED, EXPIRED.
//     startTime and acceptanceTime are the subscription's creation; endTime
//     is when it was cancelled or expired, else its contract's end (the
//     latest expiry of its entitlements), else absent (pay-as-you-go).
//   - Terms (GetAgreementTerms), what mpmeter stores, as the model's term
//     types: configurableUpfrontPricingTerm for a contract's entitlements,
//     usageBasedPricingTerm for the metered dimensions without one (with
//     each dimension's price per unit, USD), freeTrialPricingTerm for a
//     free-trial agreement, and a validityTerm with the start and end.
//   - SearchAgreements needs the PartyType filter (Proposer: the caller's
//     products' agreements; Acceptor: the caller's own purchases) and takes
//     the model's other filters, one value each; sorted by EndTime,
//     DESCENDING by default, an agreement without an end sorting as the
//     latest.

// Agreement limits.
const (
	// DefaultMaxAgreementResults is the page size without maxResults (the
	// model's most).
	DefaultMaxAgreementResults = 50
	// agreementScanPage is how many subscriptions a search reads at once:
	// a search holds one such page and its best maxResults+1, never a
	// seller's whole book.
	agreementScanPage = 500
)

// AgreementStore is the part of mpmeter.Store the Agreement Service reads.
type AgreementStore interface {
	Product(ctx context.Context, code string) (mpmeter.Product, error)
	Products(ctx context.Context, p mpmeter.Page) ([]mpmeter.Product, error)
	SubscriptionByAgreement(ctx context.Context, agreementID string) (mpmeter.Subscription, error)
	Subscriptions(ctx context.Context, f mpmeter.SubscriptionFilter, p mpmeter.Page) ([]mpmeter.Subscription, error)
	Entitlements(ctx context.Context, f mpmeter.EntitlementFilter) ([]mpmeter.Entitlement, error)
}

// AgreementConfig is what an AgreementService needs.
type AgreementConfig struct {
	// Store holds the marketplace. Required.
	Store AgreementStore
}

// AgreementService implements mpmeter.AgreementService.
type AgreementService struct {
	store AgreementStore
}

var _ mpmeter.AgreementService = (*AgreementService)(nil)

// NewAgreementService returns the Agreement Service on cfg.Store.
func NewAgreementService(cfg AgreementConfig) (*AgreementService, error) {
	if cfg.Store == nil {
		return nil, errors.New("service: AgreementConfig.Store is required")
	}
	return &AgreementService{store: cfg.Store}, nil
}

// agreement is a subscription as the Agreement Service sees it.
type agreement struct {
	sub     mpmeter.Subscription
	product mpmeter.Product
	ents    []mpmeter.Entitlement
	// end is the agreement's end (zero: none).
	end time.Time
}

func newAgreement(sub mpmeter.Subscription, p mpmeter.Product, ents []mpmeter.Entitlement) agreement {
	a := agreement{sub: sub, product: p, ents: ents}
	if !sub.Active() && !sub.EndedAt.IsZero() {
		a.end = sub.EndedAt
	} else {
		a.end = contractEnd(ents)
	}
	return a
}

// contractEnd is the latest expiry of ents (zero: none expires).
func contractEnd(ents []mpmeter.Entitlement) time.Time {
	var end time.Time
	for _, e := range ents {
		if e.ExpiresAt.After(end) {
			end = e.ExpiresAt
		}
	}
	return end
}

// agreementStatus is a subscription status's AgreementStatus.
func agreementStatus(status string) string {
	switch status {
	case mpmeter.SubscriptionCancelled:
		return mpmeter.AgreementStatusCANCELLED
	case mpmeter.SubscriptionExpired:
		return mpmeter.AgreementStatusEXPIRED
	}
	return mpmeter.AgreementStatusACTIVE
}

// subscriptionStatus is the subscription status of an AgreementStatus; ""
// for the statuses no subscription has (RENEWED, ARCHIVED, ...).
func subscriptionStatus(status string) string {
	switch status {
	case mpmeter.AgreementStatusACTIVE:
		return mpmeter.SubscriptionActive
	case mpmeter.AgreementStatusCANCELLED:
		return mpmeter.SubscriptionCancelled
	case mpmeter.AgreementStatusEXPIRED:
		return mpmeter.SubscriptionExpired
	}
	return ""
}

// Resource types of the model's ResourceType filter.
var resourceTypes = []string{"AmiProduct", "ContainerProduct", "SaaSProduct", "ProfessionalServicesProduct", "MachineLearningProduct"}

// resourceType is a product type's resource type.
func resourceType(productType string) string {
	switch productType {
	case mpmeter.ProductAMI:
		return "AmiProduct"
	case mpmeter.ProductContainer:
		return "ContainerProduct"
	}
	return "SaaSProduct"
}

func (a agreement) offerID() string {
	if a.sub.OfferID != "" {
		return a.sub.OfferID
	}
	return mpmeter.PublicOfferIDFor(a.product.Code)
}

func (a agreement) proposalSummary() *mpmeter.ProposalSummary {
	id, typ, offer := mpmeter.ProductIDFor(a.product.Code), resourceType(a.product.Type), a.offerID()
	return &mpmeter.ProposalSummary{Resources: []mpmeter.AgreementResource{{Id: &id, Type: &typ}}, OfferId: &offer}
}

func (a agreement) summary() mpmeter.AgreementViewSummary {
	id, typ, status := a.sub.AgreementID, mpmeter.PurchaseAgreement, agreementStatus(a.sub.Status)
	acceptor, proposer := a.sub.AccountID, a.product.SellerAccountID
	v := mpmeter.AgreementViewSummary{
		AgreementId:     &id,
		AcceptanceTime:  mpmeter.NewTimestamp(a.sub.CreatedAt),
		StartTime:       mpmeter.NewTimestamp(a.sub.CreatedAt),
		AgreementType:   &typ,
		Acceptor:        &mpmeter.Acceptor{AccountId: &acceptor},
		Proposer:        &mpmeter.Proposer{AccountId: &proposer},
		ProposalSummary: a.proposalSummary(),
		Status:          &status,
	}
	if !a.end.IsZero() {
		v.EndTime = mpmeter.NewTimestamp(a.end)
	}
	return v
}

// visibleTo reports whether account is a party to a.
func (a agreement) visibleTo(account string) bool {
	return a.product.SellerAccountID == account || a.sub.AccountID == account
}

func agreementNotFound(id string) error {
	return &mpmeter.Error{Code: mpmeter.CodeResourceNotFound,
		Message: fmt.Sprintf("Agreement %s was not found: no agreement with this id has the calling account as its proposer or acceptor.", id),
		Members: map[string]any{"resourceId": id, "resourceType": mpmeter.ResourceTypeAgreement}}
}

// load reads the agreement with this id that caller is a party to.
func (s *AgreementService) load(ctx context.Context, caller mpmeter.Caller, id string) (agreement, error) {
	sub, err := s.store.SubscriptionByAgreement(ctx, id)
	if errors.Is(err, mpmeter.ErrNotFound) {
		return agreement{}, agreementNotFound(id)
	} else if err != nil {
		return agreement{}, err
	}
	p, err := s.store.Product(ctx, sub.ProductCode)
	if err != nil {
		return agreement{}, err // a subscription's product exists
	}
	if !(agreement{sub: sub, product: p}).visibleTo(caller.AccountID) {
		return agreement{}, agreementNotFound(id)
	}
	ents, err := s.store.Entitlements(ctx, mpmeter.EntitlementFilter{ProductCode: p.Code, LicenseArns: []string{sub.LicenseArn}})
	if err != nil {
		return agreement{}, err
	}
	return newAgreement(sub, p, ents), nil
}

// DescribeAgreement answers one agreement of the caller's.
func (s *AgreementService) DescribeAgreement(ctx context.Context, caller mpmeter.Caller, in *mpmeter.DescribeAgreementInput) (*mpmeter.DescribeAgreementOutput, error) {
	a, err := s.load(ctx, caller, *in.AgreementId)
	if err != nil {
		return nil, err
	}
	v := a.summary()
	currency, value := "USD", a.estimatedValue()
	return &mpmeter.DescribeAgreementOutput{
		AgreementId:      v.AgreementId,
		Acceptor:         v.Acceptor,
		Proposer:         v.Proposer,
		StartTime:        v.StartTime,
		EndTime:          v.EndTime,
		AcceptanceTime:   v.AcceptanceTime,
		AgreementType:    v.AgreementType,
		EstimatedCharges: &mpmeter.EstimatedCharges{CurrencyCode: &currency, AgreementValue: &value},
		ProposalSummary:  v.ProposalSummary,
		Status:           v.Status,
	}, nil
}

// estimatedValue is the contract's value: each numeric entitlement's
// quantity times its dimension's price per unit, exactly (decimal
// strings, never floats); "0" for pay-as-you-go, as AWS answers for
// usage-based pricing.
func (a agreement) estimatedValue() string {
	total := new(big.Rat)
	for _, e := range a.ents {
		price, ok := new(big.Rat).SetString(a.product.DimensionDetails[e.Dimension].PricePerUnit)
		if !ok {
			continue
		}
		var qty *big.Rat
		switch {
		case e.Value.IntegerValue != nil:
			qty = new(big.Rat).SetInt64(*e.Value.IntegerValue)
		case e.Value.DoubleValue != nil:
			qty = new(big.Rat)
			if qty.SetFloat64(*e.Value.DoubleValue) == nil {
				continue
			}
		default:
			continue
		}
		total.Add(total, qty.Mul(qty, price))
	}
	return decimalString(total)
}

// decimalString writes r as a decimal without trailing zeros.
func decimalString(r *big.Rat) string {
	s := r.FloatString(12)
	s = strings.TrimRight(s, "0")
	return strings.TrimSuffix(s, ".")
}

// Term types, as the model's term shapes name themselves.
const (
	termConfigurableUpfront = "ConfigurableUpfrontPricingTerm"
	termUsageBased          = "UsageBasedPricingTerm"
	termFreeTrial           = "FreeTrialPricingTerm"
	termValidity            = "ValidityTerm"
)

// FreeTrialDuration is a free-trial term's duration: mpmeter does not store
// one, and AWS's free trials last 5 to 31 days.
const FreeTrialDuration = "P30D"

// termID is a term's stable id: "term-" and 32 hex digits of a SHA-256 of
// the agreement id and the term type.
func termID(agreementID, termType string) *string {
	sum := sha256.Sum256([]byte("mpmeter/term\x00" + agreementID + "\x00" + termType))
	id := "term-" + hex.EncodeToString(sum[:16])
	return &id
}

func strp(s string) *string { return &s }

// terms are a's accepted terms, in a fixed order.
func (a agreement) terms() []mpmeter.AcceptedTerm {
	var terms []mpmeter.AcceptedTerm
	id := a.sub.AgreementID
	entitled := map[string]bool{}
	for _, e := range a.ents {
		entitled[e.Dimension] = true
	}
	price := func(dim string) *string {
		if p := a.product.DimensionDetails[dim].PricePerUnit; p != "" {
			return &p
		}
		return nil
	}
	if len(a.ents) > 0 {
		var rateCard []mpmeter.RateCardItem
		var chosen []mpmeter.AgreementDimension
		for _, e := range a.ents {
			rateCard = append(rateCard, mpmeter.RateCardItem{DimensionKey: strp(e.Dimension), Price: price(e.Dimension)})
			// The model's dimensionValue is a whole number of units: an
			// integer entitlement is its value, a true boolean one unit;
			// doubles, strings and false have no such count.
			var n int64
			switch {
			case e.Value.IntegerValue != nil:
				n = *e.Value.IntegerValue
			case e.Value.BooleanValue != nil && *e.Value.BooleanValue:
				n = 1
			default:
				continue
			}
			chosen = append(chosen, mpmeter.AgreementDimension{DimensionKey: strp(e.Dimension), DimensionValue: &n})
		}
		duration := a.duration()
		term := &mpmeter.ConfigurableUpfrontPricingTerm{
			Type: strp(termConfigurableUpfront), Id: termID(id, termConfigurableUpfront), CurrencyCode: strp("USD"),
			RateCards: []mpmeter.ConfigurableUpfrontRateCardItem{{
				Selector:    &mpmeter.RateCardSelector{Type: strp("Duration"), Value: duration},
				Constraints: &mpmeter.RateCardConstraints{MultipleDimensionSelection: strp("Allowed"), QuantityConfiguration: strp("Allowed")},
				RateCard:    rateCard,
			}},
		}
		if len(chosen) > 0 && duration != nil {
			term.Configuration = &mpmeter.ConfigurableUpfrontPricingTermConfiguration{SelectorValue: duration, Dimensions: chosen}
		}
		terms = append(terms, mpmeter.AcceptedTerm{ConfigurableUpfrontPricingTerm: term})
	}
	var metered []mpmeter.RateCardItem
	for _, dim := range a.product.Dimensions {
		if !entitled[dim] {
			metered = append(metered, mpmeter.RateCardItem{DimensionKey: strp(dim), Price: price(dim)})
		}
	}
	if len(metered) > 0 {
		terms = append(terms, mpmeter.AcceptedTerm{UsageBasedPricingTerm: &mpmeter.UsageBasedPricingTerm{
			Type: strp(termUsageBased), Id: termID(id, termUsageBased), CurrencyCode: strp("USD"),
			RateCards: []mpmeter.UsageBasedRateCardItem{{RateCard: metered}},
		}})
	}
	if a.sub.FreeTrial {
		var grants []mpmeter.GrantItem
		for _, dim := range a.product.Dimensions {
			grants = append(grants, mpmeter.GrantItem{DimensionKey: strp(dim)}) // no maxQuantity: unlimited
		}
		terms = append(terms, mpmeter.AcceptedTerm{FreeTrialPricingTerm: &mpmeter.FreeTrialPricingTerm{
			Type: strp(termFreeTrial), Id: termID(id, termFreeTrial), Duration: strp(FreeTrialDuration), Grants: grants,
		}})
	}
	validity := &mpmeter.ValidityTerm{Type: strp(termValidity), Id: termID(id, termValidity),
		AgreementStartDate: mpmeter.NewTimestamp(a.sub.CreatedAt), AgreementDuration: a.duration()}
	if !a.end.IsZero() {
		validity.AgreementEndDate = mpmeter.NewTimestamp(a.end)
	}
	terms = append(terms, mpmeter.AcceptedTerm{ValidityTerm: validity})
	return terms
}

// duration is the agreement's length in ISO 8601 days, rounded up; nil
// without an end.
func (a agreement) duration() *string {
	if a.end.IsZero() {
		return nil
	}
	days := int64((a.end.Sub(a.sub.CreatedAt) + 24*time.Hour - 1) / (24 * time.Hour))
	return strp("P" + strconv.FormatInt(max(days, 0), 10) + "D")
}

// GetAgreementTerms answers the terms of one agreement of the caller's.
func (s *AgreementService) GetAgreementTerms(ctx context.Context, caller mpmeter.Caller, in *mpmeter.GetAgreementTermsInput) (*mpmeter.GetAgreementTermsOutput, error) {
	a, err := s.load(ctx, caller, *in.AgreementId)
	if err != nil {
		return nil, err
	}
	terms := a.terms()
	offset := 0
	if in.NextToken != nil {
		var tok termsToken
		if decodeAgreementToken(*in.NextToken, &tok) != nil || tok.Agreement != a.sub.AgreementID || tok.Offset <= 0 || tok.Offset > len(terms) {
			return nil, invalidNextToken("GetAgreementTerms")
		}
		offset = tok.Offset
	}
	limit := DefaultMaxAgreementResults
	if in.MaxResults != nil {
		limit = int(*in.MaxResults)
	}
	out := &mpmeter.GetAgreementTermsOutput{AcceptedTerms: []mpmeter.AcceptedTerm{}}
	end := min(offset+limit, len(terms))
	out.AcceptedTerms = append(out.AcceptedTerms, terms[offset:end]...)
	if end < len(terms) {
		tok := encodeAgreementToken(termsToken{Agreement: a.sub.AgreementID, Offset: end})
		out.NextToken = &tok
	}
	return out, nil
}

// termsToken is a GetAgreementTerms NextToken's content.
type termsToken struct {
	Agreement string `json:"a"`
	Offset    int    `json:"o"`
}

// searchToken is a SearchAgreements NextToken's content: the last
// agreement answered, by its place in the sort order, and the query.
type searchToken struct {
	End       int64  `json:"e"` // unix nanoseconds; 0: no end
	Agreement string `json:"a"`
	Query     string `json:"q"`
}

func invalidNextToken(op string) error {
	msg := "The nextToken is not valid for this request: pass the nextToken of the previous " + op + " result, with the same parameters."
	return mpmeter.AgreementRuleError(mpmeter.ValidationExceptionReasonINVALID_NEXT_TOKEN, "nextToken", msg)
}

func agreementTokenChecksum(payload []byte) []byte {
	sum := sha256.Sum256(append([]byte("mpmeter Agreement Service nextToken\x00"), payload...))
	return sum[:tokenChecksumLen]
}

// encodeAgreementToken writes v as an opaque, checksummed token (base64url:
// inside the model's NextToken pattern). Not signed: it only names a
// position among the caller's own agreements.
func encodeAgreementToken(v any) string {
	payload, _ := json.Marshal(v)
	return base64.RawURLEncoding.EncodeToString(append(payload, agreementTokenChecksum(payload)...))
}

func decodeAgreementToken(s string, v any) error {
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(raw) <= tokenChecksumLen {
		return errBadToken
	}
	payload, sum := raw[:len(raw)-tokenChecksumLen], raw[len(raw)-tokenChecksumLen:]
	if string(sum) != string(agreementTokenChecksum(payload)) || json.Unmarshal(payload, v) != nil {
		return errBadToken
	}
	return nil
}

// Filter names of SearchAgreements.
const (
	filterPartyType          = "PartyType"
	filterAgreementType      = "AgreementType"
	filterResourceIdentifier = "ResourceIdentifier"
	filterResourceType       = "ResourceType"
	filterStatus             = "Status"
	filterAcceptorAccountID  = "AcceptorAccountId"
	filterOfferID            = "OfferId"
	filterOfferSetID         = "OfferSetId"
	filterBeforeEndTime      = "BeforeEndTime"
	filterAfterEndTime       = "AfterEndTime"
)

var searchFilterNames = []string{filterPartyType, filterAgreementType, filterResourceIdentifier, filterResourceType,
	filterStatus, filterAcceptorAccountID, filterOfferID, filterOfferSetID, filterBeforeEndTime, filterAfterEndTime}

// search is a SearchAgreements query, checked.
type search struct {
	proposer   bool // PartyType Proposer (else Acceptor)
	none       bool // a filter no agreement can match (VendorInsightsAgreement, OfferSetId, RENEWED, ...)
	resource   string
	resType    string
	status     string // a subscription status
	acceptor   string
	offer      string
	endBefore  time.Time
	endAfter   time.Time
	descending bool
	digest     string
}

func filterError(reason string, i int, member, value, constraint string) error {
	field := fmt.Sprintf("filters.%d.member.%s", i+1, member)
	return mpmeter.AgreementRuleError(reason, field, fmt.Sprintf("1 validation error detected: Value '%s' at '%s' failed to satisfy constraint: %s", value, field, constraint))
}

// parseEndTime reads a BeforeEndTime/AfterEndTime value: RFC 3339 (the
// filter value pattern has no '.', so whole seconds) or epoch seconds.
func parseEndTime(v string) (time.Time, bool) {
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return t, true
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		return time.Unix(n, 0).UTC(), true
	}
	return time.Time{}, false
}

func parseSearch(in *mpmeter.SearchAgreementsInput) (search, error) {
	q := search{descending: true}
	if in.Catalog != nil && *in.Catalog != mpmeter.AgreementCatalog {
		return q, mpmeter.AgreementRuleError(mpmeter.ValidationExceptionReasonINVALID_CATALOG, "catalog",
			fmt.Sprintf("1 validation error detected: Value '%s' at 'catalog' failed to satisfy constraint: Member must be %s", *in.Catalog, mpmeter.AgreementCatalog))
	}
	if in.Sort != nil {
		if in.Sort.SortBy != nil && *in.Sort.SortBy != "EndTime" {
			return q, mpmeter.AgreementRuleError(mpmeter.ValidationExceptionReasonINVALID_SORT_BY, "sort.sortBy",
				fmt.Sprintf("1 validation error detected: Value '%s' at 'sort.sortBy' failed to satisfy constraint: Only EndTime is supported for sorting", *in.Sort.SortBy))
		}
		if in.Sort.SortOrder != nil && *in.Sort.SortOrder == mpmeter.SortOrderASCENDING {
			q.descending = false
		}
	}
	seen := map[string]bool{}
	var party bool
	for i, f := range in.Filters {
		if f.Name == nil {
			field := fmt.Sprintf("filters.%d.member.name", i+1)
			return q, mpmeter.AgreementRuleError(mpmeter.ValidationExceptionReasonMISSING_FILTER_NAME, field, "1 validation error detected: Value null at '"+field+"' failed to satisfy constraint: Member must not be null")
		}
		name := *f.Name
		if !slices.Contains(searchFilterNames, name) {
			return q, filterError(mpmeter.ValidationExceptionReasonINVALID_FILTER_NAME, i, "name", name, "Member must satisfy enum value set: ["+strings.Join(searchFilterNames, ", ")+"]")
		}
		if seen[name] {
			return q, filterError(mpmeter.ValidationExceptionReasonINVALID_FILTERS, i, "name", name, "Each filter may be given once")
		}
		seen[name] = true
		if len(f.Values) == 0 {
			field := fmt.Sprintf("filters.%d.member.values", i+1)
			return q, mpmeter.AgreementRuleError(mpmeter.ValidationExceptionReasonMISSING_FILTER_VALUES, field, "1 validation error detected: Value null at '"+field+"' failed to satisfy constraint: Member must not be null")
		}
		v := f.Values[0] // the model allows exactly one
		switch name {
		case filterPartyType:
			switch v {
			case "Proposer":
				q.proposer = true
			case "Acceptor":
			default:
				return q, filterError(mpmeter.ValidationExceptionReasonINVALID_PARTY_TYPE, i, "values", v, "Member must satisfy enum value set: [Proposer, Acceptor]")
			}
			party = true
		case filterAgreementType:
			switch v {
			case mpmeter.PurchaseAgreement:
			case "VendorInsightsAgreement":
				q.none = true
			default:
				return q, filterError(mpmeter.ValidationExceptionReasonINVALID_AGREEMENT_TYPE, i, "values", v, "Member must satisfy enum value set: [PurchaseAgreement, VendorInsightsAgreement]")
			}
		case filterResourceIdentifier:
			q.resource = v
		case filterResourceType:
			if !slices.Contains(resourceTypes, v) {
				return q, filterError(mpmeter.ValidationExceptionReasonINVALID_FILTER_VALUES, i, "values", v, "Member must satisfy enum value set: ["+strings.Join(resourceTypes, ", ")+"]")
			}
			q.resType = v
		case filterStatus:
			statuses := []string{mpmeter.AgreementStatusACTIVE, mpmeter.AgreementStatusARCHIVED, mpmeter.AgreementStatusCANCELLED, mpmeter.AgreementStatusEXPIRED,
				mpmeter.AgreementStatusRENEWED, mpmeter.AgreementStatusREPLACED, mpmeter.AgreementStatusROLLED_BACK, mpmeter.AgreementStatusSUPERSEDED, mpmeter.AgreementStatusTERMINATED}
			if !slices.Contains(statuses, v) {
				return q, filterError(mpmeter.ValidationExceptionReasonINVALID_STATUS, i, "values", v, "Member must satisfy enum value set: ["+strings.Join(statuses, ", ")+"]")
			}
			q.status = subscriptionStatus(v)
			q.none = q.none || q.status == ""
		case filterAcceptorAccountID:
			if len(v) != 12 || strings.Trim(v, "0123456789") != "" {
				return q, filterError(mpmeter.ValidationExceptionReasonINVALID_FILTER_VALUES, i, "values", v, "Member must be a 12-digit AWS account id")
			}
			q.acceptor = v
		case filterOfferID:
			q.offer = v
		case filterOfferSetID:
			q.none = true // mpmeter has no offer sets
		case filterBeforeEndTime, filterAfterEndTime:
			t, ok := parseEndTime(v)
			if !ok {
				return q, filterError(mpmeter.ValidationExceptionReasonINVALID_FILTER_VALUES, i, "values", v, "Member must be a date and time (2026-01-31T00:00:00Z) or epoch seconds")
			}
			if name == filterBeforeEndTime {
				q.endBefore = t
			} else {
				q.endAfter = t
			}
		}
	}
	if !party {
		return q, mpmeter.AgreementRuleError(mpmeter.ValidationExceptionReasonMISSING_PARTY_TYPE, "filters",
			"1 validation error detected: Value at 'filters' failed to satisfy constraint: The PartyType filter (Proposer or Acceptor) is required")
	}
	q.digest = searchDigest(in)
	return q, nil
}

// searchDigest names a query's filters and sort, so a token is only good
// for the query it came from.
func searchDigest(in *mpmeter.SearchAgreementsInput) string {
	var parts []string
	for _, f := range in.Filters {
		parts = append(parts, *f.Name+"="+strings.Join(f.Values, ","))
	}
	slices.Sort(parts)
	if in.Sort != nil && in.Sort.SortOrder != nil {
		parts = append(parts, "sort="+*in.Sort.SortOrder)
	}
	h := sha256.Sum256([]byte(strings.Join(parts, "\x00")))
	return base64.RawURLEncoding.EncodeToString(h[:12])
}

// matchProduct reports whether p is in the query's products.
func (q search) matchProduct(p mpmeter.Product) bool {
	if q.resource != "" && q.resource != p.Code && q.resource != mpmeter.ProductIDFor(p.Code) {
		return false
	}
	return q.resType == "" || q.resType == resourceType(p.Type)
}

// match reports whether a passes the query's filters.
func (q search) match(a agreement) bool {
	switch {
	case !q.matchProduct(a.product),
		q.offer != "" && q.offer != a.offerID(),
		q.acceptor != "" && q.acceptor != a.sub.AccountID,
		q.status != "" && q.status != a.sub.Status:
		return false
	}
	// An agreement without an end ends after any date.
	if !q.endBefore.IsZero() && (a.end.IsZero() || !a.end.Before(q.endBefore)) {
		return false
	}
	if !q.endAfter.IsZero() && !a.end.IsZero() && !a.end.After(q.endAfter) {
		return false
	}
	return true
}

// position is an agreement's place in the search order.
type position struct {
	end int64 // unix nanoseconds; 0: no end, the latest of all
	id  string
}

func positionOf(a agreement) position {
	p := position{id: a.sub.AgreementID}
	if !a.end.IsZero() {
		p.end = a.end.UnixNano()
	}
	return p
}

// before reports whether x comes before y: by end (no end being the
// latest), descending or ascending, then by agreement id.
func (q search) before(x, y position) bool {
	if x.end != y.end {
		xe, ye := x.end, y.end
		if xe == 0 {
			xe = 1<<63 - 1
		}
		if ye == 0 {
			ye = 1<<63 - 1
		}
		if q.descending {
			return xe > ye
		}
		return xe < ye
	}
	return x.id < y.id
}

// best keeps the first n agreements of the search order that come after a
// cursor: a bounded, sorted buffer.
type best struct {
	q      search
	after  *position
	n      int
	items  []agreement
	places []position
}

func (b *best) offer(a agreement) {
	p := positionOf(a)
	if b.after != nil && !b.q.before(*b.after, p) {
		return
	}
	i, _ := slices.BinarySearchFunc(b.places, p, func(x, y position) int {
		if b.q.before(x, y) {
			return -1
		}
		if b.q.before(y, x) {
			return 1
		}
		return 0
	})
	if i >= b.n {
		return
	}
	b.items = slices.Insert(b.items, i, a)
	b.places = slices.Insert(b.places, i, p)
	if len(b.items) > b.n {
		b.items, b.places = b.items[:b.n], b.places[:b.n]
	}
}

// SearchAgreements answers the caller's agreements matching the filters,
// one page at a time.
func (s *AgreementService) SearchAgreements(ctx context.Context, caller mpmeter.Caller, in *mpmeter.SearchAgreementsInput) (*mpmeter.SearchAgreementsOutput, error) {
	q, err := parseSearch(in)
	if err != nil {
		return nil, err
	}
	limit := DefaultMaxAgreementResults
	if in.MaxResults != nil {
		limit = int(*in.MaxResults)
	}
	b := &best{q: q, n: limit + 1} // one more tells whether another page follows
	if in.NextToken != nil {
		var tok searchToken
		if decodeAgreementToken(*in.NextToken, &tok) != nil || tok.Query != q.digest || tok.Agreement == "" {
			return nil, invalidNextToken("SearchAgreements")
		}
		b.after = &position{end: tok.End, id: tok.Agreement}
	}
	out := &mpmeter.SearchAgreementsOutput{AgreementViewSummaries: []mpmeter.AgreementViewSummary{}}
	if !q.none {
		if q.proposer {
			err = s.scanProposer(ctx, caller.AccountID, q, b)
		} else {
			err = s.scanAcceptor(ctx, caller.AccountID, q, b)
		}
		if err != nil {
			return nil, err
		}
	}
	items := b.items
	if len(items) > limit {
		last := b.places[limit-1]
		tok := encodeAgreementToken(searchToken{End: last.end, Agreement: last.id, Query: q.digest})
		out.NextToken = &tok
		items = items[:limit]
	}
	for _, a := range items {
		out.AgreementViewSummaries = append(out.AgreementViewSummaries, a.summary())
	}
	return out, nil
}

// scanProposer offers b the agreements of the seller's products.
func (s *AgreementService) scanProposer(ctx context.Context, seller string, q search, b *best) error {
	page := mpmeter.Page{Limit: agreementScanPage}
	for {
		products, err := s.store.Products(ctx, page)
		if err != nil {
			return err
		}
		for _, p := range products {
			if p.SellerAccountID != seller || !q.matchProduct(p) {
				continue
			}
			f := mpmeter.SubscriptionFilter{ProductCode: p.Code, AccountID: q.acceptor, Status: q.status}
			products := map[string]mpmeter.Product{p.Code: p}
			if err := s.scanSubscriptions(ctx, f, products, q, b); err != nil {
				return err
			}
		}
		if len(products) < page.Limit {
			return nil
		}
		page.After = products[len(products)-1].Code
	}
}

// scanAcceptor offers b the buyer's own agreements.
func (s *AgreementService) scanAcceptor(ctx context.Context, buyer string, q search, b *best) error {
	if q.acceptor != "" && q.acceptor != buyer {
		return nil
	}
	return s.scanSubscriptions(ctx, mpmeter.SubscriptionFilter{AccountID: buyer, Status: q.status}, map[string]mpmeter.Product{}, q, b)
}

// scanSubscriptions pages through the subscriptions matching f, reads each
// page's entitlements in one query per product, and offers the matching
// agreements to b. products caches products by code (read when missing).
func (s *AgreementService) scanSubscriptions(ctx context.Context, f mpmeter.SubscriptionFilter, products map[string]mpmeter.Product, q search, b *best) error {
	page := mpmeter.Page{Limit: agreementScanPage}
	for {
		subs, err := s.store.Subscriptions(ctx, f, page)
		if err != nil {
			return err
		}
		byProduct := map[string][]string{}
		for _, sub := range subs {
			if _, ok := products[sub.ProductCode]; !ok {
				p, err := s.store.Product(ctx, sub.ProductCode)
				if err != nil {
					return err
				}
				products[sub.ProductCode] = p
			}
			if q.matchProduct(products[sub.ProductCode]) {
				byProduct[sub.ProductCode] = append(byProduct[sub.ProductCode], sub.LicenseArn)
			}
		}
		ents := map[string][]mpmeter.Entitlement{}
		for code, arns := range byProduct {
			list, err := s.store.Entitlements(ctx, mpmeter.EntitlementFilter{ProductCode: code, LicenseArns: arns})
			if err != nil {
				return err
			}
			for _, e := range list {
				ents[e.LicenseArn] = append(ents[e.LicenseArn], e)
			}
		}
		for _, sub := range subs {
			p := products[sub.ProductCode]
			if !q.matchProduct(p) {
				continue
			}
			if a := newAgreement(sub, p, ents[sub.LicenseArn]); q.match(a) {
				b.offer(a)
			}
		}
		if len(subs) < page.Limit {
			return nil
		}
		page.After = subs[len(subs)-1].AgreementID
	}
}
