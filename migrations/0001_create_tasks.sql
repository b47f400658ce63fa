-- 0001_create_tasks: the Todo API's tasks, one row per task, owned by a user (the JWT subject).
-- The API lists a user's tasks newest first and filters them by completion: the two indexes serve
-- exactly those queries. updated_at is kept by a trigger so that no code path can forget it.

-- migrate:up
CREATE TABLE tasks (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id     text NOT NULL,
    title       varchar(200) NOT NULL CHECK (btrim(title) <> ''),
    description text NULL CHECK (char_length(description) <= 1000),
    completed   boolean NOT NULL DEFAULT false,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE FUNCTION tasks_set_updated_at() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END;
$$;

CREATE TRIGGER tasks_set_updated_at
    BEFORE UPDATE ON tasks
    FOR EACH ROW EXECUTE FUNCTION tasks_set_updated_at();

CREATE INDEX tasks_user_id_created_at_idx ON tasks (user_id, created_at DESC);
CREATE INDEX tasks_user_id_completed_idx ON tasks (user_id, completed);

-- migrate:down
DROP TABLE tasks;
DROP FUNCTION tasks_set_updated_at();
