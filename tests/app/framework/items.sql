-- The framework test server's tables (tests/app/framework/routes.c), created by the tests next to
-- the project's migrations (which hold the framework's own table, idempotency_keys).
create table if not exists items (
    id      bigint generated always as identity primary key,
    user_id text not null,
    name    text not null
);
create table if not exists item_counts (
    user_id text primary key,
    n       integer not null
);
-- A resource with a UNIQUE constraint of its own (one URL per user): an Idempotency-Key retry of
-- its POST must replay the first answer although its insert, run again, violates the constraint;
-- another request for the same URL gets the route's declared 409 (app/resource.h).
create table if not exists links (
    id      bigint generated always as identity primary key,
    user_id text not null,
    url     text not null,
    tag     text,
    constraint links_user_url_key unique (user_id, url)
);
