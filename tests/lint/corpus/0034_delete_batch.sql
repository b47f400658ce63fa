-- migrate:up
DELETE FROM tasks WHERE id BETWEEN 1 AND 1000;
-- migrate:down
SELECT 1;
