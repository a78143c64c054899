-- 0005_audit_events: the audit log (package audit, docs/audit.md). One row
-- per call, written in batches by one goroutine per node, never on the
-- request's own transaction. The columns a query filters on are copied out
-- of the event; event is the whole CloudTrail-style record, as JSON
-- compressed with DEFLATE (RFC 1951).
-- (event_time_ms, event_id) is unique, orders pages and makes a retried
-- batch a no-op.
CREATE TABLE audit_events (
    event_time_ms bigint NOT NULL,
    event_id      text NOT NULL,
    event_source  text NOT NULL,
    event_name    text NOT NULL,
    account_id    text NOT NULL, -- '' when the call was not authenticated
    request_id    text NOT NULL,
    error_code    text NOT NULL, -- '' on success
    event         bytea NOT NULL -- the JSON record, DEFLATE-compressed (sqlstore/audit.go)
);
CREATE UNIQUE INDEX audit_events_time ON audit_events (event_time_ms, event_id);
CREATE INDEX audit_events_account ON audit_events (account_id, event_time_ms, event_id);
CREATE INDEX audit_events_request ON audit_events (request_id);
