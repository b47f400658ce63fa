-- migrate:up
ALTER TABLE tasks ALTER COLUMN title TYPE text;
-- migrate:down
SELECT 1;
