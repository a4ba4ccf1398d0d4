-- Sealgate schema, version 4: recipients' OpenPGP keys and S/MIME certificates.
-- Forward-only: never edit once merged. Times: see each column.

-- One row per credential and address it is used for: an operator import (or, later, a
-- discovered key) binding a key to a recipient address.
CREATE TABLE recipient_keys (
    kind        TEXT   NOT NULL,      -- pgp | smime
    fingerprint TEXT   NOT NULL,      -- pgp: primary key, uppercase hex; smime: SHA-256 of the DER
    address     TEXT   NOT NULL,      -- the recipient address, lowercase
    material    BLOB   NOT NULL,      -- pgp: binary transferable public key; smime: DER certificate
    source      TEXT   NOT NULL,      -- import
    expires     BIGINT NULL,          -- Unix seconds, when the credential expires (if it does)
    added_at    BIGINT NOT NULL,      -- microseconds since the epoch, last written
    PRIMARY KEY (kind, address, fingerprint)
);

CREATE INDEX recipient_keys_by_address ON recipient_keys (address);
