package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/mpmeter/mpmeter"
)

func testRecordUsage(t *testing.T, s mpmeter.Store) {
	ctx := t.Context()
	seed(t, s)

	out, err := s.RecordUsage(ctx, nil, nil)
	if err != nil || len(out) != 0 {
		t.Errorf("RecordUsage(no records) = %v, %v; want no outcomes, nil", out, err)
	}

	a, b, c := rec("rec-a", "key-a"), rec("rec-b", "key-b"), rec("rec-c", "key-c")
	// Every field round-trips.
	b.Kind, b.WorkloadID, b.CustomerIdentifier = mpmeter.UsageMeter, "i-0123456789abcdef0", ""
	b.Timestamp, b.Quantity = t0.Add(-time.Hour), 0
	b.Allocations = []mpmeter.Allocation{
		{Quantity: 3, Tags: []mpmeter.AllocationTag{{Key: "team", Value: "red"}, {Key: "env", Value: "prod ✓"}}},
		{Quantity: 4},
	}
	c.Kind, c.Timestamp, c.Quantity = mpmeter.UsageRegister, t0.Add(time.Hour), 1<<40
	out, err = s.RecordUsage(ctx, []mpmeter.MeteringRecord{a, b, c}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != 3 {
		t.Fatalf("%d outcomes, want 3", len(out))
	}
	for i, want := range []mpmeter.MeteringRecord{a, b, c} {
		wantOutcome(t, name("outcome %d", i), out[i], true, want)
	}
	wantUsage(t, s, mpmeter.UsageFilter{}, b, a, c)
}

func testDedupWithinCall(t *testing.T, s mpmeter.Store) {
	ctx := t.Context()
	seed(t, s)
	a, b := rec("rec-a", "key-1"), rec("rec-b", "key-2")
	a2 := rec("rec-a2", "key-1") // a's slot again, another fingerprint
	a3 := rec("rec-a3", "key-1")
	a3.Fingerprint = a.Fingerprint // a's slot, a's fingerprint
	out, err := s.RecordUsage(ctx, []mpmeter.MeteringRecord{a2, b, a3}, nil)
	if err != nil {
		t.Fatal(err)
	}
	// The first record of the slot in the call is stored; later ones get
	// it back.
	wantOutcome(t, "first of slot", out[0], true, a2)
	wantOutcome(t, "other slot", out[1], true, b)
	wantOutcome(t, "second of slot", out[2], false, a2)
	wantUsage(t, s, mpmeter.UsageFilter{}, a2, b)

	// The order of the call decides, not the record ids.
	c, c2 := rec("rec-z", "key-3"), rec("rec-y", "key-3")
	out, err = s.RecordUsage(ctx, []mpmeter.MeteringRecord{c, c2, a}, nil)
	if err != nil {
		t.Fatal(err)
	}
	wantOutcome(t, "first of slot 3", out[0], true, c)
	wantOutcome(t, "second of slot 3", out[1], false, c)
	wantOutcome(t, "slot 1 again", out[2], false, a2)
	wantUsage(t, s, mpmeter.UsageFilter{}, a2, b, c)
}

func testDedupAcrossCalls(t *testing.T, s mpmeter.Store) {
	ctx := t.Context()
	seed(t, s)
	a := rec("rec-a", "key-1")
	wantOutcome(t, "first call", record1(t, ctx, s, a, nil), true, a)

	// Same slot, same fingerprint (a retry): the stored record.
	retry := rec("rec-a-retry", "key-1")
	retry.Fingerprint = a.Fingerprint
	// Same slot, other fingerprint (a duplicate): the stored record too;
	// the caller tells the two apart by Fingerprint.
	dup := rec("rec-a-dup", "key-1")
	dup.Quantity = 99
	fresh := rec("rec-b", "key-2")
	out, err := s.RecordUsage(ctx, []mpmeter.MeteringRecord{retry, fresh, dup}, nil)
	if err != nil {
		t.Fatal(err)
	}
	wantOutcome(t, "retry", out[0], false, a)
	wantOutcome(t, "new slot", out[1], true, fresh)
	wantOutcome(t, "duplicate", out[2], false, a)
	wantUsage(t, s, mpmeter.UsageFilter{}, a, fresh)
}

// Records without a DedupKey are never deduplicated, not even against each
// other.
func testNoDedupKey(t *testing.T, s mpmeter.Store) {
	ctx := t.Context()
	seed(t, s)
	a, b := rec("rec-a", ""), rec("rec-b", "")
	b.Fingerprint = a.Fingerprint
	out, err := s.RecordUsage(ctx, []mpmeter.MeteringRecord{a, b}, nil)
	if err != nil {
		t.Fatal(err)
	}
	wantOutcome(t, "a", out[0], true, a)
	wantOutcome(t, "b", out[1], true, b)
	c := rec("rec-c", "")
	c.Fingerprint = a.Fingerprint
	wantOutcome(t, "c", record1(t, ctx, s, c, nil), true, c)
	wantUsage(t, s, mpmeter.UsageFilter{}, a, b, c)
}

// A call that fails midway stores none of its records.
func testAtomicity(t *testing.T, s mpmeter.Store) {
	ctx := t.Context()
	seed(t, s)
	x := rec("rec-x", "key-x")
	record1(t, ctx, s, x, nil)

	// The last record reuses x's id under another key: the unique id is
	// violated after two records of the call were written.
	y, z, bad := rec("rec-y", "key-y"), rec("rec-z", ""), rec("rec-x", "key-other")
	_, err := s.RecordUsage(ctx, []mpmeter.MeteringRecord{y, z, bad}, nil)
	wantFailure(t, "RecordUsage with a duplicate record id", err)
	wantUsage(t, s, mpmeter.UsageFilter{}, x)

	// Two records of one call with the same id.
	p, q := rec("rec-p", "key-p"), rec("rec-p", "key-q")
	_, err = s.RecordUsage(ctx, []mpmeter.MeteringRecord{p, q}, nil)
	wantFailure(t, "RecordUsage with a record id twice", err)
	wantUsage(t, s, mpmeter.UsageFilter{}, x)

	// The same with a token: the token is not stored either.
	tok := &mpmeter.IdempotencyToken{Scope: "w", Token: "t", Fingerprint: "f", ExpiresAt: t0.Add(time.Hour)}
	_, err = s.RecordUsage(ctx, []mpmeter.MeteringRecord{rec("rec-x", "key-tok")}, tok)
	wantFailure(t, "RecordUsage with a token and a duplicate record id", err)

	// The store is fine afterwards, and the slots the failed calls touched
	// are free.
	out, err := s.RecordUsage(ctx, []mpmeter.MeteringRecord{y, z}, nil)
	if err != nil {
		t.Fatal(err)
	}
	wantOutcome(t, "y after failure", out[0], true, y)
	wantOutcome(t, "z after failure", out[1], true, z)
	tr := rec("rec-t", "key-tok")
	tr.Fingerprint = "f"
	wantOutcome(t, "token after failure", record1(t, ctx, s, tr, tok), true, tr)
	wantUsage(t, s, mpmeter.UsageFilter{}, tr, x, y, z)
}

func testIdempotencyToken(t *testing.T, s mpmeter.Store) {
	ctx := t.Context()
	seed(t, s)
	tok := &mpmeter.IdempotencyToken{Scope: "i-0123", Token: "client-token-1", Fingerprint: "params-A", ExpiresAt: t0.Add(time.Hour)}
	first := rec("rec-1", "key-1")
	wantOutcome(t, "first", record1(t, ctx, s, first, tok), true, first)

	// The client retries: the service makes a new record (new id, even a
	// new slot), the token answers with the first.
	again := rec("rec-2", "key-2")
	again.CreatedAt = t0.Add(30 * time.Minute)
	wantOutcome(t, "retry", record1(t, ctx, s, again, tok), false, first)

	// The same token with other parameters.
	other := *tok
	other.Fingerprint = "params-B"
	_, err := s.RecordUsage(ctx, []mpmeter.MeteringRecord{rec("rec-3", "key-3")}, &other)
	wantErr(t, "token reused with other parameters", err, mpmeter.ErrIdempotencyConflict)

	wantUsage(t, s, mpmeter.UsageFilter{}, first)

	// Still answering with the first after the conflict.
	wantOutcome(t, "retry after conflict", record1(t, ctx, s, rec("rec-4", "key-4"), tok), false, first)
	wantUsage(t, s, mpmeter.UsageFilter{}, first)
}

// An expired token is replaced: the call is a new one, and the token then
// answers with its record.
func testIdempotencyTokenExpired(t *testing.T, s mpmeter.Store) {
	ctx := t.Context()
	seed(t, s)
	tok := &mpmeter.IdempotencyToken{Scope: "i-0123", Token: "tok", Fingerprint: "A", ExpiresAt: t0.Add(time.Hour)}
	first := rec("rec-1", "key-1")
	first.CreatedAt = t0
	record1(t, ctx, s, first, tok)

	// At its expiry it is expired: a new call with other parameters is no
	// conflict.
	later := rec("rec-2", "key-2")
	later.CreatedAt = t0.Add(time.Hour)
	tok2 := &mpmeter.IdempotencyToken{Scope: "i-0123", Token: "tok", Fingerprint: "B", ExpiresAt: t0.Add(2 * time.Hour)}
	wantOutcome(t, "after expiry", record1(t, ctx, s, later, tok2), true, later)

	// The replacement answers now, with its own fingerprint.
	retry := rec("rec-3", "key-3")
	retry.CreatedAt = t0.Add(90 * time.Minute)
	wantOutcome(t, "retry of replacement", record1(t, ctx, s, retry, tok2), false, later)
	_, err := s.RecordUsage(ctx, []mpmeter.MeteringRecord{retry}, tok)
	wantErr(t, "old fingerprint after replacement", err, mpmeter.ErrIdempotencyConflict)
	wantUsage(t, s, mpmeter.UsageFilter{}, first, later)
}

func testIdempotencyTokenScope(t *testing.T, s mpmeter.Store) {
	ctx := t.Context()
	seed(t, s)
	a := &mpmeter.IdempotencyToken{Scope: "i-aaa", Token: "tok", Fingerprint: "A", ExpiresAt: t0.Add(time.Hour)}
	b := &mpmeter.IdempotencyToken{Scope: "i-bbb", Token: "tok", Fingerprint: "B", ExpiresAt: t0.Add(time.Hour)}
	ra, rb := rec("rec-a", "key-a"), rec("rec-b", "key-b")
	wantOutcome(t, "scope a", record1(t, ctx, s, ra, a), true, ra)
	wantOutcome(t, "scope b", record1(t, ctx, s, rb, b), true, rb)
	wantOutcome(t, "scope a again", record1(t, ctx, s, rec("rec-c", "key-c"), a), false, ra)
	wantOutcome(t, "scope b again", record1(t, ctx, s, rec("rec-d", "key-d"), b), false, rb)
}

func testIdempotencyTokenNeedsOneRecord(t *testing.T, s mpmeter.Store) {
	ctx := t.Context()
	seed(t, s)
	tok := &mpmeter.IdempotencyToken{Scope: "w", Token: "t", Fingerprint: "f", ExpiresAt: t0.Add(time.Hour)}
	_, err := s.RecordUsage(ctx, []mpmeter.MeteringRecord{rec("rec-1", "key-1"), rec("rec-2", "key-2")}, tok)
	wantFailure(t, "token with two records", err)
	_, err = s.RecordUsage(ctx, nil, tok)
	wantFailure(t, "token with no records", err)
	wantUsage(t, s, mpmeter.UsageFilter{})
	// Nor was the token stored.
	r := rec("rec-3", "key-3")
	r.Fingerprint = "f"
	tok.Fingerprint = "other"
	wantOutcome(t, "token after failures", record1(t, ctx, s, r, tok), true, r)
}

// A token whose record lands in a taken slot points at the slot's record.
func testIdempotencyTokenAndDedupKey(t *testing.T, s mpmeter.Store) {
	ctx := t.Context()
	seed(t, s)
	first := rec("rec-1", "key-1")
	record1(t, ctx, s, first, &mpmeter.IdempotencyToken{Scope: "w", Token: "t1", Fingerprint: "f", ExpiresAt: t0.Add(time.Hour)})
	t2 := &mpmeter.IdempotencyToken{Scope: "w", Token: "t2", Fingerprint: "f", ExpiresAt: t0.Add(time.Hour)}
	wantOutcome(t, "new token, taken slot", record1(t, ctx, s, rec("rec-2", "key-1"), t2), false, first)
	wantOutcome(t, "new token replayed", record1(t, ctx, s, rec("rec-3", "key-3"), t2), false, first)
	wantUsage(t, s, mpmeter.UsageFilter{}, first)
}

func testUsage(t *testing.T, s mpmeter.Store) {
	ctx := t.Context()
	seed(t, s)
	mk := func(id, prod, sell, cust, kind string, ts time.Time) mpmeter.MeteringRecord {
		r := rec(id, "key-"+id)
		r.ProductCode, r.SellerAccountID, r.CustomerAccountID, r.Kind, r.Timestamp = prod, sell, cust, kind, ts
		return r
	}
	r1 := mk("u-3", product, seller, buyer, mpmeter.UsageBatch, t0.Add(time.Hour))
	r2 := mk("u-2", product, seller, buyer2, mpmeter.UsageMeter, t0)
	r3 := mk("u-1", product2, seller2, buyer, mpmeter.UsageRegister, t0.Add(time.Hour)) // r1's time: id decides
	r4 := mk("u-4", product, seller, buyer, mpmeter.UsageBatch, t0.Add(2*time.Hour))
	r5 := mk("u-5", product2, seller2, buyer2, mpmeter.UsageMeter, t0.Add(-time.Hour))
	r1.Allocations = []mpmeter.Allocation{{Quantity: 7, Tags: []mpmeter.AllocationTag{{Key: "k", Value: "v"}}}}
	// Two calls, neither in order.
	if _, err := s.RecordUsage(ctx, []mpmeter.MeteringRecord{r4, r1, r5}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := s.RecordUsage(ctx, []mpmeter.MeteringRecord{r3, r2}, nil); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		f    mpmeter.UsageFilter
		want []mpmeter.MeteringRecord
	}{
		{mpmeter.UsageFilter{}, []mpmeter.MeteringRecord{r5, r2, r3, r1, r4}},
		{mpmeter.UsageFilter{ProductCode: product}, []mpmeter.MeteringRecord{r2, r1, r4}},
		{mpmeter.UsageFilter{SellerAccountID: seller2}, []mpmeter.MeteringRecord{r5, r3}},
		{mpmeter.UsageFilter{CustomerAccountID: buyer}, []mpmeter.MeteringRecord{r3, r1, r4}},
		{mpmeter.UsageFilter{Kind: mpmeter.UsageMeter}, []mpmeter.MeteringRecord{r5, r2}},
		// [From, To): From included, To excluded.
		{mpmeter.UsageFilter{From: t0, To: t0.Add(2 * time.Hour)}, []mpmeter.MeteringRecord{r2, r3, r1}},
		{mpmeter.UsageFilter{From: t0.Add(time.Hour)}, []mpmeter.MeteringRecord{r3, r1, r4}},
		{mpmeter.UsageFilter{To: t0}, []mpmeter.MeteringRecord{r5}},
		{mpmeter.UsageFilter{ProductCode: product, CustomerAccountID: buyer}, []mpmeter.MeteringRecord{r1, r4}},
		{mpmeter.UsageFilter{ProductCode: product, SellerAccountID: seller, CustomerAccountID: buyer, Kind: mpmeter.UsageBatch,
			From: t0.Add(time.Hour), To: t0.Add(time.Hour + time.Second)}, []mpmeter.MeteringRecord{r1}},
		{mpmeter.UsageFilter{Limit: 2}, []mpmeter.MeteringRecord{r5, r2}},
		{mpmeter.UsageFilter{ProductCode: product, Limit: 1}, []mpmeter.MeteringRecord{r2}},
		{mpmeter.UsageFilter{Limit: 100}, []mpmeter.MeteringRecord{r5, r2, r3, r1, r4}},
		{mpmeter.UsageFilter{ProductCode: "nope"}, nil},
		{mpmeter.UsageFilter{ProductCode: product, SellerAccountID: seller2}, nil},
		{mpmeter.UsageFilter{From: t0.Add(time.Hour), To: t0.Add(time.Hour)}, nil},
	} {
		wantUsage(t, s, tc.f, tc.want...)
	}
}

func testUsageTotals(t *testing.T, s mpmeter.Store) {
	ctx := t.Context()
	seed(t, s)
	tot := func(prod, cust, dim string, q, n int64) mpmeter.UsageTotal {
		return mpmeter.UsageTotal{ProductCode: prod, CustomerAccountID: cust, Dimension: dim, Quantity: q, Records: n}
	}
	n := 0
	mk := func(prod, cust, dim string, ts time.Time, q int64) mpmeter.MeteringRecord {
		n++
		id := fmt.Sprintf("t-%02d", n)
		r := rec(id, "key-"+id)
		r.ProductCode, r.CustomerAccountID, r.Dimension, r.Timestamp, r.Quantity = prod, cust, dim, ts, q
		if prod == product2 {
			r.SellerAccountID = seller2
		}
		return r
	}
	recs := []mpmeter.MeteringRecord{
		mk(product, buyer2, "users", t0, 5),
		mk(product, buyer, "users", t0, 1),
		mk(product, buyer, "users", t0.Add(time.Hour), 2),
		mk(product, buyer, "gb", t0.Add(30*time.Minute), 1<<40),
		mk(product, buyer, "gb", t0.Add(2*time.Hour), 1<<40),
		mk(product2, buyer, "users", t0, 9),
		mk(product, buyer, "users", t0.Add(-time.Minute), 100), // before t0
	}
	recs[6].Kind = mpmeter.UsageMeter
	if _, err := s.RecordUsage(ctx, recs, nil); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		f    mpmeter.UsageFilter
		want []mpmeter.UsageTotal
	}{
		// product2 ("prod-ami") sorts before product ("prod-saas").
		{"all", mpmeter.UsageFilter{}, []mpmeter.UsageTotal{
			tot(product2, buyer, "users", 9, 1), tot(product, buyer, "gb", 2<<40, 2),
			tot(product, buyer, "users", 103, 3), tot(product, buyer2, "users", 5, 1)}},
		{"one product, [t0, t0+2h)", mpmeter.UsageFilter{ProductCode: product, From: t0, To: t0.Add(2 * time.Hour)}, []mpmeter.UsageTotal{
			tot(product, buyer, "gb", 1<<40, 1), tot(product, buyer, "users", 3, 2), tot(product, buyer2, "users", 5, 1)}},
		{"seller", mpmeter.UsageFilter{SellerAccountID: seller2}, []mpmeter.UsageTotal{tot(product2, buyer, "users", 9, 1)}},
		{"customer and kind", mpmeter.UsageFilter{CustomerAccountID: buyer, Kind: mpmeter.UsageMeter}, []mpmeter.UsageTotal{tot(product, buyer, "users", 100, 1)}},
		{"limit counts lines", mpmeter.UsageFilter{ProductCode: product, Limit: 1}, []mpmeter.UsageTotal{tot(product, buyer, "gb", 2<<40, 2)}},
		{"nothing", mpmeter.UsageFilter{ProductCode: "nope"}, []mpmeter.UsageTotal{}},
	} {
		got, err := s.UsageTotals(ctx, tc.f)
		if err != nil {
			t.Errorf("%s: UsageTotals: %v", tc.name, err)
			continue
		}
		if got == nil || !slices.Equal(got, tc.want) {
			t.Errorf("%s: UsageTotals = %+v, want %+v", tc.name, got, tc.want)
		}
	}
}

// A call whose ctx has ended fails with ctx's error and commits nothing;
// reads fail with it too (not ErrNotFound).
func testCancelledContext(t *testing.T, s mpmeter.Store) {
	seed(t, s)
	for _, c := range []struct {
		name string
		ctx  func() (context.Context, context.CancelFunc)
		err  error
	}{
		{"canceled", func() (context.Context, context.CancelFunc) {
			ctx, cancel := context.WithCancel(t.Context())
			cancel()
			return ctx, cancel
		}, context.Canceled},
		{"deadline", func() (context.Context, context.CancelFunc) {
			return context.WithDeadline(t.Context(), time.Now().Add(-time.Second))
		}, context.DeadlineExceeded},
	} {
		ctx, cancel := c.ctx()
		defer cancel()
		id := "rec-" + c.name
		_, err := s.RecordUsage(ctx, []mpmeter.MeteringRecord{rec(id, "key-"+id)}, nil)
		wantErr(t, c.name+": RecordUsage", err, c.err)
		tok := &mpmeter.IdempotencyToken{Scope: "w", Token: c.name, Fingerprint: "f", ExpiresAt: t0.Add(time.Hour)}
		_, err = s.RecordUsage(ctx, []mpmeter.MeteringRecord{rec(id+"-tok", "key-tok-"+id)}, tok)
		wantErr(t, c.name+": RecordUsage with token", err, c.err)
		key := mpmeter.AccessKey{ID: "AKIA" + c.name, Secret: "s", AccountID: buyer}
		wantErr(t, c.name+": PutAccessKey", s.PutAccessKey(ctx, key), c.err)
		wantErr(t, c.name+": AddSigningKey", s.AddSigningKey(ctx, mpmeter.SigningKey{Version: 1, PrivateKeyPEM: []byte("k"), PublicKeyPEM: []byte("k")}), c.err)
		wantErr(t, c.name+": PutSubscription", s.PutSubscription(ctx, mpmeter.Subscription{AccountID: buyer, ProductCode: product,
			CustomerIdentifier: "c-" + c.name, LicenseArn: "arn:" + c.name, Status: mpmeter.SubscriptionActive}), c.err)

		_, err = s.Subscription(ctx, license) // exists
		wantErr(t, c.name+": Subscription", err, c.err)
		_, err = s.Usage(ctx, mpmeter.UsageFilter{})
		wantErr(t, c.name+": Usage", err, c.err)

		// Nothing was committed.
		_, err = s.AccessKey(t.Context(), key.ID)
		wantErr(t, c.name+": AccessKey after cancelled put", err, mpmeter.ErrNotFound)
		_, err = s.Subscription(t.Context(), "arn:"+c.name)
		wantErr(t, c.name+": Subscription after cancelled put", err, mpmeter.ErrNotFound)
		keys, err := s.SigningKeys(t.Context())
		if err != nil || len(keys) != 0 {
			t.Errorf("%s: SigningKeys after cancelled add = %v, %v; want none", c.name, keys, err)
		}
		// The token was not stored: another fingerprint is no conflict.
		tok.Fingerprint = "other"
		record1(t, t.Context(), s, rec("rec-after-"+c.name, "key-after-"+c.name), tok)
	}
	wantUsage(t, s, mpmeter.UsageFilter{}, rec("rec-after-canceled", "key-after-canceled"), rec("rec-after-deadline", "key-after-deadline"))
}

// Calls whose ctx ends at an arbitrary moment, possibly during the
// transaction or its commit: each either fails with the ctx's error and
// stored nothing, or succeeded and stored its records.
func testCancelRace(t *testing.T, s mpmeter.Store) {
	seed(t, s)
	recsOf := func(i int) []mpmeter.MeteringRecord {
		return []mpmeter.MeteringRecord{rec(name("rec-%d-a", i), name("key-%d-a", i)), rec(name("rec-%d-b", i), "")}
	}
	// Time a few calls, so the timeouts below fall before, during and after
	// a call of this store, however fast it is.
	const warmup = 5
	var took []time.Duration
	for i := range warmup {
		start := time.Now()
		if _, err := s.RecordUsage(t.Context(), recsOf(i), nil); err != nil {
			t.Fatal(err)
		}
		took = append(took, time.Since(start))
	}
	slices.Sort(took)
	typical := took[len(took)/2]

	const calls = 60
	type result struct {
		recs []mpmeter.MeteringRecord
		err  error
	}
	var results []result
	for i := warmup; i < warmup+calls; i++ {
		recs := recsOf(i)
		// From 0 to twice a typical call.
		ctx, cancel := context.WithTimeout(t.Context(), typical*time.Duration(i%20)/10)
		_, err := s.RecordUsage(ctx, recs, nil)
		cancel()
		results = append(results, result{recs, err})
	}
	stored := map[string]bool{}
	all, err := s.Usage(t.Context(), mpmeter.UsageFilter{})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range all {
		stored[r.MeteringRecordID] = true
	}
	failed := 0
	for i, r := range results {
		a, b := stored[r.recs[0].MeteringRecordID], stored[r.recs[1].MeteringRecordID]
		switch {
		case r.err == nil && !(a && b):
			t.Errorf("call %d succeeded but stored %v, %v", i, a, b)
		case r.err != nil && (a || b):
			t.Errorf("call %d failed (%v) but stored %v, %v", i, r.err, a, b)
		case r.err != nil && !isContextError(r.err):
			t.Errorf("call %d: error %v, want a context error", i, r.err)
		}
		if r.err != nil {
			failed++
		}
	}
	t.Logf("typical call %v; %d of %d calls ran out of time", typical, failed, calls)
}

func isContextError(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// Close releases the store; calls after Close fail, and not with
// ErrNotFound.
func testClose(t *testing.T, s mpmeter.Store) {
	seed(t, s)
	must(t, s.Close())
	ctx := t.Context()
	_, err := s.AccessKey(ctx, "AKIAEXAMPLE")
	wantFailure(t, "AccessKey after Close", err)
	_, err = s.RecordUsage(ctx, []mpmeter.MeteringRecord{rec("rec-1", "key-1")}, nil)
	wantFailure(t, "RecordUsage after Close", err)
	wantFailure(t, "PutAccount after Close", s.PutAccount(ctx, mpmeter.Account{ID: buyer}))
	_, err = s.Usage(ctx, mpmeter.UsageFilter{})
	wantFailure(t, "Usage after Close", err)
}
