/* cli: migrate's command line: options, help text and exit codes.
 *
 *   migrate [global options] COMMAND [command options] [ARGUMENT]
 *
 * Options may come before or after the command; an option the command does not take is a usage
 * error naming both. Pure parsing: nothing here touches the database or the files. */
#ifndef MIGRATE_CLI_H
#define MIGRATE_CLI_H

#include <stdbool.h>
#include <stddef.h>

/* Exit codes (documented in --help and docs/migrations.md). */
enum {
    MIG_EXIT_OK = 0,
    MIG_EXIT_ERROR = 1, /* a migration or database operation failed, or no connection */
    MIG_EXIT_USAGE = 2, /* bad command line, bad setting, malformed migration file */
    MIG_EXIT_INTEGRITY =
        3, /* refused: applied file edited/deleted, out-of-order file; check: drift */
    MIG_EXIT_PENDING = 4, /* status --exit-code: migrations are pending (nothing wrong otherwise) */
    MIG_EXIT_TIMEOUT = 5, /* wait timed out, or the migration lock stayed taken */
};

typedef struct mig_opts {
    const char *command;
    const char *arg; /* NAME for new and diff, VERSION for baseline, else NULL */
    char **files;    /* lint: the FILE arguments (argv entries), nfiles of them */
    int nfiles;
    const char *dev_url;         /* diff --dev-url, or NULL (then MIGRATE_DEV_URL) */
    const char *url;             /* --url, or NULL */
    const char *dir;             /* --dir, default "migrations" */
    const char *to;              /* --to VERSION, or NULL */
    const char *output;          /* dump --output FILE ("-": stdout), or NULL: <dir>/schema.sql */
    const char *pg_lock_timeout; /* --pg-lock-timeout, a PostgreSQL duration; default "5s" */
    long steps;                  /* --steps, 0 when not given */
    double timeout;              /* wait --timeout, default 60 */
    double lock_timeout;         /* --lock-timeout for the migration lock, default 60 */
    bool quiet, dry_run, exit_code;
    bool allow_changed, allow_missing, allow_out_of_order;
    bool no_lint;           /* up --no-lint */
    bool allow_destructive; /* diff --allow-destructive */
    bool allow_rewrite;     /* diff --allow-rewrite */
    bool check;             /* diff --check */
    bool help, version;
} mig_opts;

/* Parses argv into o. Returns 0, or -1 with a one-line message in err (exit MIG_EXIT_USAGE).
 * With --help or --version, o->help / o->version are set and the command may be NULL. */
int mig_cli_parse(int argc, char **argv, mig_opts *o, char *err, size_t errlen);

/* The full help text. */
const char *mig_cli_help(void);

#endif
