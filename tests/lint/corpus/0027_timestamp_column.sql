-- migrate:up
ALTER TABLE tasks ADD COLUMN due timestamp;
-- migrate:down
SELECT 1;
