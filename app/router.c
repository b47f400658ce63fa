/* router: see router.h. The table is small (a dozen routes), so a linear scan over pre-split
 * templates is both the simplest and, measured, well under a microsecond per request. */
#include "app/router.h"

#include <event2/http.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_SEGMENTS 8

typedef struct {
    int n;
    const char *seg[MAX_SEGMENTS]; /* literal text, or NULL for a {parameter} */
    size_t len[MAX_SEGMENTS];
    int param[MAX_SEGMENTS]; /* index into route->params for parameters */
} template;

static template templates[64];

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

int router_init(char *err, size_t errlen)
{
    if (app_nroutes > (int)(sizeof templates / sizeof *templates)) {
        snprintf(err, errlen, "too many routes (%d)", app_nroutes);
        return -1;
    }
    for (int i = 0; i < app_nroutes; i++) {
        const route *r = &app_routes[i];
        int np = 0;
        while (r->params && r->params[np].name)
            np++;
        if (np > HTTP_MAX_PARAMS) {
            snprintf(err, errlen, "route %s has more than %d parameters", r->path, HTTP_MAX_PARAMS);
            return -1;
        }
        for (int j = 0; j < i; j++)
            if (!strcmp(app_routes[j].operation_id, r->operation_id)) {
                snprintf(err, errlen, "operationId %s is used twice", r->operation_id);
                return -1;
            }
        if (split_template(r, &templates[i], err, errlen) < 0)
            return -1;
    }
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
