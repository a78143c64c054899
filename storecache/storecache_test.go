package storecache_test

import (
	"context"
	"os"
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
	// A write through the cache is seen at once. (sub is the version
	// read before the other process's cancel: a blind write, version 0.)
	sub.Version = 0
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

// A key revoked by another process (another node) is refused once the TTL
// has passed since the revocation committed: what the admin API's revoke
// waits for.
func TestRevokedKeyRefusedAfterTTL(t *testing.T) {
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
	k, err := c.AccessKey(ctx, "AKIAEXAMPLESELLER001")
	if err != nil || k.Revoked() {
		t.Fatalf("%+v %v", k, err)
	}
	other, err := sqlstore.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	rev := k
	rev.RevokedAt = now
	if err := other.PutAccessKey(ctx, rev); err != nil {
		t.Fatal(err)
	}
	now = now.Add(time.Second)
	if got, err := c.AccessKey(ctx, "AKIAEXAMPLESELLER001"); err != nil || !got.Revoked() {
		t.Fatalf("a TTL after another process revoked it, the cache serves %+v, %v; want the revoked key", got, err)
	}
}

// BenchmarkAccessKey measures an access key lookup: from memory (the
// cache), and from the database (what checking every request against the
// database, the alternative to waiting out the TTL on revoke, would add to
// each request). MPMETER_BENCH_POSTGRES_DSN runs it on PostgreSQL. See
// docs/admin-api.md.
func BenchmarkAccessKey(b *testing.B) {
	ctx := context.Background()
	dsn := filepath.Join(b.TempDir(), "c.db")
	if pg := os.Getenv("MPMETER_BENCH_POSTGRES_DSN"); pg != "" {
		dsn = pg // a database of its own: the benchmark migrates and seeds it
	}
	under, err := sqlstore.Open(ctx, dsn)
	if err != nil {
		b.Fatal(err)
	}
	defer under.Close()
	if _, err := seed.Demo().Apply(ctx, under, time.Now(), time.Hour); err != nil {
		b.Fatal(err)
	}
	run := func(b *testing.B, st mpmeter.Store) {
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := st.AccessKey(ctx, "AKIAEXAMPLESELLER001"); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	b.Run("cache", func(b *testing.B) { run(b, storecache.New(under, time.Hour, nil)) })
	b.Run("database", func(b *testing.B) { run(b, under) })
}
