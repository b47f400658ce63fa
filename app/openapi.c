/* openapi: see openapi.h. Shapes follow what FastAPI emits (HTTPValidationError, ValidationError,
 * HTTPBearer), so generated clients look the same. */
#include "app/openapi.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

static json_t *body_schema(const body_spec *b)
{
    json_t *props = json_object(), *required = json_array();
    for (const field_spec *f = b->fields; f->name; f++) {
        const char *type = f->type == TYPE_BOOL ? "boolean" : "string";
        json_t *s = f->nullable ? json_pack("{s[ss]}", "type", type, "null")
                                : json_pack("{ss}", "type", type);
        if (f->min_len)
            json_object_set_new(s, "minLength", json_integer(f->min_len));
        if (f->max_len)
            json_object_set_new(s, "maxLength", json_integer(f->max_len));
        if (f->not_blank)
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

static json_t *error_response(int status)
{
    const char *desc = status == 401   ? "Missing or invalid bearer token"
                       : status == 403 ? "The token belongs to another user"
                       : status == 404 ? "Task not found (or owned by another user)"
                       : status == 422 ? "Validation Error"
                       : status == 503 ? "The database is unavailable; retry after Retry-After"
                                       : "Error";
    return json_pack("{ss so}", "description", desc, "content",
                     json_content(ref(status == 422 ? "HTTPValidationError" : "HTTPError")));
}

static json_t *success_response(const route *r)
{
    json_t *resp = json_pack("{ss}", "description", r->description ? r->description : "OK");
    if (r->response) {
        size_t n = strlen(r->response);
        bool array = n > 2 && !strcmp(r->response + n - 2, "[]");
        char name[64];
        snprintf(name, sizeof name, "%.*s", (int)(array ? n - 2 : n), r->response);
        json_t *schema =
            array ? json_pack("{ss so}", "type", "array", "items", ref(name)) : ref(name);
        json_object_set_new(resp, "content", json_content(schema));
    } else if (r->status != 204) {
        json_object_set_new(resp, "content",
                            json_pack("{s{s{ss}}}", "text/plain", "schema", "type", "string"));
    }
    if (r->status == 201)
        json_object_set_new(resp, "headers",
                            json_pack("{s{ss s{ss}}}", "Location", "description",
                                      "URL of the created task", "schema", "type", "string"));
    if (r->response && strstr(r->response, "[]"))
        json_object_set_new(resp, "headers",
                            json_pack("{s{ss s{ss}}}", "X-Total-Count", "description",
                                      "Number of tasks matching the filters", "schema", "type",
                                      "integer"));
    return resp;
}

static json_t *operation(const route *r)
{
    json_t *op =
        json_pack("{s[s] ss ss}", "tags", r->tag ? r->tag : "default", "summary",
                  r->summary ? r->summary : r->operation_id, "operationId", r->operation_id);
    json_object_set_new(op, "security",
                        r->auth ? json_pack("[{s[]}]", "HTTPBearer") : json_array());
    json_t *params = parameters(r);
    if (json_array_size(params))
        json_object_set_new(op, "parameters", params);
    else
        json_decref(params);
    if (r->body)
        json_object_set_new(
            op, "requestBody",
            json_pack("{sb so}", "required", 1, "content", json_content(ref(r->body->schema))));
    json_t *responses = json_object();
    char code[8];
    snprintf(code, sizeof code, "%d", r->status);
    json_object_set_new(responses, code, success_response(r));
    for (const int *e = r->errors; e && *e; e++) {
        snprintf(code, sizeof code, "%d", *e);
        json_object_set_new(responses, code, error_response(*e));
    }
    json_object_set_new(op, "responses", responses);
    return op;
}

static json_t *schemas(void)
{
    json_t *s = json_object();
    json_object_set_new(
        s, "Task",
        json_pack("{ss ss s{s{ss} s{ss} s{ss} s{s[ss]} s{ss} s{ss ss} s{ss ss}} s[sssssss]}",
                  "type", "object", "title", "Task", "properties", "id", "type", "integer",
                  "user_id", "type", "string", "title", "type", "string", "description", "type",
                  "string", "null", "completed", "type", "boolean", "created_at", "type", "string",
                  "format", "date-time", "updated_at", "type", "string", "format", "date-time",
                  "required", "id", "user_id", "title", "description", "completed", "created_at",
                  "updated_at"));
    json_object_set_new(s, "HTTPError",
                        json_pack("{ss ss s{s{ss}} s[s]}", "type", "object", "title", "HTTPError",
                                  "properties", "detail", "type", "string", "required", "detail"));
    json_object_set_new(s, "ValidationError",
                        json_pack("{ss ss s{s{ss s{s[{ss}{ss}]}} s{ss} s{ss} s{} s{ss}} s[sss]}",
                                  "type", "object", "title", "ValidationError", "properties", "loc",
                                  "type", "array", "items", "anyOf", "type", "string", "type",
                                  "integer", "msg", "type", "string", "type", "type", "string",
                                  "input", "ctx", "type", "object", "required", "loc", "msg",
                                  "type"));
    json_object_set_new(s, "HTTPValidationError",
                        json_pack("{ss ss s{s{ss so}}}", "type", "object", "title",
                                  "HTTPValidationError", "properties", "detail", "type", "array",
                                  "items", ref("ValidationError")));
    json_object_set_new(s, "Health",
                        json_pack("{ss ss s{s{ss} s{ss}} s[s]}", "type", "object", "title",
                                  "Health", "properties", "status", "type", "string", "detail",
                                  "type", "string", "required", "status"));
    for (int i = 0; i < app_nroutes; i++)
        if (app_routes[i].body && !json_object_get(s, app_routes[i].body->schema))
            json_object_set_new(s, app_routes[i].body->schema, body_schema(app_routes[i].body));
    return s;
}

static void lower(char *dst, const char *src, size_t n)
{
    size_t i = 0;
    for (; src[i] && i + 1 < n; i++)
        dst[i] = (char)(src[i] | 0x20);
    dst[i] = '\0';
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
        "{ss s{ss ss ss s{ss ss}} s[{ss ss}] s[{ss ss}{ss ss}] so s{so s{s{ss ss ss ss}}}}",
        "openapi", "3.1.0", "info", "title", "Todo API", "version", "0.1.0", "description",
        "Per-user tasks behind JWT auth (bearer tokens whose sub is the user id).", "license",
        "name", "MIT", "identifier", "MIT", "servers", "url", "http://127.0.0.1:8000",
        "description", "local development server", "tags", "name", "tasks", "description",
        "The user's tasks", "name", "ops", "description", "Health, readiness and metrics", "paths",
        paths, "components", "schemas", schemas(), "securitySchemes", "HTTPBearer", "type", "http",
        "scheme", "bearer", "bearerFormat", "JWT", "description",
        "A JWT with exp whose sub is the user id: HS256 signed with JWT_SECRET, or EdDSA "
        "(Ed25519), ES256, RS256 or PS256 signed by a key of the JWKS at AUTH_JWKS_URL (Better "
        "Auth's JWT plugin, Clerk, Auth0), chosen by kid. 401 when invalid; 503 with Retry-After "
        "while the JWKS was never fetched.");
}
