-- 0010_fault_rules: fault injection rules (package faults, docs/retries.md),
-- in the database so that every node applies the same ones. remaining is a
-- count rule's budget left (0 for rate rules), taken atomically by
-- TakeFaultCount; last_take is what the latest take got (the statement's
-- RETURNING reads it, since RETURNING sees only the new row).
CREATE TABLE fault_rules (
    id            TEXT PRIMARY KEY,
    operation     TEXT NOT NULL,   -- '' any
    account_id    TEXT NOT NULL,   -- '' any
    product_code  TEXT NOT NULL,   -- '' any
    kind          TEXT NOT NULL,
    rate          REAL NOT NULL,   -- 0 for count rules
    count         INTEGER NOT NULL, -- 0 for rate rules
    remaining     INTEGER NOT NULL,
    last_take     INTEGER NOT NULL DEFAULT 0,
    latency_ns    INTEGER NOT NULL,
    created_at_ms INTEGER NOT NULL,
    expires_at_ms INTEGER          -- NULL: never
) STRICT;
