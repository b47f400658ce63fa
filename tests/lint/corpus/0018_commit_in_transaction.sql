-- migrate:up
UPDATE tasks SET n = 0 WHERE n IS NULL;
COMMIT;
-- migrate:down
SELECT 1;
