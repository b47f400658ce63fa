-- migrate:up
ALTER TYPE mood ADD VALUE 'meh';
-- migrate:down
SELECT 1;
