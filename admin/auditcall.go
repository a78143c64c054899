package admin

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"

	"github.com/danielgtaylor/huma/v2"

	"github.com/mpmeter/mpmeter/audit"
)

// How admin calls reach the audit log: server wraps the admin API in
// audit.Recorder.AdminMiddleware, which records an event when the call
// returns from what audit.AdminCallFrom(ctx) holds. recordCall, a huma
// middleware every operation runs through (this package's and those of
// Config.Routes alike), fills it in one place: the operation id, the path
// and query parameters and the request body as sent, the response body of
// a call that changes something, the error's code and message, and the
// account the call concerns. audit.AdminMiddleware redacts parameters and
// response (audit.Redact: secrets, session, credentials and admin tokens
// removed, registration tokens hashed) and caps them. Headers are never
// recorded (the bearer token is one).

// unknownOperation is the eventName of an admin call that matched no
// operation: the path it asked for is recorded capped, as a parameter,
// never as the event's name (which filters and tables show).
const unknownOperation = "unknown"

// Path and query values recorded for a call that matched no route are cut
// at this length.
const maxProbePath = 256

// probe records, for a call that reached no operation (not
// authenticated, or no such route), the method and the path asked for,
// capped; recordCall replaces it for a call that reached one.
func probe(r *http.Request, call *audit.AdminCall) {
	path := r.URL.Path
	if len(path) > maxProbePath {
		path = strings.ToValidUTF8(path[:maxProbePath], "") + "…"
	}
	call.Operation = unknownOperation
	call.Parameters = map[string]string{"method": capMethod(r.Method), "path": path}
}

func capMethod(m string) string {
	if len(m) > 16 {
		return m[:16]
	}
	return m
}

// recordCall is the huma middleware that fills the call's audit record.
func (a *API) recordCall(hctx huma.Context, next func(huma.Context)) {
	call := audit.AdminCallFrom(hctx.Context())
	op := hctx.Operation()
	call.Operation = op.OperationID
	call.ReadOnly = op.Method == http.MethodGet || op.Method == http.MethodHead
	rc := &recordingContext{humaContext: hctx}
	next(rc)

	params := map[string]any{}
	for _, p := range op.Parameters {
		var v string
		switch p.In {
		case "path":
			v = hctx.Param(p.Name)
		case "query":
			v = hctx.Query(p.Name)
		}
		if v != "" {
			params[p.Name] = v
		}
	}
	body := rc.in.captured()
	switch {
	case rc.in.overflow():
		params["mpmeterTruncated"] = map[string]int64{"bodyBytes": rc.in.n}
	case len(bytes.TrimSpace(body)) == 0:
	case json.Valid(body):
		var members map[string]json.RawMessage
		if json.Unmarshal(body, &members) == nil {
			for k, v := range members {
				params[k] = v
			}
		} else {
			params["body"] = json.RawMessage(body)
		}
	default:
		params["mpmeterUnrecordable"] = "the body is not JSON"
	}
	call.Parameters = nil
	if len(params) > 0 {
		call.Parameters = params
	}

	status := hctx.Status()
	out := rc.out.captured()
	if status >= http.StatusBadRequest {
		var e Error
		if !rc.out.overflow() && json.Unmarshal(out, &e) == nil && e.Code != "" {
			call.ErrorCode, call.ErrorMessage = e.Code, e.Message
		}
	} else if !call.ReadOnly {
		// Reads answer what is stored (and can be large); like CloudTrail,
		// only calls that change something record their answer.
		switch {
		case rc.out.overflow():
			call.Response = map[string]any{"mpmeterTruncated": map[string]int64{"bytes": rc.out.n}}
		case len(out) > 0 && strings.HasPrefix(rc.responseHeader("Content-Type"), "application/json") && json.Valid(out):
			call.Response = json.RawMessage(out)
		}
	}
	call.AccountID = accountOf(op.OperationID, params, out)
}

// accountOf is the account a call concerns: an account_id among its
// parameters or its JSON answer's top-level members, or the id of an
// account operation.
func accountOf(operationID string, params map[string]any, response []byte) string {
	str := func(v any) string {
		switch x := v.(type) {
		case string:
			return x
		case json.RawMessage:
			var s string
			if json.Unmarshal(x, &s) == nil {
				return s
			}
		}
		return ""
	}
	if s := str(params["account_id"]); s != "" {
		return s
	}
	if strings.HasSuffix(operationID, "-account") {
		if s := str(params["id"]); s != "" {
			return s
		}
	}
	var members map[string]json.RawMessage
	if json.Unmarshal(response, &members) == nil {
		if s := str(members["account_id"]); s != "" {
			return s
		}
		if strings.HasSuffix(operationID, "-account") {
			return str(members["id"])
		}
	}
	return ""
}

// humaContext lets recordingContext embed a huma.Context: embedded under
// its own name, its field Context would hide its method Context.
type humaContext = huma.Context

// recordingContext is a huma.Context that keeps the start of the request
// and response bodies it passes on (at most what the audit log would
// record of them), for recordCall.
type recordingContext struct {
	humaContext
	in    capture
	out   capture
	inRd  *captureReader
	outWr *captureWriter
}

// responseHeader is a header of the response (huma.Context's Header is
// the request's).
func (c *recordingContext) responseHeader(name string) string {
	if w, ok := c.humaContext.BodyWriter().(http.ResponseWriter); ok {
		return w.Header().Get(name)
	}
	return ""
}

func (c *recordingContext) BodyReader() io.Reader {
	if c.inRd == nil {
		c.inRd = &captureReader{r: c.humaContext.BodyReader(), c: &c.in}
	}
	return c.inRd
}

func (c *recordingContext) BodyWriter() io.Writer {
	if c.outWr == nil {
		w := c.humaContext.BodyWriter()
		rw, _ := w.(http.ResponseWriter)
		c.outWr = &captureWriter{w: w, rw: rw, c: &c.out}
	}
	return c.outWr
}

// capture keeps the first audit.MaxParametersBytes bytes of a body (the
// audit log's cap: a body longer than that is recorded as its size only,
// since a cut JSON document cannot be redacted) and counts them all.
type capture struct {
	buf []byte
	n   int64
}

func (c *capture) add(b []byte) {
	c.n += int64(len(b))
	if room := audit.MaxParametersBytes + 1 - len(c.buf); room > 0 {
		c.buf = append(c.buf, b[:min(room, len(b))]...)
	}
}

func (c *capture) overflow() bool   { return c.n > audit.MaxParametersBytes }
func (c *capture) captured() []byte { return c.buf }

type captureReader struct {
	r io.Reader
	c *capture
}

func (r *captureReader) Read(p []byte) (int, error) {
	if r.r == nil { // a request without a body
		return 0, io.EOF
	}
	n, err := r.r.Read(p)
	r.c.add(p[:n])
	return n, err
}

// captureWriter passes writes on and keeps their start. It is an
// http.ResponseWriter when the writer it wraps is one, and unwraps to it,
// so streamed responses still flush (http.ResponseController).
type captureWriter struct {
	w  io.Writer
	rw http.ResponseWriter
	c  *capture
}

func (w *captureWriter) Write(b []byte) (int, error) {
	w.c.add(b)
	return w.w.Write(b)
}

func (w *captureWriter) Header() http.Header {
	if w.rw == nil {
		return http.Header{}
	}
	return w.rw.Header()
}

func (w *captureWriter) WriteHeader(status int) {
	if w.rw != nil {
		w.rw.WriteHeader(status)
	}
}

func (w *captureWriter) Unwrap() http.ResponseWriter { return w.rw }
