-- Sealgate schema, version 8: policy holds. Forward-only: never edit once merged.
--
-- A deferred recipient whose wait is the policy's, not the remote server's: the method its
-- decision chose cannot be carried out here now (the secure portal is not enabled, say). The
-- column holds the reason's name (`portal-disabled`, ...); NULL for every other recipient.
-- Set and cleared by each settlement.
ALTER TABLE recipients ADD COLUMN held TEXT;
