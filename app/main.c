/* api: the HTTP server's entry point, FastAPI's lifespan in C: read and check every setting, open
 * the engine once, serve until SIGTERM/SIGINT, close the engine. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <stdbool.h>
#include <time.h>

#include "app/auth.h"
#include "app/config.h"
#include "app/healthcheck.h"
#include "app/jwks.h"
#include "app/ratelimit.h"
#include "app/ops.h"
#include "app/router.h"
#include "app/server.h"
#include "core/env.h"
#include "core/log.h"
#include "db/engine.h"
#include "db/schema_version.h"
#include "db/url.h"

/* The first authenticated GET of the table whose only path parameter is {user_id}, for the dev
 * curl line ("/api/{user_id}/tasks"), or NULL. */
static const char *dev_try_path(void)
{
    for (int i = 0; i < app_nroutes; i++) {
        const char *p = app_routes[i].path, *u = strstr(p, "{user_id}");
        if (app_routes[i].auth && !strcmp(app_routes[i].method, "GET") && u &&
            !strchr(u + 9, '{') && strchr(p, '{') == u)
            return p;
    }
    return NULL;
}

/* Development without a secret: the generated one is useless without a token, so print one. */
static void print_dev_token(const app_config *cfg)
{
    char *token = auth_sign("dev-user", (long)time(NULL) + 24 * 3600, 0);
    if (!token)
        return;
    printf("\nDevelopment mode: generated a JWT secret for this run (set JWT_SECRET to keep one).\n"
           "A token for user \"dev-user\", valid 24 hours:\n\n  %s\n\n",
           token);
    const char *path = dev_try_path();
    if (path) {
        const char *u = strstr(path, "{user_id}");
        printf("Try it:\n\n  curl -H 'Authorization: Bearer %s' http://%s:%d%.*sdev-user%s\n\n",
               token, cfg->host, cfg->port, (int)(u - path), path, u + 9);
    }
    printf("Or in the browser: http://%s:%d/docs (Authorize, paste the token)\n\n", cfg->host,
           cfg->port);
    fflush(stdout);
    free(token);
}

/* Startup work off the critical path, beside the loops that already serve: the OpenAPI document's
 * text (~1 ms), then the schema check (a Neon compute may take seconds to wake): warn when the
 * database is behind the migrations this binary was built with. The app never migrates itself. */
static void *check_schema(void *arg)
{
    (void)arg;
    ops_openapi_build();
    db_session *s;
    db_error err;
    char version[64] = "";
    if (db_session_open(app.engine, DB_READ_ONLY, &s, &err) < 0) {
        log_warn("schema check skipped: %s", err.message);
        return NULL;
    }
    db_schema_status st = db_session_schema_version(s, version, sizeof version, &err);
    db_session_close(s);
    const char *want = db_schema_expected();
    if (st == DB_SCHEMA_ERROR)
        log_warn("schema check failed: %s", err.message);
    else if (db_schema_version_cmp(version, want) < 0)
        log_warn("database schema is behind: at %s, this build expects %s; run `migrate up` "
                 "(/ready answers 503 until then)",
                 st == DB_SCHEMA_NONE ? "none" : version, want);
    else
        log_info("database schema at %s (expected %s)", version, want);
    return NULL;
}

static int setup(app_config *cfg, db_config *dbc, char *err, size_t errlen)
{
    if (app_config_load(cfg, err, errlen) < 0 || db_config_from_env(dbc, err, errlen) < 0)
        return -1;
    app_config_settle(cfg, dbc);
    auth_settings as = {.secret = cfg->jwt_secret,
                        .secret_len = cfg->jwt_secret ? strlen(cfg->jwt_secret) : 0,
                        .issuer = cfg->auth_issuer,
                        .audience = cfg->auth_audience,
                        .algs = cfg->auth_algs,
                        .leeway = (int)cfg->auth_leeway};
    if (auth_setup(&as) < 0 || ratelimit_init(cfg->rate_limit, cfg->rate_window) < 0) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (!cfg->metrics_token && cfg->env == APP_ENV_PRODUCTION)
        log_info("METRICS_TOKEN is not set: GET /metrics answers 404 (set it to scrape)");
    return router_init(err, errlen);
}

static const char usage[] =
    "usage: api [--healthcheck | --version | --help]\n"
    "\n"
    "Serves the Todo API on HOST:PORT (default 127.0.0.1:8000) until SIGTERM or SIGINT.\n"
    "Every setting comes from the environment or .env; see .env.example.\n"
    "\n"
    "  --healthcheck  GET /health on HOST:PORT; exit 0 when it answers 200, else 1\n"
    "                 (the container's HEALTHCHECK: no curl needed in the image)\n"
    "  --version      print the version and exit\n"
    "\n"
    "Exit codes: 0 clean shutdown, 1 runtime failure, 2 bad configuration or usage.\n";

/* Handles the command-line modes. Returns -1 when the server should start, else an exit code. */
static int command_line(int argc, char **argv)
{
    if (argc < 2)
        return -1;
    if (argc == 2 && !strcmp(argv[1], "--version")) {
        printf("api %s\n", NEON_TODO_VERSION);
        return 0;
    }
    if (argc == 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        fputs(usage, stdout);
        return 0;
    }
    if (argc == 2 && !strcmp(argv[1], "--healthcheck")) {
        char err[ENV_ERR_LEN];
        long port;
        if (env_load_file(".env", err) < 0 || env_int("PORT", 8000, 1, 65535, &port, err) < 0) {
            fprintf(stderr, "healthcheck: %s\n", err);
            return 1;
        }
        return healthcheck_run(env_str("HOST", "127.0.0.1"), (int)port, 3.0);
    }
    fprintf(stderr, "api: unknown argument \"%s\"\n%s", argv[1], usage);
    return 2;
}

int main(int argc, char **argv)
{
    int mode = command_line(argc, argv);
    if (mode >= 0)
        return mode;
    char err[ENV_ERR_LEN];
    if (env_load_file(".env", err) < 0 || log_configure_from_env(err, sizeof err) < 0) {
        fprintf(stderr, "api: %s\n", err);
        return 2;
    }
    static app_config cfg;
    db_config dbc;
    app.cfg = &cfg;
    if (setup(&cfg, &dbc, err, sizeof err) < 0) {
        log_error("%s", err);
        return 2;
    }
    db_error derr;
    app.engine = db_engine_open(&dbc, &derr);
    if (!app.engine) {
        log_error("%s", derr.message);
        return 2;
    }
    if (cfg.jwt_generated)
        print_dev_token(&cfg);
    /* The identity provider's keys arrive in the background: startup never waits for them
     * (requests that need them get 503 until then). */
    jwks_config jc = {.url = cfg.jwks_url,
                      .ttl = cfg.jwks_ttl,
                      .min_refresh = cfg.jwks_min_refresh,
                      .timeout = cfg.jwks_timeout,
                      .max_bytes = 1L << 20};
    if (cfg.jwks_url && jwks_start(&jc) < 0) {
        log_error("could not start the JWKS fetcher");
        db_engine_close(app.engine);
        return 1;
    }
    pthread_t checker;
    bool checking = pthread_create(&checker, NULL, check_schema, NULL) == 0;
    int rc = server_run();
    if (checking)
        pthread_join(checker, NULL);
    jwks_stop();
    db_engine_close(app.engine);
    auth_configure("", 0);
    ratelimit_free();
    log_info("stopped");
    return rc;
}
