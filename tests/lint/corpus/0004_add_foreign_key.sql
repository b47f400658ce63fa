-- migrate:up
ALTER TABLE tasks ADD CONSTRAINT tasks_owner_fk FOREIGN KEY (owner_id) REFERENCES owners (id);
-- migrate:down
SELECT 1;
