-- migrate:up
UPDATE tasks SET n = 0;
-- migrate:down
SELECT 1;
