package sqlstore

import (
	"bytes"
	"cmp"

	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/klauspost/compress/flate"

	"github.com/mpmeter/mpmeter"
)

// The audit log's table, audit_events (migration 0005): the filtered
// columns copied out of each event, and the event as JSON compressed with
// DEFLATE (RFC 1951, no header; Python: zlib.decompress(b, -15)). A
// 25-record BatchMeterUsage's event is ~7.7 kB of JSON, ~0.7 kB deflated:
// the audit log shares SQLite's one writer with the usage records, and
// bytes written are what it costs there (docs/benchmarks.md). Compressing
// happens before the write transaction, on the audit writer's goroutine,
// with klauspost/compress's DEFLATE: the same format as compress/flate's
// (rows either wrote read back with either), at BestSpeed ~2.3x faster on
// a 25-record event (9 us against 21 us, the same size), and the audit
// writer's compressing competes with the requests for the CPU.

// deflaters and inflaters reuse compressors: a flate.Writer is ~1 MB of
// state.
var (
	deflaters = sync.Pool{New: func() any {
		w, _ := flate.NewWriter(nil, flate.BestSpeed)
		return w
	}}
	inflaters = sync.Pool{New: func() any { return flate.NewReader(bytes.NewReader(nil)) }}
)

func deflate(b []byte) ([]byte, error) {
	var buf bytes.Buffer
	buf.Grow(len(b)/4 + 64)
	w := deflaters.Get().(*flate.Writer)
	defer deflaters.Put(w)
	w.Reset(&buf)
	if _, err := w.Write(b); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func inflate(b []byte) ([]byte, error) {
	r := inflaters.Get().(io.ReadCloser)
	defer inflaters.Put(r)
	if err := r.(flate.Resetter).Reset(bytes.NewReader(b), nil); err != nil {
		return nil, err
	}
	return io.ReadAll(r)
}

const auditFields = 8

const auditColumns = `event_time_ms, event_id, event_source, event_name, account_id, request_id, error_code, event`

// auditChunk is how many events one INSERT carries.
const auditChunk = 64

// insertAuditSQL inserts rows events; one already stored (a retried batch)
// is skipped.
func insertAuditSQL(rows int) string {
	row := "(?" + strings.Repeat(", ?", auditFields-1) + ")"
	return `INSERT INTO audit_events (` + auditColumns + `) VALUES ` + row + strings.Repeat(", "+row, rows-1) +
		` ON CONFLICT (event_time_ms, event_id) DO NOTHING`
}

// PutAuditEvents implements mpmeter.Store: one transaction, a multi-row
// INSERT per auditChunk events. On SQLite it queues for the one writer
// like any write, but outside group commit: the audit writer sends a few
// large batches a second, each with its own commit.
func (s *Store) PutAuditEvents(ctx context.Context, events []mpmeter.AuditEvent) error {
	if len(events) == 0 {
		return ctx.Err()
	}
	args := make([]any, 0, len(events)*auditFields)
	for i := range events {
		ev := events[i] // a copy: the caller's events are left as they are
		if ev.EventID == "" {
			return fmt.Errorf("sqlstore: PutAuditEvents: event %d has no EventID", i)
		}
		ev.EventTime = fromMS(ms(ev.EventTime)) // as it will be read back
		b, err := marshalAuditEvent(ev)
		if err == nil {
			b, err = deflate(b)
		}
		if err != nil {
			return fmt.Errorf("sqlstore: PutAuditEvents: event %s: %w", ev.EventID, err)
		}
		// The account an event belongs to: the caller's, or for an admin
		// call (whose caller has none) the account it concerns.
		account := cmp.Or(ev.UserIdentity.AccountID, ev.RecipientAccountID)
		args = append(args, ms(ev.EventTime), ev.EventID, ev.EventSource, ev.EventName,
			account, ev.RequestID, ev.ErrorCode, b)
	}
	var began time.Time
	err := s.write(ctx, "PutAuditEvents", func(w *txn) error {
		began = time.Now()
		for start := 0; start < len(events); start += auditChunk {
			n := min(auditChunk, len(events)-start)
			chunk := args[start*auditFields : (start+n)*auditFields]
			var err error
			if n == auditChunk {
				_, err = w.tx.StmtContext(w.ctx, s.auditInsert).ExecContext(w.ctx, chunk...)
			} else {
				_, err = w.exec(insertAuditSQL(n), chunk...)
			}
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err == nil && s.auditObserver != nil {
		s.auditObserver(len(events), time.Since(began))
	}
	return err
}

// rawMembers is how json.Marshal writes an event without its parameters
// and response: marshalAuditEvent puts them in its place.
const rawMembers = `"requestParameters":null,"responseElements":null`

// marshalAuditEvent is json.Marshal(ev) without scanning the parameters
// and response again: json.Marshal validates and compacts every RawMessage,
// which for a 25-record BatchMeterUsage was most of the audit writer's CPU.
// They must be valid JSON (audit.Redact writes them so); an empty one is
// null. The rest of the event is marshalled as usual, and the two members
// spliced in where it wrote them: inside a JSON string every quote is
// escaped, so the first bare occurrence of rawMembers is theirs.
func marshalAuditEvent(ev mpmeter.AuditEvent) ([]byte, error) {
	params, resp := ev.RequestParameters, ev.ResponseElements
	ev.RequestParameters, ev.ResponseElements = nil, nil
	head, err := json.Marshal(&ev)
	if err != nil {
		return nil, err
	}
	i := bytes.Index(head, []byte(rawMembers))
	if i < 0 {
		return nil, fmt.Errorf("sqlstore: the event's JSON has no %s", rawMembers)
	}
	if len(params) == 0 {
		params = json.RawMessage("null")
	}
	if len(resp) == 0 {
		resp = json.RawMessage("null")
	}
	out := make([]byte, 0, len(head)+len(params)+len(resp))
	out = append(out, head[:i]...)
	out = append(out, `"requestParameters":`...)
	out = append(out, params...)
	out = append(out, `,"responseElements":`...)
	out = append(out, resp...)
	return append(out, head[i+len(rawMembers):]...), nil
}

// AuditEvents implements mpmeter.Store. The time index orders every page;
// a filter on the account walks the account's index in the same order, one
// on the request id looks it up.
func (s *Store) AuditEvents(ctx context.Context, f mpmeter.AuditFilter) (mpmeter.AuditPage, error) {
	limit := f.Limit
	if limit <= 0 {
		limit = mpmeter.DefaultAuditLimit
	}
	limit = min(limit, mpmeter.MaxAuditLimit)
	var conds []string
	var args []any
	where := func(cond string, a ...any) {
		conds = append(conds, cond)
		args = append(args, a...)
	}
	if !f.From.IsZero() {
		where("event_time_ms >= ?", ms(f.From))
	}
	if !f.To.IsZero() {
		where("event_time_ms < ?", ms(f.To))
	}
	if f.EventName != "" {
		where("event_name = ?", f.EventName)
	}
	if f.EventSource != "" {
		where("event_source = ?", f.EventSource)
	}
	if f.AccountID != "" {
		where("account_id = ?", f.AccountID)
	}
	if f.RequestID != "" {
		where("request_id = ?", f.RequestID)
	}
	if f.EventID != "" {
		where("event_id = ?", f.EventID)
	}
	switch f.ErrorCode {
	case "":
	case mpmeter.AuditAnyError:
		where("error_code <> ''")
	case mpmeter.AuditNoError:
		where("error_code = ''")
	default:
		where("error_code = ?", f.ErrorCode)
	}
	cmpOp, dir := ">", "ASC"
	if f.Newest {
		cmpOp, dir = "<", "DESC"
	}
	if f.Cursor != "" {
		c, err := mpmeter.ParseAuditCursor(f.Cursor)
		if err != nil {
			return mpmeter.AuditPage{}, fmt.Errorf("sqlstore: audit events: %w", err)
		}
		t := ms(c.EventTime)
		where("(event_time_ms "+cmpOp+" ? OR (event_time_ms = ? AND event_id "+cmpOp+" ?))", t, t, c.EventID)
	}
	q := "SELECT event FROM audit_events"
	if len(conds) > 0 {
		q += " WHERE " + strings.Join(conds, " AND ")
	}
	q += " ORDER BY event_time_ms " + dir + ", event_id " + dir + " LIMIT ?"
	args = append(args, limit+1)
	rows, err := s.rdb.QueryContext(ctx, s.d.rebind(q), args...)
	if err != nil {
		return mpmeter.AuditPage{}, readErr(ctx, err, "audit events")
	}
	defer rows.Close()
	page := mpmeter.AuditPage{Events: []mpmeter.AuditEvent{}}
	for rows.Next() {
		var packed []byte
		if err := rows.Scan(&packed); err != nil {
			return mpmeter.AuditPage{}, readErr(ctx, err, "audit events")
		}
		raw, err := inflate(packed)
		if err != nil {
			return mpmeter.AuditPage{}, fmt.Errorf("sqlstore: audit event: %w", err)
		}
		var ev mpmeter.AuditEvent
		if err := json.Unmarshal(raw, &ev); err != nil {
			return mpmeter.AuditPage{}, fmt.Errorf("sqlstore: audit event: %w", err)
		}
		ev.EventTime = ev.EventTime.UTC()
		// A nil RawMessage is written as null; read it back as nil.
		if string(ev.RequestParameters) == "null" {
			ev.RequestParameters = nil
		}
		if string(ev.ResponseElements) == "null" {
			ev.ResponseElements = nil
		}
		page.Events = append(page.Events, ev)
	}
	if err := rows.Err(); err != nil {
		return mpmeter.AuditPage{}, readErr(ctx, err, "audit events")
	}
	if len(page.Events) > limit {
		page.Events = page.Events[:limit]
		page.Next = mpmeter.EncodeAuditCursor(page.Events[limit-1])
	}
	return page, nil
}

// PurgeAuditEvents implements mpmeter.Store: the oldest events first, by
// the time index, at most limit of them in one short transaction.
func (s *Store) PurgeAuditEvents(ctx context.Context, before time.Time, limit int) (int, error) {
	if limit <= 0 {
		return 0, fmt.Errorf("sqlstore: PurgeAuditEvents: limit must be positive, got %d", limit)
	}
	var n int64
	err := s.write(ctx, "PurgeAuditEvents", func(w *txn) error {
		res, err := w.exec(`DELETE FROM audit_events WHERE (event_time_ms, event_id) IN (
			SELECT event_time_ms, event_id FROM audit_events WHERE event_time_ms < ?
			ORDER BY event_time_ms, event_id LIMIT ?)`, ms(before), limit)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	return int(n), err
}
