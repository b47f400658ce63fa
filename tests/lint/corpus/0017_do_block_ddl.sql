-- migrate:up
DO $$ BEGIN EXECUTE 'ALTER TABLE tasks ADD COLUMN x integer'; END $$;
-- migrate:down
SELECT 1;
