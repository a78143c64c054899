-- 0005_entitlements: contract entitlements (mpmeter.Entitlement), at most one
-- per subscription and dimension, which GetEntitlements lists in primary-key
-- order (license ARN, dimension): its NextToken is a position in that order.
-- value_type names which of the model's EntitlementValue members the value
-- is; value is its text (integers and doubles as Go's strconv writes them,
-- which reads back exactly; booleans as true/false).
CREATE TABLE entitlements (
    license_arn   TEXT NOT NULL REFERENCES subscriptions (license_arn) ON DELETE CASCADE,
    dimension     TEXT NOT NULL,
    value_type    TEXT NOT NULL CHECK (value_type IN ('integer', 'double', 'boolean', 'string')),
    value         TEXT NOT NULL,
    expires_at_ms INTEGER, -- NULL: no expiration date
    PRIMARY KEY (license_arn, dimension)
) STRICT, WITHOUT ROWID;
