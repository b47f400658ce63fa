/* cli: see cli.h. getopt_long does the parsing; this file adds which command takes which option. */
#include "migrate/cli.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/env.h"
#include "migrate/file.h"

static const char help_text[] =
    "migrate: versioned SQL migrations for PostgreSQL and Neon\n"
    "\n"
    "usage: migrate [options] COMMAND [command options]\n"
    "\n"
    "commands:\n"
    "  new NAME                 create migrations/<next>_<name>.sql from a template\n"
    "  up [--to V] [--dry-run]  apply pending migrations in version order (up to V); --dry-run\n"
    "                           prints what would run and changes nothing\n"
    "  down [--steps N|--to V]  revert the newest migration (N of them, or all newer than V;\n"
    "                           --to 0 reverts everything), using the down SQL stored at apply "
    "time\n"
    "  redo                     revert the newest migration and apply its file again\n"
    "  status [--exit-code]     list every migration as applied (when, how long) or pending, and\n"
    "                           any problem; --exit-code: exit 4 when pending, 3 on a problem\n"
    "  current                  print the newest applied version (\"none\" when nothing is "
    "applied)\n"
    "  history                  list applied migrations: version, name, when, how long, by whom\n"
    "  wait [--timeout S]       wait until the database accepts connections and answers a query\n"
    "                           (a Neon compute waking up); default 60 s\n"
    "  check                    compare the history with the files and the live schema with\n"
    "                           <dir>/schema.sql, print the differences\n"
    "  dump [--output FILE]     write <dir>/schema.sql from the system catalogs (\"-\": stdout)\n"
    "  lint [FILE...]           check migration SQL for locking or breaking DDL (default: the\n"
    "                           pending files); exit 3 on an error-level finding\n"
    "  diff NAME --dev-url URL  write the next migration(s) taking the migrations to\n"
    "                           <dir>/schema.sql, verified on two scratch databases; with\n"
    "                           --check: exit 3 when schema.sql and the migrations disagree\n"
    "  baseline VERSION         record an existing database as migrated up to VERSION, running\n"
    "                           nothing\n"
    "\n"
    "options:\n"
    "  --url URL                database URL (default: DATABASE_URL_UNPOOLED, else DATABASE_URL,\n"
    "                           from the environment or .env); a Neon -pooler host is replaced by\n"
    "                           its direct host\n"
    "  --dir DIR                migrations directory (default: migrations)\n"
    "  -q, --quiet              print only errors\n"
    "  --lock-timeout S         how long to wait for another migrate run's lock (default 60)\n"
    "  --pg-lock-timeout D      PostgreSQL lock_timeout for migration statements (default 5s;\n"
    "                           0 disables; a file's \"-- migrate:lock-timeout D\" wins)\n"
    "  --allow-changed          up: proceed although an applied file was edited\n"
    "  --allow-missing          up: proceed although an applied file was deleted\n"
    "  --allow-out-of-order     up: apply pending files older than the newest applied one\n"
    "  --no-lint                up: apply although `migrate lint` finds errors\n"
    "  --dev-url URL            diff: a scratch server where the role may CREATE DATABASE\n"
    "                           (default: MIGRATE_DEV_URL)\n"
    "  --allow-destructive      diff: write drops and lossy changes too\n"
    "  --allow-rewrite          diff: write lossless changes that rewrite a table (int to bigint)\n"
    "  --check                  diff: only compare, exit 3 on a difference\n"
    "  -h, --help               this text\n"
    "  -V, --version            the version\n"
    "\n"
    "environment: MIGRATE_CONNECT_TIMEOUT (seconds to retry connecting, default 30).\n"
    "\n"
    "exit codes: 0 success; 1 a migration or database operation failed; 2 usage error or\n"
    "malformed migration file; 3 integrity refusal or schema drift (check); 4 pending migrations\n"
    "(status --exit-code); 5 timed out (wait, migration lock).\n";

const char *mig_cli_help(void)
{
    return help_text;
}

enum {
    OPT_URL = 256,
    OPT_DIR,
    OPT_TO,
    OPT_DRY_RUN,
    OPT_STEPS,
    OPT_EXIT_CODE,
    OPT_TIMEOUT,
    OPT_LOCK_TIMEOUT,
    OPT_PG_LOCK_TIMEOUT,
    OPT_ALLOW_CHANGED,
    OPT_ALLOW_MISSING,
    OPT_ALLOW_OOO,
    OPT_OUTPUT,
    OPT_NO_LINT,
    OPT_DEV_URL,
    OPT_ALLOW_DESTRUCTIVE,
    OPT_ALLOW_REWRITE,
    OPT_CHECK,
};

static const struct option longopts[] = {
    {"url", required_argument, NULL, OPT_URL},
    {"dir", required_argument, NULL, OPT_DIR},
    {"quiet", no_argument, NULL, 'q'},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, 'V'},
    {"to", required_argument, NULL, OPT_TO},
    {"dry-run", no_argument, NULL, OPT_DRY_RUN},
    {"steps", required_argument, NULL, OPT_STEPS},
    {"exit-code", no_argument, NULL, OPT_EXIT_CODE},
    {"timeout", required_argument, NULL, OPT_TIMEOUT},
    {"lock-timeout", required_argument, NULL, OPT_LOCK_TIMEOUT},
    {"pg-lock-timeout", required_argument, NULL, OPT_PG_LOCK_TIMEOUT},
    {"allow-changed", no_argument, NULL, OPT_ALLOW_CHANGED},
    {"allow-missing", no_argument, NULL, OPT_ALLOW_MISSING},
    {"allow-out-of-order", no_argument, NULL, OPT_ALLOW_OOO},
    {"output", required_argument, NULL, OPT_OUTPUT},
    {"no-lint", no_argument, NULL, OPT_NO_LINT},
    {"dev-url", required_argument, NULL, OPT_DEV_URL},
    {"allow-destructive", no_argument, NULL, OPT_ALLOW_DESTRUCTIVE},
    {"allow-rewrite", no_argument, NULL, OPT_ALLOW_REWRITE},
    {"check", no_argument, NULL, OPT_CHECK},
    {NULL, 0, NULL, 0},
};

/* Which commands take a command-specific option ("*" = any command that connects). */
static const struct {
    int opt;
    const char *flag;
    const char *commands;
} allowed[] = {
    {OPT_TO, "--to", " up down "},
    {OPT_DRY_RUN, "--dry-run", " up "},
    {OPT_STEPS, "--steps", " down "},
    {OPT_EXIT_CODE, "--exit-code", " status "},
    {OPT_TIMEOUT, "--timeout", " wait "},
    {OPT_LOCK_TIMEOUT, "--lock-timeout", " up down redo baseline "},
    {OPT_PG_LOCK_TIMEOUT, "--pg-lock-timeout", " up down redo "},
    {OPT_ALLOW_CHANGED, "--allow-changed", " up "},
    {OPT_ALLOW_MISSING, "--allow-missing", " up "},
    {OPT_ALLOW_OOO, "--allow-out-of-order", " up "},
    {OPT_OUTPUT, "--output", " dump "},
    {OPT_NO_LINT, "--no-lint", " up "},
    {OPT_DEV_URL, "--dev-url", " diff "},
    {OPT_ALLOW_DESTRUCTIVE, "--allow-destructive", " diff "},
    {OPT_ALLOW_REWRITE, "--allow-rewrite", " diff "},
    {OPT_CHECK, "--check", " diff "},
};

static const char *const commands[] = {"new",     "up",      "down", "redo",  "status",
                                       "current", "history", "wait", "check", "baseline",
                                       "dump",    "lint",    "diff", NULL};

static int seconds_arg(const char *flag, const char *v, double max, double *out, char *err,
                       size_t errlen)
{
    if (env_parse_seconds(v, out) < 0 || *out < 0 || *out > max) {
        snprintf(err, errlen, "%s must be a number of seconds from 0 to %g, got \"%s\"", flag, max,
                 v);
        return -1;
    }
    return 0;
}

static int take(mig_opts *o, int c, const char *arg, char *err, size_t errlen)
{
    char *end;
    switch (c) {
    case OPT_URL:
        o->url = arg;
        return 0;
    case OPT_DIR:
        o->dir = arg;
        return 0;
    case 'q':
        o->quiet = true;
        return 0;
    case 'h':
        o->help = true;
        return 0;
    case 'V':
        o->version = true;
        return 0;
    case OPT_TO:
        if (!mig_version_valid(arg)) {
            snprintf(err, errlen, "--to must be a version (digits, such as 0003), got \"%s\"", arg);
            return -1;
        }
        o->to = arg;
        return 0;
    case OPT_DRY_RUN:
        o->dry_run = true;
        return 0;
    case OPT_STEPS:
        o->steps = strtol(arg, &end, 10);
        if (*arg == '\0' || *end || o->steps < 1 || o->steps > 1000000) {
            snprintf(err, errlen, "--steps must be a whole number from 1, got \"%s\"", arg);
            return -1;
        }
        return 0;
    case OPT_EXIT_CODE:
        o->exit_code = true;
        return 0;
    case OPT_TIMEOUT:
        return seconds_arg("--timeout", arg, 86400, &o->timeout, err, errlen);
    case OPT_LOCK_TIMEOUT:
        return seconds_arg("--lock-timeout", arg, 86400, &o->lock_timeout, err, errlen);
    case OPT_PG_LOCK_TIMEOUT:
        o->pg_lock_timeout = arg;
        return 0;
    case OPT_ALLOW_CHANGED:
        o->allow_changed = true;
        return 0;
    case OPT_ALLOW_MISSING:
        o->allow_missing = true;
        return 0;
    case OPT_ALLOW_OOO:
        o->allow_out_of_order = true;
        return 0;
    case OPT_OUTPUT:
        o->output = arg;
        return 0;
    case OPT_NO_LINT:
        o->no_lint = true;
        return 0;
    case OPT_DEV_URL:
        o->dev_url = arg;
        return 0;
    case OPT_ALLOW_DESTRUCTIVE:
        o->allow_destructive = true;
        return 0;
    case OPT_ALLOW_REWRITE:
        o->allow_rewrite = true;
        return 0;
    case OPT_CHECK:
        o->check = true;
        return 0;
    default:
        snprintf(err, errlen, "unknown option (see migrate --help)");
        return -1;
    }
}

static int check_command(const mig_opts *o, const int *given, char *err, size_t errlen)
{
    bool known = false;
    for (int i = 0; commands[i]; i++)
        known |= !strcmp(commands[i], o->command);
    if (!known) {
        snprintf(err, errlen, "unknown command \"%s\" (see migrate --help)", o->command);
        return -1;
    }
    char padded[32];
    snprintf(padded, sizeof padded, " %s ", o->command);
    for (size_t i = 0; i < sizeof allowed / sizeof *allowed; i++)
        if (given[allowed[i].opt - OPT_URL] && !strstr(allowed[i].commands, padded)) {
            snprintf(err, errlen, "%s is not an option of \"migrate %s\"", allowed[i].flag,
                     o->command);
            return -1;
        }
    if (o->steps && o->to) {
        snprintf(err, errlen, "down takes --steps or --to, not both");
        return -1;
    }
    if (!strcmp(o->command, "lint"))
        return 0; /* any number of files */
    bool wants_arg = !strcmp(o->command, "new") || !strcmp(o->command, "baseline") ||
                     (!strcmp(o->command, "diff") && !o->check);
    if (wants_arg && !o->arg) {
        snprintf(err, errlen, "migrate %s needs an argument: migrate %s %s", o->command, o->command,
                 o->command[0] == 'b' ? "VERSION" : "NAME");
        return -1;
    }
    if (!wants_arg && o->arg) {
        snprintf(err, errlen, "unexpected argument \"%s\" after \"migrate %s\"", o->arg,
                 o->command);
        return -1;
    }
    if (!strcmp(o->command, "baseline") && !mig_version_valid(o->arg)) {
        snprintf(err, errlen, "baseline needs a version (digits, such as 0002), got \"%s\"",
                 o->arg);
        return -1;
    }
    return 0;
}

int mig_cli_parse(int argc, char **argv, mig_opts *o, char *err, size_t errlen)
{
    memset(o, 0, sizeof *o);
    o->dir = "migrations";
    o->pg_lock_timeout = "5s";
    o->timeout = 60;
    o->lock_timeout = 60;
    int given[OPT_CHECK - OPT_URL + 1] = {0};
    optind = 0; /* 0: full reinitialisation, so tests can parse several command lines */
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":qhV", longopts, NULL)) != -1) {
        if (c == '?' || c == ':') {
            const char *bad = argv[optind - 1];
            snprintf(err, errlen, c == ':' ? "option %s needs a value" : "unknown option %s", bad);
            return -1;
        }
        if (c >= OPT_URL)
            given[c - OPT_URL] = 1;
        if (take(o, c, optarg, err, errlen) < 0)
            return -1;
    }
    if (optind < argc)
        o->command = argv[optind++];
    if (o->command && !strcmp(o->command, "lint")) {
        o->files = argv + optind;
        o->nfiles = argc - optind;
        optind = argc;
    }
    if (optind < argc)
        o->arg = argv[optind++];
    if (optind < argc) {
        snprintf(err, errlen, "unexpected argument \"%s\"", argv[optind]);
        return -1;
    }
    if (o->help || o->version)
        return 0;
    if (!o->command) {
        snprintf(err, errlen, "no command given (see migrate --help)");
        return -1;
    }
    return check_command(o, given, err, errlen);
}
