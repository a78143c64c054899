package mpmeter

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"time"
)

// Fault injection: an operator (a seller testing their retry logic) asks
// mpmeter to fail some calls on purpose. A FaultRule says which calls
// (operation, account, product; empty matches any), what happens to them
// (Kind) and how often: a Rate (each matching call, or each record for
// FaultUnprocessedRecords, with that probability) or a Count (the next n,
// shared exactly by every node on one database: the store takes from the
// remaining count atomically). Package faults applies the rules;
// docs/retries.md describes them.

// FaultKind is what an injected fault does.
type FaultKind string

// Fault kinds.
const (
	// FaultThrottling answers ThrottlingException (400, "Rate exceeded"),
	// as AWS does over a quota.
	FaultThrottling FaultKind = "throttling"
	// FaultInternalError answers InternalServiceErrorException (500).
	FaultInternalError FaultKind = "internal_error"
	// FaultServiceUnavailable answers ServiceUnavailable (503).
	FaultServiceUnavailable FaultKind = "service_unavailable"
	// FaultLatency delays the call by the rule's Latency, then serves it
	// normally.
	FaultLatency FaultKind = "latency"
	// FaultDropConnection closes the connection without an answer.
	FaultDropConnection FaultKind = "drop_connection"
	// FaultUnprocessedRecords (BatchMeterUsage only) returns records in
	// UnprocessedRecords instead of storing them; the others are metered
	// normally.
	FaultUnprocessedRecords FaultKind = "unprocessed_records"
)

// FaultKinds lists every kind, in a fixed order (metric labels, docs).
var FaultKinds = []FaultKind{FaultThrottling, FaultInternalError, FaultServiceUnavailable, FaultLatency, FaultDropConnection, FaultUnprocessedRecords}

// FaultOperations are the operations a rule may name.
var FaultOperations = []string{OpBatchMeterUsage, OpMeterUsage, OpRegisterUsage, OpResolveCustomer, OpGetEntitlements}

// MaxFaultRules bounds how many rules may exist at once: every API call
// walks them.
const MaxFaultRules = 100

// MaxFaultLatency bounds a latency fault (the request deadline,
// --request-timeout, cuts a longer one anyway).
const MaxFaultLatency = 5 * time.Minute

// FaultRule is one configured fault.
type FaultRule struct {
	// ID names the rule (1-64 of a-z, A-Z, 0-9, '-', '_', '.').
	ID string
	// Operation, AccountID and ProductCode select the calls; empty matches
	// every one. The product is the request's ProductCode as sent (a
	// BatchMeterUsage naming its product only by LicenseArn has none).
	Operation   string
	AccountID   string
	ProductCode string
	Kind        FaultKind
	// Rate is the probability (0 < Rate <= 1) that a matching call (a
	// record, for FaultUnprocessedRecords) is faulted; 0 when Count is
	// set.
	Rate float64
	// Count is how many calls (records) the rule faults in all, and
	// Remaining how many of them are left; 0 when Rate is set.
	Count, Remaining int64
	// Latency is FaultLatency's delay.
	Latency time.Duration
	// CreatedAt orders the rules: the first that fires faults a call.
	CreatedAt time.Time
	// ExpiresAt ends the rule (service clock); zero: never.
	ExpiresAt time.Time
}

// Active reports whether r may still fault a call at now.
func (r FaultRule) Active(now time.Time) bool {
	if !r.ExpiresAt.IsZero() && !now.Before(r.ExpiresAt) {
		return false
	}
	return r.Count == 0 || r.Remaining > 0
}

// AfterValidation reports whether r is applied once the request's input
// decoded and validated (it names a product, or returns records) rather
// than before decoding.
func (r FaultRule) AfterValidation() bool {
	return r.ProductCode != "" || r.Kind == FaultUnprocessedRecords
}

var faultIDPattern = regexp.MustCompile(`^[a-zA-Z0-9._-]{1,64}$`)

// ErrInvalidFaultRule is wrapped by CheckFaultRule's errors.
var ErrInvalidFaultRule = errors.New("invalid fault rule")

// CheckFaultRule returns what is wrong with r, if anything (one error
// wrapping ErrInvalidFaultRule, naming every problem).
func CheckFaultRule(r FaultRule) error {
	var problems []error
	bad := func(format string, args ...any) { problems = append(problems, fmt.Errorf(format, args...)) }
	if !faultIDPattern.MatchString(r.ID) {
		bad("id %q must be 1-64 characters of a-z, A-Z, 0-9, '.', '-' and '_'", r.ID)
	}
	if r.Operation != "" && !slices.Contains(FaultOperations, r.Operation) {
		bad("operation %q is none of %v", r.Operation, FaultOperations)
	}
	if !slices.Contains(FaultKinds, r.Kind) {
		bad("kind %q is none of %v", r.Kind, FaultKinds)
	}
	if r.Kind == FaultUnprocessedRecords && r.Operation != "" && r.Operation != OpBatchMeterUsage {
		bad("kind unprocessed_records applies to BatchMeterUsage only, not %s", r.Operation)
	}
	if r.AccountID != "" && !accountIDPattern.MatchString(r.AccountID) {
		bad("account %q is not a 12-digit account id", r.AccountID)
	}
	if len(r.ProductCode) > 255 {
		bad("product is longer than 255 characters")
	}
	switch {
	case r.Rate != 0 && r.Count != 0:
		bad("give a rate or a count, not both")
	case r.Rate == 0 && r.Count == 0:
		bad("give a rate (0 < rate <= 1) or a count (n >= 1)")
	case r.Rate < 0 || r.Rate > 1 || r.Rate != r.Rate:
		bad("rate %v is not in (0, 1]", r.Rate)
	case r.Count < 0:
		bad("count %d is negative", r.Count)
	}
	if r.Remaining < 0 || r.Remaining > r.Count {
		bad("remaining %d is not within [0, count %d]", r.Remaining, r.Count)
	}
	switch {
	case r.Kind == FaultLatency && (r.Latency <= 0 || r.Latency > MaxFaultLatency):
		bad("latency %v is not in (0, %v]", r.Latency, MaxFaultLatency)
	case r.Kind != FaultLatency && r.Latency != 0:
		bad("latency is for kind latency only")
	}
	if len(problems) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %w", ErrInvalidFaultRule, errors.Join(problems...))
}

var accountIDPattern = regexp.MustCompile(`^[0-9]{12}$`)

// FaultCall is a call as fault rules see it.
type FaultCall struct {
	Operation string
	AccountID string
	// Input is the operation's decoded, valid input; nil before
	// validation (then only rules that are not AfterValidation apply).
	Input any
}

// ProductCode is the product the call names, if its input is known and
// has one.
func (c FaultCall) ProductCode() string {
	var p *string
	switch in := c.Input.(type) {
	case *BatchMeterUsageInput:
		p = in.ProductCode
	case *MeterUsageInput:
		p = in.ProductCode
	case *RegisterUsageInput:
		p = in.ProductCode
	case *GetEntitlementsInput:
		p = in.ProductCode
	}
	if p == nil {
		return ""
	}
	return *p
}

// InjectedFault is the fault a call gets: at most one per call, the first
// rule (by CreatedAt) that fires.
type InjectedFault struct {
	RuleID  string
	Kind    FaultKind
	Latency time.Duration
	// Unprocessed are the indexes of the BatchMeterUsage records to return
	// unprocessed (FaultUnprocessedRecords), in order.
	Unprocessed []int
}

// AuditInjectedFault marks an audit event's call as faulted on purpose
// (additionalEventData.injectedFault).
type AuditInjectedFault struct {
	RuleID string    `json:"ruleId"`
	Kind   FaultKind `json:"kind"`
	// LatencyMS is an injected latency; UnprocessedRecords how many
	// records were returned unprocessed.
	LatencyMS          float64 `json:"latencyMs,omitempty"`
	UnprocessedRecords int     `json:"unprocessedRecords,omitempty"`
}
