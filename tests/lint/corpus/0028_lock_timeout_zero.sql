-- migrate:up
SET lock_timeout = 0;
ALTER TABLE tasks ADD COLUMN y bigint;
-- migrate:down
SELECT 1;
