-- migrate:up
CREATE INDEX tasks_n_idx ON tasks (n);
-- migrate:down
SELECT 1;
