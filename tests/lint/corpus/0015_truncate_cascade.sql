-- migrate:up
TRUNCATE owners CASCADE;
-- migrate:down
SELECT 1;
