-- Sealgate schema, version 3: verified-TLS policy state. Forward-only: never edit once merged.
-- Times are BIGINT microseconds since the Unix epoch (UTC).

-- RFC 8689 REQUIRETLS: the sender asked that every hop be verified TLS (1) or not (0).
ALTER TABLE messages ADD COLUMN requiretls INTEGER NOT NULL DEFAULT 0;

-- MTA-STS policies (RFC 8461 §5): the last valid policy per domain, kept until it expires so
-- that a blocked or tampered refresh cannot remove an enforce policy (§5.1, §10.2).
CREATE TABLE mta_sts_policies (
    domain     TEXT   NOT NULL PRIMARY KEY,
    policy_id  TEXT   NOT NULL,       -- the id of the _mta-sts TXT record it was fetched for
    mode       TEXT   NOT NULL,       -- enforce | testing | none
    mx         TEXT   NOT NULL,       -- the mx patterns, one per line
    max_age    BIGINT NOT NULL,       -- seconds, as published
    fetched_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,       -- fetched_at + max_age
    body       TEXT   NOT NULL        -- the policy text as fetched, for operators
);

-- Downgrade memory: a domain once seen with verified TLS (DANE or MTA-STS enforce), like a
-- ratchet. A later sighting without it is treated as a possible attack.
CREATE TABLE domain_security (
    domain        TEXT   NOT NULL PRIMARY KEY,
    verified_via  TEXT   NOT NULL,    -- dane | mta-sts
    first_seen_at BIGINT NOT NULL,
    last_seen_at  BIGINT NOT NULL
);

-- TLS-RPT (RFC 8460 §4): per recipient domain, per UTC day and policy type, session counts.
CREATE TABLE tls_rpt_results (
    domain      TEXT   NOT NULL,
    day         TEXT   NOT NULL,      -- YYYY-MM-DD (UTC)
    policy_type TEXT   NOT NULL,      -- sts | tlsa | no-policy-found
    successes   BIGINT NOT NULL DEFAULT 0,
    failures    BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (domain, day, policy_type)
);

-- TLS-RPT failure details (RFC 8460 §4.3), counted per distinct failure.
CREATE TABLE tls_rpt_failures (
    domain          TEXT   NOT NULL,
    day             TEXT   NOT NULL,
    policy_type     TEXT   NOT NULL,
    result_type     TEXT   NOT NULL,  -- starttls-not-supported, certificate-host-mismatch, ...
    mx_host         TEXT   NOT NULL,
    ip              TEXT   NOT NULL,
    detail          TEXT   NOT NULL,  -- failure-reason-code: what exactly failed
    count           BIGINT NOT NULL DEFAULT 0,
    first_at        BIGINT NOT NULL,
    last_at         BIGINT NOT NULL,
    PRIMARY KEY (domain, day, policy_type, result_type, mx_host, ip, detail)
);
