-- Sealgate schema, version 11: idempotency keys of API submissions (the `Idempotency-Key`
-- request header). Forward-only: never edit once merged.
--
-- One row per (API key, idempotency key), written in the same transaction as the message it
-- created, so a retried request finds either nothing (the first never committed) or the first
-- answer. A key is honoured for 24 hours; an older row is replaced when the key comes again.
-- Times are BIGINT microseconds since the Unix epoch (UTC).
CREATE TABLE idempotency_keys (
    api_key_id     TEXT   NOT NULL,
    idem_key       TEXT   NOT NULL,
    request_sha256 TEXT   NOT NULL,   -- of the request body: the same key with another body is refused
    message_id     TEXT   NOT NULL,
    response       TEXT   NOT NULL,   -- the first answer's JSON body
    created_at     BIGINT NOT NULL,
    PRIMARY KEY (api_key_id, idem_key)
);
