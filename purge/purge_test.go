package purge_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/mpmeter/mpmeter"
	"github.com/mpmeter/mpmeter/purge"
	"github.com/mpmeter/mpmeter/sqlstore"
	"github.com/mpmeter/mpmeter/vclock"
)

type counts map[string]int

func (c counts) ObservePurged(what string, n int) { c[what] += n }

// Tokens expire by the service clock: moving the virtual clock, not waiting,
// makes them purgeable, in batches smaller than what there is.
func TestRoundFollowsTheVirtualClock(t *testing.T) {
	ctx := context.Background()
	st, err := sqlstore.Open(ctx, filepath.Join(t.TempDir(), "p.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	clock, err := vclock.New(ctx, st, time.Nanosecond)
	if err != nil {
		t.Fatal(err)
	}
	now := clock.Now()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(st.PutAccount(ctx, mpmeter.Account{ID: "111111111111"}))
	must(st.PutAccount(ctx, mpmeter.Account{ID: "222222222222"}))
	must(st.PutProduct(ctx, mpmeter.Product{Code: "p", SellerAccountID: "111111111111", Type: mpmeter.ProductAMI, Dimensions: []string{"d"}}))
	for i := range 7 {
		rec := mpmeter.MeteringRecord{MeteringRecordID: "r" + string(rune('a'+i)), Kind: mpmeter.UsageMeter, ProductCode: "p",
			SellerAccountID: "111111111111", CustomerAccountID: "222222222222", WorkloadID: "i-1", Dimension: "d",
			Timestamp: now, Quantity: 1, Fingerprint: "q=1", CreatedAt: now}
		tok := &mpmeter.IdempotencyToken{Scope: "w", Token: "t" + string(rune('a'+i)), Fingerprint: "f", ExpiresAt: now.Add(time.Hour)}
		if _, err := st.RecordUsage(ctx, []mpmeter.MeteringRecord{rec}, tok); err != nil {
			t.Fatal(err)
		}
	}
	must(st.PutRegistrationToken(ctx, mpmeter.RegistrationToken{Token: "reg", AccountID: "222222222222", ProductCode: "p",
		CreatedAt: now, ExpiresAt: now.Add(time.Hour)}))

	seen := counts{}
	cfg := purge.Config{Store: st, Clock: clock, Batch: 3, Observer: seen}
	res, err := purge.Round(ctx, cfg)
	if err != nil || res != (mpmeter.PurgeResult{}) {
		t.Fatalf("round before expiry: %+v, %v; want nothing purged", res, err)
	}
	must(clock.Advance(ctx, time.Hour))
	res, err = purge.Round(ctx, cfg)
	if err != nil || res != (mpmeter.PurgeResult{IdempotencyTokens: 7}) {
		t.Fatalf("round an hour later: %+v, %v; want the 7 client tokens", res, err)
	}
	if _, err := st.RegistrationToken(ctx, "reg"); err != nil {
		t.Fatalf("registration token within its retention: %v", err)
	}
	must(clock.Advance(ctx, mpmeter.RegistrationTokenRetention))
	if res, err = purge.Round(ctx, cfg); err != nil || res.RegistrationTokens != 1 {
		t.Fatalf("round after the retention: %+v, %v; want the registration token", res, err)
	}
	if _, err := st.RegistrationToken(ctx, "reg"); !errors.Is(err, mpmeter.ErrNotFound) {
		t.Fatalf("purged registration token: %v", err)
	}
	if seen["client_tokens"] != 7 || seen["registration_tokens"] != 1 {
		t.Errorf("observed %v, want 7 client tokens and 1 registration token", seen)
	}
	if recs, _ := st.Usage(ctx, mpmeter.UsageFilter{}); len(recs) != 7 {
		t.Errorf("%d records after purging, want 7", len(recs))
	}
}
