-- Sealgate schema, version 5 (PostgreSQL): the secure portal. Forward-only: never edit once merged.
-- Times are BIGINT microseconds since the Unix epoch (UTC).

-- Who wrote a queued message: NULL for a client's message; 'portal-notice' for a notice or a
-- one-time code Sealgate wrote itself (no protected content); 'portal-reply' for a
-- recipient's reply written on the portal (protected content, normal policy).
ALTER TABLE messages ADD COLUMN origin TEXT NULL;

-- A message held on the portal, sealed: the original a recipient reads, or a reply.
CREATE TABLE portal_messages (
    id             TEXT   NOT NULL PRIMARY KEY, -- uuid v4
    thread_id      TEXT   NOT NULL,             -- id of the thread's first message
    message_id     TEXT   NULL,                 -- queue id of the original, if queued
    author         TEXT   NOT NULL,             -- who wrote it (an address)
    sender         TEXT   NOT NULL,             -- where replies go: the original envelope sender
    key_sealed     BYTEA  NOT NULL,             -- the per-message key, sealed under the portal master key
    content_sealed BYTEA  NOT NULL,             -- RFC 5322 message, AES-256-GCM; empty once purged
    size           BIGINT NOT NULL,             -- bytes of the message before sealing
    created_at     BIGINT NOT NULL,
    purged_at      BIGINT NULL                  -- when retention emptied the content
);
CREATE INDEX portal_messages_by_thread ON portal_messages (thread_id);

-- A recipient's access to one portal message (and its thread), through a link token.
CREATE TABLE portal_grants (
    id                TEXT   NOT NULL PRIMARY KEY,  -- uuid v4: what operators name
    token_hash        TEXT   NOT NULL UNIQUE,       -- SHA-256 hex of the link token
    portal_message_id TEXT   NOT NULL REFERENCES portal_messages (id),
    thread_id         TEXT   NOT NULL,
    recipient         TEXT   NOT NULL,
    sender            TEXT   NOT NULL,
    expires_at        BIGINT NOT NULL,
    revoked_at        BIGINT NULL,
    passphrase_hash   TEXT   NULL,                  -- Argon2id PHC string
    code_hash         TEXT   NULL,                  -- SHA-256 hex of "grant_id:code"
    code_expires_at   BIGINT NULL,
    failed_attempts   BIGINT NOT NULL DEFAULT 0,
    locked_until      BIGINT NULL,
    first_viewed_at   BIGINT NULL,
    created_at        BIGINT NOT NULL,
    UNIQUE (portal_message_id, recipient)
);
CREATE INDEX portal_grants_by_thread ON portal_grants (thread_id);

-- A verified browser session on one grant.
CREATE TABLE portal_sessions (
    id_hash    TEXT   NOT NULL PRIMARY KEY,  -- SHA-256 hex of the cookie value
    grant_id   TEXT   NOT NULL REFERENCES portal_grants (id),
    csrf       TEXT   NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX portal_sessions_by_grant ON portal_sessions (grant_id);
