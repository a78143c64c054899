package sqlstore

import (
	"cmp"
	"context"
	"fmt"
	"iter"
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
// range reads the whole table.

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
		w.add("r.party_id IN (SELECT id FROM usage_parties WHERE "+strings.Join(pc, " AND ")+")", pa...)
	}
	if f.Dimension != "" {
		w.add("r.dimension_id IN (SELECT id FROM usage_dimensions WHERE name = ?)", f.Dimension)
	}
	if f.Kind != "" {
		k, ok := kindCodes[f.Kind]
		if !ok {
			return errNoMatch{}
		}
		w.add("r.kind = ?", k)
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
// joined with the dictionaries for names.
func (s *Store) UsageSummary(ctx context.Context, q mpmeter.UsageSummaryQuery) iter.Seq2[mpmeter.UsageSummaryLine, error] {
	return func(yield func(mpmeter.UsageSummaryLine, error) bool) {
		query, args, err := s.summarySQL(q)
		if _, none := err.(errNoMatch); none {
			return
		} else if err != nil {
			yield(mpmeter.UsageSummaryLine{}, err)
			return
		}
		rows, err := s.rdb.QueryContext(ctx, s.d.rebind(query), args...)
		if err != nil {
			yield(mpmeter.UsageSummaryLine{}, readErr(ctx, err, "usage summary"))
			return
		}
		defer rows.Close()
		period := q.Period.Milliseconds()
		for rows.Next() {
			var l mpmeter.UsageSummaryLine
			var b int64
			if err := rows.Scan(&b, &l.ProductCode, &l.CustomerAccountID, &l.Dimension, &l.TagValue, &l.Quantity, &l.Records); err != nil {
				yield(mpmeter.UsageSummaryLine{}, readErr(ctx, err, "usage summary"))
				return
			}
			l.Start = fromMS(b * period)
			if !yield(l, nil) {
				return
			}
		}
		if err := rows.Err(); err != nil {
			yield(mpmeter.UsageSummaryLine{}, readErr(ctx, err, "usage summary"))
		}
	}
}

func (s *Store) summarySQL(q mpmeter.UsageSummaryQuery) (string, []any, error) {
	if q.Period != time.Hour && q.Period != 24*time.Hour {
		return "", nil, fmt.Errorf("sqlstore: usage summary period %v, want 1h or 24h", q.Period)
	}
	period := strconv.FormatInt(q.Period.Milliseconds(), 10)
	w := &usageWhere{}
	var args []any
	inner := "SELECT r.timestamp_ms / " + period + " AS b, r.party_id, r.dimension_id, "
	if q.ByTag != "" {
		inner += s.d.tagValue + " AS tv, CAST(SUM(" + s.d.allocQuantity + ") AS bigint) AS q, COUNT(*) AS n FROM usage_records r " + s.d.allocJoin
		args = append(args, q.ByTag)
	} else {
		inner += "'' AS tv, CAST(SUM(r.quantity) AS bigint) AS q, COUNT(*) AS n FROM usage_records r"
	}
	if err := s.filterWhere(w, q.Filter); err != nil {
		return "", nil, err
	}
	inner += w.sql() + " GROUP BY 1, 2, 3, 4"
	args = append(args, w.args...)
	cols := []string{"x.b"}
	sel := []string{"x.b", "''", "''", "''", "''"}
	if q.ByProduct {
		sel[1] = "p.product_code"
		cols = append(cols, "p.product_code")
	}
	if q.ByCustomer {
		sel[2] = "p.customer_account_id"
		cols = append(cols, "p.customer_account_id")
	}
	if q.ByDimension {
		sel[3] = "d.name"
		cols = append(cols, "d.name")
	}
	if q.ByTag != "" {
		sel[4] = "x.tv"
		cols = append(cols, "x.tv")
	}
	order := make([]string, len(cols))
	for i, c := range cols {
		order[i] = c
		if i > 0 {
			order[i] += s.d.collateC
		}
	}
	outer := "SELECT " + strings.Join(sel, ", ") + ", CAST(SUM(x.q) AS bigint), CAST(SUM(x.n) AS bigint) FROM (" + inner +
		") x CROSS JOIN usage_parties p CROSS JOIN usage_dimensions d WHERE p.id = x.party_id AND d.id = x.dimension_id GROUP BY " +
		strings.Join(cols, ", ") + " ORDER BY " + strings.Join(order, ", ")
	return outer, args, nil
}

// UsageTotals implements mpmeter.Store.
//
// A bounded time range is cut into usageTotalsParts consecutive pieces,
// summed by one query each on its own read connection at the same time and
// merged here, so both cores sum. Lines are ordered here, in byte order.
func (s *Store) UsageTotals(ctx context.Context, f mpmeter.UsageFilter) ([]mpmeter.UsageTotal, error) {
	whole := f
	whole.Limit = 0 // a limit counts lines, after merging
	pieces := []mpmeter.UsageFilter{whole}
	if !f.From.IsZero() && !f.To.IsZero() && f.To.Sub(f.From) >= time.Hour {
		pieces = splitRange(whole, usageTotalsParts)
	}
	type key struct{ product, customer, dimension string }
	var (
		mu     sync.Mutex
		merged = map[key]*mpmeter.UsageTotal{}
	)
	g, gctx := errgroup.WithContext(ctx)
	for _, piece := range pieces {
		g.Go(func() error {
			w := &usageWhere{}
			if err := s.filterWhere(w, piece); err != nil {
				if _, none := err.(errNoMatch); none {
					return nil
				}
				return err
			}
			q := `SELECT p.product_code, p.customer_account_id, d.name, CAST(SUM(x.q) AS bigint), CAST(SUM(x.n) AS bigint)
				FROM (SELECT r.party_id, r.dimension_id, CAST(SUM(r.quantity) AS bigint) AS q, COUNT(*) AS n FROM usage_records r` +
				w.sql() + ` GROUP BY r.party_id, r.dimension_id) x
				CROSS JOIN usage_parties p CROSS JOIN usage_dimensions d WHERE p.id = x.party_id AND d.id = x.dimension_id
				GROUP BY p.product_code, p.customer_account_id, d.name`
			rows, err := s.rdb.QueryContext(gctx, s.d.rebind(q), w.args...)
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
		})
	}
	if err := g.Wait(); err != nil {
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
