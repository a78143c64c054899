package adminclient_test

import (
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/mpmeter/mpmeter/admin"
	"github.com/mpmeter/mpmeter/internal/adminclient"
	"github.com/mpmeter/mpmeter/mpmetertest"
	"github.com/mpmeter/mpmeter/server"
)

const token = "client-test-token"

func newClient(t *testing.T) (*adminclient.Client, *mpmetertest.Server) {
	srv := mpmetertest.New(t, mpmetertest.WithConfig(func(c *server.Config) { c.AdminToken = token }))
	c, err := adminclient.New(srv.URL, token, nil)
	if err != nil {
		t.Fatal(err)
	}
	return c, srv
}

// List follows next_cursor page by page: every item once, in order.
func TestListFollowsEveryPage(t *testing.T) {
	c, _ := newClient(t)
	all, err := c.Accounts(t.Context(), adminclient.ListOptions{})
	if err != nil || len(all) < 4 {
		t.Fatalf("accounts: %v %v", all, err)
	}
	paged, err := c.Accounts(t.Context(), adminclient.ListOptions{PageSize: 1})
	if err != nil || !slices.Equal(paged, all) {
		t.Fatalf("one per page gave %v (%v), want %v", paged, err, all)
	}
	limited, err := c.Accounts(t.Context(), adminclient.ListOptions{PageSize: 2, Limit: 3})
	if err != nil || !slices.Equal(limited, all[:3]) {
		t.Fatalf("limit 3 over pages of 2 gave %v (%v)", limited, err)
	}
}

// Failures are typed: the API's {code, message} with its status, or no
// answer at all.
func TestErrors(t *testing.T) {
	c, srv := newClient(t)
	_, err := c.Account(t.Context(), "999999999999")
	var e *adminclient.Error
	if !errors.As(err, &e) || e.Status != http.StatusNotFound || e.Code != admin.CodeNotFound || !strings.Contains(e.Message, "999999999999") {
		t.Fatalf("missing account: %#v", err)
	}
	_, err = c.CreateAccount(t.Context(), mpmetertest.SellerAccount, "again")
	if adminclient.StatusOf(err) != http.StatusConflict || !errors.As(err, &e) || e.Code != admin.CodeAlreadyExists {
		t.Fatalf("existing account: %#v", err)
	}
	_, err = c.CreateAccount(t.Context(), "12", "")
	if adminclient.StatusOf(err) != http.StatusBadRequest {
		t.Fatalf("a bad account id: %#v", err)
	}
	wrong, _ := adminclient.New(srv.URL, "wrong", nil)
	if _, err := wrong.Accounts(t.Context(), adminclient.ListOptions{}); adminclient.StatusOf(err) != http.StatusUnauthorized {
		t.Fatalf("a wrong token: %#v", err)
	}
	down, _ := adminclient.New("http://127.0.0.1:1", token, nil)
	var unreachable *adminclient.UnreachableError
	if _, err := down.Accounts(t.Context(), adminclient.ListOptions{}); !errors.As(err, &unreachable) || adminclient.StatusOf(err) != 0 {
		t.Fatalf("no server: %#v", err)
	}
	// Something that answers, but not the admin API: its body is the message.
	notAPI, _ := adminclient.New(srv.URL+"/elsewhere", token, nil)
	if _, err := notAPI.Accounts(t.Context(), adminclient.ListOptions{}); !errors.As(err, &unreachable) || !strings.Contains(err.Error(), "UnknownOperationException") {
		t.Fatalf("not the admin API: %#v", err)
	}
	for _, bad := range []string{"", "127.0.0.1:8080", "ftp://x"} {
		if _, err := adminclient.New(bad, "", nil); err == nil {
			t.Errorf("New(%q) succeeded", bad)
		}
	}
}

// The typed calls round-trip the server's shapes.
func TestResources(t *testing.T) {
	c, _ := newClient(t)
	ctx := t.Context()
	if _, err := c.CreateAccount(ctx, "210987654321", "New Buyer"); err != nil {
		t.Fatal(err)
	}
	p, err := c.CreateProduct(ctx, adminclient.NewProduct{Code: "clientprod1", SellerAccountID: mpmetertest.SellerAccount, Type: "saas",
		Dimensions: []admin.Dimension{{Name: "seats", Unit: "Users", PricePerUnit: "0.05"}}})
	if err != nil || p.Version != 1 || p.Dimensions[0].PricePerUnit != "0.05" {
		t.Fatalf("product: %+v %v", p, err)
	}
	if _, err := c.SetProductDimensions(ctx, p.Code, []admin.Dimension{{Name: "seats"}}, 7); adminclient.StatusOf(err) != http.StatusConflict {
		t.Fatalf("a stale version: %v", err)
	}
	s, err := c.CreateSubscription(ctx, adminclient.NewSubscription{AccountID: "210987654321", ProductCode: p.Code, OfferID: "offer-1"})
	if err != nil || s.Status != "active" || s.OfferID != "offer-1" {
		t.Fatalf("subscription: %+v %v", s, err)
	}
	s, err = c.ChangeSubscription(ctx, s.AgreementID, adminclient.Cancel, s.Version)
	if err != nil || s.Status != "cancelled" {
		t.Fatalf("cancel: %+v %v", s, err)
	}
	tok, err := c.IssueToken(ctx, adminclient.NewToken{AgreementID: s.AgreementID, ExpiresIn: "30m"})
	if err != nil || tok.Token == "" || tok.ExpiresAt.Sub(tok.CreatedAt).Minutes() != 30 {
		t.Fatalf("token: %+v %v", tok, err)
	}
	var seed strings.Builder
	if err := c.ExportSeed(ctx, &seed); err != nil || !strings.Contains(seed.String(), "clientprod1") {
		t.Fatalf("seed export: %v\n%s", err, seed.String())
	}
}
