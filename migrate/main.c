/* migrate: the schema migration CLI (see `migrate --help` and docs/migrations.md). It reads the
 * same settings as the API (environment, then .env) and connects over the direct URL. */
#include <stdio.h>

#include "core/env.h"
#include "core/log.h"
#include "migrate/cli.h"
#include "migrate/commands.h"
#include "migrate/version.h"

int main(int argc, char **argv)
{
    mig_opts o;
    char err[1024];
    if (mig_cli_parse(argc, argv, &o, err, sizeof err) < 0) {
        fprintf(stderr, "migrate: %s\n", err);
        return MIG_EXIT_USAGE;
    }
    if (o.help) {
        fputs(mig_cli_help(), stdout);
        return MIG_EXIT_OK;
    }
    if (o.version) {
        printf("migrate %s\n", MIGRATE_VERSION);
        return MIG_EXIT_OK;
    }
    /* the connection code logs each failed attempt: readable lines, silenced by -q */
    log_configure(false, o.quiet ? LOG_LVL_ERROR : LOG_LVL_WARN);
    char eerr[ENV_ERR_LEN];
    if (env_load_file(".env", eerr) < 0) {
        fprintf(stderr, "migrate: %s\n", eerr);
        return MIG_EXIT_USAGE;
    }
    return mig_cmd_run(&o);
}
