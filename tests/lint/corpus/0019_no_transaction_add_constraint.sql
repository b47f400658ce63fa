-- migrate:no-transaction
-- migrate:up
ALTER TABLE tasks ADD CONSTRAINT tasks_n_small CHECK (n < 100) NOT VALID;
-- migrate:down
SELECT 1;
