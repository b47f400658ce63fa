/* resource: see resource.h. The JSON is written by hand (core/jsonw.h): a page of tasks is the
 * API's hottest reply, so what can be decided per result (columns, value kinds, key text) is not
 * decided again per row (resource_layout). */
#include "app/resource.h"

#include <event2/http.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/router.h"
#include "core/log.h"
#include "db/value.h"

const char *http_body_str(const http_request *req, const char *name)
{
    json_t *v = json_object_get(req->body, name);
    if (json_is_boolean(v))
        return json_is_true(v) ? "true" : "false";
    return json_string_value(v); /* NULL when absent or null */
}

/* How a field's values are written (resource_layout.f[].kind), decided once per result. */
enum {
    K_STRING,    /* a quoted, escaped string */
    K_INT_TEXT,  /* an integer's text, as it is */
    K_INT_BIN,   /* a binary int2/int4/int8 */
    K_BOOL_TEXT, /* "t" or "f" */
    K_BOOL_BIN,  /* one byte */
    K_TIME       /* a timestamp as ISO 8601 (db_value_iso_time: text or binary) */
};

static int kind_of(const field_spec *f, const PGresult *r, int col)
{
    bool bin = PQfformat(r, col) == 1;
    if (f->type == TYPE_INT)
        return bin ? K_INT_BIN : K_INT_TEXT;
    if (f->type == TYPE_BOOL)
        return bin ? K_BOOL_BIN : K_BOOL_TEXT;
    return f->format && !strcmp(f->format, "date-time") ? K_TIME : K_STRING;
}

/* The column named exactly `name`, case and all (a field "dueDate" needs `as "dueDate"`, where
 * PQfnumber would fold an unquoted name to lower case): `guess` when it is that column (the select
 * list in the model's order, the usual case: one comparison), else the first of that name. -1
 * when there is none. */
static int column_of(const PGresult *r, const char *name, int guess)
{
    int n = PQnfields(r);
    if (guess < n && !strcmp(PQfname(r, guess), name))
        return guess;
    for (int j = 0; j < n; j++)
        if (!strcmp(PQfname(r, j), name))
            return j;
    return -1;
}

int resource_layout_of(resource_layout *l, const body_spec *model, const PGresult *r)
{
    l->n = 0;
    for (const field_spec *f = model->fields; f->name; f++) {
        size_t len = strlen(f->name);
        if (l->n == RESOURCE_MAX_FIELDS || len > RESOURCE_NAME_MAX) {
            log_error("model %s: field \"%s\" is past RESOURCE_MAX_FIELDS or RESOURCE_NAME_MAX",
                      model->schema, f->name);
            return -1;
        }
        int col = column_of(r, f->name, l->n ? l->f[l->n - 1].col + 1 : 0);
        if (col < 0) {
            log_error("model %s: the statement returns no column \"%s\" (alias it: `... as %s`)",
                      model->schema, f->name, f->name);
            return -1;
        }
        resource_field *lf = &l->f[l->n];
        lf->col = col;
        lf->kind = kind_of(f, r, col);
        /* memcpy, not snprintf: this runs for every reply, and a formatted print costs as much
         * as writing the row itself */
        lf->key[0] = l->n ? ',' : '{';
        lf->key[1] = '"';
        memcpy(lf->key + 2, f->name, len);
        memcpy(lf->key + 2 + len, "\":", 2);
        lf->key_len = (int)len + 4;
        l->n++;
    }
    return 0;
}

/* A binary int2/int4/int8, big-endian as it came off the wire. */
static long long binary_int(const PGresult *r, int row, int col)
{
    const unsigned char *p = (const unsigned char *)PQgetvalue(r, row, col);
    int len = PQgetlength(r, row, col);
    uint64_t v = 0;
    for (int i = 0; i < len && i < 8; i++)
        v = v << 8 | p[i];
    return len == 8   ? (long long)(int64_t)v
           : len == 4 ? (int32_t)(uint32_t)v
                      : (int16_t)(uint16_t)v;
}

static void write_value(jsonw *w, int kind, const PGresult *r, int row, int col)
{
    switch (kind) {
    case K_INT_TEXT:
        jsonw_lit(w, PQgetvalue(r, row, col));
        break;
    case K_INT_BIN:
        jsonw_int(w, binary_int(r, row, col));
        break;
    case K_BOOL_TEXT:
    case K_BOOL_BIN: {
        char c = PQgetvalue(r, row, col)[0];
        bool on = kind == K_BOOL_BIN ? c != 0 : c == 't';
        jsonw_raw(w, on ? "true" : "false", on ? 4 : 5);
        break;
    }
    case K_TIME: {
        char t[DB_ISO_TIME_MAX + 2];
        t[0] = '"';
        size_t n = db_value_iso_time(r, row, col, t + 1);
        t[n + 1] = '"';
        jsonw_raw(w, t, n + 2);
        break;
    }
    default:
        jsonw_str(w, PQgetvalue(r, row, col));
    }
}

_Static_assert(sizeof((resource_field *)0)->key >= 32, "jsonw_raw32 reads 32 bytes of a key");

void resource_write_row(jsonw *w, const resource_layout *l, const PGresult *r, int row)
{
    for (int i = 0; i < l->n; i++) {
        jsonw_raw32(w, l->f[i].key, (size_t)l->f[i].key_len);
        if (PQgetisnull(r, row, l->f[i].col))
            jsonw_raw(w, "null", 4);
        else
            write_value(w, l->f[i].kind, r, row, l->f[i].col);
    }
    jsonw_raw(w, l->n ? "}" : "{}", l->n ? 1 : 2);
}

char *resource_path(const http_request *req)
{
    const route *rt = req->route;
    jsonw w = {0};
    for (const char *p = rt->path; *p;) {
        const char *close = *p == '{' ? strchr(p, '}') : NULL;
        if (!close) {
            size_t n = strcspn(p, "{");
            jsonw_raw(&w, p, n ? n : 1);
            p += n ? n : 1;
            continue;
        }
        for (int i = 0; rt->params && rt->params[i].name; i++)
            if (strlen(rt->params[i].name) == (size_t)(close - p - 1) &&
                !strncmp(rt->params[i].name, p + 1, (size_t)(close - p - 1))) {
                char *enc = evhttp_uriencode(req->values[i].str ? req->values[i].str : "", -1, 0);
                jsonw_lit(&w, enc ? enc : "");
                free(enc);
            }
        p = close + 1;
    }
    size_t len;
    return jsonw_take(&w, &len);
}

static const route_error *mapping(const route *rt, const db_error *err)
{
    for (const route_error *e = rt->errors; e && e->status; e++) {
        if (!e->sqlstate && !e->constraint)
            continue;
        if ((!e->sqlstate || !strcmp(e->sqlstate, err->sqlstate)) &&
            (!e->constraint || !strcmp(e->constraint, err->constraint)))
            return e;
    }
    return NULL;
}

static int reply_declared(http_response *res, const route_error *e)
{
    return http_reply_detail(res, e->status, e->detail ? e->detail : e->description);
}

int resource_reply_error(const http_request *req, http_response *res, const db_error *err)
{
    const route_error *e = err->kind == DB_ERR_QUERY ? mapping(req->route, err) : NULL;
    return e ? reply_declared(res, e) : http_reply_db_error(res, req, err);
}

static int no_rows(const http_request *req, http_response *res)
{
    for (const route_error *e = req->route->errors; e && e->status; e++)
        if (e->no_rows)
            return reply_declared(res, e);
    log_error("route %s %s: the statement returned no row and the route declares no .no_rows "
              "error",
              req->route->method, req->route->path);
    return http_reply_detail(res, 500, "Internal Server Error");
}

static bool all_null(const PGresult *r, int row, const resource_layout *l)
{
    for (int i = 0; i < l->n; i++)
        if (!PQgetisnull(r, row, l->f[i].col))
            return false;
    return true;
}

static int reply_list(const http_request *req, http_response *res, const PGresult *r,
                      const resource_layout *l)
{
    jsonw w = {0};
    jsonw_raw(&w, "[", 1);
    for (int i = 0, n = 0; i < PQntuples(r); i++) {
        if (all_null(r, i, l))
            continue;
        if (n++)
            jsonw_raw(&w, ",", 1);
        resource_write_row(&w, l, r, i);
    }
    jsonw_raw(&w, "]", 1);
    size_t len = 0;
    char *text = jsonw_take(&w, &len);
    return http_reply_json_text(res, req->route->status, text, len);
}

static int reply_object(const http_request *req, http_response *res, const PGresult *r,
                        const resource_layout *l)
{
    const route *rt = req->route;
    if (rt->location) {
        int id = PQfnumber(r, "id");
        char *path = resource_path(req), num[24];
        http_header_add(res, "Location", "%s/%s", path ? path : "",
                        id >= 0 ? db_value_int8_text(r, 0, id, num) : "");
        free(path);
    }
    jsonw w = {0};
    resource_write_row(&w, l, r, 0);
    size_t len = 0;
    char *text = jsonw_take(&w, &len);
    return http_reply_json_text(res, rt->status, text, len);
}

static int reply_rows(const http_request *req, http_response *res, const PGresult *r)
{
    const route *rt = req->route;
    if (!rt->response) {
        bool changed = PQntuples(r) > 0 || atoi(PQcmdTuples((PGresult *)r)) > 0;
        return changed ? http_reply_empty(res, rt->status) : no_rows(req, res);
    }
    resource_layout l;
    if (resource_layout_of(&l, rt->response, r) < 0)
        return http_reply_detail(res, 500, "Internal Server Error");
    if (rt->response_list)
        return reply_list(req, res, r, &l);
    return PQntuples(r) ? reply_object(req, res, r, &l) : no_rows(req, res);
}

int resource_reply(const http_request *req, http_response *res, PGresult *r, const db_error *err)
{
    if (!r)
        return resource_reply_error(req, res, err);
    int rc = reply_rows(req, res, r);
    PQclear(r);
    return rc;
}

int resource_query(const http_request *req, db_session *s, http_response *res, const char *sql,
                   int nparams, const char *const *params)
{
    db_error err;
    PGresult *r = db_query_format(s, sql, nparams, params, DB_BINARY, &err);
    return resource_reply(req, res, r, &err);
}
