-- migrate:up
ALTER TABLE tasks ALTER COLUMN note SET NOT NULL;
-- migrate:down
SELECT 1;
