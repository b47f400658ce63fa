/* config: the engine's settings from the environment (see engine.h and docs/database.md for why
 * each default is what it is). */
#include <stdio.h>
#include <string.h>

#include "core/env.h"
#include "db/engine.h"
#include "db/url.h"

/* Defaults for Neon; docs/database.md gives the reason for each. */
#define DEF_POOL_MAX 10
#define DEF_MIN_IDLE 0
#define DEF_IDLE_TIMEOUT 60.0
#define DEF_MAX_LIFETIME 1800.0
#define DEF_ACQUIRE_TIMEOUT 5.0
#define DEF_CONNECT_TIMEOUT 10.0
#define DEF_STATEMENT_TIMEOUT 30.0
#define DEF_PREPING_AFTER 30.0
#define DEF_APPLICATION_NAME "neon-todo"
#define DEF_PIPELINE_CONNS 2
#define DEF_PIPELINE_WRITE_CONNS 4
#define DEF_PIPELINE_SLOW_AFTER 0.05

static int check_url(const char *name, const char *url, char *err, size_t errlen)
{
    char why[256];
    if (db_url_check(url, why, sizeof why) < 0) {
        snprintf(err, errlen, "%s is not a valid connection string: %s", name, why);
        return -1;
    }
    return 0;
}

static int read_urls(db_config *cfg, char *err, size_t errlen)
{
    cfg->url = env_str("DATABASE_URL", NULL);
    cfg->url_rw = env_str("DATABASE_URL_RW", NULL);
    cfg->url_ro = env_str("DATABASE_URL_RO", NULL);
    if (!cfg->url && !cfg->url_rw) {
        snprintf(err, errlen,
                 "DATABASE_URL is not set; hint: use the pooled connection string from the Neon "
                 "console (host ending in -pooler...neon.tech), or postgresql://... for a local "
                 "server");
        return -1;
    }
    if ((cfg->url && check_url("DATABASE_URL", cfg->url, err, errlen) < 0) ||
        (cfg->url_rw && check_url("DATABASE_URL_RW", cfg->url_rw, err, errlen) < 0) ||
        (cfg->url_ro && check_url("DATABASE_URL_RO", cfg->url_ro, err, errlen) < 0))
        return -1;
    if (!cfg->url)
        cfg->url = cfg->url_rw;
    return 0;
}

int db_config_from_env(db_config *cfg, char *err, size_t errlen)
{
    static const char *const modes[] = {"pool", "per_request", NULL};
    static const char *const prepares[] = {"auto", "on", "off", NULL};
    char e[ENV_ERR_LEN];
    long max, min_idle, lanes, wlanes;
    int mode, prepare;
    memset(cfg, 0, sizeof *cfg);
    if (read_urls(cfg, err, errlen) < 0)
        return -1;
    cfg->application_name = env_str("DB_APPLICATION_NAME", DEF_APPLICATION_NAME);
    if (env_choice("DB_POOL_MODE", "pool", modes, &mode, e) < 0 ||
        env_int("DB_POOL_MAX", DEF_POOL_MAX, 1, 1000, &max, e) < 0 ||
        env_int("DB_POOL_MIN_IDLE", DEF_MIN_IDLE, 0, 1000, &min_idle, e) < 0 ||
        env_seconds("DB_POOL_IDLE_TIMEOUT", DEF_IDLE_TIMEOUT, 0.01, 86400, &cfg->idle_timeout, e) <
            0 ||
        env_seconds("DB_POOL_MAX_LIFETIME", DEF_MAX_LIFETIME, 0.01, 604800, &cfg->max_lifetime, e) <
            0 ||
        env_seconds("DB_ACQUIRE_TIMEOUT", DEF_ACQUIRE_TIMEOUT, 0.001, 3600, &cfg->acquire_timeout,
                    e) < 0 ||
        env_seconds("DB_CONNECT_TIMEOUT", DEF_CONNECT_TIMEOUT, 0.1, 3600, &cfg->connect_timeout,
                    e) < 0 ||
        env_seconds("DB_STATEMENT_TIMEOUT", DEF_STATEMENT_TIMEOUT, 0, 86400,
                    &cfg->statement_timeout, e) < 0 ||
        env_seconds("DB_PREPING_AFTER", DEF_PREPING_AFTER, 0, 86400, &cfg->preping_after, e) < 0 ||
        env_bool("DB_PIPELINE", true, &cfg->pipeline, e) < 0 ||
        env_bool("DB_PIPELINE_WRITES", true, &cfg->pipeline_writes, e) < 0 ||
        env_int("DB_PIPELINE_CONNS", DEF_PIPELINE_CONNS, 1, DB_PIPELINE_CONNS_MAX, &lanes, e) < 0 ||
        env_int("DB_PIPELINE_WRITE_CONNS", DEF_PIPELINE_WRITE_CONNS, 1, DB_PIPELINE_CONNS_MAX,
                &wlanes, e) < 0 ||
        env_seconds("DB_PIPELINE_SLOW_AFTER", DEF_PIPELINE_SLOW_AFTER, 0, 3600,
                    &cfg->pipeline_slow_after, e) < 0 ||
        env_choice("DB_PREPARE", "auto", prepares, &prepare, e) < 0) {
        snprintf(err, errlen, "%s", e);
        return -1;
    }
    if (min_idle > max) {
        snprintf(err, errlen, "DB_POOL_MIN_IDLE (%ld) must not exceed DB_POOL_MAX (%ld)", min_idle,
                 max);
        return -1;
    }
    cfg->mode = mode == 1 ? DB_POOL_MODE_PER_REQUEST : DB_POOL_MODE_POOL;
    cfg->pool_max = (int)max;
    cfg->pool_min_idle = (int)min_idle;
    cfg->pipeline_conns = (int)lanes;
    cfg->pipeline_write_conns = (int)wlanes;
    cfg->pipeline_threads = 1;
    cfg->prepare = prepare == 1 ? DB_PREPARE_ON : prepare == 2 ? DB_PREPARE_OFF : DB_PREPARE_AUTO;
    return 0;
}
