-- 0010_notifications: the buyer journey's notifications (package notify).
--   * products' fulfillment (registration) URL;
--   * notification_events: what happened (subscribe-success of an agreement,
--     a SubscriptionConfirmation, ...), once per event_key, written in the
--     transaction of the change that caused it; follow_up_at_ms marks an
--     unsubscribe-pending whose final hour has yet to end (service clock);
--   * notification_deliveries: the outbox, one fully rendered HTTP POST per
--     event and destination, leased by one worker at a time
--     (lease_owner/lease_until_ms), retried at next_attempt_at_ms (wall
--     clock);
--   * notification_attempts: the delivery log, one row per POST;
--   * sns_subscriptions, eventbridge_targets: where notifications go;
--   * notification_certificates: the one key and certificate SNS messages
--     are signed with (the key sealed like every secret).
ALTER TABLE products ADD COLUMN fulfillment_url TEXT;

CREATE TABLE notification_events (
    event_id        TEXT PRIMARY KEY,
    event_key       TEXT NOT NULL UNIQUE,
    type            TEXT NOT NULL,
    agreement_id    TEXT,
    product_code    TEXT,
    created_at_ms   INTEGER NOT NULL,
    follow_up_at_ms INTEGER,
    ended_at_ms     INTEGER
) STRICT;
CREATE INDEX notification_events_follow_up ON notification_events (follow_up_at_ms) WHERE follow_up_at_ms IS NOT NULL;

CREATE TABLE notification_deliveries (
    delivery_id        TEXT PRIMARY KEY,
    event_id           TEXT NOT NULL REFERENCES notification_events (event_id),
    channel            TEXT NOT NULL,
    destination        TEXT NOT NULL,
    endpoint           TEXT NOT NULL,
    headers            TEXT NOT NULL,
    body               BLOB NOT NULL,
    max_attempts       INTEGER NOT NULL,
    replay_of          TEXT,
    status             TEXT NOT NULL,
    attempts           INTEGER NOT NULL DEFAULT 0,
    next_attempt_at_ms INTEGER NOT NULL,
    created_at_ms      INTEGER NOT NULL,
    lease_owner        TEXT,
    lease_until_ms     INTEGER,
    last_attempt_at_ms INTEGER,
    last_status_code   INTEGER,
    last_error         TEXT,
    last_latency_us    INTEGER,
    last_location      TEXT
) STRICT;
CREATE INDEX notification_deliveries_due ON notification_deliveries (next_attempt_at_ms) WHERE status = 'pending';
CREATE INDEX notification_deliveries_event ON notification_deliveries (event_id);

CREATE TABLE notification_attempts (
    delivery_id TEXT NOT NULL REFERENCES notification_deliveries (delivery_id),
    attempt     INTEGER NOT NULL,
    at_ms       INTEGER NOT NULL,
    status_code INTEGER NOT NULL,
    error       TEXT NOT NULL,
    latency_us  INTEGER NOT NULL,
    location    TEXT NOT NULL,
    node        TEXT NOT NULL,
    PRIMARY KEY (delivery_id, attempt)
) STRICT;

CREATE TABLE sns_subscriptions (
    arn             TEXT PRIMARY KEY,
    product_code    TEXT NOT NULL REFERENCES products (code),
    topic           TEXT NOT NULL,
    protocol        TEXT NOT NULL,
    endpoint        TEXT NOT NULL,
    created_at_ms   INTEGER NOT NULL,
    confirmed_at_ms INTEGER
) STRICT;
CREATE INDEX sns_subscriptions_product ON sns_subscriptions (product_code, topic);

CREATE TABLE eventbridge_targets (
    id            TEXT PRIMARY KEY,
    account_id    TEXT NOT NULL REFERENCES accounts (id),
    endpoint      TEXT NOT NULL,
    created_at_ms INTEGER NOT NULL
) STRICT;
CREATE INDEX eventbridge_targets_account ON eventbridge_targets (account_id);

CREATE TABLE notification_certificates (
    id              INTEGER PRIMARY KEY CHECK (id = 1),
    private_key_pem BLOB NOT NULL,
    certificate_pem BLOB NOT NULL,
    created_at_ms   INTEGER NOT NULL
) STRICT;
