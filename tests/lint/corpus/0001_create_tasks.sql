-- migrate:up
CREATE TABLE tasks (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, title varchar(100), note text, n integer, owner_id bigint);
CREATE TABLE owners (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY);
-- migrate:down
SELECT 1;
