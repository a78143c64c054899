package rollup_test

import (
	"context"
	"maps"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/mpmeter/mpmeter"
	"github.com/mpmeter/mpmeter/rollup"
	"github.com/mpmeter/mpmeter/sqlstore"
	"github.com/mpmeter/mpmeter/vclock"
)

type observed struct {
	days int
	lags []time.Duration
}

func (o *observed) ObserveUsageRollup(s mpmeter.UsageRollupStep) { o.days += s.Days }
func (o *observed) ObserveUsageRollupLag(d time.Duration)        { o.lags = append(o.lags, d) }

func record(id string, ts time.Time, q int64) mpmeter.MeteringRecord {
	return mpmeter.MeteringRecord{MeteringRecordID: id, Kind: mpmeter.UsageBatch, ProductCode: "p", SellerAccountID: "111111111111",
		CustomerAccountID: "222222222222", CustomerIdentifier: "c", LicenseArn: "arn:aws:license-manager::222222222222:license/l-1",
		Dimension: "d", Timestamp: ts, Quantity: q, Fingerprint: "q", CreatedAt: ts}
}

// daily returns the store's per-day quantities, and what the records say.
func daily(t *testing.T, st *sqlstore.Store) (summary, records map[time.Time]int64) {
	t.Helper()
	summary, records = map[time.Time]int64{}, map[time.Time]int64{}
	for l, err := range st.UsageSummary(t.Context(), mpmeter.UsageSummaryQuery{Period: 24 * time.Hour}) {
		if err != nil {
			t.Fatal(err)
		}
		summary[l.Start] += l.Quantity
	}
	recs, err := st.Usage(t.Context(), mpmeter.UsageFilter{})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		records[r.Timestamp.Truncate(24*time.Hour)] += r.Quantity
	}
	return summary, records
}

// Days are rolled up once the virtual clock has moved past them by the
// service's windows, not before; set back, the clock lets the service store
// into a rolled-up day again, which un-rolls it until the clock has passed
// it again. Nothing sleeps: the clock is moved.
func TestRoundFollowsTheVirtualClock(t *testing.T) {
	ctx := context.Background()
	st, err := sqlstore.Open(ctx, filepath.Join(t.TempDir(), "r.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	clock, err := vclock.New(ctx, st, time.Nanosecond)
	if err != nil {
		t.Fatal(err)
	}
	set := func(ts time.Time) {
		t.Helper()
		if err := clock.Set(ctx, ts); err != nil {
			t.Fatal(err)
		}
	}
	day1 := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	day2 := day1.AddDate(0, 0, 1)
	set(day2.Add(2*time.Hour + 30*time.Minute))
	for i, ts := range []time.Time{day1.Add(21 * time.Hour), day1.Add(23 * time.Hour), day2.Add(time.Hour)} {
		if _, err := st.RecordUsage(ctx, []mpmeter.MeteringRecord{record(string(rune('a'+i)), ts, int64(i+1))}, nil); err != nil {
			t.Fatal(err)
		}
	}
	obs := &observed{}
	closedAfter := rollup.ClosedAfter(6*time.Hour, 15*time.Minute)
	if closedAfter != 7*time.Hour+15*time.Minute {
		t.Fatalf("ClosedAfter(6h, 15m) = %v", closedAfter)
	}
	cfg := rollup.Config{Store: st, Clock: clock, ClosedAfter: closedAfter, Observer: obs}
	round := func(want int) {
		t.Helper()
		res, err := rollup.Round(ctx, cfg)
		if err != nil || res.Days != want {
			t.Fatalf("round at %v: %+v, %v; want %d days", clock.Now(), res, err, want)
		}
		if sum, recs := daily(t, st); !maps.Equal(sum, recs) {
			t.Fatalf("summary by day %v, records %v", sum, recs)
		}
	}

	round(0) // day 1 ends at 00:00, 2h30 ago: the service may still store usage in it
	set(day2.Add(7*time.Hour + 14*time.Minute))
	round(0)
	set(day2.Add(7*time.Hour + 15*time.Minute))
	round(1) // day 1

	// Set back: at 03:00 the service accepts usage of 23:30 the day before.
	set(day2.Add(3 * time.Hour))
	if _, err := st.RecordUsage(ctx, []mpmeter.MeteringRecord{record("late", day1.Add(23*time.Hour+30*time.Minute), 100)}, nil); err != nil {
		t.Fatal(err)
	}
	round(0) // day 1, un-rolled by that record, is not closed by this clock

	obs.lags = nil
	set(day2.AddDate(0, 0, 1).Add(8 * time.Hour))
	round(2) // day 1 again, and day 2
	if !slices.Equal(obs.lags, []time.Duration{24 * time.Hour, 0, 0}) || obs.days != 3 {
		t.Errorf("observed lags %v and %d days, want 24h then 0, and 3 days in all", obs.lags, obs.days)
	}
}

func TestClosedAfterRequired(t *testing.T) {
	if _, err := rollup.Round(context.Background(), rollup.Config{}); err == nil {
		t.Fatal("Round without ClosedAfter: no error")
	}
}
