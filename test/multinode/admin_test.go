package multinode

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"testing"
	"time"

	awsv2 "github.com/aws/aws-sdk-go-v2/aws"
	mmv2 "github.com/aws/aws-sdk-go-v2/service/marketplacemetering"
	"github.com/aws/smithy-go"

	"github.com/mpmeter/mpmeter/mpmetertest"
)

const adminToken = "multinode-admin-token"

func adminCall(t *testing.T, base, method, path string, body any, out any) int {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, base+"/admin/v1"+path, rd)
	req.Header.Set("Authorization", "Bearer "+adminToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatal(err)
		}
	}
	return resp.StatusCode
}

// Admin changes on one node are seen by another on the same database: a
// key created on A signs on B; revoked on A, its very next call on B (which
// had it cached) fails; a product, subscription and token made on A resolve
// on B.
func TestAdminAcrossNodes(t *testing.T) {
	db := freshDatabase(t)
	nodes := startNodes(t, 2, db.String(), "--admin-token", adminToken)
	a, b := nodes[0], nodes[1]

	adminCall(t, a.URL, http.MethodPost, "/accounts", map[string]any{"id": "210987654321"}, nil)
	adminCall(t, a.URL, http.MethodPost, "/products", map[string]any{"code": "mnprod1", "seller_account_id": mpmetertest.SellerAccount,
		"type": "saas", "dimensions": []map[string]any{{"name": "seats"}}}, nil)
	var sub struct {
		AgreementID        string `json:"agreement_id"`
		CustomerIdentifier string `json:"customer_identifier"`
	}
	adminCall(t, a.URL, http.MethodPost, "/subscriptions", map[string]any{"account_id": "210987654321", "product_code": "mnprod1"}, &sub)
	var tok struct {
		Token string `json:"token"`
	}
	adminCall(t, a.URL, http.MethodPost, "/registration-tokens", map[string]any{"agreement_id": sub.AgreementID}, &tok)
	var key struct {
		ID     string `json:"id"`
		Secret string `json:"secret_access_key"`
	}
	adminCall(t, a.URL, http.MethodPost, "/access-keys", map[string]any{"account_id": mpmetertest.SellerAccount}, &key)

	clientB := mmv2.NewFromConfig(mpmetertest.AWSConfig(b.URL, mpmetertest.Region, key.ID, key.Secret), func(o *mmv2.Options) { o.RetryMaxAttempts = 1 })
	resolve := func() (*mmv2.ResolveCustomerOutput, error) {
		return clientB.ResolveCustomer(t.Context(), &mmv2.ResolveCustomerInput{RegistrationToken: awsv2.String(tok.Token)})
	}
	out, err := resolve() // also puts the key in B's cache
	if err != nil {
		t.Fatalf("node B, a key and a token made on node A: %v", err)
	}
	if awsv2.ToString(out.CustomerIdentifier) != sub.CustomerIdentifier {
		t.Errorf("node B resolved %+v, want %s", out, sub.CustomerIdentifier)
	}
	if _, err := resolve(); err != nil { // served from B's cache
		t.Fatal(err)
	}

	start := time.Now()
	adminCall(t, a.URL, http.MethodPost, "/access-keys/"+key.ID+"/revoke", nil, nil)
	t.Logf("revoke answered after %v (it waits out the nodes' cache TTL)", time.Since(start).Round(time.Millisecond))
	_, err = resolve() // at once, no waiting
	var ae smithy.APIError
	if !errors.As(err, &ae) || ae.ErrorCode() != "UnrecognizedClientException" {
		t.Fatalf("node B right after the revoke on node A: %v, want UnrecognizedClientException", err)
	}
	clientA := mmv2.NewFromConfig(mpmetertest.AWSConfig(a.URL, mpmetertest.Region, key.ID, key.Secret), func(o *mmv2.Options) { o.RetryMaxAttempts = 1 })
	_, err = clientA.ResolveCustomer(t.Context(), &mmv2.ResolveCustomerInput{RegistrationToken: awsv2.String(tok.Token)})
	if !errors.As(err, &ae) || ae.ErrorCode() != "UnrecognizedClientException" {
		t.Fatalf("node A after its revoke: %v, want UnrecognizedClientException", err)
	}
}
