-- 0001_init: the whole schema, PostgreSQL dialect. migrations/sqlite/0001_init.sql
-- is the same schema and explains the conventions (times as bigint unix
-- milliseconds UTC, NULL for an absent unique key); keep the two in step.
--
-- PostgreSQL only: text columns that results are ordered by use COLLATE "C"
-- (byte order), which is what SQLite's BINARY collation does, so both
-- dialects return rows in the same order whatever the database's locale.

CREATE TABLE accounts (
    id   text PRIMARY KEY,
    name text NOT NULL
);

CREATE TABLE access_keys (
    id                text PRIMARY KEY,
    secret            text NOT NULL,
    account_id        text NOT NULL REFERENCES accounts (id),
    workload_id       text,
    workload_platform text,
    workload_region   text
);

CREATE TABLE products (
    code              text PRIMARY KEY,
    seller_account_id text NOT NULL REFERENCES accounts (id),
    type              text NOT NULL
);

CREATE TABLE product_dimensions (
    product_code text NOT NULL REFERENCES products (code) ON DELETE CASCADE,
    position     integer NOT NULL,
    name         text NOT NULL,
    PRIMARY KEY (product_code, name)
);

CREATE TABLE subscriptions (
    license_arn         text COLLATE "C" PRIMARY KEY,
    account_id          text NOT NULL REFERENCES accounts (id),
    product_code        text NOT NULL REFERENCES products (code),
    customer_identifier text,
    status              text NOT NULL,
    created_at_ms       bigint NOT NULL,
    CONSTRAINT subscriptions_customer UNIQUE (product_code, customer_identifier)
);
CREATE INDEX subscriptions_account_product ON subscriptions (account_id, product_code, created_at_ms);

CREATE TABLE registration_tokens (
    token         text PRIMARY KEY,
    account_id    text NOT NULL REFERENCES accounts (id),
    product_code  text NOT NULL REFERENCES products (code),
    license_arn   text NOT NULL,
    created_at_ms bigint NOT NULL,
    expires_at_ms bigint NOT NULL
);

CREATE TABLE metering_records (
    metering_record_id  text COLLATE "C" NOT NULL PRIMARY KEY,
    kind                text NOT NULL,
    product_code        text NOT NULL,
    seller_account_id   text NOT NULL,
    customer_account_id text NOT NULL,
    customer_identifier text NOT NULL,
    license_arn         text NOT NULL,
    workload_id         text NOT NULL,
    dimension           text NOT NULL,
    timestamp_ms        bigint NOT NULL,
    quantity            bigint NOT NULL,
    allocations         text,
    dedup_key           text,
    fingerprint         text NOT NULL,
    created_at_ms       bigint NOT NULL,
    CONSTRAINT metering_records_dedup_key UNIQUE (dedup_key)
);
CREATE INDEX metering_records_product_time ON metering_records (product_code, timestamp_ms, metering_record_id);
CREATE INDEX metering_records_seller_time ON metering_records (seller_account_id, timestamp_ms, metering_record_id);

CREATE TABLE idempotency_tokens (
    scope              text NOT NULL,
    token              text NOT NULL,
    fingerprint        text NOT NULL,
    metering_record_id text NOT NULL,
    expires_at_ms      bigint NOT NULL,
    PRIMARY KEY (scope, token)
);

CREATE TABLE signing_keys (
    version         integer PRIMARY KEY,
    private_key_pem bytea NOT NULL,
    public_key_pem  bytea NOT NULL,
    created_at_ms   bigint NOT NULL
);
