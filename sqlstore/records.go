package sqlstore

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/mpmeter/mpmeter"
)

// RecordUsage stores recs atomically, deduplicating by DedupKey and
// answering idempotency tokens; see mpmeter.Store.
//
// An idempotency token counts as unexpired while its ExpiresAt is after the
// record's CreatedAt: the store never reads a clock of its own, and
// CreatedAt is the service clock's "now" of the request.
func (s *Store) RecordUsage(ctx context.Context, recs []mpmeter.MeteringRecord, tok *mpmeter.IdempotencyToken) ([]mpmeter.MeteringOutcome, error) {
	if tok != nil && len(recs) != 1 {
		return nil, fmt.Errorf("sqlstore: RecordUsage: an idempotency token needs exactly 1 record, got %d", len(recs))
	}
	if len(recs) == 0 {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("sqlstore: RecordUsage: %w", err)
		}
		return []mpmeter.MeteringOutcome{}, nil
	}
	if s.group != nil {
		return s.group.submit(ctx, recs, tok)
	}
	start := time.Now()
	var out []mpmeter.MeteringOutcome
	err := s.write(ctx, "RecordUsage", func(w *txn) error {
		var err error
		out, err = recordUsageTx(w, recs, tok)
		return err
	})
	if err != nil {
		return nil, err
	}
	s.observeCommit(len(recs), time.Since(start))
	return out, nil
}

// PreviewUsage answers what RecordUsage would answer for rec and tok,
// reading on the read pool and writing nothing; see mpmeter.Store. The token
// is judged unexpired as RecordUsage judges it: ExpiresAt after
// rec.CreatedAt.
func (s *Store) PreviewUsage(ctx context.Context, rec mpmeter.MeteringRecord, tok *mpmeter.IdempotencyToken) (mpmeter.MeteringOutcome, error) {
	if tok != nil {
		var fp, id string
		var expires int64
		err := s.rst[rGetToken].QueryRowContext(ctx, tok.Scope, tok.Token).Scan(&fp, &id, &expires)
		switch {
		case errors.Is(err, sql.ErrNoRows):
		case err != nil:
			return mpmeter.MeteringOutcome{}, readErr(ctx, err, "idempotency token")
		case expires > ms(rec.CreatedAt):
			if fp != tok.Fingerprint {
				return mpmeter.MeteringOutcome{}, fmt.Errorf("token %q: %w", tok.Token, mpmeter.ErrIdempotencyConflict)
			}
			first, err := scanRecord(s.rst[rRecordByID].QueryRowContext(ctx, id))
			if err != nil {
				// Not ErrNotFound: a token naming a missing record is a
				// broken database.
				return mpmeter.MeteringOutcome{}, fmt.Errorf("sqlstore: record %q of token %q: %w", id, tok.Token, err)
			}
			return mpmeter.MeteringOutcome{Created: false, Record: first}, nil
		}
	}
	if rec.DedupKey != "" {
		stored, err := scanRecord(s.rst[rRecordByDedupKey].QueryRowContext(ctx, rec.DedupKey))
		switch {
		case err == nil:
			return mpmeter.MeteringOutcome{Created: false, Record: stored}, nil
		case !errors.Is(err, sql.ErrNoRows):
			return mpmeter.MeteringOutcome{}, readErr(ctx, err, "record with dedup key %q", rec.DedupKey)
		}
	}
	if err := ctx.Err(); err != nil {
		return mpmeter.MeteringOutcome{}, fmt.Errorf("sqlstore: PreviewUsage: %w", err)
	}
	return mpmeter.MeteringOutcome{Created: true, Record: normalize(rec)}, nil
}

// recordUsageTx is RecordUsage's work inside a write transaction that the
// caller begins and commits. It is separate so that group commit (several
// callers' RecordUsage in one transaction, one fsync) can call it once per
// caller; such a caller should wrap each call in a SAVEPOINT, so that one
// caller's error (a conflict, a duplicate id) rolls back only its records.
//
// It costs, per record, one INSERT, plus one SELECT when the record's key
// was already taken by an earlier call; a key repeated within recs costs
// nothing more. With a token, one SELECT before and one upsert after.
//
// Races (PostgreSQL; SQLite has one writer, so none happen there):
//   - Two calls inserting the same new DedupKey: the second's INSERT waits
//     for the first transaction, then does nothing if it committed (and the
//     SELECT that follows, a new statement under READ COMMITTED, sees the
//     committed row) or inserts if it rolled back.
//   - Records are inserted in DedupKey order, so two batches with
//     overlapping keys lock them in the same order and do not deadlock each
//     other (a deadlock would still be retried).
//   - Two calls with the same new token: both find no token; the second's
//     upsert waits for the first, finds an unexpired token, affects no row,
//     and the call is retried from the start, where it finds the token.
func recordUsageTx(w *txn, recs []mpmeter.MeteringRecord, tok *mpmeter.IdempotencyToken) ([]mpmeter.MeteringOutcome, error) {
	var now int64
	if tok != nil {
		now = ms(recs[0].CreatedAt)
		var fp, id string
		var expires int64
		err := w.stmt(wGetToken).QueryRowContext(w.ctx, tok.Scope, tok.Token).Scan(&fp, &id, &expires)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			// A new token.
		case err != nil:
			return nil, err
		case expires > now:
			if fp != tok.Fingerprint {
				return nil, fmt.Errorf("token %q: %w", tok.Token, mpmeter.ErrIdempotencyConflict)
			}
			rec, err := scanRecord(w.stmt(wRecordByID).QueryRowContext(w.ctx, id))
			if err != nil {
				// Not ErrNotFound: the caller looked up no row; a token
				// naming a missing record is a broken database.
				return nil, fmt.Errorf("record %q of token %q: %w", id, tok.Token, err)
			}
			return []mpmeter.MeteringOutcome{{Created: false, Record: rec}}, nil
		default:
			// Expired: replaced below.
		}
	}

	out, err := insertRecords(w, recs)
	if err != nil {
		return nil, err
	}

	if tok != nil {
		res, err := w.stmt(wPutToken).ExecContext(w.ctx, tok.Scope, tok.Token, tok.Fingerprint,
			out[0].Record.MeteringRecordID, ms(tok.ExpiresAt), now)
		if err != nil {
			return nil, err
		}
		if n, err := res.RowsAffected(); err != nil {
			return nil, err
		} else if n == 0 {
			return nil, errRetry
		}
	}
	return out, nil
}

// insertRecords inserts recs, skipping those whose DedupKey is taken, and
// returns their outcomes in recs' order.
func insertRecords(w *txn, recs []mpmeter.MeteringRecord) ([]mpmeter.MeteringOutcome, error) {
	out := make([]mpmeter.MeteringOutcome, len(recs))
	// Key order: see recordUsageTx. The sort is stable, so of records
	// sharing a key the first in recs comes first and is the one stored.
	order := make([]int, len(recs))
	for i := range order {
		order[i] = i
	}
	if len(recs) > 1 {
		slices.SortStableFunc(order, func(a, b int) int {
			return strings.Compare(recs[a].DedupKey, recs[b].DedupKey)
		})
	}
	// first[i] is the index of the record that stands for recs[i]: itself,
	// or the earlier record in this call with the same key.
	first := make([]int, len(recs))
	unique := make([]int, 0, len(recs))
	prev := -1 // the last record handled that has a DedupKey
	for _, i := range order {
		r := &recs[i]
		if r.DedupKey != "" && prev >= 0 && recs[prev].DedupKey == r.DedupKey {
			first[i] = prev
			continue
		}
		first[i] = i
		unique = append(unique, i)
		if r.DedupKey != "" {
			prev = i
		}
	}

	// One INSERT per chunk of rows; RETURNING names the rows it inserted,
	// the others found their key taken.
	inserted := make(map[string]bool, len(unique))
	for start := 0; start < len(unique); start += insertChunk {
		chunk := unique[start:min(start+insertChunk, len(unique))]
		args := make([]any, 0, len(chunk)*recordFields)
		for _, i := range chunk {
			r := &recs[i]
			allocs, err := encodeAllocations(r.Allocations)
			if err != nil {
				return nil, fmt.Errorf("record %q: %w", r.MeteringRecordID, err)
			}
			args = append(args, r.MeteringRecordID, r.Kind, r.ProductCode, r.SellerAccountID,
				r.CustomerAccountID, r.CustomerIdentifier, r.LicenseArn, r.WorkloadID, r.Dimension,
				ms(r.Timestamp), r.Quantity, allocs, nullable(r.DedupKey), r.Fingerprint, ms(r.CreatedAt))
		}
		stmt, err := w.insertStmt(len(chunk))
		if err != nil {
			return nil, err
		}
		rows, err := stmt.QueryContext(w.ctx, args...)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return nil, err
			}
			inserted[id] = true
		}
		if err := rows.Close(); err != nil {
			return nil, err
		}
		if err := rows.Err(); err != nil {
			return nil, err
		}
	}

	// The records whose key was taken: read what is stored under it.
	var taken []int
	for _, i := range unique {
		r := &recs[i]
		switch {
		case inserted[r.MeteringRecordID]:
			out[i] = mpmeter.MeteringOutcome{Created: true, Record: normalize(*r)}
		case r.DedupKey == "":
			return nil, fmt.Errorf("record %q without a dedup key was not inserted", r.MeteringRecordID)
		default:
			taken = append(taken, i)
		}
	}
	if len(taken) > 0 {
		stored, err := recordsByDedupKey(w, recs, taken)
		if err != nil {
			return nil, err
		}
		for _, i := range taken {
			rec, ok := stored[recs[i].DedupKey]
			if !ok {
				return nil, fmt.Errorf("record with dedup key %q: not inserted and not found", recs[i].DedupKey)
			}
			out[i] = mpmeter.MeteringOutcome{Created: false, Record: rec}
		}
	}
	// Same key as a record earlier in this call: its outcome's Record is
	// what is stored under the key, whether it was stored now or before.
	for i := range recs {
		if first[i] != i {
			out[i] = mpmeter.MeteringOutcome{Created: false, Record: out[first[i]].Record}
		}
	}
	return out, nil
}

// insertChunk is how many records one INSERT carries (15 parameters each,
// far below either database's parameter limit).
const insertChunk = 64

// recordFields is the number of columns of a metering record row.
const recordFields = 15

// recordsByDedupKey reads the stored records under the keys of recs[idx].
func recordsByDedupKey(w *txn, recs []mpmeter.MeteringRecord, idx []int) (map[string]mpmeter.MeteringRecord, error) {
	if len(idx) == 1 {
		r, err := scanRecord(w.stmt(wRecordByDedupKey).QueryRowContext(w.ctx, recs[idx[0]].DedupKey))
		if err != nil {
			return nil, fmt.Errorf("record with dedup key %q: %w", recs[idx[0]].DedupKey, err)
		}
		return map[string]mpmeter.MeteringRecord{r.DedupKey: r}, nil
	}
	args := make([]any, len(idx))
	for n, i := range idx {
		args[n] = recs[i].DedupKey
	}
	q := `SELECT ` + recordColumns + ` FROM metering_records WHERE dedup_key IN (?` + strings.Repeat(", ?", len(idx)-1) + `)`
	rows, err := w.tx.QueryContext(w.ctx, w.s.d.rebind(q), args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := make(map[string]mpmeter.MeteringRecord, len(idx))
	for rows.Next() {
		r, err := scanRecord(rows)
		if err != nil {
			return nil, err
		}
		out[r.DedupKey] = r
	}
	return out, rows.Err()
}

// normalize returns r as the store will read it back: times in UTC with
// millisecond precision, no allocations as nil.
func normalize(r mpmeter.MeteringRecord) mpmeter.MeteringRecord {
	r.Timestamp = fromMS(ms(r.Timestamp))
	r.CreatedAt = fromMS(ms(r.CreatedAt))
	if len(r.Allocations) == 0 {
		r.Allocations = nil
	}
	return r
}

func encodeAllocations(a []mpmeter.Allocation) (any, error) {
	if len(a) == 0 {
		return nil, nil
	}
	b, err := json.Marshal(a)
	if err != nil {
		return nil, err
	}
	return string(b), nil
}

type scanner interface{ Scan(dest ...any) error }

func scanRecord(row scanner) (mpmeter.MeteringRecord, error) {
	var r mpmeter.MeteringRecord
	var ts, created int64
	var allocs, key sql.NullString
	err := row.Scan(&r.MeteringRecordID, &r.Kind, &r.ProductCode, &r.SellerAccountID,
		&r.CustomerAccountID, &r.CustomerIdentifier, &r.LicenseArn, &r.WorkloadID, &r.Dimension,
		&ts, &r.Quantity, &allocs, &key, &r.Fingerprint, &created)
	if err != nil {
		return r, err
	}
	r.Timestamp, r.CreatedAt, r.DedupKey = fromMS(ts), fromMS(created), key.String
	if allocs.Valid {
		if err := json.Unmarshal([]byte(allocs.String), &r.Allocations); err != nil {
			return r, fmt.Errorf("record %q: allocations: %w", r.MeteringRecordID, err)
		}
	}
	return r, nil
}

// Usage returns the records matching f, ordered by Timestamp then
// MeteringRecordID. A filter on ProductCode or SellerAccountID (and a time
// range) walks an index in the result's order.
func (s *Store) Usage(ctx context.Context, f mpmeter.UsageFilter) ([]mpmeter.MeteringRecord, error) {
	q, args := usageQuery("SELECT "+recordColumns+" FROM metering_records", f, "ORDER BY timestamp_ms, metering_record_id")
	rows, err := s.rdb.QueryContext(ctx, s.d.rebind(q), args...)
	if err != nil {
		return nil, readErr(ctx, err, "usage")
	}
	defer rows.Close()
	recs := []mpmeter.MeteringRecord{}
	for rows.Next() {
		r, err := scanRecord(rows)
		if err != nil {
			return nil, readErr(ctx, err, "usage")
		}
		recs = append(recs, r)
	}
	if err := rows.Err(); err != nil {
		return nil, readErr(ctx, err, "usage")
	}
	return recs, nil
}

// UsageTotals implements mpmeter.Store.
//
// A bounded time range is cut into usageTotalsParts consecutive pieces,
// summed by one query each on its own read connection at the same time and
// merged here: the database's GROUP BY sorts every matching row, and a day
// of a busy product is hundreds of thousands of them, so the pieces keep
// both cores busy instead of one. Lines are ordered here too, in byte order
// (as SQLite's BINARY collation), so both dialects order alike whatever
// PostgreSQL's locale.
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
			q, args := usageQuery("SELECT product_code, customer_account_id, dimension, CAST(SUM(quantity) AS bigint), COUNT(*) FROM metering_records", piece,
				"GROUP BY product_code, customer_account_id, dimension")
			rows, err := s.rdb.QueryContext(gctx, s.d.rebind(q), args...)
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

// usageQuery completes a query over metering_records with f's conditions,
// then tail (ordering, grouping), then f's limit. A filter on ProductCode
// or SellerAccountID (and a time range) walks an index.
func usageQuery(head string, f mpmeter.UsageFilter, tail string) (string, []any) {
	var b strings.Builder
	var args []any
	b.WriteString(head)
	where := func(cond string, arg any) {
		if len(args) == 0 {
			b.WriteString(" WHERE ")
		} else {
			b.WriteString(" AND ")
		}
		b.WriteString(cond)
		args = append(args, arg)
	}
	if f.ProductCode != "" {
		where("product_code = ?", f.ProductCode)
	}
	if f.SellerAccountID != "" {
		where("seller_account_id = ?", f.SellerAccountID)
	}
	if f.CustomerAccountID != "" {
		where("customer_account_id = ?", f.CustomerAccountID)
	}
	if f.Kind != "" {
		where("kind = ?", f.Kind)
	}
	if !f.From.IsZero() {
		where("timestamp_ms >= ?", ms(f.From))
	}
	if !f.To.IsZero() {
		where("timestamp_ms < ?", ms(f.To))
	}
	b.WriteString(" " + tail)
	if f.Limit > 0 {
		b.WriteString(" LIMIT ?")
		args = append(args, f.Limit)
	}
	return b.String(), args
}
