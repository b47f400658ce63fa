-- tasks_write_tails_indexes: drafted by `migrate diff` from schema.sql, reviewed: the draft rebuilt
-- both GIN indexes to change a storage parameter (search without an index meanwhile); ALTER INDEX
-- ... SET changes it in place under SHARE UPDATE EXCLUSIVE, which blocks no read or write.
-- Why (bench/endpoints.sh, docs/benchmarks.md): PATCH .../complete and POST had a p99 of 30-90 ms
-- where every other endpoint had 4-6 ms, in pgbench running the same SQL too. Two causes:
--  - tasks_user_id_completed_idx made every toggle a non-HOT update: a new entry in every index,
--    the two GIN indexes included. Without it, a toggle touches no index (the list's status
--    filter is served by tasks_user_id_created_at_idx, its count capped at 10,000 rows);
--  - a GIN index collects new entries in a pending list and the insert that finds it past
--    gin_pending_list_limit (4 MB by default) merges it into the index, tens of ms in that one
--    request. At 256 kB the merge is a sixteenth of that, and writes still skip most GIN work.
-- DROP INDEX CONCURRENTLY cannot run inside a transaction:
-- migrate:no-transaction

-- migrate:up
DROP INDEX CONCURRENTLY IF EXISTS public.tasks_user_id_completed_idx;
ALTER INDEX public.tasks_title_trgm_idx SET (gin_pending_list_limit = 256);
ALTER INDEX public.tasks_description_trgm_idx SET (gin_pending_list_limit = 256);

-- migrate:down
ALTER INDEX public.tasks_description_trgm_idx RESET (gin_pending_list_limit);
ALTER INDEX public.tasks_title_trgm_idx RESET (gin_pending_list_limit);
CREATE INDEX CONCURRENTLY IF NOT EXISTS tasks_user_id_completed_idx ON public.tasks USING btree (user_id, completed);
