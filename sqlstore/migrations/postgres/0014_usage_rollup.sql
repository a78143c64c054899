-- 0014_usage_rollup: usage summed per UTC day, PostgreSQL dialect;
-- migrations/sqlite/0014_usage_rollup.sql explains.
CREATE TABLE usage_rolled_days (
    day_ms        bigint PRIMARY KEY,
    state         smallint NOT NULL,
    claim         bigint NOT NULL,
    claimed_at_ms bigint NOT NULL
);
CREATE TABLE usage_daily_sums (
    day_ms       bigint NOT NULL,
    party_id     bigint NOT NULL,
    dimension_id bigint NOT NULL,
    kind         smallint NOT NULL,
    quantity     bigint NOT NULL,
    records      bigint NOT NULL,
    PRIMARY KEY (day_ms, party_id, dimension_id, kind)
);
