// Package awsjson is the awsJson 1.1 protocol of the Metering API: it turns an
// HTTP request into a verified caller and a validated operation input, calls
// the service, and writes the result or the AWS error envelope. Every
// operation takes the same path; an operation is one entry in a table.
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
	"time"

	"github.com/google/uuid"

	"github.com/mpmeter/mpmeter"
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

// Observer hears about every finished request (metrics, audit). It must be
// fast and safe for concurrent use.
type Observer interface {
	ObserveRequest(op string, caller mpmeter.Caller, errCode string, d time.Duration)
}

// Limiter decides whether a call may proceed now (package ratelimit).
type Limiter interface {
	Allow(key string) bool
}

// Handler serves the Metering API on POST /.
type Handler struct {
	service  mpmeter.MeteringService
	verifier Verifier
	logger   *slog.Logger
	observer Observer
	limiter  Limiter
	ops      map[string]operation
}

// Options configure a Handler. Zero values are usable.
type Options struct {
	Logger   *slog.Logger // nil: slog.Default()
	Observer Observer     // nil: none
	// Limiter throttles calls per account and operation; nil: no limit.
	Limiter Limiter
}

// NewHandler returns the API handler for svc, authenticating with v.
func NewHandler(svc mpmeter.MeteringService, v Verifier, opts Options) *Handler {
	h := &Handler{service: svc, verifier: v, logger: opts.Logger, observer: opts.Observer, limiter: opts.Limiter}
	if h.logger == nil {
		h.logger = slog.Default()
	}
	h.ops = map[string]operation{
		mpmeter.OpBatchMeterUsage: op(mpmeter.MeteringService.BatchMeterUsage),
		mpmeter.OpMeterUsage:      op(mpmeter.MeteringService.MeterUsage),
		mpmeter.OpRegisterUsage:   op(mpmeter.MeteringService.RegisterUsage),
		mpmeter.OpResolveCustomer: op(mpmeter.MeteringService.ResolveCustomer),
	}
	return h
}

// operation decodes, validates and calls one API operation.
type operation func(ctx context.Context, svc mpmeter.MeteringService, caller mpmeter.Caller, body []byte) (any, error)

// validatable is a generated input type: *In with a Validate method.
type validatable[In any] interface {
	*In
	Validate() error
}

// op makes the table entry for one service method: the one generic
// decode → validate → call path.
func op[In any, Out any, PIn validatable[In]](method func(mpmeter.MeteringService, context.Context, mpmeter.Caller, *In) (*Out, error)) operation {
	return func(ctx context.Context, svc mpmeter.MeteringService, caller mpmeter.Caller, body []byte) (any, error) {
		in := new(In)
		if err := decode(body, in); err != nil {
			return nil, err
		}
		if err := PIn(in).Validate(); err != nil {
			return nil, err
		}
		return method(svc, ctx, caller, in)
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
	start := time.Now()
	requestID := uuid.NewString()
	w.Header().Set("x-amzn-RequestId", requestID)
	opName := strings.TrimPrefix(r.Header.Get("X-Amz-Target"), mpmeter.TargetPrefix+".")
	caller := mpmeter.Caller{}
	var errCode string
	defer func() {
		if p := recover(); p != nil {
			h.logger.Error("panic serving request", "request_id", requestID, "op", opName, "panic", fmt.Sprint(p))
			errCode = mpmeter.CodeInternalServiceError
			h.writeError(w, requestID, &mpmeter.Error{Code: errCode, Message: internalMessage})
		}
		d := time.Since(start)
		if h.observer != nil {
			h.observer.ObserveRequest(opName, caller, errCode, d)
		}
		h.logger.LogAttrs(r.Context(), slog.LevelInfo, "request",
			slog.String("request_id", requestID), slog.String("op", opName),
			slog.String("account", caller.AccountID), slog.String("region", caller.Region),
			slog.String("error", errCode), slog.Duration("duration", d))
	}()

	out, err := h.serve(r, opName, &caller)
	if err != nil {
		errCode = h.writeError(w, requestID, err)
		return
	}
	body, err := json.Marshal(out)
	if err != nil {
		errCode = h.writeError(w, requestID, fmt.Errorf("encoding %s output: %w", opName, err))
		return
	}
	writeJSON(w, http.StatusOK, body)
}

func (h *Handler) serve(r *http.Request, opName string, caller *mpmeter.Caller) (any, error) {
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
	c, err := h.verifier.Verify(r.Context(), r, body)
	if err != nil {
		return nil, err
	}
	*caller = c
	operation, ok := h.ops[opName]
	if !ok || !strings.HasPrefix(r.Header.Get("X-Amz-Target"), mpmeter.TargetPrefix+".") {
		return nil, mpmeter.Errorf(mpmeter.CodeUnknownOperation, "Unknown operation %q.", r.Header.Get("X-Amz-Target"))
	}
	if ct := r.Header.Get("Content-Type"); ct != "" {
		if mt, _, err := mime.ParseMediaType(ct); err != nil || (mt != ContentType && mt != "application/json") {
			return nil, mpmeter.Errorf(mpmeter.CodeSerialization, "Unsupported Content-Type %q: expected %s.", ct, ContentType)
		}
	}
	if !mpmeter.OperationAvailableIn(opName, c.Region) {
		return nil, mpmeter.Errorf(mpmeter.CodeDisabledAPI, "%s is not available in region %s.", opName, c.Region)
	}
	if h.limiter != nil && !h.limiter.Allow(c.AccountID+"|"+opName) {
		return nil, mpmeter.Errorf(mpmeter.CodeThrottling, "Rate exceeded for %s by account %s.", opName, c.AccountID)
	}
	return operation(r.Context(), h.service, c, body)
}

// internalMessage is all a client learns of an internal error.
const internalMessage = "An internal error has occurred. Retry your request."

// writeError writes the AWS error envelope and returns the error code sent.
// Errors that are not *mpmeter.Error are internal: logged, never shown.
func (h *Handler) writeError(w http.ResponseWriter, requestID string, err error) string {
	var e *mpmeter.Error
	if !errors.As(err, &e) {
		h.logger.Error("internal error", "request_id", requestID, "err", err)
		e = &mpmeter.Error{Code: mpmeter.CodeInternalServiceError, Message: internalMessage}
		if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, ErrUnavailable) {
			e = &mpmeter.Error{Code: mpmeter.CodeServiceUnavailable, Message: "The service is unavailable. Retry your request."}
		}
	}
	body, _ := json.Marshal(struct {
		Type    string `json:"__type"`
		Message string `json:"message"`
	}{e.Code, e.Message})
	w.Header().Set("x-amzn-ErrorType", e.Code)
	status := Status(e.Code)
	if e.HTTPStatus != 0 {
		status = e.HTTPStatus
	}
	writeJSON(w, status, body)
	return e.Code
}

// ErrUnavailable marks an internal error as temporary (the database is
// unreachable): clients get 503 ServiceUnavailable and retry.
var ErrUnavailable = errors.New("service temporarily unavailable")

func writeJSON(w http.ResponseWriter, status int, body []byte) {
	h := w.Header()
	h.Set("Content-Type", ContentType)
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	w.Write(body)
}

// Status is the HTTP status AWS answers an error name with: the modeled
// errors are 400 but for the fault InternalServiceErrorException, and the
// common errors follow the API reference and PROTOCOL.md.
func Status(code string) int {
	switch code {
	case mpmeter.CodeInternalServiceError, mpmeter.CodeInternalFailureUnmodeled:
		return http.StatusInternalServerError
	case mpmeter.CodeServiceUnavailable:
		return http.StatusServiceUnavailable
	case mpmeter.CodeUnrecognizedClient, mpmeter.CodeInvalidSignature, mpmeter.CodeMissingAuthentication, "InvalidClientTokenId", "OptInRequired":
		return http.StatusForbidden
	case mpmeter.CodeDryRunOperation:
		return http.StatusPreconditionFailed
	case mpmeter.CodeRequestEntityTooLarge:
		return http.StatusRequestEntityTooLarge
	}
	return http.StatusBadRequest
}
