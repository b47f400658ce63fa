/* Tokens of an identity provider (Better Auth's JWT plugin, Clerk, Auth0): real Ed25519, P-256
 * and RSA-2048 keys generated here with OpenSSL, their JWKS served by a small HTTP server in this
 * test (a thread, counting fetches; it can refuse connections, answer garbage or 50 MB), the real
 * API verifying tokens over real HTTP. Every attack the issue lists is a 401. The API is the
 * framework's own server (framework-api, tests/app/framework/routes.c: its "items" resource), so
 * these tests do not depend on the Todo example and survive scripts/remove-example. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <jansson.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "tests/app/apiclient.h"
#include "tests/app/framework/fw.h"
#include "tests/app/jwktest.h"
#include "tests/support/pgtest.h"

#define ISSUER "http://localhost:3000"

/* ---- the JWKS server ---- */

enum { SERVE_BODY, SERVE_HUGE, SERVE_SLOW /* the body once J.release is set (20 s at most) */ };

static struct {
    int fd, port;
    pthread_t thread;
    atomic_int stop, listening, fetches;
    atomic_int release, released_by_fallback; /* SERVE_SLOW's gate */
    pthread_mutex_t mu;
    char *body; /* what GET answers (SERVE_BODY) */
    int mode;
} J = {.mu = PTHREAD_MUTEX_INITIALIZER};

static void serve_one(int c)
{
    char req[4096];
    size_t n = 0;
    struct pollfd p = {.fd = c, .events = POLLIN};
    while (n < sizeof req - 1 && !memmem(req, n, "\r\n\r\n", 4) && poll(&p, 1, 2000) == 1) {
        ssize_t r = read(c, req + n, sizeof req - 1 - n);
        if (r <= 0)
            break;
        n += (size_t)r;
    }
    atomic_fetch_add(&J.fetches, 1);
    pthread_mutex_lock(&J.mu);
    int mode = J.mode;
    char *body = strdup(J.body ? J.body : "");
    pthread_mutex_unlock(&J.mu);
    char head[256];
    if (mode == SERVE_SLOW) { /* held until the test releases it: ordering, not a 2 s guess */
        for (int i = 0; i < 2000 && !atomic_load(&J.release); i++)
            usleep(10000);
        if (!atomic_exchange(&J.release, 1))
            atomic_store(&J.released_by_fallback, 1);
    }
    if (mode == SERVE_HUGE) { /* 50 MB: the api must stop reading at its cap */
        size_t total = 50u << 20, sent = 0;
        int h = snprintf(head, sizeof head,
                         "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                         "Connection: close\r\n\r\n");
        send(c, head, (size_t)h, MSG_NOSIGNAL);
        static char chunk[65536];
        memset(chunk, ' ', sizeof chunk);
        chunk[0] = '{';
        while (sent < total) {
            ssize_t w = send(c, chunk, sizeof chunk, MSG_NOSIGNAL);
            if (w <= 0)
                break;
            sent += (size_t)w;
        }
    } else {
        int h = snprintf(head, sizeof head,
                         "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                         "Content-Length: %zu\r\nConnection: close\r\n\r\n",
                         strlen(body));
        send(c, head, (size_t)h, MSG_NOSIGNAL);
        send(c, body, strlen(body), MSG_NOSIGNAL);
    }
    free(body);
    close(c);
}

static void *jwks_thread(void *arg)
{
    (void)arg;
    while (!atomic_load(&J.stop)) {
        if (!atomic_load(&J.listening)) {
            usleep(10000);
            continue;
        }
        struct pollfd p = {.fd = J.fd, .events = POLLIN};
        if (poll(&p, 1, 50) == 1) {
            int c = accept(J.fd, NULL, NULL);
            if (c >= 0)
                serve_one(c);
        }
    }
    return NULL;
}

/* Binds a port; `up` false: connections are refused until jwks_listen(). */
static void jwks_serve(bool up)
{
    J.fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    cr_assert(bind(J.fd, (struct sockaddr *)&a, sizeof a) == 0);
    cr_assert(getsockname(J.fd, (struct sockaddr *)&a, &len) == 0);
    J.port = ntohs(a.sin_port);
    atomic_store(&J.fetches, 0);
    atomic_store(&J.stop, 0);
    atomic_store(&J.release, 0);
    atomic_store(&J.released_by_fallback, 0);
    if (up) {
        cr_assert(listen(J.fd, 64) == 0);
        atomic_store(&J.listening, 1);
    }
    cr_assert(pthread_create(&J.thread, NULL, jwks_thread, NULL) == 0);
}

static void jwks_listen(void)
{
    cr_assert(listen(J.fd, 64) == 0);
    atomic_store(&J.listening, 1);
}

static void jwks_set_body(const char *body, int mode)
{
    pthread_mutex_lock(&J.mu);
    free(J.body);
    J.body = strdup(body);
    J.mode = mode;
    pthread_mutex_unlock(&J.mu);
}

static void jwks_shutdown(void)
{
    atomic_store(&J.stop, 1);
    pthread_join(J.thread, NULL);
    close(J.fd);
    atomic_store(&J.listening, 0);
}

static json_t *claims_for(const char *sub)
{
    long now = (long)time(NULL);
    return json_pack("{sssssIsIssss}", "sub", sub, "email", "a@example.com", "iat", (json_int_t)now,
                     "exp", (json_int_t)now + 900, "iss", ISSUER, "aud", ISSUER);
}

/* header.payload.signature. k signs EdDSA/ES256/RS256/PS256; hkey (hlen bytes) signs HS256;
 * alg "none": empty signature. kid may be NULL. claims are stolen. */
static EVP_PKEY *ed1, *ed2, *ec, *rsa, *stranger;

static void keys(void)
{
    ed1 = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    ed2 = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    stranger = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    ec = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    cr_assert(ed1 && ed2 && stranger && ec && rsa);
}

/* ---- the api ---- */

static api_server srv;

static void up(void)
{
    fw_prepare();
    keys();
}

static void down(void)
{
    if (srv.pid > 0)
        cr_expect_eq(api_stop(&srv), 0, "api did not exit 0");
    jwks_shutdown();
}

TestSuite(jwks, .init = up, .fini = down, .timeout = 120);

/* Starts the api with AUTH_JWKS_URL pointing at the test's server, and `extra` settings. */
static void start_api(const char *extra)
{
    char env[1024];
    snprintf(env, sizeof env, "AUTH_JWKS_URL=http://127.0.0.1:%d/api/auth/jwks %s", J.port,
             extra ? extra : "");
    char *app = pgtest_app_url();
    api_start_bin(&srv, "framework-api", app, env);
    free(app);
}

static api_response *call(const char *token, const char *method, const char *path, const char *body)
{
    char hdr[9000];
    snprintf(hdr, sizeof hdr, "Authorization: Bearer %s\r\n", token);
    return api_call(srv.port, method, path, hdr, body);
}

/* GET /api/{user}/items with the token; frees it. Returns the status. */
static int status_of(char *token, const char *user)
{
    char path[512];
    snprintf(path, sizeof path, "/api/%s/items", user);
    api_response *r = call(token, "GET", path, NULL);
    int st = r->status;
    api_response_free(r);
    free(token);
    return st;
}

/* Polls until the token gets `want` (the first fetch runs in the background), `ms` plus this run's
 * slack at most (a wait, not a measure of speed). */
static void await_status(EVP_PKEY *k, const char *alg, const char *kid, const char *user, int want,
                         double ms)
{
    ms += pgtest_slack_ms();
    double t0 = pgtest_now_ms();
    int st = 0;
    while (pgtest_now_ms() - t0 < ms) {
        st = status_of(jwktest_sign(alg, k, NULL, 0, kid, claims_for(user)), user);
        if (st == want)
            return;
        usleep(50000);
    }
    char *log = api_log(&srv);
    cr_assert_fail("wanted %d, got %d: %s", want, st, log);
}

static long metric(const char *name)
{
    api_response *r = api_call(srv.port, "GET", "/metrics", TEST_METRICS_AUTH, NULL);
    cr_assert_eq(r->status, 200);
    char *p = strstr(r->body, name);
    while (p && p > r->body && p[-1] != '\n')
        p = strstr(p + 1, name);
    cr_assert(p, "%s not in /metrics", name);
    long v = atol(p + strlen(name) + 1);
    api_response_free(r);
    return v;
}

Test(jwks, every_algorithm_and_every_attack)
{
    jwks_serve(true);
    char *doc = jwktest_jwks(jwktest_jwk(ed1, "ed-1", "EdDSA"), jwktest_jwk(ec, "ec-1", "ES256"),
                             jwktest_jwk(rsa, "rsa-1", NULL), NULL);
    jwks_set_body(doc, SERVE_BODY);
    start_api("JWT_SECRET= AUTH_ISSUER=" ISSUER " AUTH_AUDIENCE=" ISSUER);
    char *u = api_user("jwks");
    await_status(ed1, "EdDSA", "ed-1", u, 200, 5000);
    long now = (long)time(NULL);

    /* valid, one per algorithm, twice (the second from the verified-token cache) */
    for (int round = 0; round < 2; round++) {
        cr_expect_eq(status_of(jwktest_sign("ES256", ec, NULL, 0, "ec-1", claims_for(u)), u), 200);
        cr_expect_eq(status_of(jwktest_sign("RS256", rsa, NULL, 0, "rsa-1", claims_for(u)), u),
                     200);
        cr_expect_eq(status_of(jwktest_sign("PS256", rsa, NULL, 0, "rsa-1", claims_for(u)), u),
                     200);
    }
    /* without kid: the only key that fits EdDSA */
    cr_expect_eq(status_of(jwktest_sign("EdDSA", ed1, NULL, 0, NULL, claims_for(u)), u), 200);
    /* aud as an array that contains ours */
    json_t *c = claims_for(u);
    json_object_set_new(c, "aud", json_pack("[ss]", "https://other.example", ISSUER));
    cr_expect_eq(status_of(jwktest_sign("EdDSA", ed1, NULL, 0, "ed-1", c), u), 200);
    /* a real user's token for another user's path: 403 as with HS256 */
    cr_expect_eq(status_of(jwktest_sign("EdDSA", ed1, NULL, 0, "ed-1", claims_for(u)), "someone"),
                 403);

    /* attacks and mistakes: 401 */
    typedef struct {
        const char *what;
        char *token;
    } bad_token;
    bad_token bad[20];
    int n = 0;
#define BAD(w, t) bad[n++] = (bad_token){w, t}
    BAD("kid that names no key", jwktest_sign("EdDSA", ed1, NULL, 0, "no-such-kid", claims_for(u)));
    BAD("kid of another key type", jwktest_sign("EdDSA", ed1, NULL, 0, "ec-1", claims_for(u)));
    BAD("EdDSA by a key not in the set",
        jwktest_sign("EdDSA", stranger, NULL, 0, "ed-1", claims_for(u)));
    c = claims_for(u);
    json_object_set_new(c, "exp", json_integer(now - 60));
    BAD("expired", jwktest_sign("EdDSA", ed1, NULL, 0, "ed-1", c));
    c = claims_for(u);
    json_object_del(c, "exp");
    BAD("no exp", jwktest_sign("EdDSA", ed1, NULL, 0, "ed-1", c));
    c = claims_for(u);
    json_object_set_new(c, "nbf", json_integer(now + 120));
    BAD("nbf in the future", jwktest_sign("EdDSA", ed1, NULL, 0, "ed-1", c));
    c = claims_for(u);
    json_object_set_new(c, "iat", json_integer(now + 120));
    BAD("iat in the future", jwktest_sign("EdDSA", ed1, NULL, 0, "ed-1", c));
    c = claims_for(u);
    json_object_set_new(c, "iss", json_string("https://evil.example"));
    BAD("wrong iss", jwktest_sign("EdDSA", ed1, NULL, 0, "ed-1", c));
    c = claims_for(u);
    json_object_set_new(c, "aud", json_string("https://evil.example"));
    BAD("wrong aud (string)", jwktest_sign("EdDSA", ed1, NULL, 0, "ed-1", c));
    c = claims_for(u);
    json_object_set_new(c, "aud", json_pack("[ss]", "https://evil.example", "x"));
    BAD("wrong aud (array)", jwktest_sign("EdDSA", ed1, NULL, 0, "ed-1", c));
    c = claims_for(u);
    json_object_set_new(c, "sub", json_integer(42));
    BAD("sub not a string", jwktest_sign("EdDSA", ed1, NULL, 0, "ed-1", c));
    BAD("alg none", jwktest_sign("none", NULL, NULL, 0, "ed-1", claims_for(u)));
    BAD("alg none without kid", jwktest_sign("none", NULL, NULL, 0, NULL, claims_for(u)));
    /* algorithm confusion: HS256 keyed with what an attacker knows, the public JWK / PEM */
    json_t *pubj = jwktest_jwk(rsa, "rsa-1", NULL);
    char *pub = json_dumps(pubj, JSON_COMPACT);
    json_decref(pubj);
    BAD("HS256 with the public JWK",
        jwktest_sign("HS256", NULL, pub, strlen(pub), "rsa-1", claims_for(u)));
    unsigned char raw[32];
    size_t rawlen = sizeof raw;
    EVP_PKEY_get_raw_public_key(ed1, raw, &rawlen);
    BAD("HS256 with the raw Ed25519 key",
        jwktest_sign("HS256", NULL, raw, rawlen, "ed-1", claims_for(u)));
    BAD("RS256 claimed by the EC key", jwktest_sign("RS256", rsa, NULL, 0, "ec-1", claims_for(u)));
    BAD("ES256 with an RSA key's kid", jwktest_sign("ES256", ec, NULL, 0, "rsa-1", claims_for(u)));
    for (int i = 0; i < n; i++) {
        char path[512];
        snprintf(path, sizeof path, "/api/%s/items", u);
        api_response *r = call(bad[i].token, "GET", path, NULL);
        cr_expect_eq(r->status, 401, "%s: %d %s", bad[i].what, r->status, r->body);
        char *www = api_header(r, "WWW-Authenticate");
        cr_expect(www && !strcmp(www, "Bearer"), "%s", bad[i].what);
        free(www);
        api_response_free(r);
        free(bad[i].token);
    }
    free(pub);
    cr_expect_eq(metric("auth_jwks_keys"), 3);
    cr_expect_eq(metric("auth_jwks_fetch_failures_total"), 0);
    free(u);
    free(doc);
}

/* Rotation: an unknown kid makes the api fetch at once (the request waits for it); the removed
 * key's tokens stop, even the cached one; a failed refresh keeps the last good set; a flood of
 * made-up kids costs at most one fetch per AUTH_JWKS_MIN_REFRESH. */
Test(jwks, rotation_removal_failure_and_flood)
{
    jwks_serve(true);
    char *doc1 = jwktest_jwks(jwktest_jwk(ed1, "ed-1", "EdDSA"), NULL);
    jwks_set_body(doc1, SERVE_BODY);
    start_api("AUTH_JWKS_MIN_REFRESH=1 AUTH_JWKS_CACHE_TTL=3600");
    char *u = api_user("rot");
    await_status(ed1, "EdDSA", "ed-1", u, 200, 5000);
    char *old = jwktest_sign("EdDSA", ed1, NULL, 0, "ed-1", claims_for(u));
    cr_expect_eq(status_of(strdup(old), u), 200);
    cr_expect_eq(status_of(strdup(old), u), 200); /* now in the verified-token cache */
    int before = atomic_load(&J.fetches);

    /* the auth server rotated: ed-1 gone, ed-2 new */
    char *doc2 = jwktest_jwks(jwktest_jwk(ed2, "ed-2", "EdDSA"), NULL);
    jwks_set_body(doc2, SERVE_BODY);
    usleep(1100000); /* past the rate limit */
    cr_expect_eq(status_of(jwktest_sign("EdDSA", ed2, NULL, 0, "ed-2", claims_for(u)), u), 200,
                 "the first token of the new key is accepted");
    cr_expect_eq(atomic_load(&J.fetches), before + 1);
    cr_expect_eq(status_of(strdup(old), u), 401, "the removed key's cached token is refused");

    /* a failed refresh keeps the last good set */
    jwks_set_body("<html>502 Bad Gateway</html>", SERVE_BODY);
    usleep(1100000);
    cr_expect_eq(status_of(jwktest_sign("EdDSA", ed2, NULL, 0, "ed-9", claims_for(u)), u), 401);
    /* at least one: the retry after the failure's 1 s backoff may have counted a second by now */
    cr_expect_geq(metric("auth_jwks_fetch_failures_total"), 1);
    cr_expect_eq(status_of(jwktest_sign("EdDSA", ed2, NULL, 0, "ed-2", claims_for(u)), u), 200);
    cr_expect_eq(metric("auth_jwks_keys"), 1);

    /* 1,000 tokens with random kids */
    jwks_set_body(doc2, SERVE_BODY);
    usleep(2200000); /* after the retry the failure scheduled, so the flood's first kid may fetch */
    int f0 = atomic_load(&J.fetches);
    double t0 = pgtest_now_ms();
    for (int i = 0; i < 1000; i++) {
        unsigned char rnd[12];
        RAND_bytes(rnd, sizeof rnd);
        char *kid = jwktest_b64url(rnd, sizeof rnd);
        cr_assert_eq(status_of(jwktest_sign("EdDSA", ed2, NULL, 0, kid, claims_for(u)), u), 401);
        free(kid);
    }
    double secs = (pgtest_now_ms() - t0) / 1000;
    int fetched = atomic_load(&J.fetches) - f0;
    cr_expect(fetched >= 1 && fetched <= (int)secs + 2, "%d fetches in %.1f s for 1000 random kids",
              fetched, secs);
    cr_expect_eq(metric("auth_jwks_fetches_total"), atomic_load(&J.fetches));
    fprintf(stderr, "1000 random kids: %d JWKS fetches in %.1f s\n", fetched, secs);
    free(old), free(doc1), free(doc2), free(u);
}

/* The auth server is down when the api starts: the api starts anyway, answers 503 + Retry-After
 * to tokens it cannot judge (401 still for no token), then 200 once the JWKS is up. */
Test(jwks, down_at_startup)
{
    jwks_serve(false);
    char *doc = jwktest_jwks(jwktest_jwk(ed1, "ed-1", NULL), NULL);
    jwks_set_body(doc, SERVE_BODY);
    start_api("AUTH_JWKS_MIN_REFRESH=0.5");
    char *u = api_user("down");
    char path[512];
    snprintf(path, sizeof path, "/api/%s/items", u);
    char *tok = jwktest_sign("EdDSA", ed1, NULL, 0, "ed-1", claims_for(u));
    api_response *r = call(tok, "GET", path, NULL);
    cr_expect_eq(r->status, 503, "%s", r->body);
    char *ra = api_header(r, "Retry-After");
    cr_expect(ra && atoi(ra) >= 1, "Retry-After: %s", ra ? ra : "(none)");
    free(ra);
    api_response_free(r);
    r = api_call(srv.port, "GET", path, NULL, NULL);
    cr_expect_eq(r->status, 401);
    api_response_free(r);
    /* HS256 still works meanwhile */
    r = api_as(srv.port, u, "GET", path, NULL);
    cr_expect_eq(r->status, 200);
    api_response_free(r);
    cr_expect_eq(metric("auth_jwks_keys"), 0);
    cr_expect_geq(metric("auth_jwks_fetch_failures_total"), 1);
    jwks_listen();
    await_status(ed1, "EdDSA", "ed-1", u, 200, 8000);
    free(tok), free(doc), free(u);
}

/* Garbage and a 50 MB body are refused (the api stays up, 503 while it has no keys); then a good
 * JWKS is taken. */
Test(jwks, garbage_and_huge_bodies)
{
    jwks_serve(true);
    jwks_set_body("{\"keys\": not json", SERVE_BODY);
    start_api("AUTH_JWKS_MIN_REFRESH=0.5");
    char *u = api_user("garbage");
    double t0 = pgtest_now_ms();
    while (metric("auth_jwks_fetch_failures_total") < 1 &&
           pgtest_now_ms() - t0 < 5000 + pgtest_slack_ms())
        usleep(50000);
    cr_expect_eq(status_of(jwktest_sign("EdDSA", ed1, NULL, 0, "ed-1", claims_for(u)), u), 503);
    jwks_set_body("", SERVE_HUGE);
    long failures = metric("auth_jwks_fetch_failures_total");
    t0 = pgtest_now_ms();
    while (metric("auth_jwks_fetch_failures_total") <= failures &&
           pgtest_now_ms() - t0 < 8000 + pgtest_slack_ms()) {
        /* a token the api cannot judge also asks for a fetch (rate limited) */
        cr_expect_eq(status_of(jwktest_sign("EdDSA", ed1, NULL, 0, "ed-1", claims_for(u)), u), 503);
        usleep(50000);
    }
    cr_expect_gt(metric("auth_jwks_fetch_failures_total"), failures);
    char *log = api_log(&srv);
    cr_expect(strstr(log, "body larger than 1048576 bytes"), "%s", log);
    cr_expect(strstr(log, "not JSON"), "%s", log);
    free(log);
    cr_expect_eq(status_of(jwktest_sign("EdDSA", ed1, NULL, 0, "ed-1", claims_for(u)), u), 503);
    char *doc = jwktest_jwks(jwktest_jwk(ed1, "ed-1", NULL), NULL);
    jwks_set_body(doc, SERVE_BODY);
    await_status(ed1, "EdDSA", "ed-1", u, 200, 8000);
    free(doc), free(u);
}

/* Both modes at once: HS256 (JWT_SECRET) and the JWKS; a JWKS-only api refuses HS256 tokens even
 * when they are signed with what would be a secret. */
Test(jwks, both_modes_and_jwks_only)
{
    jwks_serve(true);
    char *doc = jwktest_jwks(jwktest_jwk(ed1, "ed-1", NULL), jwktest_jwk(ec, "ec-1", NULL), NULL);
    jwks_set_body(doc, SERVE_BODY);
    start_api(NULL); /* api_start_bin sets JWT_SECRET */
    char *u = api_user("both");
    char path[512];
    snprintf(path, sizeof path, "/api/%s/items", u);
    await_status(ec, "ES256", "ec-1", u, 200, 5000);
    api_response *r = api_as(srv.port, u, "GET", path, NULL);
    cr_expect_eq(r->status, 200, "HS256 beside the JWKS");
    api_response_free(r);
    /* with a secret configured, the public key as HMAC secret is still no key */
    json_t *pubj = jwktest_jwk(ec, "ec-1", NULL);
    char *pub = json_dumps(pubj, JSON_COMPACT);
    json_decref(pubj);
    cr_expect_eq(status_of(jwktest_sign("HS256", NULL, pub, strlen(pub), "ec-1", claims_for(u)), u),
                 401);
    free(pub);
    cr_expect_eq(api_stop(&srv), 0);

    start_api("JWT_SECRET=");
    await_status(ed1, "EdDSA", "ed-1", u, 200, 5000);
    r = api_as(srv.port, u, "GET", path, NULL);
    cr_expect_eq(r->status, 401, "HS256 without JWT_SECRET");
    api_response_free(r);
    free(doc), free(u);
}

/* HS256 alone (no AUTH_JWKS_URL): as before, and EdDSA tokens are refused, not 503. */
Test(jwks, hs256_alone)
{
    jwks_serve(true);
    char *app = pgtest_app_url();
    api_start_bin(&srv, "framework-api", app, NULL);
    free(app);
    char *u = api_user("hs");
    char path[512];
    snprintf(path, sizeof path, "/api/%s/items", u);
    api_response *r = api_as(srv.port, u, "GET", path, NULL);
    cr_expect_eq(r->status, 200);
    api_response_free(r);
    cr_expect_eq(status_of(jwktest_sign("EdDSA", ed1, NULL, 0, "ed-1", claims_for(u)), u), 401);
    r = api_call(srv.port, "GET", "/metrics", TEST_METRICS_AUTH, NULL);
    cr_expect_null(strstr(r->body, "auth_jwks_"), "no JWKS metrics without a JWKS");
    api_response_free(r);
    free(u);
}

/* A Better Auth-shaped full cycle with an EdDSA token: create, list, read, delete. */
Test(jwks, crud_with_an_eddsa_token)
{
    jwks_serve(true);
    char *doc = jwktest_jwks(jwktest_jwk(ed1, "ed-1", "EdDSA"), NULL);
    jwks_set_body(doc, SERVE_BODY);
    start_api("JWT_SECRET= AUTH_ISSUER=" ISSUER " AUTH_AUDIENCE=" ISSUER);
    char *u = api_user("crud");
    await_status(ed1, "EdDSA", "ed-1", u, 200, 5000);
    char *tok = jwktest_sign("EdDSA", ed1, NULL, 0, "ed-1", claims_for(u));
    char path[512];
    snprintf(path, sizeof path, "/api/%s/items", u);
    api_response *r = call(tok, "POST", path, "{\"name\":\"from Better Auth\"}");
    cr_assert_eq(r->status, 201, "%s", r->body);
    json_t *t = json_loads(r->body, 0, NULL);
    long id = (long)json_integer_value(json_object_get(t, "id"));
    json_decref(t);
    api_response_free(r);
    r = call(tok, "GET", path, NULL);
    cr_expect_eq(r->status, 200);
    cr_expect(strstr(r->body, "from Better Auth"), "%s", r->body);
    api_response_free(r);
    char one[600];
    snprintf(one, sizeof one, "%s/%ld", path, id);
    r = call(tok, "GET", one, NULL);
    cr_expect_eq(r->status, 200, "%s", r->body);
    cr_expect(strstr(r->body, "from Better Auth"), "%s", r->body);
    api_response_free(r);
    r = call(tok, "DELETE", one, NULL);
    cr_expect_eq(r->status, 204, "%d %s", r->status, r->body);
    api_response_free(r);
    free(tok), free(doc), free(u);
}

/* A slow auth server and a burst of made-up kids: at most 16 requests wait for the one fetch, the
 * others are answered 401 at once, so the burst cannot hold every handler. */
enum { BURST = 40, BURST_MAY_WAIT = 16 };

typedef struct {
    char *token, *user;
    int status;
    bool before_release; /* answered while the slow fetch was still held */
} burst_call;

static atomic_int burst_answered;

/* The slow fetch is released once all but BURST_MAY_WAIT calls were answered: had they waited
 * for it, it is released by the server's 20 s fallback instead, and fewer are quick. */
static void *burst_one(void *arg)
{
    burst_call *b = arg;
    b->status = status_of(b->token, b->user);
    b->before_release = !atomic_load(&J.release);
    if (atomic_fetch_add(&burst_answered, 1) + 1 >= BURST - BURST_MAY_WAIT)
        atomic_store(&J.release, 1);
    return NULL;
}

Test(jwks, slow_auth_server_holds_few_requests)
{
    jwks_serve(true);
    char *doc = jwktest_jwks(jwktest_jwk(ed1, "ed-1", NULL), NULL);
    jwks_set_body(doc, SERVE_BODY);
    /* the fetch's timeout outlasts the slow server's fallback (20 s) */
    start_api("AUTH_JWKS_MIN_REFRESH=0.5 WORKERS=64 AUTH_JWKS_TIMEOUT=30");
    char *u = api_user("slow");
    await_status(ed1, "EdDSA", "ed-1", u, 200, 5000);
    jwks_set_body(doc, SERVE_SLOW);
    usleep(600000);
    enum { N = BURST };
    atomic_store(&burst_answered, 0);
    burst_call calls[N];
    pthread_t th[N];
    for (int i = 0; i < N; i++) {
        unsigned char rnd[12];
        RAND_bytes(rnd, sizeof rnd);
        char *kid = jwktest_b64url(rnd, sizeof rnd);
        calls[i] = (burst_call){jwktest_sign("EdDSA", ed1, NULL, 0, kid, claims_for(u)), u, 0, 0};
        free(kid);
    }
    for (int i = 0; i < N; i++)
        cr_assert(pthread_create(&th[i], NULL, burst_one, &calls[i]) == 0);
    int quick = 0;
    for (int i = 0; i < N; i++) {
        pthread_join(th[i], NULL);
        cr_expect_eq(calls[i].status, 401, "call %d", i);
        quick += calls[i].before_release;
    }
    cr_expect_geq(quick, N - BURST_MAY_WAIT, "%d of %d answered without waiting for the slow fetch",
                  quick, N);
    cr_expect(!atomic_load(&J.released_by_fallback), "the burst waited for the slow fetch");
    free(doc), free(u);
}
