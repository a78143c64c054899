package admin_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/marketplacemetering"
	mmtypes "github.com/aws/aws-sdk-go-v2/service/marketplacemetering/types"
	"github.com/aws/smithy-go"

	"github.com/mpmeter/mpmeter/mpmetertest"
	"github.com/mpmeter/mpmeter/seed"
	"github.com/mpmeter/mpmeter/server"
)

const token = "test-admin-token"

func newServer(t *testing.T, opts ...mpmetertest.Option) *mpmetertest.Server {
	t.Helper()
	return mpmetertest.New(t, append([]mpmetertest.Option{mpmetertest.WithConfig(func(c *server.Config) { c.AdminToken = token })}, opts...)...)
}

// call sends one admin request with tok (none when empty) and decodes the
// JSON answer into out (when non-nil); it returns the status and the body.
func call(t *testing.T, base, tok, method, path string, body any, out any) (int, []byte) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		switch b := body.(type) {
		case string:
			rd = strings.NewReader(b)
		default:
			j, err := json.Marshal(b)
			if err != nil {
				t.Fatal(err)
			}
			rd = bytes.NewReader(j)
		}
	}
	req, err := http.NewRequest(method, base+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if out != nil && resp.StatusCode < 300 {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: %v in %s", method, path, err, b)
		}
	}
	return resp.StatusCode, b
}

// must is call that insists on status want.
func must(t *testing.T, srv *mpmetertest.Server, want int, method, path string, body, out any) []byte {
	t.Helper()
	got, b := call(t, srv.URL, token, method, path, body, out)
	if got != want {
		t.Fatalf("%s %s: %d %s, want %d", method, path, got, b, want)
	}
	return b
}

// wantError checks an error answer: status and exactly {code, message}.
func wantError(t *testing.T, status int, body []byte, wantStatus int, wantCode string) {
	t.Helper()
	if status != wantStatus {
		t.Errorf("status %d (%s), want %d", status, body, wantStatus)
		return
	}
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatalf("error body is not JSON: %s", body)
	}
	if len(m) != 2 || m["code"] != wantCode || m["message"] == "" {
		t.Errorf("error body %s, want exactly {code: %q, message}", body, wantCode)
	}
}

func TestNoTokenConfiguredIs404(t *testing.T) {
	srv := mpmetertest.New(t)
	for _, p := range []string{"/admin/v1/accounts", "/admin/v1/openapi.json", "/admin/", "/admin/v2/x"} {
		for _, tok := range []string{"", "anything"} {
			st, b := call(t, srv.URL, tok, http.MethodGet, p, nil, nil)
			wantError(t, st, b, http.StatusNotFound, "not_found")
		}
	}
	st, b := call(t, srv.URL, "", http.MethodPost, "/admin/v1/accounts", `{"id":"999999999999"}`, nil)
	wantError(t, st, b, http.StatusNotFound, "not_found")
}

func TestAuthentication(t *testing.T) {
	srv := newServer(t)
	for _, tok := range []string{"", "wrong", token + "x", token[:len(token)-1]} {
		st, b := call(t, srv.URL, tok, http.MethodGet, "/admin/v1/accounts", nil, nil)
		wantError(t, st, b, http.StatusUnauthorized, "unauthorized")
	}
	// Not "Bearer": refused too.
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/admin/v1/accounts", nil)
	req.Header.Set("Authorization", "Basic "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("WWW-Authenticate") == "" {
		t.Errorf("Basic auth: %d, WWW-Authenticate %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
	var list struct{ Items []map[string]any }
	must(t, srv, http.StatusOK, http.MethodGet, "/admin/v1/accounts", nil, &list)
	if len(list.Items) == 0 {
		t.Error("no demo accounts listed")
	}
}

type product struct {
	Code            string `json:"code"`
	SellerAccountID string `json:"seller_account_id"`
	Type            string `json:"type"`
	Dimensions      []struct {
		Name, Description, Unit string
		PricePerUnit            string `json:"price_per_unit"`
	} `json:"dimensions"`
	Version int64 `json:"version"`
}

type subscription struct {
	AgreementID        string     `json:"agreement_id"`
	AccountID          string     `json:"account_id"`
	CustomerIdentifier string     `json:"customer_identifier"`
	LicenseArn         string     `json:"license_arn"`
	OfferID            string     `json:"offer_id"`
	FreeTrial          bool       `json:"free_trial"`
	Status             string     `json:"status"`
	EndTime            *time.Time `json:"end_time"`
	Version            int64      `json:"version"`
}

type issued struct {
	ID        string    `json:"id"`
	Token     string    `json:"token"`
	ExpiresAt time.Time `json:"expires_at"`
}

type newKey struct {
	ID     string `json:"id"`
	Secret string `json:"secret_access_key"`
}

// The walkthrough: a product, a buyer, a subscription, a token, and
// ResolveCustomer through aws-sdk-go-v2 answers the subscription.
func TestCreateSubscribeIssueResolve(t *testing.T) {
	srv := newServer(t)
	must(t, srv, http.StatusCreated, http.MethodPost, "/admin/v1/accounts", map[string]any{"id": "210987654321", "name": "New Buyer"}, nil)
	var p product
	must(t, srv, http.StatusCreated, http.MethodPost, "/admin/v1/products", map[string]any{
		"code": "newprod1", "seller_account_id": mpmetertest.SellerAccount, "type": "saas",
		"dimensions": []map[string]any{{"name": "seats", "unit": "Users", "price_per_unit": "0.05", "description": "Seats in use"}, {"name": "gigabytes"}},
	}, &p)
	if p.Version != 1 || len(p.Dimensions) != 2 || p.Dimensions[0].PricePerUnit != "0.05" || p.Dimensions[0].Unit != "Users" {
		t.Fatalf("created product %+v", p)
	}
	var sub subscription
	must(t, srv, http.StatusCreated, http.MethodPost, "/admin/v1/subscriptions", map[string]any{
		"account_id": "210987654321", "product_code": "newprod1", "offer_id": "offer-abc123", "free_trial": true,
	}, &sub)
	if !strings.HasPrefix(sub.AgreementID, "agmt-") || sub.CustomerIdentifier == "" || sub.Status != "active" || !sub.FreeTrial || sub.OfferID != "offer-abc123" {
		t.Fatalf("created subscription %+v", sub)
	}
	var tok issued
	must(t, srv, http.StatusCreated, http.MethodPost, "/admin/v1/registration-tokens", map[string]any{"agreement_id": sub.AgreementID, "expires_in": "1h"}, &tok)
	if tok.Token == "" || !strings.HasPrefix(tok.ID, "rt-") {
		t.Fatalf("issued %+v", tok)
	}
	// The value is never shown again.
	_, b := call(t, srv.URL, token, http.MethodGet, "/admin/v1/registration-tokens/"+tok.ID, nil, nil)
	if strings.Contains(string(b), tok.Token) {
		t.Errorf("GET shows the token value: %s", b)
	}

	client := marketplacemetering.NewFromConfig(srv.AWSConfig(mpmetertest.SellerKey, mpmetertest.SellerSecret))
	out, err := client.ResolveCustomer(t.Context(), &marketplacemetering.ResolveCustomerInput{RegistrationToken: aws.String(tok.Token)})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(out.CustomerIdentifier) != sub.CustomerIdentifier || aws.ToString(out.ProductCode) != "newprod1" ||
		aws.ToString(out.CustomerAWSAccountId) != "210987654321" || aws.ToString(out.LicenseArn) != sub.LicenseArn {
		t.Errorf("ResolveCustomer = %+v, want the subscription %+v", out, sub)
	}
	// And the seller meters against the new dimension.
	bout, err := client.BatchMeterUsage(t.Context(), &marketplacemetering.BatchMeterUsageInput{ProductCode: aws.String("newprod1"),
		UsageRecords: []mmtypes.UsageRecord{{CustomerIdentifier: aws.String(sub.CustomerIdentifier), Dimension: aws.String("seats"), Quantity: aws.Int32(3), Timestamp: aws.Time(time.Now())}}})
	if err != nil || len(bout.Results) != 1 || bout.Results[0].Status != mmtypes.UsageRecordResultStatusSuccess {
		t.Fatalf("BatchMeterUsage = %+v, %v", bout, err)
	}

	// Cancel: the next usage is refused (CustomerNotSubscribed); reactivate.
	var cancelled subscription
	must(t, srv, http.StatusOK, http.MethodPost, "/admin/v1/subscriptions/"+sub.AgreementID+"/cancel", nil, &cancelled)
	if cancelled.Status != "cancelled" || cancelled.EndTime == nil || cancelled.Version != sub.Version+1 {
		t.Errorf("cancelled %+v", cancelled)
	}
	// (once the final metering hour is over).
	srv.Clock.Advance(time.Hour) // mpmeter.FinalMeteringWindow
	bout, err = client.BatchMeterUsage(t.Context(), &marketplacemetering.BatchMeterUsageInput{ProductCode: aws.String("newprod1"),
		UsageRecords: []mmtypes.UsageRecord{{CustomerIdentifier: aws.String(sub.CustomerIdentifier), Dimension: aws.String("seats"), Quantity: aws.Int32(1), Timestamp: aws.Time(srv.Clock.Now())}}})
	if err != nil || len(bout.Results) != 1 || bout.Results[0].Status != mmtypes.UsageRecordResultStatusCustomerNotSubscribed {
		t.Errorf("after cancel, BatchMeterUsage = %+v, %v; want CustomerNotSubscribed", bout, err)
	}
	st, b := call(t, srv.URL, token, http.MethodPost, "/admin/v1/subscriptions/"+sub.AgreementID+"/cancel", map[string]any{"version": sub.Version}, nil)
	wantError(t, st, b, http.StatusConflict, "conflict") // a stale version
	var again subscription
	must(t, srv, http.StatusOK, http.MethodPost, "/admin/v1/subscriptions/"+sub.AgreementID+"/reactivate", map[string]any{"version": cancelled.Version}, &again)
	if again.Status != "active" || again.EndTime != nil {
		t.Errorf("reactivated %+v", again)
	}
	// The second subscription of the same buyer to the same product: 409.
	st, b = call(t, srv.URL, token, http.MethodPost, "/admin/v1/subscriptions", map[string]any{"account_id": "210987654321", "product_code": "newprod1"}, nil)
	wantError(t, st, b, http.StatusConflict, "already_exists")
}

// A revoked key fails its next signed call; a key created through the API
// works at once.
func TestRevokeAccessKey(t *testing.T) {
	srv := newServer(t)
	var k newKey
	must(t, srv, http.StatusCreated, http.MethodPost, "/admin/v1/access-keys", map[string]any{"account_id": mpmetertest.SellerAccount}, &k)
	if !strings.HasPrefix(k.ID, "AKIA") || len(k.ID) != 20 || len(k.Secret) != 40 {
		t.Fatalf("created key %+v", k)
	}
	_, b := call(t, srv.URL, token, http.MethodGet, "/admin/v1/access-keys/"+k.ID, nil, nil)
	if strings.Contains(string(b), k.Secret) {
		t.Errorf("GET shows the secret: %s", b)
	}
	client := marketplacemetering.NewFromConfig(srv.AWSConfig(k.ID, k.Secret), func(o *marketplacemetering.Options) { o.RetryMaxAttempts = 1 })
	if _, err := client.ResolveCustomer(t.Context(), &marketplacemetering.ResolveCustomerInput{RegistrationToken: aws.String(mpmetertest.Token)}); err != nil {
		t.Fatalf("the new key: %v", err)
	}
	var revoked struct {
		RevokedAt *time.Time `json:"revoked_at"`
	}
	must(t, srv, http.StatusOK, http.MethodPost, "/admin/v1/access-keys/"+k.ID+"/revoke", nil, &revoked)
	if revoked.RevokedAt == nil {
		t.Fatal("no revoked_at")
	}
	_, err := client.ResolveCustomer(t.Context(), &marketplacemetering.ResolveCustomerInput{RegistrationToken: aws.String(mpmetertest.Token)})
	var ae smithy.APIError
	if !errors.As(err, &ae) || ae.ErrorCode() != "UnrecognizedClientException" {
		t.Fatalf("after revoke: %v, want UnrecognizedClientException", err)
	}
	// Revoking again is fine and changes nothing.
	must(t, srv, http.StatusOK, http.MethodPost, "/admin/v1/access-keys/"+k.ID+"/revoke", nil, nil)
	st, b := call(t, srv.URL, token, http.MethodPost, "/admin/v1/access-keys/AKIANOSUCHKEY0000001/revoke", nil, nil)
	wantError(t, st, b, http.StatusNotFound, "not_found")
}

// Concurrent updates naming the same version: exactly one wins, the
// others get 409, and the winner's write is what is stored.
func TestConcurrentUpdatesConflict(t *testing.T) {
	srv := newServer(t)
	var acc struct {
		Name    string `json:"name"`
		Version int64  `json:"version"`
	}
	must(t, srv, http.StatusOK, http.MethodGet, "/admin/v1/accounts/"+mpmetertest.BuyerAccount, nil, &acc)
	const n = 8
	statuses := make([]int, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			statuses[i], _ = call(t, srv.URL, token, http.MethodPatch, "/admin/v1/accounts/"+mpmetertest.BuyerAccount,
				map[string]any{"name": fmt.Sprintf("writer %d", i), "version": acc.Version}, nil)
		})
	}
	wg.Wait()
	winner := -1
	for i, st := range statuses {
		switch st {
		case http.StatusOK:
			if winner >= 0 {
				t.Errorf("writers %d and %d both won", winner, i)
			}
			winner = i
		case http.StatusConflict:
		default:
			t.Errorf("writer %d: status %d", i, st)
		}
	}
	if winner < 0 {
		t.Fatalf("no writer won: %v", statuses)
	}
	var now struct {
		Name    string `json:"name"`
		Version int64  `json:"version"`
	}
	must(t, srv, http.StatusOK, http.MethodGet, "/admin/v1/accounts/"+mpmetertest.BuyerAccount, nil, &now)
	if now.Name != fmt.Sprintf("writer %d", winner) || now.Version != acc.Version+1 {
		t.Errorf("stored %+v, want writer %d's at version %d", now, winner, acc.Version+1)
	}

	// Concurrent revokes without a version: all succeed, one revocation.
	var k newKey
	must(t, srv, http.StatusCreated, http.MethodPost, "/admin/v1/access-keys", map[string]any{"account_id": mpmetertest.SellerAccount}, &k)
	for range 4 {
		wg.Go(func() {
			if st, b := call(t, srv.URL, token, http.MethodPost, "/admin/v1/access-keys/"+k.ID+"/revoke", nil, nil); st != http.StatusOK {
				t.Errorf("concurrent revoke: %d %s", st, b)
			}
		})
	}
	wg.Wait()
}

// Pages are in key order, each item once, and a row added meanwhile does
// not shift the pages after the cursor.
func TestPaginationStable(t *testing.T) {
	srv := newServer(t, mpmetertest.WithSeed(&seed.File{}))
	var ids []string
	for i := range 7 {
		id := fmt.Sprintf("1000000000%02d", i*2)
		ids = append(ids, id)
		must(t, srv, http.StatusCreated, http.MethodPost, "/admin/v1/accounts", map[string]any{"id": id}, nil)
	}
	type page struct {
		Items []struct {
			ID string `json:"id"`
		} `json:"items"`
		NextCursor string `json:"next_cursor"`
	}
	var seen []string
	cursor := ""
	for round := 0; ; round++ {
		var p page
		must(t, srv, http.StatusOK, http.MethodGet, "/admin/v1/accounts?limit=3&cursor="+cursor, nil, &p)
		for _, it := range p.Items {
			seen = append(seen, it.ID)
		}
		if round == 0 {
			// Added behind the cursor: never seen; ahead: seen once.
			must(t, srv, http.StatusCreated, http.MethodPost, "/admin/v1/accounts", map[string]any{"id": "100000000001"}, nil)
			must(t, srv, http.StatusCreated, http.MethodPost, "/admin/v1/accounts", map[string]any{"id": "100000000009"}, nil)
		}
		if p.NextCursor == "" {
			break
		}
		cursor = p.NextCursor
	}
	want := append(slices.Clone(ids[:5]), "100000000009", ids[5], ids[6])
	want = append(want[:0:0], want...)
	slices.Sort(want)
	if !slices.Equal(seen, want) {
		t.Errorf("paged %v, want %v", seen, want)
	}
	st, b := call(t, srv.URL, token, http.MethodGet, "/admin/v1/accounts?cursor=bogus", nil, nil)
	wantError(t, st, b, http.StatusBadRequest, "validation_failed")
	st, b = call(t, srv.URL, token, http.MethodGet, "/admin/v1/accounts?limit=0", nil, nil)
	wantError(t, st, b, http.StatusBadRequest, "validation_failed")
}

// Bad requests get 400 with {code, message} and change nothing.
func TestValidation(t *testing.T) {
	srv := newServer(t)
	for _, tc := range []struct {
		path string
		body any
		want string
	}{
		{"/admin/v1/accounts", map[string]any{"id": "12345"}, "12-digit"},
		{"/admin/v1/accounts", map[string]any{"id": "123456789999", "colour": "red"}, "colour"},
		{"/admin/v1/accounts", `{"id": `, ""},
		{"/admin/v1/products", map[string]any{"code": "p x", "seller_account_id": mpmetertest.SellerAccount, "type": "saas", "dimensions": []map[string]any{{"name": "a"}}}, "product code"},
		{"/admin/v1/products", map[string]any{"code": "px", "seller_account_id": mpmetertest.SellerAccount, "type": "saas", "dimensions": []map[string]any{{"name": "a", "price_per_unit": "1,5"}}}, "price"},
		{"/admin/v1/products", map[string]any{"code": "px", "seller_account_id": mpmetertest.SellerAccount, "type": "ami", "concurrent_agreements": true, "dimensions": []map[string]any{{"name": "a"}}}, "concurrent_agreements"},
		{"/admin/v1/products", map[string]any{"code": "px", "seller_account_id": "999999999999", "type": "saas", "dimensions": []map[string]any{{"name": "a"}}}, "does not exist"},
		{"/admin/v1/products", map[string]any{"code": "px", "seller_account_id": mpmetertest.SellerAccount, "type": "saas", "dimensions": []map[string]any{{"name": "a"}, {"name": "a"}}}, "twice"},
		{"/admin/v1/access-keys", map[string]any{"account_id": mpmetertest.BuyerAccount, "workload": map[string]any{"id": "i-1", "platform": "lambda", "region": "us-east-1"}}, "platform"},
		{"/admin/v1/subscriptions", map[string]any{"account_id": mpmetertest.BuyerAccount, "product_code": "nope"}, "does not exist"},
		{"/admin/v1/subscriptions", map[string]any{"account_id": mpmetertest.BuyerAccount, "product_code": mpmetertest.CAProduct, "customer_identifier": "c-1"}, "concurrent agreements"},
		{"/admin/v1/registration-tokens", map[string]any{"agreement_id": "agmt-nosuch", "expires_in": "1h"}, "does not exist"},
		{"/admin/v1/registration-tokens", map[string]any{"agreement_id": "agmt-x", "expires_in": "soon"}, "duration"},
	} {
		st, b := call(t, srv.URL, token, http.MethodPost, tc.path, tc.body, nil)
		wantError(t, st, b, http.StatusBadRequest, "validation_failed")
		if !strings.Contains(string(b), tc.want) {
			t.Errorf("POST %s %v: %s, want it to mention %q", tc.path, tc.body, b, tc.want)
		}
	}
	for _, p := range []string{"/admin/v1/products/px", "/admin/v1/accounts/123456789999", "/admin/v1/accounts/12345"} {
		st, b := call(t, srv.URL, token, http.MethodGet, p, nil, nil)
		wantError(t, st, b, http.StatusNotFound, "not_found")
	}
	st, b := call(t, srv.URL, token, http.MethodPost, "/admin/v1/accounts", map[string]any{"id": mpmetertest.SellerAccount}, nil)
	wantError(t, st, b, http.StatusConflict, "already_exists")
	st, b = call(t, srv.URL, token, http.MethodDelete, "/admin/v1/accounts/"+mpmetertest.SellerAccount, nil, nil)
	wantError(t, st, b, http.StatusMethodNotAllowed, "method_not_allowed")
	st, b = call(t, srv.URL, token, http.MethodGet, "/admin/v1/nothing-here", nil, nil)
	wantError(t, st, b, http.StatusNotFound, "not_found")
	// A product update with a bad dimension changes nothing.
	var p product
	must(t, srv, http.StatusOK, http.MethodGet, "/admin/v1/products/"+mpmetertest.SaaSProduct, nil, &p)
	st, b = call(t, srv.URL, token, http.MethodPatch, "/admin/v1/products/"+mpmetertest.SaaSProduct,
		map[string]any{"dimensions": []map[string]any{{"name": ""}}, "version": p.Version}, nil)
	wantError(t, st, b, http.StatusBadRequest, "validation_failed")
	var after product
	must(t, srv, http.StatusOK, http.MethodGet, "/admin/v1/products/"+mpmetertest.SaaSProduct, nil, &after)
	if after.Version != p.Version || len(after.Dimensions) != len(p.Dimensions) {
		t.Errorf("a failed update changed the product: %+v, was %+v", after, p)
	}
}

func TestClockAndSigningKeys(t *testing.T) {
	srv := newServer(t, mpmetertest.WithConfig(func(c *server.Config) { c.AdminToken, c.Clock = token, nil })) // the database's virtual clock
	var c struct {
		Now     time.Time `json:"now"`
		Offset  string    `json:"offset"`
		Virtual bool      `json:"virtual"`
	}
	must(t, srv, http.StatusOK, http.MethodGet, "/admin/v1/clock", nil, &c)
	if c.Virtual || c.Offset != "0s" {
		t.Errorf("clock %+v", c)
	}
	at := time.Date(2026, 1, 31, 23, 30, 0, 0, time.UTC)
	must(t, srv, http.StatusOK, http.MethodPut, "/admin/v1/clock", map[string]any{"now": at}, &c)
	if !c.Virtual || c.Now.Sub(at).Abs() > time.Minute {
		t.Errorf("after set: %+v", c)
	}
	must(t, srv, http.StatusOK, http.MethodPost, "/admin/v1/clock/advance", map[string]any{"by": "5h"}, &c)
	if c.Now.Sub(at.Add(5*time.Hour)).Abs() > time.Minute {
		t.Errorf("after advance: %+v", c)
	}
	st, b := call(t, srv.URL, token, http.MethodPost, "/admin/v1/clock/advance", map[string]any{"by": "five hours"}, nil)
	wantError(t, st, b, http.StatusBadRequest, "validation_failed")
	must(t, srv, http.StatusOK, http.MethodPost, "/admin/v1/clock/reset", nil, &c)
	if c.Virtual {
		t.Errorf("after reset: %+v", c)
	}

	type key struct {
		Version int    `json:"version"`
		Current bool   `json:"current"`
		PEM     string `json:"public_key_pem"`
	}
	var list struct{ Items []key }
	must(t, srv, http.StatusOK, http.MethodGet, "/admin/v1/signing-keys", nil, &list)
	if len(list.Items) != 1 || !list.Items[0].Current || !strings.Contains(list.Items[0].PEM, "PUBLIC KEY") {
		t.Fatalf("signing keys %+v", list)
	}
	var rotated key
	must(t, srv, http.StatusOK, http.MethodPost, "/admin/v1/signing-keys/rotate", nil, &rotated)
	if rotated.Version != 2 || !rotated.Current {
		t.Errorf("rotated %+v", rotated)
	}
	// RegisterUsage signs with version 2 now that it exists.
	ecs := marketplacemetering.NewFromConfig(srv.AWSConfig(mpmetertest.ECSKey, mpmetertest.ECSSecret))
	if _, err := ecs.RegisterUsage(t.Context(), &marketplacemetering.RegisterUsageInput{ProductCode: aws.String(mpmetertest.ContainerProduct), PublicKeyVersion: aws.Int32(2)}); err != nil {
		t.Errorf("RegisterUsage with the rotated version: %v", err)
	}

	// The in-process test clock is not the admin API's to move.
	fixed := newServer(t)
	st, b = call(t, fixed.URL, token, http.MethodPost, "/admin/v1/clock/reset", nil, nil)
	wantError(t, st, b, http.StatusConflict, "clock_not_settable")
}
