-- 0003_concurrent_agreements: products whose buyers may hold several
-- agreements at once (mpmeter.Product.ConcurrentAgreements). 0 or 1, an
-- integer in both dialects like the times, so the Go code reads it one way.
-- Their subscriptions have no customer identifier: customer_identifier is
-- NULL, which the UNIQUE (product_code, customer_identifier) constraint lets
-- any number of subscriptions share (NULLs are distinct).
ALTER TABLE products ADD COLUMN concurrent_agreements integer NOT NULL DEFAULT 0
    CHECK (concurrent_agreements IN (0, 1));
