// Package middleware wraps the API handler with what every request gets
// whatever it asks for: a request id, panic recovery, one access log line and
// the request metrics. The wrapped handler tells it what the request was (the
// operation it resolved, the caller, the error it answered) through a
// *Request in the request's context, so labels and log fields come from the
// handler's own tables, never from raw input (an unknown X-Amz-Target is
// "unknown", not a new metric series).
package middleware

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/mpmeter/mpmeter"
)

// RequestIDHeader is the response header carrying the request id (AWS's).
const RequestIDHeader = "x-amzn-RequestId"

// UnknownOperation is the operation of a request the handler did not
// resolve to one of its operations.
const UnknownOperation = "unknown"

// Request is what the handler reports about one request. The middleware
// creates it (with ID set) and reads it when the handler returns.
type Request struct {
	// ID is the request id, also sent in RequestIDHeader.
	ID string
	// Operation is the key of the handler's operation table the request
	// resolved to; empty means UnknownOperation.
	Operation string
	// Caller is who signed the request, once verified.
	Caller mpmeter.Caller
	// ErrorCode is the AWS error name answered; empty on success.
	ErrorCode mpmeter.ErrorCode
	// Detail is an attacker-supplied string worth logging (the raw
	// X-Amz-Target of an unknown operation); the log truncates it.
	Detail string
	// Fault is the fault injected into the call on purpose (package
	// faults), if any: the audit log marks the event with it.
	Fault *mpmeter.InjectedFault

	// What the audit log records (Options.Recorder), so that it never
	// decodes a request again: Input is the operation's input as the
	// handler decoded it, validated or not (nil when the request never got
	// that far); Output is the handler's result on success (OutputJSON its
	// encoding); ErrorMessage is the message of the error answered.
	Input, Output any
	ErrorMessage  string
	// InputJSON is the request body Input was decoded from, set once it
	// decoded; OutputJSON is Output as the client got it (the response
	// body). Both are the handler's own allocations, which nothing reads
	// once the response is written: the Recorder takes them over instead
	// of marshalling again (and renames their members in place), so
	// nothing else may read them after RecordRequest.
	InputJSON, OutputJSON []byte
}

type requestKey struct{}

// FromContext returns the *Request the middleware put into ctx. Without the
// middleware it returns a fresh one, so handlers need not check.
func FromContext(ctx context.Context) *Request {
	if r, ok := ctx.Value(requestKey{}).(*Request); ok {
		return r
	}
	return &Request{}
}

// NewContext returns ctx carrying r (for handlers tested without Wrap).
func NewContext(ctx context.Context, r *Request) context.Context {
	return context.WithValue(ctx, requestKey{}, r)
}

// Observer hears about every finished request (metrics). It must be fast
// and safe for concurrent use. op is a key of the handler's operation table
// or UnknownOperation.
type Observer interface {
	ObserveRequest(op string, errCode mpmeter.ErrorCode, d time.Duration)
}

// Recorder hears about every request (the audit log): BeginRequest when it
// starts, RecordRequest with the request itself and the status answered
// when it ends (a large response may have reached the client by then, so
// BeginRequest lets the recorder know a call is still to be recorded). Both
// must not block: they run on the request's goroutine.
type Recorder interface {
	BeginRequest()
	RecordRequest(r *http.Request, req *Request, status int, d time.Duration)
}

// Options configure Wrap. Zero values are usable.
type Options struct {
	Logger   *slog.Logger // nil: slog.Default()
	Observer Observer     // nil: none
	Recorder Recorder     // nil: none
	// OnPanic answers a request whose handler panicked before writing a
	// response (the protocol's internal-error envelope) and records the
	// error code in FromContext(r.Context()). nil: a plain 500.
	OnPanic func(w http.ResponseWriter, r *http.Request)
}

// MaxLoggedLen caps the attacker-supplied strings in a log line.
const MaxLoggedLen = 128

// Wrap returns next with a request id, panic recovery, the access log and
// metrics around it.
func Wrap(next http.Handler, opts Options) http.Handler {
	logger := opts.Logger
	if logger == nil {
		logger = slog.Default()
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		if opts.Recorder != nil {
			opts.Recorder.BeginRequest()
		}
		// UUIDv7: time-ordered, so the audit log's request-id index takes
		// each new id at its end instead of on a random page.
		req := &Request{ID: uuid.Must(uuid.NewV7()).String()}
		w.Header().Set(RequestIDHeader, req.ID)
		r = r.WithContext(NewContext(r.Context(), req))
		rw := &responseWriter{ResponseWriter: w}
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					if opts.Recorder != nil { // the client went away; the call still happened
						opts.Recorder.RecordRequest(r, req, rw.status(), time.Since(start))
					}
					panic(p)
				}
				logger.Error("panic serving request", "request_id", req.ID, "op", operation(req), "panic", fmt.Sprint(p))
				if !rw.wroteHeader {
					if opts.OnPanic != nil {
						opts.OnPanic(rw, r)
					} else {
						http.Error(rw, "internal error", http.StatusInternalServerError)
					}
				}
				if req.ErrorCode == "" {
					req.ErrorCode = mpmeter.CodeInternalServiceError
				}
			}
			d := time.Since(start)
			op := operation(req)
			if opts.Observer != nil {
				opts.Observer.ObserveRequest(op, req.ErrorCode, d)
			}
			if opts.Recorder != nil {
				opts.Recorder.RecordRequest(r, req, rw.status(), d)
			}
			attrs := []slog.Attr{
				slog.String("request_id", req.ID), slog.String("op", op),
				slog.String("account", truncate(req.Caller.AccountID)), slog.String("region", truncate(req.Caller.Region)),
				slog.String("error", string(req.ErrorCode)), slog.Duration("duration", d),
			}
			if req.Detail != "" {
				attrs = append(attrs, slog.String("detail", truncate(req.Detail)))
			}
			logger.LogAttrs(r.Context(), slog.LevelInfo, "request", attrs...)
		}()
		next.ServeHTTP(rw, r)
	})
}

func operation(r *Request) string {
	if r.Operation == "" {
		return UnknownOperation
	}
	return r.Operation
}

// truncate caps s at MaxLoggedLen bytes (on a rune boundary).
func truncate(s string) string {
	if len(s) <= MaxLoggedLen {
		return s
	}
	cut := MaxLoggedLen
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// responseWriter remembers whether the response was started, so a panic
// after it does not write a second one.
type responseWriter struct {
	http.ResponseWriter
	wroteHeader bool
	code        int
}

func (w *responseWriter) WriteHeader(status int) {
	if !w.wroteHeader {
		w.code = status
	}
	w.wroteHeader = true
	w.ResponseWriter.WriteHeader(status)
}

func (w *responseWriter) Write(b []byte) (int, error) {
	if !w.wroteHeader {
		w.code = http.StatusOK
	}
	w.wroteHeader = true
	return w.ResponseWriter.Write(b)
}

// status is the HTTP status sent (0 when nothing was).
func (w *responseWriter) status() int { return w.code }

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *responseWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
