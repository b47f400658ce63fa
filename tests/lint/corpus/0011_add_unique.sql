-- migrate:up
ALTER TABLE tasks ADD CONSTRAINT tasks_note_key UNIQUE (note);
-- migrate:down
SELECT 1;
