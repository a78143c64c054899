-- 0010_audit_event_id: the admin API reads one audit event by its id
-- (GET /admin/v1/audit/events/{event_id}); without this index that is a
-- scan of the whole log.
CREATE INDEX audit_events_id ON audit_events (event_id);
