-- migrate:up
CREATE TABLE tags (id serial PRIMARY KEY, name text);
-- migrate:down
SELECT 1;
