-- Sealgate schema, version 6: which node is sending a recipient. Forward-only: never edit once merged.
-- Times are BIGINT microseconds since the Unix epoch (UTC).

-- Set (under the node's lease) before the message data goes to the remote server, cleared when
-- the attempt is settled. A node that finds it set on a recipient it claims knows the previous
-- owner stopped mid-send: the remote server may already hold the message (RFC 1047), and the
-- resend is audited as a possible duplicate.
ALTER TABLE recipients ADD COLUMN sending_owner TEXT NULL;
ALTER TABLE recipients ADD COLUMN sending_since BIGINT NULL;
