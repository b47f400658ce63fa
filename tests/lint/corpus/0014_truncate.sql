-- migrate:up
TRUNCATE tasks;
-- migrate:down
SELECT 1;
