package seed_test

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mpmeter/mpmeter"
	"github.com/mpmeter/mpmeter/seed"
)

// export → apply to a fresh database → export again gives the same file,
// and applying it changes nothing in the store it came from.
func TestExportRoundTrip(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	first := openStore(t, filepath.Join(t.TempDir(), "a.db"))
	if _, err := seed.Demo().Apply(ctx, first, now, time.Hour); err != nil {
		t.Fatal(err)
	}
	// What only the admin API makes: details, offers, a revoked key.
	p, err := first.Product(ctx, "exampleprod1")
	if err != nil {
		t.Fatal(err)
	}
	p.DimensionDetails = map[string]mpmeter.DimensionDetails{"users": {Description: "Active users", Unit: "Users", PricePerUnit: "0.05"}}
	if err := first.PutProduct(ctx, p); err != nil {
		t.Fatal(err)
	}
	k, err := first.AccessKey(ctx, "AKIAEXAMPLEBUYER0001")
	if err != nil {
		t.Fatal(err)
	}
	k.RevokedAt = now
	if err := first.PutAccessKey(ctx, k); err != nil {
		t.Fatal(err)
	}
	sub, err := first.Subscription(ctx, "arn:aws:license-manager::444455556666:license/l-0123456789abcdef")
	if err != nil {
		t.Fatal(err)
	}
	sub.OfferID, sub.FreeTrial = "offer-demo1", true
	if err := first.PutSubscription(ctx, sub); err != nil {
		t.Fatal(err)
	}

	exported, err := seed.Export(ctx, first)
	if err != nil {
		t.Fatal(err)
	}
	if err := exported.Validate(); err != nil {
		t.Fatalf("the export does not validate: %v", err)
	}
	out1, err := exported.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	parsed, err := seed.Parse(out1)
	if err != nil {
		t.Fatal(err)
	}
	second := openStore(t, filepath.Join(t.TempDir(), "b.db"))
	if _, err := parsed.Apply(ctx, second, now.Add(time.Hour), time.Hour); err != nil {
		t.Fatal(err)
	}
	again, err := seed.Export(ctx, second)
	if err != nil {
		t.Fatal(err)
	}
	out2, err := again.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out1, out2) {
		t.Fatalf("export → apply → export differs:\n--- first\n%s\n--- second\n%s", out1, out2)
	}
	for _, want := range []string{"revoked_at:", "offer_id: offer-demo1", "free_trial: true", `price: "0.05"`, "agreement_id: agmt-", "secret: seller-secret",
		// The demo contract's entitlements, each of its type.
		"dimension: users", "value: 10", "expires_at: 2030-01-01T00:00:00Z", "value: 2.5", "value: true", "value: gold"} {
		if !strings.Contains(string(out1), want) {
			t.Errorf("the export lacks %q", want)
		}
	}
	wantEnts, err := first.Entitlements(ctx, mpmeter.EntitlementFilter{ProductCode: "examplecontract1"})
	if err != nil {
		t.Fatal(err)
	}
	gotEnts, err := second.Entitlements(ctx, mpmeter.EntitlementFilter{ProductCode: "examplecontract1"})
	if err != nil {
		t.Fatal(err)
	}
	gotJSON, _ := json.Marshal(gotEnts)
	wantJSON, _ := json.Marshal(wantEnts)
	if len(wantEnts) < 4 || !bytes.Equal(gotJSON, wantJSON) {
		t.Errorf("entitlements not carried over:\n got %s\nwant %s", gotJSON, wantJSON)
	}
	if k, err := second.AccessKey(ctx, "AKIAEXAMPLEBUYER0001"); err != nil || !k.Revoked() {
		t.Errorf("revocation not carried over: %+v, %v", k, err)
	}
	// Applying the export to its source changes nothing there.
	before, err := seed.Export(ctx, first)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := parsed.Apply(ctx, first, now.Add(2*time.Hour), time.Hour); err != nil {
		t.Fatal(err)
	}
	after, err := seed.Export(ctx, first)
	if err != nil {
		t.Fatal(err)
	}
	b1, _ := before.Marshal()
	b2, _ := after.Marshal()
	if !bytes.Equal(b1, b2) {
		t.Errorf("applying the export to its source changed it")
	}
	if p2, _ := first.Product(ctx, "exampleprod1"); p2.Version != p.Version+1 {
		t.Errorf("product version %d after re-applying, want %d (unchanged)", p2.Version, p.Version+1)
	}
}
