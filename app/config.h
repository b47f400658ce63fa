/* config: the API server's settings, read once at startup from the environment (and .env).
 * Every value is validated here so that a bad one stops the server with one line naming it. */
#ifndef APP_CONFIG_H
#define APP_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

typedef enum { APP_ENV_PRODUCTION, APP_ENV_DEVELOPMENT } app_env;

typedef struct {
    app_env env;          /* APP_ENV: production (default) | development */
    const char *host;     /* HOST: listen address, default 127.0.0.1 */
    int port;             /* PORT: default 8000 */
    const char *database_url; /* DATABASE_URL: required */
} app_config;

/* Fills `cfg` from the environment. Strings point into the environment (not owned). Returns 0, or -1
 * with a one-line message naming the variable in err. */
int app_config_load(app_config *cfg, char *err, size_t errlen);

#endif
