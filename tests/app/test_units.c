/* The pieces of the HTTP layer that need no server: UTF-8 rules, Pydantic-shaped errors, the
 * router's decisions, JWT verification (algorithm pinning, exp/nbf, the verified-token cache). */
#include <criterion/criterion.h>
#include <jwt.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "app/auth.h"
#include "app/router.h"
#include "app/validate.h"

Test(utf8, counts_code_points_not_bytes)
{
    cr_assert_eq(utf8_chars("abc", 3), 3);
    cr_assert_eq(utf8_chars("h\xc3\xa9llo", 6), 5);             /* é */
    cr_assert_eq(utf8_chars("\xe4\xbb\xbb\xe5\x8a\xa1", 6), 2); /* 任务 */
    cr_assert_eq(utf8_chars("\xf0\x9f\x98\x80", 4), 1);         /* 😀 */
}

Test(utf8, rejects_what_python_would_not_decode)
{
    cr_assert(utf8_valid("plain", 5));
    cr_assert(utf8_valid("\xf0\x9f\x98\x80", 4));
    cr_assert_not(utf8_valid("\xff", 1));
    cr_assert_not(utf8_valid("\xc0\xaf", 2));         /* overlong '/' */
    cr_assert_not(utf8_valid("\xed\xa0\x80", 3));     /* surrogate */
    cr_assert_not(utf8_valid("\xf4\x90\x80\x80", 4)); /* > U+10FFFF */
    cr_assert_not(utf8_valid("\xe4\xbb", 2));         /* truncated */
    cr_assert_not(utf8_valid("a\0b", 3));             /* NUL */
}

static json_t *errors_of(const param_spec *p, const char *raw)
{
    json_t *errors = json_array();
    http_value v;
    validate_param(p, raw, &v, errors);
    return errors;
}

Test(validate, params_in_pydantic_shape)
{
    param_spec limit = {.name = "limit",
                        .in = PARAM_QUERY,
                        .type = TYPE_INT,
                        .def = "20",
                        .has_ge = true,
                        .ge = 1,
                        .has_le = true,
                        .le = 100};
    json_t *e = errors_of(&limit, "500");
    char *s = json_dumps(e, JSON_COMPACT);
    cr_assert_str_eq(s, "[{\"type\":\"less_than_equal\",\"loc\":[\"query\",\"limit\"],\"msg\":"
                        "\"Input should be less than or equal to 100\",\"input\":\"500\","
                        "\"ctx\":{\"le\":100}}]");
    free(s);
    json_decref(e);
    http_value v;
    json_t *none = json_array();
    cr_assert(validate_param(&limit, NULL, &v, none));
    cr_assert(v.set && v.num == 20, "the default applies");
    cr_assert(!validate_param(&limit, " 5", &v, none));
    cr_assert(!validate_param(&limit, "5x", &v, none));
    cr_assert_eq(json_array_size(none), 2);
    json_decref(none);
}

Test(validate, body_collects_every_problem)
{
    static const field_spec fields[] = {
        {.name = "title",
         .type = TYPE_STRING,
         .required = true,
         .min_len = 1,
         .max_len = 3,
         .not_blank = true},
        {.name = "done", .type = TYPE_BOOL},
        {0},
    };
    body_spec spec = {"T", fields};
    json_t *errors = json_array();
    const char *two = "{\"title\":\"abcd\",\"done\":1}";
    cr_assert_null(validate_body(&spec, two, strlen(two), errors));
    cr_assert_eq(json_array_size(errors), 2);
    json_array_clear(errors);
    const char *emoji = "{\"title\":\"\xf0\x9f\x98\x80\xf0\x9f\x98\x80\xf0\x9f\x98\x80\"}";
    json_t *ok = validate_body(&spec, emoji, strlen(emoji), errors);
    cr_assert_not_null(ok, "3 emoji are 3 characters");
    json_decref(ok);
    const char *blank = "{\"title\":\"   \"}";
    cr_assert_null(validate_body(&spec, blank, strlen(blank), errors));
    cr_assert_str_eq(json_string_value(json_object_get(json_array_get(errors, 0), "type")),
                     "value_error");
    json_decref(errors);
}

/* On the framework test server's table (tests/app/framework/routes.c, linked instead of the
 * example's app/routes.c): the router's rules, whatever resources a copy of the template has. */
Test(router, matches_redirects_and_lists_methods)
{
    char err[256];
    cr_assert_eq(router_init(err, sizeof err), 0, "%s", err);
    route_match m;
    router_match("GET", "/api/al%20ice/items/42", &m);
    cr_assert_eq(m.kind, MATCH_FOUND);
    cr_assert_str_eq(m.route->operation_id, "get_item");
    cr_assert_str_eq(m.segments[0], "al ice", "path parameters are percent-decoded");
    cr_assert_str_eq(m.segments[1], "42");
    router_match_free(&m);
    router_match("POST", "/api/a/items/1", &m);
    cr_assert_eq(m.kind, MATCH_NO_METHOD);
    cr_assert_str_eq(m.allow, "GET, DELETE");
    router_match("GET", "/api/a/items/", &m);
    cr_assert_eq(m.kind, MATCH_REDIRECT);
    router_match("GET", "/api//items", &m);
    cr_assert_eq(m.kind, MATCH_NOT_FOUND, "an empty parameter does not match");
    router_match("GET", "/api/a/items/1/x", &m);
    cr_assert_eq(m.kind, MATCH_NOT_FOUND);
}

static const char secret[] = "unit-secret-0123456789abcdef0123456789";

static char *sign(jwt_alg_t alg, const char *sub, long exp, long nbf)
{
    jwt_t *j;
    jwt_new(&j);
    if (sub)
        jwt_add_grant(j, "sub", sub);
    if (exp)
        jwt_add_grant_int(j, "exp", exp);
    if (nbf)
        jwt_add_grant_int(j, "nbf", nbf);
    jwt_set_alg(j, alg, alg == JWT_ALG_NONE ? NULL : (const unsigned char *)secret,
                alg == JWT_ALG_NONE ? 0 : (int)strlen(secret));
    char *t = jwt_encode_str(j);
    jwt_free(j);
    char *h = malloc(strlen(t) + 8);
    strcpy(h, "Bearer ");
    strcat(h, t);
    free(t);
    return h;
}

Test(auth, pins_hs256_and_checks_claims)
{
    auth_configure(secret, strlen(secret));
    auth_cache *cache = auth_cache_new();
    long now = (long)time(NULL);
    char sub[AUTH_SUB_MAX];
    const char *why;
    struct {
        char *header;
        int want;
    } cases[] = {
        {sign(JWT_ALG_HS256, "alice", now + 60, 0), 0},
        {sign(JWT_ALG_HS256, "alice", now - 5, 0), 0}, /* within the leeway */
        {sign(JWT_ALG_HS256, "alice", now - 60, 0), -1},
        {sign(JWT_ALG_HS256, "alice", 0, 0), -1},
        {sign(JWT_ALG_HS256, "alice", now + 60, now + 120), -1},
        {sign(JWT_ALG_HS256, NULL, now + 60, 0), -1},
        {sign(JWT_ALG_HS512, "alice", now + 60, 0), -1},
        {sign(JWT_ALG_NONE, "alice", now + 60, 0), -1},
    };
    for (int round = 0; round < 2; round++) /* the second round is served by the cache */
        for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
            cr_assert_eq(auth_verify(cache, cases[i].header, sub, &why), cases[i].want,
                         "case %zu round %d", i, round);
    cr_assert_str_eq(sub, "alice");
    /* a tampered signature is not a cache hit */
    char *bad = strdup(cases[0].header);
    bad[strlen(bad) - 2] = bad[strlen(bad) - 2] == 'A' ? 'B' : 'A';
    cr_assert_eq(auth_verify(cache, bad, sub, &why), -1);
    free(bad);
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        free(cases[i].header);
    auth_cache_free(cache);
    auth_configure("", 0);
}
