package mpmeter

import (
	"errors"
	"fmt"
)

// Error is the one error type the API returns to clients: an AWS error name
// (the model's shape name, such as InvalidProductCodeException) and a message.
// The HTTP status is looked up by name by the protocol layer unless HTTPStatus
// says otherwise.
type Error struct {
	Code    string
	Message string
	// HTTPStatus overrides the status the protocol layer looks up by name
	// (0: by name). ExpiredTokenException is 400 from ResolveCustomer but
	// 403 when it is the request's credentials that expired.
	HTTPStatus int
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// Errorf returns an *Error with a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the AWS error name of err, or "" when err is not an *Error
// (an internal error, which clients see as InternalServiceErrorException).
func ErrorCode(err error) string {
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
	CodeCustomerNotEntitled      = "CustomerNotEntitledException"
	CodeDisabledAPI              = "DisabledApiException"
	CodeDuplicateRequest         = "DuplicateRequestException"
	CodeExpiredToken             = "ExpiredTokenException"
	CodeIdempotencyConflict      = "IdempotencyConflictException"
	CodeInternalServiceError     = "InternalServiceErrorException"
	CodeInvalidCustomerID        = "InvalidCustomerIdentifierException"
	CodeInvalidEndpointRegion    = "InvalidEndpointRegionException"
	CodeInvalidLicense           = "InvalidLicenseException"
	CodeInvalidProductCode       = "InvalidProductCodeException"
	CodeInvalidPublicKeyVersion  = "InvalidPublicKeyVersionException"
	CodeInvalidRegion            = "InvalidRegionException"
	CodeInvalidTag               = "InvalidTagException"
	CodeInvalidToken             = "InvalidTokenException"
	CodeInvalidUsageAllocations  = "InvalidUsageAllocationsException"
	CodeInvalidUsageDimension    = "InvalidUsageDimensionException"
	CodePlatformNotSupported     = "PlatformNotSupportedException"
	CodeThrottling               = "ThrottlingException"
	CodeTimestampOutOfBounds     = "TimestampOutOfBoundsException"
	CodeDryRunOperation          = "DryRunOperation"
	CodeValidation               = "ValidationException"
	CodeSerialization            = "SerializationException"
	CodeUnknownOperation         = "UnknownOperationException"
	CodeAccessDenied             = "AccessDeniedException"
	CodeUnrecognizedClient       = "UnrecognizedClientException"
	CodeInvalidSignature         = "InvalidSignatureException"
	CodeIncompleteSignature      = "IncompleteSignatureException"
	CodeMissingAuthentication    = "MissingAuthenticationTokenException"
	CodeServiceUnavailable       = "ServiceUnavailable"
	CodeRequestEntityTooLarge    = "RequestEntityTooLargeException"
	CodeInternalFailureUnmodeled = "InternalFailure"
)

// Store errors. Store implementations wrap or return these so callers can
// tell "not there" and "conflict" from a broken database.
var (
	// ErrNotFound: the looked-up row does not exist.
	ErrNotFound = errors.New("mpmeter: not found")
	// ErrIdempotencyConflict: a client token was reused with other parameters.
	ErrIdempotencyConflict = errors.New("mpmeter: idempotency token reused with different parameters")
	// ErrExists: a create-only row (a signing key version) exists already.
	ErrExists = errors.New("mpmeter: already exists")
)
