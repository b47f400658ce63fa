-- migrate:up
ALTER TABLE tasks ALTER COLUMN n TYPE bigint;
-- migrate:down
SELECT 1;
