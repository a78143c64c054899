package sqlstore_test

import (
	"cmp"
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mpmeter/mpmeter"
	"github.com/mpmeter/mpmeter/sqlstore"
)

// The daily usage rollup (sqlstore/rollup.go): whatever is rolled up, and
// whatever is written where, every summary equals the sums of the stored
// records, computed here in Go from Store.Usage.

// opener opens another store (another node) on one test database.
type opener func(t *testing.T) *sqlstore.Store

// onEachDialect runs fn on a new SQLite database and, when
// MPMETER_TEST_POSTGRES_DSN is set, a new PostgreSQL schema.
func onEachDialect(t *testing.T, fn func(t *testing.T, open opener)) {
	openAt := func(dsn string) opener {
		return func(t *testing.T) *sqlstore.Store {
			s, err := sqlstore.Open(context.Background(), dsn)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			return s
		}
	}
	t.Run("sqlite", func(t *testing.T) { fn(t, openAt(filepath.Join(t.TempDir(), "mpmeter.db"))) })
	t.Run("postgres", func(t *testing.T) { fn(t, openAt(postgresDSN(t))) })
}

var rollBase = time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)

func rollDay(n int) time.Time { return rollBase.AddDate(0, 0, n) }

// Who meters in these tests: two SaaS agreements (BatchMeterUsage) and two
// workloads of an AMI product (MeterUsage, RegisterUsage).
var rollParties = []mpmeter.MeteringRecord{
	{ProductCode: "prod-saas", SellerAccountID: "111111111111", CustomerAccountID: "222222222222", CustomerIdentifier: "cust-1",
		LicenseArn: "arn:aws:license-manager::222222222222:license/l-1", Kind: mpmeter.UsageBatch},
	{ProductCode: "prod-saas", SellerAccountID: "111111111111", CustomerAccountID: "333333333333", CustomerIdentifier: "cust-2",
		LicenseArn: "arn:aws:license-manager::333333333333:license/l-2", Kind: mpmeter.UsageBatch},
	{ProductCode: "prod-ami", SellerAccountID: "444444444444", CustomerAccountID: "222222222222", WorkloadID: "i-0001", Kind: mpmeter.UsageMeter},
	{ProductCode: "prod-ami", SellerAccountID: "444444444444", CustomerAccountID: "333333333333", WorkloadID: "i-0002", Kind: mpmeter.UsageRegister},
}

var rollIDs atomic.Int64

// randomRecord is a record of a random party and dimension at ts, with
// allocations now and then, and a dedup key in one of few slots now and
// then (so some are duplicates, not stored).
func randomRecord(rng *rand.Rand, ts time.Time) mpmeter.MeteringRecord {
	r := rollParties[rng.IntN(len(rollParties))]
	r.MeteringRecordID = fmt.Sprintf("rec-%d", rollIDs.Add(1))
	r.Dimension = []string{"users", "gigabytes"}[rng.IntN(2)]
	r.Timestamp = ts
	r.CreatedAt = ts
	r.Quantity = int64(rng.IntN(20))
	r.Fingerprint = fmt.Sprintf("q=%d", r.Quantity)
	if rng.IntN(4) == 0 && r.Quantity > 1 {
		a := int64(rng.IntN(int(r.Quantity)))
		r.Allocations = []mpmeter.Allocation{
			{Quantity: a, Tags: []mpmeter.AllocationTag{{Key: "team", Value: "a"}}},
			{Quantity: r.Quantity - a, Tags: []mpmeter.AllocationTag{{Key: "team", Value: "b"}, {Key: "env", Value: "prod"}}},
		}
	}
	if rng.IntN(5) == 0 {
		r.DedupKey = fmt.Sprintf("k|%s|%s|%d", r.LicenseArn+r.WorkloadID, r.Dimension, ts.Unix()/3600)
	}
	return r
}

// writeRandom stores n random records at random times of days [first, last].
func writeRandom(t *testing.T, s *sqlstore.Store, rng *rand.Rand, n, first, last int) {
	t.Helper()
	recs := make([]mpmeter.MeteringRecord, n)
	for i := range recs {
		d := first + rng.IntN(last-first+1)
		recs[i] = randomRecord(rng, rollDay(d).Add(time.Duration(rng.Int64N(int64(24*time.Hour/time.Millisecond)))*time.Millisecond))
	}
	if _, err := s.RecordUsage(t.Context(), recs, nil); err != nil {
		t.Fatal(err)
	}
}

// rollUpAll runs RollUpUsage until it finds nothing more, with the service
// clock at now and days ending by closedBefore rollable; it returns the
// days rolled up.
func rollUpAll(t *testing.T, s *sqlstore.Store, closedBefore, now time.Time) int {
	t.Helper()
	days := 0
	var after time.Time
	for range 10000 {
		step, err := s.RollUpUsage(t.Context(), after, closedBefore, now)
		if err != nil {
			t.Fatal(err)
		}
		if step.To.IsZero() {
			return days
		}
		if !step.To.After(step.From) || (!after.IsZero() && step.From.Before(after)) {
			t.Fatalf("step %+v after %v", step, after)
		}
		days += step.Days
		after = step.To
	}
	t.Fatal("RollUpUsage does not finish")
	return 0
}

func rolledDays(t *testing.T, s *sqlstore.Store) (rolled, claimed []time.Time) {
	t.Helper()
	rolled, claimed, err := sqlstore.RolledDaysForTest(t.Context(), s)
	if err != nil {
		t.Fatal(err)
	}
	return rolled, claimed
}

func days(ns ...int) []time.Time {
	var out []time.Time
	for _, n := range ns {
		out = append(out, rollDay(n))
	}
	return out
}

// matches is UsageFilter's meaning, in Go.
func matches(r mpmeter.MeteringRecord, f mpmeter.UsageFilter) bool {
	if f.Status != "" && f.Status != mpmeter.UsageRecordResultStatusSuccess {
		return false
	}
	for _, c := range [][2]string{{f.ProductCode, r.ProductCode}, {f.SellerAccountID, r.SellerAccountID}, {f.CustomerAccountID, r.CustomerAccountID},
		{f.CustomerIdentifier, r.CustomerIdentifier}, {f.LicenseArn, r.LicenseArn}, {f.Dimension, r.Dimension}, {f.Kind, r.Kind}} {
		if c[0] != "" && c[0] != c[1] {
			return false
		}
	}
	if (!f.From.IsZero() && r.Timestamp.Before(f.From)) || (!f.To.IsZero() && !r.Timestamp.Before(f.To)) {
		return false
	}
	if f.TagKey == "" {
		return true
	}
	for _, a := range r.Allocations {
		for _, tag := range a.Tags {
			if tag.Key == f.TagKey && (f.TagValue == "" || tag.Value == f.TagValue) {
				return true
			}
		}
	}
	return false
}

// naiveSummary sums recs as UsageSummary does, in its order.
func naiveSummary(recs []mpmeter.MeteringRecord, q mpmeter.UsageSummaryQuery) []mpmeter.UsageSummaryLine {
	sums := map[mpmeter.UsageSummaryLine]*mpmeter.UsageSummaryLine{}
	add := func(k mpmeter.UsageSummaryLine, quantity int64) {
		l, ok := sums[k]
		if !ok {
			l = &mpmeter.UsageSummaryLine{}
			*l = k
			sums[k] = l
		}
		l.Quantity += quantity
		l.Records++
	}
	for _, r := range recs {
		if !matches(r, q.Filter) {
			continue
		}
		k := mpmeter.UsageSummaryLine{Start: r.Timestamp.UTC().Truncate(q.Period)}
		if q.ByProduct || q.ByParty {
			k.ProductCode = r.ProductCode
		}
		if q.ByCustomer || q.ByParty {
			k.CustomerAccountID = r.CustomerAccountID
		}
		if q.ByDimension {
			k.Dimension = r.Dimension
		}
		if q.ByParty {
			k.SellerAccountID, k.CustomerIdentifier, k.LicenseArn, k.WorkloadID = r.SellerAccountID, r.CustomerIdentifier, r.LicenseArn, r.WorkloadID
		}
		if q.ByTag == "" || len(r.Allocations) == 0 {
			add(k, r.Quantity)
			continue
		}
		for _, a := range r.Allocations {
			k := k
			for _, tag := range a.Tags {
				if tag.Key == q.ByTag {
					k.TagValue = tag.Value
					break
				}
			}
			add(k, a.Quantity)
		}
	}
	out := []mpmeter.UsageSummaryLine{}
	for _, l := range sums {
		out = append(out, *l)
	}
	slices.SortFunc(out, func(a, b mpmeter.UsageSummaryLine) int {
		return cmp.Or(a.Start.Compare(b.Start), strings.Compare(a.ProductCode, b.ProductCode), strings.Compare(a.CustomerAccountID, b.CustomerAccountID),
			strings.Compare(a.Dimension, b.Dimension), strings.Compare(a.TagValue, b.TagValue), strings.Compare(a.SellerAccountID, b.SellerAccountID),
			strings.Compare(a.CustomerIdentifier, b.CustomerIdentifier), strings.Compare(a.LicenseArn, b.LicenseArn), strings.Compare(a.WorkloadID, b.WorkloadID))
	})
	return out
}

func naiveTotals(recs []mpmeter.MeteringRecord, f mpmeter.UsageFilter) []mpmeter.UsageTotal {
	out := []mpmeter.UsageTotal{}
	for _, l := range naiveSummary(recs, mpmeter.UsageSummaryQuery{Filter: f, Period: 1 << 62, ByProduct: true, ByCustomer: true, ByDimension: true}) {
		out = append(out, mpmeter.UsageTotal{ProductCode: l.ProductCode, CustomerAccountID: l.CustomerAccountID, Dimension: l.Dimension,
			Quantity: l.Quantity, Records: l.Records})
	}
	slices.SortFunc(out, func(a, b mpmeter.UsageTotal) int {
		return cmp.Or(strings.Compare(a.ProductCode, b.ProductCode), strings.Compare(a.CustomerAccountID, b.CustomerAccountID), strings.Compare(a.Dimension, b.Dimension))
	})
	return out
}

func summaryOf(t *testing.T, s mpmeter.Store, q mpmeter.UsageSummaryQuery) []mpmeter.UsageSummaryLine {
	t.Helper()
	lines := []mpmeter.UsageSummaryLine{}
	for l, err := range s.UsageSummary(t.Context(), q) {
		if err != nil {
			t.Fatalf("UsageSummary(%+v): %v", q, err)
		}
		lines = append(lines, l)
	}
	return lines
}

// rollQueries are summaries of every kind the store answers, over ranges
// that start and end inside days, on day boundaries, and nowhere.
func rollQueries() []mpmeter.UsageSummaryQuery {
	day := 24 * time.Hour
	ranges := [][2]time.Time{
		{}, {rollDay(1), rollDay(3)}, {rollDay(0).Add(13 * time.Hour), rollDay(5).Add(7*time.Hour + 123*time.Millisecond)},
		{rollDay(2), {}}, {{}, rollDay(2).Add(time.Hour)}, {rollDay(1).Add(time.Minute), rollDay(2)},
	}
	var qs []mpmeter.UsageSummaryQuery
	for _, r := range ranges {
		f := mpmeter.UsageFilter{From: r[0], To: r[1]}
		qs = append(qs,
			mpmeter.UsageSummaryQuery{Filter: f, Period: day},
			mpmeter.UsageSummaryQuery{Filter: f, Period: day, ByProduct: true},
			mpmeter.UsageSummaryQuery{Filter: f, Period: day, ByProduct: true, ByCustomer: true, ByDimension: true},
			mpmeter.UsageSummaryQuery{Filter: f, Period: day, ByParty: true, ByDimension: true},
			mpmeter.UsageSummaryQuery{Filter: f, Period: time.Hour, ByCustomer: true},
			mpmeter.UsageSummaryQuery{Filter: f, Period: day, ByTag: "team"},
		)
		for _, g := range []mpmeter.UsageFilter{
			{ProductCode: "prod-saas"}, {CustomerAccountID: "333333333333", Dimension: "users"}, {Kind: mpmeter.UsageMeter},
			{LicenseArn: rollParties[0].LicenseArn}, {SellerAccountID: "444444444444"}, {CustomerIdentifier: "cust-2"},
			{TagKey: "team", TagValue: "b"}, {TagKey: "env"}, {Dimension: "nothing"},
		} {
			g.From, g.To = f.From, f.To
			qs = append(qs, mpmeter.UsageSummaryQuery{Filter: g, Period: day, ByDimension: true})
		}
	}
	return qs
}

// checkSums compares every query's summary, and its totals, with the sums of
// the stored records.
func checkSums(t *testing.T, s *sqlstore.Store, qs []mpmeter.UsageSummaryQuery) {
	t.Helper()
	recs, err := s.Usage(t.Context(), mpmeter.UsageFilter{})
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range qs {
		if got, want := summaryOf(t, s, q), naiveSummary(recs, q); !reflect.DeepEqual(got, want) {
			t.Fatalf("UsageSummary(%+v)\n got %+v\nwant %+v", q, got, want)
		}
		if q.Period != 24*time.Hour || q.ByTag != "" {
			continue
		}
		got, err := s.UsageTotals(t.Context(), q.Filter)
		if err != nil {
			t.Fatal(err)
		}
		if want := naiveTotals(recs, q.Filter); !reflect.DeepEqual(got, want) {
			t.Fatalf("UsageTotals(%+v)\n got %+v\nwant %+v", q.Filter, got, want)
		}
	}
}

// Summaries over ranges that span rolled-up days and others equal the
// records' sums, and the rolled-up days are read from the rollup (a sum
// changed behind the store's back shows), except where it cannot answer.
func TestRollupSummariesEqualRecords(t *testing.T) {
	onEachDialect(t, func(t *testing.T, open opener) {
		s := open(t)
		rng := rand.New(rand.NewPCG(1, 2))
		writeRandom(t, s, rng, 600, 0, 5)
		qs := rollQueries()
		checkSums(t, s, qs)

		now := rollDay(5).Add(9 * time.Hour)
		if n := rollUpAll(t, s, rollDay(4).Add(time.Hour), now); n != 4 {
			t.Fatalf("rolled up %d days, want 4 (days ending by day 4 01:00)", n)
		}
		if rolled, claimed := rolledDays(t, s); !slices.Equal(rolled, days(0, 1, 2, 3)) || len(claimed) > 0 {
			t.Fatalf("rolled up %v, claimed %v; want days 0-3", rolled, claimed)
		}
		if n := rollUpAll(t, s, rollDay(4).Add(time.Hour), now); n != 0 {
			t.Fatalf("a second round rolled up %d days", n)
		}
		checkSums(t, s, qs)

		// Reading the rollup, not the records: day 1's sums bumped show in
		// the summaries by day that cover it wholly, not in those by hour
		// or by tag, nor in ranges that cut day 1.
		if err := sqlstore.AddToDailySumsForTest(t.Context(), s, rollDay(1), 1000); err != nil {
			t.Fatal(err)
		}
		recs, _ := s.Usage(t.Context(), mpmeter.UsageFilter{})
		qty := func(lines []mpmeter.UsageSummaryLine) (n int64) {
			for _, l := range lines {
				n += l.Quantity
			}
			return n
		}
		for _, c := range []struct {
			q      mpmeter.UsageSummaryQuery
			bumped bool
		}{
			{mpmeter.UsageSummaryQuery{Period: 24 * time.Hour}, true},
			{mpmeter.UsageSummaryQuery{Filter: mpmeter.UsageFilter{From: rollDay(1), To: rollDay(2)}, Period: 24 * time.Hour, ByParty: true}, true},
			{mpmeter.UsageSummaryQuery{Filter: mpmeter.UsageFilter{From: rollDay(1).Add(time.Millisecond)}, Period: 24 * time.Hour}, false},
			{mpmeter.UsageSummaryQuery{Period: time.Hour}, false},
			{mpmeter.UsageSummaryQuery{Period: 24 * time.Hour, ByTag: "team"}, false},
			{mpmeter.UsageSummaryQuery{Filter: mpmeter.UsageFilter{TagKey: "team"}, Period: 24 * time.Hour}, false},
		} {
			got, want := qty(summaryOf(t, s, c.q)), qty(naiveSummary(recs, c.q))
			if c.bumped && got == want {
				t.Errorf("%+v: quantity %d, the records' sum: the rollup was not read", c.q, got)
			}
			if c.bumped && got != want && got-want != 1000*int64(len(summaryOf(t, s, mpmeter.UsageSummaryQuery{
				Filter: mpmeter.UsageFilter{From: rollDay(1), To: rollDay(2)}, Period: 24 * time.Hour, ByParty: true, ByDimension: true}))) {
				t.Errorf("%+v: quantity %d, want the records' %d and the bumps", c.q, got, want)
			}
			if !c.bumped && got != want {
				t.Errorf("%+v: quantity %d, want the records' %d (the rollup cannot answer this)", c.q, got, want)
			}
		}
		totals, err := s.UsageTotals(t.Context(), mpmeter.UsageFilter{})
		if err != nil {
			t.Fatal(err)
		}
		if reflect.DeepEqual(totals, naiveTotals(recs, mpmeter.UsageFilter{})) {
			t.Error("UsageTotals did not read the rollup")
		}
	})
}

// A record stored in a rolled-up day (a direct RecordUsage, or the service
// with its clock set back) un-rolls that day in its own transaction: the
// summaries stay the records' sums, and the day is rolled up again later.
func TestRollupWriteIntoRolledDay(t *testing.T) {
	onEachDialect(t, func(t *testing.T, open opener) {
		s := open(t)
		rng := rand.New(rand.NewPCG(3, 4))
		writeRandom(t, s, rng, 300, 0, 4)
		now := rollDay(5).Add(9 * time.Hour)
		rollUpAll(t, s, rollDay(4), now)
		qs := rollQueries()

		late := randomRecord(rng, rollDay(1).Add(5*time.Hour))
		late.DedupKey = ""
		if _, err := s.RecordUsage(t.Context(), []mpmeter.MeteringRecord{late}, nil); err != nil {
			t.Fatal(err)
		}
		if rolled, _ := rolledDays(t, s); !slices.Equal(rolled, days(0, 2, 3)) {
			t.Fatalf("after a record in day 1: rolled up %v, want days 0, 2, 3", rolled)
		}
		checkSums(t, s, qs)

		// Records of several days in one call, one with an idempotency
		// token: every rolled-up day among them is un-rolled.
		batch := []mpmeter.MeteringRecord{randomRecord(rng, rollDay(3).Add(time.Hour)), randomRecord(rng, rollDay(4).Add(time.Hour)), randomRecord(rng, rollDay(0))}
		if _, err := s.RecordUsage(t.Context(), batch, nil); err != nil {
			t.Fatal(err)
		}
		tokRec := randomRecord(rng, rollDay(2).Add(23*time.Hour))
		tok := &mpmeter.IdempotencyToken{Scope: "w", Token: "t1", Fingerprint: "f", ExpiresAt: now.Add(time.Hour)}
		tokRec.CreatedAt = now
		if _, err := s.RecordUsage(t.Context(), []mpmeter.MeteringRecord{tokRec}, tok); err != nil {
			t.Fatal(err)
		}
		if rolled, _ := rolledDays(t, s); len(rolled) != 0 {
			t.Fatalf("rolled up %v after records in days 0-3", rolled)
		}
		checkSums(t, s, qs)

		if n := rollUpAll(t, s, rollDay(4), now); n != 4 {
			t.Fatalf("rolled up %d days again, want 4", n)
		}
		checkSums(t, s, qs)
	})
}

// A claim is left to its roller while it is fresh, taken over once stale
// (or stamped well after the roller's now: the clock was set back), and
// its day is read from the records meanwhile.
func TestRollupClaims(t *testing.T) {
	onEachDialect(t, func(t *testing.T, open opener) {
		s := open(t)
		rng := rand.New(rand.NewPCG(5, 6))
		writeRandom(t, s, rng, 200, 0, 3)
		now := rollDay(5)
		if err := sqlstore.ClaimDayForTest(t.Context(), s, rollDay(1), now.Add(-time.Minute)); err != nil {
			t.Fatal(err)
		}
		if err := sqlstore.ClaimDayForTest(t.Context(), s, rollDay(2), now.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		if n := rollUpAll(t, s, rollDay(4), now); n != 3 {
			t.Fatalf("rolled up %d days, want 3 (day 1's fresh claim left alone)", n)
		}
		if rolled, claimed := rolledDays(t, s); !slices.Equal(rolled, days(0, 2, 3)) || !slices.Equal(claimed, days(1)) {
			t.Fatalf("rolled up %v, claimed %v", rolled, claimed)
		}
		checkSums(t, s, rollQueries())
		if n := rollUpAll(t, s, rollDay(4), now.Add(10*time.Minute)); n != 1 {
			t.Fatalf("10 minutes later: rolled up %d days, want day 1's stale claim", n)
		}
		if rolled, claimed := rolledDays(t, s); !slices.Equal(rolled, days(0, 1, 2, 3)) || len(claimed) > 0 {
			t.Fatalf("rolled up %v, claimed %v", rolled, claimed)
		}
		checkSums(t, s, rollQueries())
	})
}

// Days without records between days with some are rolled up as one run, so
// the rolled-up days stay contiguous; days before 1970 and days not closed
// are not rolled up.
func TestRollupEmptyDays(t *testing.T) {
	onEachDialect(t, func(t *testing.T, open opener) {
		s := open(t)
		rng := rand.New(rand.NewPCG(7, 8))
		writeRandom(t, s, rng, 20, 0, 0)
		writeRandom(t, s, rng, 20, 40, 40)
		writeRandom(t, s, rng, 20, 44, 44)
		old := randomRecord(rng, time.Date(1969, 12, 31, 12, 0, 0, 0, time.UTC))
		if _, err := s.RecordUsage(t.Context(), []mpmeter.MeteringRecord{old}, nil); err != nil {
			t.Fatal(err)
		}
		var steps []mpmeter.UsageRollupStep
		var after time.Time
		for {
			step, err := s.RollUpUsage(t.Context(), after, rollDay(42), rollDay(43))
			if err != nil {
				t.Fatal(err)
			}
			if step.To.IsZero() {
				break
			}
			steps = append(steps, step)
			after = step.To
		}
		// Day 0, days 1-39 (no records) as one run, day 40, day 41 (none,
		// and day 42 is not closed); the record of 1969 stays in the records.
		if len(steps) != 4 || !steps[1].From.Equal(rollDay(1)) || !steps[1].To.Equal(rollDay(40)) || steps[1].Days != 39 {
			t.Errorf("steps %+v", steps)
		}
		rolled, _ := rolledDays(t, s)
		if len(rolled) != 42 || !rolled[0].Equal(rollDay(0)) || !rolled[len(rolled)-1].Equal(rollDay(41)) {
			t.Fatalf("rolled up %v, want days 0 to 41", rolled)
		}
		for i := 1; i < len(rolled); i++ {
			if rolled[i].Sub(rolled[i-1]) != 24*time.Hour {
				t.Fatalf("rolled-up days not contiguous at %v", rolled[i])
			}
		}
		f := mpmeter.UsageFilter{From: rollDay(-1), To: rollDay(45)}
		checkSums(t, s, []mpmeter.UsageSummaryQuery{{Filter: f, Period: 24 * time.Hour}, {Filter: f, Period: 24 * time.Hour, ByParty: true, ByDimension: true},
			{Filter: mpmeter.UsageFilter{From: rollDay(-1)}, Period: 24 * time.Hour, ByProduct: true}})
		if got, err := s.UsageTotals(t.Context(), mpmeter.UsageFilter{}); err != nil || len(got) == 0 {
			t.Fatalf("UsageTotals: %v, %v", got, err)
		}
	})
}

// Random writes (into rolled-up days too), random roll-ups and random
// queries: every summary equals the records' sums.
func TestRollupRandomized(t *testing.T) {
	onEachDialect(t, func(t *testing.T, open opener) {
		seed := uint64(time.Now().UnixNano())
		t.Logf("seed %d", seed)
		rng := rand.New(rand.NewPCG(seed, 9))
		s := open(t)
		all := rollQueries()
		for round := range 12 {
			switch rng.IntN(3) {
			case 0, 1:
				writeRandom(t, s, rng, 1+rng.IntN(60), rng.IntN(8), 8)
			}
			if rng.IntN(2) == 0 {
				closed := rollDay(rng.IntN(10)).Add(time.Duration(rng.IntN(24)) * time.Hour)
				rollUpAll(t, s, closed, closed.Add(7*time.Hour))
			}
			qs := make([]mpmeter.UsageSummaryQuery, 8)
			for i := range qs {
				qs[i] = all[rng.IntN(len(all))]
			}
			qs = append(qs, mpmeter.UsageSummaryQuery{Period: 24 * time.Hour, ByParty: true, ByDimension: true})
			t.Logf("round %d", round)
			checkSums(t, s, qs)
		}
	})
}

// Writers on several nodes store records into days that rollers on those
// nodes are rolling up at the same time; once they are done, the summaries
// are the records' sums. On PostgreSQL this is the race claimDays closes: a
// write that had not committed when a day was claimed.
func TestRollupRacesWriters(t *testing.T) {
	onEachDialect(t, func(t *testing.T, open opener) {
		nodes := []*sqlstore.Store{open(t), open(t)}
		ctx := t.Context()
		var writes, rolls sync.WaitGroup
		stop := make(chan struct{})
		errs := make(chan error, 16)
		for w := range 4 {
			writes.Go(func() {
				s := nodes[w%len(nodes)]
				rng := rand.New(rand.NewPCG(uint64(w), 10))
				for range 40 {
					recs := make([]mpmeter.MeteringRecord, 1+rng.IntN(10))
					for i := range recs {
						recs[i] = randomRecord(rng, rollDay(rng.IntN(4)).Add(time.Duration(rng.IntN(86400))*time.Second))
					}
					if _, err := s.RecordUsage(ctx, recs, nil); err != nil {
						errs <- err
						return
					}
				}
			})
		}
		for r := range 2 {
			rolls.Go(func() {
				s := nodes[r%len(nodes)]
				for {
					select {
					case <-stop:
						return
					default:
					}
					var after time.Time
					for {
						step, err := s.RollUpUsage(ctx, after, rollDay(10), rollDay(11))
						if err != nil {
							errs <- err
							return
						}
						if step.To.IsZero() {
							break
						}
						after = step.To
					}
				}
			})
		}
		writes.Wait()
		close(stop)
		rolls.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		qs := []mpmeter.UsageSummaryQuery{{Period: 24 * time.Hour}, {Period: 24 * time.Hour, ByParty: true, ByDimension: true}}
		checkSums(t, nodes[0], qs)
		rollUpAll(t, nodes[1], rollDay(10), rollDay(11))
		if rolled, claimed := rolledDays(t, nodes[0]); len(rolled) != 4 || len(claimed) != 0 {
			t.Fatalf("rolled up %v, claimed %v; want days 0-3", rolled, claimed)
		}
		checkSums(t, nodes[0], qs)
	})
}
