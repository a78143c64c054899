package service

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"slices"
	"strings"

	"github.com/mpmeter/mpmeter"
)

// The Entitlement Service's rules (GetEntitlements):
//
//   - Only the product's seller reads its entitlements. A product that does
//     not exist and another seller's product get the same
//     InvalidParameterException, so product codes cannot be probed (the
//     Metering operations' InvalidProductCodeException does the same).
//   - Filter values are unioned within a key and the keys intersected.
//     CUSTOMER_IDENTIFIER and CUSTOMER_AWS_ACCOUNT_ID are mutually exclusive
//     (the model's documentation), and DIMENSION needs a filter naming the
//     customer (CUSTOMER_IDENTIFIER, CUSTOMER_AWS_ACCOUNT_ID or LICENSE_ARN):
//     AWS answers a DIMENSION filter alone with "Invalid filter combination
//     provided. Please provide the CUSTOMER_IDENTIFIER along with DIMENSION."
//     (reported in boto/boto3#3520).
//   - Only active subscriptions' entitlements that have not expired by the
//     service clock are answered: a cancelled or ended contract entitles to
//     nothing.
//   - Pages hold MaxResults entitlements (default and most 25) in (license
//     ARN, dimension) order. NextToken is present only when more follow; it
//     is opaque, bound to the product and filter it was given for, and
//     carries a checksum: a changed, truncated or foreign token, or one
//     reused with another product or filter, is InvalidParameterException.
//     It is not a secret (it only names a position in the seller's own
//     entitlements), so it is not signed.

// Entitlement limits.
const (
	// DefaultMaxEntitlements is the page size without MaxResults (the
	// model's most).
	DefaultMaxEntitlements = 25
	// MaxFilterValues bounds each filter key's values, so that one request
	// cannot make an unbounded query (AWS documents no limit; the 1 MB
	// request limit bounds the rest).
	MaxFilterValues = 1000
)

var _ mpmeter.EntitlementService = (*Service)(nil)

func invalidParameter(format string, args ...any) error {
	return mpmeter.Errorf(mpmeter.CodeInvalidParameter, format, args...)
}

// GetEntitlements answers the seller's entitlements of one product.
func (s *Service) GetEntitlements(ctx context.Context, caller mpmeter.Caller, in *mpmeter.GetEntitlementsInput) (*mpmeter.GetEntitlementsOutput, error) {
	code := *in.ProductCode
	p, err := s.store.Product(ctx, code)
	if errors.Is(err, mpmeter.ErrNotFound) || (err == nil && p.SellerAccountID != caller.AccountID) {
		return nil, invalidParameter("The product code %s is not valid: it is not a product of the calling seller account.", code)
	} else if err != nil {
		return nil, err
	}
	f := mpmeter.EntitlementFilter{ProductCode: code, ActiveAt: s.clock.Now()}
	for key, values := range in.Filter {
		if len(values) > MaxFilterValues {
			return nil, invalidParameter("Filter %s has %d values; at most %d are accepted.", key, len(values), MaxFilterValues)
		}
		values = slices.Compact(slices.Sorted(slices.Values(values)))
		switch key {
		case mpmeter.GetEntitlementFilterNameCUSTOMER_IDENTIFIER:
			f.CustomerIdentifiers = values
		case mpmeter.GetEntitlementFilterNameCUSTOMER_AWS_ACCOUNT_ID:
			f.CustomerAccountIDs = values
		case mpmeter.GetEntitlementFilterNameDIMENSION:
			f.Dimensions = values
		case mpmeter.GetEntitlementFilterNameLICENSE_ARN:
			f.LicenseArns = values
		}
	}
	switch {
	case f.CustomerIdentifiers != nil && f.CustomerAccountIDs != nil:
		return nil, invalidParameter("Invalid filter combination provided. CUSTOMER_IDENTIFIER and CUSTOMER_AWS_ACCOUNT_ID are mutually exclusive: use one or the other, not both in the same request.")
	case f.Dimensions != nil && f.CustomerIdentifiers == nil && f.CustomerAccountIDs == nil && f.LicenseArns == nil:
		return nil, invalidParameter("Invalid filter combination provided. Please provide the CUSTOMER_IDENTIFIER (or CUSTOMER_AWS_ACCOUNT_ID or LICENSE_ARN) along with DIMENSION.")
	}
	digest := filterDigest(f)
	if in.NextToken != nil {
		pos, err := decodeEntitlementToken(*in.NextToken, digest)
		if err != nil {
			return nil, invalidParameter("The NextToken is not valid for this request: pass the NextToken of the previous GetEntitlements result, with the same ProductCode and Filter.")
		}
		f.After = &pos
	}
	limit := DefaultMaxEntitlements
	if in.MaxResults != nil {
		limit = int(*in.MaxResults)
	}
	f.Limit = limit + 1 // one more tells whether another page follows
	ents, err := s.store.Entitlements(ctx, f)
	if err != nil {
		return nil, err
	}
	out := &mpmeter.GetEntitlementsOutput{Entitlements: []mpmeter.EntitlementItem{}}
	if len(ents) > limit {
		last := ents[limit-1]
		tok := encodeEntitlementToken(mpmeter.EntitlementPosition{LicenseArn: last.LicenseArn, Dimension: last.Dimension}, digest)
		out.NextToken = &tok
		ents = ents[:limit]
	}
	for _, e := range ents {
		out.Entitlements = append(out.Entitlements, entitlementItem(e))
	}
	return out, nil
}

// entitlementItem is e on the wire.
func entitlementItem(e mpmeter.Entitlement) mpmeter.EntitlementItem {
	item := mpmeter.EntitlementItem{
		ProductCode:          &e.ProductCode,
		Dimension:            &e.Dimension,
		CustomerAWSAccountId: &e.CustomerAccountID,
		LicenseArn:           &e.LicenseArn,
		Value:                &e.Value,
	}
	// A concurrent-agreements subscription has no customer identifier.
	if e.CustomerIdentifier != "" {
		item.CustomerIdentifier = &e.CustomerIdentifier
	}
	if !e.ExpiresAt.IsZero() {
		item.ExpirationDate = mpmeter.NewTimestamp(e.ExpiresAt)
	}
	return item
}

// filterDigest names a request's product and filter (its lists sorted and
// without repeats), so a token is only good for the query it came from.
func filterDigest(f mpmeter.EntitlementFilter) string {
	h := sha256.New()
	for _, part := range [][]string{{f.ProductCode}, f.CustomerIdentifiers, f.CustomerAccountIDs, f.Dimensions, f.LicenseArns} {
		h.Write([]byte(strings.Join(part, "\x00")))
		h.Write([]byte{0xff})
	}
	return base64.RawURLEncoding.EncodeToString(h.Sum(nil)[:12])
}

// entitlementToken is a NextToken's content.
type entitlementToken struct {
	LicenseArn string `json:"l"`
	Dimension  string `json:"d"`
	Query      string `json:"q"` // filterDigest
}

const tokenChecksumLen = 8

func tokenChecksum(payload []byte) []byte {
	sum := sha256.Sum256(append([]byte("mpmeter GetEntitlements NextToken\x00"), payload...))
	return sum[:tokenChecksumLen]
}

func encodeEntitlementToken(pos mpmeter.EntitlementPosition, digest string) string {
	payload, _ := json.Marshal(entitlementToken{LicenseArn: pos.LicenseArn, Dimension: pos.Dimension, Query: digest})
	return base64.RawURLEncoding.EncodeToString(append(payload, tokenChecksum(payload)...))
}

var errBadToken = errors.New("not a NextToken of this query")

func decodeEntitlementToken(s, digest string) (mpmeter.EntitlementPosition, error) {
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(raw) <= tokenChecksumLen {
		return mpmeter.EntitlementPosition{}, errBadToken
	}
	payload, sum := raw[:len(raw)-tokenChecksumLen], raw[len(raw)-tokenChecksumLen:]
	var tok entitlementToken
	if string(sum) != string(tokenChecksum(payload)) || json.Unmarshal(payload, &tok) != nil || tok.Query != digest || tok.LicenseArn == "" {
		return mpmeter.EntitlementPosition{}, errBadToken
	}
	return mpmeter.EntitlementPosition{LicenseArn: tok.LicenseArn, Dimension: tok.Dimension}, nil
}
