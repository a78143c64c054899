package mpmeter

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// The audit log records every call, data plane and admin, as a CloudTrail
// record (https://docs.aws.amazon.com/awscloudtrail/latest/userguide/cloudtrail-event-reference-record-contents.html):
// the JSON form of AuditEvent uses CloudTrail's field names, so tools that
// read CloudTrail read it. Package audit writes it; docs/audit.md describes
// it.

// Audit event sources: the service a call was made to.
const (
	// AuditSourceMetering is the Metering API's, as on AWS.
	AuditSourceMetering = "metering-marketplace.amazonaws.com"
	// AuditSourceEntitlement is the Entitlement Service's (GetEntitlements).
	// AWS documents no CloudTrail integration of that service; the name
	// follows the Metering API's (host metering.marketplace.amazonaws.com,
	// source metering-marketplace.amazonaws.com) for its host
	// entitlement.marketplace.amazonaws.com.
	AuditSourceEntitlement = "entitlement-marketplace.amazonaws.com"
	// AuditSourceAdmin is mpmeter's admin API's (it has no AWS
	// counterpart; the .local name says so).
	AuditSourceAdmin = "admin.mpmeter.local"
)

// AuditEventVersion is the CloudTrail record format version the events
// follow (fields mpmeter has no use for are left out, not invented).
const AuditEventVersion = "1.11"

// AuditEventTypeAPICall is CloudTrail's eventType of an API call.
const AuditEventTypeAPICall = "AwsApiCall"

// userIdentity types.
const (
	// AuditIdentityIAMUser: a long-term access key (AKIA...).
	AuditIdentityIAMUser = "IAMUser"
	// AuditIdentityAssumedRole: temporary credentials (a session token).
	AuditIdentityAssumedRole = "AssumedRole"
	// AuditIdentityUnknown: the request was not authenticated; the access
	// key id is the one its Authorization header named, if any.
	AuditIdentityUnknown = "Unknown"
	// AuditIdentityAdmin: the admin API's bearer token (never recorded).
	AuditIdentityAdmin = "MpmeterAdmin"
)

// AuditEvent is one call, as recorded in the audit log. Secrets never
// appear in it: no signature, Authorization header, secret key, session
// token or admin token; a registration token or an entitlement signature
// appears only as a short hash ("sha256:" and 12 hex digits).
type AuditEvent struct {
	EventVersion string        `json:"eventVersion"`
	UserIdentity AuditIdentity `json:"userIdentity"`
	// EventTime is when the call was answered, by the service clock, in
	// UTC with millisecond precision (what the store keeps).
	EventTime   time.Time `json:"eventTime"`
	EventSource string    `json:"eventSource"`
	// EventName is the operation: one of the Metering API's, "unknown" for
	// a target that names none, or an admin operation's id.
	EventName string `json:"eventName"`
	// AWSRegion is the region of the request's credential scope (empty
	// when the request was not authenticated).
	AWSRegion       string `json:"awsRegion"`
	SourceIPAddress string `json:"sourceIPAddress"`
	UserAgent       string `json:"userAgent"`
	// ErrorCode is the AWS error name answered (empty on success) and
	// ErrorMessage its message.
	ErrorCode    string `json:"errorCode,omitempty"`
	ErrorMessage string `json:"errorMessage,omitempty"`
	// RequestParameters is the request as decoded (validated or not),
	// redacted and size-capped; null when nothing was decoded.
	// ResponseElements is the answer on success; null otherwise. Member
	// names are lower camel case, as CloudTrail writes them.
	RequestParameters json.RawMessage `json:"requestParameters"`
	ResponseElements  json.RawMessage `json:"responseElements"`
	// RequestID is the x-amzn-RequestId the client got.
	RequestID string `json:"requestID"`
	// EventID identifies the event (a UUID).
	EventID   string `json:"eventID"`
	ReadOnly  bool   `json:"readOnly"`
	EventType string `json:"eventType"`
	// ManagementEvent and EventCategory: every call mpmeter records is a
	// management event, as the Metering API's calls are on CloudTrail.
	ManagementEvent bool   `json:"managementEvent"`
	EventCategory   string `json:"eventCategory"`
	// RecipientAccountID is the account the event belongs to: the
	// caller's.
	RecipientAccountID string `json:"recipientAccountId,omitempty"`
	// AdditionalEventData holds what CloudTrail has no field for: the HTTP
	// status answered and the call's duration.
	AdditionalEventData *AuditAdditionalData `json:"additionalEventData,omitempty"`
}

// AuditIdentity is CloudTrail's userIdentity, as far as mpmeter knows it.
type AuditIdentity struct {
	Type        string `json:"type"`
	AccountID   string `json:"accountId,omitempty"`
	AccessKeyID string `json:"accessKeyId,omitempty"`
	// Workload is mpmeter's: the buyer workload whose key signed the call.
	Workload *AuditWorkload `json:"workload,omitempty"`
}

// AuditAdditionalData is the event's additionalEventData.
type AuditAdditionalData struct {
	HTTPStatus int     `json:"httpStatus,omitempty"`
	DurationMS float64 `json:"durationMs"`
	// InjectedFault is set when the call was faulted on purpose (a fault
	// rule, docs/retries.md).
	InjectedFault *AuditInjectedFault `json:"injectedFault,omitempty"`
}

// AuditWorkload is a buyer workload in an event's userIdentity.
type AuditWorkload struct {
	ID       string `json:"id"`
	Platform string `json:"platform"`
	Region   string `json:"region"`
}

// AuditFilter selects audit events. Zero fields do not filter.
type AuditFilter struct {
	// From and To bound EventTime: [From, To).
	From, To time.Time
	// EventName is the operation (exact).
	EventName string
	// EventSource is AuditSourceMetering, AuditSourceEntitlement or
	// AuditSourceAdmin.
	EventSource string
	// AccountID is userIdentity.accountId, or for an event without one (an
	// admin call) recipientAccountId: the account the call concerns.
	AccountID string
	// RequestID is the x-amzn-RequestId.
	RequestID string
	// EventID is the event's id (exact): one event.
	EventID string
	// ErrorCode is the error answered (exact); AuditAnyError selects every
	// failed call, AuditNoError every successful one.
	ErrorCode string
	// Newest orders newest first; otherwise oldest first. Ties in
	// EventTime are ordered by EventID.
	Newest bool
	// Limit bounds the page (AuditEvents): 0 means DefaultAuditLimit, and
	// more than MaxAuditLimit is MaxAuditLimit.
	Limit int
	// Cursor continues after the last event of an earlier page with the
	// same filter (AuditPage.Next); empty starts at the beginning.
	Cursor string
}

// ErrorCode filter values that are not error names.
const (
	AuditAnyError = "*"
	AuditNoError  = "-"
)

// Page sizes of AuditEvents.
const (
	DefaultAuditLimit = 100
	MaxAuditLimit     = 1000
)

// AuditPage is one page of audit events.
type AuditPage struct {
	Events []AuditEvent
	// Next is the cursor of the following page; empty when this page is
	// the last.
	Next string
}

// ErrInvalidCursor: a page cursor that no page handed out.
var ErrInvalidCursor = errors.New("mpmeter: invalid cursor")

// AuditCursor is the position after an event in AuditFilter's order: what
// a page's Next encodes. Stores use EncodeAuditCursor and
// ParseAuditCursor, so cursors mean the same in every store.
type AuditCursor struct {
	EventTime time.Time
	EventID   string
}

// EncodeAuditCursor encodes the position after ev.
func EncodeAuditCursor(ev AuditEvent) string {
	raw := strconv.FormatInt(ev.EventTime.UnixMilli(), 10) + "|" + ev.EventID
	return base64.RawURLEncoding.EncodeToString([]byte(raw))
}

// ParseAuditCursor decodes a cursor from EncodeAuditCursor; anything else
// is an error wrapping ErrInvalidCursor.
func ParseAuditCursor(s string) (AuditCursor, error) {
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return AuditCursor{}, fmt.Errorf("%w: %q", ErrInvalidCursor, s)
	}
	msText, id, ok := strings.Cut(string(raw), "|")
	msec, err := strconv.ParseInt(msText, 10, 64)
	if !ok || err != nil || id == "" {
		return AuditCursor{}, fmt.Errorf("%w: %q", ErrInvalidCursor, s)
	}
	return AuditCursor{EventTime: time.UnixMilli(msec).UTC(), EventID: id}, nil
}
