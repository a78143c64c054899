package mpmeter

import (
	"errors"
	"fmt"
	"math"
	"time"
)

// Account is an AWS account: a seller's, a buyer's, or both.
type Account struct {
	ID   string // 12 digits
	Name string
	// Version is the stored row's version (see Versioned writes in Store).
	Version int64
}

// AccessKey is a credential an account signs requests with: a long-term key
// (an IAM user's AKIA... key) or, when SessionToken is set, temporary
// credentials (an ASIA... key from STS, the instance metadata service or the
// container credentials endpoint), whose requests must carry the token.
type AccessKey struct {
	ID        string
	Secret    string
	AccountID string
	// Workload is non-nil when the key belongs to a buyer's running software.
	Workload *Workload
	// SessionToken is the X-Amz-Security-Token temporary credentials sign
	// with; empty for a long-term key, which accepts no token. A secret.
	SessionToken string
	// ExpiresAt is when temporary credentials stop working (by the service
	// clock); zero means never.
	ExpiresAt time.Time
	// CredentialsToken, on a workload's key, is the Authorization header
	// value with which the workload fetches temporary credentials for the
	// same account and workload from the container credentials endpoint;
	// empty means the workload cannot. A secret.
	CredentialsToken string
	// RevokedAt is when the key was revoked (service clock); zero while it
	// works. Revocation is final: a revoked key never signs again, and a
	// later put cannot clear it.
	RevokedAt time.Time
	// Version is the stored row's version (see Versioned writes in Store).
	Version int64
}

// Revoked reports whether k has been revoked.
func (k AccessKey) Revoked() bool { return !k.RevokedAt.IsZero() }

// Temporary reports whether k is temporary credentials (it has a session
// token).
func (k AccessKey) Temporary() bool { return k.SessionToken != "" }

// ExpiredAt reports whether k has an expiry that now has reached.
func (k AccessKey) ExpiredAt(now time.Time) bool {
	return !k.ExpiresAt.IsZero() && !now.Before(k.ExpiresAt)
}

// Workload platforms.
const (
	PlatformEC2       = "ec2"
	PlatformECS       = "ecs"
	PlatformEKS       = "eks"
	PlatformFargate   = "fargate"
	PlatformAgentCore = "agentcore"
)

// Workload is a buyer's running software that calls MeterUsage or
// RegisterUsage with its own credentials.
type Workload struct {
	ID       string // an instance id, task id, pod name, ...
	Platform string // one of the Platform constants
	Region   string // where it runs; the endpoint region must match
}

// Product types.
const (
	ProductSaaS      = "saas"
	ProductAMI       = "ami"
	ProductContainer = "container"
)

// Product is a listing: a product code, its seller, its type and its
// metering dimensions.
type Product struct {
	Code            string
	SellerAccountID string
	Type            string // one of the Product constants
	Dimensions      []string
	// ConcurrentAgreements marks a SaaS product integrated the way AWS asks
	// of new SaaS products since June 2026: a buyer may hold several
	// agreements (licenses) for it at once, its subscriptions have no
	// CustomerIdentifier, and usage names the customer by
	// CustomerAWSAccountId and LicenseArn only.
	ConcurrentAgreements bool
	// DimensionDetails holds the optional description, unit and price of
	// Dimensions, keyed by dimension name; a dimension without any has no
	// entry. (A map beside the names, rather than a slice of structs, so the
	// many readers of Dimensions stay as they are.)
	DimensionDetails map[string]DimensionDetails
	// FulfillmentURL is the seller's registration page (SaaS): where the
	// buyer's browser POSTs the registration token after subscribing;
	// empty when the product has none.
	FulfillmentURL string
	// Version is the stored row's version (see Versioned writes in Store).
	Version int64
}

// DimensionDetails is what a listing says about one metering dimension
// beyond its name. Every field is optional.
type DimensionDetails struct {
	Description string
	// Unit is what one unit of quantity is ("Users", "GB", "Hrs").
	Unit string
	// PricePerUnit is a decimal string in USD ("0.05"), exact: it is never
	// parsed into a float.
	PricePerUnit string
}

// Dimension is a dimension's name with its details.
type Dimension struct {
	Name string
	DimensionDetails
}

// DimensionList returns p's dimensions in order, with their details.
func (p Product) DimensionList() []Dimension {
	out := make([]Dimension, len(p.Dimensions))
	for i, name := range p.Dimensions {
		out[i] = Dimension{Name: name, DimensionDetails: p.DimensionDetails[name]}
	}
	return out
}

// HasDimension reports whether name is one of p's dimensions.
func (p Product) HasDimension(name string) bool {
	for _, d := range p.Dimensions {
		if d == name {
			return true
		}
	}
	return false
}

// Subscription statuses.
const (
	SubscriptionActive    = "active"
	SubscriptionCancelled = "cancelled"
	SubscriptionExpired   = "expired"
)

// Subscription is a buyer's agreement for a product. LicenseArn identifies it;
// CustomerIdentifier is unique within the product.
type Subscription struct {
	AccountID          string
	ProductCode        string
	CustomerIdentifier string
	LicenseArn         string
	Status             string // one of the Subscription constants
	// CreatedAt is the agreement's start time.
	CreatedAt time.Time
	// AgreementID is the agreement's id (agmt-...), stable for its life;
	// stores fill in AgreementIDFor(LicenseArn) when a put leaves it empty.
	AgreementID string
	// OfferID is the offer the buyer accepted (offer-...); optional.
	OfferID string
	// FreeTrial marks an agreement made under a free-trial offer.
	FreeTrial bool
	// EndedAt is when the subscription was last cancelled or expired; zero
	// while it is active.
	EndedAt time.Time
	// Version is the stored row's version (see Versioned writes in Store).
	Version int64
}

// Active reports whether s allows metering.
func (s Subscription) Active() bool { return s.Status == SubscriptionActive }

// RegistrationToken is what the buyer's browser posts to a SaaS seller's
// fulfillment URL; ResolveCustomer turns it into the subscription's identity.
type RegistrationToken struct {
	// ID names the token without revealing it (RegistrationTokenID of
	// Token); stores fill it in on read.
	ID          string
	Token       string
	AccountID   string
	ProductCode string
	// LicenseArn picks one of the account's subscriptions to the product when
	// it has several; empty means the account's subscription to the product.
	LicenseArn string
	CreatedAt  time.Time
	ExpiresAt  time.Time
}

// SigningKey is one version of the RSA key that signs RegisterUsage tokens.
type SigningKey struct {
	Version int
	// PrivateKeyPEM is the PKCS#8 private key; stores keep it encrypted at
	// rest when the service is given an encryption key.
	PrivateKeyPEM []byte
	PublicKeyPEM  []byte
	CreatedAt     time.Time
}

// Metering record kinds: which operation produced the record.
const (
	UsageBatch    = "BatchMeterUsage"
	UsageMeter    = "MeterUsage"
	UsageRegister = "RegisterUsage"
)

// Allocation is one tagged bucket of a record's quantity.
type Allocation struct {
	Quantity int64           `json:"q"`
	Tags     []AllocationTag `json:"t,omitempty"`
}

// AllocationTag is one key/value tag of an allocation.
type AllocationTag struct {
	Key   string `json:"k"`
	Value string `json:"v"`
}

// MeteringRecord is one accepted unit of metered usage.
type MeteringRecord struct {
	MeteringRecordID   string
	Kind               string // UsageBatch, UsageMeter or UsageRegister
	ProductCode        string
	SellerAccountID    string
	CustomerAccountID  string
	CustomerIdentifier string // set for SaaS records
	LicenseArn         string
	WorkloadID         string // set for MeterUsage and RegisterUsage
	Dimension          string
	Timestamp          time.Time
	Quantity           int64
	Allocations        []Allocation
	// DedupKey names the slot a record occupies: a second record with the
	// same key is not stored. Empty means the record is never deduplicated.
	DedupKey string
	// Fingerprint says what "the same record" means within a slot: a second
	// record with the same key and fingerprint is the same record again; with
	// another fingerprint it is a duplicate.
	Fingerprint string
	CreatedAt   time.Time
}

// MeteringOutcome is what a store did with one record.
type MeteringOutcome struct {
	// Created is true when the record was stored now; false when a record
	// with the same DedupKey (or the same idempotency token) was already
	// stored, in which case Record is that stored record.
	Created bool
	Record  MeteringRecord
}

// IdempotencyToken is a client token (MeterUsage's ClientToken) that makes a
// retried request return its first answer.
type IdempotencyToken struct {
	// Scope is who the token belongs to (the calling workload); tokens of
	// different scopes never collide.
	Scope string
	Token string
	// Fingerprint is a digest of the request's parameters: the same token
	// with another fingerprint is an IdempotencyConflictException.
	Fingerprint string
	ExpiresAt   time.Time
}

// UsageTotal is one line of a usage report: the usage of one customer's
// dimension of one product within a UsageFilter, summed.
type UsageTotal struct {
	ProductCode       string
	CustomerAccountID string
	Dimension         string
	Quantity          int64 // the sum of the records' quantities
	Records           int64 // how many records were summed
}

// UsageFilter selects usage records. Zero fields do not filter.
type UsageFilter struct {
	ProductCode        string
	SellerAccountID    string
	CustomerAccountID  string
	CustomerIdentifier string
	LicenseArn         string
	Dimension          string
	Kind               string    // the operation: UsageBatch, UsageMeter, UsageRegister
	From, To           time.Time // Timestamp in [From, To)
	// TagKey selects records with an allocation carrying this tag key, and
	// with TagValue non-empty, this key with this value.
	TagKey, TagValue string
	// Status is the outcome of the call that stored a record. Only accepted
	// records are stored, so every stored record's status is
	// UsageRecordResultStatusSuccess: "" and "Success" match every record,
	// "DuplicateRecord" and "CustomerNotSubscribed" (never stored; see the
	// metrics and the audit log) match none, anything else is an error.
	Status string
	// Newest orders newest first (Timestamp, then MeteringRecordID, both
	// descending) instead of oldest first.
	Newest bool
	Limit  int // 0: no limit
}

// UsagePage is one page of records (Store.UsagePage).
type UsagePage struct {
	Records []MeteringRecord
	// Next is the cursor of the following page; empty on the last page.
	Next string
}

// UsageSummaryQuery asks for usage quantities summed per period.
type UsageSummaryQuery struct {
	Filter UsageFilter // Limit and Newest are ignored
	// Period is time.Hour or 24*time.Hour (UTC days).
	Period time.Duration
	// Which fields the lines are grouped by, besides the period.
	ByProduct, ByCustomer, ByDimension bool
	// ByTag, when non-empty, groups by the value of this allocation tag
	// key: each allocation's quantity counts for the value its tags give
	// the key, "" when they give none (and a record without allocations
	// counts wholly for "").
	ByTag string
	// ByParty groups by everything that says who metered: product, seller,
	// customer account, customer identifier, license ARN and workload (so
	// by product and customer too). The daily usage feed's lines (one per
	// agreement and region) are sums of these.
	ByParty bool
}

// UsageSummaryLine is one line of a usage summary. Fields not grouped by are
// empty.
type UsageSummaryLine struct {
	Start             time.Time // the period's start, UTC
	ProductCode       string
	CustomerAccountID string
	Dimension         string
	TagValue          string
	// With ByParty: the rest of who metered.
	SellerAccountID, CustomerIdentifier, LicenseArn, WorkloadID string
	Quantity                                                    int64 // summed
	// Records counts the records summed (with ByTag: the allocations, a
	// record without allocations counting as one).
	Records int64
}

// UsageRollupStep says what one call of a store's RollUpUsage did (the
// daily usage rollup that package rollup keeps; docs/storage.md).
type UsageRollupStep struct {
	// From and To are the UTC days [From, To) the call worked on: one day,
	// or a run of days without records. Both are zero when no closed day
	// was left to roll up.
	From, To time.Time
	// Days is how many of them it rolled up: fewer than To-From when
	// another roller claimed them first or a write un-rolled one meanwhile.
	Days int
	// Records is how many records it summed, Lines how many sums it wrote.
	Records int64
	Lines   int
}

// PurgeResult says what Store.PurgeExpired deleted.
type PurgeResult struct {
	IdempotencyTokens  int
	RegistrationTokens int
}

// Entitlement is what a buyer's contract grants for one dimension of a
// product: the Entitlement Service's GetEntitlements answers them to the
// product's seller. A subscription (its LicenseArn) has at most one per
// dimension. Any product type may have them: AWS sells SaaS, AMI and
// container products as contracts.
type Entitlement struct {
	LicenseArn string // the subscription's
	Dimension  string // one of the product's dimensions
	// Value is the entitled amount: exactly one of its members is set
	// (EntitlementInteger, EntitlementDouble, EntitlementBoolean,
	// EntitlementString make one).
	Value EntitlementValue
	// ExpiresAt is when the contract renews or ends (GetEntitlements'
	// ExpirationDate); zero means no expiration date.
	ExpiresAt time.Time

	// The subscription's, filled in by Store.Entitlements (ignored by
	// PutEntitlements).
	ProductCode        string
	CustomerAccountID  string
	CustomerIdentifier string
}

// EntitlementInteger is an integer entitlement value. The model's Integer is
// 32 bits: CheckEntitlementValue refuses more.
func EntitlementInteger(v int64) EntitlementValue { return EntitlementValue{IntegerValue: &v} }

// EntitlementDouble is a number entitlement value.
func EntitlementDouble(v float64) EntitlementValue { return EntitlementValue{DoubleValue: &v} }

// EntitlementBoolean is a boolean entitlement value.
func EntitlementBoolean(v bool) EntitlementValue { return EntitlementValue{BooleanValue: &v} }

// EntitlementString is a string entitlement value.
func EntitlementString(v string) EntitlementValue { return EntitlementValue{StringValue: &v} }

// CheckEntitlementValue reports what is wrong with v as an entitlement's
// value: not exactly one member set, an integer outside the model's 32-bit
// Integer (SDKs read IntegerValue as int32), a double that is not finite
// (JSON cannot carry it).
func CheckEntitlementValue(v EntitlementValue) error {
	n := 0
	for _, set := range []bool{v.IntegerValue != nil, v.DoubleValue != nil, v.BooleanValue != nil, v.StringValue != nil} {
		if set {
			n++
		}
	}
	switch {
	case n != 1:
		return errors.New("an entitlement value has exactly one of integer, double, boolean and string")
	case v.IntegerValue != nil && (*v.IntegerValue < math.MinInt32 || *v.IntegerValue > math.MaxInt32):
		return fmt.Errorf("integer entitlement value %d is outside the 32-bit range of the model's Integer", *v.IntegerValue)
	case v.DoubleValue != nil && (math.IsInf(*v.DoubleValue, 0) || math.IsNaN(*v.DoubleValue)):
		return errors.New("a double entitlement value must be finite")
	}
	return nil
}

// EntitlementFilter selects entitlements of one product. Each list, when
// non-empty, keeps the entitlements matching any of its values; the lists
// are intersected (GetEntitlements' Filter).
type EntitlementFilter struct {
	ProductCode         string // required
	CustomerIdentifiers []string
	CustomerAccountIDs  []string
	Dimensions          []string
	LicenseArns         []string
	// ActiveAt, when set, keeps only the entitlements of active
	// subscriptions that have not expired at ActiveAt.
	ActiveAt time.Time
	// After, when set, starts after this position (exclusive): entitlements
	// are ordered by license ARN, then dimension.
	After *EntitlementPosition
	Limit int // 0: no limit
}

// EntitlementPosition is a place in the order of Store.Entitlements.
type EntitlementPosition struct {
	LicenseArn string
	Dimension  string
}
