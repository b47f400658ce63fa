-- migrate:up
ALTER TABLE owners RENAME TO users;
-- migrate:down
SELECT 1;
