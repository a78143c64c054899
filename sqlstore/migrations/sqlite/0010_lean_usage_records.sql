-- 0005_lean_usage_records: metering records in lean rows (sqlstore/encode.go
-- says how each field is kept). metering_records is copied over by the Go
-- step of this migration (migrateLeanRecords) in the same transaction, then
-- dropped; a view of the same name and columns keeps ad-hoc SQL working.
--
-- Dictionaries: rows are only ever added, never changed or deleted, so their
-- ids can be cached by every node.
CREATE TABLE usage_parties (
    id                  INTEGER PRIMARY KEY,
    product_code        TEXT NOT NULL,
    seller_account_id   TEXT NOT NULL,
    customer_account_id TEXT NOT NULL,
    customer_identifier TEXT NOT NULL,
    license_arn         TEXT NOT NULL,
    workload_id         TEXT NOT NULL,
    CONSTRAINT usage_parties_key UNIQUE (product_code, seller_account_id, customer_account_id,
        customer_identifier, license_arn, workload_id)
) STRICT;
CREATE TABLE usage_dimensions (
    id   INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE
) STRICT;
CREATE TABLE usage_dedup_templates (
    id       INTEGER PRIMARY KEY,
    template TEXT NOT NULL UNIQUE
) STRICT;
-- The longest '|'-separated part of a dedup key (sqlstore.dedupAnchor): a
-- license ARN or workload id for the service's keys.
CREATE TABLE usage_dedup_anchors (
    id    INTEGER PRIMARY KEY,
    value TEXT NOT NULL UNIQUE
) STRICT;

-- The usage log, clustered by time: the primary key (timestamp, id) is the
-- order every usage query reads in, and new records land in its recent end.
-- Three B-trees per record: this table, usage_records_id and
-- usage_records_dedup, each written near its end.
CREATE TABLE usage_records (
    timestamp_ms      INTEGER NOT NULL,
    record_id         BLOB NOT NULL,    -- 16 bytes of a UUID, or the id's text (record_id_format 1)
    record_id_format  INTEGER,          -- NULL: UUID; 1: text
    kind              INTEGER NOT NULL, -- 1 BatchMeterUsage, 2 MeterUsage, 3 RegisterUsage
    party_id          INTEGER NOT NULL, -- usage_parties
    dimension_id      INTEGER NOT NULL, -- usage_dimensions
    quantity          INTEGER NOT NULL,
    allocations       TEXT,             -- JSON array of mpmeter.Allocation; NULL when none
    dedup_hour        INTEGER,          -- NULL: no dedup key; else the number the key ends with, or 0
    dedup_anchor_id   INTEGER,          -- usage_dedup_anchors
    dedup_digest      BLOB,             -- first 16 bytes of SHA-256(dedup key)
    dedup_template_id INTEGER,          -- usage_dedup_templates
    fingerprint       TEXT,             -- NULL: "q=<quantity>"
    created_at_ms     INTEGER NOT NULL,
    PRIMARY KEY (timestamp_ms, record_id)
) STRICT, WITHOUT ROWID;
-- A record by its MeteringRecordId (idempotency tokens' answers, the admin
-- API); unique, as ids are. UUIDv7 ids grow, so inserts append.
CREATE UNIQUE INDEX usage_records_id ON usage_records (record_id);
-- Exactly-once: one record per dedup slot. Leads with the key's hour and
-- anchor (both functions of the key, so this is unique exactly when the key
-- is), so one hour's keys sit together, grouped by agreement or workload.
-- NULLs (no key) never collide.
CREATE UNIQUE INDEX usage_records_dedup ON usage_records (dedup_hour, dedup_anchor_id, dedup_digest);

-- Purging expired tokens reads them in expiry order.
CREATE INDEX idempotency_tokens_expiry ON idempotency_tokens (expires_at_ms);
CREATE INDEX registration_tokens_expiry ON registration_tokens (expires_at_ms);
