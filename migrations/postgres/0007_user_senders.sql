-- Sealgate schema, version 8: sender binding. Forward-only: never edit once merged.
--
-- Which envelope senders and header From addresses each SMTP AUTH user may use, one rule per
-- row: `ceo@clinic.example` (that address), `@clinic.example` (the domain), `@.clinic.example`
-- (its subdomains) or `*` (any sender). A user without rows may not send at all.
CREATE TABLE user_senders (
    user_name TEXT NOT NULL REFERENCES users (name) ON DELETE CASCADE,
    rule      TEXT NOT NULL,
    PRIMARY KEY (user_name, rule)
);

-- Users from before sender binding keep sending as anyone, as they did: an upgrade must not
-- stop an EHR at night. `sealgate users list` shows them as unrestricted, with the command
-- that restricts them.
INSERT INTO user_senders (user_name, rule) SELECT name, '*' FROM users;
