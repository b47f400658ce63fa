/* tasks: the Todo API. The only file with Task SQL; every statement is parameterized and every one
 * filters on user_id, so another user's task is indistinguishable from a missing one (404). No
 * JSON here: the route's response model (routes.c: Task) writes the rows, and its errors map what
 * the database answers (404 for no row, 422 for a CHECK the validation missed): app/resource.h. */
#include "app/tasks.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/resource.h"
#include "db/value.h"

/* Timestamps leave PostgreSQL as UTC timestamps and become ISO 8601 in the model's writer
 * (db_value_iso_time): cheaper than to_char() on the server, and independent of the session's
 * TimeZone. resource_query asks for binary results (DB_BINARY): the server then skips the text
 * conversion of every value, about a sixth of its work for a page of tasks (docs/benchmarks.md). */
#define TASK_COLS                                                                                  \
    "id, user_id, title, description, completed, created_at at time zone 'UTC' as created_at, "    \
    "updated_at at time zone 'UTC' as updated_at"

/* ILIKE pattern matching `search` literally: \ % _ escaped, wrapped in %...%. malloc'd. */
static char *like_pattern(const char *search)
{
    char *out = malloc(strlen(search) * 2 + 3), *p = out;
    if (!out)
        return NULL;
    *p++ = '%';
    for (const char *s = search; *s; s++) {
        if (*s == '\\' || *s == '%' || *s == '_')
            *p++ = '\\';
        *p++ = *s;
    }
    *p++ = '%';
    *p = '\0';
    return out;
}

/* X-Total-Count counts matches up to 10,000: LIST_COUNT_CAP_SQL (10,001) means more, and no list
 * costs more than counting that many rows (declared with the route's header, app/routes.c). */
#define LIST_COUNT_CAP_SQL "10001"

size_t tasks_list_sql(char *buf, size_t size, bool search, bool status, const char *sort,
                      bool ascending)
{
    /* a search is its own statement, so that its plan (pg_trgm's GIN indexes, 0004) is never a
     * generic one that must also serve "no search"; a status filter likewise, so that without
     * one the count can be an index-only scan. The filters left out keep their parameter as a
     * one-time `is null` test. */
    const char *match = search ? "(title ilike $2 or description ilike $2)" : "$2::text is null";
    const char *done = status ? "completed = $3" : "$3::boolean is null";
    /* the table's own column, not the output's UTC timestamp of that name: the same order, and
     * (user_id, created_at DESC, id DESC) reads a page in it instead of sorting all of the user's
     * tasks (migrations/0006) */
    const char *key = !strcmp(sort, "title")        ? "tasks.title"
                      : !strcmp(sort, "updated_at") ? "tasks.updated_at"
                                                    : "tasks.created_at";
    const char *order = ascending ? "asc" : "desc";
#define MATCHES "user_id = $1 and %s and %s"
    int n =
        snprintf(buf, size,
                 "select c.total, t.* from (select count(*) from (select from tasks where " MATCHES
                 " limit " LIST_COUNT_CAP_SQL ") m) c(total) left join lateral (select " TASK_COLS
                 " from tasks where " MATCHES " order by %s %s, tasks.id %s limit $4 offset $5) t "
                 "on true",
                 done, match, done, match, key, order, order);
#undef MATCHES
    return n < 0 ? 0 : (size_t)n;
}

/* The list's 24 statements (search, status, 3 sorts, 2 orders), written once: a formatted print
 * of 600 bytes per request cost more than the rest of the handler, and a statement that stays at
 * one address is found among the connection's prepared ones without hashing it again (db/pipe.c).
 */
static const char *const sorts[] = {"created_at", "updated_at", "title"};
static char list_sqls[2][2][3][2][1024];
static pthread_once_t list_sqls_once = PTHREAD_ONCE_INIT;

static void list_sqls_write(void)
{
    for (int a = 0; a < 2; a++)
        for (int b = 0; b < 2; b++)
            for (int c = 0; c < 3; c++)
                for (int d = 0; d < 2; d++)
                    tasks_list_sql(list_sqls[a][b][c][d], sizeof list_sqls[a][b][c][d], a, b,
                                   sorts[c], d);
}

static const char *list_sql(bool search, bool status, const char *sort, bool ascending)
{
    pthread_once(&list_sqls_once, list_sqls_write);
    int c = !strcmp(sort, "updated_at") ? 1 : !strcmp(sort, "title") ? 2 : 0;
    return list_sqls[search][status][c][ascending];
}

int tasks_list(const http_request *req, db_session *s, http_response *res)
{
    const char *status = http_param(req, "status")->str;
    const char *search = http_param(req, "search")->str;
    char *pattern = search && *search ? like_pattern(search) : NULL;
    const char *completed = !strcmp(status, "completed") ? "true"
                            : !strcmp(status, "pending") ? "false"
                                                         : NULL;
    const char *params[] = {req->user_id, pattern, completed, http_param(req, "limit")->str,
                            http_param(req, "offset")->str};
    const char *sql = list_sql(pattern != NULL, completed != NULL, http_param(req, "sort")->str,
                               !strcmp(http_param(req, "order")->str, "asc"));
    db_error err;
    PGresult *r = db_query_format(s, sql, 5, params, DB_BINARY, &err);
    free(pattern);
    char total[24] = "0";
    if (r && PQntuples(r))
        db_value_int8_text(r, 0, 0, total);
    if (r)
        http_header_add(res, "X-Total-Count", "%s", total);
    return resource_reply(req, res, r, &err); /* the count row of an empty page is no task */
}

int tasks_get(const http_request *req, db_session *s, http_response *res)
{
    const char *params[] = {http_param(req, "id")->str, req->user_id};
    return resource_query(
        req, s, res, "select " TASK_COLS " from tasks where id = $1 and user_id = $2", 2, params);
}

/* PUT replaces the task: what the body leaves out takes its default (the body's spec fills it). */
int tasks_update(const http_request *req, db_session *s, http_response *res)
{
    const char *params[] = {http_param(req, "id")->str, req->user_id, http_body_str(req, "title"),
                            http_body_str(req, "description"), http_body_str(req, "completed")};
    return resource_query(req, s, res,
                          "update tasks set title = $3, description = $4, completed = $5, "
                          "updated_at = now() where id = $1 and user_id = $2 returning " TASK_COLS,
                          5, params);
}

int tasks_toggle(const http_request *req, db_session *s, http_response *res)
{
    const char *params[] = {http_param(req, "id")->str, req->user_id};
    return resource_query(req, s, res,
                          "update tasks set completed = not completed, updated_at = now() "
                          "where id = $1 and user_id = $2 returning " TASK_COLS,
                          2, params);
}

int tasks_delete(const http_request *req, db_session *s, http_response *res)
{
    const char *params[] = {http_param(req, "id")->str, req->user_id};
    return resource_query(req, s, res, "delete from tasks where id = $1 and user_id = $2", 2,
                          params);
}

/* With an Idempotency-Key the framework makes this statement idempotent (app/idempotency.h);
 * Location and the 201 come from the route (resource.h). */
int tasks_create(const http_request *req, db_session *s, http_response *res)
{
    const char *params[] = {req->user_id, http_body_str(req, "title"),
                            http_body_str(req, "description"), http_body_str(req, "completed")};
    return resource_query(req, s, res,
                          "insert into tasks (user_id, title, description, completed) "
                          "values ($1, $2, $3, $4) returning " TASK_COLS,
                          4, params);
}
