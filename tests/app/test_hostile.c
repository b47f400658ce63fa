/* A hostile client against the real `api` binary over raw sockets: the HTTP layer's rules
 * (docs/security.md lists each with its RFC section). Every exchange is bounded in time: a
 * server that hangs fails the test instead of stalling the suite. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <jansson.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "tests/app/apiclient.h"
#include "tests/support/pgtest.h"

static api_server srv;

/* The server under test: HOSTILE_BIN=api-old (a copy of main's build in bin/) shows which cases
 * fail on it. */
static const char *hostile_bin(void)
{
    const char *bin = getenv("HOSTILE_BIN");
    return bin && *bin ? bin : "api";
}

/* A server of the binary under test on the suite's database, with `env` ("NAME=value ..."). */
static void start(api_server *s, const char *env)
{
    char *app = pgtest_app_url();
    api_start_bin(s, hostile_bin(), app, env);
    free(app);
}

static void up(void)
{
    char *url = pgtest_url();
    api_migrate(url);
    free(url);
    start(&srv, "MAX_BODY_BYTES=4096 READ_TIMEOUT=30");
}

static void down(void)
{
    cr_assert_eq(api_stop(&srv), 0, "api did not exit 0");
}

TestSuite(hostile, .init = up, .fini = down, .timeout = 120);

typedef struct raw_reply {
    char *text; /* everything received, NUL-terminated */
    size_t len;
    bool closed; /* the server closed the connection before the deadline */
    int status;  /* of the first response, 0 if none */
} raw_reply;

static int dial_port(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert(connect(fd, (struct sockaddr *)&a, sizeof a) == 0, "connect: %s", strerror(errno));
    return fd;
}

static int dial(void)
{
    return dial_port(srv.port);
}

/* Reads until the server closes or `ms` pass without it closing. */
static raw_reply read_until_close(int fd, int ms)
{
    size_t cap = 16384, len = 0;
    char *text = malloc(cap);
    cr_assert(text);
    bool closed = false;
    double end = pgtest_now_ms() + ms;
    for (;;) {
        int left = (int)(end - pgtest_now_ms());
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (left <= 0 || poll(&p, 1, left) <= 0)
            break;
        if (cap - len < 4096) {
            char *bigger = realloc(text, cap *= 2);
            cr_assert(bigger);
            text = bigger;
        }
        ssize_t got = recv(fd, text + len, cap - len - 1, 0);
        if (got <= 0) {
            closed = true;
            break;
        }
        len += (size_t)got;
    }
    text[len] = '\0';
    int status = 0;
    sscanf(text, "HTTP/1.%*d %d", &status);
    return (raw_reply){.text = text, .len = len, .closed = closed, .status = status};
}

/* Reads one response on a connection kept alive: until its head and Content-Length bytes of body
 * are in (or `ms` pass: a hang guard, not a measure). */
static raw_reply read_response(int fd, int ms)
{
    size_t cap = 16384, len = 0;
    char *text = malloc(cap);
    cr_assert(text);
    double end = pgtest_now_ms() + ms;
    for (;;) {
        text[len] = '\0';
        const char *body = strstr(text, "\r\n\r\n");
        const char *cl = body ? strcasestr(text, "\r\nContent-Length:") : NULL;
        if (body && (!cl || cl > body || len >= (size_t)(body + 4 - text) + (size_t)atol(cl + 17)))
            break;
        int left = (int)(end - pgtest_now_ms());
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (left <= 0 || poll(&p, 1, left) <= 0 || len + 1 >= cap)
            break;
        ssize_t got = recv(fd, text + len, cap - len - 1, 0);
        if (got <= 0)
            break;
        len += (size_t)got;
    }
    int status = 0;
    sscanf(text, "HTTP/1.%*d %d", &status);
    return (raw_reply){.text = text, .len = len, .closed = false, .status = status};
}

/* Sends `req` as is on a fresh connection and reads what comes back within `ms`. */
static raw_reply exchange_raw(const char *req, size_t len, int ms)
{
    int fd = dial();
    for (size_t off = 0; off < len;) {
        ssize_t w = send(fd, req + off, len - off, MSG_NOSIGNAL);
        if (w <= 0)
            break;
        off += (size_t)w;
    }
    raw_reply r = read_until_close(fd, ms);
    close(fd);
    return r;
}

static raw_reply send_str(const char *req)
{
    return exchange_raw(req, strlen(req), 5000);
}

/* The value of header `name` in the first response's head, malloc'd, or NULL. */
static char *header_of(const raw_reply *r, const char *name)
{
    const char *end = strstr(r->text, "\r\n\r\n");
    size_t n = strlen(name);
    for (const char *p = strstr(r->text, "\r\n"); p && (!end || p < end); p = strstr(p + 2, "\r\n"))
        if (!strncasecmp(p + 2, name, n) && p[2 + n] == ':') {
            const char *v = p + 3 + n;
            v += strspn(v, " ");
            return strndup(v, strcspn(v, "\r\n"));
        }
    return NULL;
}

/* The first response's body (after the head), or "" */
static const char *body_of(const raw_reply *r)
{
    const char *end = strstr(r->text, "\r\n\r\n");
    return end ? end + 4 : "";
}

/* A JSON error body in FastAPI's shape: {"detail": ...}. */
__attribute__((unused)) static void expect_json_detail(const raw_reply *r)
{
    char *ct = header_of(r, "Content-Type");
    cr_expect(ct && !strncmp(ct, "application/json", 16), "not JSON: %s", r->text);
    free(ct);
    json_error_t e;
    const char *b = body_of(r);
    json_t *j = json_loads(b, 0, &e);
    cr_expect(j && json_object_get(j, "detail"), "no {\"detail\"} body: %s", r->text);
    json_decref(j);
}

static void reply_free(raw_reply *r)
{
    free(r->text);
    r->text = NULL;
}

/* ---- RFC 9110 9.3.2: HEAD is GET without a body, on every GET route ---- */

static void expect_head_like_get(const char *path, const char *auth)
{
    char req[1024];
    snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: t\r\n%sConnection: close\r\n\r\n", path,
             auth);
    raw_reply get = send_str(req);
    snprintf(req, sizeof req, "HEAD %s HTTP/1.1\r\nHost: t\r\n%s\r\n", path, auth);
    raw_reply head = send_str(req); /* keep-alive asked: the answer must still end */
    cr_assert_eq(head.status, get.status, "%s\n---\n%s", head.text, get.text);
    char *want = header_of(&get, "Content-Length"), *got = header_of(&head, "Content-Length");
    cr_expect(want && got && !strcmp(want, got), "HEAD %s Content-Length %s, GET's %s", path,
              got ? got : "none", want ? want : "none");
    char *ct = header_of(&get, "Content-Type"), *hct = header_of(&head, "Content-Type");
    cr_expect(ct && hct && !strcmp(ct, hct), "HEAD %s Content-Type %s, GET's %s", path,
              hct ? hct : "none", ct ? ct : "none");
    cr_expect_str_eq(body_of(&head), "", "HEAD %s sent a body: %s", path, head.text);
    cr_expect(head.closed,
              "HEAD %s: the exchange did not end within 5 s (a client that does "
              "not know it sent HEAD waits for the body)",
              path);
    free(want), free(got), free(ct), free(hct);
    reply_free(&get), reply_free(&head);
}

Test(hostile, head_is_get_without_body)
{
    expect_head_like_get("/health", "");
    expect_head_like_get("/openapi.json", "");
    expect_head_like_get("/docs", "");
    /* example:begin (the Todo example's routes: scripts/remove-example deletes this block) */
    expect_head_like_get("/api/nobody/tasks", ""); /* 401: a framework answer */
    char *u = api_user("head");
    char *tok = api_token(u, "HS256", TEST_SECRET, 3600, 0);
    char auth[1024], path[300];
    snprintf(auth, sizeof auth, "Authorization: Bearer %s\r\n", tok);
    snprintf(path, sizeof path, "/api/%s/tasks", u);
    expect_head_like_get(path, auth);
    free(tok), free(u);
    /* example:end */
}

/* curl --head URL --next URL: pipelined, the HEAD's answer must not carry bytes the next
 * response would be read from ("Excess found"). */
Test(hostile, head_then_get_pipelined)
{
    raw_reply r = send_str("HEAD /health HTTP/1.1\r\nHost: t\r\n\r\n"
                           "GET /health HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    cr_assert_eq(r.status, 200, "%s", r.text);
    const char *rest = body_of(&r);
    cr_expect(!*rest || !strncmp(rest, "HTTP/1.1 ", 9), "bytes after HEAD's head: %s", rest);
    reply_free(&r);
}

/* ---- accept() at the descriptor limit ---- */

static int count_lines(const char *text, const char *needle)
{
    int n = 0;
    for (const char *p = strstr(text, needle); p; p = strstr(p + 1, needle))
        n++;
    return n;
}

/* At RLIMIT_NOFILE, accept() fails with EMFILE while the connection stays queued: libevent's
 * listener retried at once, forever (100% CPU, a log line per try, 220k lines in 7 s). The
 * listener now pauses: a bounded number of log lines while the limit holds, and once the
 * connections are gone the server answers again. */
Test(hostile, accept_at_descriptor_limit_does_not_spin)
{
    /* the start-up schema check's database connection first: libpq 15 failing a TLS connect at
     * EMFILE was seen (ASan, the Neon-shaped run) reading past a 128-byte buffer of its own while
     * appending its error message; this test is about the listener, not libpq */
    api_wait_startup(&srv);
    struct rlimit rl = {64, 64};
    cr_assert(prlimit(srv.pid, RLIMIT_NOFILE, &rl, NULL) == 0, "prlimit: %s", strerror(errno));
    int fds[120], n = 0;
    for (; n < 120; n++) {
        fds[n] = dial();
    }
    char *before = api_log(&srv);
    int base = count_lines(before, "ccept");
    free(before);
    /* two seconds at the limit: the old listener logged thousands of lines in that time */
    struct timespec ts = {2, 0};
    nanosleep(&ts, NULL);
    char *log = api_log(&srv);
    int lines = count_lines(log, "ccept") - base;
    free(log);
    cr_expect(lines < 40, "%d accept() log lines in 2 s at the descriptor limit", lines);
    for (int i = 0; i < n; i++)
        close(fds[i]);
    rl.rlim_cur = rl.rlim_max = 1024;
    prlimit(srv.pid, RLIMIT_NOFILE, &rl, NULL);
    raw_reply r = send_str("GET /health HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    cr_expect_eq(r.status, 200, "after the limit: %s", r.text);
    reply_free(&r);
}

/* ---- query strings parsed as Starlette does, then validated ---- */
/* example:begin (on the Todo example's list: scripts/remove-example deletes this block) */

static raw_reply get_as(const char *user, const char *path_and_query)
{
    char *tok = api_token(user, "HS256", TEST_SECRET, 3600, 0);
    char req[2048];
    snprintf(req, sizeof req,
             "GET %s HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer %s\r\nConnection: close\r\n\r\n",
             path_and_query, tok);
    free(tok);
    return send_str(req);
}

/* A key without '=' is a key with an empty value (urllib's parse_qsl, keep_blank_values): it
 * must not make the other parameters disappear. */
Test(hostile, query_key_without_value)
{
    char *u = api_user("query");
    char p[512];
    snprintf(p, sizeof p, "/api/%s/tasks", u);
    api_response *r = api_as(srv.port, u, "POST", p, "{\"title\":\"open\"}");
    cr_assert_eq(r->status, 201, "%s", r->body);
    api_response_free(r);
    r = api_as(srv.port, u, "POST", p, "{\"title\":\"done\"}");
    cr_assert_eq(r->status, 201, "%s", r->body);
    json_t *j = json_loads(r->body, 0, NULL);
    long long id = json_integer_value(json_object_get(j, "id"));
    json_decref(j);
    api_response_free(r);
    char q[600];
    snprintf(q, sizeof q, "/api/%s/tasks/%lld/complete", u, id);
    r = api_as(srv.port, u, "PATCH", q, NULL);
    cr_assert_eq(r->status, 200, "%s", r->body);
    api_response_free(r);

    snprintf(q, sizeof q, "%s?limit=1000&x", p);
    raw_reply rr = get_as(u, q);
    cr_expect_eq(rr.status, 422, "?limit=1000&x: %s", rr.text);
    cr_expect(strstr(body_of(&rr), "\"limit\""), "%s", rr.text);
    reply_free(&rr);

    snprintf(q, sizeof q, "%s?status=completed&x", p);
    rr = get_as(u, q);
    cr_expect_eq(rr.status, 200, "%s", rr.text);
    json_t *list = json_loads(body_of(&rr), 0, NULL);
    cr_expect(json_is_array(list) && json_array_size(list) == 1, "?status=completed&x: %s",
              rr.text);
    json_decref(list);
    reply_free(&rr);

    /* '+' is a space, %XX a byte, a repeated key: the last one (Starlette's query_params) */
    snprintf(q, sizeof q, "%s?search=d%%6Fne&status=all&&status=completed", p);
    rr = get_as(u, q);
    list = json_loads(body_of(&rr), 0, NULL);
    cr_expect(json_is_array(list) && json_array_size(list) == 1, "%s", rr.text);
    json_decref(list);
    reply_free(&rr);
    free(u);
}
/* example:end */

/* ---- nothing leaked ---- */

static char *json_field(const char *body, const char *key)
{
    json_t *j = json_loads(body, 0, NULL);
    const char *v = json_string_value(json_object_get(j, key));
    char *out = v ? strdup(v) : NULL;
    json_decref(j);
    return out;
}

/* /ready is public (a load balancer calls it): libpq's message names the database host, port,
 * role and database. The public answer is a generic reason; the detail goes to the log. */
Test(hostile, ready_does_not_show_the_database_error)
{
    int dead = pgtest_free_port();
    char url[256];
    snprintf(url, sizeof url, "postgresql://leakyrole:pw@127.0.0.1:%d/leakydb", dead);
    api_server other;
    api_start_bin(&other, hostile_bin(), url, "DB_CONNECT_TIMEOUT=1 DB_ACQUIRE_TIMEOUT=1");
    api_response *r = api_call(other.port, "GET", "/ready", NULL, NULL);
    cr_expect_eq(r->status, 503, "%s", r->body);
    char port[16];
    snprintf(port, sizeof port, "%d", dead);
    char *detail = json_field(r->body, "detail");
    cr_expect(detail && *detail, "no detail: %s", r->body);
    cr_expect(!strstr(r->body, "127.0.0.1") && !strstr(r->body, port) &&
                  !strstr(r->body, "leakyrole") && !strstr(r->body, "leakydb") &&
                  !strstr(r->body, "onnect"),
              "/ready shows the database error: %s", r->body);
    free(detail);
    api_response_free(r);
    char *log = api_log(&other);
    cr_expect(strstr(log, port), "the log does not have the detail: %s", log);
    free(log);
    cr_assert_eq(api_stop(&other), 0);
}

/* RFC 9110 10.2.2: Location may be a relative reference. The client's Host header is not copied
 * into an absolute URL (a poisoned cache or a proxy that trusts Host would send users away). */
Test(hostile, redirect_location_is_relative)
{
    raw_reply r = send_str("GET /health/?limit=5 HTTP/1.1\r\n"
                           "Host: evil.example\r\nConnection: close\r\n\r\n");
    cr_assert_eq(r.status, 307, "%s", r.text);
    char *loc = header_of(&r, "Location");
    cr_expect(loc && !strcmp(loc, "/health?limit=5"), "Location: %s", loc ? loc : "none");
    free(loc);
    reply_free(&r);
}

/* Plain http:// to the JWKS only to this machine in production: the URL's host is parsed, not
 * compared by prefix. */
Test(hostile, jwks_loopback_is_the_parsed_host)
{
    static const char *refused[] = {
        "http://127.0.0.1.attacker.example/jwks",
        "http://localhost.attacker.example/jwks",
        "http://127.attacker.example/jwks",
        "http://127.0.0.1@attacker.example/jwks",
    };
    for (size_t i = 0; i < sizeof refused / sizeof *refused; i++) {
        char cmd[1024], *out = NULL;
        snprintf(cmd, sizeof cmd,
                 "cd /tmp && env -i PATH=/usr/bin:/bin LOG_FORMAT=text APP_ENV=production "
                 "DATABASE_URL=postgresql://u:p@127.0.0.1:1/db AUTH_JWKS_URL='%s' timeout 10 %s",
                 refused[i], pgtest_bin(hostile_bin()));
        int rc = pgtest_run(cmd, &out);
        cr_expect_eq(rc, 2, "%s accepted: exit %d: %s", refused[i], rc, out);
        cr_expect(out && strstr(out, "AUTH_JWKS_URL must use https://"), "%s: %s", refused[i], out);
        free(out);
    }
}

/* /docs and /redoc: not framed by another site (clickjacking the "Authorize" dialog), the token
 * not kept in localStorage, and the page talks to its own origin only. */
Test(hostile, docs_not_framed_and_token_not_kept)
{
    static const char *pages[] = {"/docs", "/redoc"};
    for (size_t i = 0; i < 2; i++) {
        char req[256];
        snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
                 pages[i]);
        raw_reply r = exchange_raw(req, strlen(req), 10000);
        cr_assert_eq(r.status, 200, "%s", r.text);
        char *xfo = header_of(&r, "X-Frame-Options"),
             *csp = header_of(&r, "Content-Security-Policy");
        cr_expect(xfo && !strcmp(xfo, "DENY"), "%s X-Frame-Options: %s", pages[i],
                  xfo ? xfo : "none");
        cr_expect(csp && strstr(csp, "frame-ancestors 'none'"), "%s CSP: %s", pages[i],
                  csp ? csp : "none");
        cr_expect(csp && strstr(csp, "connect-src 'self'") && !strstr(csp, "connect-src *"),
                  "%s CSP: %s", pages[i], csp ? csp : "none");
        cr_expect(!strstr(body_of(&r), "persistAuthorization: true"), "%s keeps the token",
                  pages[i]);
        free(xfo), free(csp);
        reply_free(&r);
    }
}

/* ---- every error the server itself produces is JSON in FastAPI's shape ---- */

/* libevent's parser answers these before any handler runs: its HTML pages became
 * {"detail": ...} with Content-Type application/json, and the connection still closes (RFC 9112
 * 9.6: after a framing error the rest of the stream cannot be trusted). */
static void expect_json_error(const char *what, const char *req, size_t len, int status, bool close)
{
    raw_reply r = exchange_raw(req, len, close ? 10000 : 2000);
    cr_expect_eq(r.status, status, "%s: %s", what, r.text);
    expect_json_detail(&r);
    char *cl = header_of(&r, "Content-Length");
    cr_expect(cl && (size_t)atol(cl) == strlen(body_of(&r)), "%s: Content-Length %s for %s", what,
              cl ? cl : "none", r.text);
    free(cl);
    cr_expect(r.closed || !close, "%s: the connection stayed open", what);
    reply_free(&r);
}

static void expect_json_error_and_close(const char *what, const char *req, size_t len, int status)
{
    expect_json_error(what, req, len, status, true);
}

Test(hostile, parser_errors_are_json)
{
    const char *garbage = "GARBAGE\r\n\r\n";
    expect_json_error_and_close("no request line", garbage, strlen(garbage), 400);
    const char *http2 = "GET /health HTTP/2.0\r\nHost: t\r\n\r\n";
    expect_json_error_and_close("HTTP/2.0 request line", http2, strlen(http2), 400);
    const char *cr = "GET /health HTTP/1.1\r\nHost: t\rX-Evil: 1\r\n\r\n";
    expect_json_error_and_close("bare CR (RFC 9112 2.2)", cr, strlen(cr), 400);
    const char *connect = "CONNECT a:443 HTTP/1.1\r\nHost: a\r\n\r\n";
    expect_json_error("CONNECT", connect, strlen(connect), 501, false); /* a request, well formed */
    /* past libevent's own cap (4 x MAX_BODY_BYTES = 16 KiB here), with a valid token (without,
     * the head is answered 401 before the body: unauthenticated_body_is_not_read) */
    size_t n = 40000;
    char *big = malloc(n + 1024);
    cr_assert(big);
    char *tok = api_token("u", "HS256", TEST_SECRET, 3600, 0);
    int h = snprintf(big, 1024,
                     "POST /api/u/things HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer %s\r\n"
                     "Content-Length: %zu\r\n\r\n",
                     tok, n);
    free(tok);
    memset(big + h, 'a', n);
    expect_json_error_and_close("body past libevent's cap", big, (size_t)h + n, 413);
    /* the same as a keep-alive connection's second request: libevent's page is written into an
     * output buffer whose start the socket keeps frozen (it went out as HTML) */
    const char *first = "GET /health HTTP/1.1\r\nHost: t\r\n\r\n";
    int fd = dial();
    cr_assert_eq(send(fd, first, strlen(first), MSG_NOSIGNAL), (ssize_t)strlen(first));
    raw_reply ok = read_response(fd, 10000);
    cr_assert_eq(ok.status, 200, "%s", ok.text);
    reply_free(&ok);
    (void)!send(fd, big, (size_t)h + n, MSG_NOSIGNAL); /* the server may close before the end */
    raw_reply second = read_until_close(fd, 5000);
    close(fd);
    cr_expect_eq(second.status, 413, "%s", second.text);
    cr_expect(!strstr(second.text, "<HTML>") && strstr(second.text, "{\"detail\""),
              "a keep-alive connection's 413 is not JSON: %s", second.text);
    reply_free(&second);
    free(big);
}

/* ---- request framing (RFC 9110 8.6, RFC 9112 6.1, 6.3) ---- */

Test(hostile, conflicting_content_length_is_400_and_closes)
{
    const char *two = "POST /api/u/things HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n"
                      "Content-Length: 5\r\n\r\nabcde";
    expect_json_error_and_close("two different Content-Length", two, strlen(two), 400);
    const char *plus = "POST /api/u/things HTTP/1.1\r\nHost: t\r\nContent-Length: +3\r\n\r\nabc";
    expect_json_error_and_close("Content-Length +3", plus, strlen(plus), 400);
    const char *list = "POST /api/u/things HTTP/1.1\r\nHost: t\r\nContent-Length: 3, 3\r\n\r\nabc";
    expect_json_error_and_close("Content-Length 3, 3", list, strlen(list), 400);
    const char *both = "POST /api/u/things HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n"
                       "Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n";
    expect_json_error_and_close("Content-Length and chunked", both, strlen(both), 400);
    /* a coding other than chunked alone: libevent read no body and would parse the chunks as the
     * next request */
    const char *gz = "POST /api/u/things HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip, chunked"
                     "\r\n\r\n3\r\nabc\r\n0\r\n\r\n";
    expect_json_error_and_close("Transfer-Encoding gzip, chunked", gz, strlen(gz), 501);
    /* the same value twice is one valid value (RFC 9110 8.6 allows either): the request goes on
     * to the router (404: no such route) */
    raw_reply r = send_str("POST /api/u/things HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n"
                           "Content-Length: 2\r\nConnection: close\r\n\r\n{}");
    cr_expect_eq(r.status, 404, "%s", r.text);
    reply_free(&r);
}

/* The framing is followed a line at a time over whatever each read brings: the same requests sent
 * one byte per segment (TCP_NODELAY, a pause after each) are framed exactly as when sent whole. */
static raw_reply exchange_dribbled(const char *req)
{
    int fd = dial(), one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct timespec pause = {0, 1000000};
    for (const char *p = req; *p; p++) {
        if (send(fd, p, 1, MSG_NOSIGNAL) != 1)
            break;
        nanosleep(&pause, NULL);
    }
    raw_reply r = read_until_close(fd, 10000);
    close(fd);
    return r;
}

Test(hostile, framing_is_followed_across_reads)
{
    /* a chunked body, then a second request: both answered, in order */
    raw_reply two =
        exchange_dribbled("POST /api/u/things HTTP/1.1\r\nHost: t\r\n"
                          "Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
                          "GET /health HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    const char *second = strstr(two.text + 1, "HTTP/1.1 ");
    cr_expect_eq(two.status, 404, "%s", two.text);
    cr_expect(second && !strncmp(second, "HTTP/1.1 200", 12), "second request: %s", two.text);
    reply_free(&two);
    /* a chunk size libevent's strtoll would take, and a CR alone split from what follows it */
    raw_reply hex = exchange_dribbled("POST /api/u/things HTTP/1.1\r\nHost: t\r\n"
                                      "Transfer-Encoding: chunked\r\n\r\n0x3\r\nabc\r\n0\r\n\r\n");
    cr_expect_eq(hex.status, 400, "chunk size 0x3: %s", hex.text);
    cr_expect(hex.closed, "chunk size 0x3: the connection stayed open");
    reply_free(&hex);
    raw_reply data = exchange_dribbled("POST /api/u/things HTTP/1.1\r\nHost: t\r\n"
                                       "Transfer-Encoding: chunked\r\n\r\n3\r\nabcXY\r\n0\r\n\r\n");
    cr_expect_eq(data.status, 400, "chunk data without its CRLF: %s", data.text);
    reply_free(&data);
    raw_reply cr = exchange_dribbled("GET /health HTTP/1.1\r\nHost: t\rX-Evil: 1\r\n\r\n");
    cr_expect_eq(cr.status, 400, "bare CR: %s", cr.text);
    cr_expect(cr.closed, "bare CR: the connection stayed open");
    reply_free(&cr);
}

/* ---- bounded memory: no more than MAX_BODY_BYTES buffered for one request ---- */

static long rss_kib(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    long kib = -1;
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "VmRSS:", 6))
            kib = atol(line + 6);
    if (f)
        fclose(f);
    return kib;
}

/* The api's own pid under the sh that exec'd it is the same (api_start_bin execs). Twenty
 * connections each send a body past MAX_BODY_BYTES (1 MiB, the default) but under libevent's old
 * cap of 4 x MAX_BODY_BYTES, all but its last byte, and hold: the server must not keep them
 * (RFC 9110 15.5.14: 413 and stop reading; libevent reads the rest to throw it away so that the
 * client sees the answer). The old cap buffered 20 x 3.5 MiB = 70 MiB. */
Test(hostile, oversized_bodies_are_not_buffered)
{
    api_server big;
    /* freed memory reused at once, as without ASan (its quarantine keeps it resident) */
    start(&big, "ASAN_OPTIONS=quarantine_size_mb=0");
    enum { CONNS = 20, LEN = 3670016 };
    char *body = calloc(1, LEN);
    cr_assert(body);
    memset(body, 'a', LEN);
    int fds[CONNS];
    long before = rss_kib(big.pid);
    for (int i = 0; i < CONNS; i++) {
        fds[i] = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)big.port)};
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        cr_assert(connect(fds[i], (struct sockaddr *)&a, sizeof a) == 0);
        char head[1024]; /* a valid token: the body is read (then refused by its size) */
        char *tok = api_token("u", "HS256", TEST_SECRET, 3600, 0);
        int h = snprintf(head, sizeof head,
                         "POST /api/u/things HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer %s\r\n"
                         "Content-Length: %d\r\n\r\n",
                         tok, LEN);
        free(tok);
        send(fds[i], head, (size_t)h, MSG_NOSIGNAL);
        for (size_t off = 0; off < LEN - 1;) { /* blocks until the server has read it */
            ssize_t w = send(fds[i], body + off, LEN - 1 - off, MSG_NOSIGNAL);
            if (w <= 0)
                break; /* the server closed: nothing held either */
            off += (size_t)w;
        }
    }
    struct timespec settle = {1, 0}; /* what the kernel still holds reaches the server */
    nanosleep(&settle, NULL);
    long after = rss_kib(big.pid);
    for (int i = 0; i < CONNS; i++)
        close(fds[i]);
    free(body);
    cr_expect(before > 0 && after > 0, "no VmRSS for %d", (int)big.pid);
    cr_expect(after - before < 16 * 1024, "RSS grew from %ld to %ld KiB holding %d bodies", before,
              after, CONNS);
    cr_assert_eq(api_stop(&big), 0);
}

/* ---- authentication before the body ---- */
/* example:begin (on the Todo example's create route: scripts/remove-example deletes this block) */

/* Sends `head` alone and reads the answer (the body is never sent). */
static raw_reply head_only(const char *head)
{
    return exchange_raw(head, strlen(head), 5000);
}

static void expect_refused_head(const char *what, const char *head, int status)
{
    raw_reply r = head_only(head);
    cr_expect_eq(r.status, status, "%s: %s", what, r.text);
    expect_json_detail(&r);
    cr_expect(r.closed, "%s: the connection stayed open", what);
    char *id = header_of(&r, "X-Request-ID");
    cr_expect(id, "%s: no X-Request-ID: %s", what, r.text);
    free(id);
    if (status == 401) {
        char *www = header_of(&r, "WWW-Authenticate");
        cr_expect(www && !strcmp(www, "Bearer"), "%s: WWW-Authenticate %s", what, www);
        free(www);
    }
    reply_free(&r);
}

/* A request whose route needs a token is judged on its head: without a valid token (or with one
 * for another user) it is answered while not one byte of its 4 MiB body was sent, so nothing of
 * an unauthenticated body is buffered. With a valid token the server waits for the body. */
Test(hostile, unauthenticated_body_is_not_read)
{
    expect_refused_head("no token",
                        "POST /api/u/tasks HTTP/1.1\r\nHost: t\r\n"
                        "Content-Length: 4194304\r\n\r\n",
                        401);
    expect_refused_head("a token that does not verify",
                        "POST /api/u/tasks HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer x.y.z\r\n"
                        "Content-Length: 4194304\r\n\r\n",
                        401);
    expect_refused_head("chunked, no token",
                        "PUT /api/u/tasks/1 HTTP/1.1\r\nHost: t\r\n"
                        "Transfer-Encoding: chunked\r\n\r\n",
                        401);
    char *v = api_token("v", "HS256", TEST_SECRET, 3600, 0);
    char head[1024];
    snprintf(head, sizeof head,
             "POST /api/u/tasks HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer %s\r\n"
             "Content-Length: 4194304\r\n\r\n",
             v);
    free(v);
    expect_refused_head("another user's token", head, 403);

    /* a valid token: no answer until the body is there, then the request is served */
    char *u = api_user("early");
    char *tok = api_token(u, "HS256", TEST_SECRET, 3600, 0);
    const char *body = "{\"title\":\"early\"}";
    snprintf(head, sizeof head,
             "POST /api/%s/tasks HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer %s\r\n"
             "Content-Type: application/json\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n",
             u, tok, strlen(body));
    free(tok);
    free(u);
    int fd = dial();
    cr_assert_eq(send(fd, head, strlen(head), MSG_NOSIGNAL), (ssize_t)strlen(head));
    struct pollfd p = {.fd = fd, .events = POLLIN};
    cr_expect_eq(poll(&p, 1, 500), 0, "answered before the body was sent");
    cr_assert_eq(send(fd, body, strlen(body), MSG_NOSIGNAL), (ssize_t)strlen(body));
    raw_reply r = read_until_close(fd, 5000);
    close(fd);
    cr_expect_eq(r.status, 201, "with a valid token and its body: %s", r.text);
    reply_free(&r);
}

/* A flood of bad tokens writes a few log lines a second, not one per request: 5 a second per loop
 * pass, the next one that passes says how many were not logged. */
Test(hostile, bad_token_flood_logs_a_few_lines)
{
    api_server one;
    start(&one, "LOOPS=1 ACCESS_LOG=false");
    char *before = api_log(&one);
    int lines0 = count_lines(before, "authentication failed");
    free(before);
    double t0 = pgtest_now_ms();
    for (int i = 0; i < 40; i++) {
        api_response *r = api_call(one.port, "GET", "/api/u/tasks", NULL, NULL);
        cr_assert_eq(r->status, 401, "%s", r->body);
        api_response_free(r);
    }
    int seconds = (int)((pgtest_now_ms() - t0) / 1000) + 2; /* the clock seconds the flood spans */
    struct timespec later = {1, 100000000};
    nanosleep(&later, NULL);
    api_response *r = api_call(one.port, "GET", "/api/u/tasks", NULL, NULL);
    cr_assert_eq(r->status, 401);
    api_response_free(r);
    char *log = api_log(&one);
    int lines = count_lines(log, "authentication failed") - lines0;
    cr_expect(lines <= 5 * seconds + 1, "%d lines for 41 bad tokens over %d s:\n%s", lines, seconds,
              log);
    cr_expect(lines < 41 && strstr(log, "more since the last line, not logged"),
              "no count of the lines not logged:\n%s", log);
    free(log);
    cr_assert_eq(api_stop(&one), 0);
}

/* RFC 9112 9.6: a client that sends its body anyway, after the early 401, still reads the 401,
 * and its upload ends normally: the server shuts its sending side and reads what comes (for a few
 * seconds at most) instead of closing at once. A close with unread data resets the connection:
 * the client's send fails midway and, on some stacks, the answer it had not read yet is lost.
 * 16 MiB is more than the two sockets' buffers hold, so the whole body has to be read. */
Test(hostile, early_answer_survives_a_body_sent_anyway)
{
    enum { LEN = 16 << 20 };
    char *req = malloc(LEN + 256);
    cr_assert(req);
    int h = snprintf(req, 256,
                     "POST /api/u/tasks HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n", LEN);
    memset(req + h, 'a', LEN);
    int fd = dial();
    size_t off = 0;
    while (off < (size_t)h + LEN) {
        ssize_t w = send(fd, req + off, (size_t)h + LEN - off, MSG_NOSIGNAL);
        if (w <= 0)
            break;
        off += (size_t)w;
    }
    free(req);
    raw_reply r = read_until_close(fd, 10000);
    close(fd);
    cr_expect_eq(r.status, 401, "the answer: %s", r.text);
    cr_expect_eq(off, (size_t)h + LEN, "the upload was cut after %zu of %d bytes (%s)", off,
                 h + LEN, strerror(errno));
    reply_free(&r);
}
/* example:end */

/* ---- bounded connections ---- */

/* MAX_CONNECTIONS open, the next one gets a 503 (RFC 9110 15.6.4, with Retry-After) written at
 * once, and is closed; once they are gone, connections are served again (the count went back
 * down). Five idle connections to a cap of four: which one is over is the kernel's accept order
 * (on loopback not always the order of connect()), so the test looks for exactly one answer. */
Test(hostile, max_connections_refuses_past_the_cap)
{
    api_server cap;
    start(&cap, "MAX_CONNECTIONS=4");
    int fds[5], refused = -1;
    for (int i = 0; i < 5; i++)
        fds[i] = dial_port(cap.port);
    struct pollfd p[5];
    for (int i = 0; i < 5; i++)
        p[i] = (struct pollfd){.fd = fds[i], .events = POLLIN};
    cr_assert(poll(p, 5, 10000) > 0, "no connection of 5 refused with MAX_CONNECTIONS=4");
    for (int i = 0; i < 5; i++)
        if (p[i].revents) {
            cr_expect_eq(refused, -1, "more than one connection refused");
            refused = i;
        }
    cr_assert(refused >= 0);
    raw_reply r = read_until_close(fds[refused], 10000);
    cr_expect_eq(r.status, 503, "past MAX_CONNECTIONS: %s", r.text);
    expect_json_detail(&r);
    char *ra = header_of(&r, "Retry-After");
    cr_expect(ra, "no Retry-After: %s", r.text);
    free(ra);
    cr_expect(r.closed, "the connection past the cap stayed open");
    reply_free(&r);
    const char *get = "GET /health HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
    int kept = (refused + 1) % 5;
    send(fds[kept], get, strlen(get), MSG_NOSIGNAL);
    r = read_until_close(fds[kept], 10000);
    cr_expect_eq(r.status, 200, "a connection under the cap: %s", r.text);
    reply_free(&r);
    for (int i = 0; i < 5; i++)
        close(fds[i]);
    int status = 0;
    double t0 = pgtest_now_ms();
    while (status != 200 && pgtest_now_ms() - t0 < 10000) { /* a wait for the closes, not a bound */
        int fd = dial_port(cap.port);
        send(fd, get, strlen(get), MSG_NOSIGNAL);
        r = read_until_close(fd, 5000);
        close(fd);
        status = r.status;
        reply_free(&r);
    }
    cr_expect_eq(status, 200, "closed connections still counted");
    cr_assert_eq(api_stop(&cap), 0);
}

/* Slowloris: a head trickled a line at a time, each well inside the idle timeout. READ_TIMEOUT
 * counts from the request's first byte (RFC 9112 9.5: a server may close a connection whose
 * request does not complete); libevent's own timeout, reset by every byte, never fired. */
Test(hostile, slow_head_closed_at_read_timeout)
{
    api_server slow;
    start(&slow, "READ_TIMEOUT=2");
    int fd = dial_port(slow.port);
    double limit = 2000 + pgtest_slack_ms(), t0 = pgtest_now_ms();
    const char *first = "GET /health HTTP/1.1\r\nHost: t\r\n";
    send(fd, first, strlen(first), MSG_NOSIGNAL);
    bool closed = false;
    while (!closed && pgtest_now_ms() - t0 < limit + 1000) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 300) > 0) {
            char b[256];
            closed = recv(fd, b, sizeof b, 0) <= 0;
        } else if (send(fd, "X-Slow: 1\r\n", 11, MSG_NOSIGNAL) <= 0) {
            closed = true;
        }
    }
    double took = pgtest_now_ms() - t0;
    close(fd);
    cr_expect(closed, "still open after %.0f ms of trickling (READ_TIMEOUT=2)", took);
    cr_expect(took >= 1900, "closed after %.0f ms, before READ_TIMEOUT", took);
    cr_expect(took <= limit, "closed after %.0f ms, READ_TIMEOUT 2 s + slack", took);
    char *log = api_log(&slow);
    cr_expect(count_lines(log, "READ_TIMEOUT") <= 1, "%s", log);
    free(log);
    cr_assert_eq(api_stop(&slow), 0);
}

/* RFC 9112 7.1: chunk-size = 1*HEXDIG, then optional ";" extensions; libevent read it with
 * strtoll (accepting 0x13, +13, leading spaces, -3). A chunked body libevent would frame
 * differently from a strict proxy: 400, closed. A valid one still goes through. */
Test(hostile, chunk_size_is_hex_digits_only)
{
    static const char *bad[] = {"0x3", "+3", " 3", "-3", "3 3", ""};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char req[512];
        snprintf(req, sizeof req,
                 "POST /health HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
                 "%s\r\nabc\r\n0\r\n\r\n",
                 bad[i]);
        char what[64];
        snprintf(what, sizeof what, "chunk size \"%s\"", bad[i]);
        expect_json_error_and_close(what, req, strlen(req), 400);
    }
    const char *missing_crlf = "POST /health HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: "
                               "chunked\r\n\r\n3\r\nabcX\r\n0\r\n\r\n";
    expect_json_error_and_close("chunk data not followed by CRLF", missing_crlf,
                                strlen(missing_crlf), 400);
    raw_reply r =
        send_str("POST /api/u/things HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n"
                 "Connection: close\r\n\r\n2\r\n{}\r\n0\r\nX-Trailer: 1\r\n\r\n");
    cr_expect_eq(r.status, 404, "a valid chunked body (routed): %s", r.text);
    reply_free(&r);
}

/* ---- the connection (RFC 9112 9) ---- */

/* How many responses `text` holds, and whether their X-Request-IDs are r0, r1, ... in order. */
static int responses_in_order(const char *text)
{
    int n = 0;
    for (const char *p = strstr(text, "HTTP/1.1 "); p; p = strstr(p + 1, "HTTP/1.1 ")) {
        const char *id = strstr(p, "X-Request-ID: ");
        char want[32];
        snprintf(want, sizeof want, "X-Request-ID: r%d\r\n", n);
        if (!id || strncmp(id, want, strlen(want)))
            return -1 - n;
        n++;
    }
    return n;
}

/* Requests pipelined in one write are answered in order, one response each; a client that shut
 * its sending side after them (printf ... | nc) still gets every answer, then the close. */
Test(hostile, pipelined_requests_answered_in_order_after_a_half_close)
{
    enum { N = 60 };
    char *req = malloc(N * 128);
    cr_assert(req);
    size_t len = 0;
    for (int i = 0; i < N; i++) /* a database route among them: answers come back out of order */
        len += (size_t)sprintf(req + len, "GET %s HTTP/1.1\r\nHost: t\r\nX-Request-ID: r%d\r\n\r\n",
                               i % 3 == 1 ? "/ready" : "/health", i);
    int fd = dial();
    cr_assert_eq(send(fd, req, len, MSG_NOSIGNAL), (ssize_t)len);
    shutdown(fd, SHUT_WR);
    raw_reply r = read_until_close(fd, 20000);
    close(fd);
    free(req);
    cr_expect(r.closed, "the connection stayed open after the client's half-close");
    cr_expect_eq(responses_in_order(r.text), N, "%s", r.text);
    reply_free(&r);
}

/* RFC 9110 10.1.1: a client that asks "Expect: 100-continue" hears 100 Continue once the head is
 * accepted, sends its body, then gets the final answer on the same connection. */
Test(hostile, expect_100_continue)
{
    char *tok = api_token("u", "HS256", TEST_SECRET, 3600, 0);
    char head[1024];
    snprintf(head, sizeof head,
             "POST /api/u/things HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer %s\r\n"
             "Content-Type: application/json\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n",
             tok);
    free(tok);
    int fd = dial();
    cr_assert_eq(send(fd, head, strlen(head), MSG_NOSIGNAL), (ssize_t)strlen(head));
    char got[64] = "";
    struct pollfd p = {.fd = fd, .events = POLLIN};
    cr_assert_gt(poll(&p, 1, 10000), 0, "no 100 Continue");
    ssize_t n = recv(fd, got, sizeof got - 1, 0);
    cr_assert_gt(n, 0);
    cr_expect_str_eq(got, "HTTP/1.1 100 Continue\r\n\r\n");
    cr_assert_eq(send(fd, "{}", 2, MSG_NOSIGNAL), 2);
    raw_reply r = read_response(fd, 10000);
    close(fd);
    cr_expect_eq(r.status, 404, "the final answer (no such route): %s", r.text);
    reply_free(&r);
}

/* RFC 9112 9.3: HTTP/1.0 stays open only when asked ("Connection: keep-alive", echoed), HTTP/1.1
 * unless "Connection: close". */
Test(hostile, keep_alive_as_each_version_asks)
{
    int fd = dial();
    const char *ka = "GET /health HTTP/1.0\r\nConnection: keep-alive\r\n\r\n";
    for (int i = 0; i < 2; i++) {
        cr_assert_eq(send(fd, ka, strlen(ka), MSG_NOSIGNAL), (ssize_t)strlen(ka));
        raw_reply r = read_response(fd, 10000);
        cr_expect_eq(r.status, 200, "HTTP/1.0 keep-alive request %d: %s", i, r.text);
        char *conn = header_of(&r, "Connection");
        cr_expect(conn && !strcasecmp(conn, "keep-alive"), "Connection: %s", conn);
        free(conn);
        reply_free(&r);
    }
    close(fd);
    raw_reply once = send_str("GET /health HTTP/1.0\r\n\r\n");
    cr_expect_eq(once.status, 200, "%s", once.text);
    cr_expect(once.closed, "an HTTP/1.0 request without keep-alive left the connection open");
    reply_free(&once);
    raw_reply close11 = send_str("GET /health HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    char *conn = header_of(&close11, "Connection");
    cr_expect(close11.closed && conn && !strcmp(conn, "close"), "%s", close11.text);
    free(conn);
    reply_free(&close11);
}

/* RFC 9112 5.1, 5.2, 2.2 and RFC 9110 5.5: field lines the parser must not guess at */
Test(hostile, malformed_heads_are_400)
{
    static const struct {
        const char *what, *req;
    } bad[] = {
        {"obs-fold", "GET /health HTTP/1.1\r\nHost: t\r\nX-A: 1\r\n  folded\r\n\r\n"},
        {"blank before the colon", "GET /health HTTP/1.1\r\nHost : t\r\n\r\n"},
        {"no colon", "GET /health HTTP/1.1\r\nHost t\r\n\r\n"},
        {"a control character in a value", "GET /health HTTP/1.1\r\nHost: t\x01x\r\n\r\n"},
        {"two spaces in the request line", "GET  /health HTTP/1.1\r\nHost: t\r\n\r\n"},
        {"a space in the target", "GET /hea lth HTTP/1.1\r\nHost: t\r\n\r\n"},
        {"HTTP/1.10", "GET /health HTTP/1.10\r\nHost: t\r\n\r\n"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        expect_json_error_and_close(bad[i].what, bad[i].req, strlen(bad[i].req), 400);
    static const char nul[] = "GET /health HTTP/1.1\r\nHost: t\0x\r\n\r\n";
    expect_json_error_and_close("a NUL in a value", nul, sizeof nul - 1, 400);
    /* well formed but not served: 501, and the connection goes on */
    const char *foo = "FOO /health HTTP/1.1\r\nHost: t\r\n\r\n";
    expect_json_error("an unknown method", foo, strlen(foo), 501, false);
    /* the absolute-form is served like the origin-form (RFC 9112 3.2.2) */
    raw_reply abs =
        send_str("GET http://t/health?x=1 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    cr_expect_eq(abs.status, 200, "absolute-form: %s", abs.text);
    reply_free(&abs);
}

/* READ_TIMEOUT also bounds an idle keep-alive connection and a client that does not read its
 * replies: both are closed, and the server goes on answering others. */
Test(hostile, idle_and_unread_connections_closed_at_read_timeout)
{
    api_server s;
    start(&s, "READ_TIMEOUT=1");
    double limit = 1000 + pgtest_slack_ms();
    int idle = dial_port(s.port);
    const char *get = "GET /health HTTP/1.1\r\nHost: t\r\n\r\n";
    cr_assert_eq(send(idle, get, strlen(get), MSG_NOSIGNAL), (ssize_t)strlen(get));
    raw_reply first = read_response(idle, 10000);
    cr_expect_eq(first.status, 200, "%s", first.text);
    reply_free(&first);
    double t0 = pgtest_now_ms();
    raw_reply rest = read_until_close(idle, (int)limit + 2000);
    double took = pgtest_now_ms() - t0;
    close(idle);
    cr_expect(rest.closed && rest.len == 0, "idle connection: closed %d after %.0f ms", rest.closed,
              took);
    cr_expect(took <= limit, "idle connection closed after %.0f ms (READ_TIMEOUT 1 s + slack)",
              took);
    reply_free(&rest);

    /* pipelined requests for a large reply, never read: the server's writes stall */
    /* a small receive buffer set before connect (so the window is small from the start): what
     * the server's kernel still holds after its close arrives within the read below */
    int deaf = socket(AF_INET, SOCK_STREAM, 0), small = 4096;
    setsockopt(deaf, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)s.port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert(connect(deaf, (struct sockaddr *)&a, sizeof a) == 0, "connect: %s", strerror(errno));
    const char *doc = "GET /openapi.json HTTP/1.1\r\nHost: t\r\n\r\n";
    for (int i = 0; i < 200; i++)
        if (send(deaf, doc, strlen(doc), MSG_NOSIGNAL | MSG_DONTWAIT) <= 0)
            break;
    /* past the deadline, what the client finally reads ends in the server's close (or a reset),
     * short of the 200 replies it would get from a server still waiting to write them */
    usleep((useconds_t)(limit + 1000) * 1000);
    raw_reply late = read_until_close(deaf, 10000);
    close(deaf);
    int replies = 0;
    for (const char *p = strstr(late.text, "HTTP/1.1 200"); p; p = strstr(p + 1, "HTTP/1.1 200"))
        replies++;
    cr_expect(late.closed && replies < 200,
              "a connection whose replies were not read stayed open (%d replies read)", replies);
    reply_free(&late);
    api_response *ok = api_call(s.port, "GET", "/health", NULL, NULL);
    cr_expect_eq(ok->status, 200);
    api_response_free(ok);
    cr_assert_eq(api_stop(&s), 0);
}
