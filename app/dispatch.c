/* dispatch: what happens to one request, in the order FastAPI does it: routing (404, 405, 307,
 * CORS preflight), limits (413, 431), the bearer token (401) and its owner (403), then validation
 * (422) of path, query, header and body, all at once; then the handler, inline or in a coroutine
 * with its session; then the reply with the cross-cutting headers, one access-log line and the
 * metrics.
 */
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <sys/random.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "app/exchange.h"
#include "app/idempotency.h"
#include "app/jwks.h"
#include "app/metrics.h"
#include "app/openapi.h"
#include "app/ratelimit.h"
#include "app/server.h"
#include "app/wire.h"
#include "core/log.h"

double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The methods the framework serves, as static strings (the access log line outlives the request):
 * NULL for any other (RFC 9110 9.1: 501). */
static const char *known_method(const char *m)
{
    static const char *const known[] = {"GET",    "POST",    "HEAD",  "PUT",
                                        "DELETE", "OPTIONS", "PATCH", "TRACE"};
    for (size_t i = 0; i < sizeof known / sizeof *known; i++)
        if (!strcmp(m, known[i]))
            return known[i];
    return NULL;
}

/* A client's X-Request-ID is kept when it is short and plain; otherwise we make one. */
static void set_request_id(exchange *x, const char *given)
{
    if (given) {
        size_t n =
            strspn(given, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.:");
        if (n > 0 && n <= 64 && !given[n]) {
            memcpy(x->request_id, given, n + 1);
            return;
        }
    }
    /* Seeded from the kernel: OpenSSL's first RAND_bytes sets up its generator (configuration
     * file, DRBG), ~2 ms that fell on the first request, the /health a deploy waits for. */
    static _Thread_local unsigned long long state[2];
    if (!state[0] && !state[1] &&
        getrandom(state, sizeof state, GRND_NONBLOCK) != (ssize_t)sizeof state &&
        RAND_bytes((unsigned char *)state, sizeof state) != 1)
        state[0] = (unsigned long long)time(NULL) | 1;
    unsigned long long out[2];
    for (int i = 0; i < 2; i++) { /* xorshift128+: ids need to be unique, not secret */
        unsigned long long a = state[0], b = state[1];
        state[0] = b;
        a ^= a << 23;
        state[1] = a ^ b ^ (a >> 17) ^ (b >> 26);
        out[i] = state[1] + b;
    }
    static const char hex[] = "0123456789abcdef";
    for (int i = 0; i < 32; i++) /* "%016llx%016llx", without printf's cost */
        x->request_id[i] = hex[(out[i / 16] >> (60 - 4 * (i % 16))) & 15];
    x->request_id[32] = '\0';
}

/* CORS: an Origin of CORS_ORIGINS is echoed in the reply. */
static void set_origin(exchange *x, const char *origin)
{
    for (int i = 0; origin && i < app.cfg->norigins; i++)
        if (!strcmp(app.cfg->origins[i], origin) && strlen(origin) < sizeof x->origin) {
            strcpy(x->origin, origin);
            x->cors = true;
            return;
        }
}

/* Answers a request right here (x->res filled by the caller). */
static exchange *answer(exchange *x)
{
    dispatch_finish(x);
    return NULL;
}

static exchange *preflight(exchange *x, const char *path)
{
    route_match m;
    router_match(NULL, path, &m);
    if (m.kind == MATCH_NOT_FOUND) {
        http_reply_detail(&x->res, 404, "Not Found");
        return answer(x);
    }
    if (!x->cors) {
        http_reply_detail(&x->res, 400, "Disallowed CORS origin");
        return answer(x);
    }
    http_reply_raw(&x->res, 200, "text/plain; charset=utf-8", "OK", 2);
    http_header_add(&x->res, "Access-Control-Allow-Methods", "%s", m.allow);
    http_header_add(&x->res, "Access-Control-Allow-Headers",
                    "Authorization, Content-Type, Idempotency-Key, X-Request-ID");
    http_header_add(&x->res, "Access-Control-Max-Age", "600");
    return answer(x);
}

/* FastAPI's redirect_slashes. RFC 9110 10.2.2: Location may be a relative reference, resolved
 * against the request's own URI, so the client's Host header is not copied into an absolute URL
 * (behind a cache or a proxy that trusts Host, that would send other users elsewhere). */
static exchange *redirect(exchange *x, const char *path, const char *query)
{
    size_t n = strlen(path) - 1; /* without the trailing slash */
    http_header_add(&x->res, "Location", "%.*s%s%s", (int)n, path, query ? "?" : "",
                    query ? query : "");
    http_reply_empty(&x->res, 307);
    return answer(x);
}

/* RATE_LIMIT (ratelimit.h): one more request of the token's user; 429 past the limit. */
static bool within_rate_limit(exchange *x)
{
    ratelimit_verdict v;
    ratelimit_take(x->user_id, &v);
    if (v.allowed)
        return true;
    static const char *const units[] = {"second", "minute", "hour", "day"};
    long w = app.cfg->rate_window;
    char detail[96]; /* slowapi's words: "Rate limit exceeded: 100 per 1 second" */
    snprintf(detail, sizeof detail, "Rate limit exceeded: %ld per 1 %s", v.limit,
             units[(w >= 60) + (w >= 3600) + (w >= 86400)]);
    http_reply_detail(&x->res, 429, detail);
    http_header_add(&x->res, "Retry-After", "%ld", v.retry_after);
    http_header_add(&x->res, "X-RateLimit-Limit", "%ld", v.limit);
    http_header_add(&x->res, "X-RateLimit-Remaining", "%ld", v.remaining);
    http_header_add(&x->res, "X-RateLimit-Reset", "%ld", v.reset);
    return false;
}

/* Turns auth_verify's verdict into 401/503, or 403 when the path names another user. */
static bool auth_verdict(exchange *x, int rc, const char *why, bool sent)
{
    if (rc < 0) {
        static _Thread_local log_rate lines; /* a flood of bad tokens: a few lines a second */
        long dropped;
        if (log_rate_pass(&lines, 5, &dropped)) {
            log_set_request_id(x->request_id);
            if (dropped)
                log_info("authentication failed: %s (and %ld more since the last line, not logged)",
                         why, dropped);
            else
                log_info("authentication failed: %s", why);
            log_set_request_id(NULL);
        }
        if (rc == AUTH_UNAVAILABLE) { /* cannot judge the token before the JWKS arrived */
            http_reply_detail(&x->res, 503, "Authentication keys are not available yet");
            http_header_add(&x->res, "Retry-After", "%d", jwks_retry_after());
            return false;
        }
        http_reply_detail(&x->res, 401,
                          sent ? "Could not validate credentials" : "Not authenticated");
        http_header_add(&x->res, "WWW-Authenticate", "Bearer");
        return false;
    }
    x->req.user_id = x->user_id;
    int owner = router_owner_param(x->match.route); /* router.h: route.owner */
    if (owner >= 0 && (!x->match.segments[owner] || strcmp(x->match.segments[owner], x->user_id))) {
        http_reply_detail(&x->res, 403, "Not authorized to access another user's resources");
        return false;
    }
    return true;
}

/* METRICS_TOKEN (config.h), compared in constant time: a scraper's bearer token. */
static bool metrics_allowed(exchange *x)
{
    const char *want = app.cfg->metrics_token;
    if (!want) {
        if (app.cfg->env == APP_ENV_DEVELOPMENT)
            return true;
        http_reply_detail(&x->res, 404, "Not Found");
        return false;
    }
    const char *authz = wire_header_get(x->wr, "Authorization");
    size_t n = strlen(want);
    if (authz && !strncasecmp(authz, "Bearer ", 7) && strlen(authz + 7) == n &&
        !CRYPTO_memcmp(authz + 7, want, n))
        return true;
    http_reply_detail(&x->res, 401, authz ? "Could not validate credentials" : "Not authenticated");
    http_header_add(&x->res, "WWW-Authenticate", "Bearer");
    return false;
}

static bool authenticate(exchange *x)
{
    const char *why;
    const char *authz = wire_header_get(x->wr, "Authorization");
    int rc = auth_verify(loop_auth_cache(x->loop), authz, x->user_id, &why);
    /* A kid the key set does not know yet: the handler's coroutine waits for the JWKS fetch
     * (the loop does not) and verifies again (auth_recheck). */
    if (rc == AUTH_REFRESHING && x->match.route->run != RUN_LOOP && (x->auth_retry = strdup(authz)))
        return true;
    return auth_verdict(x, rc, why, authz != NULL) && (!ratelimit_on() || within_rate_limit(x));
}

/* In the handler's coroutine: after the JWKS fetch an unknown kid caused, verify again. */
static bool auth_recheck(exchange *x)
{
    const char *why;
    jwks_wait();
    int rc = auth_verify(loop_auth_cache(x->loop), x->auth_retry, x->user_id, &why);
    free(x->auth_retry);
    x->auth_retry = NULL;
    return auth_verdict(x, rc == AUTH_REFRESHING ? AUTH_INVALID : rc, why, true) &&
           (!ratelimit_on() || within_rate_limit(x));
}

static int hexval(char c)
{
    return c >= '0' && c <= '9'                 ? c - '0'
           : (c | 32) >= 'a' && (c | 32) <= 'f' ? (c | 32) - 'a' + 10
                                                : -1;
}

/* Decodes s in place as application/x-www-form-urlencoded: '+' is a space, %XX a byte; a '%' not
 * followed by two hex digits stays as it is (Python's unquote_plus). */
static void form_decode(char *s)
{
    char *out = s;
    for (; *s; s++) {
        if (*s == '+') {
            *out++ = ' ';
        } else if (*s == '%' && hexval(s[1]) >= 0 && hexval(s[2]) >= 0) {
            *out++ = (char)(hexval(s[1]) * 16 + hexval(s[2]));
            s += 2;
        } else {
            *out++ = *s;
        }
    }
    *out = '\0';
}

/* Splits the query string as Starlette does (urllib's parse_qsl with keep_blank_values): pairs
 * separated by '&', a pair without '=' is a key with an empty value, empty pairs are skipped.
 * libevent's evhttp_parse_query_str instead failed on a key without '=' and dropped EVERY
 * parameter: `?limit=1000&x` answered 200 with the default limit, `?status=completed&x`
 * listed all tasks. */
static void parse_query(exchange *x, const char *query)
{
    if (!query || !*query || !(x->query = strdup(query)))
        return;
    char *save = NULL;
    for (char *pair = strtok_r(x->query, "&", &save); pair && x->nquery < EXCHANGE_MAX_QUERY;
         pair = strtok_r(NULL, "&", &save)) {
        char *eq = strchr(pair, '=');
        if (eq)
            *eq = '\0';
        form_decode(pair);
        if (eq)
            form_decode(eq + 1);
        x->qkey[x->nquery] = pair;
        x->qval[x->nquery++] = eq ? eq + 1 : "";
    }
}

/* The value of query parameter `name`, the last one when repeated (as Starlette's
 * query_params[name]), or NULL. */
static const char *query_value(const exchange *x, const char *name)
{
    for (int i = x->nquery - 1; i >= 0; i--)
        if (!strcmp(x->qkey[i], name))
            return x->qval[i];
    return NULL;
}

/* Path, query, header and body, every problem at once. */
static bool validate(exchange *x, const char *query)
{
    const route *r = x->match.route;
    json_t *errors = json_array();
    parse_query(x, query);
    for (int i = 0; r->params && r->params[i].name; i++) {
        const param_spec *p = &r->params[i];
        const char *raw = p->in == PARAM_PATH ? x->match.segments[i] : query_value(x, p->name);
        validate_param(p, raw, &x->req.values[i], errors);
    }
    const char *key = r->idempotency_key ? wire_header_get(x->wr, "Idempotency-Key") : NULL;
    if (key) {
        size_t n = strlen(key);
        if (n == 0)
            validate_error(errors, "string_too_short", "header", "idempotency-key", -1,
                           "String should have at least 1 character", json_string(""),
                           json_pack("{si}", "min_length", 1));
        else if (n >= sizeof x->idempotency_key)
            validate_error(errors, "string_too_long", "header", "idempotency-key", -1,
                           "String should have at most 255 characters", json_string(key),
                           json_pack("{si}", "max_length", 255));
        else if (!utf8_valid(key, n))
            validate_error(errors, "string_unicode", "header", "idempotency-key", -1,
                           "Input should be a valid string, unable to parse raw data as a unicode "
                           "string",
                           NULL, NULL);
        else
            x->req.idempotency_key = memcpy(x->idempotency_key, key, n + 1);
    }
    if (r->body)
        x->req.body = validate_body(r->body, x->wr->body, x->wr->body_len, errors);
    if (json_array_size(errors)) {
        json_decref(x->req.body);
        x->req.body = NULL;
        http_reply_json(&x->res, 422, json_pack("{so}", "detail", errors));
        return false;
    }
    json_decref(errors);
    return true;
}

static exchange *route_request(exchange *x, const char *path, const char *query)
{
    if (app.cfg->norigins && !strcmp(x->method, "OPTIONS") && wire_header_get(x->wr, "Origin") &&
        wire_header_get(x->wr, "Access-Control-Request-Method"))
        return preflight(x, path);
    /* RFC 9110 9.3.2: HEAD is GET without the body; the framework answers it for every GET
     * route (send_reply drops the body, keeps its Content-Length). */
    router_match(x->head ? "GET" : x->method, path, &x->match);
    switch (x->match.kind) {
    case MATCH_NOT_FOUND:
        http_reply_detail(&x->res, 404, "Not Found");
        return answer(x);
    case MATCH_NO_METHOD:
        http_reply_detail(&x->res, 405, "Method Not Allowed");
        http_header_add(&x->res, "Allow", "%s", x->match.allow);
        return answer(x);
    case MATCH_REDIRECT:
        return redirect(x, path, query);
    case MATCH_FOUND:
        break;
    }
    x->req.route = x->match.route;
    if ((x->match.route->auth && !authenticate(x)) ||
        (x->match.route->metrics_token && !metrics_allowed(x)) || !validate(x, query))
        return answer(x);
    if (x->match.route->run == RUN_LOOP) {
        x->match.route->handler(&x->req, NULL, &x->res);
        if (!x->res.status)
            http_reply_detail(&x->res, 500, "Internal Server Error");
        return answer(x);
    }
    return x;
}

exchange *dispatch_request(struct loop *lp, wire_request *wr)
{
    exchange *x = loop_exchange_get(lp);
    x->t0 = now_seconds();
    x->wr = wr;
    x->loop = lp;
    x->method = known_method(wr->method);
    x->head = x->method && !strcmp(x->method, "HEAD");
    set_request_id(x, wire_header_get(wr, "X-Request-ID"));
    x->req.request_id = x->request_id;
    set_origin(x, wire_header_get(wr, "Origin"));
    if (!x->method) {
        x->method = "UNKNOWN";
        http_reply_detail(&x->res, 501, "Not Implemented");
        return answer(x);
    }
    if (!wr->path || !*wr->path) {
        http_reply_detail(&x->res, 404, "Not Found");
        return answer(x);
    }
    return route_request(x, wr->path, wr->query);
}

void dispatch_run(exchange *x)
{
    const route *r = x->req.route;
    log_set_request_id(x->request_id);
    db_session *s = NULL;
    db_error err;
    int rc = 0;
    if (x->auth_retry && !auth_recheck(x)) {
        log_set_request_id(NULL);
        return;
    }
    if (r->run == RUN_READ || r->run == RUN_WRITE) {
        if (db_session_open(app.engine, r->run == RUN_READ ? DB_READ_ONLY : DB_READ_WRITE, &s,
                            &err) < 0) {
            http_reply_db_error(&x->res, &x->req, &err);
            log_set_request_id(NULL);
            return;
        }
    }
    if (r->idempotency_key && x->req.idempotency_key && r->run == RUN_WRITE) {
        idempotency idem; /* the framework's, around the handler (idempotency.h) */
        idempotency_begin(&idem, &x->req, s);
        rc = r->handler(&x->req, s, &x->res);
        idempotency_end(&idem, s, &x->res);
    } else {
        rc = r->handler(&x->req, s, &x->res);
    }
    db_session_close(s); /* always, like a dependency with yield */
    if (rc < 0 || !x->res.status) {
        http_response_reset(&x->res);
        http_reply_json(
            &x->res, 500,
            json_pack("{ss ss}", "detail", "Internal Server Error", "request_id", x->request_id));
    }
    log_set_request_id(NULL);
}

typedef void add_header_fn(void *to, const char *name, const char *value);

/* The response's headers and the cross-cutting ones, each given to add(). */
static void response_headers(const exchange *x, add_header_fn *add, void *to)
{
    const http_response *res = &x->res;
    if (res->body)
        add(to, "Content-Type", res->content_type ? res->content_type : "application/json");
    add(to, "X-Request-ID", x->request_id);
    add(to, "X-Content-Type-Options", "nosniff");
    if (x->cors) {
        add(to, "Access-Control-Allow-Origin", x->origin);
        add(to, "Vary", "Origin");
        add(to, "Access-Control-Expose-Headers",
            "X-Total-Count, X-Request-ID, Location, Retry-After, X-RateLimit-Limit, "
            "X-RateLimit-Remaining, X-RateLimit-Reset");
    }
    for (int i = 0; i < res->nheaders; i++)
        add(to, res->headers[i].name, res->headers[i].value);
}

/* A response head being written: on the stack, on the heap when it outgrows it (a long
 * Location). */
typedef struct head_buf {
    char *p;
    size_t len, cap;
    char stack[2048];
} head_buf;

static void put(head_buf *b, const char *s, size_t n)
{
    if (b->len + n > b->cap) {
        size_t cap = b->cap * 2;
        while (cap < b->len + n)
            cap *= 2;
        char *more = b->p == b->stack ? malloc(cap) : realloc(b->p, cap);
        if (!more) {
            log_error("out of memory");
            abort();
        }
        if (b->p == b->stack)
            memcpy(more, b->stack, b->len);
        b->p = more;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
}

static void put_str(head_buf *b, const char *s)
{
    put(b, s, strlen(s));
}

static void put_num(head_buf *b, size_t n)
{
    char digits[24];
    int i = sizeof digits;
    do
        digits[--i] = (char)('0' + n % 10);
    while (n /= 10);
    put(b, digits + i, sizeof digits - (size_t)i);
}

static void add_head_header(void *to, const char *name, const char *value)
{
    put_str(to, name);
    put(to, ": ", 2);
    put_str(to, value);
    put(to, "\r\n", 2);
}

/* RFC 9110 6.6.1: an origin server with a clock sends Date; formatted once a second. */
static const char *http_date(void)
{
    static _Thread_local time_t at;
    static _Thread_local char text[40];
    time_t now = time(NULL);
    if (now != at) {
        struct tm tm;
        gmtime_r(&now, &tm);
        strftime(text, sizeof text, "%a, %d %b %Y %H:%M:%S GMT", &tm);
        at = now;
    }
    return text;
}

static void send_reply(exchange *x)
{
    head_buf head;
    head.p = head.stack;
    head.len = 0;
    head.cap = sizeof head.stack;
    http_response *res = &x->res;
    put(&head, "HTTP/1.1 ", 9);
    put_num(&head, (size_t)res->status);
    put(&head, " ", 1);
    put_str(&head, http_reason(res->status));
    put(&head, "\r\nDate: ", 8);
    put_str(&head, http_date());
    put(&head, "\r\n", 2);
    response_headers(x, add_head_header, &head);
    /* RFC 9110 8.6: no Content-Length on 1xx, 204, 304; on HEAD, the GET's (9.3.2) */
    bool bodiless = res->status < 200 || res->status == 204 || res->status == 304;
    if (!bodiless) {
        put_str(&head, "Content-Length: ");
        put_num(&head, res->body ? res->body_len : 0);
        put(&head, "\r\n", 2);
    }
    /* HEAD closes the connection: a client that sent it without knowing (`curl -X HEAD`) would
     * otherwise wait for the body; draining: keep-alive clients move to another instance */
    bool close = x->head || server_draining() || wire_closing(x->wr);
    if (close)
        put_str(&head, "Connection: close\r\n");
    else if (x->wr->minor == 0)
        put_str(&head, "Connection: keep-alive\r\n");
    put(&head, "\r\n", 2);
    char *body = NULL;
    size_t len = 0;
    if (!x->head && !bodiless && res->body) {
        body = res->body; /* wire frees it once written */
        len = res->body_len;
        res->body = NULL;
    }
    wire_reply(x->wr, head.p, head.len, body, len, close);
    x->wr = NULL;
    if (head.p != head.stack)
        free(head.p);
}

static void access_log(exchange *x, double seconds)
{
    const route *r = x->match.route;
    log_set_request_id(x->request_id);
    log_kv_field f[] = {
        {.key = "method", .type = LOG_KV_STR, .str = x->method},
        {.key = "route", .type = LOG_KV_STR, .str = r ? r->path : "unmatched"},
        {.key = "status", .type = LOG_KV_INT, .num = x->res.status},
        {.key = "duration_ms", .type = LOG_KV_REAL, .real = seconds * 1000.0},
    };
    log_kv(LOG_LVL_INFO, f, 4, "request");
    log_set_request_id(NULL);
}

/* Debug builds: a reply its route's OpenAPI operation does not document is a bug in the handler
 * or the route table; it becomes a 500 and a log line, so any test that causes it fails. */
static void check_reply(exchange *x)
{
#ifndef NDEBUG
    char why[512];
    if (x->match.route && openapi_check_reply(x->match.route, &x->res, why, sizeof why) < 0) {
        log_set_request_id(x->request_id);
        log_error("the response does not match /openapi.json: %s", why);
        log_set_request_id(NULL);
        http_response_reset(&x->res);
        http_reply_json(&x->res, 500,
                        json_pack("{ss ss}", "detail",
                                  "Internal Server Error: the response does not match "
                                  "/openapi.json",
                                  "request_id", x->request_id));
    }
#else
    (void)x;
#endif
}

/* The access log line and the metrics: before the reply is written, which the client may see at
 * once (a /metrics read right after must count it). */
static void record(exchange *x)
{
    double seconds = now_seconds() - x->t0;
    if (app.cfg->access_log && log_enabled(LOG_LVL_INFO))
        access_log(x, seconds);
    metrics_observe(x->match.index, x->res.status, seconds);
}

/* After the reply: x emptied. */
static void release(exchange *x)
{
    json_decref(x->req.body);
    free(x->auth_retry); /* set when validation answered before the handler ran */
    free(x->query);
    router_match_free(&x->match);
    http_response_reset(&x->res);
}

void dispatch_finish(exchange *x)
{
    check_reply(x);
    record(x);
    send_reply(x);
    release(x);
    loop_exchange_put(x->loop, x);
}

static void add_raw_header(void *to, const char *name, const char *value)
{
    fprintf(to, "%s: %s\r\n", name, value);
}

char *dispatch_head(void *owner, const wire_head *h, size_t *len)
{
    if (h->target[0] != '/') /* absolute-form and the like: dispatch_request decides */
        return NULL;
    exchange *x = loop_exchange_get(owner);
    x->t0 = now_seconds();
    x->loop = owner;
    x->method = h->method;
    char *path = strndup(h->target, strcspn(h->target, "?#"));
    if (path)
        router_match(h->method, path, &x->match);
    bool routed = path && x->match.kind == MATCH_FOUND;
    free(path);
    const char *why = NULL;
    int rc = routed && x->match.route->auth
                 ? auth_verify(loop_auth_cache(owner), h->authorization, x->user_id, &why)
                 : AUTH_REFRESHING;
    char *text = NULL;
    if (rc != AUTH_REFRESHING) { /* a kid not known yet: judged after the body, as before */
        set_request_id(x, h->request_id);
        set_origin(x, h->origin);
        if (!auth_verdict(x, rc, why, h->authorization != NULL)) {
            check_reply(x);
            FILE *f = open_memstream(&text, len);
            if (f) {
                fprintf(f, "HTTP/1.1 %d %s\r\n", x->res.status, http_reason(x->res.status));
                response_headers(x, add_raw_header, f);
                fprintf(f, "Content-Length: %zu\r\nConnection: close\r\n\r\n", x->res.body_len);
                fwrite(x->res.body, 1, x->res.body_len, f);
                if (fclose(f) != 0) {
                    free(text);
                    text = NULL;
                }
            }
        }
    }
    if (text)
        record(x), release(x);
    else
        router_match_free(&x->match), http_response_reset(&x->res);
    loop_exchange_put(owner, x);
    return text;
}
