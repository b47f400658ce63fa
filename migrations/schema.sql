-- schema.sql: the schema the migrations produce, written by `migrate dump` from the
-- system catalogs (schema_migrations left out). Do not edit: `migrate check` compares
-- the database with it.
-- migrations applied: 0001

-- functions

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

ALTER TABLE public.tasks ADD CONSTRAINT tasks_pkey PRIMARY KEY (id);

ALTER TABLE public.tasks ADD CONSTRAINT tasks_description_check CHECK ((char_length(description) <= 1000));

ALTER TABLE public.tasks ADD CONSTRAINT tasks_title_check CHECK ((btrim((title)::text) <> ''::text));

-- indexes

CREATE INDEX tasks_user_id_completed_idx ON public.tasks USING btree (user_id, completed);

CREATE INDEX tasks_user_id_created_at_idx ON public.tasks USING btree (user_id, created_at DESC);

-- triggers

CREATE TRIGGER tasks_set_updated_at BEFORE UPDATE ON public.tasks FOR EACH ROW EXECUTE FUNCTION public.tasks_set_updated_at();
