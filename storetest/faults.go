package storetest

import (
	"context"
	"reflect"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mpmeter/mpmeter"
)

func testFaultRules(t *testing.T, s mpmeter.Store) {
	ctx := context.Background()
	if rules, err := s.FaultRules(ctx); err != nil || len(rules) != 0 {
		t.Fatalf("empty store: %v %v", rules, err)
	}
	throttle := mpmeter.FaultRule{ID: "throttle", Operation: mpmeter.OpBatchMeterUsage, AccountID: seller,
		Kind: mpmeter.FaultThrottling, Count: 3, Remaining: 3, CreatedAt: t0.Add(time.Second), ExpiresAt: t0.Add(time.Hour)}
	slow := mpmeter.FaultRule{ID: "slow", ProductCode: product, Kind: mpmeter.FaultLatency, Rate: 0.25,
		Latency: 1500 * time.Millisecond, CreatedAt: t0}
	must(t, s.AddFaultRule(ctx, throttle))
	must(t, s.AddFaultRule(ctx, slow))
	wantErr(t, "the same id again", s.AddFaultRule(ctx, throttle), mpmeter.ErrExists)
	if err := s.AddFaultRule(ctx, mpmeter.FaultRule{ID: "bad", Kind: mpmeter.FaultThrottling}); err == nil {
		t.Error("a rule with neither rate nor count was stored")
	}
	rules, err := s.FaultRules(ctx)
	must(t, err)
	if want := []mpmeter.FaultRule{slow, throttle}; !reflect.DeepEqual(rules, want) {
		t.Fatalf("rules (by creation time)\n got %+v\nwant %+v", rules, want)
	}
	got, err := s.FaultRule(ctx, "throttle")
	if err != nil || !reflect.DeepEqual(got, throttle) {
		t.Fatalf("FaultRule: %+v %v", got, err)
	}
	_, err = s.FaultRule(ctx, "nope")
	wantErr(t, "FaultRule of a missing id", err, mpmeter.ErrNotFound)

	// Takes: up to n of what remains, then 0.
	for _, c := range []struct{ n, want int64 }{{2, 2}, {5, 1}, {1, 0}} {
		took, err := s.TakeFaultCount(ctx, "throttle", c.n)
		if err != nil || took != c.want {
			t.Fatalf("take %d: %d %v, want %d", c.n, took, err, c.want)
		}
	}
	if got, _ := s.FaultRule(ctx, "throttle"); got.Remaining != 0 || got.Count != 3 {
		t.Errorf("spent rule: remaining %d count %d", got.Remaining, got.Count)
	}
	if took, err := s.TakeFaultCount(ctx, "nope", 1); err != nil || took != 0 {
		t.Errorf("take of a missing rule: %d %v", took, err)
	}

	wantErr(t, "delete a missing id", s.DeleteFaultRule(ctx, "nope"), mpmeter.ErrNotFound)
	must(t, s.DeleteFaultRule(ctx, "slow"))
	if rules, _ := s.FaultRules(ctx); len(rules) != 1 || rules[0].ID != "throttle" {
		t.Errorf("after delete: %+v", rules)
	}
	must(t, s.AddFaultRule(ctx, slow))
	n, err := s.DeleteFaultRules(ctx)
	if err != nil || n != 2 {
		t.Errorf("clear: %d %v, want 2", n, err)
	}
	if rules, _ := s.FaultRules(ctx); len(rules) != 0 {
		t.Errorf("after clear: %+v", rules)
	}
}

// Concurrent takes never take more than the count, however they
// interleave: the count is what a fleet of nodes shares.
func testFaultCountConcurrent(t *testing.T, s mpmeter.Store) {
	ctx := context.Background()
	must(t, s.AddFaultRule(ctx, mpmeter.FaultRule{ID: "c", Kind: mpmeter.FaultInternalError, Count: 25, Remaining: 25, CreatedAt: t0}))
	var took atomic.Int64
	parallel(16, func(i int) {
		for range 5 {
			n, err := s.TakeFaultCount(ctx, "c", int64(1+i%3))
			if err != nil {
				t.Error(err)
				return
			}
			took.Add(n)
		}
	})
	if got := took.Load(); got != 25 {
		t.Fatalf("took %d in all, want exactly the count 25", got)
	}
}
