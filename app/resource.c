/* resource: see resource.h. The JSON is written by hand (core/jsonw.h), field by field of the
 * model, as tasks.c did for the Task: a page of tasks is the API's hottest reply. */
#include "app/resource.h"

#include <event2/http.h>
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

int resource_columns(const body_spec *model, const PGresult *r, int *cols)
{
    int i = 0;
    for (const field_spec *f = model->fields; f->name && i < RESOURCE_MAX_FIELDS; f++, i++) {
        cols[i] = PQfnumber(r, f->name);
        if (cols[i] < 0) {
            log_error("model %s: the statement returns no column \"%s\" (alias it: `... as %s`)",
                      model->schema, f->name, f->name);
            return -1;
        }
    }
    return 0;
}

/* A binary int2/int4/int8, or the text of an integer. */
static void write_int(jsonw *w, const PGresult *r, int row, int col)
{
    char out[24];
    const unsigned char *p = (const unsigned char *)PQgetvalue(r, row, col);
    int len = PQgetlength(r, row, col);
    if (PQfformat(r, col) != 1 || len == 8) {
        jsonw_lit(w, db_value_int8_text(r, row, col, out));
        return;
    }
    long long v =
        len == 4
            ? (int32_t)((uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3])
            : (int16_t)((uint16_t)(p[0] << 8 | p[1]));
    snprintf(out, sizeof out, "%lld", v);
    jsonw_lit(w, out);
}

static void write_value(jsonw *w, const field_spec *f, const PGresult *r, int row, int col)
{
    if (PQgetisnull(r, row, col)) {
        jsonw_lit(w, "null");
    } else if (f->type == TYPE_INT) {
        write_int(w, r, row, col);
    } else if (f->type == TYPE_BOOL) {
        jsonw_lit(w, db_value_bool(r, row, col) ? "true" : "false");
    } else if (f->format && !strcmp(f->format, "date-time")) {
        char t[DB_ISO_TIME_MAX + 2];
        t[0] = '"';
        size_t n = db_value_iso_time(r, row, col, t + 1);
        t[n + 1] = '"';
        jsonw_raw(w, t, n + 2);
    } else {
        jsonw_str(w, PQgetvalue(r, row, col));
    }
}

void resource_write_row(jsonw *w, const body_spec *model, const PGresult *r, int row,
                        const int *cols)
{
    int i = 0;
    for (const field_spec *f = model->fields; f->name; f++, i++) {
        jsonw_raw(w, i ? ",\"" : "{\"", 2);
        jsonw_lit(w, f->name); /* a model's names are plain identifiers */
        jsonw_raw(w, "\":", 2);
        write_value(w, f, r, row, cols[i]);
    }
    jsonw_raw(w, i ? "}" : "{}", i ? 1 : 2);
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

static bool all_null(const PGresult *r, int row, const int *cols, int n)
{
    for (int i = 0; i < n; i++)
        if (!PQgetisnull(r, row, cols[i]))
            return false;
    return true;
}

static int reply_list(const http_request *req, http_response *res, const PGresult *r,
                      const int *cols, int ncols)
{
    jsonw w = {0};
    jsonw_raw(&w, "[", 1);
    for (int i = 0, n = 0; i < PQntuples(r); i++) {
        if (all_null(r, i, cols, ncols))
            continue;
        if (n++)
            jsonw_raw(&w, ",", 1);
        resource_write_row(&w, req->route->response, r, i, cols);
    }
    jsonw_raw(&w, "]", 1);
    size_t len = 0;
    char *text = jsonw_take(&w, &len);
    return http_reply_json_text(res, req->route->status, text, len);
}

static int reply_object(const http_request *req, http_response *res, const PGresult *r,
                        const int *cols)
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
    resource_write_row(&w, rt->response, r, 0, cols);
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
    int cols[RESOURCE_MAX_FIELDS];
    if (resource_columns(rt->response, r, cols) < 0)
        return http_reply_detail(res, 500, "Internal Server Error");
    if (rt->response_list) {
        int n = 0;
        while (rt->response->fields[n].name)
            n++;
        return reply_list(req, res, r, cols, n);
    }
    return PQntuples(r) ? reply_object(req, res, r, cols) : no_rows(req, res);
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
