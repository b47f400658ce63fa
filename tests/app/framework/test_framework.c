/* The framework over real HTTP, on the framework test server (routes.c of this folder: its own
 * small "items" route table, no example resource): routing (404, 405 + Allow, 307), limits (413,
 * 431), the bearer token matrix (401) and its owner (403), CORS, X-Request-ID and the access log,
 * /openapi.json, /docs, /ready and /metrics. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tests/app/framework/fw.h"
#include "tests/support/pgtest.h"

static api_server srv;

static void up(void)
{
    fw_serve(&srv, "CORS_ORIGINS=https://app.example.com MAX_BODY_BYTES=4096");
}

static void down(void)
{
    cr_assert_eq(api_stop(&srv), 0, "the server did not exit 0");
}

TestSuite(framework, .init = up, .fini = down, .timeout = 60);

#define EXPECT(r, code) cr_assert_eq((r)->status, code, "%s\n%s", (r)->head, (r)->body)

static json_t *body_json(const api_response *r)
{
    json_error_t e;
    json_t *j = json_loads(r->body, JSON_DECODE_ANY, &e);
    cr_assert(j, "not JSON (%s): %s", e.text, r->body);
    return j;
}

static void expect_header(const api_response *r, const char *name, const char *want)
{
    char *v = api_header(r, name);
    if (want)
        cr_assert(v && !strcmp(v, want), "%s: %s, expected %s\n%s", name, v, want, r->head);
    else
        cr_assert_null(v, "%s: %s, expected none", name, v);
    free(v);
}

Test(framework, routing_404_405_307)
{
    api_response *r = api_call(srv.port, "GET", "/nope", NULL, NULL);
    EXPECT(r, 404);
    cr_assert_str_eq(r->body, "{\"detail\":\"Not Found\"}");
    api_response_free(r);

    r = api_call(srv.port, "POST", "/health", NULL, "{}");
    EXPECT(r, 405);
    cr_assert_str_eq(r->body, "{\"detail\":\"Method Not Allowed\"}");
    expect_header(r, "Allow", "GET");
    api_response_free(r);

    r = api_call(srv.port, "DELETE", "/api/someone/items", NULL, NULL);
    EXPECT(r, 405);
    expect_header(r, "Allow", "GET, POST");
    api_response_free(r);

    r = api_call(srv.port, "GET", "/api/someone/items/?limit=5", NULL, NULL);
    EXPECT(r, 307);
    char *loc = api_header(r, "Location");
    cr_assert(loc && strstr(loc, "/api/someone/items?limit=5") && !strstr(loc, "items/?"), "%s",
              loc);
    free(loc);
    api_response_free(r);
}

Test(framework, body_and_header_limits)
{
    char *u = api_user("limits"), p[256];
    snprintf(p, sizeof p, "/api/%s/items", u);
    size_t n = 5000;
    char *big = malloc(n + 32);
    snprintf(big, n + 32, "{\"name\":\"%0*d\"}", (int)n, 0);
    api_response *r = api_as(srv.port, u, "POST", p, big);
    EXPECT(r, 413);
    cr_assert(strstr(r->body, "\"detail\""), "%s", r->body);
    api_response_free(r);
    free(big);

    char *hdr = malloc(10000);
    snprintf(hdr, 10000, "X-Filler: %09000d\r\n", 0);
    r = api_call(srv.port, "GET", "/health", hdr, NULL);
    EXPECT(r, 431);
    cr_assert(strstr(r->body, "\"detail\""), "%s", r->body);
    api_response_free(r);
    free(hdr);
    free(u);
}

Test(framework, unauthorized_401)
{
    char *u = api_user("auth"), p[256];
    snprintf(p, sizeof p, "/api/%s/items", u);
    char *tokens[] = {
        NULL,                         /* missing */
        strdup("Basic dXNlcjpwYXNz"), /* not bearer */
        strdup("Bearer not.a.jwt"),   /* malformed */
        api_token(u, "HS256", "another-secret-0123456789abcdef0123456789", 3600, 0),
        api_token(u, "HS256", TEST_SECRET, -3600, 0),   /* expired */
        api_token(u, "none", NULL, 3600, 0),            /* alg none */
        api_token(u, "HS512", TEST_SECRET, 3600, 0),    /* other algorithm, right key */
        api_token(u, "HS256", TEST_SECRET, 0, 0),       /* no exp */
        api_token(u, "HS256", TEST_SECRET, 3600, 600),  /* nbf in the future */
        api_token(NULL, "HS256", TEST_SECRET, 3600, 0), /* no sub */
    };
    for (size_t i = 0; i < sizeof tokens / sizeof *tokens; i++) {
        char hdr[2048] = "";
        if (tokens[i])
            snprintf(hdr, sizeof hdr, "Authorization: %s%s\r\n", i <= 2 ? "" : "Bearer ",
                     tokens[i]);
        api_response *r = api_call(srv.port, "GET", p, hdr, NULL);
        cr_assert_eq(r->status, 401, "case %zu: %s", i, r->head);
        expect_header(r, "WWW-Authenticate", "Bearer");
        json_t *j = body_json(r);
        cr_assert(json_is_string(json_object_get(j, "detail")), "case %zu: %s", i, r->body);
        json_decref(j);
        api_response_free(r);
        free(tokens[i]);
    }
    /* expired by less than the leeway: still accepted */
    char *tok = api_token(u, "HS256", TEST_SECRET, -3, 0), hdr[1024];
    snprintf(hdr, sizeof hdr, "Authorization: Bearer %s\r\n", tok);
    api_response *r = api_call(srv.port, "GET", p, hdr, NULL);
    EXPECT(r, 200);
    cr_assert_str_eq(r->body, "[]");
    api_response_free(r);
    free(tok);
    free(u);
}

Test(framework, another_users_path_is_403)
{
    char *a = api_user("a"), *b = api_user("b"), p[256];
    snprintf(p, sizeof p, "/api/%s/items", a);
    api_response *r = api_as(srv.port, b, "GET", p, NULL);
    EXPECT(r, 403);
    cr_assert(strstr(r->body, "\"detail\""), "%s", r->body);
    api_response_free(r);
    r = api_as(srv.port, b, "POST", p, "{\"name\":\"planted\"}");
    EXPECT(r, 403);
    api_response_free(r);
    cr_assert_eq(fw_count("select count(*) from items where name = 'planted'"), 0);
    free(a);
    free(b);
}

Test(framework, cors)
{
    const char *pre = "Origin: https://app.example.com\r\nAccess-Control-Request-Method: POST\r\n"
                      "Access-Control-Request-Headers: authorization, content-type\r\n";
    api_response *r = api_call(srv.port, "OPTIONS", "/api/x/items", pre, NULL);
    EXPECT(r, 200);
    expect_header(r, "Access-Control-Allow-Origin", "https://app.example.com");
    expect_header(r, "Access-Control-Allow-Methods", "GET, POST");
    char *h = api_header(r, "Access-Control-Allow-Headers");
    cr_assert(h && strstr(h, "Authorization") && strstr(h, "Idempotency-Key"), "%s", h);
    free(h);
    api_response_free(r);

    r = api_call(srv.port, "OPTIONS", "/api/x/items",
                 "Origin: https://evil.example.com\r\nAccess-Control-Request-Method: POST\r\n",
                 NULL);
    EXPECT(r, 400);
    expect_header(r, "Access-Control-Allow-Origin", NULL);
    api_response_free(r);

    r = api_call(srv.port, "OPTIONS", "/nowhere", pre, NULL);
    EXPECT(r, 404);
    api_response_free(r);

    /* a 401 answered from the head, its body never sent (wire.c's check), is CORS-readable too */
    r = api_call(srv.port, "POST", "/api/x/items",
                 "Origin: https://app.example.com\r\nContent-Length: 1000\r\n", NULL);
    EXPECT(r, 401);
    expect_header(r, "Access-Control-Allow-Origin", "https://app.example.com");
    expect_header(r, "WWW-Authenticate", "Bearer");
    api_response_free(r);

    r = api_call(srv.port, "GET", "/health", "Origin: https://app.example.com\r\n", NULL);
    EXPECT(r, 200);
    expect_header(r, "Access-Control-Allow-Origin", "https://app.example.com");
    expect_header(r, "Vary", "Origin");
    api_response_free(r);
    r = api_call(srv.port, "GET", "/health", "Origin: https://evil.example.com\r\n", NULL);
    expect_header(r, "Access-Control-Allow-Origin", NULL);
    api_response_free(r);
}

Test(framework, request_id_headers_and_access_log)
{
    api_response *r =
        api_call(srv.port, "GET", "/api/someone/items", "X-Request-ID: trace-abc-123\r\n", NULL);
    EXPECT(r, 401);
    expect_header(r, "X-Request-ID", "trace-abc-123");
    expect_header(r, "X-Content-Type-Options", "nosniff");
    expect_header(r, "Content-Type", "application/json");
    api_response_free(r);
    r = api_call(srv.port, "GET", "/health", "X-Request-ID: bad id with spaces\r\n", NULL);
    char *id = api_header(r, "X-Request-ID");
    cr_assert(id && strlen(id) == 32 && !strchr(id, ' '), "%s", id);
    free(id);
    api_response_free(r);
    usleep(50000);
    char *log = api_log(&srv);
    cr_assert(strstr(log, "\"request_id\":\"trace-abc-123\"") &&
                  strstr(log, "\"route\":\"/api/{user_id}/items\"") &&
                  strstr(log, "\"status\":401"),
              "%s", log);
    cr_assert_null(strstr(log, TEST_SECRET), "secret in the log");
    free(log);
}

Test(framework, openapi_docs_ready_metrics)
{
    api_response *r = api_call(srv.port, "GET", "/openapi.json", NULL, NULL);
    EXPECT(r, 200);
    json_t *doc = body_json(r);
    cr_assert_str_eq(json_string_value(json_object_get(doc, "openapi")), "3.1.0");
    json_t *items = json_object_get(json_object_get(doc, "paths"), "/api/{user_id}/items");
    cr_assert_str_eq(
        json_string_value(json_object_get(json_object_get(items, "post"), "operationId")),
        "create_item");
    cr_assert_str_eq(
        json_string_value(json_object_get(json_object_get(items, "get"), "operationId")),
        "list_items");
    cr_assert_null(json_object_get(json_object_get(doc, "paths"), "/api/{user_id}/tasks"),
                   "the example's routes leaked into the framework server");
    json_decref(doc);
    api_response_free(r);

    r = api_call(srv.port, "GET", "/docs", NULL, NULL);
    EXPECT(r, 200);
    cr_assert(strstr(r->body, "/openapi.json"), "%s", r->body);
    api_response_free(r);

    r = api_call(srv.port, "GET", "/ready", NULL, NULL);
    EXPECT(r, 200);
    api_response_free(r);

    r = api_call(srv.port, "GET", "/metrics", TEST_METRICS_AUTH, NULL);
    EXPECT(r, 200);
    cr_assert(
        strstr(r->body, "http_requests_total{method=\"GET\",route=\"/ready\",status=\"200\"} 1") &&
            strstr(r->body, "http_request_duration_seconds_bucket") &&
            strstr(r->body, "db_pool_connections"),
        "%s", r->body);
    /* DB_PREPARE=auto, decided on the first connection: direct prepares, pgbouncer 1.18 not */
    cr_assert(strstr(r->body,
                     pgtest_via_pooler() ? "\ndb_pool_preparing 0\n" : "\ndb_pool_preparing 1\n"),
              "%s", r->body);
    api_response_free(r);
}

/* METRICS_TOKEN guards /metrics: the token as a bearer token, compared whole; without it 401
 * with WWW-Authenticate. Unset, /metrics answers 404 in production and is open in development. */
Test(framework, metrics_behind_its_token)
{
    static const char *const wrong[] = {NULL, "Authorization: Bearer test-metrics-token\r\n",
                                        "Authorization: Bearer " TEST_METRICS_TOKEN "x\r\n",
                                        "Authorization: Basic " TEST_METRICS_TOKEN "\r\n"};
    for (size_t i = 0; i < sizeof wrong / sizeof *wrong; i++) {
        api_response *r = api_call(srv.port, "GET", "/metrics", wrong[i], NULL);
        EXPECT(r, 401);
        expect_header(r, "WWW-Authenticate", "Bearer");
        cr_assert(!strstr(r->body, "http_requests_total"), "%s", r->body);
        api_response_free(r);
    }
    api_response *r = api_call(srv.port, "GET", "/metrics",
                               "Authorization: bearer " TEST_METRICS_TOKEN "\r\n", NULL);
    EXPECT(r, 200); /* the scheme is case-insensitive (RFC 9110 11.1) */
    api_response_free(r);

    api_server other;
    fw_serve(&other, "METRICS_TOKEN=");
    r = api_call(other.port, "GET", "/metrics", TEST_METRICS_AUTH, NULL);
    EXPECT(r, 404);
    api_response_free(r);
    cr_assert_eq(api_stop(&other), 0);
    fw_serve(&other, "METRICS_TOKEN= APP_ENV=development");
    r = api_call(other.port, "GET", "/metrics", NULL, NULL);
    EXPECT(r, 200);
    api_response_free(r);
    cr_assert_eq(api_stop(&other), 0);
}

/* RATE_LIMIT per token subject (slowapi's fixed window): the limit's requests pass, the next one
 * is 429 with Retry-After and the X-RateLimit-* headers; another user has a limit of their own;
 * unauthenticated routes are not counted. */
Test(framework, rate_limit_per_user)
{
    api_server limited;
    fw_serve(&limited, "RATE_LIMIT=3/day");
    char *a = api_user("rl-a"), *b = api_user("rl-b");
    char pa[256], pb[256];
    snprintf(pa, sizeof pa, "/api/%s/items", a);
    snprintf(pb, sizeof pb, "/api/%s/items", b);
    for (int i = 0; i < 3; i++) {
        api_response *r = api_as(limited.port, a, "GET", pa, NULL);
        EXPECT(r, 200);
        api_response_free(r);
    }
    api_response *r = api_as(limited.port, a, "GET", pa, NULL);
    EXPECT(r, 429);
    cr_assert_str_eq(r->body, "{\"detail\":\"Rate limit exceeded: 3 per 1 day\"}");
    expect_header(r, "X-RateLimit-Limit", "3");
    expect_header(r, "X-RateLimit-Remaining", "0");
    char *retry = api_header(r, "Retry-After"), *reset = api_header(r, "X-RateLimit-Reset");
    long now = (long)time(NULL);
    cr_assert(retry && atol(retry) >= 1 && atol(retry) <= 86400, "Retry-After %s", retry);
    cr_assert(reset && atol(reset) % 86400 == 0 && atol(reset) > now && atol(reset) <= now + 86400,
              "X-RateLimit-Reset %s", reset);
    free(retry);
    free(reset);
    api_response_free(r);
    r = api_as(limited.port, a, "POST", pa, "{\"name\":\"over\"}");
    EXPECT(r, 429);
    api_response_free(r);
    r = api_as(limited.port, b, "GET", pb, NULL);
    EXPECT(r, 200);
    api_response_free(r);
    for (int i = 0; i < 5; i++) {
        r = api_call(limited.port, "GET", "/health", NULL, NULL);
        EXPECT(r, 200);
        api_response_free(r);
    }
    free(a);
    free(b);
    cr_assert_eq(api_stop(&limited), 0);
}
