/* /openapi.json: what it documents is derived from the route table and is what the API answers.
 *   openapi_doc     the document of the real route table (no server): every status the framework
 *                   can answer is listed with its real body, Location only where it is sent,
 *                   info.version is the CMake project version
 *   openapi_check   the reply check (openapi_check_reply) rejects what does not match
 *   reply           the reply helpers never send a NULL or failed body as a success
 *   openapi         the real server: every Todo route's replies match their declared models (the
 *                   debug build checks each reply; a mismatch would be a 500 and a log line), and
 *                   Redocly CLI's linter accepts the document
 * The lint uses `redocly` when installed (npm install -g @redocly/cli@2), else
 * `npx --yes @redocly/cli@2` (npm registry, cached after the first run). */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "app/openapi.h"
#include "app/project.h"
#include "app/resource.h"
#include "app/router.h"
#include "tests/app/apiclient.h"
#include "tests/support/pgtest.h"

static json_t *doc;

static void load_doc(void)
{
    char err[256];
    cr_assert_eq(router_init(err, sizeof err), 0, "%s", err);
    doc = openapi_document();
    cr_assert(doc);
}

static void free_doc(void)
{
    json_decref(doc);
}

TestSuite(openapi_doc, .init = load_doc, .fini = free_doc);

static json_t *responses_of(const char *path, const char *method)
{
    json_t *op = json_object_get(json_object_get(json_object_get(doc, "paths"), path), method);
    cr_assert(op, "%s %s missing", method, path);
    return json_object_get(op, "responses");
}

static const char *schema_ref(json_t *resp)
{
    return json_string_value(json_object_get(
        json_object_get(json_object_get(json_object_get(resp, "content"), "application/json"),
                        "schema"),
        "$ref"));
}

Test(openapi_doc, version_and_title_from_one_place)
{
    json_t *info = json_object_get(doc, "info");
    cr_assert_str_eq(json_string_value(json_object_get(info, "version")), NEON_TODO_VERSION);
    cr_assert_str_eq(json_string_value(json_object_get(info, "title")), APP_TITLE);
}

Test(openapi_doc, every_status_with_its_real_body)
{
    json_t *create = responses_of("/api/{user_id}/tasks", "post");
    const char *want[] = {"201", "307", "401", "403", "404", "405",
                          "409", "413", "422", "431", "500", "503"};
    for (size_t i = 0; i < sizeof want / sizeof *want; i++)
        cr_assert(json_object_get(create, want[i]), "create_task: no %s", want[i]);
    /* the Idempotency-Key's 422 has text detail, validation's a list: both documented */
    json_t *any = json_object_get(
        json_object_get(json_object_get(json_object_get(json_object_get(create, "422"), "content"),
                                        "application/json"),
                        "schema"),
        "anyOf");
    cr_assert_eq(json_array_size(any), 2, "422 of create_task is not both shapes");
    cr_assert_str_eq(schema_ref(json_object_get(create, "409")), "#/components/schemas/HTTPError");
    cr_assert_str_eq(schema_ref(json_object_get(create, "500")),
                     "#/components/schemas/InternalError");
    cr_assert(
        json_object_get(json_object_get(json_object_get(create, "201"), "headers"), "Location"));
    cr_assert(
        json_object_get(json_object_get(json_object_get(create, "503"), "headers"), "Retry-After"));
    cr_assert(json_object_get(json_object_get(json_object_get(create, "405"), "headers"), "Allow"));
    cr_assert(
        json_object_get(json_object_get(json_object_get(create, "307"), "headers"), "Location"));

    /* Location only where the handler sends it; no Idempotency-Key statuses without the flag */
    json_t *update = responses_of("/api/{user_id}/tasks/{id}", "put");
    cr_assert_null(
        json_object_get(json_object_get(json_object_get(update, "200"), "headers"), "Location"));
    cr_assert_null(json_object_get(update, "409"));
    cr_assert_str_eq(schema_ref(json_object_get(update, "200")), "#/components/schemas/Task");
    json_t *del = responses_of("/api/{user_id}/tasks/{id}", "delete");
    cr_assert_null(json_object_get(json_object_get(del, "204"), "content"));

    /* a route on the loop without a token: no 401/403/503, no 422 without parameters */
    json_t *health = responses_of("/health", "get");
    cr_assert_null(json_object_get(health, "401"));
    cr_assert_null(json_object_get(health, "503"));
    cr_assert_null(json_object_get(health, "422"));
    cr_assert(json_object_get(health, "500"));
    /* /ready's own 503 (the Health body) besides the framework's */
    json_t *ready503 = json_object_get(responses_of("/ready", "get"), "503");
    cr_assert_eq(json_array_size(json_object_get(
                     json_object_get(
                         json_object_get(json_object_get(ready503, "content"), "application/json"),
                         "schema"),
                     "anyOf")),
                 2);

    /* every $ref names a schema the document has (the "Can't resolve $ref" of a new model) */
    char *text = json_dumps(doc, JSON_COMPACT);
    json_t *schemas = json_object_get(json_object_get(doc, "components"), "schemas");
    for (const char *p = strstr(text, "#/components/schemas/"); p;
         p = strstr(p + 1, "#/components/schemas/")) {
        const char *name = p + strlen("#/components/schemas/");
        size_t n = strcspn(name, "\"");
        char buf[64];
        snprintf(buf, sizeof buf, "%.*s", (int)n, name);
        cr_assert(json_object_get(schemas, buf), "unresolved $ref %s", buf);
    }
    free(text);
}

/* ---- the reply check ---- */

static const route *route_of(const char *operation_id)
{
    char err[256];
    cr_assert_eq(router_init(err, sizeof err), 0, "%s", err);
    for (int i = 0; i < app_nroutes; i++)
        if (!strcmp(app_routes[i].operation_id, operation_id))
            return &app_routes[i];
    cr_assert_fail("no route %s", operation_id);
    return NULL;
}

static int check(const char *operation_id, http_response *res, char *why, size_t n)
{
    int rc = openapi_check_reply(route_of(operation_id), res, why, n);
    http_response_reset(res);
    return rc;
}

#define TASK_JSON(extra)                                                                           \
    "{\"id\":1,\"user_id\":\"u\",\"title\":\"t\",\"description\":null,\"completed\":false,"        \
    "\"created_at\":\"2026-11-26T19:40:00.123456Z\",\"updated_at\":\"2026-11-26T19:40:00Z\"" extra \
    "}"

static void json_reply(http_response *res, int status, const char *text)
{
    http_reply_json_text(res, status, strdup(text), strlen(text));
}

Test(openapi_check, accepts_what_is_documented)
{
    char why[512] = "";
    http_response res = {0};
    json_reply(&res, 200, TASK_JSON(""));
    cr_assert_eq(check("get_task", &res, why, sizeof why), 0, "%s", why);
    json_reply(&res, 201, TASK_JSON(""));
    http_header_add(&res, "Location", "/api/u/tasks/1");
    cr_assert_eq(check("create_task", &res, why, sizeof why), 0, "%s", why);
    json_reply(&res, 200, "[" TASK_JSON("") "," TASK_JSON("") "]");
    http_header_add(&res, "X-Total-Count", "2");
    cr_assert_eq(check("list_tasks", &res, why, sizeof why), 0, "%s", why);
    http_reply_detail(&res, 422, "Idempotency-Key was already used with a different request body");
    cr_assert_eq(check("create_task", &res, why, sizeof why), 0, "%s", why);
    json_reply(&res, 422,
               "{\"detail\":[{\"type\":\"missing\",\"loc\":[\"body\",\"title\"],"
               "\"msg\":\"Field required\",\"input\":{}}]}");
    cr_assert_eq(check("create_task", &res, why, sizeof why), 0, "%s", why);
    http_reply_empty(&res, 204);
    cr_assert_eq(check("delete_task", &res, why, sizeof why), 0, "%s", why);
    http_reply_raw(&res, 200, "text/plain; version=0.0.4; charset=utf-8", "x 1\n", 4);
    cr_assert_eq(check("metrics", &res, why, sizeof why), 0, "%s", why);
}

Test(openapi_check, rejects_what_is_not)
{
    struct {
        const char *op;
        int status;
        const char *body;
        const char *header;
        const char *why;
    } bad[] = {
        {"create_task", 201, "null", "Location", "null where the document says object"},
        {"create_task", 201, TASK_JSON(""), NULL, "without its documented header Location"},
        {"update_task", 200, TASK_JSON(""), "Location", "sends header Location"},
        {"get_task", 409, "{\"detail\":\"x\"}", NULL, "status 409 is not documented"},
        {"get_task", 200, TASK_JSON(",\"owner\":\"u\""), NULL, "does not declare"},
        {"get_task", 200, "{\"id\":1}", NULL, "required field user_id is missing"},
        {"get_task", 200,
         "{\"id\":\"1\",\"user_id\":\"u\",\"title\":\"t\",\"description\":null,\"completed\":"
         "false,\"created_at\":\"2026-11-26T19:40:00Z\",\"updated_at\":\"2026-11-26T19:40:00Z\"}",
         NULL, "string where the document says integer"},
        {"get_task", 200,
         "{\"id\":1,\"user_id\":\"u\",\"title\":\"t\",\"description\":null,\"completed\":"
         "false,\"created_at\":\"2026-11-26 19:40:00\",\"updated_at\":\"2026-11-26T19:40:00Z\"}",
         NULL, "is not a date-time"},
        {"list_tasks", 200, "[" TASK_JSON("") "]", NULL, "header X-Total-Count"},
        {"get_task", 422, "{\"detail\":\"x\"}", NULL, "string where the document says array"},
        {"update_task", 422, "{\"detail\":5}", NULL, "matches none"},
        {"delete_task", 204, "{}", NULL, NULL}, /* a 204 body is never sent: passes */
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char why[512] = "";
        http_response res = {0};
        json_reply(&res, bad[i].status, bad[i].body);
        if (bad[i].header)
            http_header_add(&res, bad[i].header, "x");
        int rc = check(bad[i].op, &res, why, sizeof why);
        if (!bad[i].why) {
            cr_assert_eq(rc, 0, "%s", why);
            continue;
        }
        cr_assert_eq(rc, -1, "case %zu (%s) passed", i, bad[i].why);
        cr_assert(strstr(why, bad[i].why), "case %zu: \"%s\" does not say \"%s\"", i, why,
                  bad[i].why);
    }
}

/* ---- the table's rules (router_check) ---- */

static const param_spec org_params[] = {
    {.name = "org_id", .in = PARAM_PATH, .type = TYPE_STRING},
    {.name = "user_id", .in = PARAM_PATH, .type = TYPE_STRING},
    {0},
};
static const field_spec one_field[] = {{.name = "id", .type = TYPE_INT, .required = true}, {0}};
static const body_spec model_a = {"Thing", one_field}, model_b = {"Thing", one_field},
                       reserved = {"HTTPError", one_field};
/* a response field is a column found by name and a JSON key written as it is (resource.h) */
static const field_spec quoted_field[] = {{.name = "a\"b", .type = TYPE_INT}, {0}};
static const field_spec digit_field[] = {{.name = "1st", .type = TYPE_INT}, {0}};
static const field_spec long_field[] = {
    {.name = "a_name_of_sixty_four_characters_which_no_postgresql_column_has_x", .type = TYPE_INT},
    {0}};
static const body_spec quoted_model = {"Quoted", quoted_field},
                       digit_model = {"Digit", digit_field}, long_model = {"Long", long_field};

static int handler(const http_request *req, db_session *s, http_response *res)
{
    (void)req, (void)s;
    return http_reply_empty(res, 204);
}

Test(router, owner_parameter_is_generic)
{
    route r = {"GET",
               "/orgs/{org_id}/users/{user_id}",
               handler,
               RUN_LOOP,
               .auth = true,
               .params = org_params,
               .operation_id = "x",
               .status = 204};
    cr_assert_eq(router_owner_param(&r), 1, "default: user_id");
    r.owner = "org_id";
    cr_assert_eq(router_owner_param(&r), 0);
    r.owner = "";
    cr_assert_eq(router_owner_param(&r), -1, "\"\": no check");
    r.owner = NULL;
    r.auth = false;
    cr_assert_eq(router_owner_param(&r), -1, "no token, no owner");
}

Test(router, a_broken_table_is_refused_with_a_message)
{
    char err[256];
    route ok = {"GET", "/things", handler, RUN_LOOP, .operation_id = "a", .status = 204};
    struct {
        route r;
        const char *why;
    } bad[] = {
        {{"GET", "/t/{x}", handler, RUN_LOOP, .auth = true, .owner = "x", .params = org_params,
          .operation_id = "b", .status = 204},
         "owner parameter x"},
        {{"GET", "/t", handler, RUN_LOOP, .operation_id = "b"}, "no success status"},
        {{"GET", "/t", handler, RUN_LOOP, .operation_id = "a", .status = 204}, "used twice"},
        {{"GET", "/t", handler, RUN_LOOP, .operation_id = "b", .status = 200,
          .response = &reserved},
         "the framework's"},
        {{"GET", "/t/{nope}", handler, RUN_LOOP, .operation_id = "b", .status = 204},
         "not declared"},
        {{"GET", "/t", handler, RUN_LOOP, .operation_id = "b", .status = 200,
          .response = &quoted_model},
         "response field \"a\"b\" is not an identifier"},
        {{"GET", "/t", handler, RUN_LOOP, .operation_id = "b", .status = 200,
          .response = &digit_model},
         "response field \"1st\""},
        {{"GET", "/t", handler, RUN_LOOP, .operation_id = "b", .status = 200,
          .response = &long_model},
         "at most 63 characters"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        route table[2] = {ok, bad[i].r};
        cr_assert_eq(router_check(table, 2, err, sizeof err), -1, "case %zu passed", i);
        cr_assert(strstr(err, bad[i].why), "case %zu: %s", i, err);
    }
    route twins[2] = {
        {"GET", "/a", handler, RUN_LOOP, .operation_id = "a", .status = 200, .response = &model_a},
        {"GET", "/b", handler, RUN_LOOP, .operation_id = "b", .status = 200, .response = &model_b}};
    cr_assert_eq(router_check(twins, 2, err, sizeof err), -1);
    cr_assert(strstr(err, "two different models are named Thing"), "%s", err);
    twins[1].response = &model_a; /* one model, two routes: fine */
    cr_assert_eq(router_check(twins, 2, err, sizeof err), 0, "%s", err);

    /* the route limit: one more than ROUTER_MAX_ROUTES is refused, not counted as unmatched */
    int n = ROUTER_MAX_ROUTES + 1;
    route *many = calloc((size_t)n, sizeof *many);
    char(*ids)[16] = calloc((size_t)n, sizeof *ids);
    for (int i = 0; i < n; i++) {
        snprintf(ids[i], sizeof ids[i], "op%d", i);
        many[i] = (route){"GET", "/x", handler, RUN_LOOP, .operation_id = ids[i], .status = 204};
    }
    cr_assert_eq(router_check(many, n, err, sizeof err), -1);
    cr_assert(strstr(err, "ROUTER_MAX_ROUTES"), "%s", err);
    cr_assert_eq(router_check(many, n - 1, err, sizeof err), 0, "%s", err);
    free(many);
    free(ids);

    /* the fields a response layout holds: RESOURCE_MAX_FIELDS, and one more is refused */
    field_spec wide[RESOURCE_MAX_FIELDS + 2] = {0};
    char names[RESOURCE_MAX_FIELDS + 1][8];
    for (int i = 0; i <= RESOURCE_MAX_FIELDS; i++) {
        snprintf(names[i], sizeof names[i], "f%d", i);
        wide[i] = (field_spec){.name = names[i], .type = TYPE_INT};
    }
    body_spec wide_model = {"Wide", wide};
    route one = {"GET",
                 "/w",
                 handler,
                 RUN_LOOP,
                 .operation_id = "w",
                 .status = 200,
                 .response = &wide_model};
    cr_assert_eq(router_check(&one, 1, err, sizeof err), -1);
    cr_assert(strstr(err, "RESOURCE_MAX_FIELDS"), "%s", err);
    wide[RESOURCE_MAX_FIELDS] = (field_spec){0};
    cr_assert_eq(router_check(&one, 1, err, sizeof err), 0, "%s", err);
}

/* ---- reply helpers ---- */

Test(reply, a_null_body_is_a_500_never_a_success)
{
    http_response res = {0};
    http_reply_json(&res, 201, NULL);
    cr_assert_eq(res.status, 500);
    cr_assert_str_eq(res.body, "{\"detail\":\"Internal Server Error\"}");
    http_response_reset(&res);
    http_reply_json(&res, 201, json_pack("{ss}", "title", (char *)NULL)); /* a pack error */
    cr_assert_eq(res.status, 500);
    http_response_reset(&res);
    http_reply_json_text(&res, 200, NULL, 0);
    cr_assert_eq(res.status, 500);
    http_response_reset(&res);
    http_reply_detail(&res, 404, NULL);
    cr_assert_eq(res.status, 500);
    http_response_reset(&res);
}

/* ---- the real server ---- */

#define EXPECT(r, code) cr_assert_eq((r)->status, code, "%s\n%s", (r)->head, (r)->body)

static api_response *call(int port, const char *as, const char *method, const char *path,
                          const char *extra, const char *body, int want)
{
    char hdr[1024] = "";
    if (!as && extra)
        snprintf(hdr, sizeof hdr, "%s", extra);
    if (as) {
        char *tok = api_token(as, "HS256", TEST_SECRET, 3600, 0);
        snprintf(hdr, sizeof hdr, "Authorization: Bearer %s\r\n%s", tok, extra ? extra : "");
        free(tok);
    }
    api_response *r = api_call(port, method, path, hdr, body);
    EXPECT(r, want);
    return r;
}

#define DO(...) api_response_free(call(__VA_ARGS__))

/* Every Todo route, its success and the errors a client can cause, through the debug build whose
 * reply check turns any undocumented status, header or body into a 500 with a log line. */
Test(openapi, every_todo_reply_matches_its_model, .timeout = 60)
{
    char *url = pgtest_url();
    api_migrate(url);
    free(url);
    char *app = pgtest_app_url();
    api_server srv;
    api_start(&srv, app, NULL);
    free(app);
    int p = srv.port;
    char *u = api_user("contract"), *other = api_user("other");
    char base[256], item[300], missing[300], toggle[320];
    snprintf(base, sizeof base, "/api/%s/tasks", u);

    api_response *r =
        call(p, u, "POST", base, NULL, "{\"title\":\"a\",\"description\":\"d\"}", 201);
    json_t *t = json_loads(r->body, 0, NULL);
    long long id = json_integer_value(json_object_get(t, "id"));
    json_decref(t);
    api_response_free(r);
    snprintf(item, sizeof item, "%s/%lld", base, id);
    snprintf(missing, sizeof missing, "%s/%lld", base, id + 1000000);
    snprintf(toggle, sizeof toggle, "%s/complete", item);

    DO(p, u, "POST", base, "Idempotency-Key: k1\r\n", "{\"title\":\"b\"}", 201);
    r = call(p, u, "POST", base, "Idempotency-Key: k1\r\n", "{\"title\":\"b\"}", 201);
    cr_assert(strstr(r->head, "Idempotent-Replayed"), "%s", r->head);
    api_response_free(r);
    DO(p, u, "POST", base, "Idempotency-Key: k1\r\n", "{\"title\":\"c\"}", 422);
    DO(p, u, "POST", base, NULL, "{\"title\":\"\"}", 422);
    DO(p, u, "POST", base, NULL, "[1]", 422);
    DO(p, NULL, "POST", base, NULL, "{\"title\":\"a\"}", 401);
    DO(p, other, "POST", base, NULL, "{\"title\":\"a\"}", 403);

    char query[400];
    snprintf(query, sizeof query, "%s?status=pending&search=a&sort=title&order=asc&limit=1", base);
    DO(p, u, "GET", base, NULL, NULL, 200);
    DO(p, u, "GET", query, NULL, NULL, 200);
    snprintf(query, sizeof query, "%s?limit=0", base);
    DO(p, u, "GET", query, NULL, NULL, 422);
    DO(p, u, "GET", item, NULL, NULL, 200);
    DO(p, u, "GET", missing, NULL, NULL, 404);
    DO(p, u, "PUT", item, NULL, "{\"title\":\"x\",\"completed\":true}", 200);
    DO(p, u, "PUT", missing, NULL, "{\"title\":\"x\"}", 404);
    DO(p, u, "PATCH", toggle, NULL, NULL, 200);
    DO(p, u, "DELETE", item, NULL, NULL, 204);
    DO(p, u, "DELETE", item, NULL, NULL, 404);
    DO(p, NULL, "GET", "/health", NULL, NULL, 200);
    DO(p, NULL, "GET", "/ready", NULL, NULL, 200);
    DO(p, NULL, "GET", "/metrics", TEST_METRICS_AUTH, NULL, 200);
    DO(p, NULL, "GET", "/metrics", NULL, NULL, 401);
    DO(p, NULL, "GET", "/metrics", "Authorization: Bearer test-metrics-token-012345678X\r\n", NULL,
       401);

    char *log = api_log(&srv);
    cr_assert_null(strstr(log, "does not match /openapi.json"), "%s", log);
    free(log);
    free(u);
    free(other);
    cr_assert_eq(api_stop(&srv), 0);
}

Test(openapi, passes_redocly_lint, .timeout = 300)
{
    char *app = pgtest_app_url();
    api_server srv;
    api_start(&srv, app, NULL);
    free(app);
    api_response *r = api_call(srv.port, "GET", "/openapi.json", NULL, NULL);
    cr_assert_eq(r->status, 200);
    char path[128];
    snprintf(path, sizeof path, "/tmp/openapi-%d.json", (int)getpid());
    FILE *f = fopen(path, "w");
    cr_assert(f);
    fputs(r->body, f);
    fclose(f);
    api_response_free(r);
    cr_assert_eq(api_stop(&srv), 0);

    char cmd[1024], *out;
    snprintf(cmd, sizeof cmd,
             "cd /tmp && if command -v redocly >/dev/null; then lint='redocly'; "
             "else lint='npx --yes @redocly/cli@2'; fi; "
             "timeout 240 $lint lint --format=stylish %s",
             path);
    int rc = pgtest_run(cmd, &out);
    unlink(path);
    cr_assert_eq(rc, 0, "redocly lint failed (exit %d):\n%s", rc, out);
    cr_assert(strstr(out, "valid"), "%s", out);
    free(out);
}
