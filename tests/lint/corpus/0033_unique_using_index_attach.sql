-- migrate:up
ALTER TABLE tasks ADD CONSTRAINT tasks_code_key UNIQUE USING INDEX tasks_code_key;
-- migrate:down
SELECT 1;
