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
	"github.com/mpmeter/mpmeter/mpmetertest"
	"github.com/mpmeter/mpmeter/notify"
	"github.com/mpmeter/mpmeter/seed"
	"github.com/mpmeter/mpmeter/sqlstore"
	"github.com/mpmeter/mpmeter/storetest"
)

// export → apply to a fresh database → export again gives the same file
// and the same state, and applying it changes nothing in the store it came
// from; on SQLite, and on PostgreSQL when mpmetertest.PostgresEnv is set.
func TestExportRoundTrip(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) {
		testExportRoundTrip(t, func(t *testing.T) *sqlstore.Store { return openStore(t, filepath.Join(t.TempDir(), "mpmeter.db")) })
	})
	t.Run("postgres", func(t *testing.T) {
		testExportRoundTrip(t, func(t *testing.T) *sqlstore.Store { return openStore(t, mpmetertest.PostgresDSN(t)) })
	})
}

// notifier is a Notifier on st that sends nothing (it is never started):
// what applying a seed's notification endpoints writes stays in the outbox.
func notifier(t *testing.T, st *sqlstore.Store, now time.Time) *notify.Notifier {
	t.Helper()
	n, err := notify.New(context.Background(), notify.Config{Store: st, Clock: mpmeter.ClockFunc(func() time.Time { return now })})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// configured reads st's marketplace and configuration as JSON, for
// comparing and printing.
func configured(t *testing.T, st mpmeter.Store) string {
	t.Helper()
	c, err := storetest.ReadConfigured(context.Background(), st)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.MarshalIndent(c, "", " ")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// sentConfirmations counts the SubscriptionConfirmations in st's outbox.
func sentConfirmations(t *testing.T, st *sqlstore.Store) int {
	t.Helper()
	ds, err := st.Deliveries(context.Background(), mpmeter.DeliveryFilter{Channel: mpmeter.ChannelSNS}, mpmeter.Page{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, d := range ds {
		if d.EventType == notify.TypeSubscriptionConfirmation {
			n++
		}
	}
	return n
}

func testExportRoundTrip(t *testing.T, open func(t *testing.T) *sqlstore.Store) {
	ctx := context.Background()
	now := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	first := open(t)
	if _, err := seed.Demo().Apply(ctx, first, now, time.Hour); err != nil {
		t.Fatal(err)
	}
	// What only the admin API makes: details, offers, a revoked key.
	p, err := first.Product(ctx, "exampleprod1")
	if err != nil {
		t.Fatal(err)
	}
	p.DimensionDetails = map[string]mpmeter.DimensionDetails{"users": {Description: "Active users", Unit: "Users", PricePerUnit: "0.05"}}
	p.FulfillmentURL = "https://seller.example.com/register"
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
	// The configuration a seller adds while the server runs: fault rules
	// (one partly spent, one spent), SNS subscriptions (one confirmed, one
	// pending) and an EventBridge target.
	for i, r := range []mpmeter.FaultRule{
		{ID: "slow-meter", Operation: mpmeter.OpMeterUsage, Kind: mpmeter.FaultLatency, Latency: 1500 * time.Millisecond, Rate: 0.25, ExpiresAt: now.Add(48 * time.Hour)},
		{ID: "throttle-batch", Operation: mpmeter.OpBatchMeterUsage, AccountID: "111122223333", ProductCode: "exampleprod1", Kind: mpmeter.FaultThrottling, Count: 3, Remaining: 3},
		{ID: "unprocessed", Kind: mpmeter.FaultUnprocessedRecords, Count: 1, Remaining: 1},
	} {
		r.CreatedAt = now.Add(time.Duration(i) * time.Second)
		if err := first.AddFaultRule(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := first.TakeFaultCount(ctx, "throttle-batch", 2); n != 2 || err != nil {
		t.Fatalf("TakeFaultCount: %d, %v", n, err)
	}
	if n, err := first.TakeFaultCount(ctx, "unprocessed", 1); n != 1 || err != nil {
		t.Fatalf("TakeFaultCount: %d, %v", n, err)
	}
	n1 := notifier(t, first, now)
	confirmed, err := n1.SubscribeEndpoint(ctx, "exampleprod1", mpmeter.TopicSubscription, "https", "https://seller.example.com/sns")
	if err != nil {
		t.Fatal(err)
	}
	if err := first.ConfirmSNSSubscription(ctx, confirmed.ARN, now.Add(1234*time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	if _, err := n1.SubscribeEndpoint(ctx, "exampleprod1", mpmeter.TopicEntitlement, "http", "http://127.0.0.1:9/sns"); err != nil {
		t.Fatal(err)
	}
	if _, err := n1.AddTarget(ctx, "111122223333", "http://127.0.0.1:9/events"); err != nil {
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
	second := open(t)
	if _, err := parsed.Apply(ctx, second, now.Add(time.Hour), time.Hour); err != nil {
		t.Fatal(err)
	}
	n2 := notifier(t, second, now.Add(time.Hour))
	if sum, err := parsed.ApplyNotifications(ctx, n2); err != nil || sum.SNSSubscriptions != 2 || sum.EventBridgeTargets != 1 {
		t.Fatalf("ApplyNotifications: %+v, %v", sum, err)
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
		"dimension: users", "value: 10", "expires_at: 2030-01-01T00:00:00Z", "value: 2.5", "value: true", "value: gold",
		"fulfillment_url: https://seller.example.com/register",
		"id: slow-meter", "latency: 1.5s", "rate: 0.25", "id: throttle-batch", "remaining: 1", "remaining: 0",
		"endpoint: https://seller.example.com/sns", "confirmed_at: 2026-03-04T05:06:08.234Z", "endpoint: http://127.0.0.1:9/events"} {
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
	// The same state, as the stores' read methods answer it (not only the
	// same text).
	if a, b := configured(t, first), configured(t, second); a != b {
		t.Errorf("the applied export holds another state:\n--- first\n%s\n--- second\n%s", a, b)
	}
	// Only the pending subscription was sent a SubscriptionConfirmation;
	// the confirmed one is confirmed already. Applying again sends none.
	if n := sentConfirmations(t, second); n != 1 {
		t.Errorf("%d SubscriptionConfirmations sent, want 1 (the pending subscription's)", n)
	}
	if _, err := parsed.ApplyNotifications(ctx, n2); err != nil {
		t.Fatal(err)
	}
	if n := sentConfirmations(t, second); n != 1 {
		t.Errorf("%d SubscriptionConfirmations after applying again, want 1", n)
	}
	// Applying the export to its source changes nothing there.
	before, err := seed.Export(ctx, first)
	if err != nil {
		t.Fatal(err)
	}
	stateBefore, sentBefore := configured(t, first), sentConfirmations(t, first)
	if _, err := parsed.Apply(ctx, first, now.Add(2*time.Hour), time.Hour); err != nil {
		t.Fatal(err)
	}
	if _, err := parsed.ApplyNotifications(ctx, n1); err != nil {
		t.Fatal(err)
	}
	if state := configured(t, first); state != stateBefore {
		t.Errorf("applying the export to its source changed its state:\n--- before\n%s\n--- after\n%s", stateBefore, state)
	}
	if sent := sentConfirmations(t, first); sent != sentBefore {
		t.Errorf("applying the export to its source sent %d SubscriptionConfirmations, had %d", sent, sentBefore)
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
