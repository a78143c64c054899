-- 0010_fault_rules: fault injection rules (package faults, docs/retries.md),
-- in the database so that every node applies the same ones. remaining is a
-- count rule's budget left (0 for rate rules), taken atomically by
-- TakeFaultCount (the row lock serialises the nodes' takes); last_take is
-- what the latest take got (RETURNING sees only the new row).
CREATE TABLE fault_rules (
    id            text PRIMARY KEY,
    operation     text NOT NULL,
    account_id    text NOT NULL,
    product_code  text NOT NULL,
    kind          text NOT NULL,
    rate          double precision NOT NULL,
    count         bigint NOT NULL,
    remaining     bigint NOT NULL,
    last_take     bigint NOT NULL DEFAULT 0,
    latency_ns    bigint NOT NULL,
    created_at_ms bigint NOT NULL,
    expires_at_ms bigint
);
