-- When the sender was warned that delivery to this recipient is delayed (RFC 3464 "delayed"
-- DSN); NULL until then, so each recipient is warned at most once.
ALTER TABLE recipients ADD COLUMN warned_at BIGINT NULL;
