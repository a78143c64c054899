package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/mpmeter/mpmeter"
	"github.com/mpmeter/mpmeter/middleware"
)

// Size caps: what an event may carry of a request. A valid 25-record
// BatchMeterUsage is far below them; a huge invalid body is not copied.
const (
	// MaxParametersBytes caps requestParameters, MaxResponseBytes
	// responseElements, as JSON. Past them the member is replaced by
	// {"mpmeterTruncated": {"bytes": N, "prefix": "..."}}.
	MaxParametersBytes = 32 << 10
	MaxResponseBytes   = 32 << 10
	// MaxRecordsKept is how many usage records of one BatchMeterUsage
	// are kept (the API's own limit; an invalid request may carry more).
	MaxRecordsKept = 25
	// truncatedPrefix is how much of an oversized member is kept.
	truncatedPrefix = 1024
	// maxStringLen caps the user agent and the error message.
	maxStringLen = 1024
)

// Hash is how a registration token (or any token an event must not carry)
// appears in the log: "sha256:" and the first 12 hex digits of its SHA-256,
// enough to tell tokens apart and to find a known token's calls, useless
// to call the API with.
func Hash(token string) string {
	sum := sha256.Sum256([]byte(token))
	return "sha256:" + hex.EncodeToString(sum[:6])
}

// BeginRequest implements middleware.Recorder: a call has started that
// RecordRequest will record (Flush waits for it).
func (r *Recorder) BeginRequest() { r.inflight.Add(1) }

// RecordRequest implements middleware.Recorder: it records one Metering
// API call from what the awsjson handler reported in req.
func (r *Recorder) RecordRequest(hr *http.Request, req *middleware.Request, status int, d time.Duration) {
	defer r.inflight.Add(-1)
	op := req.Operation
	if op == "" {
		op = middleware.UnknownOperation
	}
	ev := mpmeter.AuditEvent{
		EventSource:         eventSource(req),
		EventName:           op,
		AWSRegion:           req.Caller.Region,
		SourceIPAddress:     SourceIP(hr),
		UserAgent:           capString(hr.UserAgent()),
		UserIdentity:        callerIdentity(hr, req.Caller),
		RequestID:           req.ID,
		RecipientAccountID:  req.Caller.AccountID,
		ErrorCode:           string(req.ErrorCode),
		ErrorMessage:        capString(req.ErrorMessage),
		AdditionalEventData: &mpmeter.AuditAdditionalData{HTTPStatus: status, DurationMS: float64(d.Microseconds()) / 1000},
	}
	if f := req.Fault; f != nil {
		ev.AdditionalEventData.InjectedFault = &mpmeter.AuditInjectedFault{RuleID: f.RuleID, Kind: f.Kind,
			LatencyMS: float64(f.Latency.Microseconds()) / 1000, UnprocessedRecords: len(f.Unprocessed)}
	}
	switch in := req.Input.(type) {
	case *mpmeter.ResolveCustomerInput:
		ev.ReadOnly = true
	case *mpmeter.MeterUsageInput:
		ev.ReadOnly = in.DryRun != nil && *in.DryRun
	}
	if req.Input != nil {
		ev.RequestParameters = parameters(req)
	}
	if req.ErrorCode == "" && req.Output != nil {
		ev.ResponseElements = response(req)
	}
	r.Record(hr.Context(), ev)
}

// eventSource is the service the call was made to: the Entitlement
// Service's for GetEntitlements (in either of its protocols), otherwise the
// Metering API's (also for a call that named no known operation).
func eventSource(req *middleware.Request) string {
	if _, ok := req.Input.(*mpmeter.GetEntitlementsInput); ok || req.Operation == mpmeter.OpGetEntitlements {
		return mpmeter.AuditSourceEntitlement
	}
	return mpmeter.AuditSourceMetering
}

// parameters is the event's requestParameters: the request body as sent,
// renamed in place, when it decoded into an input that holds
// nothing to redact and nothing to cut (every Metering input but
// ResolveCustomer's, at most MaxRecordsKept records, at most
// MaxParametersBytes); otherwise the decoded input redacted, cut and
// marshalled. The body decoded, so it is JSON; it may carry members the
// model does not know, which the decoder ignored.
func parameters(req *middleware.Request) json.RawMessage {
	raw := req.InputJSON
	ok := len(raw) > 0 && len(raw) <= MaxParametersBytes
	switch in := req.Input.(type) {
	case *mpmeter.BatchMeterUsageInput:
		ok = ok && len(in.UsageRecords) <= MaxRecordsKept
	case *mpmeter.MeterUsageInput, *mpmeter.RegisterUsageInput:
	default:
		ok = false
	}
	if !ok {
		return encode(meteringParameters(req.Input), MaxParametersBytes, !knownMetering(req.Input))
	}
	// Not copied: the body is the handler's, read by nothing after the
	// call (middleware.Request.InputJSON).
	b := bytes.TrimSpace(raw)
	lowerKeys(b)
	return b
}

// response is the event's responseElements: the response body the client
// got, renamed in place, when it holds nothing to redact (every
// Metering output but RegisterUsage's); otherwise the output redacted and
// marshalled.
func response(req *middleware.Request) json.RawMessage {
	_, signed := req.Output.(*mpmeter.RegisterUsageOutput)
	if signed || !knownMetering(req.Output) || len(req.OutputJSON) == 0 || len(req.OutputJSON) > MaxResponseBytes {
		return encode(meteringResponse(req.Output), MaxResponseBytes, !knownMetering(req.Output))
	}
	// Not copied: written to the client already, and read by nothing
	// after the call (middleware.Request.OutputJSON).
	b := req.OutputJSON
	lowerKeys(b)
	return b
}

// meteringParameters returns what of a Metering API input may be recorded:
// the registration token hashed, usage records beyond the API's limit cut
// (and counted).
func meteringParameters(in any) any {
	switch in := in.(type) {
	case *mpmeter.ResolveCustomerInput:
		c := *in
		if c.RegistrationToken != nil {
			h := Hash(*c.RegistrationToken)
			c.RegistrationToken = &h
		}
		return &c
	case *mpmeter.BatchMeterUsageInput:
		if len(in.UsageRecords) > MaxRecordsKept {
			return struct {
				*mpmeter.BatchMeterUsageInput
				Truncated map[string]int `json:"mpmeterTruncated"`
			}{
				&mpmeter.BatchMeterUsageInput{ProductCode: in.ProductCode, UsageRecords: in.UsageRecords[:MaxRecordsKept]},
				map[string]int{"usageRecords": len(in.UsageRecords)},
			}
		}
	}
	return in
}

// meteringResponse returns what of a Metering API output may be recorded:
// RegisterUsage's signed entitlement token only as a hash.
func meteringResponse(out any) any {
	if o, ok := out.(*mpmeter.RegisterUsageOutput); ok && o.Signature != nil {
		c := *o
		h := Hash(*o.Signature)
		c.Signature = &h
		return &c
	}
	return out
}

// Redact marshals v for an event: every member whose name says it holds a
// secret or a token redacted (RedactSecrets), member names in lower camel
// case (as CloudTrail writes them), the result capped at max bytes. nil is
// null. The admin API records its requests and responses through it.
func Redact(v any, max int) json.RawMessage {
	return encode(v, max, true)
}

// encode is Redact; walk false skips the generic secret walk, for the
// Metering API's types, which meteringParameters and meteringResponse have
// redacted by type (their members are known), so the hot path marshals
// once and decodes nothing.
func encode(v any, max int, walk bool) json.RawMessage {
	if v == nil {
		return nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		b, _ = json.Marshal(map[string]string{"mpmeterUnrecordable": err.Error()})
	}
	if walk {
		b = RedactSecrets(b)
	}
	lowerKeys(b)
	if len(b) > max {
		b = truncated(b)
	}
	return b
}

// knownMetering reports whether v is a Metering API input or output, whose
// members this package knows (and redacts by type).
func knownMetering(v any) bool {
	switch v.(type) {
	case *mpmeter.BatchMeterUsageInput, *mpmeter.MeterUsageInput, *mpmeter.RegisterUsageInput, *mpmeter.ResolveCustomerInput,
		*mpmeter.BatchMeterUsageOutput, *mpmeter.MeterUsageOutput, *mpmeter.RegisterUsageOutput, *mpmeter.ResolveCustomerOutput:
		return true
	}
	return false
}

// RedactSecrets rewrites a JSON document so that no member whose name
// names a secret keeps its value: secrets, passwords, private keys,
// session, credentials and admin tokens and authorization values become
// "[redacted]"; other tokens and signatures become their Hash. ClientToken
// (an idempotency key, not a credential) is kept. A document that does not
// parse is replaced by a note saying so.
func RedactSecrets(b []byte) []byte {
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		out, _ := json.Marshal(map[string]string{"mpmeterUnrecordable": "not JSON"})
		return out
	}
	v = redactValue("", v)
	out, err := json.Marshal(v)
	if err != nil {
		out, _ = json.Marshal(map[string]string{"mpmeterUnrecordable": err.Error()})
	}
	return out
}

func redactValue(key string, v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, val := range x {
			x[k] = redactValue(k, val)
		}
		return x
	case []any:
		for i, val := range x {
			x[i] = redactValue(key, val)
		}
		return x
	case nil:
		return nil
	}
	switch secretKind(key) {
	case secretRemove:
		return "[redacted]"
	case secretHash:
		if s, ok := v.(string); ok {
			return Hash(s)
		}
		return "[redacted]"
	}
	return v
}

type secretClass int

const (
	notSecret secretClass = iota
	secretHash
	secretRemove
)

// secretKind classifies a member name (any case, dashes and underscores
// ignored).
func secretKind(key string) secretClass {
	k := strings.NewReplacer("_", "", "-", "").Replace(strings.ToLower(key))
	switch {
	case k == "clienttoken":
		return notSecret
	case strings.Contains(k, "secret"), strings.Contains(k, "password"), strings.Contains(k, "privatekey"),
		strings.Contains(k, "sessiontoken"), strings.Contains(k, "credentialstoken"), strings.Contains(k, "admintoken"),
		strings.Contains(k, "authorization"), k == "kek", strings.Contains(k, "encryptionkey"):
		return secretRemove
	case strings.Contains(k, "token"), strings.Contains(k, "signature"):
		return secretHash
	}
	return notSecret
}

// truncated is the stand-in for an oversized member: its size and the
// start of it, as a string.
func truncated(b []byte) json.RawMessage {
	// A rune cut in two at the end is dropped.
	prefix := strings.ToValidUTF8(string(b[:min(len(b), truncatedPrefix)]), "")
	out, _ := json.Marshal(map[string]any{"mpmeterTruncated": map[string]any{"bytes": len(b), "prefix": prefix}})
	return out
}

// lowerKeys lower-cases, in place, the first letter of every member name
// of a compact JSON document as encoding/json writes it: CloudTrail's
// "productCode" for the API's "ProductCode". Values are left alone.
func lowerKeys(b []byte) {
	var stack []byte // '{' or '[' of each open container
	expectKey := false
	for i := 0; i < len(b); i++ {
		switch b[i] {
		case '"':
			if expectKey && i+1 < len(b) && b[i+1] >= 'A' && b[i+1] <= 'Z' {
				b[i+1] += 'a' - 'A'
			}
			for i++; i < len(b); i++ { // to the closing quote
				if b[i] == '\\' {
					i++
				} else if b[i] == '"' {
					break
				}
			}
			expectKey = false
		case '{':
			stack = append(stack, '{')
			expectKey = true
		case '[':
			stack = append(stack, '[')
			expectKey = false
		case '}', ']':
			if len(stack) > 0 {
				stack = stack[:len(stack)-1]
			}
			expectKey = false
		case ',':
			expectKey = len(stack) > 0 && stack[len(stack)-1] == '{'
		}
	}
}

// callerIdentity is the event's userIdentity: the verified caller, or for
// a request that was not authenticated the access key id its Authorization
// header named (never the signature).
func callerIdentity(hr *http.Request, c mpmeter.Caller) mpmeter.AuditIdentity {
	if c.AccountID == "" {
		return mpmeter.AuditIdentity{Type: mpmeter.AuditIdentityUnknown, AccessKeyID: claimedAccessKey(hr)}
	}
	id := mpmeter.AuditIdentity{Type: mpmeter.AuditIdentityIAMUser, AccountID: c.AccountID, AccessKeyID: c.AccessKeyID}
	if hr.Header.Get("X-Amz-Security-Token") != "" {
		id.Type = mpmeter.AuditIdentityAssumedRole
	}
	if w := c.Workload; w != nil {
		id.Workload = &mpmeter.AuditWorkload{ID: w.ID, Platform: w.Platform, Region: w.Region}
	}
	return id
}

// claimedAccessKey is the access key id of the Authorization header's
// Credential=KEY/..., when it looks like one (letters and digits, at most
// 128): a request that failed SigV4 still says whose key it claimed.
func claimedAccessKey(hr *http.Request) string {
	auth := hr.Header.Get("Authorization")
	_, rest, ok := strings.Cut(auth, "Credential=")
	if !ok {
		return ""
	}
	key, _, _ := strings.Cut(rest, "/")
	if key == "" || len(key) > 128 {
		return ""
	}
	for _, c := range key {
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
			return ""
		}
	}
	return key
}

// SourceIP is the address the request came from: the TCP peer.
// X-Forwarded-For is not trusted (any client can send it).
func SourceIP(hr *http.Request) string {
	host, _, err := net.SplitHostPort(hr.RemoteAddr)
	if err != nil {
		return capString(hr.RemoteAddr)
	}
	return host
}

func capString(s string) string {
	if len(s) <= maxStringLen {
		return s
	}
	cut := maxStringLen
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}
