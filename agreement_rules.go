package mpmeter

import (
	"context"
	"crypto/sha256"
	"strings"
)

// AgreementService is the AWS Marketplace Agreement Service API, the read
// side a seller (or a buyer) calls: each method takes the verified caller
// and a request that has already passed model validation. Errors are *Error
// values with AWS error names; anything else is internal
// (InternalServerException, the model's fault).
type AgreementService interface {
	DescribeAgreement(ctx context.Context, caller Caller, in *DescribeAgreementInput) (*DescribeAgreementOutput, error)
	GetAgreementTerms(ctx context.Context, caller Caller, in *GetAgreementTermsInput) (*GetAgreementTermsOutput, error)
	SearchAgreements(ctx context.Context, caller Caller, in *SearchAgreementsInput) (*SearchAgreementsOutput, error)
}

// AgreementContentType is the Agreement Service's awsJson version's media
// type: its model says jsonVersion 1.0.
const AgreementContentType = "application/x-amz-json-1.0"

// agreementReasons maps the top-level member of a request's first violation
// to the model's ValidationExceptionReason; the missing variant where the
// model has one.
var agreementReasons = map[string][2]string{
	"agreementId": {ValidationExceptionReasonINVALID_AGREEMENT_ID, ValidationExceptionReasonMISSING_AGREEMENT_ID},
	"maxResults":  {ValidationExceptionReasonINVALID_MAX_RESULTS, ValidationExceptionReasonINVALID_MAX_RESULTS},
	"nextToken":   {ValidationExceptionReasonINVALID_NEXT_TOKEN, ValidationExceptionReasonINVALID_NEXT_TOKEN},
	"catalog":     {ValidationExceptionReasonINVALID_CATALOG, ValidationExceptionReasonINVALID_CATALOG},
	"filters":     {ValidationExceptionReasonINVALID_FILTERS, ValidationExceptionReasonINVALID_FILTERS},
	"name":        {ValidationExceptionReasonINVALID_FILTER_NAME, ValidationExceptionReasonMISSING_FILTER_NAME},
	"values":      {ValidationExceptionReasonINVALID_FILTER_VALUES, ValidationExceptionReasonMISSING_FILTER_VALUES},
	"sortBy":      {ValidationExceptionReasonINVALID_SORT_BY, ValidationExceptionReasonINVALID_SORT_BY},
	"sortOrder":   {ValidationExceptionReasonINVALID_SORT_ORDER, ValidationExceptionReasonINVALID_SORT_ORDER},
}

// agreementValidationMembers gives the Agreement Service's
// ValidationException its reason and fields (the model's members): fields
// lists every violation, reason names the first one's member (a filter's
// name or values by their own reasons), OTHER when the model has none.
func agreementValidationMembers(fields []ValidationField) map[string]any {
	reason := ValidationExceptionReasonOTHER
	if len(fields) > 0 {
		f := fields[0]
		// The innermost named member decides: filters.1.member.name is
		// the filter's name.
		parts := strings.Split(f.Name, ".")
		for i := len(parts) - 1; i >= 0; i-- {
			if r, ok := agreementReasons[parts[i]]; ok {
				reason = r[0]
				if strings.Contains(f.Message, "Member must not be null") {
					reason = r[1]
				}
				break
			}
		}
	}
	return map[string]any{"reason": reason, "fields": fields}
}

// AgreementRuleError is a ValidationException of the Agreement
// Service with its reason and one field: the service's own rules (a filter
// it does not support, a NextToken it did not give) answer like the model's
// constraints.
func AgreementRuleError(reason, field, message string) *Error {
	return &Error{Code: CodeValidation, Message: message, Members: map[string]any{
		"reason": reason,
		"fields": []ValidationField{{Name: field, Message: message}},
	}}
}

// AgreementCatalog is the one catalog agreements are made in.
const AgreementCatalog = "AWSMarketplace"

// PurchaseAgreement is every subscription's agreement type.
const PurchaseAgreement = "PurchaseAgreement"

// ProductIDFor is the product id (prod-...) of the product with this code,
// as the Agreement Service and EventBridge events name products: "prod-"
// and 13 lowercase letters and digits from a SHA-256 of the code, the shape
// of AWS's product ids. Derived, so every node and every seed agree.
func ProductIDFor(productCode string) string {
	sum := sha256.Sum256([]byte("mpmeter/product\x00" + productCode))
	return "prod-" + agreementIDEncoding.EncodeToString(sum[:])[:13]
}

// PublicOfferIDFor is the offer id of the product's public offer: the
// offer a subscription without an OfferID was made under. "offer-" and 13
// lowercase letters and digits from a SHA-256 of the code.
func PublicOfferIDFor(productCode string) string {
	sum := sha256.Sum256([]byte("mpmeter/public-offer\x00" + productCode))
	return "offer-" + agreementIDEncoding.EncodeToString(sum[:])[:13]
}
