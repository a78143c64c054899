package sqlstore

import (
	"cmp"
	"context"
	"fmt"
	"iter"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/mpmeter/mpmeter"
)

// Reading usage. Every query walks usage_records in its time order: SQLite's
// primary key (timestamp_ms, record_id), PostgreSQL's index of the same
// columns. A time range is a range of that order; filters on product,
// seller, customer, license and dimension are tests of the row's dictionary
// ids against the (small) dictionary rows that match, not indexes of their
// own, so they cost nothing on the write path. A filter without a time
// range reads the whole table. Summaries per day and totals read the days
// that are rolled up from usage_daily_sums instead (rollup.go), by the same
// dictionary-id tests.

// usageWhere is a WHERE clause (without the keyword) and its arguments.
type usageWhere struct {
	conds []string
	args  []any
}

func (w *usageWhere) add(cond string, args ...any) {
	w.conds = append(w.conds, cond)
	w.args = append(w.args, args...)
}

func (w *usageWhere) sql() string {
	if len(w.conds) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(w.conds, " AND ")
}

// errNoMatch marks a filter that matches nothing (a status never stored).
type errNoMatch struct{}

func (errNoMatch) Error() string { return "no record can match" }

// filterWhere adds f's conditions on usage_records r.
func (s *Store) filterWhere(w *usageWhere, f mpmeter.UsageFilter) error {
	if err := filterWho(w, f, "r"); err != nil {
		return err
	}
	if !f.From.IsZero() {
		w.add("r.timestamp_ms >= ?", ms(f.From))
	}
	if !f.To.IsZero() {
		w.add("r.timestamp_ms < ?", ms(f.To))
	}
	if f.TagKey != "" {
		if f.TagValue != "" {
			w.add(s.d.tagExists(true), f.TagKey, f.TagValue)
		} else {
			w.add(s.d.tagExists(false), f.TagKey)
		}
	}
	return nil
}

// filterWho adds f's conditions on status, party, dimension and kind, on
// the columns of the table aliased t (usage_records or usage_daily_sums).
func filterWho(w *usageWhere, f mpmeter.UsageFilter, t string) error {
	switch f.Status {
	case "", mpmeter.UsageRecordResultStatusSuccess:
	case mpmeter.UsageRecordResultStatusDuplicateRecord, mpmeter.UsageRecordResultStatusCustomerNotSubscribed:
		return errNoMatch{}
	default:
		return fmt.Errorf("sqlstore: unknown usage record status %q", f.Status)
	}
	var pc []string
	var pa []any
	for _, c := range []struct {
		col, val string
	}{
		{"product_code", f.ProductCode}, {"seller_account_id", f.SellerAccountID},
		{"customer_account_id", f.CustomerAccountID}, {"customer_identifier", f.CustomerIdentifier},
		{"license_arn", f.LicenseArn},
	} {
		if c.val != "" {
			pc = append(pc, c.col+" = ?")
			pa = append(pa, c.val)
		}
	}
	if len(pc) > 0 {
		w.add(t+".party_id IN (SELECT id FROM usage_parties WHERE "+strings.Join(pc, " AND ")+")", pa...)
	}
	if f.Dimension != "" {
		w.add(t+".dimension_id IN (SELECT id FROM usage_dimensions WHERE name = ?)", f.Dimension)
	}
	if f.Kind != "" {
		k, ok := kindCodes[f.Kind]
		if !ok {
			return errNoMatch{}
		}
		w.add(t+".kind = ?", k)
	}
	return nil
}

func orderOf(f mpmeter.UsageFilter) string {
	if f.Newest {
		return " ORDER BY r.timestamp_ms DESC, r.record_id DESC"
	}
	return " ORDER BY r.timestamp_ms, r.record_id"
}

// eachStored streams the rows of q.
func (s *Store) eachStored(ctx context.Context, q string, args []any, yield func(mpmeter.MeteringRecord, storedKeys) bool) error {
	rows, err := s.rdb.QueryContext(ctx, s.d.rebind(q), args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		r, st, err := scanStored(rows)
		if err != nil {
			return err
		}
		if !yield(r, st) {
			return nil
		}
	}
	return rows.Err()
}

// usageSQL is the query listing f's records, after an optional cursor.
func (s *Store) usageSQL(f mpmeter.UsageFilter, after *storedKeys, limit int) (string, []any, error) {
	w := &usageWhere{}
	w.add(joinRecords)
	if err := s.filterWhere(w, f); err != nil {
		return "", nil, err
	}
	if after != nil {
		op := ">"
		if f.Newest {
			op = "<"
		}
		w.add("(r.timestamp_ms, r.record_id) "+op+" (?, ?)", after.ts, after.key)
	}
	q := selectRecords + w.sql() + orderOf(f)
	if limit > 0 {
		q += " LIMIT " + strconv.Itoa(limit)
	}
	return q, w.args, nil
}

// Usage returns the records matching f, ordered by Timestamp then
// MeteringRecordID (newest first with f.Newest).
func (s *Store) Usage(ctx context.Context, f mpmeter.UsageFilter) ([]mpmeter.MeteringRecord, error) {
	recs := []mpmeter.MeteringRecord{}
	for r, err := range s.EachUsage(ctx, f) {
		if err != nil {
			return nil, err
		}
		recs = append(recs, r)
	}
	return recs, nil
}

// EachUsage implements mpmeter.Store: one query, rows read as they are
// yielded.
func (s *Store) EachUsage(ctx context.Context, f mpmeter.UsageFilter) iter.Seq2[mpmeter.MeteringRecord, error] {
	return func(yield func(mpmeter.MeteringRecord, error) bool) {
		q, args, err := s.usageSQL(f, nil, f.Limit)
		if _, none := err.(errNoMatch); none {
			return
		} else if err != nil {
			yield(mpmeter.MeteringRecord{}, err)
			return
		}
		stopped := false
		err = s.eachStored(ctx, q, args, func(r mpmeter.MeteringRecord, _ storedKeys) bool {
			if !yield(r, nil) {
				stopped = true
				return false
			}
			return true
		})
		if err != nil && !stopped {
			yield(mpmeter.MeteringRecord{}, readErr(ctx, err, "usage"))
		}
	}
}

// UsagePage implements mpmeter.Store. The cursor is the last record's
// (timestamp, stored id), the order's key, so a page is one index range.
func (s *Store) UsagePage(ctx context.Context, f mpmeter.UsageFilter, cursor string, limit int) (mpmeter.UsagePage, error) {
	page := mpmeter.UsagePage{Records: []mpmeter.MeteringRecord{}}
	if limit < 1 {
		return page, fmt.Errorf("sqlstore: UsagePage: limit %d, want at least 1", limit)
	}
	var after *storedKeys
	if cursor != "" {
		ts, key, err := decodeCursor(cursor)
		if err != nil {
			return page, err
		}
		after = &storedKeys{ts: ts, key: key}
	}
	q, args, err := s.usageSQL(f, after, limit+1)
	if _, none := err.(errNoMatch); none {
		return page, nil
	} else if err != nil {
		return page, err
	}
	var last storedKeys
	more := false
	err = s.eachStored(ctx, q, args, func(r mpmeter.MeteringRecord, st storedKeys) bool {
		if len(page.Records) == limit {
			more = true
			return false
		}
		page.Records = append(page.Records, r)
		last = st
		return true
	})
	if err != nil {
		return mpmeter.UsagePage{}, readErr(ctx, err, "usage page")
	}
	if more {
		page.Next = encodeCursor(last.ts, last.key)
	}
	return page, nil
}

// UsageRecord implements mpmeter.Store, by the unique index on record_id.
func (s *Store) UsageRecord(ctx context.Context, id string) (mpmeter.MeteringRecord, error) {
	r, err := recordByID(ctx, s.rdb, s.d, id)
	if err != nil {
		return r, readErr(ctx, err, "record %q", id)
	}
	return r, nil
}

// UsageSummary implements mpmeter.Store. The database sums in two steps:
// per period, party and dimension over the integer columns of the time
// range, then per the requested grouping over those (far fewer) sums,
// joined with the dictionaries for names. Rolled-up days (rollup.go) come
// from their daily sums instead of their records when the rollup can
// answer the query (rollupAnswers); the rest of the range from the records.
func (s *Store) UsageSummary(ctx context.Context, q mpmeter.UsageSummaryQuery) iter.Seq2[mpmeter.UsageSummaryLine, error] {
	return func(yield func(mpmeter.UsageSummaryLine, error) bool) {
		fail := func(err error) { yield(mpmeter.UsageSummaryLine{}, readErr(ctx, err, "usage summary")) }
		if _, _, err := s.summarySQL(q, nil); err != nil {
			if _, none := err.(errNoMatch); !none {
				yield(mpmeter.UsageSummaryLine{}, err)
			}
			return
		}
		db, runs, done, err := s.rollupSnapshot(ctx, q.Filter, q.Period.Milliseconds(), q.ByTag)
		if err != nil {
			fail(err)
			return
		}
		defer done()
		query, args, err := s.summarySQL(q, runs)
		if err != nil {
			yield(mpmeter.UsageSummaryLine{}, err)
			return
		}
		rows, err := db.QueryContext(ctx, s.d.rebind(query), args...)
		if err != nil {
			fail(err)
			return
		}
		defer rows.Close()
		period := q.Period.Milliseconds()
		for rows.Next() {
			var l mpmeter.UsageSummaryLine
			var b int64
			if err := rows.Scan(&b, &l.ProductCode, &l.CustomerAccountID, &l.Dimension, &l.TagValue,
				&l.SellerAccountID, &l.CustomerIdentifier, &l.LicenseArn, &l.WorkloadID, &l.Quantity, &l.Records); err != nil {
				fail(err)
				return
			}
			l.Start = fromMS(b * period)
			if !yield(l, nil) {
				return
			}
		}
		if err := rows.Err(); err != nil {
			fail(err)
		}
	}
}

func (s *Store) summarySQL(q mpmeter.UsageSummaryQuery, runs []dayRun) (string, []any, error) {
	if q.Period != time.Hour && q.Period != 24*time.Hour {
		return "", nil, fmt.Errorf("sqlstore: usage summary period %v, want 1h or 24h", q.Period)
	}
	parts, args, err := s.usageParts(q.Filter, q.Period.Milliseconds(), q.ByTag, runs)
	if err != nil {
		return "", nil, err
	}
	cols := []string{"x.b"}
	sel := []string{"x.b", "''", "''", "''", "''", "''", "''", "''", "''"}
	group := func(i int, col string) {
		sel[i] = col
		cols = append(cols, col)
	}
	if q.ByProduct || q.ByParty {
		group(1, "p.product_code")
	}
	if q.ByCustomer || q.ByParty {
		group(2, "p.customer_account_id")
	}
	if q.ByDimension {
		group(3, "d.name")
	}
	if q.ByTag != "" {
		group(4, "x.tv")
	}
	if q.ByParty {
		group(5, "p.seller_account_id")
		group(6, "p.customer_identifier")
		group(7, "p.license_arn")
		group(8, "p.workload_id")
	}
	order := make([]string, len(cols))
	for i, c := range cols {
		order[i] = c
		if i > 0 {
			order[i] += s.d.collateC
		}
	}
	outer := "SELECT " + strings.Join(sel, ", ") + ", CAST(SUM(x.q) AS bigint), CAST(SUM(x.n) AS bigint) FROM (" +
		strings.Join(parts, " UNION ALL ") +
		") x CROSS JOIN usage_parties p CROSS JOIN usage_dimensions d WHERE p.id = x.party_id AND d.id = x.dimension_id GROUP BY " +
		strings.Join(cols, ", ") + " ORDER BY " + strings.Join(order, ", ")
	return outer, args, nil
}

// usageParts are the SELECTs whose UNION ALL is a summary's source: rows
// (b, party_id, dimension_id, tv, q, n) of quantity q summed over n records
// per period b (period milliseconds; 0: no b column, one period), party,
// dimension and — with byTag — value tv of that tag (empty otherwise). The days
// of runs are read from usage_daily_sums, the rest of f's range from the
// records; without runs it is one SELECT of the records.
func (s *Store) usageParts(f mpmeter.UsageFilter, period int64, byTag string, runs []dayRun) ([]string, []any, error) {
	var parts []string
	var args []any
	head, groupBy := "SELECT ", " GROUP BY 1, 2, 3"
	bucket := func(col string) string { return "" }
	if period > 0 {
		groupBy += ", 4"
		p := strconv.FormatInt(period, 10)
		bucket = func(col string) string { return col + " / " + p + " AS b, " }
	}
	records := func(g mpmeter.UsageFilter) error {
		w := &usageWhere{}
		if err := s.filterWhere(w, g); err != nil {
			return err
		}
		q := head + bucket("r.timestamp_ms") + "r.party_id, r.dimension_id, "
		if byTag != "" {
			q += s.d.tagValue + " AS tv, CAST(SUM(" + s.d.allocQuantity + ") AS bigint) AS q, COUNT(*) AS n FROM usage_records r " + s.d.allocJoin
			args = append(args, byTag)
		} else {
			q += "'' AS tv, CAST(SUM(r.quantity) AS bigint) AS q, COUNT(*) AS n FROM usage_records r"
		}
		parts = append(parts, q+w.sql()+groupBy)
		args = append(args, w.args...)
		return nil
	}
	if len(runs) == 0 {
		return parts, args, records(f)
	}
	// f's range less the runs: the gaps before, between and after them
	// (From or To zero: unbounded on that side).
	from := f.From
	for _, r := range runs {
		if from.IsZero() || ms(from) < r.from {
			g := f
			g.From, g.To = from, fromMS(r.from)
			if err := records(g); err != nil {
				return nil, nil, err
			}
		}
		from = fromMS(r.to)
	}
	if f.To.IsZero() || ms(from) < ms(f.To) {
		g := f
		g.From = from
		if err := records(g); err != nil {
			return nil, nil, err
		}
	}
	for _, r := range runs {
		w := &usageWhere{}
		if err := filterWho(w, f, "h"); err != nil {
			return nil, nil, err
		}
		w.add("h.day_ms >= ?", r.from)
		w.add("h.day_ms < ?", r.to)
		parts = append(parts, head+bucket("h.day_ms")+"h.party_id, h.dimension_id, '' AS tv, CAST(SUM(h.quantity) AS bigint) AS q, "+
			"CAST(SUM(h.records) AS bigint) AS n FROM usage_daily_sums h"+w.sql()+groupBy)
		args = append(args, w.args...)
	}
	return parts, args, nil
}

// rollupAnswers says whether the daily rollup can answer a query of f summed
// per period (milliseconds; 0: one period) and grouped by byTag: periods of
// whole days, and no allocation tag (the sums do not keep allocations).
func rollupAnswers(f mpmeter.UsageFilter, period int64, byTag string) bool {
	return (period == 0 || period == dayMS) && byTag == "" && f.TagKey == ""
}

// rollupSnapshot returns where a summary reads and the rolled-up runs of
// f's range it may read from the rollup: when the rollup can answer it, a
// read transaction (one snapshot for the runs and the query, so a day
// un-rolled in between is never missed nor counted twice); else the read
// pool and no runs. done ends the transaction.
func (s *Store) rollupSnapshot(ctx context.Context, f mpmeter.UsageFilter, period int64, byTag string) (querier, []dayRun, func(), error) {
	if !rollupAnswers(f, period, byTag) {
		return s.rdb, nil, func() {}, nil
	}
	tx, err := s.rdb.BeginTx(ctx, s.d.readSnapshot)
	if err != nil {
		return nil, nil, nil, err
	}
	done := func() { _ = tx.Rollback() } // read only: nothing to commit
	runs, err := rolledRuns(ctx, tx, s.d, f.From, f.To)
	if err != nil {
		done()
		return nil, nil, nil, err
	}
	return tx, runs, done, nil
}

// dayRun is a run of consecutive rolled-up days [from, to), unix ms.
type dayRun struct{ from, to int64 }

// maxRolledRuns bounds the runs a query reads from the rollup (each, and
// each gap between two, is a SELECT of the UNION): beyond it the shortest
// are read from their records instead, which is as right, only slower.
const maxRolledRuns = 16

// rolledRuns reads the runs of rolled-up days that lie wholly within
// [from, to) (zero: unbounded), at most maxRolledRuns of them, in order.
func rolledRuns(ctx context.Context, q querier, d *dialect, from, to time.Time) ([]dayRun, error) {
	lo, hi := int64(0), int64(math.MaxInt64)
	if !from.IsZero() {
		lo = max(lo, dayOf(ms(from)+dayMS-1)) // the first day starting at or after from
	}
	if !to.IsZero() {
		hi = ms(to) - dayMS // the last day that may end by to
	}
	if hi < lo {
		return nil, nil
	}
	rows, err := q.QueryContext(ctx, d.rebind(`SELECT day_ms FROM usage_rolled_days
		WHERE state = ? AND day_ms >= ? AND day_ms <= ? ORDER BY day_ms`), dayRolledUp, lo, hi)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var runs []dayRun
	keep := func(r dayRun) {
		runs = append(runs, r)
		if len(runs) > maxRolledRuns {
			shortest := 0
			for i, x := range runs {
				if x.to-x.from < runs[shortest].to-runs[shortest].from {
					shortest = i
				}
			}
			runs = slices.Delete(runs, shortest, shortest+1)
		}
	}
	var cur dayRun
	for rows.Next() {
		var day int64
		if err := rows.Scan(&day); err != nil {
			return nil, err
		}
		if cur.to == day && cur.to > cur.from {
			cur.to += dayMS
			continue
		}
		if cur.to > cur.from {
			keep(cur)
		}
		cur = dayRun{day, day + dayMS}
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if cur.to > cur.from {
		keep(cur)
	}
	return runs, nil // in order: keep only ever removes
}

// UsageTotals implements mpmeter.Store.
//
// When rolled-up days lie in f's range (and f has no tag filter), one query
// reads them from the daily sums and the rest from the records, in one
// snapshot. Otherwise a bounded time range is cut into usageTotalsParts
// consecutive pieces, summed by one query each on its own read connection at
// the same time and merged here, so both cores sum. Lines are ordered here,
// in byte order.
func (s *Store) UsageTotals(ctx context.Context, f mpmeter.UsageFilter) ([]mpmeter.UsageTotal, error) {
	if err := filterWho(&usageWhere{}, f, "r"); err != nil {
		if _, none := err.(errNoMatch); none {
			return []mpmeter.UsageTotal{}, nil
		}
		return nil, readErr(ctx, err, "usage totals")
	}
	type key struct{ product, customer, dimension string }
	var (
		mu     sync.Mutex
		merged = map[key]*mpmeter.UsageTotal{}
	)
	// sum runs the totals query over parts and merges its lines.
	sum := func(ctx context.Context, db querier, parts []string, args []any) error {
		q := `SELECT p.product_code, p.customer_account_id, d.name, CAST(SUM(x.q) AS bigint), CAST(SUM(x.n) AS bigint)
			FROM (` + strings.Join(parts, " UNION ALL ") + `) x
			CROSS JOIN usage_parties p CROSS JOIN usage_dimensions d WHERE p.id = x.party_id AND d.id = x.dimension_id
			GROUP BY p.product_code, p.customer_account_id, d.name`
		rows, err := db.QueryContext(ctx, s.d.rebind(q), args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var t mpmeter.UsageTotal
			if err := rows.Scan(&t.ProductCode, &t.CustomerAccountID, &t.Dimension, &t.Quantity, &t.Records); err != nil {
				return err
			}
			k := key{t.ProductCode, t.CustomerAccountID, t.Dimension}
			mu.Lock()
			if m, ok := merged[k]; ok {
				m.Quantity += t.Quantity
				m.Records += t.Records
			} else {
				merged[k] = &t
			}
			mu.Unlock()
		}
		return rows.Err()
	}
	whole := f
	whole.Limit = 0 // a limit counts lines, after merging
	db, runs, done, err := s.rollupSnapshot(ctx, whole, 0, "")
	if err != nil {
		return nil, readErr(ctx, err, "usage totals")
	}
	if len(runs) > 0 {
		err = func() error {
			defer done()
			parts, args, err := s.usageParts(whole, 0, "", runs)
			if err != nil {
				return err
			}
			return sum(ctx, db, parts, args)
		}()
	} else {
		done()
		pieces := []mpmeter.UsageFilter{whole}
		if !f.From.IsZero() && !f.To.IsZero() && f.To.Sub(f.From) >= time.Hour {
			pieces = splitRange(whole, usageTotalsParts)
		}
		g, gctx := errgroup.WithContext(ctx)
		for _, piece := range pieces {
			g.Go(func() error {
				parts, args, err := s.usageParts(piece, 0, "", nil)
				if err != nil {
					return err
				}
				return sum(gctx, s.rdb, parts, args)
			})
		}
		err = g.Wait()
	}
	if err != nil {
		return nil, readErr(ctx, err, "usage totals")
	}
	totals := make([]mpmeter.UsageTotal, 0, len(merged))
	for _, t := range merged {
		totals = append(totals, *t)
	}
	slices.SortFunc(totals, func(a, b mpmeter.UsageTotal) int {
		return cmp.Or(strings.Compare(a.ProductCode, b.ProductCode),
			strings.Compare(a.CustomerAccountID, b.CustomerAccountID),
			strings.Compare(a.Dimension, b.Dimension))
	})
	if f.Limit > 0 && len(totals) > f.Limit {
		totals = totals[:f.Limit]
	}
	return totals, nil
}

// usageTotalsParts is how many pieces UsageTotals cuts a time range into.
const usageTotalsParts = 4

// splitRange cuts f's [From, To) into n consecutive pieces, on whole
// milliseconds (what the store keeps).
func splitRange(f mpmeter.UsageFilter, n int) []mpmeter.UsageFilter {
	from, to := ms(f.From), ms(f.To)
	out := make([]mpmeter.UsageFilter, 0, n)
	for i := range n {
		p := f
		p.From = fromMS(from + (to-from)*int64(i)/int64(n))
		p.To = fromMS(from + (to-from)*int64(i+1)/int64(n))
		out = append(out, p)
	}
	return out
}
