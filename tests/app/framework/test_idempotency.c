/* Idempotency-Key as framework code (app/idempotency.c), on the framework test server's POST
 * /api/{user_id}/items, whose handler has no idempotency code: replay, 422 on another request, a
 * concurrent retry that waits and replays, 409 for a key without a result, the handler statement's
 * own WITH clause kept (the per-user limit recipe), a second statement refused, expiry (claimed
 * afresh, deleted by the background job), and one database round trip for the warm first POST. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "app/idempotency.h"
#include "tests/app/framework/fw.h"
#include "tests/support/fproxy.h"
#include "tests/support/pgtest.h"

TestSuite(idempotency, .timeout = 90);

#define EXPECT(r, code) cr_assert_eq((r)->status, code, "%s\n%s", (r)->head, (r)->body)

static api_response *post(int port, const char *user, const char *path, const char *key,
                          const char *body)
{
    char *tok = api_token(user, "HS256", TEST_SECRET, 3600, 0), hdr[1024], p[256];
    snprintf(hdr, sizeof hdr, "Authorization: Bearer %s\r\n%s%s%s", tok,
             key ? "Idempotency-Key: " : "", key ? key : "", key ? "\r\n" : "");
    snprintf(p, sizeof p, "/api/%s/%s", user, path);
    api_response *r = api_call(port, "POST", p, hdr, body);
    free(tok);
    return r;
}

static long count(const char *what, const char *user)
{
    char sql[512];
    snprintf(sql, sizeof sql, "select count(*) from %s where user_id = '%s'", what, user);
    return fw_count(sql);
}

static bool replayed(const api_response *r)
{
    return strstr(r->head, "Idempotent-Replayed: true") != NULL;
}

Test(idempotency, a_retry_replays_and_the_key_is_bound_to_its_request)
{
    api_server srv;
    fw_serve(&srv, NULL);
    char *u = api_user("idem");
    api_response *a = post(srv.port, u, "items", "k1", "{\"name\":\"once\"}");
    EXPECT(a, 201);
    cr_assert(!replayed(a), "%s", a->head);
    /* the same body with other spacing is the same request */
    api_response *b = post(srv.port, u, "items", "k1", "{ \"name\" :  \"once\" }");
    EXPECT(b, 201);
    cr_assert(replayed(b), "%s", b->head);
    cr_assert_str_eq(a->body, b->body);
    char *la = api_header(a, "Location"), *lb = api_header(b, "Location");
    cr_assert(la && lb && !strcmp(la, lb), "%s %s", la, lb);
    free(la), free(lb);
    cr_assert_eq(count("items", u), 1);
    /* another body, or another route, with the same key: 422, nothing written */
    api_response *c = post(srv.port, u, "items", "k1", "{\"name\":\"other\"}");
    EXPECT(c, 422);
    cr_assert(strstr(c->body, "different request body"), "%s", c->body);
    api_response *d = post(srv.port, u, "twice", "k1", NULL);
    EXPECT(d, 422);
    cr_assert_eq(count("items", u), 1);
    /* keys belong to their user */
    char *v = api_user("idem-other");
    api_response *e = post(srv.port, v, "items", "k1", "{\"name\":\"once\"}");
    EXPECT(e, 201);
    cr_assert(!replayed(e), "%s", e->head);
    cr_assert_eq(count("items", v), 1);
    /* an invalid key is a 422 of the header, before anything runs */
    char longkey[400];
    snprintf(longkey, sizeof longkey, "%0300d", 0);
    api_response *f = post(srv.port, u, "items", longkey, "{\"name\":\"once\"}");
    EXPECT(f, 422);
    cr_assert(strstr(f->body, "\"loc\":[\"header\",\"idempotency-key\"]"), "%s", f->body);
    api_response_free_all(6, (api_response *[]){a, b, c, d, e, f});
    cr_assert_eq(api_stop(&srv), 0);
    free(u), free(v);
}

/* The resource's own UNIQUE constraint (links: one URL per user) fires on the retry's insert
 * before the key's claim can: the retry still replays the first 201, whatever key order the
 * statement met; a replay is not an error in the log. */
Test(idempotency, a_retry_replays_on_a_table_with_its_own_unique_constraint)
{
    api_server srv;
    fw_serve(&srv, NULL);
    char *u = api_user("uniq");
    api_response *a = post(srv.port, u, "links", "L1", "{\"url\":\"https://example.com/a\"}");
    EXPECT(a, 201);
    api_response *b = post(srv.port, u, "links", "L1", "{\"url\":\"https://example.com/a\"}");
    EXPECT(b, 201);
    cr_assert(replayed(b), "%s", b->head);
    cr_assert_str_eq(a->body, b->body);
    char *la = api_header(a, "Location"), *lb = api_header(b, "Location");
    cr_assert(la && lb && !strcmp(la, lb), "%s %s", la, lb);
    free(la), free(lb);
    /* the same key with another URL: bound to its first request */
    api_response *c = post(srv.port, u, "links", "L1", "{\"url\":\"https://example.com/b\"}");
    EXPECT(c, 422);
    cr_assert_eq(count("links", u), 1);
    char *log = api_log(&srv);
    cr_assert(!strstr(log, "\"level\":\"error\""), "%s", log);
    free(log);
    api_response_free_all(3, (api_response *[]){a, b, c});
    cr_assert_eq(api_stop(&srv), 0);
    free(u);
}

typedef struct {
    int port;
    const char *user;
    api_response *r;
} call;

static void *post_k(void *arg)
{
    call *c = arg;
    c->r = post(c->port, c->user, "items", "same-key", "{\"name\":\"raced\"}");
    return NULL;
}

/* The first request holds the key's row until it commits: a retry sent meanwhile waits for it and
 * replays its answer (no 409, no second item). */
Test(idempotency, a_concurrent_retry_waits_and_replays)
{
    api_server srv;
    fw_serve(&srv, NULL);
    char *u = api_user("race");
    /* an uncommitted row of the user's counter holds both requests inside their statement */
    PGconn *lock = pgtest_connect();
    char sql[256];
    snprintf(sql, sizeof sql, "begin; insert into item_counts values ('%s', 0)", u);
    PGresult *r = PQexec(lock, sql);
    cr_assert_eq(PQresultStatus(r), PGRES_COMMAND_OK, "%s", PQerrorMessage(lock));
    PQclear(r);
    call first = {srv.port, u, NULL}, retry = {srv.port, u, NULL};
    pthread_t t1, t2;
    pthread_create(&t1, NULL, post_k, &first);
    usleep(300000);
    pthread_create(&t2, NULL, post_k, &retry);
    usleep(300000);
    r = PQexec(lock, "commit");
    PQclear(r);
    PQfinish(lock);
    pthread_join(t1, NULL);
    pthread_join(t2, NULL);
    EXPECT(first.r, 201);
    EXPECT(retry.r, 201);
    cr_assert_str_eq(first.r->body, retry.r->body);
    cr_assert_eq(replayed(first.r) + replayed(retry.r), 1, "%s\n%s", first.r->head, retry.r->head);
    cr_assert_eq(count("items", u), 1);
    api_response_free(first.r);
    api_response_free(retry.r);
    cr_assert_eq(api_stop(&srv), 0);
    free(u);
}

/* The handler's statement has a WITH clause of its own (the per-user limit: a data-modifying CTE):
 * the framework adds its CTEs to it instead of nesting it. Its answer without a row (409, limit
 * reached) is the request's answer too, and replays as such. A key whose row has no result (an
 * older version's request in progress) is a 409; a response stored by that version replays as is.
 */
Test(idempotency, the_handlers_with_clause_no_rows_and_older_rows)
{
    api_server srv;
    fw_serve(&srv, NULL);
    char *u = api_user("limit");
    for (int i = 0; i < 3; i++) {
        char key[16];
        snprintf(key, sizeof key, "n%d", i);
        api_response *r = post(srv.port, u, "items", key, "{\"name\":\"n\"}");
        EXPECT(r, 201);
        api_response_free(r);
    }
    api_response *full = post(srv.port, u, "items", "n3", "{\"name\":\"n\"}");
    EXPECT(full, 409);
    cr_assert_str_eq(full->body, "{\"detail\":\"Item limit reached\"}");
    api_response *again = post(srv.port, u, "items", "n3", "{\"name\":\"n\"}");
    EXPECT(again, 409); /* the same answer again (Idempotent-Replayed is for successes) */
    cr_assert_str_eq(again->body, full->body);
    cr_assert_eq(count("items", u), 3);
    cr_assert_eq(count("idempotency_keys", u), 4);

    char sql[512];
    snprintf(sql, sizeof sql,
             "insert into idempotency_keys (user_id, key, request_hash) values ('%s', 'old', 'x');"
             "insert into idempotency_keys (user_id, key, request_hash, status, body) "
             "select user_id, 'old-done', request_hash, 201, "
             "'{\"id\":7,\"user_id\":\"' || user_id || '\",\"name\":\"legacy\"}' "
             "from idempotency_keys where user_id = '%s' and key = 'n0'",
             u, u);
    PGconn *c = pgtest_connect();
    PGresult *res = PQexec(c, sql);
    cr_assert_eq(PQresultStatus(res), PGRES_COMMAND_OK, "%s", PQerrorMessage(c));
    PQclear(res);
    PQfinish(c);
    api_response *busy = post(srv.port, u, "items", "old", "{\"name\":\"n\"}");
    EXPECT(busy, 409);
    cr_assert(strstr(busy->body, "in progress"), "%s", busy->body);
    api_response *legacy = post(srv.port, u, "items", "old-done", "{\"name\":\"n\"}");
    EXPECT(legacy, 201);
    cr_assert(strstr(legacy->body, "\"name\":\"legacy\""), "%s", legacy->body);
    char *loc = api_header(legacy, "Location"), want[256];
    snprintf(want, sizeof want, "/api/%s/items/7", u);
    cr_assert(loc && !strcmp(loc, want), "Location %s, expected %s", loc, want);
    free(loc);
    cr_assert(replayed(legacy), "%s", legacy->head);
    api_response_free_all(4, (api_response *[]){full, again, busy, legacy});
    cr_assert_eq(api_stop(&srv), 0);
    free(u);
}

/* One statement per idempotent request: a handler that runs a second one gets a 500 (logged),
 * and nothing of it is kept; without a key the same handler runs normally. */
Test(idempotency, a_second_statement_is_refused)
{
    api_server srv;
    fw_serve(&srv, NULL);
    char *u = api_user("twice");
    api_response *r = post(srv.port, u, "twice", "t1", NULL);
    EXPECT(r, 500);
    api_response_free(r);
    cr_assert_eq(count("idempotency_keys", u), 1); /* the first statement and its key */
    r = post(srv.port, u, "twice", NULL, NULL);
    EXPECT(r, 200);
    api_response_free(r);
    char *log = api_log(&srv);
    cr_assert(strstr(log, "second statement"), "%s", log);
    free(log);
    cr_assert_eq(api_stop(&srv), 0);
    free(u);
}

/* Keys expire after IDEMPOTENCY_KEY_TTL: a background job deletes them, and the key is free again.
 */
Test(idempotency, expired_keys_are_deleted_in_the_background)
{
    api_server srv;
    /* the second POST must come within the TTL: longer on a loaded machine (the run's slack) */
    int ttl = 1 + (int)(pgtest_slack_ms() / 1000);
    char env[48];
    snprintf(env, sizeof env, "IDEMPOTENCY_KEY_TTL=%d", ttl);
    fw_serve(&srv, env);
    char *u = api_user("ttl");
    api_response *a = post(srv.port, u, "items", "k1", "{\"name\":\"first\"}");
    EXPECT(a, 201);
    api_response *b = post(srv.port, u, "items", "k1", "{\"name\":\"other\"}");
    EXPECT(b, 422); /* within the TTL the key is bound to its first body */
    double t0 = pgtest_now_ms();
    while (count("idempotency_keys", u) > 0) {
        cr_assert_lt(pgtest_now_ms() - t0, 4000.0 * ttl + 4000 + pgtest_slack_ms(),
                     "the expired key was never deleted");
        usleep(100000);
    }
    char *log = api_log(&srv);
    cr_assert(strstr(log, "expire-idempotency-keys") && strstr(log, "deleted"), "%s", log);
    free(log);
    api_response *c = post(srv.port, u, "items", "k1", "{\"name\":\"other\"}");
    EXPECT(c, 201);
    cr_assert(!replayed(c), "%s", c->head);
    cr_assert(strstr(c->body, "\"name\":\"other\""), "%s", c->body);
    api_response_free(a), api_response_free(b), api_response_free(c);
    cr_assert_eq(api_stop(&srv), 0);
    free(u);
}

/* A key past its TTL that the job has not deleted yet is claimed afresh, not replayed. */
Test(idempotency, a_key_past_its_ttl_is_claimed_afresh)
{
    api_server srv;
    fw_serve(&srv, "IDEMPOTENCY_KEY_TTL=3600"); /* the job does not run during the test */
    char *u = api_user("stale");
    api_response *a = post(srv.port, u, "items", "k2", "{\"name\":\"first\"}");
    EXPECT(a, 201);
    char sql[256];
    snprintf(sql, sizeof sql,
             "update idempotency_keys set created_at = now() - interval '2 hours' "
             "where user_id = '%s'",
             u);
    PGconn *c = pgtest_connect();
    free(pgtest_query(c, sql));
    PQfinish(c);
    api_response *again = post(srv.port, u, "items", "k2", "{\"name\":\"first\"}");
    EXPECT(again, 201);
    cr_assert(!replayed(again), "a stale key replayed: %s", again->head);
    cr_assert(strcmp(again->body, a->body) != 0, "the same item came back: %s", again->body);
    api_response *other = post(srv.port, u, "items", "k2", "{\"name\":\"changed\"}");
    EXPECT(other, 422); /* bound to its new request from now on */
    cr_assert_eq(count("items", u), 2);
    api_response_free(a), api_response_free(again), api_response_free(other);
    cr_assert_eq(api_stop(&srv), 0);
    free(u);
}

/* ---- round trips, counted by the fault proxy (tests/tools/faultproxy.c) ---- */

/* Zeroes the proxy's counters (asserting it said ok). */
static void proxy_zero(const fproxy *p)
{
    const char *a = fproxy_cmd(p, "zero");
    cr_assert(!strncmp(a, "ok", 2), "faultproxy zero: %s", a);
}

/* Database round trips of one POST to items as a fresh user (key NULL: without one; replay: the
 * key's second POST, measured after its first). A measurement during which the API opened a
 * connection (the proxy accepted one) is taken again as another user, up to 3 times: which lane
 * gives its connection back first is a race between coroutines (a replay's read may need a
 * second connection while the claim's write lane still holds the first), so warming up each kind
 * once does not open every connection it can need. */
static long warm_turns(const fproxy *p, int port, const char *key, bool replay)
{
    for (int attempt = 0; attempt < 3; attempt++) {
        char name[32];
        snprintf(name, sizeof name, "trips-%s-%d",
                 !key     ? "plain"
                 : replay ? "replay"
                          : "keyed",
                 attempt);
        char *u = api_user(name);
        api_response *r;
        if (replay) {
            r = post(port, u, "items", key, "{\"name\":\"keyed\"}");
            EXPECT(r, 201);
            api_response_free(r);
        }
        proxy_zero(p);
        r = post(port, u, "items", key, "{\"name\":\"keyed\"}");
        EXPECT(r, 201);
        if (replay)
            cr_assert(replayed(r), "%s", r->head);
        api_response_free(r);
        free(u);
        if (fproxy_stat(p, "accepted") == 0)
            return fproxy_stat(p, "turns");
    }
    cr_assert_fail("each of 3 measurements opened a database connection");
    return -1;
}

/* The warm first POST with a key is one database round trip, like the POST without one (the claim,
 * the insert and the stored result are one statement); a replay is two (the statement that finds
 * the key taken, then the stored result). */
Test(idempotency, a_warm_idempotent_post_is_one_round_trip)
{
    fproxy p;
    char *app = pgtest_app_url();
    fproxy_start(&p, app);
    char *url = fproxy_url(&p, app);
    fw_prepare();
    api_server srv;
    api_start_bin(&srv, "framework-api", url, "DB_PREPING_AFTER=600");
    api_wait_startup(&srv); /* its query would count in the round trips below */
    /* warm: each kind of request below once, so the connections each needs are open */
    char *w = api_user("trips-warm"); /* another user: the resource allows each only a few items */
    api_response *r = post(srv.port, w, "items", NULL, "{\"name\":\"warm-up\"}");
    EXPECT(r, 201);
    api_response_free(r);
    for (int i = 0; i < 2; i++) { /* a keyed POST, then its replay */
        r = post(srv.port, w, "items", "warm-key", "{\"name\":\"warm-up\"}");
        EXPECT(r, 201);
        api_response_free(r);
    }
    free(w);

    long plain = warm_turns(&p, srv.port, NULL, false);
    long keyed = warm_turns(&p, srv.port, "trip-key", false);
    long replay = warm_turns(&p, srv.port, "trip-key", true);
    cr_assert_eq(plain, 1, "a warm POST without a key took %ld round trips", plain);
    cr_assert_eq(keyed, 1, "a warm POST with an Idempotency-Key took %ld round trips", keyed);
    cr_assert_eq(replay, 2, "a replay took %ld round trips", replay);
    cr_assert_eq(api_stop(&srv), 0);
    fproxy_stop(&p);
    free(url), free(app);
}

/* The pieces without a server: the WITH list's end, and PostgreSQL's composite text form. */
Test(idempotency, with_clause_and_composite_text)
{
    cr_assert_eq(idempotency_with_end("insert into t values ($1) returning id"), 0);
    const char *sql = " WITH a AS (select ')' as \"x)\"), b (c) as not materialized "
                      "(select $$ ( $$ /* ) */) insert into t select 1 returning 1";
    long end = idempotency_with_end(sql);
    cr_assert_str_eq(sql + end, "insert into t select 1 returning 1");
    cr_assert_eq(idempotency_with_end("with a as (select 1"), -1);
    /* unbalanced up to a comment or spaces at the end: no read past the string */
    cr_assert_eq(idempotency_with_end("with a as (select 1 -- )"), -1);
    cr_assert_eq(idempotency_with_end("with a as (select 1 "), -1);
    char *v[8];
    int n = idempotency_parse_row("(1,\"a b\",,\"\",\"say \"\"hi\"\" \\\\o/\",t)", v, 8);
    cr_assert_eq(n, 6);
    cr_assert_str_eq(v[0], "1");
    cr_assert_str_eq(v[1], "a b");
    cr_assert_null(v[2]);
    cr_assert_str_eq(v[3], "");
    cr_assert_str_eq(v[4], "say \"hi\" \\o/");
    cr_assert_str_eq(v[5], "t");
    for (int i = 0; i < n; i++)
        free(v[i]);
    cr_assert_eq(idempotency_parse_row("(1,2", v, 8), -1);
    cr_assert_eq(idempotency_parse_row("(1,2)x", v, 8), -1);
}
