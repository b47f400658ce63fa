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
