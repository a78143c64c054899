package mpmeter

import (
	"errors"
	"fmt"
	"net/http"
)

// ErrorCode is an AWS error name: the model's exception shape name (such as
// InvalidProductCodeException) or one of the common errors every AWS JSON
// service answers with.
type ErrorCode string

// Error is the one error type the API returns to clients: an AWS error name
// and a message. The HTTP status belongs to the name (see ErrorCodes) unless
// HTTPStatus says otherwise.
type Error struct {
	Code    ErrorCode
	Message string
	// HTTPStatus overrides the status the protocol layer looks up by name
	// (0: by name). ExpiredTokenException is 400 from ResolveCustomer but
	// 403 when it is the request's credentials that expired.
	HTTPStatus int
	// Members are the error shape's further members, written beside
	// __type and message (the Agreement Service's ValidationException
	// reason and fields, ResourceNotFoundException resourceId and
	// resourceType); nil for most errors.
	Members map[string]any
}

func (e *Error) Error() string { return string(e.Code) + ": " + e.Message }

// Errorf returns an *Error with a formatted message.
func Errorf(code ErrorCode, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// CodeOf returns the AWS error name of err, or "" when err is not an *Error
// (an internal error, which clients see as InternalServiceErrorException).
func CodeOf(err error) ErrorCode {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

// AWS error names. The modeled ones are the model's exception shapes; the
// common ones come from the API reference's Common Errors and PROTOCOL.md.
const (
	// Modeled errors (service-2.current.json).
	CodeCustomerNotEntitled     ErrorCode = "CustomerNotEntitledException"
	CodeDisabledAPI             ErrorCode = "DisabledApiException"
	CodeDuplicateRequest        ErrorCode = "DuplicateRequestException"
	CodeExpiredToken            ErrorCode = "ExpiredTokenException"
	CodeIdempotencyConflict     ErrorCode = "IdempotencyConflictException"
	CodeInternalServiceError    ErrorCode = "InternalServiceErrorException"
	CodeInvalidCustomerID       ErrorCode = "InvalidCustomerIdentifierException"
	CodeInvalidEndpointRegion   ErrorCode = "InvalidEndpointRegionException"
	CodeInvalidLicense          ErrorCode = "InvalidLicenseException"
	CodeInvalidProductCode      ErrorCode = "InvalidProductCodeException"
	CodeInvalidPublicKeyVersion ErrorCode = "InvalidPublicKeyVersionException"
	CodeInvalidRegion           ErrorCode = "InvalidRegionException"
	CodeInvalidTag              ErrorCode = "InvalidTagException"
	CodeInvalidToken            ErrorCode = "InvalidTokenException"
	CodeInvalidUsageAllocations ErrorCode = "InvalidUsageAllocationsException"
	CodeInvalidUsageDimension   ErrorCode = "InvalidUsageDimensionException"
	CodePlatformNotSupported    ErrorCode = "PlatformNotSupportedException"
	CodeThrottling              ErrorCode = "ThrottlingException"
	CodeTimestampOutOfBounds    ErrorCode = "TimestampOutOfBoundsException"

	// Entitlement Service errors (marketplace-entitlement-2017-01-11.json),
	// besides ThrottlingException and InternalServiceErrorException, which
	// it shares with the Metering model.
	CodeInvalidParameter ErrorCode = "InvalidParameterException"

	// Agreement Service errors (marketplace-agreement-2020-03-01.json),
	// besides ValidationException, AccessDeniedException and
	// ThrottlingException, which it shares by name.
	CodeResourceNotFound ErrorCode = "ResourceNotFoundException"
	CodeInternalServer   ErrorCode = "InternalServerException"

	// Common errors (API reference "Common Errors", PROTOCOL.md).
	CodeValidation               ErrorCode = "ValidationException"
	CodeSerialization            ErrorCode = "SerializationException"
	CodeUnknownOperation         ErrorCode = "UnknownOperationException"
	CodeAccessDenied             ErrorCode = "AccessDeniedException"
	CodeUnrecognizedClient       ErrorCode = "UnrecognizedClientException"
	CodeInvalidClientTokenID     ErrorCode = "InvalidClientTokenId"
	CodeOptInRequired            ErrorCode = "OptInRequired"
	CodeInvalidSignature         ErrorCode = "InvalidSignatureException"
	CodeIncompleteSignature      ErrorCode = "IncompleteSignatureException"
	CodeMissingAuthentication    ErrorCode = "MissingAuthenticationTokenException"
	CodeServiceUnavailable       ErrorCode = "ServiceUnavailable"
	CodeRequestEntityTooLarge    ErrorCode = "RequestEntityTooLargeException"
	CodeInternalFailureUnmodeled ErrorCode = "InternalFailure"
)

// ErrorCodeInfo is one row of the error table.
type ErrorCodeInfo struct {
	Code ErrorCode
	// HTTPStatus is the status AWS answers the error with.
	HTTPStatus int
	// Description says when the error is answered.
	Description string
}

// errorTable is every error name mpmeter answers with and its HTTP status:
// every modeled error is 400 but the fault InternalServiceErrorException
// (500); the common errors follow the API reference and PROTOCOL.md.
var errorTable = [...]ErrorCodeInfo{
	{CodeCustomerNotEntitled, http.StatusBadRequest, "The caller has no active subscription to the product."},
	{CodeDisabledAPI, http.StatusBadRequest, "The operation is not offered in the credential scope's region."},
	{CodeDuplicateRequest, http.StatusBadRequest, "MeterUsage: another quantity for the same workload, product, dimension and hour."},
	{CodeExpiredToken, http.StatusBadRequest, "ResolveCustomer: the registration token has expired."},
	{CodeIdempotencyConflict, http.StatusBadRequest, "MeterUsage: a ClientToken reused with other parameters."},
	{CodeInternalServiceError, http.StatusInternalServerError, "Anything internal; the client sees no detail."},
	{CodeInvalidCustomerID, http.StatusBadRequest, "BatchMeterUsage: the customer identifier does not exist."},
	{CodeInvalidEndpointRegion, http.StatusBadRequest, "MeterUsage: the endpoint region is not the workload's."},
	{CodeInvalidLicense, http.StatusBadRequest, "BatchMeterUsage: the LicenseArn does not match the customer's agreement or the product."},
	{CodeInvalidProductCode, http.StatusBadRequest, "The product does not exist, is not the caller's, or is not of the operation's kind."},
	{CodeInvalidPublicKeyVersion, http.StatusBadRequest, "RegisterUsage: no signing key of that version."},
	{CodeInvalidRegion, http.StatusBadRequest, "RegisterUsage: the region is not the workload's."},
	{CodeInvalidTag, http.StatusBadRequest, "A usage allocation repeats a tag key."},
	{CodeInvalidToken, http.StatusBadRequest, "ResolveCustomer: the registration token does not exist or is another seller's."},
	{CodeInvalidUsageAllocations, http.StatusBadRequest, "Allocations do not sum to the quantity or repeat a tag set."},
	{CodeInvalidUsageDimension, http.StatusBadRequest, "The dimension is not the product's."},
	{CodePlatformNotSupported, http.StatusBadRequest, "RegisterUsage: the caller is not a container workload."},
	{CodeThrottling, http.StatusBadRequest, "More calls per second than the rate limit (400 keeps botocore's legacy retry working)."},
	{CodeTimestampOutOfBounds, http.StatusBadRequest, "A usage timestamp is too old or in the future."},
	{CodeInvalidParameter, http.StatusBadRequest, "GetEntitlements: a parameter breaks the model's constraints, a filter combination is refused, the NextToken is not one the service gave, or the product is not the caller's."},
	{CodeResourceNotFound, http.StatusBadRequest, "Agreement Service: no agreement with that id that the caller is a party to."},
	{CodeInternalServer, http.StatusInternalServerError, "Agreement Service: anything internal (its fault's name); the client sees no detail."},
	{CodeValidation, http.StatusBadRequest, "The request violates the service model's constraints."},
	{CodeSerialization, http.StatusBadRequest, "Malformed JSON, wrong member types, timestamps that are not numbers."},
	{CodeUnknownOperation, http.StatusBadRequest, "An unknown X-Amz-Target, or a method other than POST."},
	{CodeAccessDenied, http.StatusBadRequest, "The caller may not call the operation (MeterUsage from a key that is not a workload's)."},
	{CodeUnrecognizedClient, http.StatusForbidden, "The access key does not exist."},
	{CodeInvalidClientTokenID, http.StatusForbidden, "The access key ID does not exist in AWS's records (API reference)."},
	{CodeOptInRequired, http.StatusForbidden, "The access key needs a subscription for the service (API reference)."},
	{CodeInvalidSignature, http.StatusForbidden, "Wrong signature, wrong service in the scope, or clock skew."},
	{CodeIncompleteSignature, http.StatusBadRequest, "A malformed Authorization header."},
	{CodeMissingAuthentication, http.StatusForbidden, "No Authorization header."},
	{CodeServiceUnavailable, http.StatusServiceUnavailable, "A temporary failure (a deadline passed, or a bound on connections, requests or body memory was reached); clients retry."},
	{CodeRequestEntityTooLarge, http.StatusRequestEntityTooLarge, "The request body is over 1 MB."},
	{CodeInternalFailureUnmodeled, http.StatusInternalServerError, "The API reference's unmodeled internal failure."},
}

// ErrorCodes returns the error table: every error name mpmeter answers with,
// its HTTP status and when it is answered.
func ErrorCodes() []ErrorCodeInfo { return append([]ErrorCodeInfo(nil), errorTable[:]...) }

// LookupErrorCode returns the error table's row for code.
func LookupErrorCode(code ErrorCode) (ErrorCodeInfo, bool) {
	for _, info := range errorTable {
		if info.Code == code {
			return info, true
		}
	}
	return ErrorCodeInfo{}, false
}

// Store errors. Store implementations wrap or return these so callers can
// tell "not there" and "conflict" from a broken database.
var (
	// ErrNotFound: the looked-up row does not exist.
	ErrNotFound = errors.New("mpmeter: not found")
	// ErrIdempotencyConflict: a client token was reused with other parameters.
	ErrIdempotencyConflict = errors.New("mpmeter: idempotency token reused with different parameters")
	// ErrExists: a create-only row (a signing key version, a CreateOnly put)
	// exists already, or a put would give a row a unique value (a customer
	// identifier) another row has.
	ErrExists = errors.New("mpmeter: already exists")
	// ErrConflict: a versioned put named a version the row no longer has
	// (someone else changed it since it was read).
	ErrConflict = errors.New("mpmeter: version conflict")
)

// ErrNoSuchKeyVersion is what a TokenSigner returns (wrapped) for a key
// version that does not exist: RegisterUsage answers
// InvalidPublicKeyVersionException.
var ErrNoSuchKeyVersion = errors.New("mpmeter: no such public key version")
