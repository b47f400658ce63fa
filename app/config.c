/* config: see config.h. */
#include "app/config.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/resource.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "app/auth.h"
#include "app/jwks.h"
#include "app/settings.h"
#include "core/env.h"
#include "db/url.h"

static int load_secret(app_config *cfg, char *e)
{
    const char *name = "JWT_SECRET";
    cfg->jwt_secret = env_str("JWT_SECRET", NULL);
    if (!cfg->jwt_secret) {
        name = "BETTER_AUTH_SECRET";
        cfg->jwt_secret = env_str("BETTER_AUTH_SECRET", NULL);
    }
    cfg->jwt_generated = false;
    if (cfg->jwt_secret && strlen(cfg->jwt_secret) >= 32)
        return 0;
    if (!cfg->jwt_secret && cfg->jwks_url && cfg->env != APP_ENV_DEVELOPMENT)
        return 0; /* JWKS tokens only */
    if (cfg->env != APP_ENV_DEVELOPMENT) {
        if (cfg->jwt_secret)
            snprintf(e, ENV_ERR_LEN,
                     "%s must be at least 32 bytes long (got %zu); generate one with "
                     "`openssl rand -hex 32`",
                     name, strlen(cfg->jwt_secret));
        else
            snprintf(e, ENV_ERR_LEN,
                     "JWT_SECRET is not set (nor BETTER_AUTH_SECRET, nor AUTH_JWKS_URL): set "
                     "AUTH_JWKS_URL to your auth server's JWKS, or JWT_SECRET (`openssl rand "
                     "-hex 32`), or APP_ENV=development");
        return -1;
    }
    if (cfg->jwt_secret) /* short secret in development: allowed, the frontend's may be short */
        return 0;
    if (auth_generate_secret(cfg->generated) < 0) {
        snprintf(e, ENV_ERR_LEN, "could not generate a JWT secret");
        return -1;
    }
    cfg->jwt_secret = cfg->generated;
    cfg->jwt_generated = true;
    return 0;
}

/* The host curl parsed out of the URL names this machine: "localhost", an IPv4 address in
 * 127.0.0.0/8, or ::1, compared whole. A prefix would let http://127.0.0.1.attacker.example/
 * through (a name anyone can point anywhere). */
static bool loopback(const char *host)
{
    if (!strcasecmp(host, "localhost"))
        return true;
    struct in_addr a4;
    if (inet_pton(AF_INET, host, &a4) == 1)
        return (ntohl(a4.s_addr) >> 24) == 127;
    char buf[64];
    size_t n = strlen(host);
    if (n >= 2 && n < sizeof buf && host[0] == '[' && host[n - 1] == ']') {
        memcpy(buf, host + 1, n - 2);
        buf[n - 2] = '\0';
        host = buf;
    }
    struct in6_addr a6;
    return inet_pton(AF_INET6, host, &a6) == 1 && IN6_IS_ADDR_LOOPBACK(&a6);
}

/* AUTH_JWKS_URL: an absolute http(s) URL with a host; plain http only to this machine or in
 * development (the keys decide who is who: they must not be open to a man in the middle). */
static int check_jwks_url(const app_config *cfg, char *e)
{
    const char *url = cfg->jwks_url;
    bool https = !strncasecmp(url, "https://", 8);
    if (!https && strncasecmp(url, "http://", 7)) {
        snprintf(e, ENV_ERR_LEN,
                 "AUTH_JWKS_URL must be an http(s) URL like "
                 "https://auth.example.com/api/auth/jwks, got \"%.80s\"",
                 url);
        return -1;
    }
    CURLU *u = curl_url();
    char *host = NULL;
    int rc = -1;
    if (!u || curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK || !host || !*host)
        snprintf(e, ENV_ERR_LEN, "AUTH_JWKS_URL is not a valid URL: \"%.80s\"", url);
    else if (!https && !loopback(host) && cfg->env != APP_ENV_DEVELOPMENT)
        snprintf(e, ENV_ERR_LEN,
                 "AUTH_JWKS_URL must use https:// (plain http:// only to localhost, or with "
                 "APP_ENV=development), got \"%.80s\"",
                 url);
    else
        rc = 0;
    curl_free(host);
    curl_url_cleanup(u);
    return rc;
}

static int load_algorithms(app_config *cfg, char *e)
{
    const char *raw = env_str("AUTH_ALGORITHMS", "EdDSA,ES256,RS256,PS256,HS256");
    char buf[256];
    if (strlen(raw) >= sizeof buf) {
        snprintf(e, ENV_ERR_LEN, "AUTH_ALGORITHMS is too long");
        return -1;
    }
    strcpy(buf, raw);
    cfg->auth_algs = 0;
    char *save = NULL;
    for (char *tok = strtok_r(buf, ", ", &save); tok; tok = strtok_r(NULL, ", ", &save)) {
        int alg = jwks_alg_from_name(tok);
        if (!alg) {
            snprintf(e, ENV_ERR_LEN,
                     "AUTH_ALGORITHMS: \"%.40s\" is not one of EdDSA, ES256, RS256, PS256, HS256",
                     tok);
            return -1;
        }
        cfg->auth_algs |= alg;
    }
    if (!cfg->auth_algs) {
        snprintf(e, ENV_ERR_LEN, "AUTH_ALGORITHMS lists no algorithm");
        return -1;
    }
    return 0;
}

/* The identity provider's settings; AUTH_ISSUER/AUTH_AUDIENCE also apply to HS256 tokens. */
static int load_auth(app_config *cfg, char *e)
{
    cfg->jwks_url = env_str("AUTH_JWKS_URL", NULL);
    cfg->auth_issuer = env_str("AUTH_ISSUER", NULL);
    cfg->auth_audience = env_str("AUTH_AUDIENCE", NULL);
    if (env_int("AUTH_LEEWAY", AUTH_LEEWAY, 0, 300, &cfg->auth_leeway, e) < 0 ||
        env_seconds("AUTH_JWKS_CACHE_TTL", 300, 1, 86400, &cfg->jwks_ttl, e) < 0 ||
        env_seconds("AUTH_JWKS_MIN_REFRESH", 10, 0.1, 3600, &cfg->jwks_min_refresh, e) < 0 ||
        env_seconds("AUTH_JWKS_TIMEOUT", 5, 0.1, 60, &cfg->jwks_timeout, e) < 0 ||
        load_algorithms(cfg, e) < 0)
        return -1;
    if (cfg->jwks_url && check_jwks_url(cfg, e) < 0)
        return -1;
    int asym = cfg->auth_algs & ~JWKS_ALG_HS256;
    if (!cfg->jwks_url && env_str("AUTH_ALGORITHMS", NULL) && asym) {
        snprintf(e, ENV_ERR_LEN,
                 "AUTH_ALGORITHMS lists public-key algorithms but AUTH_JWKS_URL "
                 "is not set");
        return -1;
    }
    if (cfg->jwks_url && !asym) {
        snprintf(e, ENV_ERR_LEN, "AUTH_JWKS_URL is set but AUTH_ALGORITHMS allows only HS256");
        return -1;
    }
    return 0;
}

static int load_origins(app_config *cfg, char *e)
{
    const char *raw = env_str("CORS_ORIGINS", "");
    cfg->norigins = 0;
    if (strlen(raw) >= sizeof cfg->origins_buf) {
        snprintf(e, ENV_ERR_LEN, "CORS_ORIGINS is too long (at most %zu bytes)",
                 sizeof cfg->origins_buf - 1);
        return -1;
    }
    strcpy(cfg->origins_buf, raw);
    char *save = NULL;
    for (char *tok = strtok_r(cfg->origins_buf, ", ", &save); tok;
         tok = strtok_r(NULL, ", ", &save)) {
        if (cfg->norigins == APP_MAX_ORIGINS) {
            snprintf(e, ENV_ERR_LEN, "CORS_ORIGINS lists more than %d origins", APP_MAX_ORIGINS);
            return -1;
        }
        size_t n = strlen(tok);
        if (n && tok[n - 1] == '/')
            tok[n - 1] = '\0'; /* browsers send origins without the slash */
        if (strncmp(tok, "http://", 7) && strncmp(tok, "https://", 8)) {
            snprintf(e, ENV_ERR_LEN,
                     "CORS_ORIGINS must list origins like https://app.example.com, "
                     "got \"%s\"",
                     tok);
            return -1;
        }
        cfg->origins[cfg->norigins++] = tok;
    }
    return 0;
}

/* The URL goes into the docs pages' HTML as is: only plain http(s) URLs, nothing to escape. */
static int load_docs_cdn(app_config *cfg, char *e)
{
    const char *raw = env_str("DOCS_CDN_URL", "");
    cfg->docs_cdn_url = NULL;
    if (!*raw)
        return 0;
    size_t n = strlen(raw);
    bool ok = (!strncmp(raw, "https://", 8) || !strncmp(raw, "http://", 7)) && n < 512 &&
              raw[n - 1] != '/';
    for (const char *c = raw; ok && *c; c++)
        ok = *c > ' ' && *c < 127 && !strchr("\"'<>`\\", *c);
    if (!ok) {
        snprintf(e, ENV_ERR_LEN,
                 "DOCS_CDN_URL must be an http(s) URL without a trailing slash, like "
                 "https://cdn.jsdelivr.net/npm");
        return -1;
    }
    cfg->docs_cdn_url = raw;
    return 0;
}

/* METRICS_TOKEN: compared with the bearer token of GET /metrics (dispatch.c). */
static int load_metrics_token(app_config *cfg, char e[ENV_ERR_LEN])
{
    const char *t = env_str("METRICS_TOKEN", "");
    cfg->metrics_token = NULL;
    if (!*t)
        return 0;
    size_t n = strlen(t);
    bool ok = n >= 16 && n <= 512;
    for (const char *c = t; ok && *c; c++)
        ok = *c > ' ' && *c < 127;
    if (!ok) {
        snprintf(e, ENV_ERR_LEN,
                 "METRICS_TOKEN must be 16 to 512 printable characters without spaces (got %zu); "
                 "generate one with `openssl rand -hex 32`",
                 n);
        return -1;
    }
    cfg->metrics_token = t;
    return 0;
}

/* RATE_LIMIT: "100/second", as slowapi writes limits; "100/minute", "/hour", "/day" too. */
static int load_rate_limit(app_config *cfg, char e[ENV_ERR_LEN])
{
    static const struct {
        const char *unit;
        long seconds;
    } units[] = {{"second", 1}, {"minute", 60}, {"hour", 3600}, {"day", 86400}};
    const char *v = env_str("RATE_LIMIT", "");
    cfg->rate_limit = 0;
    cfg->rate_window = 1;
    if (!*v)
        return 0;
    char *end;
    long n = strtol(v, &end, 10);
    if (*v >= '0' && *v <= '9' && n >= 1 && n <= 1000000000 && *end == '/')
        for (size_t i = 0; i < sizeof units / sizeof *units; i++)
            if (!strcmp(end + 1, units[i].unit)) {
                cfg->rate_limit = n;
                cfg->rate_window = units[i].seconds;
                return 0;
            }
    snprintf(e, ENV_ERR_LEN,
             "RATE_LIMIT must be a count per second, minute, hour or day, like 100/second, got "
             "\"%.64s\"",
             v);
    return -1;
}

/* LOOPS: "auto" (the default, 0 here: app_loops_auto() decides once the database settings are
 * known) or a count. */
static int load_loops(long *loops, char e[ENV_ERR_LEN])
{
    const char *v = env_str("LOOPS", "auto");
    if (!strcasecmp(v, "auto")) {
        *loops = 0;
        return 0;
    }
    if (env_int("LOOPS", 1, 1, 64, loops, e) < 0) {
        snprintf(e, ENV_ERR_LEN, "LOOPS must be \"auto\" or an integer from 1 to 64, got \"%.40s\"",
                 v);
        return -1;
    }
    return 0;
}

/* The first number in file `path`, or -1. */
static long read_long(const char *path)
{
    FILE *f = fopen(path, "r");
    long v = -1;
    if (f) {
        if (fscanf(f, "%ld", &v) != 1)
            v = -1;
        fclose(f);
    }
    return v;
}

/* A container's CPU limit in whole CPUs (rounded up), or 0 when there is none. It is not visible
 * in the affinity mask: Kubernetes' limits.cpu: 1 on a 16-core node shows 16 CPUs. */
static long cgroup_cpu_limit(void)
{
    long quota = -1, period = -1;
    FILE *f = fopen("/sys/fs/cgroup/cpu.max", "r"); /* v2: "QUOTA PERIOD", or "max PERIOD" */
    if (f) {
        char q[32];
        if (fscanf(f, "%31s %ld", q, &period) == 2 && strcmp(q, "max"))
            quota = strtol(q, NULL, 10);
        fclose(f);
    } else { /* v1 (still on some nodes, and this project's podman): -1 quota is none */
        quota = read_long("/sys/fs/cgroup/cpu/cpu.cfs_quota_us");
        period = read_long("/sys/fs/cgroup/cpu/cpu.cfs_period_us");
    }
    return quota > 0 && period > 0 ? (quota + period - 1) / period : 0;
}

int app_cpus_available(void)
{
    cpu_set_t set;
    long n = sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set) : 1;
    long limit = cgroup_cpu_limit();
    if (limit > 0 && limit < n)
        n = limit;
    return n < 1 ? 1 : (int)n;
}

int app_loops_auto(int pipeline_conns)
{
    int n = app_cpus_available();
    if (pipeline_conns >= 1 && n > pipeline_conns)
        n = pipeline_conns;
    return n > 64 ? 64 : n;
}

void app_config_settle(app_config *cfg, db_config *dbc)
{
    if (!cfg->loops)
        cfg->loops = app_loops_auto(dbc->pipeline_conns);
    dbc->pipeline_threads = cfg->loops;
    /* Handlers in progress are coroutines (a stack each, only touched pages resident): more than
     * the pool has connections, since reads share pipelined connections and writes wait for one
     * in the pool's own first-come queue, bounded by DB_ACQUIRE_TIMEOUT. */
    if (!cfg->workers)
        cfg->workers = 64;
    /* MAX_CONNECTIONS unset: what the descriptor limit leaves after a reserve for the database
     * connections (DB_POOL_MAX, the pipelined ones), the JWKS fetches, the listening sockets and
     * the loops' own descriptors, so that accept() is refused by us before the kernel's EMFILE. */
    if (!cfg->max_connections) {
        struct rlimit rl;
        long nofile = getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY
                          ? (long)rl.rlim_cur
                          : 1024;
        long reserve =
            64 + dbc->pool_max + dbc->pipeline_conns + dbc->pipeline_write_conns + 4L * cfg->loops;
        cfg->max_connections = nofile - reserve > 16 ? nofile - reserve : 16;
    }
}

int app_config_load(app_config *cfg, char *err, size_t errlen)
{
    static const char *const envs[] = {"production", "development", NULL};
    char e[ENV_ERR_LEN];
    long port, loops, workers;
    int env;
    memset(cfg, 0, sizeof *cfg);
    if (env_choice("APP_ENV", "production", envs, &env, e) < 0 ||
        env_int("PORT", 8000, 1, 65535, &port, e) < 0 || load_loops(&loops, e) < 0 ||
        env_int("WORKERS", 0, 1, 1024, &workers, e) < 0 ||
        env_int("MAX_BODY_BYTES", 1048576, 64, 1L << 30, &cfg->max_body_bytes, e) < 0 ||
        env_int("MAX_HEADER_BYTES", 8192, 1024, 1L << 20, &cfg->max_header_bytes, e) < 0 ||
        env_seconds("SHUTDOWN_TIMEOUT", 10, 0, 3600, &cfg->shutdown_timeout, e) < 0 ||
        env_seconds("READ_TIMEOUT", 30, 0.1, 3600, &cfg->read_timeout, e) < 0 ||
        env_int("MAX_CONNECTIONS", 0, 1, 1L << 20, &cfg->max_connections, e) < 0 ||
        env_bool("ACCESS_LOG", true, &cfg->access_log, e) < 0 ||
        env_seconds("IDEMPOTENCY_KEY_TTL", 86400, 0, 365 * 86400, &cfg->idempotency_ttl, e) < 0)
        goto fail;
    cfg->env = (app_env)env;
    cfg->port = (int)port;
    cfg->loops = (int)loops;
    cfg->workers = (int)workers;
    cfg->host = env_str("HOST", "127.0.0.1");
    cfg->database_url = env_str("DATABASE_URL", NULL);
    if (!cfg->database_url) {
        snprintf(e, sizeof e, "DATABASE_URL is not set");
        goto fail;
    }
    char why[256];
    if (db_url_check(cfg->database_url, why, sizeof why) < 0) {
        snprintf(e, sizeof e, "DATABASE_URL is not a valid connection string: %s", why);
        goto fail;
    }
    if (load_auth(cfg, e) < 0 || load_secret(cfg, e) < 0 || load_origins(cfg, e) < 0 ||
        load_docs_cdn(cfg, e) < 0 || load_metrics_token(cfg, e) < 0 ||
        load_rate_limit(cfg, e) < 0 || settings_load(e, sizeof e) < 0) /* the resources' own */
        goto fail;
    return 0;
fail:
    snprintf(err, errlen, "%s", e);
    return -1;
}
