-- 0005_admin: what the admin API needs of the marketplace tables, added
-- column by column (nothing restructured):
--   * version on every row the admin API edits: optimistic concurrency (a
--     put naming a stale version fails instead of overwriting);
--   * access keys' revocation time;
--   * dimensions' optional description, unit and price per unit (a decimal
--     string, never a float);
--   * subscriptions' agreement id (agmt-..., stable; filled in for older rows
--     by the store on open), offer id, free-trial flag and end time;
--   * registration tokens' id (a hash of the token, so lists and URLs never
--     carry the token itself; filled in for older rows on open).
ALTER TABLE accounts ADD COLUMN version bigint NOT NULL DEFAULT 1;
ALTER TABLE access_keys ADD COLUMN version bigint NOT NULL DEFAULT 1;
ALTER TABLE access_keys ADD COLUMN revoked_at_ms bigint;
CREATE INDEX access_keys_account ON access_keys (account_id, id);
ALTER TABLE products ADD COLUMN version bigint NOT NULL DEFAULT 1;
ALTER TABLE product_dimensions ADD COLUMN description text;
ALTER TABLE product_dimensions ADD COLUMN unit text;
ALTER TABLE product_dimensions ADD COLUMN price_per_unit text;
ALTER TABLE subscriptions ADD COLUMN version bigint NOT NULL DEFAULT 1;
ALTER TABLE subscriptions ADD COLUMN agreement_id text;
ALTER TABLE subscriptions ADD COLUMN offer_id text;
ALTER TABLE subscriptions ADD COLUMN free_trial integer NOT NULL DEFAULT 0 CHECK (free_trial IN (0, 1));
ALTER TABLE subscriptions ADD COLUMN ended_at_ms bigint;
CREATE UNIQUE INDEX subscriptions_agreement ON subscriptions (agreement_id);
ALTER TABLE registration_tokens ADD COLUMN id text;
CREATE UNIQUE INDEX registration_tokens_id ON registration_tokens (id);
