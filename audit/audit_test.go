package audit_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mpmeter/mpmeter"
	"github.com/mpmeter/mpmeter/audit"
	"github.com/mpmeter/mpmeter/sqlstore"
)

func openStore(t testing.TB) *sqlstore.Store {
	t.Helper()
	st, err := sqlstore.Open(t.Context(), filepath.Join(t.TempDir(), "audit.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func newRecorder(t *testing.T, st audit.Store, cfg audit.Config) *audit.Recorder {
	t.Helper()
	cfg.Store, cfg.Clock = st, mpmeter.WallClock{}
	r, err := audit.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close(context.Background()) })
	return r
}

func allEvents(t *testing.T, st *sqlstore.Store) []mpmeter.AuditEvent {
	t.Helper()
	var evs []mpmeter.AuditEvent
	for ev, err := range audit.All(t.Context(), st, mpmeter.AuditFilter{}) {
		if err != nil {
			t.Fatal(err)
		}
		evs = append(evs, ev)
	}
	return evs
}

func TestRedact(t *testing.T) {
	in := map[string]any{
		"AccessKey": map[string]any{"Id": "AKIAX", "Secret": "s3cret", "SessionToken": "sess-value-1", "CredentialsToken": "ct"},
		"Token":     "reg-token", "ClientToken": "idem-1", "AdminToken": "adm-value-1",
		"Keys": []any{map[string]any{"PrivateKeyPem": "-----BEGIN", "Version": 2}},
		"Name": "Seller \"quoted\" {not a key}",
	}
	got := string(audit.Redact(in, 1<<20))
	for _, secret := range []string{"s3cret", "sess-value-1", `"ct"`, "reg-token", "adm-value-1", "BEGIN"} {
		if strings.Contains(got, secret) {
			t.Errorf("%q survives: %s", secret, got)
		}
	}
	for _, want := range []string{`"accessKey":{`, `"id":"AKIAX"`, `"secret":"[redacted]"`, `"token":"` + audit.Hash("reg-token") + `"`,
		`"clientToken":"idem-1"`, `"version":2`, `"name":"Seller \"quoted\" {not a key}"`} {
		if !strings.Contains(got, want) {
			t.Errorf("want %s in %s", want, got)
		}
	}
	if audit.Redact(nil, 10) != nil {
		t.Error("nil is not null")
	}
	// Capped: a stand-in with the size and a prefix.
	capped := audit.Redact(map[string]string{"Blob": strings.Repeat("é", 5000)}, 2048)
	var c struct {
		T struct {
			Bytes  int    `json:"bytes"`
			Prefix string `json:"prefix"`
		} `json:"mpmeterTruncated"`
	}
	if err := json.Unmarshal(capped, &c); err != nil || c.T.Bytes < 10000 || !strings.HasPrefix(c.T.Prefix, `{"blob":"é`) || len(capped) > 2048 {
		t.Errorf("capped to %d bytes: %.100s (%v)", len(capped), capped, err)
	}
}

// Events are written by time alone, without Flush or Close: what a crash
// can lose is bounded by the flush interval (and the batch being written).
func TestWrittenWithinTheFlushInterval(t *testing.T) {
	st := openStore(t)
	r := newRecorder(t, st, audit.Config{FlushInterval: 20 * time.Millisecond})
	r.Record(t.Context(), mpmeter.AuditEvent{EventSource: mpmeter.AuditSourceMetering, EventName: "MeterUsage", RequestID: "r1"})
	deadline := time.Now().Add(30 * time.Second) // liveness, not speed
	for len(allEvents(t, st)) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the event was never written")
		}
		time.Sleep(5 * time.Millisecond)
	}
	ev := allEvents(t, st)[0]
	if ev.EventID == "" || ev.EventVersion != mpmeter.AuditEventVersion || ev.EventType != "AwsApiCall" || ev.EventCategory != "Management" || ev.EventTime.IsZero() {
		t.Errorf("defaults not filled: %+v", ev)
	}
}

func TestBatchesAndClose(t *testing.T) {
	st := openStore(t)
	r := newRecorder(t, st, audit.Config{FlushInterval: time.Hour, BatchSize: 10})
	for range 25 {
		r.Record(t.Context(), mpmeter.AuditEvent{EventName: "ResolveCustomer"})
	}
	if err := r.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(t.Context()); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if n := len(allEvents(t, st)); n != 25 {
		t.Fatalf("%d events after Close, want 25", n)
	}
	r.Record(t.Context(), mpmeter.AuditEvent{EventName: "late"}) // dropped, not a panic
	if err := r.Flush(t.Context()); err == nil {
		t.Error("Flush after Close succeeded")
	}
	var nilRecorder *audit.Recorder
	nilRecorder.Record(t.Context(), mpmeter.AuditEvent{}) // the audit log off: a no-op
}

func TestAdminMiddleware(t *testing.T) {
	st := openStore(t)
	r := newRecorder(t, st, audit.Config{})
	h := r.AdminMiddleware(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		call := audit.AdminCallFrom(req.Context())
		call.Operation, call.AccountID = "CreateAccessKey", "111122223333"
		call.Parameters = map[string]string{"AccountId": "111122223333"}
		if req.URL.Query().Get("fail") != "" {
			call.ErrorCode, call.ErrorMessage = "not_found", "no such account"
			w.WriteHeader(http.StatusNotFound)
			return
		}
		call.Response = map[string]string{"AccessKeyId": "AKIANEW", "SecretAccessKey": "shown-once"}
		w.WriteHeader(http.StatusCreated)
	}))
	for _, target := range []string{"/admin/v1/access-keys", "/admin/v1/access-keys?fail=1"} {
		req := httptest.NewRequest(http.MethodPost, target, nil)
		req.Header.Set("Authorization", "Bearer the-admin-token")
		req.Header.Set("User-Agent", "mpmeter-cli")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Header().Get(audit.AdminRequestIDHeader) == "" {
			t.Error("no request id header")
		}
	}
	if err := r.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	evs := allEvents(t, st)
	if len(evs) != 2 {
		t.Fatalf("%d events", len(evs))
	}
	ok, failed := evs[0], evs[1]
	if ok.EventSource != mpmeter.AuditSourceAdmin || ok.EventName != "CreateAccessKey" || ok.UserIdentity.Type != mpmeter.AuditIdentityAdmin ||
		ok.RecipientAccountID != "111122223333" || ok.AdditionalEventData.HTTPStatus != 201 || ok.ReadOnly || ok.UserAgent != "mpmeter-cli" {
		t.Errorf("admin event %+v", ok)
	}
	if want := `{"accessKeyId":"AKIANEW","secretAccessKey":"[redacted]"}`; string(ok.ResponseElements) != want {
		t.Errorf("responseElements %s, want %s", ok.ResponseElements, want)
	}
	if failed.ErrorCode != "not_found" || failed.ErrorMessage != "no such account" || failed.ResponseElements != nil || failed.AdditionalEventData.HTTPStatus != 404 {
		t.Errorf("failed admin event %+v", failed)
	}
	raw, _ := json.Marshal(evs)
	for _, s := range []string{"the-admin-token", "shown-once", "Bearer"} {
		if strings.Contains(string(raw), s) {
			t.Errorf("%q recorded: %s", s, raw)
		}
	}
	// Without the middleware a handler still gets a usable AdminCall.
	audit.AdminCallFrom(context.Background()).Operation = "x"
	var off *audit.Recorder
	if off.AdminMiddleware(http.NotFoundHandler()) == nil {
		t.Error("a nil Recorder's middleware is nil")
	}
}

func TestExportJSONLines(t *testing.T) {
	st := openStore(t)
	r := newRecorder(t, st, audit.Config{})
	for range 1500 { // more than one page
		r.Record(t.Context(), mpmeter.AuditEvent{EventName: "BatchMeterUsage", UserIdentity: mpmeter.AuditIdentity{AccountID: "111122223333"}})
	}
	r.Record(t.Context(), mpmeter.AuditEvent{EventName: "ResolveCustomer"})
	if err := r.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	n, err := audit.ExportJSONLines(t.Context(), st, mpmeter.AuditFilter{EventName: "BatchMeterUsage"}, &b)
	if err != nil || n != 1500 {
		t.Fatalf("exported %d (%v)", n, err)
	}
	lines := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
	if len(lines) != 1500 {
		t.Fatalf("%d lines", len(lines))
	}
	var ev mpmeter.AuditEvent
	if err := json.Unmarshal([]byte(lines[1499]), &ev); err != nil || ev.EventName != "BatchMeterUsage" || !strings.Contains(lines[0], `"eventSource"`) {
		t.Fatalf("last line %s (%v)", lines[1499], err)
	}
}
