-- migrate:no-transaction
-- migrate:up
ALTER TABLE tasks VALIDATE CONSTRAINT tasks_n_pos;
-- migrate:down
SELECT 1;
