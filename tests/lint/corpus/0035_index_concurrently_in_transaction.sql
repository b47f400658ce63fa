-- migrate:up
CREATE INDEX CONCURRENTLY IF NOT EXISTS tasks_due_idx ON tasks (due);
-- migrate:down
SELECT 1;
