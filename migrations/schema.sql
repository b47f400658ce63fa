-- schema.sql: the schema the migrations produce, written by `migrate dump` from the
-- system catalogs (schema_migrations left out). To change the schema, edit it and run
-- `migrate diff NAME`: it writes the migration and this file again.
-- migrations applied: 0006

-- extensions

CREATE EXTENSION IF NOT EXISTS pg_trgm WITH SCHEMA public;

-- functions

CREATE OR REPLACE FUNCTION public.idempotency_key_taken()
 RETURNS text
 LANGUAGE plpgsql
AS $function$
begin
    raise exception 'this Idempotency-Key was already used' using errcode = 'IK001';
end;
$function$;

CREATE OR REPLACE FUNCTION public.tasks_set_updated_at()
 RETURNS trigger
 LANGUAGE plpgsql
AS $function$
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END;
$function$;

-- tables

CREATE TABLE public.idempotency_keys (
    user_id text NOT NULL,
    key text NOT NULL,
    request_hash text NOT NULL,
    status integer,
    body text,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    result text
);

CREATE TABLE public.tasks (
    id bigint GENERATED ALWAYS AS IDENTITY NOT NULL,
    user_id text NOT NULL,
    title character varying(200) NOT NULL,
    description text,
    completed boolean DEFAULT false NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL
);

-- constraints

ALTER TABLE public.idempotency_keys ADD CONSTRAINT idempotency_keys_pkey PRIMARY KEY (user_id, key);

ALTER TABLE public.tasks ADD CONSTRAINT tasks_pkey PRIMARY KEY (id);

ALTER TABLE public.idempotency_keys ADD CONSTRAINT idempotency_keys_key_check CHECK (((length(key) >= 1) AND (length(key) <= 255)));

ALTER TABLE public.tasks ADD CONSTRAINT tasks_description_check CHECK ((char_length(description) <= 1000));

ALTER TABLE public.tasks ADD CONSTRAINT tasks_title_check CHECK ((btrim((title)::text) <> ''::text));

-- indexes

CREATE INDEX idempotency_keys_created_at_idx ON public.idempotency_keys USING btree (created_at);

CREATE INDEX tasks_description_trgm_idx ON public.tasks USING gin (description public.gin_trgm_ops) WITH (gin_pending_list_limit='256');

CREATE INDEX tasks_title_trgm_idx ON public.tasks USING gin (title public.gin_trgm_ops) WITH (gin_pending_list_limit='256');

CREATE INDEX tasks_user_id_created_at_id_idx ON public.tasks USING btree (user_id, created_at DESC, id DESC);

-- triggers

CREATE TRIGGER tasks_set_updated_at BEFORE UPDATE ON public.tasks FOR EACH ROW EXECUTE FUNCTION public.tasks_set_updated_at();

-- comments

COMMENT ON TABLE public.idempotency_keys IS 'Idempotency-Key of POST routes (app/idempotency.c); rows older than IDEMPOTENCY_KEY_TTL are deleted by the API';
