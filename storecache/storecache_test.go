package storecache_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/mpmeter/mpmeter"
	"github.com/mpmeter/mpmeter/seed"
	"github.com/mpmeter/mpmeter/sqlstore"
	"github.com/mpmeter/mpmeter/storecache"
	"github.com/mpmeter/mpmeter/storetest"
)

// The cache must not change what a Store means: it passes the conformance
// suite like the store it wraps.
func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) mpmeter.Store {
		st, err := sqlstore.Open(context.Background(), filepath.Join(t.TempDir(), "c.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return storecache.New(st, time.Minute, nil)
	})
}

func TestStalenessBoundedByTTLAndLocalWrites(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "c.db")
	under, err := sqlstore.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer under.Close()
	if _, err := seed.Demo().Apply(ctx, under, time.Now(), time.Hour); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	c := storecache.New(under, time.Second, func() time.Time { return now })
	sub, err := storetest.SubscriptionByCustomer(ctx, c, "exampleprod1", "cust-example-1")
	if err != nil || !sub.Active() {
		t.Fatalf("%v %v", sub, err)
	}
	// Another process (another Store on the same file) cancels it.
	other, err := sqlstore.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	cancelled := sub
	cancelled.Status = mpmeter.SubscriptionCancelled
	if err := other.PutSubscription(ctx, cancelled); err != nil {
		t.Fatal(err)
	}
	if got, _ := storetest.SubscriptionByCustomer(ctx, c, "exampleprod1", "cust-example-1"); !got.Active() {
		t.Fatal("the cache did not serve within its TTL (test premise)")
	}
	now = now.Add(time.Second)
	if got, _ := storetest.SubscriptionByCustomer(ctx, c, "exampleprod1", "cust-example-1"); got.Active() {
		t.Fatal("another process's write unseen after the TTL")
	}
	// A write through the cache is seen at once.
	if err := c.PutSubscription(ctx, sub); err != nil {
		t.Fatal(err)
	}
	if got, _ := storetest.SubscriptionByCustomer(ctx, c, "exampleprod1", "cust-example-1"); !got.Active() {
		t.Fatal("own write unseen")
	}
	// Misses are not cached: a key created elsewhere works at once.
	if _, err := c.AccessKey(ctx, "AKIANEWKEY0000000001"); err == nil {
		t.Fatal("unknown key found")
	}
	if err := other.PutAccessKey(ctx, mpmeter.AccessKey{ID: "AKIANEWKEY0000000001", Secret: "s", AccountID: "111122223333"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.AccessKey(ctx, "AKIANEWKEY0000000001"); err != nil {
		t.Fatalf("a key created by another process: %v", err)
	}
}
