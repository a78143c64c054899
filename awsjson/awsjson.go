// Package awsjson is the awsJson protocol of the Metering API, the
// Entitlement Service (both 1.1) and the Agreement Service (1.0, its own
// media type and fault name, InternalServerException): it turns an HTTP
// request into a verified caller and a validated operation input, calls the
// service, and writes the result or the AWS error envelope. Every operation takes the same path; an operation is
// one entry in its service's table (X-Amz-Target is the service's target
// prefix, a dot and the operation).
//
// The Entitlement and Agreement Services also speak Smithy RPC v2 CBOR
// (current aws-sdk-go-v2 sends it): a POST to
// /service/{service}/operation/{operation} is read and answered in CBOR
// (package rpcv2cbor), on the same listener, through the same admission
// order below; step 3 then checks that protocol's headers instead.
//
// A request is admitted in this order, in Handler.serve and nowhere else; the
// first check that fails is the answer:
//
//  1. the request itself: POST, a declared Content-Length of at most
//     MaxBodyBytes (RequestEntityTooLargeException);
//  2. SigV4 in two phases (Verifier): first every check that needs only the
//     headers (missing or malformed Authorization, date, skew, scope, unknown
//     access key), so that nothing is read from an unauthenticated client;
//     then the body is read (with http.MaxBytesReader, at most MaxBodyBytes;
//     a body over SmallBodyBytes within the handler's budget of body bytes
//     in flight, beyond which the answer is ServiceUnavailable), and its
//     hash and the signature are
//     checked, so nothing below is told to an unauthenticated client;
//  3. operation: X-Amz-Target names an entry of the operation table
//     (UnknownOperationException), with a JSON Content-Type;
//  4. region: the operation is offered in the credential scope's region
//     (DisabledApiException);
//  5. quota: the caller's rate for the operation (ThrottlingException);
//     then injected faults that need no input (Options.Faults);
//  6. validate: the body decodes into the operation's input
//     (SerializationException; member names match exactly, as AWS's parser
//     does, and a member given twice is refused) and satisfies the service
//     model and its cross-field rules (ValidationException);
//     then injected faults that need the input (a product, records);
//  7. rules: the service's marketplace rules (mpmeter.MeteringService).
//
// Request ids, panic recovery, the access log and metrics are the
// middleware's (package middleware); the handler reports the operation it
// resolved (a table key, never the raw target), the caller and the error code
// to it through middleware.FromContext, and, for the audit log, the decoded
// input, the output and the error message.
package awsjson

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
	"golang.org/x/sync/semaphore"

	"github.com/mpmeter/mpmeter"
	"github.com/mpmeter/mpmeter/middleware"
	"github.com/mpmeter/mpmeter/rpcv2cbor"
)

// MaxBodyBytes is the request size limit: "BatchMeterUsage requests must be
// less than 1MB in size."
const MaxBodyBytes = 1 << 20

// ThrottlingMessage is the message of ThrottlingException: AWS's JSON
// services answer a request over quota with "Rate exceeded".
const ThrottlingMessage = "Rate exceeded"

// ContentType is the media type of requests and responses.
const ContentType = "application/x-amz-json-1.1"

// Verifier establishes who signed a request (package sigv4). It checks the
// headers first and calls readBody only when they pass, then checks the
// signature over the body readBody returned; readBody's error comes back
// unchanged.
type Verifier interface {
	VerifyRequest(ctx context.Context, r *http.Request, readBody func() ([]byte, error)) (mpmeter.Caller, error)
}

// DefaultMaxBodyBytesInFlight is the default budget of large request
// bodies held in memory at once, by all requests together.
const DefaultMaxBodyBytesInFlight = 64 << 20

// SmallBodyBytes is the size up to which a body does not draw on the
// budget: small bodies are bounded by the requests in flight (package
// limits) times this, and uploads stalled near MaxBodyBytes cannot starve
// ordinary requests (a 25-record batch is a few KB).
const SmallBodyBytes = 64 << 10

// Limiter decides whether a call of an account in a region to an operation
// may proceed now (package ratelimit).
type Limiter interface {
	Allow(ctx context.Context, account, region, operation string) bool
}

// RegionPolicy says in which regions each operation is offered
// (*mpmeter.Regions).
type RegionPolicy interface {
	Offers(op, region string) bool
}

// Handler serves the Metering API and the Entitlement Service on POST /,
// and the Entitlement Service in RPC v2 CBOR on POST
// /service/AWSMPEntitlementService/operation/{operation}.
type Handler struct {
	verifier Verifier
	logger   *slog.Logger
	limiter  Limiter
	regions  RegionPolicy
	// services are the operation tables by target prefix, which is also
	// the service shape's name in RPC v2 CBOR paths.
	services map[string]apiService
	cbor     *rpcv2cbor.Codec
	// bodies weighs the bodies in flight in bytes (declared
	// Content-Length, or MaxBodyBytes when none is declared).
	bodies *semaphore.Weighted
	faults FaultInjector
}

// FaultInjector decides which configured fault, if any, a call gets
// (package faults): asked with call.Input nil after the quota step, and
// with the valid input after validation.
type FaultInjector interface {
	Inject(ctx context.Context, call mpmeter.FaultCall) *mpmeter.InjectedFault
}

// apiService is one service model's operations.
type apiService struct {
	ops map[string]operation
	// namespace is the model's Smithy namespace (RPC v2 CBOR errors name
	// it); cbor says whether the model lists that protocol.
	namespace string
	cbor      bool
	// regionNote, when set, ends DisabledApiException's message (where
	// the service is offered).
	regionNote string
	// contentType is the awsJson media type of its requests and answers
	// ("": ContentType, awsJson 1.1; the Agreement Service's model is
	// awsJson 1.0).
	contentType string
	// internalError names internal errors ("":
	// InternalServiceErrorException; the Agreement Service's fault is
	// InternalServerException).
	internalError mpmeter.ErrorCode
	// errorRequestID puts the request id in error bodies as requestId (the
	// Agreement Service's error shapes model it).
	errorRequestID bool
}

// mediaType is the service's awsJson media type.
func (s apiService) mediaType() string {
	if s.contentType != "" {
		return s.contentType
	}
	return ContentType
}

// Options configure a Handler. Zero values are usable.
type Options struct {
	Logger *slog.Logger // nil: slog.Default()
	// Limiter throttles calls per account, region and operation; nil: no
	// limit.
	Limiter Limiter
	// Regions says where each operation is offered; nil:
	// mpmeter.DefaultRegions().
	Regions RegionPolicy
	// Entitlement serves the Entitlement Service's operations; nil: its
	// targets and paths are unknown operations.
	Entitlement mpmeter.EntitlementService
	// Agreement serves the Agreement Service's read operations
	// (DescribeAgreement, GetAgreementTerms, SearchAgreements; awsJson 1.0
	// and RPC v2 CBOR); nil: its targets and paths are unknown operations.
	Agreement mpmeter.AgreementService
	// MaxBodyBytesInFlight bounds the memory held by request bodies of all
	// requests together; a request whose body does not fit answers
	// ServiceUnavailable (503), which SDKs retry. 0 means
	// DefaultMaxBodyBytesInFlight; it is at least MaxBodyBytes.
	MaxBodyBytesInFlight int64
	// Faults injects the faults an operator configured; nil: none.
	Faults FaultInjector
}

// NewHandler returns the API handler for svc, authenticating with v. Wrap
// it with middleware.Wrap for request ids, recovery, logs and metrics.
func NewHandler(svc mpmeter.MeteringService, v Verifier, opts Options) *Handler {
	h := &Handler{verifier: v, logger: opts.Logger, limiter: opts.Limiter, regions: opts.Regions, cbor: rpcv2cbor.New(), faults: opts.Faults}
	if h.logger == nil {
		h.logger = slog.Default()
	}
	if h.regions == nil {
		h.regions = mpmeter.DefaultRegions()
	}
	budget := opts.MaxBodyBytesInFlight
	if budget <= 0 {
		budget = DefaultMaxBodyBytesInFlight
	}
	h.bodies = semaphore.NewWeighted(max(budget, MaxBodyBytes))
	h.services = map[string]apiService{
		mpmeter.TargetPrefix: {namespace: meteringNamespace, ops: map[string]operation{
			mpmeter.OpBatchMeterUsage: op(svc, mpmeter.MeteringService.BatchMeterUsage),
			mpmeter.OpMeterUsage:      op(svc, mpmeter.MeteringService.MeterUsage),
			mpmeter.OpRegisterUsage:   op(svc, mpmeter.MeteringService.RegisterUsage),
			mpmeter.OpResolveCustomer: op(svc, mpmeter.MeteringService.ResolveCustomer),
		}},
	}
	if opts.Entitlement != nil {
		h.services[mpmeter.EntitlementTargetPrefix] = apiService{namespace: mpmeter.EntitlementNamespace, cbor: true,
			regionNote: " The AWS Marketplace Entitlement Service is offered in us-east-1 only (entitlement.marketplace.us-east-1.amazonaws.com).",
			ops: map[string]operation{
				mpmeter.OpGetEntitlements: op(opts.Entitlement, mpmeter.EntitlementService.GetEntitlements),
			}}
	}
	if opts.Agreement != nil {
		h.services[mpmeter.AgreementTargetPrefix] = apiService{namespace: mpmeter.AgreementNamespace, cbor: true,
			contentType: mpmeter.AgreementContentType, internalError: mpmeter.CodeInternalServer, errorRequestID: true,
			regionNote: " The AWS Marketplace Agreement Service is offered in us-east-1 (agreement-marketplace.us-east-1.api.aws) and in the regions of the SDKs' endpoint data.",
			ops: map[string]operation{
				mpmeter.OpDescribeAgreement: op(opts.Agreement, mpmeter.AgreementService.DescribeAgreement),
				mpmeter.OpGetAgreementTerms: op(opts.Agreement, mpmeter.AgreementService.GetAgreementTerms),
				mpmeter.OpSearchAgreements:  op(opts.Agreement, mpmeter.AgreementService.SearchAgreements),
			}}
	}
	return h
}

// meteringNamespace is the Metering model's Smithy namespace (its JSON
// model lists awsJson only, so it is never on the wire).
const meteringNamespace = "com.amazonaws.marketplacemetering"

// input is a generated input type: validated against the model.
type input interface {
	Validate() error
}

// operation is one entry of a table: a fresh input to decode into, and
// the service method to call with it.
type operation struct {
	newInput func() input
	call     func(ctx context.Context, caller mpmeter.Caller, in input) (any, error)
}

// validatable is a generated input type: *In with a Validate method.
type validatable[In any] interface {
	*In
	input
}

// op makes the table entry for one method of svc.
func op[S any, In any, Out any, PIn validatable[In]](svc S, method func(S, context.Context, mpmeter.Caller, *In) (*Out, error)) operation {
	return operation{
		newInput: func() input { return PIn(new(In)) },
		call: func(ctx context.Context, caller mpmeter.Caller, in input) (any, error) {
			return method(svc, ctx, caller, in.(PIn))
		},
	}
}

// decodeOptions make the decoder match AWS's awsJson parser: member names
// are case-sensitive (productcode is an unknown member, which is ignored, not
// ProductCode), and a member given twice is a SerializationException rather
// than the last one silently winning.
//
// Lists keep at most maxListElements elements; the rest are skipped, not
// decoded, so a body of 340,000 empty records costs no more than one of
// maxListElements, and validation still sees a list over its bound.
var decodeOptions = jsonv2.JoinOptions(
	jsonv2.MatchCaseInsensitiveNames(false),
	jsontext.AllowDuplicateNames(false),
	jsonv2.RejectUnknownMembers(false),
	jsonv2.WithUnmarshalers(jsonv2.JoinUnmarshalers(
		jsonv2.UnmarshalFromFunc(boundedList[mpmeter.UsageRecord]),
		jsonv2.UnmarshalFromFunc(boundedList[mpmeter.UsageAllocation]),
		jsonv2.UnmarshalFromFunc(boundedList[mpmeter.Tag]),
	)),
)

// maxListElements is one more than the longest list the model allows
// (UsageAllocations, 2500).
const maxListElements = 2501

// boundedList decodes a JSON array into *v keeping at most maxListElements
// elements. Anything but an array is left to the default decoder (null, and
// the type errors).
func boundedList[T any](dec *jsontext.Decoder, v *[]T) error {
	if dec.PeekKind() != '[' {
		return errors.ErrUnsupported
	}
	if _, err := dec.ReadToken(); err != nil {
		return err
	}
	list := []T{} // [] is an empty list, not a missing one
	for dec.PeekKind() != ']' {
		if len(list) >= maxListElements {
			if err := dec.SkipValue(); err != nil {
				return err
			}
			continue
		}
		var el T
		if err := jsonv2.UnmarshalDecode(dec, &el); err != nil {
			return err
		}
		list = append(list, el)
	}
	if _, err := dec.ReadToken(); err != nil {
		return err
	}
	*v = list
	return nil
}

// decode reads a JSON object into v. An empty body or null is {}. Anything
// that is not an object of the right member types is a SerializationException.
func decode(body []byte, v any) error {
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 || bytes.Equal(trimmed, []byte("null")) {
		return nil
	}
	if trimmed[0] != '{' {
		return mpmeter.Errorf(mpmeter.CodeSerialization, "Start of structure or map found where not expected.")
	}
	dec := jsontext.NewDecoder(bytes.NewReader(trimmed), decodeOptions)
	if err := jsonv2.UnmarshalDecode(dec, v, decodeOptions); err != nil {
		return serializationError(err)
	}
	if _, err := dec.ReadToken(); err != io.EOF {
		return mpmeter.Errorf(mpmeter.CodeSerialization, "Unexpected content after the request's JSON object.")
	}
	return nil
}

// maxQuoted bounds what a SerializationException quotes of the request.
const maxQuoted = 128

func serializationError(err error) error {
	var semErr *jsonv2.SemanticError
	var synErr *jsontext.SyntacticError
	switch {
	case errors.As(err, &synErr):
		if errors.Is(synErr.Err, io.ErrUnexpectedEOF) {
			return mpmeter.Errorf(mpmeter.CodeSerialization, "Malformed JSON: unexpected end of input.")
		}
		if synErr.Err != nil && strings.Contains(synErr.Err.Error(), "duplicate object member name") {
			return mpmeter.Errorf(mpmeter.CodeSerialization, "Duplicate member %s at offset %d.", cut(string(synErr.JSONPointer.LastToken()), maxQuoted), synErr.ByteOffset)
		}
		return mpmeter.Errorf(mpmeter.CodeSerialization, "Malformed JSON at offset %d: %s.", synErr.ByteOffset, cut(errText(synErr.Err), maxQuoted))
	case errors.As(err, &semErr):
		field := memberPath(semErr.JSONPointer)
		if semErr.Err != nil {
			// A member's own decoder refused it (Timestamp).
			return mpmeter.Errorf(mpmeter.CodeSerialization, "Cannot deserialize value at '%s': %s.", field, cut(errText(semErr.Err), maxQuoted))
		}
		want := "structure"
		if semErr.GoType != nil {
			want = typeName(semErr.GoType.String())
		}
		return mpmeter.Errorf(mpmeter.CodeSerialization, "Cannot deserialize value of type %s at '%s': a %s was expected.", kindName(semErr.JSONKind), field, want)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return mpmeter.Errorf(mpmeter.CodeSerialization, "Malformed JSON: unexpected end of input.")
	}
	return mpmeter.Errorf(mpmeter.CodeSerialization, "%s", cut(strings.TrimPrefix(err.Error(), "json: "), maxQuoted))
}

func errText(err error) string {
	if err == nil {
		return "invalid"
	}
	return err.Error()
}

// memberPath writes a JSON pointer (/UsageRecords/0/Quantity) as the
// members it names (UsageRecords.0.Quantity), cut to a bounded length.
func memberPath(p jsontext.Pointer) string {
	var b strings.Builder
	for tok := range p.Tokens() {
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(tok)
		if b.Len() > maxQuoted {
			break
		}
	}
	if b.Len() == 0 {
		return "request"
	}
	return cut(b.String(), maxQuoted)
}

// cut shortens s to at most n bytes on a rune boundary, marking the cut.
func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "..."
}

func kindName(k jsontext.Kind) string {
	switch k {
	case 'n':
		return "null"
	case 't', 'f':
		return "boolean"
	case '"':
		return "string"
	case '0':
		return "number"
	case '{':
		return "object"
	case '[':
		return "array"
	}
	return "value"
}

func typeName(goType string) string {
	switch {
	case strings.HasPrefix(goType, "*int") || strings.HasPrefix(goType, "int"):
		return "integer"
	case strings.HasSuffix(goType, "string"):
		return "string"
	case strings.HasSuffix(goType, "bool"):
		return "boolean"
	case strings.HasPrefix(goType, "[]"):
		return "list"
	}
	return "structure"
}

// ServeHTTP implements the protocols.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	req := middleware.FromContext(r.Context())
	wire := h.wireOf(r)
	out, err := h.serve(r, req, wire)
	if err == errDropConnection {
		dropConnection(w)
		return
	}
	if err != nil {
		h.writeError(w, req, wire, err)
		return
	}
	if wire.cbor {
		body, err := h.cbor.Marshal(out)
		if err != nil {
			h.writeError(w, req, wire, fmt.Errorf("encoding %s output in CBOR: %w", req.Operation, err))
			return
		}
		req.Output = out // the audit log encodes it as JSON itself
		rpcv2cbor.WriteOutput(w, body)
		return
	}
	body, err := json.Marshal(out)
	if err != nil {
		h.writeError(w, req, wire, fmt.Errorf("encoding %s output: %w", req.Operation, err))
		return
	}
	req.Output, req.OutputJSON = out, body
	writeJSONAs(w, http.StatusOK, body, h.services[wire.service].mediaType())
}

// wire is how a request names its operation and is answered: awsJson
// (X-Amz-Target on /) or, for a /service/{service}/operation/{operation}
// path, RPC v2 CBOR.
type wire struct {
	cbor    bool
	service string // the target prefix or the path's service name
	op      string
	// namespace names CBOR errors: the service's, or the Entitlement
	// Service's (the one CBOR service) when the path names no service of
	// ours.
	namespace string
	detail    string // the raw target or path, logged when unknown
}

func (h *Handler) wireOf(r *http.Request) wire {
	if route, ok := rpcv2cbor.ParsePath(r.URL.Path); ok {
		w := wire{cbor: true, service: route.Service, op: route.Operation, namespace: mpmeter.EntitlementNamespace, detail: r.URL.Path}
		if svc, ok := h.services[route.Service]; ok && svc.cbor && (route.Namespace == "" || route.Namespace == svc.namespace) {
			w.namespace = svc.namespace
		} else {
			w.service = "" // not a CBOR service of ours
		}
		return w
	}
	target := r.Header.Get("X-Amz-Target")
	service, op, _ := strings.Cut(target, ".")
	return wire{service: service, op: op, detail: target}
}

// serve admits the request in the order of the package documentation and
// calls the service. It records the resolved operation and the caller in req.
func (h *Handler) serve(r *http.Request, req *middleware.Request, wire wire) (any, error) {
	// The body's share of the budget is held until the answer is ready:
	// the decoded input and the service's work derive from it.
	releaseBody := func() {}
	defer func() { releaseBody() }()
	// The operation is resolved from the tables first, for the log and the
	// metrics; an unknown one is answered only after SigV4 (step 3).
	opName := wire.op
	operation, ok := h.services[wire.service].ops[opName]
	if ok {
		req.Operation = opName
	} else {
		req.Detail = wire.detail
	}

	// 1. The request itself.
	if r.Method != http.MethodPost {
		return nil, mpmeter.Errorf(mpmeter.CodeUnknownOperation, "The %s method is not supported; the Metering API takes POST requests.", r.Method)
	}
	if r.ContentLength > MaxBodyBytes {
		return nil, errTooLarge
	}

	// 2. SigV4: the headers, then the body, then the signature over it.
	var body []byte
	caller, err := h.verifier.VerifyRequest(r.Context(), r, func() ([]byte, error) {
		b, release, err := h.readBody(r)
		body = b
		releaseBody = release
		return b, err
	})
	if err != nil {
		return nil, err
	}
	req.Caller = caller

	// 3. Operation.
	if !ok {
		return nil, mpmeter.Errorf(mpmeter.CodeUnknownOperation, "Unknown operation %q.", wire.detail)
	}
	if wire.cbor {
		if err := rpcv2cbor.CheckRequest(r, len(body)); err != nil {
			return nil, err
		}
	} else if ct := r.Header.Get("Content-Type"); ct != "" {
		want := h.services[wire.service].mediaType()
		if mt, _, err := mime.ParseMediaType(ct); err != nil || (mt != want && mt != "application/json") {
			return nil, mpmeter.Errorf(mpmeter.CodeSerialization, "Unsupported Content-Type %q: expected %s.", ct, want)
		}
	}

	// 4. Region.
	if !h.regions.Offers(opName, caller.Region) {
		return nil, mpmeter.Errorf(mpmeter.CodeDisabledAPI, "%s is not available in region %s.%s", opName, caller.Region, h.services[wire.service].regionNote)
	}

	// 5. Quota.
	if h.limiter != nil && !h.limiter.Allow(r.Context(), caller.AccountID, caller.Region, opName) {
		return nil, mpmeter.Errorf(mpmeter.CodeThrottling, "%s", ThrottlingMessage)
	}
	if err := h.injectFault(r.Context(), req, mpmeter.FaultCall{Operation: opName, AccountID: caller.AccountID}); err != nil {
		return nil, err
	}

	// 6. Validate: decode, then the model's constraints and cross-field rules.
	in := operation.newInput()
	req.Input = in // for the audit log: what was decoded, valid or not
	if wire.cbor {
		if err := h.cbor.Decode(body, in); err != nil {
			return nil, err
		}
	} else if err := decode(body, in); err != nil {
		return nil, err
	}
	if !wire.cbor {
		req.InputJSON = body // the audit log copies it as it was sent
	}
	if err := in.Validate(); err != nil {
		return nil, err
	}
	if req.Fault == nil {
		if err := h.injectFault(r.Context(), req, mpmeter.FaultCall{Operation: opName, AccountID: caller.AccountID, Input: in}); err != nil {
			return nil, err
		}
	}

	// 7. Rules.
	if f := req.Fault; f != nil && len(f.Unprocessed) > 0 {
		return callWithUnprocessed(r.Context(), operation, caller, in, f.Unprocessed)
	}
	return operation.call(r.Context(), caller, in)
}

var (
	errTooLarge = mpmeter.Errorf(mpmeter.CodeRequestEntityTooLarge, "Request must be smaller than %d bytes.", MaxBodyBytes)
	errBusy     = mpmeter.Errorf(mpmeter.CodeServiceUnavailable, "The service is unavailable. Retry your request.")
)

// readBody reads r's body within the budget of body bytes in flight. Its
// share is the declared Content-Length, or MaxBodyBytes when the length is
// not declared (chunked); bodies of at most SmallBodyBytes take none.
// release returns the share. Beyond the budget the answer
// is ServiceUnavailable, at once: waiting would let stalled uploads queue
// everyone else.
func (h *Handler) readBody(r *http.Request) (body []byte, release func(), err error) {
	share := r.ContentLength
	if share < 0 {
		share = MaxBodyBytes
	}
	release = func() {}
	if share > SmallBodyBytes {
		if !h.bodies.TryAcquire(share) {
			return nil, release, errBusy
		}
		release = func() { h.bodies.Release(share) }
	}
	// Nil ResponseWriter: the limit is only the reader's; the connection
	// is not told to close, as the handler answers 413 itself.
	lr := http.MaxBytesReader(nil, r.Body, MaxBodyBytes)
	if r.ContentLength >= 0 {
		body = make([]byte, r.ContentLength)
		_, err = io.ReadFull(lr, body)
	} else {
		body, err = io.ReadAll(lr)
	}
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		return nil, release, errTooLarge
	case err != nil:
		return nil, release, mpmeter.Errorf(mpmeter.CodeSerialization, "The request body could not be read.")
	}
	return body, release, nil
}

// internalMessage is all a client learns of an internal error.
const internalMessage = "An internal error has occurred. Retry your request."

// writeError writes the AWS error envelope and records the code sent in req.
// Errors that are not *mpmeter.Error are internal: logged, never shown; a
// passed deadline is ServiceUnavailable (503), which clients retry.
func (h *Handler) writeError(w http.ResponseWriter, req *middleware.Request, wire wire, err error) {
	svc := h.services[wire.service]
	var e *mpmeter.Error
	if !errors.As(err, &e) {
		h.logger.Error("internal error", "request_id", req.ID, "op", req.Operation, "err", err)
		e = &mpmeter.Error{Code: mpmeter.CodeInternalServiceError, Message: internalMessage}
		if svc.internalError != "" {
			e.Code = svc.internalError
		}
		if errors.Is(err, context.DeadlineExceeded) {
			e = &mpmeter.Error{Code: mpmeter.CodeServiceUnavailable, Message: "The service is unavailable. Retry your request."}
		}
	}
	req.ErrorCode, req.ErrorMessage = e.Code, e.Message
	if svc.errorRequestID && req.ID != "" {
		withID := *e
		withID.Members = map[string]any{"requestId": req.ID}
		for k, v := range e.Members {
			withID.Members[k] = v
		}
		e = &withID
	}
	if wire.cbor {
		h.cbor.WriteError(w, status(e), wire.namespace, e)
		return
	}
	writeErrorAs(w, e, svc.mediaType())
}

// status is the HTTP status e is answered with.
func status(e *mpmeter.Error) int {
	if e.HTTPStatus != 0 {
		return e.HTTPStatus
	}
	return Status(e.Code)
}

// WriteError writes e in the awsJson error envelope with its status.
func WriteError(w http.ResponseWriter, e *mpmeter.Error) { writeErrorAs(w, e, ContentType) }

// writeErrorAs writes e in the awsJson error envelope of the media type
// contentType: __type, message and e's further members.
func writeErrorAs(w http.ResponseWriter, e *mpmeter.Error, contentType string) {
	var body []byte
	if len(e.Members) == 0 {
		body, _ = json.Marshal(struct {
			Type    mpmeter.ErrorCode `json:"__type"`
			Message string            `json:"message"`
		}{e.Code, e.Message})
	} else {
		envelope := map[string]any{}
		for k, v := range e.Members {
			envelope[k] = v
		}
		envelope["__type"], envelope["message"] = e.Code, e.Message
		body, _ = json.Marshal(envelope)
	}
	w.Header().Set("x-amzn-ErrorType", string(e.Code))
	status := Status(e.Code)
	if e.HTTPStatus != 0 {
		status = e.HTTPStatus
	}
	writeJSONAs(w, status, body, contentType)
}

// WriteInternalError answers InternalServiceErrorException and records it in
// the request's middleware.Request: middleware.Options.OnPanic.
func WriteInternalError(w http.ResponseWriter, r *http.Request) {
	req := middleware.FromContext(r.Context())
	req.ErrorCode, req.ErrorMessage, req.Output, req.OutputJSON = mpmeter.CodeInternalServiceError, internalMessage, nil, nil
	WriteError(w, &mpmeter.Error{Code: mpmeter.CodeInternalServiceError, Message: internalMessage})
}

func writeJSONAs(w http.ResponseWriter, status int, body []byte, contentType string) {
	h := w.Header()
	h.Set("Content-Type", contentType)
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	w.Write(body)
}

// Status is the HTTP status AWS answers an error name with, from the error
// table (mpmeter.ErrorCodes). A name not in it is a client error: 400.
func Status(code mpmeter.ErrorCode) int {
	if info, ok := mpmeter.LookupErrorCode(code); ok {
		return info.HTTPStatus
	}
	return http.StatusBadRequest
}
