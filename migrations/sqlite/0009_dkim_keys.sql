-- Sealgate schema, version 9: DKIM signing keys kept in the database, so every node of a
-- cluster signs with the same keys and a rotation is one command. Forward-only: never edit once
-- merged.
--
-- The private key (PKCS#8 PEM) is sealed under the node key ring (AES-256-GCM, the sealing key
-- file), bound to its domain and selector; the database alone never holds it in the clear.
-- Times are BIGINT microseconds since the Unix epoch (UTC).
CREATE TABLE dkim_keys (
    domain     TEXT   NOT NULL,   -- the signing domain (d=), lowercase
    selector   TEXT   NOT NULL,   -- s=
    algorithm  TEXT   NOT NULL,   -- rsa-sha256 or ed25519-sha256
    key_sealed BLOB   NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (domain, selector)
);
