-- Sealgate schema, version 10: API keys (`sealgate api-keys`). Forward-only: never edit once
-- merged.
--
-- A key is `sgk_<id>_<secret>`; only the SHA-256 of the secret is stored (the secret is 256
-- random bits, so a fast hash is enough and a stolen table opens nothing). Scopes and sender
-- rules are space-separated lists. A revoked key keeps its row (its id stays in the audit log)
-- and opens nothing from the moment `revoked_at` is set.
-- Times are BIGINT microseconds since the Unix epoch (UTC).
CREATE TABLE api_keys (
    id            TEXT   PRIMARY KEY,   -- 16 hex digits, public (in the key, the log, the audit)
    name          TEXT   NOT NULL UNIQUE,
    secret_sha256 TEXT   NOT NULL,      -- hex
    scopes        TEXT   NOT NULL,      -- "send read admin", a subset
    senders       TEXT   NOT NULL,      -- sender rules ("@clinic.example"); empty = any sender
    created_at    BIGINT NOT NULL,
    revoked_at    BIGINT NULL
);
