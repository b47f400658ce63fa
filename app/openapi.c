/* openapi: see openapi.h. Shapes follow what FastAPI emits (HTTPValidationError, ValidationError,
 * HTTPBearer), so generated clients look the same. Nothing here is about a resource: every
 * operation, model and tag comes from the route table (routes.c); the statuses the framework
 * itself answers are listed in router.h and derived from the route's fields here. */
#include "app/openapi.h"

#include <ctype.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "app/project.h"
#include "app/router.h"

static json_t *ref(const char *name)
{
    char buf[128];
    snprintf(buf, sizeof buf, "#/components/schemas/%s", name);
    return json_pack("{ss}", "$ref", buf);
}

static json_t *json_content(json_t *schema)
{
    return json_pack("{s{so}}", "application/json", "schema", schema);
}

static json_t *param_schema(const param_spec *p)
{
    json_t *s = json_pack("{ss}", "type", p->type == TYPE_INT ? "integer" : "string");
    if (p->has_ge)
        json_object_set_new(s, "minimum", json_integer(p->ge));
    if (p->has_le)
        json_object_set_new(s, "maximum", json_integer(p->le));
    if (p->min_len)
        json_object_set_new(s, "minLength", json_integer(p->min_len));
    if (p->max_len)
        json_object_set_new(s, "maxLength", json_integer(p->max_len));
    if (p->choices) {
        json_t *e = json_array();
        for (int i = 0; p->choices[i]; i++)
            json_array_append_new(e, json_string(p->choices[i]));
        json_object_set_new(s, "enum", e);
    }
    if (p->def)
        json_object_set_new(
            s, "default", p->type == TYPE_INT ? json_integer(atoll(p->def)) : json_string(p->def));
    return s;
}

static json_t *parameters(const route *r)
{
    json_t *list = json_array();
    for (int i = 0; r->params && r->params[i].name; i++) {
        const param_spec *p = &r->params[i];
        json_array_append_new(list, json_pack("{ss ss sb ss so}", "name", p->name, "in",
                                              p->in == PARAM_PATH ? "path" : "query", "required",
                                              p->in == PARAM_PATH, "description",
                                              p->description ? p->description : p->name, "schema",
                                              param_schema(p)));
    }
    if (r->idempotency_key)
        json_array_append_new(
            list, json_pack("{ss ss sb ss s{ss si}}", "name", "Idempotency-Key", "in", "header",
                            "required", 0, "description",
                            "A retry with the same key and body returns the first response "
                            "(keys expire after IDEMPOTENCY_KEY_TTL, a day by default)",
                            "schema", "type", "string", "maxLength", 255));
    return list;
}

static const char *type_name(value_type t)
{
    return t == TYPE_BOOL ? "boolean" : t == TYPE_INT ? "integer" : "string";
}

/* A model (request body or response) as a JSON Schema object. */
static json_t *model_schema(const body_spec *b)
{
    json_t *props = json_object(), *required = json_array();
    for (const field_spec *f = b->fields; f->name; f++) {
        const char *type = type_name(f->type);
        json_t *s = f->nullable ? json_pack("{s[ss]}", "type", type, "null")
                                : json_pack("{ss}", "type", type);
        if (f->format)
            json_object_set_new(s, "format", json_string(f->format));
        if (f->min_len)
            json_object_set_new(s, "minLength", json_integer(f->min_len));
        if (f->max_len)
            json_object_set_new(s, "maxLength", json_integer(f->max_len));
        if (f->pattern)
            json_object_set_new(s, "pattern", json_string(f->pattern));
        else if (f->not_blank)
            json_object_set_new(s, "pattern", json_string("\\S"));
        if (f->def_json)
            json_object_set_new(s, "default", json_loads(f->def_json, JSON_DECODE_ANY, NULL));
        if (f->description)
            json_object_set_new(s, "description", json_string(f->description));
        json_object_set_new(props, f->name, s);
        if (f->required)
            json_array_append_new(required, json_string(f->name));
    }
    return json_pack("{ss ss so so}", "type", "object", "title", b->schema, "properties", props,
                     "required", required);
}

static json_t *header(const char *description, const char *type, bool required)
{
    return json_pack("{ss sb s{ss}}", "description", description, "required", required, "schema",
                     "type", type);
}

/* Adds one possible answer for `status` to `responses`. A status answered in more than one way
 * (422 as a validation list or as text, 503 from the framework or from /ready) gets every body
 * (anyOf), every header (required only when every answer sends it) and both descriptions. `schema`
 * (stolen) NULL: no body. */
static void add_response(json_t *responses, int status, const char *description, const char *media,
                         json_t *schema, json_t *headers)
{
    char code[8];
    snprintf(code, sizeof code, "%d", status);
    json_t *resp = json_object_get(responses, code);
    if (!resp) {
        resp = json_pack("{ss}", "description", description);
        json_object_set_new(responses, code, resp);
        if (schema)
            json_object_set_new(resp, "content", json_pack("{s{so}}", media, "schema", schema));
        if (headers)
            json_object_set_new(resp, "headers", headers);
        return;
    }
    const char *old = json_string_value(json_object_get(resp, "description"));
    if (!strstr(old, description)) {
        char *both = NULL;
        if (asprintf(&both, "%s; or: %s", old, description) > 0) {
            json_object_set_new(resp, "description", json_string(both));
            free(both);
        }
    }
    if (schema) {
        json_t *mt = json_object_get(json_object_get(resp, "content"), media);
        json_t *cur = json_object_get(mt, "schema");
        if (!cur) {
            json_t *content = json_object_get(resp, "content");
            if (!content)
                json_object_set_new(resp, "content", content = json_object());
            json_object_set_new(content, media, json_pack("{so}", "schema", schema));
        } else if (json_equal(cur, schema)) {
            json_decref(schema);
        } else {
            json_t *any = json_object_get(cur, "anyOf");
            bool known = false;
            size_t i;
            json_t *one;
            json_array_foreach(any, i, one) known |= json_equal(one, schema);
            if (known)
                json_decref(schema);
            else if (any)
                json_array_append_new(any, schema);
            else
                json_object_set_new(mt, "schema", json_pack("{s[Oo]}", "anyOf", cur, schema));
        }
    }
    json_t *hs = json_object_get(resp, "headers");
    const char *name;
    json_t *h;
    json_object_foreach(hs, name, h) if (!json_object_get(headers, name))
        json_object_set_new(h, "required", json_false());
    if (headers) {
        json_object_foreach(headers, name, h)
        {
            if (!hs)
                json_object_set_new(resp, "headers", hs = json_object());
            if (!json_object_get(hs, name)) {
                json_object_set_new(h, "required", json_false());
                json_object_set(hs, name, h);
            }
        }
        json_decref(headers);
    }
}

static json_t *success_headers(const route *r)
{
    json_t *hs = json_object();
    if (r->location)
        json_object_set_new(hs, "Location", header("URL of the created resource", "string", true));
    for (const header_spec *h = r->headers; h && h->name; h++)
        json_object_set_new(
            hs, h->name,
            header(h->description ? h->description : h->name, type_name(h->type), true));
    if (r->idempotency_key)
        json_object_set_new(hs, "Idempotent-Replayed",
                            header("true when this is the stored response of an earlier request "
                                   "with the same Idempotency-Key",
                                   "string", false));
    if (!json_object_size(hs)) {
        json_decref(hs);
        return NULL;
    }
    return hs;
}

static void add_error(json_t *responses, int status, const char *description, const char *model,
                      json_t *headers)
{
    add_response(responses, status, description, "application/json", ref(model), headers);
}

static bool has_path_param(const route *r)
{
    for (int i = 0; r->params && r->params[i].name; i++)
        if (r->params[i].in == PARAM_PATH)
            return true;
    return false;
}

/* A parameter value validation can refuse (an integer, a bound, a length, a choice; any value of a
 * plain string passes): only then is 422 documented, never a status that cannot happen. The owner
 * parameter never fails: it equals the token's sub (403 otherwise), which auth bounds already. */
static bool params_can_fail(const route *r)
{
    int owner = router_owner_param(r);
    for (int i = 0; r->params && r->params[i].name; i++) {
        const param_spec *p = &r->params[i];
        if (i == owner)
            continue;
        if (p->type == TYPE_INT || p->has_ge || p->has_le || p->min_len > 1 || p->max_len ||
            p->choices)
            return true;
    }
    return false;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The same object with its keys (status codes) in order. */
static json_t *sorted(json_t *obj)
{
    size_t n = json_object_size(obj), i = 0;
    const char **keys = calloc(n ? n : 1, sizeof *keys);
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v) keys[i++] = key;
    qsort(keys, n, sizeof *keys, cmp_str);
    json_t *out = json_object();
    for (i = 0; i < n; i++)
        json_object_set(out, keys[i], json_object_get(obj, keys[i]));
    free(keys);
    json_decref(obj);
    return out;
}

/* Every status the route can answer, with the body it really has (router.h lists the rules). */
static json_t *responses(const route *r)
{
    json_t *rs = json_object();
    const char *desc = r->description ? r->description : "OK";
    json_t *schema = NULL;
    const char *media = "application/json";
    if (r->response)
        schema = r->response_list
                     ? json_pack("{ss so}", "type", "array", "items", ref(r->response->schema))
                     : ref(r->response->schema);
    else if (r->status != 204 && r->status != 304) {
        media = "text/plain";
        schema = json_pack("{ss}", "type", "string");
    }
    add_response(rs, r->status, desc, media, schema, success_headers(r));

    add_response(
        rs, 307, "The same path without its trailing slash (Location)", NULL, NULL,
        json_pack("{so}", "Location", header("Where to repeat the request", "string", true)));
    if (r->auth || r->metrics_token)
        add_error(rs, 401, "Missing or invalid bearer token", "HTTPError",
                  json_pack("{so}", "WWW-Authenticate", header("Bearer", "string", true)));
    if (r->metrics_token)
        add_error(rs, 404, "METRICS_TOKEN is not set (production)", "HTTPError", NULL);
    int owner = router_owner_param(r);
    if (owner >= 0) {
        char d[160];
        snprintf(d, sizeof d, "The path's %s is not the token's subject", r->params[owner].name);
        add_error(rs, 403, d, "HTTPError", NULL);
    }
    if (has_path_param(r))
        add_error(rs, 404, "Not Found (an empty path segment)", "HTTPError", NULL);
    add_error(rs, 405, "Method Not Allowed on this path (Allow lists the methods)", "HTTPError",
              json_pack("{so}", "Allow", header("The path's methods", "string", true)));
    if (r->idempotency_key)
        add_error(rs, 409, "A request with this Idempotency-Key is in progress", "HTTPError", NULL);
    add_error(rs, 413, "The body is larger than MAX_BODY_BYTES", "HTTPError", NULL);
    if (params_can_fail(r) || r->body || r->idempotency_key)
        add_error(rs, 422, "Validation Error", "HTTPValidationError", NULL);
    if (r->idempotency_key)
        add_error(rs, 422, "The Idempotency-Key was used with a different body", "HTTPError", NULL);
    if (r->auth)
        add_error(
            rs, 429, "More requests than RATE_LIMIT allows this user in its window (when set)",
            "HTTPError",
            json_pack("{so so so so}", "Retry-After",
                      header("Seconds until the window ends", "integer", true), "X-RateLimit-Limit",
                      header("Requests allowed in a window", "integer", true),
                      "X-RateLimit-Remaining",
                      header("Requests left in this window", "integer", true), "X-RateLimit-Reset",
                      header("Unix time the window ends", "integer", true)));
    add_error(rs, 431, "The headers are larger than MAX_HEADER_BYTES", "HTTPError", NULL);
    add_error(rs, 500, "Internal Server Error (the log has the details under request_id)",
              "InternalError", NULL);
    json_t *retry = json_pack("{so}", "Retry-After",
                              header("Seconds to wait before retrying", "integer", true));
    if (r->run == RUN_READ || r->run == RUN_WRITE)
        add_error(rs, 503, "The database is unavailable; retry after Retry-After", "HTTPError",
                  json_deep_copy(retry));
    else if (r->run == RUN_OWN_SESSION)
        add_error(rs, 503, "Overloaded; retry after Retry-After", "HTTPError",
                  json_deep_copy(retry));
    for (const route_error *e = r->errors; e && e->status; e++)
        add_error(rs, e->status, e->description ? e->description : http_reason(e->status),
                  e->model ? e->model->schema : "HTTPError",
                  e->status == 503 ? json_deep_copy(retry) : NULL);
    json_decref(retry);
    return sorted(rs);
}

static json_t *operation(const route *r)
{
    json_t *op =
        json_pack("{s[s] ss ss}", "tags", r->tag ? r->tag : "default", "summary",
                  r->summary ? r->summary : r->operation_id, "operationId", r->operation_id);
    json_object_set_new(op, "security",
                        r->auth            ? json_pack("[{s[]}]", "HTTPBearer")
                        : r->metrics_token ? json_pack("[{s[]}]", "MetricsToken")
                                           : json_array());
    json_t *params = parameters(r);
    if (json_array_size(params))
        json_object_set_new(op, "parameters", params);
    else
        json_decref(params);
    if (r->body)
        json_object_set_new(
            op, "requestBody",
            json_pack("{sb so}", "required", 1, "content", json_content(ref(r->body->schema))));
    json_object_set_new(op, "responses", responses(r));
    return op;
}

static void add_model(json_t *s, const body_spec *b)
{
    if (b && !json_object_get(s, b->schema))
        json_object_set_new(s, b->schema, model_schema(b));
}

static json_t *schemas(void)
{
    json_t *s = json_object();
    json_object_set_new(s, "HTTPError",
                        json_pack("{ss ss s{s{ss}} s[s]}", "type", "object", "title", "HTTPError",
                                  "properties", "detail", "type", "string", "required", "detail"));
    json_object_set_new(s, "InternalError",
                        json_pack("{ss ss s{s{ss} s{ss ss}} s[s]}", "type", "object", "title",
                                  "InternalError", "properties", "detail", "type", "string",
                                  "request_id", "type", "string", "description",
                                  "The X-Request-ID of the request, to find it in the log",
                                  "required", "detail"));
    json_object_set_new(s, "ValidationError",
                        json_pack("{ss ss s{s{ss s{s[{ss}{ss}]}} s{ss} s{ss} s{} s{ss}} s[sss]}",
                                  "type", "object", "title", "ValidationError", "properties", "loc",
                                  "type", "array", "items", "anyOf", "type", "string", "type",
                                  "integer", "msg", "type", "string", "type", "type", "string",
                                  "input", "ctx", "type", "object", "required", "loc", "msg",
                                  "type"));
    json_object_set_new(s, "HTTPValidationError",
                        json_pack("{ss ss s{s{ss so}} s[s]}", "type", "object", "title",
                                  "HTTPValidationError", "properties", "detail", "type", "array",
                                  "items", ref("ValidationError"), "required", "detail"));
    for (int i = 0; i < app_nroutes; i++) {
        const route *r = &app_routes[i];
        add_model(s, r->response);
        add_model(s, r->body);
        for (const route_error *e = r->errors; e && e->status; e++)
            add_model(s, e->model);
    }
    return s;
}

static void lower(char *dst, const char *src, size_t n)
{
    size_t i = 0;
    for (; src[i] && i + 1 < n; i++)
        dst[i] = (char)tolower((unsigned char)src[i]);
    dst[i] = '\0';
}

/* The tags of routes.c, then any a route uses without declaring it (no description). */
static json_t *tags(void)
{
    json_t *list = json_array(), *seen = json_object();
    for (const route_tag *t = app_tags; t->name; t++) {
        json_array_append_new(list, t->description ? json_pack("{ss ss}", "name", t->name,
                                                               "description", t->description)
                                                   : json_pack("{ss}", "name", t->name));
        json_object_set_new(seen, t->name, json_true());
    }
    for (int i = 0; i < app_nroutes; i++) {
        const char *t = app_routes[i].tag ? app_routes[i].tag : "default";
        if (!app_routes[i].hidden && !json_object_get(seen, t)) {
            json_array_append_new(list, json_pack("{ss}", "name", t));
            json_object_set_new(seen, t, json_true());
        }
    }
    json_decref(seen);
    return list;
}

json_t *openapi_document(void)
{
    json_t *paths = json_object();
    for (int i = 0; i < app_nroutes; i++) {
        const route *r = &app_routes[i];
        if (r->hidden)
            continue;
        json_t *item = json_object_get(paths, r->path);
        if (!item)
            json_object_set_new(paths, r->path, item = json_object());
        char m[16];
        lower(m, r->method, sizeof m);
        json_object_set_new(item, m, operation(r));
    }
    return json_pack(
        "{ss s{ss ss ss s{ss ss}} s[{ss ss}] so so s{so s{s{ss ss ss ss} s{ss ss ss}}}}", "openapi",
        "3.1.0", "info", "title", APP_TITLE, "version", APP_VERSION, "description", APP_DESCRIPTION,
        "license", "name", "MIT", "identifier", "MIT", "servers", "url", "http://127.0.0.1:8000",
        "description", "local development server", "tags", tags(), "paths", paths, "components",
        "schemas", schemas(), "securitySchemes", "HTTPBearer", "type", "http", "scheme", "bearer",
        "bearerFormat", "JWT", "description",
        "A JWT with exp whose sub is the user id: HS256 signed with JWT_SECRET, or "
        "EdDSA (Ed25519), ES256, RS256 or PS256 signed by a key of the JWKS at "
        "AUTH_JWKS_URL (Better Auth's JWT plugin, Clerk, Auth0), chosen by kid. 401 "
        "when invalid; 503 with Retry-After while the JWKS was never fetched.",
        "MetricsToken", "type", "http", "scheme", "bearer", "description",
        "The value of METRICS_TOKEN, for Prometheus (bearer_token / a ServiceMonitor's "
        "bearerTokenSecret).");
}

/* ---- the reply check (openapi.h) ---- */

typedef struct {
    const json_t *schemas; /* components.schemas */
    char *err;
    size_t errlen;
} checker;

static bool failed(checker *c, const char *where, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static bool failed(checker *c, const char *where, const char *fmt, ...)
{
    int n = snprintf(c->err, c->errlen, "%s: ", where);
    va_list ap;
    va_start(ap, fmt);
    if (n >= 0 && (size_t)n < c->errlen)
        vsnprintf(c->err + n, c->errlen - (size_t)n, fmt, ap);
    va_end(ap);
    return false;
}

static const char *kind_of(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return "object";
    case JSON_ARRAY:
        return "array";
    case JSON_STRING:
        return "string";
    case JSON_INTEGER:
        return "integer";
    case JSON_REAL:
        return "number";
    case JSON_TRUE:
    case JSON_FALSE:
        return "boolean";
    default:
        return "null";
    }
}

static bool is_type(const char *t, const json_t *v)
{
    const char *k = kind_of(v);
    return !strcmp(t, k) || (!strcmp(t, "number") && !strcmp(k, "integer"));
}

/* "2026-11-26T19:40:00.123456Z" or with a +hh:mm offset. */
static bool date_time(const char *s)
{
    static const char shape[] = "dddd-dd-ddTdd:dd:dd";
    for (size_t i = 0; shape[i]; i++)
        if (shape[i] == 'd' ? !isdigit((unsigned char)s[i]) : s[i] != shape[i])
            return false;
    s += sizeof shape - 1;
    if (*s == '.') {
        s++;
        if (!isdigit((unsigned char)*s))
            return false;
        while (isdigit((unsigned char)*s))
            s++;
    }
    if (*s == 'Z')
        return s[1] == '\0';
    return (*s == '+' || *s == '-') && isdigit((unsigned char)s[1]) &&
           isdigit((unsigned char)s[2]) && s[3] == ':' && isdigit((unsigned char)s[4]) &&
           isdigit((unsigned char)s[5]) && !s[6];
}

static bool check_value(checker *c, const json_t *schema, const json_t *v, const char *where);

/* $ref: v against the schema it names under #/components/schemas/. */
static bool check_ref(checker *c, const char *target, const json_t *v, const char *where)
{
    const char *prefix = "#/components/schemas/";
    const json_t *to = !strncmp(target, prefix, strlen(prefix))
                           ? json_object_get(c->schemas, target + strlen(prefix))
                           : NULL;
    if (!to)
        return failed(c, where, "unresolved $ref %s", target);
    return check_value(c, to, v, where);
}

/* anyOf: v matches one of the schemas; else the last one's complaint is quoted. */
static bool check_any(checker *c, const json_t *any, const json_t *v, const char *where)
{
    size_t i;
    const json_t *one;
    json_array_foreach(any, i, one) if (check_value(c, one, v, where)) return true;
    char last[256];
    snprintf(last, sizeof last, "%s", c->err);
    return failed(c, where, "matches none of its schemas (the last: %s)", last);
}

/* type: one or a list; "number" takes an integer too. */
static bool check_type(checker *c, const json_t *type, const json_t *v, const char *where)
{
    bool ok = json_is_string(type) && is_type(json_string_value(type), v);
    size_t i;
    const json_t *t;
    json_array_foreach(type, i, t) ok |= is_type(json_string_value(t), v);
    if (!ok)
        return failed(c, where, "%s where the document says %s", kind_of(v),
                      json_is_string(type) ? json_string_value(type) : "another type");
    return true;
}

static bool check_enum(checker *c, const json_t *choices, const json_t *v, const char *where)
{
    bool ok = false;
    size_t i;
    const json_t *e;
    json_array_foreach(choices, i, e) ok |= json_equal(e, v);
    if (!ok)
        return failed(c, where, "not one of the documented values");
    return true;
}

/* An object: its required fields, and each field against its property's schema; a field the
 * schema's properties do not declare is an error. */
static bool check_object(checker *c, const json_t *schema, const json_t *v, const char *where)
{
    char sub[192];
    const json_t *props = json_object_get(schema, "properties");
    size_t i;
    const json_t *name;
    json_array_foreach(json_object_get(schema, "required"), i, name)
    {
        if (!json_object_get(v, json_string_value(name)))
            return failed(c, where, "required field %s is missing", json_string_value(name));
    }
    const char *key;
    const json_t *field;
    json_object_foreach((json_t *)v, key, field)
    {
        const json_t *fs = json_object_get(props, key);
        snprintf(sub, sizeof sub, "%s.%s", where, key);
        if (props && !fs)
            return failed(c, sub, "a field the document does not declare");
        if (fs && !check_value(c, fs, field, sub))
            return false;
    }
    return true;
}

static bool check_array(checker *c, const json_t *schema, const json_t *v, const char *where)
{
    char sub[192];
    const json_t *items = json_object_get(schema, "items");
    size_t i;
    const json_t *item;
    json_array_foreach(v, i, item)
    {
        snprintf(sub, sizeof sub, "%s[%zu]", where, i);
        if (items && !check_value(c, items, item, sub))
            return false;
    }
    return true;
}

/* A string: format date-time, minLength/maxLength (in characters). */
static bool check_string(checker *c, const json_t *schema, const json_t *v, const char *where)
{
    const char *format = json_string_value(json_object_get(schema, "format"));
    if (format && !strcmp(format, "date-time") && !date_time(json_string_value(v)))
        return failed(c, where, "\"%.64s\" is not a date-time", json_string_value(v));
    size_t n = utf8_chars(json_string_value(v), json_string_length(v));
    const json_t *min = json_object_get(schema, "minLength"),
                 *max = json_object_get(schema, "maxLength");
    if ((min && (json_int_t)n < json_integer_value(min)) ||
        (max && (json_int_t)n > json_integer_value(max)))
        return failed(c, where, "length %zu is outside the documented bounds", n);
    return true;
}

static bool check_integer(checker *c, const json_t *schema, const json_t *v, const char *where)
{
    const json_t *min = json_object_get(schema, "minimum"),
                 *max = json_object_get(schema, "maximum");
    if ((min && json_integer_value(v) < json_integer_value(min)) ||
        (max && json_integer_value(v) > json_integer_value(max)))
        return failed(c, where, "%lld is outside the documented bounds",
                      (long long)json_integer_value(v));
    return true;
}

/* The subset of JSON Schema this file writes: $ref, anyOf, type (one or a list), enum, format
 * date-time, properties (a field the model does not declare is an error: the handler wrote
 * something the document does not promise), required, items, minimum/maximum, min/maxLength. */
static bool check_value(checker *c, const json_t *schema, const json_t *v, const char *where)
{
    const char *target = json_string_value(json_object_get(schema, "$ref"));
    if (target)
        return check_ref(c, target, v, where);
    const json_t *any = json_object_get(schema, "anyOf");
    if (any)
        return check_any(c, any, v, where);
    const json_t *type = json_object_get(schema, "type");
    if (type && !check_type(c, type, v, where))
        return false;
    const json_t *choices = json_object_get(schema, "enum");
    if (choices && !check_enum(c, choices, v, where))
        return false;
    if (json_is_object(v))
        return check_object(c, schema, v, where);
    if (json_is_array(v))
        return check_array(c, schema, v, where);
    if (json_is_string(v))
        return check_string(c, schema, v, where);
    if (json_is_integer(v))
        return check_integer(c, schema, v, where);
    return true;
}

static json_t *check_doc;

static void build_check_doc(void)
{
    check_doc = openapi_document();
}

static bool sent(const http_response *res, const char *name)
{
    for (int i = 0; i < res->nheaders; i++)
        if (!strcasecmp(res->headers[i].name, name))
            return true;
    return false;
}

int openapi_check_reply(const route *r, const http_response *res, char *err, size_t errlen)
{
    if (r->hidden)
        return 0;
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, build_check_doc);
    checker c = {json_object_get(json_object_get(check_doc, "components"), "schemas"), err, errlen};
    char m[16], code[8];
    lower(m, r->method, sizeof m);
    snprintf(code, sizeof code, "%d", res->status);
    const json_t *resp = json_object_get(
        json_object_get(json_object_get(json_object_get(check_doc, "paths"), r->path), m),
        "responses");
    if (!resp)
        return failed(&c, r->operation_id, "the operation is not in the document"), -1;
    resp = json_object_get(resp, code);
    if (!resp)
        return failed(&c, r->operation_id, "status %d is not documented", res->status), -1;
    const json_t *hs = json_object_get(resp, "headers");
    const char *name;
    const json_t *h;
    json_object_foreach((json_t *)hs, name, h)
    {
        if (json_is_true(json_object_get(h, "required")) && !sent(res, name))
            return failed(&c, r->operation_id, "%d without its documented header %s", res->status,
                          name),
                   -1;
    }
    for (int i = 0; i < res->nheaders; i++) {
        bool documented = false;
        json_object_foreach((json_t *)hs, name, h) documented |=
            !strcasecmp(name, res->headers[i].name);
        if (!documented)
            return failed(&c, r->operation_id, "%d sends header %s, not documented", res->status,
                          res->headers[i].name),
                   -1;
    }
    const json_t *content = json_object_get(resp, "content");
    bool body = res->body && res->status != 204 && res->status != 304;
    if (!content)
        return body ? (failed(&c, r->operation_id, "%d sends a body, documented without one",
                              res->status),
                       -1)
                    : 0;
    if (!body)
        return failed(&c, r->operation_id, "%d without the documented body", res->status), -1;
    const char *type = res->content_type ? res->content_type : "application/json";
    size_t tlen = strcspn(type, ";");
    const char *media;
    const json_t *mt, *found = NULL;
    json_object_foreach((json_t *)content, media,
                        mt) if (strlen(media) == tlen && !strncasecmp(media, type, tlen)) found =
        mt;
    if (!found)
        return failed(&c, r->operation_id, "%d with Content-Type %s, not documented", res->status,
                      type),
               -1;
    if (strncmp(type, "application/json", tlen))
        return 0;
    json_error_t jerr;
    json_t *v = json_loadb(res->body, res->body_len, JSON_DECODE_ANY, &jerr);
    if (!v)
        return failed(&c, r->operation_id, "%d body is not JSON (%s)", res->status, jerr.text), -1;
    char where[64];
    snprintf(where, sizeof where, "%s %d body", r->operation_id, res->status);
    bool ok = check_value(&c, json_object_get(found, "schema"), v, where);
    json_decref(v);
    return ok ? 0 : -1;
}
