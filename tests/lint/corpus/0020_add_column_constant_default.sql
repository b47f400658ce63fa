-- migrate:up
ALTER TABLE tasks ADD COLUMN done boolean NOT NULL DEFAULT false;
-- migrate:down
SELECT 1;
