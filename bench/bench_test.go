package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"math/rand/v2"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/mpmeter/mpmeter"
)

// The smoke test CI runs: every operation for a moment against the sqlite
// and ceiling targets (and PostgreSQL when MPMETER_TEST_POSTGRES_DSN is
// set), asserting correctness only, never speed: no errors, every record
// answered Success, and what the client counted is what the store holds.

func smokeDuration() time.Duration {
	if testing.Short() {
		return 300 * time.Millisecond
	}
	return time.Second
}

func TestSmoke(t *testing.T) {
	ctx := context.Background()
	const customers, workloads = 2000, 300
	m := Marketplace(customers, workloads)
	plan, err := NewPlan(m, Region, "", "")
	if err != nil {
		t.Fatal(err)
	}
	if got := len(plan.Customers); got != customers {
		t.Fatalf("plan has %d customers, want %d", got, customers)
	}
	if got := len(plan.Workloads); got != workloads {
		t.Fatalf("plan has %d workloads, want %d", got, workloads)
	}
	if got := len(plan.Tokens); got != customers {
		t.Fatalf("plan has %d tokens, want %d", got, customers)
	}
	tmpl, err := NewTemplate(ctx, m, "")
	if err != nil {
		t.Fatal(err)
	}
	defer tmpl.Remove()

	kinds := []string{KindSQLite, KindCeiling}
	dsn := os.Getenv("MPMETER_TEST_POSTGRES_DSN")
	if dsn != "" {
		kinds = append(kinds, KindPostgres, KindPostgres2)
	}
	for _, kind := range kinds {
		t.Run(kind, func(t *testing.T) {
			target, err := Start(ctx, kind, dsn, m, TargetOptions{Dir: t.TempDir(), Template: tmpl})
			if err != nil {
				t.Fatal(err)
			}
			defer target.Stop()
			// The runs continue each other's slots on one store, so they
			// share the base time.
			base := time.Now()
			var batchSlot, meterSlot, storedWant int64
			for _, op := range Ops {
				rep, err := Run(ctx, Config{
					Endpoints: target.Endpoints, Target: kind, Concurrency: 3,
					Duration: smokeDuration(), Warmup: 100 * time.Millisecond,
					Mix: map[string]int{op: 1}, Plan: plan,
					Base: base, FirstBatchSlot: batchSlot, FirstMeterSlot: meterSlot,
					// The ceiling stores nothing and is fast enough to use
					// up the smoke marketplace's slots: let it start over.
					Wrap: kind == KindCeiling,
				})
				if err != nil {
					t.Fatal(err)
				}
				batchSlot, meterSlot = rep.NextBatchSlot, rep.NextMeterSlot
				o := rep.Op(op)
				if o == nil || o.Requests == 0 {
					t.Fatalf("%s: no requests: %+v", op, rep)
				}
				if len(rep.Errors) != 0 || o.Errors != 0 || len(rep.WarmupErrors) != 0 {
					t.Fatalf("%s: errors: %v (warm-up: %v)", op, rep.Errors, rep.WarmupErrors)
				}
				for status := range o.Statuses {
					if status != mpmeter.UsageRecordResultStatusSuccess {
						t.Fatalf("%s: statuses %v, want only Success", op, o.Statuses)
					}
				}
				switch op {
				case OpBatch:
					if o.Records != BatchSize*o.Requests || o.Statuses["Success"] != o.Records {
						t.Fatalf("%s: %d requests, %d records, statuses %v", op, o.Requests, o.Records, o.Statuses)
					}
				case OpMeter:
					if o.Records != o.Requests {
						t.Fatalf("%s: %d requests, %d records", op, o.Requests, o.Records)
					}
				case OpResolve:
					if o.Records != 0 {
						t.Fatalf("ResolveCustomer stored %d records", o.Records)
					}
				}
				if o.Latency.P50 <= 0 || o.Latency.P99 < o.Latency.P50 || o.Latency.Max < o.Latency.P99 {
					t.Fatalf("%s: latency %+v", op, o.Latency)
				}
				if rep.RequestsPerSec <= 0 || rep.Seconds <= 0 {
					t.Fatalf("%s: rates %+v", op, rep)
				}

				// What the client counted is what the store holds (the
				// ceiling stores nothing at all).
				if kind != KindCeiling {
					storedWant += rep.Records + rep.WarmupRecords
				}
				stored, err := target.Store.Usage(ctx, mpmeter.UsageFilter{From: base.Add(-7 * time.Hour), To: time.Now().Add(time.Hour)})
				if err != nil {
					t.Fatal(err)
				}
				if int64(len(stored)) != storedWant {
					t.Fatalf("after %s the store holds %d records, the client counted %d", op, len(stored), storedWant)
				}
				seen := map[string]bool{}
				for _, r := range stored {
					if seen[r.DedupKey] {
						t.Fatalf("dedup key %q stored twice", r.DedupKey)
					}
					seen[r.DedupKey] = true
				}
			}
		})
	}
}

func TestSlotsExhausted(t *testing.T) {
	ctx := context.Background()
	m := Marketplace(BatchSize, 1)
	target, err := Start(ctx, KindCeiling, "", m, TargetOptions{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer target.Stop()
	plan, _ := NewPlan(m, Region, "", "")
	// 25 customers x 10 dimensions x 6 hours = 60 batches; ask for more.
	rep, err := Run(ctx, Config{Endpoint: target.Endpoint(), Concurrency: 2, Duration: 2 * time.Second, Plan: plan,
		Mix: map[string]int{OpBatch: 1}})
	if err != nil {
		t.Fatal(err)
	}
	o := rep.Op(OpBatch)
	if o.Requests != plan.BatchSlots()/BatchSize || o.Records != plan.BatchSlots() {
		t.Fatalf("%d requests, %d records; want %d and %d", o.Requests, o.Records, plan.BatchSlots()/BatchSize, plan.BatchSlots())
	}
	if rep.Errors[ErrSlotsExhausted] != 2 {
		t.Fatalf("errors %v, want %s from each of the 2 workers", rep.Errors, ErrSlotsExhausted)
	}
}

func TestReportJSONRoundTrip(t *testing.T) {
	rep := Report{
		Target: "sqlite", Endpoints: []string{"http://127.0.0.1:1"}, Concurrency: 8, Mix: "BatchMeterUsage=1",
		StartedAt: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC), WarmupSeconds: 2, WarmupRequests: 10, WarmupRecords: 250,
		Seconds: 10.5, Requests: 100, RequestsPerSec: 9.5, Records: 2500, RecordsPerSec: 238.1,
		Errors: map[string]int64{"ThrottlingException": 1},
		Ops: []OpReport{{
			Op: OpBatch, Requests: 100, Errors: 1, RequestsPerSec: 9.5, Records: 2500, RecordsPerSec: 238.1,
			Latency:  Latency{P50: 1.5, P90: 2, P99: 3.25, Max: 9, Mean: 1.7},
			Statuses: map[string]int64{"Success": 2475, "DuplicateRecord": 25}, ErrorTypes: map[string]int64{"ThrottlingException": 1},
		}},
		NextBatchSlot: 2750, BatchSlots: 60000, MeterSlots: 1200, PeakRSSBytes: 1 << 26, RSSBytes: 1 << 25,
	}
	suite := SuiteReport{Machine: ThisMachine(), Command: "mpmeter bench", Results: []TargetResult{
		{Target: "sqlite", Report: &rep, VsCeiling: map[string]float64{OpBatch: 0.5}, SetupSeconds: 1},
		{Target: "postgres", Error: "no DSN"},
	}}
	b, err := json.Marshal(suite)
	if err != nil {
		t.Fatal(err)
	}
	var back SuiteReport
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(suite, back) {
		t.Fatalf("round trip changed the report:\n%+v\n%+v", suite, back)
	}
	var text bytes.Buffer
	if err := back.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"| sqlite | BatchMeterUsage | 8 |", "50% (records/s)", "failed: no DSN",
		"sqlite: a customer came back every 4.20s; its subscription reads missed the marketplace cache"} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("text lacks %q:\n%s", want, text.String())
		}
	}
}

func TestParseMix(t *testing.T) {
	m, err := ParseMix("batch=3, ResolveCustomer=1,meter")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int{OpBatch: 3, OpResolve: 1, OpMeter: 1}
	if !reflect.DeepEqual(m, want) {
		t.Fatalf("got %v, want %v", m, want)
	}
	if s := MixString(m); s != "BatchMeterUsage=3,MeterUsage=1,ResolveCustomer=1" {
		t.Fatalf("MixString: %s", s)
	}
	for _, bad := range []string{"", "Foo=1", "batch=-1", "batch=x"} {
		if _, err := ParseMix(bad); err == nil {
			t.Errorf("ParseMix(%q) succeeded", bad)
		}
	}
}

func TestSlotTimesDistinctHours(t *testing.T) {
	for _, base := range []time.Time{
		time.Date(2025, 1, 1, 10, 0, 0, 0, time.UTC),
		time.Date(2025, 1, 1, 10, 59, 59, 0, time.UTC),
	} {
		ts := slotTimes(base)
		hours := map[int64]bool{}
		for _, v := range ts {
			tm := time.Unix(v, 0)
			hours[tm.Truncate(time.Hour).Unix()] = true
			// Valid for at least an hour after base.
			if tm.Before(base.Add(time.Hour).Add(-6*time.Hour)) || tm.After(base) {
				t.Fatalf("base %s: timestamp %s outside the window", base, tm)
			}
		}
		if len(hours) != Hours {
			t.Fatalf("base %s: %d distinct hours, want %d", base, len(hours), Hours)
		}
	}
}

func TestGrowthSmoke(t *testing.T) {
	ctx := context.Background()
	// 2,000 customers: 120,000 live slots, enough for the live load of a
	// fast store at three points (500 ran out at ~20k records/s); the
	// pre-fill uses the first 500.
	m := Marketplace(2000, 10)
	target, err := Start(ctx, KindSQLite, "", m, TargetOptions{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer target.Stop()
	plan, _ := NewPlan(m, Region, "", "")
	// 2 days of history at 500 records an hour.
	res, err := Growth(ctx, target, Config{Plan: plan, Concurrency: 2, Duration: smokeDuration() / 2},
		GrowthConfig{Records: 24000, Steps: 2, Days: 2, Batch: 1000}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Error != "" {
		t.Fatal(res.Error)
	}
	if len(res.Points) != 3 {
		t.Fatalf("%d points, want 3", len(res.Points))
	}
	var live int64
	for i, p := range res.Points {
		if len(p.Report.Errors) != 0 {
			t.Fatalf("point %d: errors %v", i, p.Report.Errors)
		}
		if want := int64(i)*12000 + live; p.StoredRecords != want {
			t.Fatalf("point %d: %d stored records, want %d", i, p.StoredRecords, want)
		}
		live += p.Report.Records + p.Report.WarmupRecords
		switch {
		case i == 0 && p.ReportQuery != nil:
			t.Fatalf("point 0 has a report query")
		case i > 0 && (p.ReportQuery == nil || p.ReportQuery.Rows != 12000):
			t.Fatalf("point %d: report query %+v, want 12000 rows", i, p.ReportQuery)
		case i > 0 && (p.TotalsQuery == nil || p.TotalsQuery.Records != 12000 || p.TotalsQuery.Rows < 1 || p.TotalsQuery.Rows >= 12000):
			// The day's 12000 records are 500 (customer, dimension) pairs an
			// hour: summed, fewer lines than records.
			t.Fatalf("point %d: totals query %+v, want 12000 records in fewer lines", i, p.TotalsQuery)
		}
		if i > 0 && (p.DBBytes <= res.EmptyDBBytes || p.BytesPerRecord <= 0) {
			t.Fatalf("point %d: %d bytes (empty %d), %.0f bytes/record", i, p.DBBytes, res.EmptyDBBytes, p.BytesPerRecord)
		}
	}
	var text bytes.Buffer
	res.WriteText(&text)
	t.Log("\n" + text.String())
}

// An interleaved A/B run: each target's slices continue its slot sequence
// (as many slots taken as records answered), its combined figures are the
// sums of its slices and agree with what its store committed, and every
// round gives one ratio to the first target.
func TestInterleavedSmoke(t *testing.T) {
	ctx := context.Background()
	slice := smokeDuration() / 3
	rep, err := RunSuite(ctx, SuiteConfig{
		Targets:    []string{KindSQLite + NoAuditSuffix, KindSQLite + AuditSuffix},
		Load:       Config{Concurrency: 2, Duration: 3 * slice, Warmup: slice / 2},
		Seed:       Marketplace(2000, 10),
		Dir:        t.TempDir(),
		Interleave: slice,
	})
	if err != nil {
		t.Fatal(err)
	}
	il := rep.Interleaved
	if il == nil || il.Rounds < 3 || il.Baseline != KindSQLite+NoAuditSuffix {
		t.Fatalf("interleaved %+v, want at least 3 rounds against %s", il, KindSQLite+NoAuditSuffix)
	}
	if got := len(il.Ratios[KindSQLite+AuditSuffix]); got != il.Rounds {
		t.Fatalf("%d ratios for %d rounds", got, il.Rounds)
	}
	if _, ok := il.RatioSummary(KindSQLite + AuditSuffix); !ok {
		t.Fatal("no ratio summary")
	}
	if len(rep.Results) != 2 {
		t.Fatalf("%d results", len(rep.Results))
	}
	for _, res := range rep.Results {
		r := res.Report
		if res.Error != "" || r == nil {
			t.Fatalf("%s: %s", res.Target, res.Error)
		}
		o := r.Op(OpBatch)
		if o == nil || o.Records == 0 || o.Statuses["Success"] != o.Records || len(o.Statuses) != 1 || len(r.Errors) != 0 {
			t.Fatalf("%s: %+v, errors %v", res.Target, o, r.Errors)
		}
		if r.Seconds < 0.9*(3*slice).Seconds() || o.RecordsPerSec <= 0 || o.Latency.P99 < o.Latency.P50 {
			t.Fatalf("%s: %.2fs measured, %+v", res.Target, r.Seconds, o)
		}
		// The slices continued one slot sequence: as many slots taken as
		// records answered. (A slice that started over would repeat
		// slots, which the store answers Success as idempotent replays.)
		if r.NextBatchSlot != r.Records+r.WarmupRecords {
			t.Fatalf("%s: slots up to %d taken for %d + %d warm-up records", res.Target, r.NextBatchSlot, r.Records, r.WarmupRecords)
		}
		if res.Store == nil || int64(res.Store.Records) != r.Records+r.WarmupRecords {
			t.Fatalf("%s: the store committed %+v records, the client counted %d + %d warm-up", res.Target, res.Store, r.Records, r.WarmupRecords)
		}
		if audit := strings.HasSuffix(res.Target, AuditSuffix); audit != (res.AuditWriteShare != nil) {
			t.Fatalf("%s: audit write share %v", res.Target, res.AuditWriteShare)
		}
	}
	var text bytes.Buffer
	rep.WriteText(&text)
	if !strings.Contains(text.String(), "per round: median") {
		t.Fatalf("no ratio in the text:\n%s", text.String())
	}
}

// Slices combine into one report: counts summed, rates over the summed
// time, percentiles over every sample.
func TestCombineReports(t *testing.T) {
	ms := time.Millisecond
	part := func(secs float64, lat ...time.Duration) Report {
		n := int64(len(lat))
		return Report{Seconds: secs, Requests: n, Records: 25 * n, latencies: map[string][]time.Duration{OpBatch: lat},
			Ops: []OpReport{{Op: OpBatch, Requests: n, Records: 25 * n, Statuses: map[string]int64{"Success": 25 * n}}}}
	}
	a := part(1, 1*ms, 2*ms, 3*ms)
	b := part(3, 10*ms, 20*ms, 30*ms, 40*ms, 50*ms)
	got := combineReports([]Report{a, b})
	o := got.Op(OpBatch)
	if got.Seconds != 4 || got.Requests != 8 || got.Records != 200 || o.Statuses["Success"] != 200 {
		t.Fatalf("combined %+v", got)
	}
	if got.RecordsPerSec != 50 || o.RequestsPerSec != 2 {
		t.Fatalf("rates %.1f records/s, %.1f requests/s", got.RecordsPerSec, o.RequestsPerSec)
	}
	if o.Latency.Max != 50 || o.Latency.P50 != 10 {
		t.Fatalf("latency %+v, want max 50 ms and median 10 ms over the 8 samples", o.Latency)
	}
}

func TestRatioSummary(t *testing.T) {
	if _, ok := (&Interleaved{}).RatioSummary("x"); ok {
		t.Fatal("a summary of no rounds")
	}
	flat := &Interleaved{Ratios: map[string][]float64{"x": {0.9, 0.9, 0.9, 0.9}}}
	if st, _ := flat.RatioSummary("x"); st.Median != 0.9 || st.CILow != 0.9 || st.CIHigh != 0.9 || st.Rounds != 4 {
		t.Fatalf("constant rounds: %+v", st)
	}
	// Rounds scattered around 0.94 as a drifting machine scatters them
	// (±0.15): the interval holds 0.94, is inside the interquartile range,
	// and narrows as rounds are added.
	rng := rand.New(rand.NewPCG(7, 7))
	draw := func(n int) []float64 {
		r := make([]float64, n)
		for i := range r {
			r[i] = 0.94 + 0.3*(rng.Float64()-0.5)
		}
		return r
	}
	il := &Interleaved{Ratios: map[string][]float64{"few": draw(30), "many": draw(480)}}
	few, _ := il.RatioSummary("few")
	many, _ := il.RatioSummary("many")
	for _, st := range []RatioStats{few, many} {
		if !(st.CILow <= st.Median && st.Median <= st.CIHigh) || st.CILow > 0.94 || st.CIHigh < 0.94 || st.CILow < st.Q1 || st.CIHigh > st.Q3 {
			t.Fatalf("%+v: want Q1 <= CI low <= 0.94, median <= CI high <= Q3", st)
		}
	}
	if wf, wm := few.CIHigh-few.CILow, many.CIHigh-many.CILow; wm >= wf/2 {
		t.Fatalf("the interval of 480 rounds (%.4f wide) is not much narrower than that of 30 (%.4f)", wm, wf)
	}
	if again, _ := il.RatioSummary("few"); again != few {
		t.Fatalf("a second summary of the same rounds differs: %+v, %+v", again, few)
	}
}

func TestPoolInterleaved(t *testing.T) {
	run := func(base, other float64, ratios ...float64) *SuiteReport {
		res := func(target string, perSec float64) TargetResult {
			return TargetResult{Target: target, Report: &Report{Ops: []OpReport{{Op: OpBatch, RecordsPerSec: perSec}}}}
		}
		return &SuiteReport{
			Results:     []TargetResult{res("a", base), res("b", other)},
			Interleaved: &Interleaved{SliceSeconds: 2, Rounds: len(ratios), Baseline: "a", Ratios: map[string][]float64{"b": ratios}},
		}
	}
	p, err := PoolInterleaved([]*SuiteReport{run(100, 90, 0.9, 0.8), run(200, 190, 1.0, 0.95, 0.9)})
	if err != nil {
		t.Fatal(err)
	}
	if p.Runs != 2 || p.Interleaved.Rounds != 5 || !reflect.DeepEqual(p.Interleaved.Ratios["b"], []float64{0.9, 0.8, 1.0, 0.95, 0.9}) {
		t.Fatalf("pooled %+v", p)
	}
	if !reflect.DeepEqual(p.RunRatios["b"], []float64{0.9, 0.95}) {
		t.Fatalf("run ratios %v, want 0.9 and 0.95", p.RunRatios["b"])
	}
	var out bytes.Buffer
	if err := p.WriteText(&out); err != nil || !strings.Contains(out.String(), "median 0.900") || !strings.Contains(out.String(), "each run's sums: 0.900, 0.950") {
		t.Fatalf("%v: %s", err, out.String())
	}
	other := run(1, 1, 1)
	other.Interleaved.Baseline = "b"
	if _, err := PoolInterleaved([]*SuiteReport{run(1, 1, 1), other}); err == nil {
		t.Fatal("runs against different baselines pooled")
	}
	if _, err := PoolInterleaved([]*SuiteReport{{}}); err == nil {
		t.Fatal("a run that was not interleaved pooled")
	}
}

func TestCacheRegime(t *testing.T) {
	ttl := time.Second
	for _, c := range []struct {
		revisit time.Duration
		want    string
	}{
		{250 * time.Millisecond, CacheHits}, {499 * time.Millisecond, CacheHits}, {500 * time.Millisecond, CacheEdge},
		{870 * time.Millisecond, CacheEdge}, {2 * time.Second, CacheEdge}, {2100 * time.Millisecond, CacheMisses},
	} {
		if got := CacheRegime(c.revisit, ttl); got != c.want {
			t.Errorf("CacheRegime(%v, %v) = %s, want %s", c.revisit, ttl, got, c.want)
		}
	}
	// 40,001 customers at 46,000 records/s: the default 10 s sizing, at
	// the edge.
	r := Report{BatchSlots: 40001 * Dimensions * Hours, Ops: []OpReport{{Op: OpBatch, RecordsPerSec: 46000}}}
	if d, ok := r.CustomerRevisit(); !ok || d < 860*time.Millisecond || d > 880*time.Millisecond {
		t.Fatalf("revisit %v, %v; want ~0.87s", d, ok)
	}
	if _, ok := (&Report{BatchSlots: 100}).CustomerRevisit(); ok {
		t.Fatal("a revisit interval without BatchMeterUsage")
	}
}

// Prime stores one record per customer a day back, and a run after it
// still finds every slot of its own window new.
func TestPrime(t *testing.T) {
	ctx := context.Background()
	const customers = 4000 // slots for a smoke run at ~100k records/s
	m := Marketplace(customers, 10)
	plan, err := NewPlan(m, Region, "", "")
	if err != nil {
		t.Fatal(err)
	}
	target, err := Start(ctx, KindSQLite, "", m, TargetOptions{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer target.Stop()
	if n, err := Prime(ctx, target, plan); err != nil || n != customers {
		t.Fatalf("Prime stored %d records, %v; want %d", n, err, customers)
	}
	totals, err := target.Store.UsageTotals(ctx, mpmeter.UsageFilter{ProductCode: plan.SaaSProduct})
	if err != nil {
		t.Fatal(err)
	}
	var records int64
	accounts := map[string]bool{}
	for _, tot := range totals {
		records += tot.Records
		accounts[tot.CustomerAccountID] = true
	}
	if records != customers || len(accounts) != customers {
		t.Fatalf("primed %d records over %d accounts, want one for each of %d customers", records, len(accounts), customers)
	}
	rep, err := Run(ctx, Config{Endpoints: target.Endpoints, Target: KindSQLite, Concurrency: 2, Duration: smokeDuration(), Plan: plan})
	if err != nil {
		t.Fatal(err)
	}
	if o := rep.Op(OpBatch); o == nil || o.Records == 0 || o.Statuses["Success"] != o.Records || len(rep.Errors) != 0 {
		t.Fatalf("after priming: %+v, errors %v", o, rep.Errors)
	}
	ceiling, err := Start(ctx, KindCeiling, "", m, TargetOptions{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer ceiling.Stop()
	if n, err := Prime(ctx, ceiling, plan); err != nil || n != 0 {
		t.Fatalf("priming the ceiling (a no-op) stored %d records: %v", n, err)
	}
}
