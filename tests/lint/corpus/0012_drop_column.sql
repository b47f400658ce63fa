-- migrate:up
ALTER TABLE tasks DROP COLUMN note;
-- migrate:down
SELECT 1;
