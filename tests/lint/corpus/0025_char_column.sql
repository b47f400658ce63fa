-- migrate:up
ALTER TABLE tasks ADD COLUMN code char(4);
-- migrate:down
SELECT 1;
