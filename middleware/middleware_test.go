package middleware_test

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mpmeter/mpmeter"
	"github.com/mpmeter/mpmeter/awsjson"
	"github.com/mpmeter/mpmeter/middleware"
)

type observed struct {
	op   string
	code mpmeter.ErrorCode
}

type recordingObserver struct {
	mu   sync.Mutex
	seen []observed
}

func (o *recordingObserver) ObserveRequest(op string, code mpmeter.ErrorCode, _ time.Duration) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.seen = append(o.seen, observed{op, code})
}

// logged returns a logger writing JSON lines into buf.
func logged(buf *bytes.Buffer) *slog.Logger {
	return slog.New(slog.NewJSONHandler(buf, nil))
}

// lines decodes the JSON log lines in buf.
func lines(t *testing.T, buf *bytes.Buffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		out = append(out, m)
	}
	return out
}

func TestPanicIsInternalServiceError(t *testing.T) {
	var logs bytes.Buffer
	obs := &recordingObserver{}
	h := middleware.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		middleware.FromContext(r.Context()).Operation = mpmeter.OpMeterUsage
		panic("nil map somewhere")
	}), middleware.Options{Logger: logged(&logs), Observer: obs, OnPanic: awsjson.WriteInternalError})
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/", nil))

	id := w.Header().Get(middleware.RequestIDHeader)
	if len(id) != 36 {
		t.Errorf("request id %q", id)
	}
	var body map[string]string
	if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil || w.Code != 500 || body["__type"] != "InternalServiceErrorException" {
		t.Fatalf("got %d %s", w.Code, w.Body)
	}
	if strings.Contains(w.Body.String(), "nil map") {
		t.Errorf("the panic leaked to the client: %s", w.Body)
	}
	if len(obs.seen) != 1 || obs.seen[0] != (observed{mpmeter.OpMeterUsage, mpmeter.CodeInternalServiceError}) {
		t.Errorf("observed %v", obs.seen)
	}
	ls := lines(t, &logs)
	if len(ls) != 2 || ls[0]["panic"] != "nil map somewhere" || ls[0]["request_id"] != id {
		t.Fatalf("log %v", ls)
	}
	if ls[1]["msg"] != "request" || ls[1]["request_id"] != id || ls[1]["error"] != "InternalServiceErrorException" || ls[1]["op"] != mpmeter.OpMeterUsage {
		t.Errorf("access log %v", ls[1])
	}
}

// A panic after the response started cannot answer again; it is still
// counted as an internal error.
func TestPanicAfterWrite(t *testing.T) {
	obs := &recordingObserver{}
	var logs bytes.Buffer
	h := middleware.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(200)
		w.Write([]byte(`{}`))
		panic("late")
	}), middleware.Options{Logger: logged(&logs), Observer: obs, OnPanic: awsjson.WriteInternalError})
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/", nil))
	if w.Code != 200 || w.Body.String() != `{}` {
		t.Errorf("got %d %s", w.Code, w.Body)
	}
	if len(obs.seen) != 1 || obs.seen[0] != (observed{middleware.UnknownOperation, mpmeter.CodeInternalServiceError}) {
		t.Errorf("observed %v", obs.seen)
	}
}

// http.ErrAbortHandler is net/http's way to abort a response: not ours to
// recover.
func TestAbortHandlerPanicsOn(t *testing.T) {
	var logs bytes.Buffer
	h := middleware.Wrap(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic(http.ErrAbortHandler) }),
		middleware.Options{Logger: logged(&logs)})
	defer func() {
		if p := recover(); p != http.ErrAbortHandler {
			t.Errorf("recovered %v, want http.ErrAbortHandler", p)
		}
	}()
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodPost, "/", nil))
}

func TestRequestIDAlwaysSet(t *testing.T) {
	var logs bytes.Buffer
	var seenByHandler []string
	h := middleware.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req := middleware.FromContext(r.Context())
		seenByHandler = append(seenByHandler, req.ID)
		switch r.URL.Path {
		case "/error":
			req.ErrorCode = mpmeter.CodeValidation
			w.WriteHeader(400)
		case "/nothing":
			// writes nothing at all
		default:
			w.Write([]byte("ok"))
		}
	}), middleware.Options{Logger: logged(&logs)})
	ids := map[string]bool{}
	for i, path := range []string{"/", "/error", "/nothing", "/"} {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(http.MethodPost, path, nil))
		id := w.Header().Get(middleware.RequestIDHeader)
		if len(id) != 36 || ids[id] || seenByHandler[i] != id {
			t.Errorf("%s: request id %q (handler saw %q)", path, id, seenByHandler[i])
		}
		ids[id] = true
	}
	if ls := lines(t, &logs); len(ls) != 4 || ls[1]["error"] != "ValidationException" {
		t.Errorf("log %v", ls)
	}
}

// The access log carries what README's "Seeing what happened" lists, and
// no attacker-supplied string longer than MaxLoggedLen.
func TestAccessLogFields(t *testing.T) {
	var logs bytes.Buffer
	obs := &recordingObserver{}
	long := strings.Repeat("A", 10000)
	h := middleware.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req := middleware.FromContext(r.Context())
		req.Caller = mpmeter.Caller{AccountID: "111122223333", Region: "us-east-1" + long}
		req.Detail = r.Header.Get("X-Amz-Target")
		req.ErrorCode = mpmeter.CodeUnknownOperation
		w.WriteHeader(400)
	}), middleware.Options{Logger: logged(&logs), Observer: obs})
	r := httptest.NewRequest(http.MethodPost, "/", nil)
	r.Header.Set("X-Amz-Target", long)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	ls := lines(t, &logs)
	if len(ls) != 1 {
		t.Fatalf("log %v", ls)
	}
	l := ls[0]
	for _, field := range []string{"request_id", "op", "account", "region", "error", "duration"} {
		if _, ok := l[field]; !ok {
			t.Errorf("log lacks %s: %v", field, l)
		}
	}
	if l["request_id"] != w.Header().Get(middleware.RequestIDHeader) || l["op"] != "unknown" || l["account"] != "111122223333" || l["error"] != "UnknownOperationException" {
		t.Errorf("log %v", l)
	}
	for _, field := range []string{"region", "detail"} {
		s, _ := l[field].(string)
		if !strings.HasPrefix(s, "us-east-1") && !strings.HasPrefix(s, "AAAA") || len(s) > middleware.MaxLoggedLen+len("…") {
			t.Errorf("%s logged as %d bytes: %.40q", field, len(s), s)
		}
	}
	if len(logs.String()) > 1000 {
		t.Errorf("a %d-byte log line for a 10 kB header", len(logs.String()))
	}
	if len(obs.seen) != 1 || obs.seen[0].op != middleware.UnknownOperation {
		t.Errorf("observed %v", obs.seen)
	}
}

func TestFromContextWithoutMiddleware(t *testing.T) {
	r := httptest.NewRequest(http.MethodPost, "/", nil)
	req := middleware.FromContext(r.Context())
	req.Operation = "x" // usable, and not shared
	if middleware.FromContext(r.Context()).Operation != "" {
		t.Error("FromContext without the middleware shares its Request")
	}
}
