-- migrate:no-transaction
-- migrate:up
CREATE INDEX CONCURRENTLY IF NOT EXISTS tasks_n_idx ON tasks (n);
-- migrate:down
SELECT 1;
