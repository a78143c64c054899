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
ALTER TABLE products ADD COLUMN fulfillment_url text;

CREATE TABLE notification_events (
    event_id        text PRIMARY KEY,
    event_key       text NOT NULL UNIQUE,
    type            text NOT NULL,
    agreement_id    text,
    product_code    text,
    created_at_ms   bigint NOT NULL,
    follow_up_at_ms bigint,
    ended_at_ms     bigint
);
CREATE INDEX notification_events_follow_up ON notification_events (follow_up_at_ms) WHERE follow_up_at_ms IS NOT NULL;

CREATE TABLE notification_deliveries (
    delivery_id        text PRIMARY KEY,
    event_id           text NOT NULL REFERENCES notification_events (event_id),
    channel            text NOT NULL,
    destination        text NOT NULL,
    endpoint           text NOT NULL,
    headers            text NOT NULL,
    body               bytea NOT NULL,
    max_attempts       integer NOT NULL,
    replay_of          text,
    status             text NOT NULL,
    attempts           integer NOT NULL DEFAULT 0,
    next_attempt_at_ms bigint NOT NULL,
    created_at_ms      bigint NOT NULL,
    lease_owner        text,
    lease_until_ms     bigint,
    last_attempt_at_ms bigint,
    last_status_code   integer,
    last_error         text,
    last_latency_us    bigint,
    last_location      text
);
CREATE INDEX notification_deliveries_due ON notification_deliveries (next_attempt_at_ms) WHERE status = 'pending';
CREATE INDEX notification_deliveries_event ON notification_deliveries (event_id);

CREATE TABLE notification_attempts (
    delivery_id text NOT NULL REFERENCES notification_deliveries (delivery_id),
    attempt     integer NOT NULL,
    at_ms       bigint NOT NULL,
    status_code integer NOT NULL,
    error       text NOT NULL,
    latency_us  bigint NOT NULL,
    location    text NOT NULL,
    node        text NOT NULL,
    PRIMARY KEY (delivery_id, attempt)
);

CREATE TABLE sns_subscriptions (
    arn             text PRIMARY KEY,
    product_code    text NOT NULL REFERENCES products (code),
    topic           text NOT NULL,
    protocol        text NOT NULL,
    endpoint        text NOT NULL,
    created_at_ms   bigint NOT NULL,
    confirmed_at_ms bigint
);
CREATE INDEX sns_subscriptions_product ON sns_subscriptions (product_code, topic);

CREATE TABLE eventbridge_targets (
    id            text PRIMARY KEY,
    account_id    text NOT NULL REFERENCES accounts (id),
    endpoint      text NOT NULL,
    created_at_ms bigint NOT NULL
);
CREATE INDEX eventbridge_targets_account ON eventbridge_targets (account_id);

CREATE TABLE notification_certificates (
    id              integer PRIMARY KEY CHECK (id = 1),
    private_key_pem bytea NOT NULL,
    certificate_pem bytea NOT NULL,
    created_at_ms   bigint NOT NULL
);
