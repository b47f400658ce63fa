/* tasks: the Todo API. The only file with Task SQL; every statement is parameterized and every one
 * filters on user_id, so another user's task is indistinguishable from a missing one (404). */
#include "app/tasks.h"

#include <event2/http.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/server.h"
#include "core/jsonw.h"
#include "core/log.h"
#include "db/value.h"

/* Timestamps leave PostgreSQL as UTC timestamps and become ISO 8601 here (db_value_iso_time):
 * cheaper than to_char() on the server, and independent of the session's TimeZone. The task
 * statements ask for binary results (DB_BINARY): the server then skips the text conversion of
 * every value, about a sixth of its work for a page of tasks (docs/benchmarks.md). */
#define TASK_COLS                                                                                  \
    "id, user_id, title, description, completed, created_at at time zone 'UTC', "                  \
    "updated_at at time zone 'UTC'"

static void iso_time(jsonw *w, const PGresult *r, int row, int col)
{
    char t[DB_ISO_TIME_MAX + 2];
    t[0] = '"';
    size_t n = db_value_iso_time(r, row, col, t + 1);
    t[n + 1] = '"';
    jsonw_raw(w, t, n + 2);
}

/* Row `row` of a result with TASK_COLS from column `c` on, as the API's Task object, written by
 * hand (jsonw.h): the keys in jansson's insertion order, the values as jansson would write them. */
static void task_write(jsonw *w, const PGresult *r, int row, int c)
{
    char id[24];
    jsonw_lit(w, "{\"id\":");
    jsonw_lit(w, db_value_int8_text(r, row, c + 0, id));
    jsonw_lit(w, ",\"user_id\":");
    jsonw_str(w, PQgetvalue(r, row, c + 1));
    jsonw_lit(w, ",\"title\":");
    jsonw_str(w, PQgetvalue(r, row, c + 2));
    jsonw_lit(w, ",\"description\":");
    if (PQgetisnull(r, row, c + 3))
        jsonw_lit(w, "null");
    else
        jsonw_str(w, PQgetvalue(r, row, c + 3));
    jsonw_lit(w, db_value_bool(r, row, c + 4) ? ",\"completed\":true" : ",\"completed\":false");
    jsonw_lit(w, ",\"created_at\":");
    iso_time(w, r, row, c + 5);
    jsonw_lit(w, ",\"updated_at\":");
    iso_time(w, r, row, c + 6);
    jsonw_raw(w, "}", 1);
}

/* Replies `status` with the task in row 0 of r. */
static int reply_task_json(http_response *res, int status, const PGresult *r)
{
    jsonw w = {0};
    task_write(&w, r, 0, 0);
    size_t len = 0;
    char *text = jsonw_take(&w, &len);
    return http_reply_json_text(res, status, text, len);
}

static int db_fail(http_response *res, const http_request *req, const db_error *err)
{
    if (err->kind == DB_ERR_QUERY && !strcmp(err->sqlstate, "23514")) /* a CHECK the API missed */
        return http_reply_detail(res, 422, "The task violates a database constraint");
    return http_reply_db_error(res, req, err);
}

/* Replies with the single task of r (or 404 when the statement matched no row). Clears r. */
static int reply_task(http_response *res, PGresult *r, int status)
{
    int rc = PQntuples(r) ? reply_task_json(res, status, r)
                          : http_reply_detail(res, 404, "Task not found");
    PQclear(r);
    return rc;
}

static void add_location(http_response *res, const char *user_id, const char *id)
{
    char *enc = evhttp_uriencode(user_id, -1, 0);
    http_header_add(res, "Location", "/api/%s/tasks/%s", enc ? enc : "", id);
    free(enc);
}

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

int tasks_list(const http_request *req, db_session *s, http_response *res)
{
    const char *status = http_param(req, "status")->str;
    const char *search = http_param(req, "search")->str;
    const char *sort = http_param(req, "sort")->str; /* one of three literals (validated) */
    const char *order = !strcmp(http_param(req, "order")->str, "asc") ? "asc" : "desc";
    char *pattern = search && *search ? like_pattern(search) : NULL;
    const char *completed = !strcmp(status, "completed") ? "true"
                            : !strcmp(status, "pending") ? "false"
                                                         : NULL;
    const char *params[] = {req->user_id, pattern, completed, http_param(req, "limit")->str,
                            http_param(req, "offset")->str};
    /* a search is its own statement, so that its plan (pg_trgm's GIN indexes, 0004) is never a
     * generic one that must also serve "no search"; the count stops past 10,000 (below) */
    const char *match = pattern ? "(title ilike $2 or description ilike $2)" : "$2::text is null";
#define MATCHES "user_id = $1 and ($3::boolean is null or completed = $3) and %s"
    char sql[1024];
    snprintf(sql, sizeof sql,
             "select c.total, t.* from (select count(*) from (select from tasks where " MATCHES
             " limit " LIST_COUNT_CAP_SQL ") m) c(total) left join lateral (select " TASK_COLS
             " from tasks where " MATCHES " order by %s %s, id %s limit $4 offset $5) t on true",
             match, match,
             !strcmp(sort, "title")        ? "title"
             : !strcmp(sort, "updated_at") ? "updated_at"
                                           : "created_at",
             order, order);
#undef MATCHES
    db_error err;
    PGresult *r = db_query_format(s, sql, 5, params, DB_BINARY, &err);
    free(pattern);
    if (!r)
        return db_fail(res, req, &err);
    jsonw w = {0};
    jsonw_raw(&w, "[", 1);
    for (int i = 0, n = 0; i < PQntuples(r); i++) {
        if (PQgetisnull(r, i, 1))
            continue; /* the count row when the page is empty */
        if (n++)
            jsonw_raw(&w, ",", 1);
        task_write(&w, r, i, 1);
    }
    jsonw_raw(&w, "]", 1);
    char total[24] = "0";
    if (PQntuples(r))
        db_value_int8_text(r, 0, 0, total);
    http_header_add(res, "X-Total-Count", "%s", total);
    PQclear(r);
    size_t len = 0;
    char *text = jsonw_take(&w, &len);
    return http_reply_json_text(res, 200, text, len);
}

int tasks_get(const http_request *req, db_session *s, http_response *res)
{
    const char *params[] = {http_param(req, "id")->str, req->user_id};
    db_error err;
    PGresult *r =
        db_query_format(s, "select " TASK_COLS " from tasks where id = $1 and user_id = $2", 2,
                        params, DB_BINARY, &err);
    return r ? reply_task(res, r, 200) : db_fail(res, req, &err);
}

static const char *body_str(const http_request *req, const char *name)
{
    return json_string_value(json_object_get(req->body, name)); /* NULL when absent or null */
}

static const char *body_bool(const http_request *req, const char *name)
{
    return json_is_true(json_object_get(req->body, name)) ? "true" : "false";
}

/* PUT replaces the task: what the body leaves out takes its create-time default. */
int tasks_update(const http_request *req, db_session *s, http_response *res)
{
    const char *params[] = {http_param(req, "id")->str, req->user_id, body_str(req, "title"),
                            body_str(req, "description"), body_bool(req, "completed")};
    db_error err;
    PGresult *r =
        db_query_format(s,
                        "update tasks set title = $3, description = $4, completed = $5, "
                        "updated_at = now() where id = $1 and user_id = $2 returning " TASK_COLS,
                        5, params, DB_BINARY, &err);
    return r ? reply_task(res, r, 200) : db_fail(res, req, &err);
}

int tasks_toggle(const http_request *req, db_session *s, http_response *res)
{
    const char *params[] = {http_param(req, "id")->str, req->user_id};
    db_error err;
    PGresult *r = db_query_format(s,
                                  "update tasks set completed = not completed, updated_at = now() "
                                  "where id = $1 and user_id = $2 returning " TASK_COLS,
                                  2, params, DB_BINARY, &err);
    return r ? reply_task(res, r, 200) : db_fail(res, req, &err);
}

int tasks_delete(const http_request *req, db_session *s, http_response *res)
{
    const char *params[] = {http_param(req, "id")->str, req->user_id};
    db_error err;
    PGresult *r = db_query(s, "delete from tasks where id = $1 and user_id = $2", 2, params, &err);
    if (!r)
        return db_fail(res, req, &err);
    bool deleted = atoi(PQcmdTuples(r)) > 0;
    PQclear(r);
    return deleted ? http_reply_empty(res, 204) : http_reply_detail(res, 404, "Task not found");
}

#define INSERT_TASK                                                                                \
    "insert into tasks (user_id, title, description, completed) values ($1, $2, $3, $4) "          \
    "returning " TASK_COLS

/* Inserts the task; on success fills res (201 + Location) and returns the result (caller clears).
 */
static PGresult *insert_task(const http_request *req, db_session *s, http_response *res,
                             db_error *err)
{
    const char *params[] = {req->user_id, body_str(req, "title"), body_str(req, "description"),
                            body_bool(req, "completed")};
    PGresult *r = db_query_format(s, INSERT_TASK, 4, params, DB_BINARY, err);
    if (r) {
        char id[24];
        add_location(res, req->user_id, db_value_int8_text(r, 0, 0, id));
        reply_task_json(res, 201, r);
    }
    return r;
}

/* With an Idempotency-Key the framework makes this statement idempotent (app/idempotency.h). */
int tasks_create(const http_request *req, db_session *s, http_response *res)
{
    db_error err;
    PGresult *r = insert_task(req, s, res, &err);
    if (!r)
        return db_fail(res, req, &err);
    PQclear(r);
    return 0;
}
