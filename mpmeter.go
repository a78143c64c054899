// Package mpmeter holds the domain of the AWS Marketplace Metering Service as
// mpmeter implements it: the marketplace (accounts, access keys, workloads,
// products, subscriptions, registration tokens, signing keys), usage records,
// the API's request and response types (generated from the service model), the
// one error type, and the interfaces (Store, Clock) that the other packages
// implement. It imports nothing of ours, so every other package may import it.
package mpmeter

import (
	"context"
	"time"
)

//go:generate go run ./internal/gen -model spec/service-2.current.json -out api_gen.go
//go:generate go run ./internal/gen -model spec/marketplace-entitlement-2017-01-11.json -out entitlement_gen.go -prefix Entitlement -rename Entitlement=EntitlementItem -validation-error InvalidParameterException
//go:generate go run ./internal/gen -model spec/marketplace-agreement-2020-03-01.json -out agreement_gen.go -prefix Agreement -operations DescribeAgreement,GetAgreementTerms,SearchAgreements -validation-members agreementValidationMembers -cbor -rename Dimension=AgreementDimension,Filter=AgreementFilter,Resource=AgreementResource,Sort=AgreementSort,Constraints=RateCardConstraints,Selector=RateCardSelector,Resources=AgreementResources

// Clock is the service clock. Every marketplace rule (usage timestamp windows,
// hourly dedup, token expiry, key rotation) reads time from it, never from
// time.Now, so tests and the virtual clock can move it. SigV4's skew check is
// the one exception: clients sign with their real clock, so it reads wall time.
type Clock interface {
	Now() time.Time
}

// ClockFunc adapts a function to Clock.
type ClockFunc func() time.Time

// Now calls f.
func (f ClockFunc) Now() time.Time { return f() }

// WallClock is the real clock.
type WallClock struct{}

// Now returns time.Now().
func (WallClock) Now() time.Time { return time.Now() }

// Caller is who signed a request, as established by SigV4 verification.
type Caller struct {
	AccountID   string
	AccessKeyID string
	// Workload is set when the access key belongs to a buyer's running
	// software (an EC2 instance, ECS task, EKS pod, ...); MeterUsage and
	// RegisterUsage need it.
	Workload *Workload
	// Region is the region of the request's credential scope: the region of
	// the endpoint the client thinks it called.
	Region string
}

// MeteringService is the Metering API: one method per operation, each taking
// the verified caller and a request that has already passed model validation.
// Errors are *Error values with AWS error names; anything else is internal.
type MeteringService interface {
	BatchMeterUsage(ctx context.Context, caller Caller, in *BatchMeterUsageInput) (*BatchMeterUsageOutput, error)
	MeterUsage(ctx context.Context, caller Caller, in *MeterUsageInput) (*MeterUsageOutput, error)
	RegisterUsage(ctx context.Context, caller Caller, in *RegisterUsageInput) (*RegisterUsageOutput, error)
	ResolveCustomer(ctx context.Context, caller Caller, in *ResolveCustomerInput) (*ResolveCustomerOutput, error)
}

// TokenSigner signs RegisterUsage entitlement tokens (package keys
// implements it; package service uses it).
type TokenSigner interface {
	// Sign returns a JWT over claims signed with key version, and the time
	// the version was rotated out (zero while it is current). A version that
	// does not exist is an error wrapping ErrNoSuchKeyVersion.
	Sign(ctx context.Context, version int, claims map[string]any) (token string, rotatedAt time.Time, err error)
}

// EntitlementService is the AWS Marketplace Entitlement Service API: its one
// operation, taking the verified caller and a request that has already
// passed model validation. Errors are *Error values with AWS error names;
// anything else is internal.
type EntitlementService interface {
	GetEntitlements(ctx context.Context, caller Caller, in *GetEntitlementsInput) (*GetEntitlementsOutput, error)
}
