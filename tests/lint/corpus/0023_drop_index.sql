-- migrate:up
DROP INDEX tasks_n_idx;
-- migrate:down
SELECT 1;
