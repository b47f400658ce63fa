-- migrate:up
ALTER TABLE tasks RENAME COLUMN title TO name;
-- migrate:down
SELECT 1;
