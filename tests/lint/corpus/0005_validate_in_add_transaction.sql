-- migrate:up
ALTER TABLE tasks ADD CONSTRAINT tasks_n_pos CHECK (n > 0) NOT VALID;
ALTER TABLE tasks VALIDATE CONSTRAINT tasks_n_pos;
-- migrate:down
SELECT 1;
