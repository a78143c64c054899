package faults_test

import (
	"context"
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"

	"github.com/mpmeter/mpmeter"
	"github.com/mpmeter/mpmeter/faults"
	"github.com/mpmeter/mpmeter/sqlstore"
)

var t0 = time.Date(2026, 3, 4, 5, 0, 0, 0, time.UTC)

func newInjector(t *testing.T, rules ...mpmeter.FaultRule) (*faults.Injector, *sqlstore.Store) {
	t.Helper()
	st, err := sqlstore.Open(context.Background(), filepath.Join(t.TempDir(), "f.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	for i, r := range rules {
		r.CreatedAt = t0.Add(time.Duration(i) * time.Second)
		r.Remaining = r.Count
		if err := st.AddFaultRule(context.Background(), r); err != nil {
			t.Fatal(err)
		}
	}
	return faults.New(faults.Config{Store: st, Clock: mpmeter.ClockFunc(func() time.Time { return t0 }), Rand: rand.New(rand.NewPCG(1, 2))}), st
}

func product(code string) *mpmeter.BatchMeterUsageInput {
	return &mpmeter.BatchMeterUsageInput{ProductCode: &code, UsageRecords: make([]mpmeter.UsageRecord, 4)}
}

// The first matching rule that fires is the fault; a later count rule is
// not used by calls an earlier rule faulted.
func TestOrderAndCounts(t *testing.T) {
	inj, st := newInjector(t,
		mpmeter.FaultRule{ID: "a", Kind: mpmeter.FaultThrottling, Count: 1},
		mpmeter.FaultRule{ID: "b", Kind: mpmeter.FaultInternalError, Count: 1},
	)
	ctx := context.Background()
	call := mpmeter.FaultCall{Operation: mpmeter.OpMeterUsage, AccountID: "111122223333"}
	for _, want := range []string{"a", "b", ""} {
		f := inj.Inject(ctx, call)
		got := ""
		if f != nil {
			got = f.RuleID
		}
		if got != want {
			t.Fatalf("fault %q, want %q", got, want)
		}
	}
	if r, _ := st.FaultRule(ctx, "b"); r.Remaining != 0 {
		t.Errorf("b remaining %d", r.Remaining)
	}
}

// Product rules and unprocessed_records wait for the input; scopes match
// exactly.
func TestPhasesAndScopes(t *testing.T) {
	inj, _ := newInjector(t,
		mpmeter.FaultRule{ID: "p", ProductCode: "prod1", Kind: mpmeter.FaultServiceUnavailable, Rate: 1},
		mpmeter.FaultRule{ID: "u", Kind: mpmeter.FaultUnprocessedRecords, Count: 3},
		mpmeter.FaultRule{ID: "acct", AccountID: "999999999999", Kind: mpmeter.FaultThrottling, Rate: 1},
	)
	ctx := context.Background()
	pre := mpmeter.FaultCall{Operation: mpmeter.OpBatchMeterUsage, AccountID: "111122223333"}
	if f := inj.Inject(ctx, pre); f != nil {
		t.Fatalf("before validation: %+v", f)
	}
	post := pre
	post.Input = product("prod1")
	if f := inj.Inject(ctx, post); f == nil || f.RuleID != "p" {
		t.Fatalf("product rule: %+v", f)
	}
	post.Input = product("prod2")
	f := inj.Inject(ctx, post)
	if f == nil || f.RuleID != "u" || len(f.Unprocessed) != 3 || f.Unprocessed[2] != 2 {
		t.Fatalf("unprocessed: %+v", f)
	}
	if f := inj.Inject(ctx, post); f != nil {
		t.Fatalf("count spent: %+v", f)
	}
	pre.AccountID = "999999999999"
	if f := inj.Inject(ctx, pre); f == nil || f.RuleID != "acct" {
		t.Fatalf("account rule: %+v", f)
	}
}

// A rate rule fires about that often (a fixed seed: the same draws every
// run).
func TestRate(t *testing.T) {
	inj, _ := newInjector(t, mpmeter.FaultRule{ID: "r", Kind: mpmeter.FaultThrottling, Rate: 0.3})
	fired := 0
	for range 1000 {
		if inj.Inject(context.Background(), mpmeter.FaultCall{Operation: mpmeter.OpMeterUsage}) != nil {
			fired++
		}
	}
	if fired < 250 || fired > 350 {
		t.Errorf("rate 0.3 fired %d of 1000", fired)
	}
}
