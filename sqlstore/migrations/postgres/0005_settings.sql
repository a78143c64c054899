-- 0005_settings: named settings of the database as a whole. The first is
-- key_encryption: the KDF parameters (salt included) and a check value of
-- the key encryption key that seals the secrets at rest (JSON, package seal).
CREATE TABLE settings (
    name  text PRIMARY KEY,
    value text NOT NULL
);
