/* router: see router.h. The table is small (ROUTER_MAX_ROUTES at most), so a linear scan over
 * pre-split templates is both the simplest and, measured, well under a microsecond per request. */
#include "app/router.h"

#include <event2/http.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/resource.h"

#define MAX_SEGMENTS 8

typedef struct {
    int n;
    const char *seg[MAX_SEGMENTS]; /* literal text, or NULL for a {parameter} */
    size_t len[MAX_SEGMENTS];
    int param[MAX_SEGMENTS]; /* index into route->params for parameters */
} template;

static template templates[ROUTER_MAX_ROUTES];

static int param_index(const route *r, const char *name, size_t len)
{
    for (int i = 0; r->params && r->params[i].name; i++)
        if (r->params[i].in == PARAM_PATH && strlen(r->params[i].name) == len &&
            !strncmp(r->params[i].name, name, len))
            return i;
    return -1;
}

static int split_template(const route *r, template *t, char *err, size_t errlen)
{
    const char *p = r->path;
    t->n = 0;
    while (*p == '/') {
        const char *start = ++p;
        while (*p && *p != '/')
            p++;
        if (t->n == MAX_SEGMENTS) {
            snprintf(err, errlen, "route %s has more than %d segments", r->path, MAX_SEGMENTS);
            return -1;
        }
        size_t len = (size_t)(p - start);
        if (len > 2 && start[0] == '{' && start[len - 1] == '}') {
            t->seg[t->n] = NULL;
            t->param[t->n] = param_index(r, start + 1, len - 2);
            if (t->param[t->n] < 0) {
                snprintf(err, errlen, "route %s: path parameter %.*s is not declared", r->path,
                         (int)len - 2, start + 1);
                return -1;
            }
        } else {
            t->seg[t->n] = start;
            t->len[t->n] = len;
        }
        t->n++;
    }
    return 0;
}

int router_owner_param(const route *r)
{
    if (!r->auth || (r->owner && !*r->owner))
        return -1;
    const char *name = r->owner ? r->owner : "user_id";
    for (int i = 0; r->params && r->params[i].name; i++)
        if (r->params[i].in == PARAM_PATH && !strcmp(r->params[i].name, name))
            return i;
    return -1;
}

/* Every model the route names. */
static int route_models(const route *r, const body_spec *out[], int max)
{
    int n = 0;
    if (r->body && n < max)
        out[n++] = r->body;
    if (r->response && n < max)
        out[n++] = r->response;
    for (const route_error *e = r->errors; e && e->status && n < max; e++)
        if (e->model)
            out[n++] = e->model;
    return n;
}

/* Two different models with one schema name would make /openapi.json document one of them for
 * both; the framework's own schemas keep their names. */
static int check_models(const route *table, const route *r, char *err, size_t errlen)
{
    static const char *const reserved[] = {"HTTPError", "HTTPValidationError", "ValidationError",
                                           "InternalError", NULL};
    const body_spec *mine[16];
    int n = route_models(r, mine, 16);
    for (int k = 0; k < n; k++) {
        if (!mine[k]->schema || !*mine[k]->schema) {
            snprintf(err, errlen, "route %s %s: a model without a schema name", r->method, r->path);
            return -1;
        }
        for (int j = 0; reserved[j]; j++)
            if (!strcmp(mine[k]->schema, reserved[j])) {
                snprintf(err, errlen, "route %s %s: model name %s is the framework's", r->method,
                         r->path, reserved[j]);
                return -1;
            }
        for (const route *o = table; o <= r; o++) {
            const body_spec *theirs[16];
            int m = route_models(o, theirs, 16);
            for (int j = 0; j < m; j++)
                if (theirs[j] != mine[k] && !strcmp(theirs[j]->schema, mine[k]->schema)) {
                    snprintf(err, errlen, "two different models are named %s", mine[k]->schema);
                    return -1;
                }
        }
    }
    return 0;
}

/* A response model's fields are columns found by name and written as JSON keys without escaping
 * (app/resource.h): identifiers, and no more of them than a layout holds. */
static int check_response(const route *r, char *err, size_t errlen)
{
    int n = 0;
    for (const field_spec *f = r->response ? r->response->fields : NULL; f && f->name; f++, n++) {
        size_t len =
            strspn(f->name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_0123456789");
        if (!len || f->name[len] || (f->name[0] >= '0' && f->name[0] <= '9') ||
            len > RESOURCE_NAME_MAX) {
            snprintf(err, errlen,
                     "route %s %s: response field \"%s\" is not an identifier of at most %d "
                     "characters (a column name)",
                     r->method, r->path, f->name, RESOURCE_NAME_MAX);
            return -1;
        }
    }
    if (n > RESOURCE_MAX_FIELDS) {
        snprintf(err, errlen, "route %s %s: model %s has more than %d fields (RESOURCE_MAX_FIELDS)",
                 r->method, r->path, r->response->schema, RESOURCE_MAX_FIELDS);
        return -1;
    }
    return 0;
}

int router_check(const route *table, int n, char *err, size_t errlen)
{
    if (n > ROUTER_MAX_ROUTES) {
        snprintf(err, errlen,
                 "too many routes (%d): the limit is ROUTER_MAX_ROUTES (%d) in app/router.h", n,
                 ROUTER_MAX_ROUTES);
        return -1;
    }
    for (int i = 0; i < n; i++) {
        const route *r = &table[i];
        int np = 0;
        while (r->params && r->params[np].name)
            np++;
        if (np > HTTP_MAX_PARAMS) {
            snprintf(err, errlen, "route %s has more than %d parameters", r->path, HTTP_MAX_PARAMS);
            return -1;
        }
        for (int j = 0; j < i; j++)
            if (!strcmp(table[j].operation_id, r->operation_id)) {
                snprintf(err, errlen, "operationId %s is used twice", r->operation_id);
                return -1;
            }
        if (r->auth && r->owner && *r->owner && router_owner_param(r) < 0) {
            snprintf(err, errlen, "route %s %s: owner parameter %s is not a path parameter",
                     r->method, r->path, r->owner);
            return -1;
        }
        if (!r->hidden && !r->status) {
            snprintf(err, errlen, "route %s %s has no success status", r->method, r->path);
            return -1;
        }
        template t;
        if (check_models(table, r, err, errlen) < 0 || check_response(r, err, errlen) < 0 ||
            split_template(r, &t, err, errlen) < 0)
            return -1;
    }
    return 0;
}

int router_init(char *err, size_t errlen)
{
    if (router_check(app_routes, app_nroutes, err, errlen) < 0)
        return -1;
    for (int i = 0; i < app_nroutes; i++)
        split_template(&app_routes[i], &templates[i], err, errlen);
    return 0;
}

/* Splits a raw path into segments (pointers into `path`, not decoded). -1 when too many. */
static int split_path(const char *path, const char *seg[], size_t len[])
{
    int n = 0;
    const char *p = path;
    while (*p == '/') {
        const char *start = ++p;
        while (*p && *p != '/')
            p++;
        if (n == MAX_SEGMENTS)
            return -1;
        seg[n] = start;
        len[n] = (size_t)(p - start);
        n++;
    }
    return *p ? -1 : n;
}

static bool matches(const template *t, int n, const char *seg[], const size_t len[])
{
    if (t->n != n)
        return false;
    for (int i = 0; i < n; i++) {
        if (t->seg[i] ? (t->len[i] != len[i] || memcmp(t->seg[i], seg[i], len[i])) : len[i] == 0)
            return false;
    }
    return true;
}

static void add_allow(route_match *m, const char *method)
{
    size_t n = strlen(m->allow);
    if (strstr(m->allow, method))
        return;
    snprintf(m->allow + n, sizeof m->allow - n, "%s%s", n ? ", " : "", method);
}

/* Scans the table for `n` segments; fills m for the first full match, or collects Allow. */
static bool scan(const char *method, int n, const char *seg[], const size_t len[], route_match *m)
{
    bool path_found = false;
    for (int i = 0; i < app_nroutes; i++) {
        if (!matches(&templates[i], n, seg, len))
            continue;
        path_found = true;
        if (method && !strcmp(app_routes[i].method, method) && m->kind != MATCH_FOUND) {
            m->kind = MATCH_FOUND;
            m->route = &app_routes[i];
            m->index = i;
        }
        add_allow(m, app_routes[i].method);
    }
    return path_found;
}

static void decode_params(const char *seg[], const size_t len[], route_match *m)
{
    const template *t = &templates[m->index];
    for (int i = 0; i < t->n; i++) {
        if (t->seg[i])
            continue;
        /* matches() checked that t->n segments were split, so seg[i] is set */
        char *raw = strndup(seg[i], len[i]); // NOLINT(clang-analyzer-core.CallAndMessage)
        size_t out_len = 0;
        char *decoded = evhttp_uridecode(raw, 0, &out_len);
        free(raw);
        m->segments[t->param[i]] = decoded;
    }
}

void router_match(const char *method, const char *path, route_match *m)
{
    memset(m, 0, sizeof *m);
    m->kind = MATCH_NOT_FOUND;
    m->index = -1;
    const char *seg[MAX_SEGMENTS];
    size_t len[MAX_SEGMENTS];
    int n = split_path(path, seg, len);
    if (n < 0)
        return;
    if (scan(method, n, seg, len, m)) {
        if (m->kind == MATCH_FOUND)
            decode_params(seg, len, m);
        else
            m->kind = MATCH_NO_METHOD;
        return;
    }
    /* FastAPI's redirect_slashes: "/api/u/tasks/" -> 307 to "/api/u/tasks" */
    if (n > 1 && len[n - 1] == 0) {
        route_match other;
        memset(&other, 0, sizeof other);
        if (scan(NULL, n - 1, seg, len, &other))
            m->kind = MATCH_REDIRECT;
    }
}

void router_match_free(route_match *m)
{
    for (int i = 0; i < HTTP_MAX_PARAMS; i++) {
        free(m->segments[i]);
        m->segments[i] = NULL;
    }
}
