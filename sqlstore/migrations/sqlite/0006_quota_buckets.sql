-- 0006_quota_buckets: request quotas' token buckets shared by every node
-- (ratelimit.Config.Shared, used on PostgreSQL; SQLite has the table too so
-- both dialects keep one schema). One row per account|region|operation:
-- tokens left at updated_us (unix microseconds by the database's clock), and
-- whether the last take was granted.
CREATE TABLE quota_buckets (
    key        TEXT PRIMARY KEY,
    tokens     REAL NOT NULL,
    updated_us INTEGER NOT NULL,
    granted    INTEGER NOT NULL
) STRICT;
