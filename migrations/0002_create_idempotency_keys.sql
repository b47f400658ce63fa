-- Idempotency keys for POST /api/{user_id}/tasks: a retry with the same Idempotency-Key and body
-- gets the first response back instead of creating a second task (safe write retries, as Neon
-- advises for connections that can drop mid-request). Rows can be deleted after a day or so:
--   delete from idempotency_keys where created_at < now() - interval '1 day';

-- migrate:up
create table idempotency_keys (
    user_id      text        not null,
    key          text        not null check (length(key) between 1 and 255),
    request_hash text        not null,
    status       integer,
    body         text,
    created_at   timestamptz not null default now(),
    primary key (user_id, key)
);
create index idempotency_keys_created_at_idx on idempotency_keys (created_at);

-- migrate:down
drop table idempotency_keys;
