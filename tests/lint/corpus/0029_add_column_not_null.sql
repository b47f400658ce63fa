-- migrate:up
ALTER TABLE tasks ADD COLUMN z bigint NOT NULL;
-- migrate:down
SELECT 1;
