package sqlstore

import (
	"bytes"
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

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
	prep, err := s.prepareRecords(ctx, s.rdb, recs)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: RecordUsage: %w", err)
	}
	if s.group != nil {
		return s.group.submit(ctx, prep, tok)
	}
	start := time.Now()
	var out []mpmeter.MeteringOutcome
	err = s.write(ctx, "RecordUsage", func(w *txn) error {
		var err error
		out, err = recordUsageTx(w, prep, tok)
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
			first, err := recordByID(ctx, s.rdb, s.d, id)
			if err != nil {
				// Not ErrNotFound: a token naming a missing record is a
				// broken database.
				return mpmeter.MeteringOutcome{}, fmt.Errorf("sqlstore: record %q of token %q: %w", id, tok.Token, err)
			}
			return mpmeter.MeteringOutcome{Created: false, Record: first}, nil
		}
	}
	if rec.DedupKey != "" {
		one, err := newRecordInput(&rec)
		if err != nil {
			return mpmeter.MeteringOutcome{}, fmt.Errorf("sqlstore: PreviewUsage: %w", err)
		}
		in := []recordInput{one}
		if err := s.resolveRefs(ctx, s.rdb, in, false, nil); err != nil {
			return mpmeter.MeteringOutcome{}, readErr(ctx, err, "record with dedup key %q", rec.DedupKey)
		}
		if in[0].refs.anchor != 0 { // else no key with this anchor is stored
			stored, err := recordsBySlot(ctx, s.rdb, s.d, []*dedupParts{in[0].dedup}, []int64{in[0].refs.anchor})
			if err != nil {
				return mpmeter.MeteringOutcome{}, readErr(ctx, err, "record with dedup key %q", rec.DedupKey)
			}
			if r, ok := stored[slotOf(in[0].dedup)]; ok {
				return mpmeter.MeteringOutcome{Created: false, Record: r}, nil
			}
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
func recordUsageTx(w *txn, p *preparedRecords, tok *mpmeter.IdempotencyToken) ([]mpmeter.MeteringOutcome, error) {
	var now int64
	if tok != nil {
		now = ms(p.recs[0].CreatedAt)
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
			rec, err := recordByID(w.ctx, w.tx, w.s.d, id)
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

	out, err := insertRecords(w, p)
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

// recordInput is one record on its way into usage_records: its stored
// columns, computed once, before the write transaction.
type recordInput struct {
	rec    *mpmeter.MeteringRecord
	key    []byte // stored record id
	text   bool   // key is the id's text
	kind   int64
	allocs any // encodeAllocations
	fp     any // compactFingerprint
	party  party
	dedup  *dedupParts // nil: no dedup key
	refs   recordRefs
}

func newRecordInput(r *mpmeter.MeteringRecord) (recordInput, error) {
	kind, err := kindCode(r.Kind)
	if err != nil {
		return recordInput{}, fmt.Errorf("record %q: %w", r.MeteringRecordID, err)
	}
	allocs, err := encodeAllocations(r.Allocations)
	if err != nil {
		return recordInput{}, fmt.Errorf("record %q: %w", r.MeteringRecordID, err)
	}
	in := recordInput{rec: r, kind: kind, allocs: allocs, fp: compactFingerprint(r.Fingerprint, r.Quantity),
		party: party{r.ProductCode, r.SellerAccountID, r.CustomerAccountID, r.CustomerIdentifier, r.LicenseArn, r.WorkloadID}}
	in.key, in.text = recordKey(r.MeteringRecordID)
	if r.DedupKey != "" {
		p := splitDedupKey(r)
		in.dedup = &p
	}
	return in, nil
}

// appendArgs appends in's usage_records columns, in recordColumns' order.
func (in *recordInput) appendArgs(args []any) []any {
	r := in.rec
	var format, hour, anchor, digest, tpl any
	if in.text {
		format = 1
	}
	if in.dedup != nil {
		hour, anchor, digest, tpl = in.dedup.hour, in.refs.anchor, in.dedup.digest, in.refs.tpl
	}
	return append(args, ms(r.Timestamp), in.key, format, in.kind, in.refs.party, in.refs.dim,
		r.Quantity, in.allocs, hour, anchor, digest, tpl, in.fp, ms(r.CreatedAt))
}

// slotOf names a record's dedup slot in maps.
func slotOf(p *dedupParts) string { return strconv.FormatInt(p.hour, 10) + "/" + string(p.digest) }

// preparedRecords is one RecordUsage call made ready for its write
// transaction. Everything that does not need the transaction — validating
// kinds, encoding ids, keys and allocations, the key order, repeats within
// the call, and the dictionary ids already committed (from the cache, else
// one read on the read pool) — is done by the caller's goroutine before it
// queues. SQLite has one writer and it bounds BatchMeterUsage, so the writer
// is left the INSERT and the dictionary rows that do not exist yet. (Without
// group commit — PostgreSQL — the ids are left to the transaction.)
type preparedRecords struct {
	recs []mpmeter.MeteringRecord
	ins  []recordInput // one per record, in recs' order
	// first[i] is the index of the record that stands for recs[i]: itself,
	// or the earlier record in this call with the same key.
	first []int
	// unique are the records that stand for themselves, in key order (see
	// recordUsageTx).
	unique []int
}

// prepareRecords computes recs' stored form; see preparedRecords. q reads
// the committed dictionary rows the cache does not hold (the read pool).
func (s *Store) prepareRecords(ctx context.Context, q dictQuerier, recs []mpmeter.MeteringRecord) (*preparedRecords, error) {
	p := &preparedRecords{recs: recs, ins: make([]recordInput, len(recs)), first: make([]int, len(recs))}
	for i := range recs {
		in, err := newRecordInput(&recs[i])
		if err != nil {
			return nil, err
		}
		p.ins[i] = in
	}
	// Key order. The sort is stable, so of records sharing a key the first
	// in recs comes first and is the one stored.
	order := make([]int, len(recs))
	for i := range order {
		order[i] = i
	}
	if len(recs) > 1 {
		slices.SortStableFunc(order, func(a, b int) int {
			da, db := p.ins[a].dedup, p.ins[b].dedup
			switch {
			case da == nil && db == nil:
				return 0
			case da == nil:
				return -1
			case db == nil:
				return 1
			}
			return cmp.Or(cmp.Compare(da.hour, db.hour), bytes.Compare(da.digest, db.digest))
		})
	}
	p.unique = make([]int, 0, len(recs))
	prev := -1 // the last record handled that has a DedupKey
	for _, i := range order {
		d := p.ins[i].dedup
		if d != nil && prev >= 0 && p.ins[prev].dedup.hour == d.hour && bytes.Equal(p.ins[prev].dedup.digest, d.digest) {
			p.first[i] = prev
			continue
		}
		p.first[i] = i
		p.unique = append(p.unique, i)
		if d != nil {
			prev = i
		}
	}
	if s.group == nil {
		// No single writer to spare (PostgreSQL): the transaction resolves
		// the ids in the round trips it makes anyway.
		return p, nil
	}
	uniq := p.uniqueInputs()
	var found []interned
	if err := s.resolveRefs(ctx, q, uniq, false, &found); err != nil {
		return nil, readErr(ctx, err, "dictionary ids")
	}
	s.dicts.publish(found) // read from committed rows: good for good
	for n, i := range p.unique {
		p.ins[i].refs = uniq[n].refs
	}
	return p, nil
}

// uniqueInputs copies the inputs of p's unique records, so that a
// transaction can fill in the ids it creates without touching p: a
// transaction that rolls back and is run again must start from the ids
// that are committed.
func (p *preparedRecords) uniqueInputs() []recordInput {
	uniq := make([]recordInput, len(p.unique))
	for n, i := range p.unique {
		uniq[n] = p.ins[i]
	}
	return uniq
}

// insertRecords inserts p's records, skipping those whose DedupKey is
// taken, and returns their outcomes in recs' order.
func insertRecords(w *txn, p *preparedRecords) ([]mpmeter.MeteringOutcome, error) {
	recs := p.recs
	out := make([]mpmeter.MeteringOutcome, len(recs))
	uniq := p.uniqueInputs()
	if err := w.s.resolveRefs(w.ctx, w.tx, uniq, true, &w.pending); err != nil {
		return nil, err
	}

	// One INSERT per chunk of rows; RETURNING names the rows it inserted,
	// the others found their key taken.
	inserted := make(map[string]bool, len(uniq))
	args := make([]any, 0, min(len(uniq), insertChunk)*recordFields)
	for start := 0; start < len(uniq); start += insertChunk {
		chunk := uniq[start:min(start+insertChunk, len(uniq))]
		args = args[:0]
		for n := range chunk {
			args = chunk[n].appendArgs(args)
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
			var id []byte
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return nil, err
			}
			inserted[string(id)] = true
		}
		if err := rows.Close(); err != nil {
			return nil, err
		}
		if err := rows.Err(); err != nil {
			return nil, err
		}
	}

	// The records whose key was taken: read what is stored under it.
	var taken []int // indexes into uniq
	for n := range uniq {
		in := &uniq[n]
		switch {
		case inserted[string(in.key)]:
			out[p.unique[n]] = mpmeter.MeteringOutcome{Created: true, Record: normalize(*in.rec)}
		case in.dedup == nil:
			return nil, fmt.Errorf("record %q without a dedup key was not inserted", in.rec.MeteringRecordID)
		default:
			taken = append(taken, n)
		}
	}
	if len(taken) > 0 {
		parts := make([]*dedupParts, len(taken))
		anchors := make([]int64, len(taken))
		for k, n := range taken {
			parts[k], anchors[k] = uniq[n].dedup, uniq[n].refs.anchor
		}
		stored, err := recordsBySlot(w.ctx, w.tx, w.s.d, parts, anchors)
		if err != nil {
			return nil, err
		}
		for _, n := range taken {
			rec, ok := stored[slotOf(uniq[n].dedup)]
			if !ok {
				return nil, fmt.Errorf("record with dedup key %q: not inserted and not found", uniq[n].rec.DedupKey)
			}
			out[p.unique[n]] = mpmeter.MeteringOutcome{Created: false, Record: rec}
		}
	}
	// Same key as a record earlier in this call: its outcome's Record is
	// what is stored under the key, whether it was stored now or before.
	for i := range recs {
		if p.first[i] != i {
			out[i] = mpmeter.MeteringOutcome{Created: false, Record: out[p.first[i]].Record}
		}
	}
	if err := unrollDays(w, recs); err != nil { // after the INSERT: see unrollDays
		return nil, err
	}
	return out, nil
}

// insertChunk is how many records one INSERT carries (14 parameters each,
// far below either database's parameter limit).
const insertChunk = 64

// recordFields is the number of columns of a usage_records row.
const recordFields = 14

// querier runs a query: a transaction or a pool.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// recordsBySlot reads the stored records in the given dedup slots, keyed by
// slotOf.
func recordsBySlot(ctx context.Context, q querier, d *dialect, slots []*dedupParts, anchors []int64) (map[string]mpmeter.MeteringRecord, error) {
	var b strings.Builder
	args := make([]any, 0, 2*len(slots))
	b.WriteString(selectRecords + ` WHERE ` + joinRecords + ` AND (`)
	for n, p := range slots {
		if n > 0 {
			b.WriteString(" OR ")
		}
		b.WriteString("(r.dedup_hour = ? AND r.dedup_anchor_id = ? AND r.dedup_digest = ?)")
		args = append(args, p.hour, anchors[n], p.digest)
	}
	b.WriteString(")")
	rows, err := q.QueryContext(ctx, d.rebind(b.String()), args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := make(map[string]mpmeter.MeteringRecord, len(slots))
	for rows.Next() {
		r, st, err := scanStored(rows)
		if err != nil {
			return nil, err
		}
		out[strconv.FormatInt(st.dedupHour, 10)+"/"+string(st.digest)] = r
	}
	return out, rows.Err()
}

// recordByID reads the stored record with this MeteringRecordID.
func recordByID(ctx context.Context, q querier, d *dialect, id string) (mpmeter.MeteringRecord, error) {
	key, _ := recordKey(id)
	rows, err := q.QueryContext(ctx, d.rebind(selectRecords+` WHERE `+joinRecords+` AND r.record_id = ?`), key)
	if err != nil {
		return mpmeter.MeteringRecord{}, err
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return mpmeter.MeteringRecord{}, err
		}
		return mpmeter.MeteringRecord{}, sql.ErrNoRows
	}
	r, _, err := scanStored(rows)
	return r, err
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

// selectRecords reads records with their dictionary values. CROSS JOIN
// keeps SQLite from reordering: usage_records drives (in its primary key's
// time order), the dictionaries are looked up by id; PostgreSQL treats it
// as an inner join.
const selectRecords = `SELECT r.timestamp_ms, r.record_id, r.record_id_format, r.kind, p.product_code, p.seller_account_id,
	p.customer_account_id, p.customer_identifier, p.license_arn, p.workload_id, d.name, r.quantity, r.allocations,
	r.dedup_hour, r.dedup_digest, t.template, r.fingerprint, r.created_at_ms
	FROM usage_records r CROSS JOIN usage_parties p CROSS JOIN usage_dimensions d
	LEFT JOIN usage_dedup_templates t ON t.id = r.dedup_template_id`

// joinRecords completes selectRecords' joins; queries put it first in WHERE.
const joinRecords = `p.id = r.party_id AND d.id = r.dimension_id`

// storedKeys are a row's stored keys, besides the record.
type storedKeys struct {
	ts        int64
	key       []byte
	dedupHour int64
	digest    []byte
}

func scanStored(row scanner) (mpmeter.MeteringRecord, storedKeys, error) {
	var r mpmeter.MeteringRecord
	var st storedKeys
	var format, hour sql.NullInt64
	var kind, created int64
	var allocs, tpl, fp sql.NullString
	err := row.Scan(&st.ts, &st.key, &format, &kind, &r.ProductCode, &r.SellerAccountID,
		&r.CustomerAccountID, &r.CustomerIdentifier, &r.LicenseArn, &r.WorkloadID, &r.Dimension,
		&r.Quantity, &allocs, &hour, &st.digest, &tpl, &fp, &created)
	if err != nil {
		return r, st, err
	}
	if r.MeteringRecordID, err = recordIDOf(st.key, format.Valid); err != nil {
		return r, st, err
	}
	r.Kind = kindNames[kind]
	r.Timestamp, r.CreatedAt = fromMS(st.ts), fromMS(created)
	st.dedupHour = hour.Int64
	if tpl.Valid {
		r.DedupKey = renderDedupKey(tpl.String, hour.Int64, &r)
	}
	if fp.Valid {
		r.Fingerprint = fp.String
	} else {
		r.Fingerprint = "q=" + strconv.FormatInt(r.Quantity, 10)
	}
	if allocs.Valid {
		if err := json.Unmarshal([]byte(allocs.String), &r.Allocations); err != nil {
			return r, st, fmt.Errorf("record %q: allocations: %w", r.MeteringRecordID, err)
		}
	}
	return r, st, nil
}
