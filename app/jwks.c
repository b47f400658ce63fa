/* jwks: see jwks.h. */
#include "app/jwks.h"

#include <curl/curl.h>
#include <jansson.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/param_build.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/coro.h"
#include "core/log.h"

int jwks_alg_from_name(const char *name)
{
    static const struct {
        const char *name;
        int alg;
    } names[] = {{"HS256", JWKS_ALG_HS256},
                 {"EdDSA", JWKS_ALG_EDDSA},
                 {"ES256", JWKS_ALG_ES256},
                 {"RS256", JWKS_ALG_RS256},
                 {"PS256", JWKS_ALG_PS256}};
    for (size_t i = 0; name && i < sizeof names / sizeof *names; i++)
        if (!strcmp(name, names[i].name))
            return names[i].alg;
    return 0;
}

long jwks_b64url_decode(const char *in, size_t len, unsigned char *out, size_t outcap)
{
    unsigned acc = 0;
    int bits = 0;
    size_t n = 0;
    if (len % 4 == 1)
        return -1;
    for (size_t i = 0; i < len; i++) {
        int c = (unsigned char)in[i], v;
        if (c >= 'A' && c <= 'Z')
            v = c - 'A';
        else if (c >= 'a' && c <= 'z')
            v = c - 'a' + 26;
        else if (c >= '0' && c <= '9')
            v = c - '0' + 52;
        else if (c == '-')
            v = 62;
        else if (c == '_')
            v = 63;
        else
            return -1;
        acc = (acc << 6) | (unsigned)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (n == outcap)
                return -1;
            out[n++] = (unsigned char)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    return (long)n;
}

/* ---- key sets ---- */

static atomic_ulong next_serial = 1;

void jwks_release(jwks_set *set)
{
    if (!set || atomic_fetch_sub((atomic_int *)&set->refs, 1) != 1)
        return;
    for (int i = 0; i < set->nkeys; i++) {
        free(set->keys[i].kid);
        EVP_PKEY_free(set->keys[i].pkey);
    }
    free(set);
}

/* A base64url member of a JWK into out; returns its length or -1. */
static const char *member_str(json_t *jwk, const char *name)
{
    const char *s = json_string_value(json_object_get(jwk, name));
    return s ? s : "";
}

static long member_bytes(json_t *jwk, const char *name, unsigned char *out, size_t cap)
{
    const char *s = json_string_value(json_object_get(jwk, name));
    return s ? jwks_b64url_decode(s, strlen(s), out, cap) : -1;
}

static EVP_PKEY *from_params(const char *type, OSSL_PARAM_BLD *bld)
{
    EVP_PKEY *pkey = NULL;
    OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(bld);
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);
    if (params && ctx && EVP_PKEY_fromdata_init(ctx) == 1)
        EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params);
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    if (pkey) { /* an EC point off the curve is refused here */
        EVP_PKEY_CTX *check = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);
        if (!check || EVP_PKEY_public_check(check) != 1) {
            EVP_PKEY_free(pkey);
            pkey = NULL;
        }
        EVP_PKEY_CTX_free(check);
    }
    return pkey;
}

static EVP_PKEY *ec_key(json_t *jwk, const char **why)
{
    unsigned char point[65];
    point[0] = 4; /* uncompressed: 04 || x || y */
    if (strcmp(member_str(jwk, "crv"), "P-256")) {
        *why = "EC curve is not P-256";
        return NULL;
    }
    if (member_bytes(jwk, "x", point + 1, 32) != 32 ||
        member_bytes(jwk, "y", point + 33, 32) != 32) {
        *why = "EC x/y are not 32 bytes of base64url";
        return NULL;
    }
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    EVP_PKEY *pkey = NULL;
    if (bld && OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, "P-256", 0) &&
        OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, point, sizeof point))
        pkey = from_params("EC", bld);
    OSSL_PARAM_BLD_free(bld);
    if (!pkey)
        *why = "EC point is not on P-256";
    return pkey;
}

static EVP_PKEY *rsa_key(json_t *jwk, const char **why)
{
    unsigned char n[1024], e[16];
    long nlen = member_bytes(jwk, "n", n, sizeof n), elen = member_bytes(jwk, "e", e, sizeof e);
    if (nlen < 256 || elen < 1) { /* RSA below 2048 bits is not a signature key any more */
        *why = nlen < 0 || elen < 1 ? "RSA n/e are not base64url" : "RSA key below 2048 bits";
        return NULL;
    }
    BIGNUM *bn = BN_bin2bn(n, (int)nlen, NULL), *be = BN_bin2bn(e, (int)elen, NULL);
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    EVP_PKEY *pkey = NULL;
    if (bn && be && bld && BN_num_bits(bn) >= 2048 &&
        OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn) &&
        OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, be))
        pkey = from_params("RSA", bld);
    OSSL_PARAM_BLD_free(bld);
    BN_free(bn);
    BN_free(be);
    if (!pkey)
        *why = "RSA key is malformed or below 2048 bits";
    return pkey;
}

/* One JWK into k. Returns 0, or -1 with a reason. */
static int parse_key(json_t *jwk, jwks_key *k, const char **why)
{
    const char *kty = json_string_value(json_object_get(jwk, "kty"));
    const char *use = json_string_value(json_object_get(jwk, "use"));
    const char *alg = json_string_value(json_object_get(jwk, "alg"));
    json_t *kid = json_object_get(jwk, "kid");
    if (!json_is_object(jwk) || !kty)
        return *why = "not a JWK (no kty)", -1;
    if (use && strcmp(use, "sig"))
        return *why = "its use is not \"sig\"", -1;
    if (kid && (!json_is_string(kid) || !json_string_length(kid)))
        return *why = "kid is not a string", -1;
    if (!strcmp(kty, "OKP")) {
        unsigned char x[32];
        if (strcmp(member_str(jwk, "crv"), "Ed25519"))
            return *why = "OKP curve is not Ed25519", -1;
        if (member_bytes(jwk, "x", x, sizeof x) != 32)
            return *why = "Ed25519 x is not 32 bytes of base64url", -1;
        k->kty = JWKS_KTY_OKP;
        k->algs = JWKS_ALG_EDDSA;
        k->pkey = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, x, sizeof x);
    } else if (!strcmp(kty, "EC")) {
        k->kty = JWKS_KTY_EC;
        k->algs = JWKS_ALG_ES256;
        k->pkey = ec_key(jwk, why);
    } else if (!strcmp(kty, "RSA")) {
        k->kty = JWKS_KTY_RSA;
        k->algs = JWKS_ALG_RS256 | JWKS_ALG_PS256;
        k->pkey = rsa_key(jwk, why);
    } else {
        return *why = "unsupported kty", -1;
    }
    if (!k->pkey) {
        if (k->kty == JWKS_KTY_OKP)
            *why = "bad Ed25519 key";
        return -1;
    }
    if (alg) { /* a JWK that names its algorithm verifies only that one */
        k->algs &= jwks_alg_from_name(alg);
        if (!k->algs) {
            EVP_PKEY_free(k->pkey);
            k->pkey = NULL;
            return *why = "its alg does not fit its kty", -1;
        }
    }
    k->kid = kid ? strdup(json_string_value(kid)) : NULL;
    return 0;
}

static bool same_key(const jwks_key *a, const jwks_key *b)
{
    return a->kty == b->kty && a->algs == b->algs &&
           ((!a->kid && !b->kid) || (a->kid && b->kid && !strcmp(a->kid, b->kid))) &&
           EVP_PKEY_eq(a->pkey, b->pkey) == 1;
}

jwks_set *jwks_parse(const char *json, size_t len, const jwks_set *prev, char *err, size_t errlen)
{
    json_error_t jerr;
    json_t *doc = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
    json_t *keys = json_object_get(doc, "keys");
    if (!json_is_array(keys)) {
        snprintf(err, errlen, doc ? "no \"keys\" array" : "not JSON (%s)", jerr.text);
        json_decref(doc);
        return NULL;
    }
    size_t n = json_array_size(keys);
    if (n > 100)
        n = 100; /* a key set, not a phone book */
    jwks_set *set = calloc(1, sizeof *set + n * sizeof(jwks_key));
    if (!set) {
        snprintf(err, errlen, "out of memory");
        json_decref(doc);
        return NULL;
    }
    set->refs = 1;
    for (size_t i = 0; i < n; i++) {
        const char *why = "malformed";
        jwks_key *k = &set->keys[set->nkeys];
        if (parse_key(json_array_get(keys, i), k, &why) < 0) {
            log_warn("JWKS key %zu skipped: %s", i, why);
            memset(k, 0, sizeof *k);
            continue;
        }
        k->serial = atomic_fetch_add(&next_serial, 1);
        for (int j = 0; prev && j < prev->nkeys; j++)
            if (same_key(k, &prev->keys[j]))
                k->serial = prev->keys[j].serial;
        set->nkeys++;
    }
    json_decref(doc);
    if (!set->nkeys &&
        n) { /* (an empty set is an answer: Better Auth makes its first key lazily) */
        snprintf(err, errlen, "no usable signature key in %zu", json_array_size(keys));
        jwks_release(set);
        return NULL;
    }
    return set;
}

const jwks_key *jwks_find(const jwks_set *set, const char *kid, int alg)
{
    const jwks_key *found = NULL;
    for (int i = 0; set && i < set->nkeys; i++) {
        const jwks_key *k = &set->keys[i];
        if (kid) {
            if (k->kid && !strcmp(k->kid, kid))
                return (k->algs & alg) ? k : NULL;
        } else if (k->algs & alg) {
            if (found)
                return NULL; /* ambiguous without kid: refuse rather than try each */
            found = k;
        }
    }
    return found;
}

/* ---- the fetcher ---- */

static struct {
    pthread_mutex_t mu;
    pthread_cond_t cond;
    pthread_t thread;
    bool started, stop, asked, fetching;
    jwks_config cfg;
    jwks_set *set;           /* under mu */
    atomic_ulong generation; /* bumped when set changes */
    unsigned long done;      /* fetch attempts finished, under mu */
    double last_attempt;     /* coro_now() of the last fetch start; 0: none */
    double next_due;         /* when the next scheduled fetch runs */
    int failures_in_row;
    struct waiter *waiters; /* under mu */
    int nwaiting;           /* requests parked in jwks_wait, under mu */
    atomic_ulong fetches, failures;
    atomic_int nkeys;
} J = {.mu = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};

typedef struct waiter {
    coro_parker parker;
    struct waiter *next;
} waiter;

typedef struct {
    char *data;
    size_t len;
    long cap;
    bool too_big;
} body;

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *arg)
{
    body *b = arg;
    size_t n = size * nmemb;
    if ((long)(b->len + n) > b->cap) {
        b->too_big = true;
        return 0; /* aborts the transfer */
    }
    char *grown = realloc(b->data, b->len + n + 1);
    if (!grown)
        return 0;
    memcpy(grown + b->len, ptr, n);
    b->data = grown;
    b->len += n;
    b->data[b->len] = '\0';
    return n;
}

static int on_progress(void *arg, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
    (void)arg, (void)dt, (void)dn, (void)ut, (void)un;
    pthread_mutex_lock(&J.mu);
    bool stop = J.stop;
    pthread_mutex_unlock(&J.mu);
    return stop; /* non-zero aborts */
}

/* One fetch; returns a new set or NULL (logged). Runs without the lock. */
static jwks_set *fetch(CURL *curl, const jwks_set *prev)
{
    body b = {.cap = J.cfg.max_bytes};
    char err[CURL_ERROR_SIZE] = "";
    long status = 0;
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, err);
    CURLcode rc = curl_easy_perform(curl);
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    jwks_set *set = NULL;
    char why[256];
    if (b.too_big)
        log_warn("JWKS fetch from %s failed: body larger than %ld bytes", J.cfg.url, b.cap);
    else if (rc != CURLE_OK)
        log_warn("JWKS fetch from %s failed: %s", J.cfg.url, *err ? err : curl_easy_strerror(rc));
    else if (status != 200)
        log_warn("JWKS fetch from %s failed: HTTP status %ld", J.cfg.url, status);
    else if (!(set = jwks_parse(b.data ? b.data : "", b.len, prev, why, sizeof why)))
        log_warn("JWKS from %s refused: %s", J.cfg.url, why);
    free(b.data);
    return set;
}

static double backoff(void)
{
    double d = J.cfg.min_refresh > 1 ? J.cfg.min_refresh : 1;
    for (int i = 1; i < J.failures_in_row && d < 60; i++)
        d *= 2;
    return d < J.cfg.ttl ? d : J.cfg.ttl;
}

static void wait_until(double when)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    double delta = when - coro_now();
    if (delta <= 0)
        return;
    if (delta > 3600)
        delta = 3600;
    ts.tv_sec += (time_t)delta;
    ts.tv_nsec += (long)((delta - (double)(time_t)delta) * 1e9);
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_cond_timedwait(&J.cond, &J.mu, &ts);
}

static void *fetcher(void *arg)
{
    (void)arg;
    CURL *curl = curl_easy_init();
    if (!curl) {
        log_error("JWKS: could not create a libcurl handle; tokens from %s cannot be verified",
                  J.cfg.url);
        return NULL;
    }
    curl_easy_setopt(curl, CURLOPT_URL, J.cfg.url);
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, (long)(J.cfg.timeout * 1000));
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, (long)(J.cfg.timeout * 1000));
    curl_easy_setopt(curl, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)J.cfg.max_bytes);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(curl, CURLOPT_USERAGENT, "neon-todo-api/" NEON_TODO_VERSION);
    struct curl_slist *hdrs = curl_slist_append(NULL, "Accept: application/json");
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, hdrs);
    pthread_mutex_lock(&J.mu);
    while (!J.stop) {
        double now = coro_now();
        bool asked_ok = J.asked && now >= J.last_attempt + J.cfg.min_refresh;
        if (!asked_ok && now < J.next_due) {
            double when = J.next_due;
            if (J.asked && J.last_attempt + J.cfg.min_refresh < when)
                when = J.last_attempt + J.cfg.min_refresh;
            wait_until(when);
            continue;
        }
        J.asked = false;
        J.fetching = true;
        J.last_attempt = now;
        jwks_set *prev = J.set;
        if (prev)
            atomic_fetch_add((atomic_int *)&prev->refs, 1);
        pthread_mutex_unlock(&J.mu);
        atomic_fetch_add(&J.fetches, 1);
        jwks_set *fresh = fetch(curl, prev);
        jwks_release(prev);
        pthread_mutex_lock(&J.mu);
        J.fetching = false;
        J.done++;
        if (fresh) {
            jwks_set *old = J.set;
            J.set = fresh;
            atomic_store(&J.nkeys, fresh->nkeys);
            atomic_fetch_add(&J.generation, 1);
            if (!old || J.failures_in_row)
                log_info("JWKS from %s: %d key(s)", J.cfg.url, fresh->nkeys);
            J.failures_in_row = 0;
            J.next_due = coro_now() + J.cfg.ttl;
            jwks_release(old);
        } else {
            atomic_fetch_add(&J.failures, 1);
            J.failures_in_row++;
            J.next_due = coro_now() + backoff(); /* the last good set stays */
        }
        for (waiter *w = J.waiters; w; w = w->next)
            coro_unpark(&w->parker);
        J.waiters = NULL;
    }
    for (waiter *w = J.waiters; w; w = w->next)
        coro_unpark(&w->parker);
    J.waiters = NULL;
    pthread_mutex_unlock(&J.mu);
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(curl);
    return NULL;
}

int jwks_start(const jwks_config *cfg)
{
    if (J.started)
        return 0;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return -1;
    J.cfg = *cfg;
    J.cfg.url = strdup(cfg->url);
    J.stop = J.asked = J.fetching = false;
    J.last_attempt = -1e9;
    J.next_due = 0;
    J.failures_in_row = 0;
    if (!J.cfg.url || pthread_create(&J.thread, NULL, fetcher, NULL) != 0) {
        free((char *)J.cfg.url);
        J.cfg.url = NULL;
        return -1;
    }
    J.started = true;
    return 0;
}

void jwks_stop(void)
{
    if (!J.started)
        return;
    pthread_mutex_lock(&J.mu);
    J.stop = true;
    pthread_cond_signal(&J.cond);
    pthread_mutex_unlock(&J.mu);
    pthread_join(J.thread, NULL);
    pthread_mutex_lock(&J.mu);
    jwks_release(J.set);
    J.set = NULL;
    atomic_fetch_add(&J.generation, 1);
    J.started = false;
    pthread_mutex_unlock(&J.mu);
    free((char *)J.cfg.url);
    J.cfg.url = NULL;
    curl_global_cleanup();
}

bool jwks_enabled(void)
{
    return J.started;
}

jwks_set *jwks_acquire(void)
{
    pthread_mutex_lock(&J.mu);
    jwks_set *set = J.set;
    if (set)
        atomic_fetch_add((atomic_int *)&set->refs, 1);
    pthread_mutex_unlock(&J.mu);
    return set;
}

unsigned long jwks_generation(void)
{
    return atomic_load(&J.generation);
}

bool jwks_serial_live(unsigned long serial)
{
    bool live = false;
    pthread_mutex_lock(&J.mu);
    for (int i = 0; J.set && i < J.set->nkeys && !live; i++)
        live = J.set->keys[i].serial == serial;
    pthread_mutex_unlock(&J.mu);
    return live;
}

/* Requests that may wait for one fetch at once: a slow auth server and made-up kids must not
 * hold every handler. The others are answered at once (401 for an unknown kid). */
#define MAX_WAITING 16

bool jwks_request_refresh(void)
{
    if (!J.started)
        return false;
    pthread_mutex_lock(&J.mu);
    bool ok = J.fetching || J.asked || coro_now() >= J.last_attempt + J.cfg.min_refresh;
    if (ok && !J.fetching && !J.asked) {
        J.asked = true;
        pthread_cond_signal(&J.cond);
    }
    ok = ok && J.nwaiting < MAX_WAITING;
    pthread_mutex_unlock(&J.mu);
    return ok;
}

void jwks_wait(void)
{
    if (!J.started)
        return;
    double deadline = coro_now() + J.cfg.timeout + 1;
    waiter w = {.next = NULL};
    coro_parker_init(&w.parker);
    pthread_mutex_lock(&J.mu);
    unsigned long start = J.done;
    /* counted here, under the lock that admits: jwks_request_refresh's check is only a first
     * filter (requests of several loops may pass it together before any of them waits) */
    if ((J.fetching || J.asked) && J.nwaiting < MAX_WAITING) {
        w.next = J.waiters;
        J.waiters = &w;
        J.nwaiting++;
        while (J.done == start && !J.stop)
            if (coro_park(&w.parker, &J.mu, deadline))
                break;
        for (waiter **p = &J.waiters; *p; p = &(*p)->next)
            if (*p == &w) { /* timed out: still listed */
                *p = w.next;
                break;
            }
        J.nwaiting--;
    }
    pthread_mutex_unlock(&J.mu);
    coro_parker_destroy(&w.parker);
}

int jwks_retry_after(void)
{
    pthread_mutex_lock(&J.mu);
    double s = J.fetching ? 1 : J.next_due - coro_now();
    pthread_mutex_unlock(&J.mu);
    return s < 1 ? 1 : s > 3600 ? 3600 : (int)(s + 0.999);
}

void jwks_metrics(FILE *f)
{
    if (!J.started)
        return;
    fprintf(f,
            "# HELP auth_jwks_fetches_total JWKS fetch attempts.\n"
            "# TYPE auth_jwks_fetches_total counter\nauth_jwks_fetches_total %lu\n"
            "# HELP auth_jwks_fetch_failures_total JWKS fetches that failed (the last good key "
            "set stays).\n"
            "# TYPE auth_jwks_fetch_failures_total counter\nauth_jwks_fetch_failures_total %lu\n"
            "# HELP auth_jwks_keys Signature keys in the current key set (0: none fetched yet).\n"
            "# TYPE auth_jwks_keys gauge\nauth_jwks_keys %d\n",
            atomic_load(&J.fetches), atomic_load(&J.failures), atomic_load(&J.nkeys));
}
