/* dispatch: what happens to one request, in the order FastAPI does it: routing (404, 405, 307,
 * CORS preflight), limits (413, 431), the bearer token (401) and its owner (403), then validation
 * (422) of path, query, header and body, all at once; then the handler, inline or in a coroutine
 * with its session; then the reply with the cross-cutting headers, one access-log line and the
 * metrics.
 */
#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/util.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <sys/queue.h>
#include <sys/random.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

static const char *method_name(enum evhttp_cmd_type cmd)
{
    switch (cmd) {
    case EVHTTP_REQ_GET:
        return "GET";
    case EVHTTP_REQ_POST:
        return "POST";
    case EVHTTP_REQ_HEAD:
        return "HEAD";
    case EVHTTP_REQ_PUT:
        return "PUT";
    case EVHTTP_REQ_DELETE:
        return "DELETE";
    case EVHTTP_REQ_OPTIONS:
        return "OPTIONS";
    case EVHTTP_REQ_TRACE:
        return "TRACE";
    case EVHTTP_REQ_CONNECT:
        return "CONNECT";
    case EVHTTP_REQ_PATCH:
        return "PATCH";
    default:
        return "UNKNOWN";
    }
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

static size_t headers_size(struct evhttp_request *ev)
{
    size_t n = strlen(evhttp_request_get_uri(ev)) + 16;
    for (struct evkeyval *h = TAILQ_FIRST(evhttp_request_get_input_headers(ev)); h;
         h = TAILQ_NEXT(h, next))
        n += strlen(h->key) + strlen(h->value) + 4;
    return n;
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

/* The framing headers libevent 2.1.12 read the body by, checked after the fact (it has no hook
 * before): it took the first of two Content-Length values, digits after a '+', and read no body
 * for a Transfer-Encoding other than "chunked" alone, leaving the chunks to be parsed as the next
 * request. A front proxy that framed the message the other way would let a second request be
 * smuggled past it. Returns the status to answer (the connection then closes), or 0.
 *  - RFC 9110 8.6: Content-Length = 1*DIGIT; several fields with the same value may be taken as
 *    one, different values are an error;
 *  - RFC 9112 6.3 (5): an invalid Content-Length is an unrecoverable error: 400, then close;
 *  - RFC 9112 6.1: Transfer-Encoding with Content-Length: 400 and close (libevent does; checked
 *    again here); a transfer coding the server does not understand: 501. */
static int framing_error(struct evkeyvalq *in, const char **why)
{
    const char *length = NULL, *coding = NULL;
    for (struct evkeyval *h = TAILQ_FIRST(in); h; h = TAILQ_NEXT(h, next)) {
        if (!evutil_ascii_strcasecmp(h->key, "Content-Length")) {
            size_t n = strlen(h->value);
            if (!n || strspn(h->value, "0123456789") != n) {
                *why = "Invalid Content-Length";
                return 400;
            }
            if (length && strcmp(length, h->value)) {
                *why = "Conflicting Content-Length";
                return 400;
            }
            length = h->value;
        } else if (!evutil_ascii_strcasecmp(h->key, "Transfer-Encoding")) {
            if (coding || evutil_ascii_strcasecmp(h->value, "chunked")) {
                *why = "Unsupported Transfer-Encoding";
                return 501;
            }
            coding = h->value;
        }
    }
    if (length && coding) {
        *why = "Content-Length with Transfer-Encoding";
        return 400;
    }
    return 0;
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
static bool metrics_allowed(exchange *x, struct evkeyvalq *in)
{
    const char *want = app.cfg->metrics_token;
    if (!want) {
        if (app.cfg->env == APP_ENV_DEVELOPMENT)
            return true;
        http_reply_detail(&x->res, 404, "Not Found");
        return false;
    }
    const char *authz = evhttp_find_header(in, "Authorization");
    size_t n = strlen(want);
    if (authz && !evutil_ascii_strncasecmp(authz, "Bearer ", 7) && strlen(authz + 7) == n &&
        !CRYPTO_memcmp(authz + 7, want, n))
        return true;
    http_reply_detail(&x->res, 401, authz ? "Could not validate credentials" : "Not authenticated");
    http_header_add(&x->res, "WWW-Authenticate", "Bearer");
    return false;
}

static bool authenticate(exchange *x, struct evkeyvalq *in)
{
    const char *why;
    const char *authz = evhttp_find_header(in, "Authorization");
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
static bool validate(exchange *x, const char *query, struct evkeyvalq *in)
{
    const route *r = x->match.route;
    json_t *errors = json_array();
    parse_query(x, query);
    for (int i = 0; r->params && r->params[i].name; i++) {
        const param_spec *p = &r->params[i];
        const char *raw = p->in == PARAM_PATH ? x->match.segments[i] : query_value(x, p->name);
        validate_param(p, raw, &x->req.values[i], errors);
    }
    const char *key = r->idempotency_key ? evhttp_find_header(in, "Idempotency-Key") : NULL;
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
    if (r->body) {
        struct evbuffer *buf = evhttp_request_get_input_buffer(x->ev);
        size_t len = evbuffer_get_length(buf);
        const char *data = len ? (const char *)evbuffer_pullup(buf, -1) : "";
        x->req.body = validate_body(r->body, data, len, errors);
    }
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
    struct evkeyvalq *in = evhttp_request_get_input_headers(x->ev);
    if (app.cfg->norigins && !strcmp(x->method, "OPTIONS") && evhttp_find_header(in, "Origin") &&
        evhttp_find_header(in, "Access-Control-Request-Method"))
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
    if ((x->match.route->auth && !authenticate(x, in)) ||
        (x->match.route->metrics_token && !metrics_allowed(x, in)) || !validate(x, query, in))
        return answer(x);
    if (x->match.route->run == RUN_LOOP) {
        x->match.route->handler(&x->req, NULL, &x->res);
        if (!x->res.status)
            http_reply_detail(&x->res, 500, "Internal Server Error");
        return answer(x);
    }
    return x;
}

exchange *dispatch_request(struct loop *lp, struct evhttp_request *ev)
{
    exchange *x = loop_exchange_get(lp);
    x->t0 = now_seconds();
    x->ev = ev;
    x->loop = lp;
    x->method = method_name(evhttp_request_get_command(ev));
    x->head = evhttp_request_get_command(ev) == EVHTTP_REQ_HEAD;
    struct evkeyvalq *in = evhttp_request_get_input_headers(ev);
    set_request_id(x, evhttp_find_header(in, "X-Request-ID"));
    x->req.request_id = x->request_id;
    set_origin(x, evhttp_find_header(in, "Origin"));
    const char *why;
    int bad = framing_error(in, &why);
    if (bad) {
        http_reply_detail(&x->res, bad, why);
        http_header_add(&x->res, "Connection", "close");
        return answer(x);
    }
    if (headers_size(ev) > (size_t)app.cfg->max_header_bytes) {
        http_reply_detail(&x->res, 431, "Request Header Fields Too Large");
        return answer(x);
    }
    if (evbuffer_get_length(evhttp_request_get_input_buffer(ev)) >
        (size_t)app.cfg->max_body_bytes) {
        http_reply_detail(&x->res, 413, "Content Too Large");
        return answer(x);
    }
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(ev);
    const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
    if (!path || !*path) {
        http_reply_detail(&x->res, 404, "Not Found");
        return answer(x);
    }
    return route_request(x, path, evhttp_uri_get_query(uri));
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

static void free_body(const void *data, size_t len, void *arg)
{
    (void)len, (void)arg;
    free((void *)data);
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

static void add_evhttp_header(void *to, const char *name, const char *value)
{
    evhttp_add_header(to, name, value);
}

static void send_reply(exchange *x)
{
    http_response *res = &x->res;
    struct evkeyvalq *out = evhttp_request_get_output_headers(x->ev);
    response_headers(x, add_evhttp_header, out);
    if (server_draining()) /* keep-alive clients move to another instance */
        evhttp_add_header(out, "Connection", "close");
    struct evbuffer *buf = NULL;
    if (x->head) {
        /* RFC 9110 9.3.2, 8.6: the GET's headers, Content-Length included, and no body (libevent
         * 2.1 would send the body and no length). The connection then closes: a client that
         * sent HEAD without knowing it (`curl -X HEAD`) would otherwise wait for the body. */
        char len[24];
        snprintf(len, sizeof len, "%zu", res->body ? res->body_len : (size_t)0);
        if (res->status != 204 && res->status != 304)
            evhttp_add_header(out, "Content-Length", len);
        evhttp_add_header(out, "Connection", "close");
    } else if (res->body && res->status != 204 && res->status != 304) {
        buf = loop_buffer(x->loop);
        /* zero-copy: the buffer frees the body once written */
        if (evbuffer_add_reference(buf, res->body, res->body_len, free_body, NULL) == 0)
            res->body = NULL;
    }
    wire_request_answered(x->ev);
    evhttp_send_reply(x->ev, res->status, http_reason(res->status), buf);
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

/* After the reply went out: the access log line, the metrics, and x emptied. */
static void after_reply(exchange *x)
{
    double seconds = now_seconds() - x->t0;
    if (app.cfg->access_log && log_enabled(LOG_LVL_INFO))
        access_log(x, seconds);
    metrics_observe(x->match.index, x->res.status, seconds);
    json_decref(x->req.body);
    free(x->auth_retry); /* set when validation answered before the handler ran */
    free(x->query);
    router_match_free(&x->match);
    http_response_reset(&x->res);
}

void dispatch_finish(exchange *x)
{
    check_reply(x);
    send_reply(x);
    after_reply(x);
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
        after_reply(x);
    else
        router_match_free(&x->match), http_response_reset(&x->res);
    loop_exchange_put(owner, x);
    return text;
}
