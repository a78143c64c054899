package admin_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/mpmeter/mpmeter"
	"github.com/mpmeter/mpmeter/mpmetertest"
)

// adminEvents is every admin event recorded, oldest first.
func adminEvents(t *testing.T, srv *mpmetertest.Server) []mpmeter.AuditEvent {
	t.Helper()
	return srv.AuditEvents(t, mpmeter.AuditFilter{EventSource: mpmeter.AuditSourceAdmin})
}

func eventNamed(t *testing.T, evs []mpmeter.AuditEvent, name string) mpmeter.AuditEvent {
	t.Helper()
	for _, ev := range evs {
		if ev.EventName == name {
			return ev
		}
	}
	t.Fatalf("no %s event among %d", name, len(evs))
	return mpmeter.AuditEvent{}
}

// Each admin operation is recorded under its operation id, with its
// parameters and (for changes) its answer, the account it concerns, and
// its error; never a secret it was given or answered.
func TestAdminCallsAudited(t *testing.T) {
	srv := newServer(t)
	must(t, srv, http.StatusCreated, http.MethodPost, "/admin/v1/accounts", map[string]any{"id": "210987654321", "name": "New Buyer"}, nil)
	var key struct {
		ID               string `json:"id"`
		Secret           string `json:"secret_access_key"`
		CredentialsToken string `json:"credentials_token"`
	}
	must(t, srv, http.StatusCreated, http.MethodPost, "/admin/v1/access-keys", map[string]any{"account_id": "210987654321",
		"workload": map[string]any{"id": "i-0abc0abc0abc0abc0", "platform": "ec2", "region": "us-east-1"}, "credentials_endpoint": true}, &key)
	if key.Secret == "" || key.CredentialsToken == "" {
		t.Fatalf("key %+v", key)
	}
	var tok struct {
		ID    string `json:"id"`
		Token string `json:"token"`
	}
	must(t, srv, http.StatusCreated, http.MethodPost, "/admin/v1/registration-tokens",
		map[string]any{"agreement_id": mpmeter.AgreementIDFor(mpmetertest.CustomerLicense)}, &tok)
	if tok.Token == "" {
		t.Fatalf("token %+v", tok)
	}
	st, b := call(t, srv.URL, token, http.MethodPost, "/admin/v1/accounts", map[string]any{"id": "12345"}, nil)
	wantError(t, st, b, http.StatusBadRequest, "validation_failed")
	must(t, srv, http.StatusOK, http.MethodGet, "/admin/v1/accounts/210987654321", nil, nil)
	// The seed export carries every secret: its answer is never recorded.
	must(t, srv, http.StatusOK, http.MethodGet, "/admin/v1/seed", nil, nil)

	evs := adminEvents(t, srv)
	create := eventNamed(t, evs, "create-access-key")
	if create.RecipientAccountID != "210987654321" || create.ErrorCode != "" || create.ReadOnly ||
		create.UserIdentity.Type != mpmeter.AuditIdentityAdmin || create.AdditionalEventData.HTTPStatus != 201 {
		t.Errorf("create-access-key event %+v", create)
	}
	var params, resp map[string]any
	if err := json.Unmarshal(create.RequestParameters, &params); err != nil || params["account_id"] != "210987654321" || params["credentials_endpoint"] != true {
		t.Errorf("create-access-key parameters %s (%v)", create.RequestParameters, err)
	}
	if err := json.Unmarshal(create.ResponseElements, &resp); err != nil || resp["id"] != key.ID ||
		resp["secret_access_key"] != "[redacted]" || resp["credentials_token"] != "[redacted]" {
		t.Errorf("create-access-key response %s (%v)", create.ResponseElements, err)
	}
	if acct := eventNamed(t, evs, "create-account"); acct.RecipientAccountID != "210987654321" {
		t.Errorf("create-account concerns %q", acct.RecipientAccountID)
	}
	if get := eventNamed(t, evs, "get-account"); !get.ReadOnly || get.ResponseElements != nil || get.RecipientAccountID != "210987654321" {
		t.Errorf("get-account event %+v (reads record no answer)", get)
	}
	issued := eventNamed(t, evs, "issue-registration-token")
	if !strings.Contains(string(issued.ResponseElements), `"sha256:`) {
		t.Errorf("issued token not hashed: %s", issued.ResponseElements)
	}
	var failed mpmeter.AuditEvent
	for _, ev := range evs {
		if ev.EventName == "create-account" && ev.ErrorCode != "" {
			failed = ev
		}
	}
	if failed.ErrorCode != "validation_failed" || !strings.Contains(failed.ErrorMessage, "12-digit") || failed.ResponseElements != nil ||
		failed.AdditionalEventData.HTTPStatus != 400 || !strings.Contains(string(failed.RequestParameters), `"12345"`) {
		t.Errorf("failed create-account %+v", failed)
	}
	if seedEv := eventNamed(t, evs, "export-seed"); seedEv.ResponseElements != nil {
		t.Errorf("the seed export's answer recorded: %s", seedEv.ResponseElements)
	}

	// Filtering by account finds the admin calls that concern it.
	var byAccount auditList
	must(t, srv, http.StatusOK, http.MethodGet, "/admin/v1/audit/events?source=admin&account=210987654321", nil, &byAccount)
	var names []string
	for _, ev := range byAccount.Items {
		names = append(names, ev.EventName)
	}
	if strings.Join(names, ",") != "create-account,create-access-key,get-account" {
		t.Errorf("admin events of account 210987654321: %v", names)
	}

	// No secret anywhere in the log: read raw, through the export.
	_, all := call(t, srv.URL, token, http.MethodGet, "/admin/v1/audit/export", nil, nil)
	if len(all) == 0 {
		t.Fatal("empty export")
	}
	for _, secret := range []string{key.Secret, key.CredentialsToken, tok.Token, token, mpmetertest.SellerSecret} {
		if strings.Contains(string(all), secret) {
			t.Errorf("%q is in the audit log", secret)
		}
	}
}

// Calls that reach no operation are recorded as "unknown", with the path
// capped, never as an event named by the caller; with the admin API off,
// they are not recorded at all.
func TestAdminProbesAudited(t *testing.T) {
	srv := newServer(t)
	long := "/admin/v1/" + strings.Repeat("x", 10_000)
	st, b := call(t, srv.URL, "wrong-token", http.MethodGet, long, nil, nil)
	wantError(t, st, b, http.StatusUnauthorized, "unauthorized")
	st, b = call(t, srv.URL, token, http.MethodDelete, "/admin/v1/no-such-route", nil, nil)
	wantError(t, st, b, http.StatusNotFound, "not_found")
	evs := adminEvents(t, srv)
	if len(evs) != 2 {
		t.Fatalf("%d events, want 2", len(evs))
	}
	for i, want := range []string{"unauthorized", "not_found"} {
		ev := evs[i]
		if ev.EventName != "unknown" || ev.ErrorCode != want {
			t.Errorf("probe %d: event %s, error %q; want unknown, %s", i, ev.EventName, ev.ErrorCode, want)
		}
		if len(ev.RequestParameters) > 400 {
			t.Errorf("probe %d: %d bytes of parameters recorded", i, len(ev.RequestParameters))
		}
	}
	if !strings.Contains(string(evs[1].RequestParameters), `"path":"/admin/v1/no-such-route"`) ||
		!strings.Contains(string(evs[1].RequestParameters), `"method":"DELETE"`) {
		t.Errorf("unknown route parameters %s", evs[1].RequestParameters)
	}
	var found auditList
	must(t, srv, http.StatusOK, http.MethodGet, "/admin/v1/audit/events?"+url.Values{"error": {"unauthorized"}}.Encode(), nil, &found)
	if len(found.Items) != 1 {
		t.Errorf("error=unauthorized: %d events", len(found.Items))
	}

	off := mpmetertest.New(t) // no admin token: the API is off
	for _, p := range []string{"/admin/v1/accounts", long} {
		st, b := call(t, off.URL, "anything", http.MethodGet, p, nil, nil)
		wantError(t, st, b, http.StatusNotFound, "not_found")
	}
	if evs := adminEvents(t, off); len(evs) != 0 {
		t.Errorf("the admin API is off, and %d events were recorded: %+v", len(evs), evs)
	}
}
