-- migrate:up
ALTER TABLE owners ADD PRIMARY KEY (id);
-- migrate:down
SELECT 1;
