-- 0003_idempotency_framework: Idempotency-Key is framework code (app/idempotency.c), for every POST
-- route with the `.idempotency_key` flag, not only POST /api/{user_id}/tasks as 0002's header says
-- (0002 stays as applied: migrate refuses edited migrations). A retry with the same key gets the
-- first answer again instead of a second write (safe write retries, as Neon advises for
-- connections that can drop mid-request).
--
-- One statement per request, one round trip: the handler's statement and the key's row are written
-- together, so a key is never seen without its result. `result` holds the handler statement's rows
-- ({"cols": [...], "rows": ["(composite text)", ...]}): a replay runs the handler's own code on
-- them, so it answers exactly what the first request answered. idempotency_key_taken() is what the
-- statement calls when the key is already in use: its SQLSTATE IK001 tells the framework to replay.
-- `status` and `body` are what 0002's code stored (responses from before this migration).

-- migrate:up
alter table idempotency_keys add column result text;
comment on table idempotency_keys is
    'Idempotency-Key of POST routes (app/idempotency.c); rows older than IDEMPOTENCY_KEY_TTL are deleted by the API';

create function idempotency_key_taken() returns text
language plpgsql as $$
begin
    raise exception 'this Idempotency-Key was already used' using errcode = 'IK001';
end;
$$;

-- migrate:down
drop function idempotency_key_taken();
comment on table idempotency_keys is null;
alter table idempotency_keys drop column result;
