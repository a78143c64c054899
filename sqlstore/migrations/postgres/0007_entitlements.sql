-- 0005_entitlements: contract entitlements (mpmeter.Entitlement), at most one
-- per subscription and dimension, which GetEntitlements lists in primary-key
-- order (license ARN, dimension): its NextToken is a position in that order.
-- COLLATE "C" sorts bytewise like SQLite, so both dialects page alike.
-- value_type names which of the model's EntitlementValue members the value
-- is; value is its text (integers and doubles as Go's strconv writes them,
-- which reads back exactly; booleans as true/false).
CREATE TABLE entitlements (
    license_arn   text COLLATE "C" NOT NULL REFERENCES subscriptions (license_arn) ON DELETE CASCADE,
    dimension     text COLLATE "C" NOT NULL,
    value_type    text NOT NULL CHECK (value_type IN ('integer', 'double', 'boolean', 'string')),
    value         text NOT NULL,
    expires_at_ms bigint, -- NULL: no expiration date
    PRIMARY KEY (license_arn, dimension)
);
