-- migrate:up
ALTER TABLE tasks ALTER COLUMN title TYPE varchar(200);
-- migrate:down
SELECT 1;
