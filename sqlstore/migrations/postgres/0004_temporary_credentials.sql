-- 0003_temporary_credentials: temporary credentials (an access key with a
-- session token, optionally expiring) and the token with which a workload
-- fetches them from the container credentials endpoint.
ALTER TABLE access_keys ADD COLUMN session_token text;
ALTER TABLE access_keys ADD COLUMN expires_at_ms bigint;
ALTER TABLE access_keys ADD COLUMN credentials_token text;
-- The container credentials endpoint looks a workload's keys up by workload.
CREATE INDEX access_keys_workload ON access_keys (workload_id) WHERE workload_id IS NOT NULL;
