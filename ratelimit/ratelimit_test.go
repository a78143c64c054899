package ratelimit_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mpmeter/mpmeter"
	"github.com/mpmeter/mpmeter/ratelimit"
	"github.com/mpmeter/mpmeter/sqlstore"
)

const (
	batch    = mpmeter.OpBatchMeterUsage
	register = mpmeter.OpRegisterUsage
	resolve  = mpmeter.OpResolveCustomer
)

func TestLimiterRefillsAtRate(t *testing.T) {
	now := time.Unix(1000, 0)
	l := ratelimit.New(ratelimit.Config{Default: ratelimit.Rate{PerSecond: 2, Burst: 3}, Now: func() time.Time { return now }})
	ctx := context.Background()
	allow := func(account string) bool { return l.Allow(ctx, account, "us-east-1", batch) }
	for i := 0; i < 3; i++ {
		if !allow("a") {
			t.Fatalf("call %d within burst refused", i)
		}
	}
	if allow("a") {
		t.Fatal("call beyond burst allowed")
	}
	if !allow("b") {
		t.Fatal("another key shares a's bucket")
	}
	now = now.Add(500 * time.Millisecond) // 2/s: one token back
	if !allow("a") {
		t.Fatal("token not refilled after 1/rate seconds")
	}
	if allow("a") {
		t.Fatal("refilled more than one token")
	}
	now = now.Add(time.Hour)
	for i := 0; i < 3; i++ {
		if !allow("a") {
			t.Fatalf("bucket did not refill to burst (call %d)", i)
		}
	}
	if allow("a") {
		t.Fatal("bucket refilled beyond burst")
	}
}

// AWS's quotas: per account and region, each operation its own rate;
// ResolveCustomer unlimited.
func TestAWSQuotas(t *testing.T) {
	now := time.Unix(1000, 0)
	l := ratelimit.New(ratelimit.Config{Quotas: ratelimit.AWSQuotas(), Now: func() time.Time { return now }})
	ctx := context.Background()
	count := func(account, region, op string) int {
		n := 0
		for range 100 {
			if l.Allow(ctx, account, region, op) {
				n++
			}
		}
		return n
	}
	if n := count("a", "us-east-1", batch); n != 10 {
		t.Errorf("BatchMeterUsage: %d granted at once, want 10", n)
	}
	if n := count("a", "us-east-1", register); n != 5 {
		t.Errorf("RegisterUsage: %d granted at once, want 5", n)
	}
	if n := count("a", "eu-west-1", batch); n != 10 {
		t.Errorf("another region: %d granted, want its own 10", n)
	}
	if n := count("a", "us-east-1", resolve); n != 100 {
		t.Errorf("ResolveCustomer: %d of 100 granted, want all", n)
	}
	now = now.Add(time.Second)
	if n := count("a", "us-east-1", batch); n != 10 {
		t.Errorf("a second later: %d granted, want 10", n)
	}
	if !l.Limits() || ratelimit.New(ratelimit.Config{}).Limits() {
		t.Error("Limits()")
	}
}

func TestParseQuotas(t *testing.T) {
	q, err := ratelimit.ParseQuotas("BatchMeterUsage=20:40, MeterUsage=0.5,ResolveCustomer=3")
	if err != nil {
		t.Fatal(err)
	}
	want := ratelimit.Quotas{batch: {PerSecond: 20, Burst: 40}, mpmeter.OpMeterUsage: {PerSecond: 0.5, Burst: 1}, resolve: {PerSecond: 3, Burst: 3}}
	if q.String() != want.String() {
		t.Errorf("got %s, want %s", q, want)
	}
	for _, bad := range []string{"BatchMeterUsage", "Nope=1", "MeterUsage=-1", "MeterUsage=x", "MeterUsage=1:0", "MeterUsage=1:y"} {
		if _, err := ratelimit.ParseQuotas(bad); err == nil {
			t.Errorf("ParseQuotas(%q) accepted", bad)
		}
	}
}

// fakeShared is a shared bucket store that counts its calls; the real one
// (sqlstore) is used below.
type fakeShared struct {
	calls  int
	tokens float64
	err    error
}

func (f *fakeShared) TakeToken(_ context.Context, _ string, _, _ float64) (bool, float64, error) {
	f.calls++
	if f.err != nil {
		return false, 0, f.err
	}
	if f.tokens >= 1 {
		f.tokens--
		return true, f.tokens, nil
	}
	return false, f.tokens, nil
}

// A node refuses without asking the database while what it last heard
// proves the bucket empty, and asks again once the rate may have added a
// token.
func TestSharedShortCut(t *testing.T) {
	now := time.Unix(1000, 0)
	shared := &fakeShared{tokens: 2}
	l := ratelimit.New(ratelimit.Config{Default: ratelimit.Rate{PerSecond: 1, Burst: 2}, Shared: shared, Now: func() time.Time { return now }})
	ctx := context.Background()
	allow := func() bool { return l.Allow(ctx, "a", "us-east-1", batch) }
	for i := range 5 {
		if got, want := allow(), i < 2; got != want {
			t.Fatalf("call %d: allowed %v, want %v (burst 2)", i, got, want)
		}
	}
	if shared.calls != 2 {
		t.Errorf("%d calls to the shared bucket, want 2: the grants (the last left it known empty)", shared.calls)
	}
	now = now.Add(1100 * time.Millisecond)
	shared.tokens = 1
	if !allow() {
		t.Fatal("not asked again after the refill time")
	}
	// The database failing lets calls through.
	shared.err = errors.New("down")
	now = now.Add(time.Hour)
	if !allow() {
		t.Error("a failing shared bucket refused a call")
	}
}

// Two limiters (two nodes) on one database's buckets grant one bucket's
// worth between them. SQLite here; sqlstore's tests do the same with
// PostgreSQL and concurrent takers, test/multinode with processes.
func TestSharedAcrossLimiters(t *testing.T) {
	st, err := sqlstore.Open(context.Background(), filepath.Join(t.TempDir(), "q.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	rate := ratelimit.Rate{PerSecond: 1e-6, Burst: 7} // no refill while the test runs
	a := ratelimit.New(ratelimit.Config{Default: rate, Shared: st})
	b := ratelimit.New(ratelimit.Config{Default: rate, Shared: st})
	granted := 0
	for i := range 20 {
		l := a
		if i%2 == 1 {
			l = b
		}
		if l.Allow(context.Background(), "a", "us-east-1", batch) {
			granted++
		}
	}
	if granted != 7 {
		t.Fatalf("granted %d, want the burst, 7", granted)
	}
	if !strings.Contains(ratelimit.AWSQuotas().String(), "RegisterUsage=5:5") {
		t.Error(ratelimit.AWSQuotas().String())
	}
}
