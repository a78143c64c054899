package admin

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/mpmeter/mpmeter"
	"github.com/mpmeter/mpmeter/audit"
)

// The audit log over the API (docs/audit.md): a page of events, one event,
// and every matching event streamed as JSON lines. Events are the
// CloudTrail-style records the log stores (mpmeter.AuditEvent's JSON).

// FollowSettle is how old (by the service clock) an event must be before
// a follow=true page returns it. Events reach the database in batches,
// each node's up to audit.DefaultFlushInterval plus a write (with retries,
// about 0.7 s more) after their eventTime, so a reader at the end of the
// log could otherwise move its cursor past an event that another node (or
// a concurrent call's batch) writes a moment later with an earlier time.
const FollowSettle = 2 * time.Second

// auditSources are the source filter's values.
var auditSources = map[string]string{
	"metering":    mpmeter.AuditSourceMetering,
	"entitlement": mpmeter.AuditSourceEntitlement,
	"admin":       mpmeter.AuditSourceAdmin,
}

// AuditFilterParams are the filters of the list and the export.
type AuditFilterParams struct {
	From      time.Time `query:"from" doc:"Events at or after this time (RFC 3339; eventTime, by the service clock)."`
	Until     time.Time `query:"until" doc:"Events before this time (RFC 3339): the range is [from, until)."`
	Operation string    `query:"operation" maxLength:"256" doc:"eventName: a Metering or Entitlement Service operation (BatchMeterUsage, GetEntitlements, ...), unknown, or an admin operation id (create-access-key, ...)."`
	Account   string    `query:"account" maxLength:"64" doc:"The calling account (userIdentity.accountId)."`
	RequestID string    `query:"request_id" maxLength:"256" doc:"The x-amzn-RequestId (admin calls: X-Request-Id) of one call."`
	Error     string    `query:"error" maxLength:"256" doc:"An error code answered (InvalidTokenException, not_found, ...); any: every failed call; none: every successful one."`
	Source    string    `query:"source" enum:"metering,entitlement,admin," doc:"The API called: metering (metering-marketplace.amazonaws.com), entitlement (entitlement-marketplace.amazonaws.com) or admin (admin.mpmeter.local)."`
	Order     string    `query:"order" enum:"oldest,newest," default:"oldest" doc:"oldest first (default; the log's own order, which follow reads) or newest first."`
}

func (p AuditFilterParams) filter() mpmeter.AuditFilter {
	f := mpmeter.AuditFilter{From: p.From, To: p.Until, EventName: p.Operation, AccountID: p.Account, RequestID: p.RequestID,
		EventSource: auditSources[p.Source], ErrorCode: p.Error, Newest: p.Order == "newest"}
	switch p.Error {
	case "any":
		f.ErrorCode = mpmeter.AuditAnyError
	case "none":
		f.ErrorCode = mpmeter.AuditNoError
	}
	return f
}

type auditListIn struct {
	AuditFilterParams
	Limit  int    `query:"limit" minimum:"1" maximum:"1000" default:"100" doc:"At most this many events (1-1000)."`
	Cursor string `query:"cursor" maxLength:"512" doc:"next_cursor of an earlier page with the same filters; empty for the first."`
	Follow bool   `query:"follow" doc:"For following the log (with order=oldest): return only events at least 2 s old by the service clock, so that no event written late (by another node, or the batch of a concurrent call) is ever skipped."`
}

// AuditEventList is a page of audit events.
type AuditEventList struct {
	Items []json.RawMessage `json:"items" doc:"CloudTrail-style records (docs/audit.md)."`
	// NextCursor follows the list convention for newest first. Oldest
	// first, the log has no last page (it grows at that end): the cursor
	// after the last event is always given, and the given cursor is given
	// back on an empty page, as CloudWatch Logs' nextForwardToken does.
	NextCursor string `json:"next_cursor" doc:"Pass as cursor for the events after these. Oldest first it is always set (the log grows at its end): a page with fewer than limit items has caught up, and the same cursor later answers only newer events. Newest first it is empty on the last page."`
}

type auditEventPath struct {
	EventID string `path:"event_id" maxLength:"64" doc:"The event's eventID."`
}

type auditEventOutput struct {
	Body json.RawMessage
}

type auditExportIn struct {
	AuditFilterParams
}

func (a *API) registerAudit(api huma.API) {
	o := op("list-audit-events", http.MethodGet, "/audit/events", "A page of audit log events (CloudTrail-style records), filtered", "audit")
	huma.Register(api, o, func(ctx context.Context, in *auditListIn) (*struct{ Body AuditEventList }, error) {
		f := in.filter()
		f.Limit, f.Cursor = in.Limit, in.Cursor
		if f.Limit == 0 {
			f.Limit = mpmeter.DefaultAuditLimit
		}
		if in.Follow {
			settled := a.now().Add(-FollowSettle)
			if f.To.IsZero() || f.To.After(settled) {
				f.To = settled
			}
		}
		page, err := a.cfg.Store.AuditEvents(ctx, f)
		if err != nil {
			return nil, a.auditErr(ctx, err)
		}
		out := &struct{ Body AuditEventList }{AuditEventList{Items: make([]json.RawMessage, 0, len(page.Events)), NextCursor: page.Next}}
		for _, ev := range page.Events {
			b, err := json.Marshal(ev)
			if err != nil {
				return nil, a.storeErr(ctx, "audit event "+ev.EventID, err)
			}
			out.Body.Items = append(out.Body.Items, b)
		}
		if !f.Newest {
			// The position after the last event answered, or where the
			// caller already was.
			if n := len(page.Events); n > 0 {
				out.Body.NextCursor = mpmeter.EncodeAuditCursor(page.Events[n-1])
			} else {
				out.Body.NextCursor = in.Cursor
			}
		}
		return out, nil
	})

	huma.Register(api, op("get-audit-event", http.MethodGet, "/audit/events/{event_id}", "One audit log event by its eventID", "audit"),
		func(ctx context.Context, in *auditEventPath) (*auditEventOutput, error) {
			page, err := a.cfg.Store.AuditEvents(ctx, mpmeter.AuditFilter{EventID: in.EventID, Limit: 1})
			if err != nil {
				return nil, a.auditErr(ctx, err)
			}
			if len(page.Events) == 0 {
				return nil, notFound("audit event %q does not exist (or was purged by the retention)", in.EventID)
			}
			b, err := json.Marshal(page.Events[0])
			return &auditEventOutput{b}, a.storeErr(ctx, "audit event", err)
		})

	o = op("export-audit-events", http.MethodGet, "/audit/export", "Every matching audit log event as JSON lines, streamed", "audit")
	o.Responses = map[string]*huma.Response{"200": {Description: "One CloudTrail-style record per line (application/x-ndjson), streamed page by page. A read error after the first line aborts the connection, so a cut-short export is never taken for a whole one.",
		Content: map[string]*huma.MediaType{"application/x-ndjson": {}}}}
	huma.Register(api, o, func(ctx context.Context, in *auditExportIn) (*huma.StreamResponse, error) {
		f := in.filter()
		return &huma.StreamResponse{Body: func(hctx huma.Context) {
			hctx.SetHeader("Content-Type", "application/x-ndjson")
			hctx.SetStatus(http.StatusOK)
			w := hctx.BodyWriter()
			rc := http.NewResponseController(unwrapWriter(w))
			enc := json.NewEncoder(w)
			n := 0
			for ev, err := range audit.All(ctx, a.cfg.Store, f) {
				if err == nil {
					err = enc.Encode(ev)
				}
				if err != nil {
					if ctx.Err() == nil {
						a.cfg.Logger.Error("admin: audit export failed", "after_events", n, "err", err)
					}
					// The status is sent: only a cut connection tells the
					// client the export is incomplete.
					panic(http.ErrAbortHandler)
				}
				n++
				if n%mpmeter.MaxAuditLimit == 0 {
					rc.Flush()
				}
			}
			rc.Flush()
		}}, nil
	})
}

// unwrapWriter lets http.ResponseController reach the connection's
// flusher through writers that wrap it and implement Unwrap.
func unwrapWriter(w any) http.ResponseWriter {
	if rw, ok := w.(http.ResponseWriter); ok {
		return rw
	}
	return nil
}

// auditErr is storeErr for audit reads: a cursor the store does not
// recognise is the caller's mistake.
func (a *API) auditErr(ctx context.Context, err error) error {
	if errors.Is(err, mpmeter.ErrInvalidCursor) {
		return invalid("cursor is not a cursor this API gave")
	}
	return a.storeErr(ctx, "audit events", err)
}
