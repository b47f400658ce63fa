-- migrate:up
DROP TABLE tags;
-- migrate:down
SELECT 1;
