/* config: see config.h. */
#include "app/config.h"

#include <stdio.h>

#include "core/env.h"
#include "db/url.h"

int app_config_load(app_config *cfg, char *err, size_t errlen)
{
    static const char *const envs[] = {"production", "development", NULL};
    char e[ENV_ERR_LEN];
    long port;
    int env;
    if (env_choice("APP_ENV", "production", envs, &env, e) < 0 ||
        env_int("PORT", 8000, 1, 65535, &port, e) < 0)
        goto fail;
    cfg->env = (app_env)env;
    cfg->port = (int)port;
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
    return 0;
fail:
    snprintf(err, errlen, "%s", e);
    return -1;
}
