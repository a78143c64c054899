-- 0006_quota_buckets: request quotas' token buckets shared by every node
-- (ratelimit.Config.Shared). One row per account|region|operation: tokens
-- left at updated_us (unix microseconds by the database's clock), and
-- whether the last take was granted. UNLOGGED: a take writes no WAL and
-- waits for no fsync (a durable take cost 3 ms); after a crash the table is
-- empty, which is full buckets, as after a restart of a one-process server.
CREATE UNLOGGED TABLE quota_buckets (
    key        text PRIMARY KEY,
    tokens     double precision NOT NULL,
    updated_us bigint NOT NULL,
    granted    integer NOT NULL
);
