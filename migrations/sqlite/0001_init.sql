-- Sealgate schema, version 1 (SQLite). Forward-only: never edit once merged; add 0002_*.sql.
-- Times are BIGINT microseconds since the Unix epoch (UTC); ids and text are TEXT.

CREATE TABLE messages (
    id                TEXT    NOT NULL PRIMARY KEY,
    received_at       BIGINT  NOT NULL,
    sender            TEXT    NOT NULL,          -- '' for the null reverse-path
    size              BIGINT  NOT NULL,
    body_sha256       TEXT    NOT NULL,
    header_message_id TEXT    NULL,
    client_ip         TEXT    NOT NULL,
    helo              TEXT    NOT NULL,
    auth_user         TEXT    NULL,
    tls               TEXT    NULL,
    key_id            TEXT    NOT NULL,
    sealed_body       BLOB    NOT NULL
);

CREATE TABLE recipients (
    id              INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    message_id      TEXT    NOT NULL REFERENCES messages (id),
    rcpt            TEXT    NOT NULL,
    state           TEXT    NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at BIGINT  NOT NULL,
    last_reply      TEXT    NULL,
    lease_owner     TEXT    NULL,
    lease_until     BIGINT  NULL,
    updated_at      BIGINT  NOT NULL,
    UNIQUE (message_id, rcpt)
);
CREATE INDEX recipients_due ON recipients (state, next_attempt_at);

CREATE TABLE users (
    name          TEXT   NOT NULL PRIMARY KEY,
    password_hash TEXT   NOT NULL,
    created_at    BIGINT NOT NULL
);

-- The audit chain. `seq` is declared INTEGER PRIMARY KEY so it is the rowid (64-bit): rows are
-- stored in chain order. Writers always supply it from audit_head.
CREATE TABLE audit (
    seq        INTEGER NOT NULL PRIMARY KEY,
    at         BIGINT  NOT NULL,
    kind       TEXT    NOT NULL,
    message_id TEXT    NULL,
    recipient  TEXT    NULL,
    data       TEXT    NOT NULL,
    prev_hash  TEXT    NOT NULL,
    hash       TEXT    NOT NULL
);
CREATE INDEX audit_by_message ON audit (message_id);
CREATE INDEX audit_by_recipient ON audit (recipient);
CREATE INDEX audit_by_time ON audit (at);

-- The chain head: the last seq handed out and its hash. Every transaction that appends audit
-- rows bumps it first, which serialises appenders.
CREATE TABLE audit_head (
    id   INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
    seq  BIGINT  NOT NULL,
    hash TEXT    NOT NULL
);
INSERT INTO audit_head (id, seq, hash)
VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');

-- Append-only, enforced by the database itself.
CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
BEGIN
    SELECT RAISE(ABORT, 'audit log is append-only');
END;

CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
BEGIN
    SELECT RAISE(ABORT, 'audit log is append-only');
END;

-- The head only moves forward, one row at a time, and is never removed.
CREATE TRIGGER audit_head_forward_only BEFORE UPDATE ON audit_head
WHEN NEW.id <> OLD.id OR (NEW.seq <> OLD.seq AND NEW.seq <> OLD.seq + 1)
BEGIN
    SELECT RAISE(ABORT, 'audit head only moves forward');
END;

CREATE TRIGGER audit_head_no_delete BEFORE DELETE ON audit_head
BEGIN
    SELECT RAISE(ABORT, 'audit head only moves forward');
END;
