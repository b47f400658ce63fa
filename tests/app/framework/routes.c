/* The framework test server's route table: app/main.c and the whole framework (the `app`
 * library) with this table instead of app/routes.c, so the framework's tests (test_framework.c,
 * test_idempotency.c) need no example resource and survive its removal. One small resource,
 * "items", over tables the tests create (items.sql), with the per-user limit done in one statement
 * (docs/template.md's recipe) and an Idempotency-Key on its POST. */
#include <event2/http.h>
#include <stdlib.h>

#include "app/resource.h"
#include "app/router.h"
#include "app/settings.h"

http_handler_fn ops_health, ops_ready, ops_metrics, ops_openapi, ops_docs;

/* At most this many items per user: the "limit" setting of the recipe, a resource setting
 * (app/settings.h) validated at start-up; the tests keep its default. */
APP_SETTING_INT("ITEMS_MAX_PER_USER", items_max, 3, 1, 1000, "Items a user may keep")

static json_t *item_json(const PGresult *r, int row)
{
    return json_pack("{sI ss ss}", "id", (json_int_t)atoll(PQgetvalue(r, row, 0)), "user_id",
                     PQgetvalue(r, row, 1), "name", PQgetvalue(r, row, 2));
}

/* One statement, race-free: the user's counter row is locked by the upsert, so two concurrent
 * creates count one after the other; no slot left, no row, no insert. */
static int items_create(const http_request *req, db_session *s, http_response *res)
{
    const char *params[] = {req->user_id, json_string_value(json_object_get(req->body, "name")),
                            SETTING_TEXT(items_max)};
    db_error err;
    PGresult *r = db_query(s,
                           "with slot as (insert into item_counts (user_id, n) values ($1, 1) "
                           "on conflict (user_id) do update set n = item_counts.n + 1 "
                           "where item_counts.n < $3::int returning 1) "
                           "insert into items (user_id, name) select $1, $2 from slot "
                           "returning id, user_id, name",
                           3, params, &err);
    if (!r)
        return http_reply_db_error(res, req, &err);
    if (!PQntuples(r)) {
        PQclear(r);
        return http_reply_detail(res, 409, "Item limit reached");
    }
    char *enc = evhttp_uriencode(req->user_id, -1, 0);
    http_header_add(res, "Location", "/api/%s/items/%s", enc ? enc : "", PQgetvalue(r, 0, 0));
    free(enc);
    json_t *item = item_json(r, 0);
    PQclear(r);
    return http_reply_json(res, 201, item);
}

static int items_list(const http_request *req, db_session *s, http_response *res)
{
    const char *params[] = {req->user_id};
    db_error err;
    PGresult *r = db_query(s, "select id, user_id, name from items where user_id = $1 order by id",
                           1, params, &err);
    if (!r)
        return http_reply_db_error(res, req, &err);
    json_t *list = json_array();
    for (int i = 0; i < PQntuples(r); i++)
        json_array_append_new(list, item_json(r, i));
    PQclear(r);
    return http_reply_json(res, 200, list);
}

static int items_get(const http_request *req, db_session *s, http_response *res)
{
    const char *params[] = {http_param(req, "id")->str, req->user_id};
    db_error err;
    PGresult *r = db_query(s, "select id, user_id, name from items where id = $1 and user_id = $2",
                           2, params, &err);
    if (!r)
        return http_reply_db_error(res, req, &err);
    int rc = PQntuples(r) ? http_reply_json(res, 200, item_json(r, 0))
                          : http_reply_detail(res, 404, "Item not found");
    PQclear(r);
    return rc;
}

/* The counter goes down with the item, in the same statement. */
static int items_delete(const http_request *req, db_session *s, http_response *res)
{
    const char *params[] = {http_param(req, "id")->str, req->user_id};
    db_error err;
    PGresult *r = db_query(s,
                           "with gone as (delete from items where id = $1 and user_id = $2 "
                           "returning user_id) update item_counts c set n = n - 1 from gone "
                           "where c.user_id = gone.user_id",
                           2, params, &err);
    if (!r)
        return http_reply_db_error(res, req, &err);
    bool deleted = atoi(PQcmdTuples(r)) > 0;
    PQclear(r);
    return deleted ? http_reply_empty(res, 204) : http_reply_detail(res, 404, "Item not found");
}

/* A table with its own UNIQUE constraint (items.sql: links): on an Idempotency-Key retry the
 * insert, run again, violates it; the framework replays the first answer all the same. Another
 * request for the URL gets the route's declared 409; the JSON comes from the model (resource.h). */
static int links_create(const http_request *req, db_session *s, http_response *res)
{
    const char *params[] = {req->user_id, http_body_str(req, "url"), http_body_str(req, "tag")};
    return resource_query(req, s, res,
                          "insert into links (user_id, url, tag) values ($1, $2, $3) "
                          "returning id, user_id, url, tag",
                          3, params);
}

/* Breaks the Idempotency-Key contract on purpose (two statements): the framework refuses. */
static int items_twice(const http_request *req, db_session *s, http_response *res)
{
    db_error err;
    PGresult *a = db_query(s, "select 1 as one", 0, NULL, &err), *b = NULL;
    if (a)
        b = db_query(s, "select 2 as two", 0, NULL, &err);
    PQclear(a);
    if (!b)
        return http_reply_db_error(res, req, &err);
    PQclear(b);
    return http_reply_json(res, 200, json_pack("{sb}", "ok", 1));
}

const route_tag app_tags[] = {
    {"items", "The framework test server's resource"},
    {"ops", "Health, readiness and metrics"},
    {NULL, NULL},
};

static const param_spec user_params[] = {
    {.name = "user_id", .in = PARAM_PATH, .type = TYPE_STRING, .min_len = 1, .max_len = 255},
    {0},
};
static const param_spec item_params[] = {
    {.name = "user_id", .in = PARAM_PATH, .type = TYPE_STRING, .min_len = 1, .max_len = 255},
    {.name = "id", .in = PARAM_PATH, .type = TYPE_INT, .has_ge = true, .ge = 1},
    {0},
};
static const field_spec item_fields[] = {
    {.name = "name", .type = TYPE_STRING, .required = true, .min_len = 1, .max_len = 100},
    {0},
};
static const body_spec item_create = {"ItemCreate", item_fields};
static const field_spec item_out_fields[] = {
    {.name = "id", .type = TYPE_INT, .required = true},
    {.name = "user_id", .type = TYPE_STRING, .required = true},
    {.name = "name", .type = TYPE_STRING, .required = true},
    {0},
};
static const body_spec item = {"Item", item_out_fields};
static const field_spec link_fields[] = {
    {.name = "url",
     .type = TYPE_STRING,
     .required = true,
     .min_len = 1,
     .max_len = 2048,
     .format = "uri"},
    {.name = "tag",
     .type = TYPE_STRING,
     .nullable = true,
     .def_json = "null",
     .pattern = "^[a-z0-9-]+$",
     .max_len = 32},
    {0},
};
static const body_spec link_create = {"LinkCreate", link_fields};
static const field_spec link_out_fields[] = {
    {.name = "id", .type = TYPE_INT, .required = true},
    {.name = "user_id", .type = TYPE_STRING, .required = true},
    {.name = "url", .type = TYPE_STRING, .required = true},
    {.name = "tag", .type = TYPE_STRING, .required = true, .nullable = true},
    {0},
};
static const body_spec link = {"Link", link_out_fields};
static const route_error errs_link[] = {
    {.status = 409, .description = "This URL is saved already", .constraint = "links_user_url_key"},
    {0},
};
static const field_spec ok_fields[] = {{.name = "ok", .type = TYPE_BOOL, .required = true}, {0}};
static const body_spec ok = {"Ok", ok_fields};
static const field_spec health_fields[] = {
    {.name = "status", .type = TYPE_STRING, .required = true},
    {.name = "schema_version", .type = TYPE_STRING},
    {.name = "detail", .type = TYPE_STRING},
    {0},
};
static const body_spec health = {"Health", health_fields};
static const route_error errs_ready[] = {
    {.status = 503, .description = "Not ready", .model = &health}, {0}};
static const route_error errs_full[] = {{.status = 409, .description = "Item limit reached"}, {0}};
static const route_error errs_item[] = {{.status = 404, .description = "Item not found"}, {0}};

const route app_routes[] = {
    {"GET", "/health", ops_health, RUN_LOOP, .operation_id = "health", .summary = "Liveness",
     .tag = "ops", .status = 200, .response = &health, .description = "The process is up"},
    {"GET", "/ready", ops_ready, RUN_OWN_SESSION, .operation_id = "ready", .summary = "Readiness",
     .tag = "ops", .status = 200, .response = &health, .description = "Ready to serve",
     .errors = errs_ready},
    {"GET", "/metrics", ops_metrics, RUN_LOOP, .operation_id = "metrics", .summary = "Metrics",
     .metrics_token = true, .tag = "ops", .status = 200, .description = "Prometheus text format"},
    {"GET", "/openapi.json", ops_openapi, RUN_LOOP, .operation_id = "openapi", .hidden = true},
    {"GET", "/docs", ops_docs, RUN_LOOP, .operation_id = "docs", .hidden = true},
    {"GET", "/api/{user_id}/items", items_list, RUN_READ, .auth = true, .params = user_params,
     .operation_id = "list_items", .summary = "List the user's items", .tag = "items",
     .status = 200, .response = &item, .response_list = true, .description = "The items"},
    {"POST", "/api/{user_id}/items", items_create, RUN_WRITE, .auth = true, .params = user_params,
     .body = &item_create, .idempotency_key = true, .operation_id = "create_item",
     .summary = "Create an item", .tag = "items", .status = 201, .response = &item,
     .location = true, .description = "The item", .errors = errs_full},
    {"GET", "/api/{user_id}/items/{id}", items_get, RUN_READ, .auth = true, .params = item_params,
     .operation_id = "get_item", .summary = "Get an item", .tag = "items", .status = 200,
     .response = &item, .description = "The item", .errors = errs_item},
    {"DELETE", "/api/{user_id}/items/{id}", items_delete, RUN_WRITE, .auth = true,
     .params = item_params, .operation_id = "delete_item", .summary = "Delete an item",
     .tag = "items", .status = 204, .description = "Deleted", .errors = errs_item},
    {"POST", "/api/{user_id}/links", links_create, RUN_WRITE, .auth = true, .params = user_params,
     .body = &link_create, .idempotency_key = true, .operation_id = "create_link",
     .summary = "Save a link (one per URL)", .tag = "items", .status = 201, .response = &link,
     .location = true, .description = "The link", .errors = errs_link},
    {"POST", "/api/{user_id}/twice", items_twice, RUN_WRITE, .auth = true, .params = user_params,
     .idempotency_key = true, .operation_id = "twice", .summary = "Two statements", .tag = "items",
     .status = 200, .response = &ok, .description = "Without a key only",
     .hidden = true}, /* broken on purpose: kept out of the contract checks' document */
};
const int app_nroutes = sizeof app_routes / sizeof *app_routes;
