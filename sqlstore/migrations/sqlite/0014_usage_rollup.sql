-- 0014_usage_rollup: usage summed per UTC day, so that summaries of long
-- ranges read days × lines instead of every record (docs/storage.md, "The
-- daily rollup"). Days, not hours: the service's dedup keys allow one record
-- per (agreement or workload, dimension, hour), so per-hour sums would have
-- as many rows as the records they sum.
--
-- Filled by Store.RollUpUsage (run by package rollup) for days no call can
-- store usage in any more; a record written into a rolled-up day anyway
-- (the virtual clock set back, a direct Store.RecordUsage) deletes that
-- day's row here and its sums in the same transaction (sqlstore/rollup.go).
CREATE TABLE usage_rolled_days (
    day_ms        INTEGER PRIMARY KEY, -- the UTC day's start, unix ms
    state         INTEGER NOT NULL,    -- 0: claimed by a roller (still read from records); 1: rolled up
    claim         INTEGER NOT NULL,    -- the claiming roller's random id
    claimed_at_ms INTEGER NOT NULL     -- when, by the service clock
) STRICT;
-- The sums of a rolled-up day's records per party, dimension and kind; a
-- day has rows here exactly when its usage_rolled_days row has state 1.
CREATE TABLE usage_daily_sums (
    day_ms       INTEGER NOT NULL,
    party_id     INTEGER NOT NULL, -- usage_parties
    dimension_id INTEGER NOT NULL, -- usage_dimensions
    kind         INTEGER NOT NULL, -- as usage_records.kind
    quantity     INTEGER NOT NULL, -- SUM(quantity)
    records      INTEGER NOT NULL, -- COUNT(*)
    PRIMARY KEY (day_ms, party_id, dimension_id, kind)
) STRICT, WITHOUT ROWID;
