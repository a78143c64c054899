// Package awsjson is the awsJson 1.1 protocol of the Metering API: it turns an
// HTTP request into a verified caller and a validated operation input, calls
// the service, and writes the result or the AWS error envelope. Every
// operation takes the same path; an operation is one entry in a table.
//
// A request is admitted in this order, in Handler.serve and nowhere else; the
// first check that fails is the answer:
//
//  1. the request itself: POST, a body of at most MaxBodyBytes (read first:
//     the signature covers it);
//  2. SigV4: who signed it (Verifier), so nothing below is told to an
//     unauthenticated client;
//  3. operation: X-Amz-Target names an entry of the operation table
//     (UnknownOperationException), with a JSON Content-Type;
//  4. region: the operation is offered in the credential scope's region
//     (DisabledApiException);
//  5. quota: the caller's rate for the operation (ThrottlingException);
//  6. validate: the body decodes into the operation's input
//     (SerializationException) and satisfies the service model and its
//     cross-field rules (ValidationException);
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

	"github.com/mpmeter/mpmeter"
	"github.com/mpmeter/mpmeter/middleware"
)

// MaxBodyBytes is the request size limit: "BatchMeterUsage requests must be
// less than 1MB in size."
const MaxBodyBytes = 1 << 20

// ContentType is the media type of requests and responses.
const ContentType = "application/x-amz-json-1.1"

// Verifier establishes who signed a request (package sigv4).
type Verifier interface {
	Verify(ctx context.Context, r *http.Request, body []byte) (mpmeter.Caller, error)
}

// Limiter decides whether a call may proceed now (package ratelimit).
type Limiter interface {
	Allow(key string) bool
}

// RegionPolicy says in which regions each operation is offered
// (*mpmeter.Regions).
type RegionPolicy interface {
	Offers(op, region string) bool
}

// Handler serves the Metering API on POST /.
type Handler struct {
	service  mpmeter.MeteringService
	verifier Verifier
	logger   *slog.Logger
	limiter  Limiter
	regions  RegionPolicy
	ops      map[string]operation
}

// Options configure a Handler. Zero values are usable.
type Options struct {
	Logger *slog.Logger // nil: slog.Default()
	// Limiter throttles calls per account and operation; nil: no limit.
	Limiter Limiter
	// Regions says where each operation is offered; nil:
	// mpmeter.DefaultRegions().
	Regions RegionPolicy
}

// NewHandler returns the API handler for svc, authenticating with v. Wrap
// it with middleware.Wrap for request ids, recovery, logs and metrics.
func NewHandler(svc mpmeter.MeteringService, v Verifier, opts Options) *Handler {
	h := &Handler{service: svc, verifier: v, logger: opts.Logger, limiter: opts.Limiter, regions: opts.Regions}
	if h.logger == nil {
		h.logger = slog.Default()
	}
	if h.regions == nil {
		h.regions = mpmeter.DefaultRegions()
	}
	h.ops = map[string]operation{
		mpmeter.OpBatchMeterUsage: op(mpmeter.MeteringService.BatchMeterUsage),
		mpmeter.OpMeterUsage:      op(mpmeter.MeteringService.MeterUsage),
		mpmeter.OpRegisterUsage:   op(mpmeter.MeteringService.RegisterUsage),
		mpmeter.OpResolveCustomer: op(mpmeter.MeteringService.ResolveCustomer),
	}
	return h
}

// input is a generated input type: validated against the model.
type input interface {
	Validate() error
}

// operation is one entry of the table: a fresh input to decode into, and
// the service method to call with it.
type operation struct {
	newInput func() input
	call     func(ctx context.Context, svc mpmeter.MeteringService, caller mpmeter.Caller, in input) (any, error)
}

// validatable is a generated input type: *In with a Validate method.
type validatable[In any] interface {
	*In
	input
}

// op makes the table entry for one service method.
func op[In any, Out any, PIn validatable[In]](method func(mpmeter.MeteringService, context.Context, mpmeter.Caller, *In) (*Out, error)) operation {
	return operation{
		newInput: func() input { return PIn(new(In)) },
		call: func(ctx context.Context, svc mpmeter.MeteringService, caller mpmeter.Caller, in input) (any, error) {
			return method(svc, ctx, caller, in.(PIn))
		},
	}
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
	dec := json.NewDecoder(bytes.NewReader(trimmed))
	if err := dec.Decode(v); err != nil {
		return serializationError(err)
	}
	if dec.More() {
		return mpmeter.Errorf(mpmeter.CodeSerialization, "Unexpected content after the request's JSON object.")
	}
	return nil
}

func serializationError(err error) error {
	var typeErr *json.UnmarshalTypeError
	var syntaxErr *json.SyntaxError
	switch {
	case errors.As(err, &typeErr):
		field := typeErr.Field
		if field == "" {
			field = "request"
		}
		return mpmeter.Errorf(mpmeter.CodeSerialization, "Cannot deserialize value of type %s at '%s': a %s was expected.", typeErr.Value, field, typeName(typeErr.Type.String()))
	case errors.As(err, &syntaxErr):
		return mpmeter.Errorf(mpmeter.CodeSerialization, "Malformed JSON at offset %d: %v.", syntaxErr.Offset, syntaxErr)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return mpmeter.Errorf(mpmeter.CodeSerialization, "Malformed JSON: unexpected end of input.")
	}
	// Timestamp's own error, and anything else encoding/json reports.
	return mpmeter.Errorf(mpmeter.CodeSerialization, "%s", strings.TrimPrefix(err.Error(), "json: "))
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

// ServeHTTP implements the protocol.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	req := middleware.FromContext(r.Context())
	out, err := h.serve(r, req)
	if err != nil {
		h.writeError(w, req, err)
		return
	}
	body, err := json.Marshal(out)
	if err != nil {
		h.writeError(w, req, fmt.Errorf("encoding %s output: %w", req.Operation, err))
		return
	}
	req.Output, req.OutputJSON = out, body
	writeJSON(w, http.StatusOK, body)
}

// serve admits the request in the order of the package documentation and
// calls the service. It records the resolved operation and the caller in req.
func (h *Handler) serve(r *http.Request, req *middleware.Request) (any, error) {
	// The operation is resolved from the table first, for the log and the
	// metrics; an unknown one is answered only after SigV4 (step 3).
	target := r.Header.Get("X-Amz-Target")
	opName, known := strings.CutPrefix(target, mpmeter.TargetPrefix+".")
	operation, ok := h.ops[opName]
	if known && ok {
		req.Operation = opName
	} else {
		req.Detail = target
	}

	// 1. The request itself.
	if r.Method != http.MethodPost {
		return nil, mpmeter.Errorf(mpmeter.CodeUnknownOperation, "The %s method is not supported; the Metering API takes POST requests.", r.Method)
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxBodyBytes+1))
	if err != nil {
		return nil, mpmeter.Errorf(mpmeter.CodeSerialization, "The request body could not be read.")
	}
	if len(body) > MaxBodyBytes {
		return nil, mpmeter.Errorf(mpmeter.CodeRequestEntityTooLarge, "Request must be smaller than %d bytes.", MaxBodyBytes)
	}

	// 2. SigV4.
	caller, err := h.verifier.Verify(r.Context(), r, body)
	if err != nil {
		return nil, err
	}
	req.Caller = caller

	// 3. Operation.
	if !known || !ok {
		return nil, mpmeter.Errorf(mpmeter.CodeUnknownOperation, "Unknown operation %q.", target)
	}
	if ct := r.Header.Get("Content-Type"); ct != "" {
		if mt, _, err := mime.ParseMediaType(ct); err != nil || (mt != ContentType && mt != "application/json") {
			return nil, mpmeter.Errorf(mpmeter.CodeSerialization, "Unsupported Content-Type %q: expected %s.", ct, ContentType)
		}
	}

	// 4. Region.
	if !h.regions.Offers(opName, caller.Region) {
		return nil, mpmeter.Errorf(mpmeter.CodeDisabledAPI, "%s is not available in region %s.", opName, caller.Region)
	}

	// 5. Quota.
	if h.limiter != nil && !h.limiter.Allow(caller.AccountID+"|"+opName) {
		return nil, mpmeter.Errorf(mpmeter.CodeThrottling, "Rate exceeded for %s by account %s.", opName, caller.AccountID)
	}

	// 6. Validate: decode, then the model's constraints and cross-field rules.
	in := operation.newInput()
	req.Input = in // for the audit log: what was decoded, valid or not
	if err := decode(body, in); err != nil {
		return nil, err
	}
	req.InputJSON = body
	if err := in.Validate(); err != nil {
		return nil, err
	}

	// 7. Rules.
	return operation.call(r.Context(), h.service, caller, in)
}

// internalMessage is all a client learns of an internal error.
const internalMessage = "An internal error has occurred. Retry your request."

// writeError writes the AWS error envelope and records the code sent in req.
// Errors that are not *mpmeter.Error are internal: logged, never shown; a
// passed deadline is ServiceUnavailable (503), which clients retry.
func (h *Handler) writeError(w http.ResponseWriter, req *middleware.Request, err error) {
	var e *mpmeter.Error
	if !errors.As(err, &e) {
		h.logger.Error("internal error", "request_id", req.ID, "op", req.Operation, "err", err)
		e = &mpmeter.Error{Code: mpmeter.CodeInternalServiceError, Message: internalMessage}
		if errors.Is(err, context.DeadlineExceeded) {
			e = &mpmeter.Error{Code: mpmeter.CodeServiceUnavailable, Message: "The service is unavailable. Retry your request."}
		}
	}
	req.ErrorCode, req.ErrorMessage = e.Code, e.Message
	WriteError(w, e)
}

// WriteError writes e in the awsJson error envelope with its status.
func WriteError(w http.ResponseWriter, e *mpmeter.Error) {
	body, _ := json.Marshal(struct {
		Type    mpmeter.ErrorCode `json:"__type"`
		Message string            `json:"message"`
	}{e.Code, e.Message})
	w.Header().Set("x-amzn-ErrorType", string(e.Code))
	status := Status(e.Code)
	if e.HTTPStatus != 0 {
		status = e.HTTPStatus
	}
	writeJSON(w, status, body)
}

// WriteInternalError answers InternalServiceErrorException and records it in
// the request's middleware.Request: middleware.Options.OnPanic.
func WriteInternalError(w http.ResponseWriter, r *http.Request) {
	req := middleware.FromContext(r.Context())
	req.ErrorCode, req.ErrorMessage, req.Output, req.OutputJSON = mpmeter.CodeInternalServiceError, internalMessage, nil, nil
	WriteError(w, &mpmeter.Error{Code: mpmeter.CodeInternalServiceError, Message: internalMessage})
}

func writeJSON(w http.ResponseWriter, status int, body []byte) {
	h := w.Header()
	h.Set("Content-Type", ContentType)
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
