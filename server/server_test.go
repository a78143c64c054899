package server_test

import (
	"context"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mpmeter/mpmeter"
	"github.com/mpmeter/mpmeter/seed"
	"github.com/mpmeter/mpmeter/server"
	"github.com/mpmeter/mpmeter/sqlstore"
)

// newServer assembles a server on a fresh SQLite file with the demo seed.
func newServer(t *testing.T) *server.Server {
	t.Helper()
	ctx := context.Background()
	st, err := sqlstore.Open(ctx, filepath.Join(t.TempDir(), "mpmeter.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	now := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	srv, err := server.New(ctx, server.Config{
		Store: st,
		Seed:  seed.Demo(),
		Clock: mpmeter.ClockFunc(func() time.Time { return now }),
	})
	if err != nil {
		t.Fatal(err)
	}
	return srv
}

func get(t *testing.T, h http.Handler, method, path string) *http.Response {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, path, nil))
	return rec.Result()
}

func TestNewNeedsAStore(t *testing.T) {
	if _, err := server.New(context.Background(), server.Config{}); err == nil {
		t.Fatal("New without a store succeeded")
	}
}

func TestSeedApplied(t *testing.T) {
	srv := newServer(t)
	f := seed.Demo()
	sum := srv.SeedSummary
	if sum.Accounts != len(f.Accounts) || sum.Products != len(f.Products) || sum.Subscriptions != len(f.Subscriptions) || sum.Tokens != len(f.RegistrationTokens) {
		t.Errorf("SeedSummary = %+v; the demo seed has %d accounts, %d products, %d subscriptions, %d tokens",
			sum, len(f.Accounts), len(f.Products), len(f.Subscriptions), len(f.RegistrationTokens))
	}
	if _, err := srv.Store.Product(context.Background(), "exampleprod1"); err != nil {
		t.Errorf("a seeded product: %v", err)
	}
}

func TestHealthz(t *testing.T) {
	if res := get(t, newServer(t).Handler, http.MethodGet, "/healthz"); res.StatusCode != http.StatusOK {
		t.Errorf("GET /healthz: %s", res.Status)
	}
}

// The public key a seller's container verifies RegisterUsage tokens with.
func TestPublicKey(t *testing.T) {
	h := newServer(t).Handler
	for _, path := range []string{"/keys/public/1", "/keys/public/1.pem"} {
		res := get(t, h, http.MethodGet, path)
		body, _ := io.ReadAll(res.Body)
		if res.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %s %s", path, res.Status, body)
		}
		block, _ := pem.Decode(body)
		if block == nil {
			t.Fatalf("GET %s: no PEM in %q", path, body)
		}
		pub, err := x509.ParsePKIXPublicKey(block.Bytes)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		if k, ok := pub.(*rsa.PublicKey); !ok || k.N.BitLen() != 2048 {
			t.Errorf("GET %s: %T, want an RSA-2048 key", path, pub)
		}
	}
	for path, want := range map[string]int{
		"/keys/public/0":     http.StatusBadRequest,
		"/keys/public/-1":    http.StatusBadRequest,
		"/keys/public/one":   http.StatusBadRequest,
		"/keys/public/99":    http.StatusNotFound,
		"/keys/public/2.pem": http.StatusNotFound,
	} {
		if res := get(t, h, http.MethodGet, path); res.StatusCode != want {
			t.Errorf("GET %s: %s, want %d", path, res.Status, want)
		}
	}
}

// Everything that is not one of the server's own paths is the API, which
// answers in AWS's envelope with a request id.
func TestAPIIsTheRest(t *testing.T) {
	res := get(t, newServer(t).Handler, http.MethodPost, "/")
	if res.StatusCode != http.StatusForbidden {
		t.Fatalf("unsigned POST /: %s, want 403", res.Status)
	}
	if res.Header.Get("x-amzn-RequestId") == "" {
		t.Error("no x-amzn-RequestId")
	}
	var envelope struct {
		Type    string `json:"__type"`
		Message string `json:"message"`
	}
	if err := json.NewDecoder(res.Body).Decode(&envelope); err != nil || envelope.Type != string(mpmeter.CodeMissingAuthentication) {
		t.Errorf("envelope %+v (%v), want %s", envelope, err, mpmeter.CodeMissingAuthentication)
	}
	if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/x-amz-json-1.1") {
		t.Errorf("Content-Type %q", ct)
	}
}
