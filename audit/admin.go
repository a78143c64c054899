package audit

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/google/uuid"

	"github.com/mpmeter/mpmeter"
)

// AdminCall is what an admin API handler tells the audit log about the call
// it serves, through AdminCallFrom(ctx). AdminMiddleware records it when the
// handler returns. Parameters and Response go through Redact: members
// named like secrets (a created access key's secret, a session or admin
// token) are never recorded, registration tokens only hashed; a handler
// should still leave out what it knows to be secret.
type AdminCall struct {
	// Operation is the event's eventName: the route's OpenAPI operation id
	// (e.g. "create-access-key"); empty means "unknown" (the URL is never
	// the name: anyone can send any URL).
	Operation string
	// Skip, when set, records nothing of the call (the admin API is off:
	// its 404s carry nothing worth keeping, and anyone can send them).
	Skip bool
	// Parameters is the decoded request (path, query and body); Response
	// the response body on success.
	Parameters, Response any
	// ErrorCode and ErrorMessage are the admin error's code and message
	// ({"code": ..., "message": ...}); when the handler leaves ErrorCode
	// empty on a status of 400 or more, the status is the code.
	ErrorCode, ErrorMessage string
	// AccountID is the account the call concerns, if any: the event's
	// recipientAccountId (so filtering by account finds admin changes to
	// it too).
	AccountID string
	// ReadOnly marks calls that change nothing (GET).
	ReadOnly bool
}

type adminCallKey struct{}

// AdminCallFrom returns the AdminCall AdminMiddleware put into ctx; without
// the middleware (the audit log is off) a throwaway one, so handlers need
// not check.
func AdminCallFrom(ctx context.Context) *AdminCall {
	if c, ok := ctx.Value(adminCallKey{}).(*AdminCall); ok {
		return c
	}
	return &AdminCall{}
}

// AdminRequestIDHeader carries an admin call's request id (the event's
// requestID) when the handler did not set one.
const AdminRequestIDHeader = "X-Request-Id"

// AdminMiddleware records every call to next as an event of source
// mpmeter.AuditSourceAdmin with userIdentity type
// mpmeter.AuditIdentityAdmin. The bearer token is never recorded (nor any
// header). It must wrap the handler after authentication has been decided
// and may wrap it before: an unauthenticated call is recorded too (status
// 401). A nil Recorder returns next.
func (r *Recorder) AdminMiddleware(next http.Handler) http.Handler {
	if r == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, hr *http.Request) {
		start := time.Now()
		call := &AdminCall{ReadOnly: hr.Method == http.MethodGet || hr.Method == http.MethodHead}
		if w.Header().Get(AdminRequestIDHeader) == "" {
			w.Header().Set(AdminRequestIDHeader, uuid.NewString())
		}
		sw := &statusWriter{ResponseWriter: w}
		defer func() {
			status := sw.code
			if status == 0 {
				status = http.StatusOK
			}
			if call.Skip {
				return
			}
			op := call.Operation
			if op == "" {
				op = "unknown"
			}
			ev := mpmeter.AuditEvent{
				EventSource:         mpmeter.AuditSourceAdmin,
				EventName:           capString(op),
				SourceIPAddress:     SourceIP(hr),
				UserAgent:           capString(hr.UserAgent()),
				UserIdentity:        mpmeter.AuditIdentity{Type: mpmeter.AuditIdentityAdmin},
				RequestID:           w.Header().Get(AdminRequestIDHeader),
				RecipientAccountID:  call.AccountID,
				ReadOnly:            call.ReadOnly,
				ErrorCode:           call.ErrorCode,
				ErrorMessage:        capString(call.ErrorMessage),
				AdditionalEventData: &mpmeter.AuditAdditionalData{HTTPStatus: status, DurationMS: float64(time.Since(start).Microseconds()) / 1000},
			}
			if ev.ErrorCode == "" && status >= 400 {
				ev.ErrorCode = strconv.Itoa(status)
			}
			ev.RequestParameters = Redact(call.Parameters, MaxParametersBytes)
			if ev.ErrorCode == "" {
				ev.ResponseElements = Redact(call.Response, MaxResponseBytes)
			}
			r.Record(hr.Context(), ev)
		}()
		next.ServeHTTP(sw, hr.WithContext(context.WithValue(hr.Context(), adminCallKey{}, call)))
	})
}

type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(status int) {
	if w.code == 0 {
		w.code = status
	}
	w.ResponseWriter.WriteHeader(status)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the underlying writer
// (streamed exports flush through it).
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
