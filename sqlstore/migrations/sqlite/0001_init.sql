-- 0001_init: the whole schema, SQLite dialect. migrations/postgres/0001_init.sql
-- is the same schema; keep the two in step (same tables, columns, constraints
-- and index names).
--
-- Conventions, shared by both dialects:
--   * Times are INTEGER unix milliseconds, UTC (columns named *_ms). One
--     integer type on both dialects means the Go code converts times in one
--     place and both databases sort and compare them the same way.
--   * Tables are STRICT: a value of the wrong type is an error, not silently
--     stored as whatever SQLite's type affinity makes of it.
--   * Columns that take part in a UNIQUE constraint but may be absent
--     (metering_records.dedup_key, subscriptions.customer_identifier) are
--     NULL when absent: NULLs never collide, so "no key" is allowed many times.
--   * Nothing is ever deleted except product dimensions (replaced on PutProduct).

CREATE TABLE accounts (
    id   TEXT PRIMARY KEY,
    name TEXT NOT NULL
) STRICT;

-- workload_* are all NULL for a key that belongs to an account, all non-NULL
-- for a buyer workload's key.
CREATE TABLE access_keys (
    id                TEXT PRIMARY KEY,
    secret            TEXT NOT NULL,
    account_id        TEXT NOT NULL REFERENCES accounts (id),
    workload_id       TEXT,
    workload_platform TEXT,
    workload_region   TEXT
) STRICT;

CREATE TABLE products (
    code              TEXT PRIMARY KEY,
    seller_account_id TEXT NOT NULL REFERENCES accounts (id),
    type              TEXT NOT NULL
) STRICT;

-- position keeps the order dimensions were put in.
CREATE TABLE product_dimensions (
    product_code TEXT NOT NULL REFERENCES products (code) ON DELETE CASCADE,
    position     INTEGER NOT NULL,
    name         TEXT NOT NULL,
    PRIMARY KEY (product_code, name)
) STRICT, WITHOUT ROWID;

CREATE TABLE subscriptions (
    license_arn         TEXT PRIMARY KEY,
    account_id          TEXT NOT NULL REFERENCES accounts (id),
    product_code        TEXT NOT NULL REFERENCES products (code),
    customer_identifier TEXT, -- NULL when the subscription has none
    status              TEXT NOT NULL,
    created_at_ms       INTEGER NOT NULL,
    CONSTRAINT subscriptions_customer UNIQUE (product_code, customer_identifier)
) STRICT;
-- SubscriptionsOf: the account's subscriptions to a product, oldest first.
CREATE INDEX subscriptions_account_product ON subscriptions (account_id, product_code, created_at_ms);

CREATE TABLE registration_tokens (
    token         TEXT PRIMARY KEY,
    account_id    TEXT NOT NULL REFERENCES accounts (id),
    product_code  TEXT NOT NULL REFERENCES products (code),
    license_arn   TEXT NOT NULL,
    created_at_ms INTEGER NOT NULL,
    expires_at_ms INTEGER NOT NULL
) STRICT;

-- The usage log. No foreign keys: a record is history, written on the hot
-- path, and the service checked product and customer before writing it.
-- A rowid table (not WITHOUT ROWID keyed by the random record id) so inserts
-- append to the table b-tree instead of splitting pages at random.
CREATE TABLE metering_records (
    metering_record_id  TEXT NOT NULL PRIMARY KEY,
    kind                TEXT NOT NULL,
    product_code        TEXT NOT NULL,
    seller_account_id   TEXT NOT NULL,
    customer_account_id TEXT NOT NULL,
    customer_identifier TEXT NOT NULL,
    license_arn         TEXT NOT NULL,
    workload_id         TEXT NOT NULL,
    dimension           TEXT NOT NULL,
    timestamp_ms        INTEGER NOT NULL,
    quantity            INTEGER NOT NULL,
    allocations         TEXT,             -- JSON array of mpmeter.Allocation; NULL when none
    dedup_key           TEXT,             -- NULL: never deduplicated
    fingerprint         TEXT NOT NULL,
    created_at_ms       INTEGER NOT NULL,
    CONSTRAINT metering_records_dedup_key UNIQUE (dedup_key)
) STRICT;
-- Usage filters by product or seller and orders by (timestamp, id); the id in
-- the index makes the ORDER BY an index walk, not a sort.
CREATE INDEX metering_records_product_time ON metering_records (product_code, timestamp_ms, metering_record_id);
CREATE INDEX metering_records_seller_time ON metering_records (seller_account_id, timestamp_ms, metering_record_id);

-- A client token's first answer. metering_record_id names a row written in
-- the same transaction; no foreign key, to keep the hot path one b-tree lighter.
CREATE TABLE idempotency_tokens (
    scope              TEXT NOT NULL,
    token              TEXT NOT NULL,
    fingerprint        TEXT NOT NULL,
    metering_record_id TEXT NOT NULL,
    expires_at_ms      INTEGER NOT NULL,
    PRIMARY KEY (scope, token)
) STRICT, WITHOUT ROWID;

CREATE TABLE signing_keys (
    version         INTEGER PRIMARY KEY,
    private_key_pem BLOB NOT NULL,
    public_key_pem  BLOB NOT NULL,
    created_at_ms   INTEGER NOT NULL
) STRICT;
