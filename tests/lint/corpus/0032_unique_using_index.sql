-- migrate:no-transaction
-- migrate:up
CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS tasks_code_key ON tasks (code);
-- migrate:down
SELECT 1;
