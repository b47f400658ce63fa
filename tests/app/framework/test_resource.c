/* Routes that declare, handlers that do not: on the framework test server's POST
 * /api/{user_id}/links (tests/app/framework/routes.c), a constraint mapped to 409 by the route
 * answers 409 with its detail and is in /openapi.json; `format: uri` and `pattern` validate with
 * FastAPI's 422 and are in the schema; the row becomes JSON through the response model, from text
 * and binary results alike (resource_layout_of and resource_write_row on a real result). */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/resource.h"
#include "tests/app/framework/fw.h"
#include "tests/support/pgtest.h"

TestSuite(resource, .timeout = 60);

#define EXPECT(r, code) cr_assert_eq((r)->status, code, "%s\n%s", (r)->head, (r)->body)

static api_response *post_link(int port, const char *user, const char *body)
{
    char *tok = api_token(user, "HS256", TEST_SECRET, 3600, 0), hdr[1024], p[256];
    snprintf(hdr, sizeof hdr, "Authorization: Bearer %s\r\n", tok);
    snprintf(p, sizeof p, "/api/%s/links", user);
    api_response *r = api_call(port, "POST", p, hdr, body);
    free(tok);
    return r;
}

Test(resource, a_declared_constraint_mapping_answers_its_status_and_is_documented)
{
    api_server srv;
    fw_serve(&srv, NULL);
    char *u = api_user("links");
    api_response *a = post_link(srv.port, u, "{\"url\":\"https://example.com/x\"}");
    EXPECT(a, 201);
    json_t *made = json_loads(a->body, 0, NULL);
    cr_assert(json_is_integer(json_object_get(made, "id")), "%s", a->body);
    cr_assert(json_is_null(json_object_get(made, "tag")), "the default applied once: %s", a->body);
    cr_assert_str_eq(json_string_value(json_object_get(made, "url")), "https://example.com/x");
    char *loc = api_header(a, "Location"), want[256];
    snprintf(want, sizeof want, "/api/%s/links/%lld", u,
             (long long)json_integer_value(json_object_get(made, "id")));
    cr_assert(loc && !strcmp(loc, want), "Location %s, expected %s", loc, want);
    free(loc);
    json_decref(made);
    api_response *b = post_link(srv.port, u, "{\"url\":\"https://example.com/x\"}");
    EXPECT(b, 409);
    cr_assert_str_eq(b->body, "{\"detail\":\"This URL is saved already\"}");
    cr_assert(strstr(b->head, "409 Conflict"), "reason phrase: %s", b->head);

    api_response *doc = api_call(srv.port, "GET", "/openapi.json", NULL, NULL);
    EXPECT(doc, 200);
    json_t *d = json_loads(doc->body, 0, NULL);
    json_t *op = json_object_get(
        json_object_get(json_object_get(d, "paths"), "/api/{user_id}/links"), "post");
    json_t *r409 = json_object_get(json_object_get(op, "responses"), "409");
    cr_assert(r409, "409 not documented: %s", json_dumps(op, 0));
    cr_assert(strstr(json_string_value(json_object_get(r409, "description")), "saved already"));
    json_t *fields = json_object_get(
        json_object_get(json_object_get(json_object_get(d, "components"), "schemas"), "LinkCreate"),
        "properties");
    cr_assert_str_eq(json_string_value(json_object_get(json_object_get(fields, "url"), "format")),
                     "uri");
    cr_assert_str_eq(json_string_value(json_object_get(json_object_get(fields, "tag"), "pattern")),
                     "^[a-z0-9-]+$");
    json_decref(d);
    api_response_free_all(3, (api_response *[]){a, b, doc});
    cr_assert_eq(api_stop(&srv), 0);
    free(u);
}

Test(resource, format_uri_and_pattern_answer_422_in_fastapis_shape)
{
    api_server srv;
    fw_serve(&srv, NULL);
    char *u = api_user("links-bad");
    api_response *a = post_link(srv.port, u, "{\"url\":\"not a url\",\"tag\":\"Bad Tag\"}");
    EXPECT(a, 422);
    json_t *body = json_loads(a->body, 0, NULL);
    json_t *detail = json_object_get(body, "detail");
    cr_assert_eq(json_array_size(detail), 2, "%s", a->body);
    json_t *e0 = json_array_get(detail, 0), *e1 = json_array_get(detail, 1);
    cr_assert_str_eq(json_string_value(json_object_get(e0, "type")), "url_parsing", "%s", a->body);
    cr_assert_str_eq(json_string_value(json_object_get(e0, "msg")),
                     "Input should be a valid URL, relative URL without a base");
    cr_assert_str_eq(json_string_value(json_array_get(json_object_get(e0, "loc"), 1)), "url");
    cr_assert_str_eq(json_string_value(json_object_get(e1, "type")), "string_pattern_mismatch");
    cr_assert_str_eq(json_string_value(json_object_get(e1, "msg")),
                     "String should match pattern '^[a-z0-9-]+$'");
    cr_assert_str_eq(json_string_value(json_object_get(json_object_get(e1, "ctx"), "pattern")),
                     "^[a-z0-9-]+$");
    json_decref(body);
    api_response *b =
        post_link(srv.port, u, "{\"url\":\"https://example.com/ok\",\"tag\":\"ok-1\"}");
    EXPECT(b, 201);
    cr_assert(strstr(b->body, "\"tag\":\"ok-1\""), "%s", b->body);
    api_response_free_all(2, (api_response *[]){a, b});
    cr_assert_eq(api_stop(&srv), 0);
    free(u);
}

static const field_spec mixed_fields[] = {
    {.name = "id", .type = TYPE_INT},
    {.name = "small", .type = TYPE_INT},
    {.name = "big", .type = TYPE_INT},
    {.name = "done", .type = TYPE_BOOL},
    {.name = "dueDate", .type = TYPE_STRING, .format = "date-time"},
    {.name = "note", .type = TYPE_STRING, .nullable = true},
    {0}};
static const body_spec mixed = {"Mixed", mixed_fields};

/* Every kind of value the writer decides once per result (the column's type and wire format), the
 * extremes of each integer width, a camelCase field (an exact, quoted column name), a column out of
 * the model's order, NULL, and a string that needs escaping: the same text from both formats. */
Test(resource, a_row_becomes_the_model_from_text_and_binary_results)
{
    PGconn *c = pgtest_connect();
    const char *sql =
        "select 'x\"y\n' as note, (-2147483648)::int4 as id, (-32768)::int2 as small, "
        "(-9223372036854775808)::int8 as big, true as done, "
        "timestamp '2026-11-26 19:40:00.12' as \"dueDate\" union all "
        "select null, 2147483647, 32767, 9223372036854775807, false, "
        "timestamp '2000-01-01'";
    const char *want =
        "{\"id\":-2147483648,\"small\":-32768,\"big\":-9223372036854775808,\"done\":true,"
        "\"dueDate\":\"2026-11-26T19:40:00.12Z\",\"note\":\"x\\\"y\\n\"}"
        "{\"id\":2147483647,\"small\":32767,\"big\":9223372036854775807,\"done\":false,"
        "\"dueDate\":\"2000-01-01T00:00:00Z\",\"note\":null}";
    for (int binary = 0; binary <= 1; binary++) {
        PGresult *r = PQexecParams(c, sql, 0, NULL, NULL, NULL, NULL, binary);
        cr_assert_eq(PQresultStatus(r), PGRES_TUPLES_OK, "%s", PQerrorMessage(c));
        resource_layout l;
        cr_assert_eq(resource_layout_of(&l, &mixed, r), 0);
        jsonw w = {0};
        resource_write_row(&w, &l, r, 0);
        resource_write_row(&w, &l, r, 1);
        size_t len;
        char *text = jsonw_take(&w, &len);
        cr_assert_str_eq(text, want, "%s results", binary ? "binary" : "text");
        free(text);
        PQclear(r);
    }
    /* "dueDate" is not "duedate": a column that only matches once folded is missing (500, logged)
     */
    PGresult *r = PQexec(c, "select 1 as id, 1 as small, 1 as big, true as done, "
                            "now() as duedate, '' as note");
    resource_layout l;
    cr_assert_eq(resource_layout_of(&l, &mixed, r), -1);
    PQclear(r);
    PQfinish(c);
}

/* A resource's own setting (framework routes.c: ITEMS_MAX_PER_USER) is validated at start-up like
 * the framework's: a bad value stops the server with one line naming the variable (exit 2). */
Test(resource, a_bad_resource_setting_stops_startup_naming_the_variable)
{
    static const char *const bad[] = {"ITEMS_MAX_PER_USER=many", "ITEMS_MAX_PER_USER=0",
                                      "ITEMS_MAX_PER_USER=100000"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char cmd[2048], *out = NULL;
        snprintf(cmd, sizeof cmd,
                 "cd /tmp && env -i PATH=/usr/bin:/bin LOG_FORMAT=text APP_ENV=development "
                 "DATABASE_URL=postgresql://u@127.0.0.1:1/db %s timeout 10 %s",
                 bad[i], pgtest_bin("framework-api"));
        int rc = pgtest_run(cmd, &out);
        cr_assert_eq(rc, 2, "%s: exit %d: %s", bad[i], rc, out);
        cr_assert(strstr(out, "ITEMS_MAX_PER_USER must be"), "%s: %s", bad[i], out);
        int lines = 0;
        for (const char *c = out; *c; c++)
            lines += *c == '\n';
        cr_assert_eq(lines, 1, "%s", out);
        free(out);
    }
}
