-- Sealgate schema, version 12: webhook endpoints and the webhook outbox. Forward-only: never
-- edit once merged.
--
-- An endpoint is a URL, the event types it takes (space-separated, with a space before and
-- after the list so that a type is matched as ` type `; ` * ` is every type) and its signing
-- secret, sealed under the node key ring (base64). While a secret is rotated the previous one
-- signs too, until `previous_until`. A `410 Gone` (or an operator) disables an endpoint: no new
-- events are written for it and its pending ones wait until it is enabled again.
--
-- The outbox holds one row per (event, endpoint), written in the same transaction as the
-- audit row the event describes, so an event exists if and only if its state change committed.
-- `seq` is that audit row's; the webhook-id (`event_id`) is `evt_<seq>_<hash prefix>`, the same
-- for every endpoint and every attempt. Rows are delivered under a lease
-- like recipients; per endpoint and message the lowest pending `seq` goes first.
-- Times are BIGINT microseconds since the Unix epoch (UTC).
CREATE TABLE webhook_endpoints (
    id              TEXT   PRIMARY KEY,   -- "wh_" + 16 hex digits
    url             TEXT   NOT NULL,
    events          TEXT   NOT NULL,      -- " recipient.delivered portal.opened " or " * "
    secret_sealed   TEXT   NOT NULL,
    previous_sealed TEXT   NULL,
    previous_until  BIGINT NULL,
    created_at      BIGINT NOT NULL,
    disabled_at     BIGINT NULL,
    disabled_reason TEXT   NULL,
    failing_since   BIGINT NULL,          -- first failure since the last success
    alerted_at      BIGINT NULL           -- when the failure was audited as an alert
);

CREATE TABLE webhook_outbox (
    id              TEXT   PRIMARY KEY,   -- endpoint id ":" seq
    endpoint_id     TEXT   NOT NULL,
    seq             BIGINT NOT NULL,      -- the audit row's
    event_id        TEXT   NOT NULL,      -- the webhook-id
    message_id      TEXT   NULL,          -- the queue id the event is about (orders delivery)
    event_type      TEXT   NOT NULL,
    payload         TEXT   NOT NULL,      -- the JSON body, as sent
    created_at      BIGINT NOT NULL,
    state           TEXT   NOT NULL,      -- pending | delivered | dead
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    lease_owner     TEXT   NULL,
    lease_until     BIGINT NULL,
    last_status     TEXT   NULL,          -- the last answer or error
    settled_at      BIGINT NULL           -- delivered or given up
);
CREATE INDEX webhook_outbox_due ON webhook_outbox (state, next_attempt_at);
CREATE INDEX webhook_outbox_order ON webhook_outbox (endpoint_id, message_id, seq);
CREATE INDEX webhook_outbox_created ON webhook_outbox (created_at);
