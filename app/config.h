/* config: the API server's settings, read once at startup from the environment (and .env).
 * Every value is validated here so that a bad one stops the server with one line naming it.
 * The database settings (DATABASE_URL, DB_*) are read by db_config_from_env (db/engine.h). */
#ifndef APP_CONFIG_H
#define APP_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#include "db/engine.h"

typedef enum { APP_ENV_PRODUCTION, APP_ENV_DEVELOPMENT } app_env;

#define APP_MAX_ORIGINS 16

typedef struct {
    app_env env;              /* APP_ENV: production (default) | development */
    const char *host;         /* HOST: listen address, default 127.0.0.1 */
    int port;                 /* PORT: default 8000 */
    const char *database_url; /* DATABASE_URL: required */
    int loops;                /* LOOPS: event-loop threads for HTTP I/O; 0: "auto" (the
                                 default), see app_loops_auto() */
    int workers;              /* WORKERS: handlers in progress at once; 0 (unset): 64 */
    const char *jwt_secret;   /* JWT_SECRET or BETTER_AUTH_SECRET; NULL: no HS256 tokens (only
                                 with AUTH_JWKS_URL; in development a secret is generated) */
    bool jwt_generated;       /* true when jwt_secret was generated (development only) */
    char generated[65];       /* storage for a generated secret */
    /* Tokens of an identity provider (docs/auth.md): */
    const char *jwks_url;      /* AUTH_JWKS_URL: its JWKS, http(s); NULL: none */
    const char *auth_issuer;   /* AUTH_ISSUER: iss must equal it; NULL: not checked */
    const char *auth_audience; /* AUTH_AUDIENCE: aud must equal or contain it; NULL: not checked */
    int auth_algs;             /* AUTH_ALGORITHMS: JWKS_ALG_* mask, default all five */
    long auth_leeway;          /* AUTH_LEEWAY: seconds of clock skew on exp/nbf/iat, default 10 */
    double jwks_ttl;           /* AUTH_JWKS_CACHE_TTL: seconds between refreshes, default 300 */
    double jwks_min_refresh;   /* AUTH_JWKS_MIN_REFRESH: seconds between fetches at least, 10 */
    double jwks_timeout;       /* AUTH_JWKS_TIMEOUT: seconds for one fetch, default 5 */
    const char *origins[APP_MAX_ORIGINS]; /* CORS_ORIGINS: comma-separated exact origins */
    int norigins;
    char origins_buf[2048];
    long max_body_bytes;   /* MAX_BODY_BYTES: default 1 MiB; larger bodies get 413 */
    long max_header_bytes; /* MAX_HEADER_BYTES: default 8 KiB; larger headers get 431 */
    double
        shutdown_timeout;   /* SHUTDOWN_TIMEOUT: seconds to finish in-flight requests, default 10 */
    double read_timeout;    /* READ_TIMEOUT: seconds a client may take to send a whole request
                               (head and body, from its first byte: a client trickling a byte at
                               a time is closed too) or sit idle between keep-alive requests,
                               default 30 */
    long max_connections;   /* MAX_CONNECTIONS: client connections open at once; past it a new one
                               gets 503 and is closed; unset: RLIMIT_NOFILE less a reserve for the
                               database and JWKS sockets (app_config_settle) */
    bool access_log;        /* ACCESS_LOG: one line per request, default true */
    double idempotency_ttl; /* IDEMPOTENCY_KEY_TTL: seconds an Idempotency-Key replays its first
                               response, default 86400; expired keys are deleted in the
                               background; 0: kept forever */
    const char *metrics_token; /* METRICS_TOKEN: the bearer token GET /metrics asks for (16
                                  printable characters at least); unset: /metrics is open in
                                  development and answers 404 in production */
    long rate_limit;           /* RATE_LIMIT "N/second" (or minute, hour, day): requests per token
                                  subject in a window on authenticated routes, more get 429; 0
                                  (unset, the default): no limit */
    long rate_window;          /* its window, seconds */
    const char *docs_cdn_url;  /* DOCS_CDN_URL: base URL of an npm CDN /docs and /redoc load Swagger
                                  UI and ReDoc from (https://cdn.jsdelivr.net/npm); NULL (unset,
                                  the default): the files embedded in the binary, no network */
} app_config;

/* CPUs this process may run on: its affinity mask, lowered to its cgroup's CPU limit (a
 * container's: v2 cpu.max or v1 cpu.cfs_quota_us / cpu.cfs_period_us, rounded up) when there is
 * one. At least 1. */
int app_cpus_available(void);

/* What LOOPS=auto means: one event loop per available CPU, but no more loops than the pipelined
 * read connections they share (DB_PIPELINE_CONNS, default 2; each loop pipelines on at least one
 * of its own): more loops would hold more connections than that setting promises. 1..64. */
int app_loops_auto(int pipeline_conns);

/* Fills `cfg` from the environment. Strings point into the environment or into cfg (not owned).
 * Returns 0, or -1 with a one-line message naming the variable in err. */
int app_config_load(app_config *cfg, char *err, size_t errlen);

/* The defaults that depend on both settings, once both are loaded: LOOPS=auto resolved
 * (app_loops_auto), the engine told how many loops share its pipelined connections
 * (dbc->pipeline_threads), WORKERS unset -> 64, MAX_CONNECTIONS unset -> from RLIMIT_NOFILE. */
void app_config_settle(app_config *cfg, db_config *dbc);

#endif
