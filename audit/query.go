package audit

import (
	"context"
	"encoding/json"
	"io"
	"iter"

	"github.com/mpmeter/mpmeter"
)

// Querier is the part of mpmeter.Store the audit log is read from.
type Querier interface {
	AuditEvents(ctx context.Context, f mpmeter.AuditFilter) (mpmeter.AuditPage, error)
}

// exportPage is how many events All reads per query.
const exportPage = mpmeter.MaxAuditLimit

// All yields every event matching f (its Limit and Cursor are ignored: all
// of them, from the start), page by page: memory stays one page however
// long the log, and no read transaction is held open between pages. It
// stops at the first error, yielding it.
func All(ctx context.Context, q Querier, f mpmeter.AuditFilter) iter.Seq2[mpmeter.AuditEvent, error] {
	return func(yield func(mpmeter.AuditEvent, error) bool) {
		f.Limit, f.Cursor = exportPage, ""
		for {
			page, err := q.AuditEvents(ctx, f)
			if err != nil {
				yield(mpmeter.AuditEvent{}, err)
				return
			}
			for _, ev := range page.Events {
				if !yield(ev, nil) {
					return
				}
			}
			if page.Next == "" {
				return
			}
			f.Cursor = page.Next
		}
	}
}

// ExportJSONLines writes every event matching f to w as JSON lines (one
// CloudTrail-style record per line), streamed, and returns how many.
func ExportJSONLines(ctx context.Context, q Querier, f mpmeter.AuditFilter, w io.Writer) (int, error) {
	enc := json.NewEncoder(w)
	n := 0
	for ev, err := range All(ctx, q, f) {
		if err != nil {
			return n, err
		}
		if err := enc.Encode(ev); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}
