/* migrate: file parsing, versions, checksums, `new`, the pooler rewrite, the command line and the
 * schema diff, without a database. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "db/schema_version.h"
#include "db/url.h"
#include "migrate/cli.h"
#include "migrate/conn.h"
#include "migrate/diff.h"
#include "migrate/file.h"

static mig_file parse_ok(const char *text)
{
    mig_file f = {0};
    char err[MIG_ERR_LEN] = "";
    cr_assert_eq(mig_file_parse("x.sql", text, strlen(text), &f, err), 0, "%s", err);
    return f;
}

static void parse_fails(const char *text, const char *want)
{
    mig_file f = {0};
    char err[MIG_ERR_LEN] = "";
    cr_assert_eq(mig_file_parse("x.sql", text, strlen(text), &f, err), -1, "accepted: %s", text);
    cr_assert(strstr(err, want), "error \"%s\" lacks \"%s\"", err, want);
    mig_file_free(&f);
}

Test(file, sections_directives_and_lines)
{
    mig_file f = parse_ok("-- a comment\n\n-- migrate:up\nCREATE TABLE t (x int);\n"
                          "-- migrate:down\nDROP TABLE t;\n");
    cr_assert_str_eq(f.up, "CREATE TABLE t (x int);\n");
    cr_assert_str_eq(f.down, "DROP TABLE t;\n");
    cr_assert_eq(f.up_line, 4);
    cr_assert_eq(f.down_line, 6);
    cr_assert_not(f.no_transaction);
    cr_assert_null(f.lock_timeout);
    mig_file_free(&f);

    f = parse_ok(
        "-- migrate:no-transaction\n-- migrate:lock-timeout 30s\n-- migrate:up\nSELECT 1;\n");
    cr_assert(f.no_transaction);
    cr_assert_str_eq(f.lock_timeout, "30s");
    cr_assert_str_eq(f.down, "");
    mig_file_free(&f);
}

Test(file, directive_inside_a_section_is_kept_as_a_comment)
{
    mig_file f = parse_ok("-- migrate:up\n-- migrate:no-transaction\nSELECT 1;\n");
    cr_assert(f.no_transaction);
    cr_assert_str_eq(f.up, "-- migrate:no-transaction\nSELECT 1;\n");
    mig_file_free(&f);
}

Test(file, malformed_files_are_refused_with_the_line)
{
    parse_fails("CREATE TABLE t (x int);\n", "no \"-- migrate:up\"");
    parse_fails("-- migrate:up\nSELECT 1;\n-- migrate:up\n", "x.sql:3: a second");
    parse_fails("-- migrate:up\n-- migrate:sideways\n", "x.sql:2: unknown directive");
    parse_fails("SELECT 1;\n-- migrate:up\nSELECT 2;\n", "SQL before");
}

Test(file, checksum_is_sha256_of_the_bytes)
{
    char hex[65];
    cr_assert_eq(mig_sha256_hex("abc", 3, hex), 0);
    cr_assert_str_eq(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    mig_file a = parse_ok("-- migrate:up\nSELECT 1;\n"), b = parse_ok("-- migrate:up\nSELECT 2;\n");
    cr_assert_str_neq(a.checksum, b.checksum);
    mig_file_free(&a);
    mig_file_free(&b);
}

Test(file, versions_compare_numerically)
{
    cr_assert_lt(db_schema_version_cmp("0009", "0010"), 0);
    cr_assert_eq(db_schema_version_cmp("0010", "10"), 0);
    cr_assert_gt(db_schema_version_cmp("20261126194000", "0002"), 0);
    cr_assert(mig_version_valid("0001"));
    cr_assert_not(mig_version_valid("1a"));
    cr_assert_not(mig_version_valid(""));
    cr_assert_lt(db_schema_version_cmp("0002", "0010"), 0);
    cr_assert_eq(db_schema_version_cmp("0002", "2"), 0);
    cr_assert_lt(db_schema_version_cmp("", "0001"), 0);
}

static char *tmpdir(void)
{
    char *d = strdup("/tmp/migunit.XXXXXX");
    cr_assert_not_null(mkdtemp(d));
    return d;
}

static void rmdir_all(const char *d)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", d);
    cr_assert_eq(system(cmd), 0);
}

Test(file, new_picks_the_next_number_and_loads_back)
{
    char *d = tmpdir(), path[4096], err[MIG_ERR_LEN];
    cr_assert_eq(mig_file_create(d, "Create-Users", path, sizeof path, err), 0, "%s", err);
    cr_assert(strstr(path, "/0001_create_users.sql"), "%s", path);
    cr_assert_eq(mig_file_create(d, "add index", path, sizeof path, err), 0, "%s", err);
    cr_assert(strstr(path, "/0002_add_index.sql"), "%s", path);
    cr_assert_eq(mig_file_create(d, "bad;name", path, sizeof path, err), -1);
    cr_assert(strstr(err, "invalid migration name"), "%s", err);
    mig_files fs;
    cr_assert_eq(mig_files_load(d, &fs, err), 0, "%s", err);
    cr_assert_eq(fs.count, 2);
    cr_assert_str_eq(fs.items[0].version, "0001");
    cr_assert_str_eq(fs.items[1].name, "add_index");
    mig_files_free(&fs);
    rmdir_all(d);
    free(d);
}

Test(file, directory_errors_name_the_files)
{
    char *d = tmpdir(), p[4096], err[MIG_ERR_LEN];
    snprintf(p, sizeof p, "%s/0001_a.sql", d);
    FILE *f = fopen(p, "w");
    fputs("-- migrate:up\nSELECT 1;\n", f);
    fclose(f);
    snprintf(p, sizeof p, "%s/001_b.sql", d);
    f = fopen(p, "w");
    fputs("-- migrate:up\nSELECT 1;\n", f);
    fclose(f);
    mig_files fs;
    cr_assert_eq(mig_files_load(d, &fs, err), -1);
    cr_assert(strstr(err, "0001_a.sql") && strstr(err, "001_b.sql"), "%s", err);
    mig_files_free(&fs);
    unlink(p);
    snprintf(p, sizeof p, "%s/notes.sql", d);
    f = fopen(p, "w");
    fclose(f);
    cr_assert_eq(mig_files_load(d, &fs, err), -1);
    cr_assert(strstr(err, "notes.sql"), "%s", err);
    mig_files_free(&fs);
    cr_assert_eq(mig_files_load("/nonexistent/dir", &fs, err), -1);
    cr_assert(strstr(err, "/nonexistent/dir"), "%s", err);
    mig_files_free(&fs);
    rmdir_all(d);
    free(d);
}

/* The pooler rewrite, through libpq's parser. */
static void rewrite(const char *url, const char *want_host, bool want_changed)
{
    bool changed;
    char err[256], *oldh = NULL, *newh = NULL;
    char *out = mig_direct_url(url, &changed, &oldh, &newh, err, sizeof err);
    cr_assert_not_null(out, "%s: %s", url, err);
    cr_assert_eq(changed, want_changed, "%s", url);
    char *host = db_url_get(out, "host");
    cr_assert_str_eq(host, want_host);
    if (changed)
        cr_assert_str_eq(newh, want_host);
    free(host);
    free(oldh);
    free(newh);
    free(out);
}

Test(pooler, uri_forms)
{
    rewrite("postgresql://u:p@ep-cool-darkness-123456-pooler.us-east-2.aws.neon.tech/neondb",
            "ep-cool-darkness-123456.us-east-2.aws.neon.tech", true);
    rewrite("postgres://u:p@ep-x-1-pooler.eu-central-1.aws.neon.tech:5432/db?sslmode=require"
            "&channel_binding=require",
            "ep-x-1.eu-central-1.aws.neon.tech", true);
    rewrite("postgresql://u:p@ep-x-1.eu-central-1.aws.neon.tech/db",
            "ep-x-1.eu-central-1.aws.neon.tech", false);
    rewrite("postgresql://u:p@localhost:5432/db", "localhost", false);
    /* -pooler elsewhere than the end of the first label is not Neon's pooler */
    rewrite("postgresql://u:p@db.ep-x-pooler.example.com/db", "db.ep-x-pooler.example.com", false);
    rewrite("postgresql://u:p@my-pooler-host.example.com/db", "my-pooler-host.example.com", false);
}

Test(pooler, keeps_every_other_parameter)
{
    bool changed;
    char err[256];
    char *out =
        mig_direct_url("postgresql://alex:s%40cret@ep-a-1-pooler.us-east-2.aws.neon.tech:6543"
                       "/neondb?sslmode=verify-full&channel_binding=require&options=-c%20x%3Dy",
                       &changed, NULL, NULL, err, sizeof err);
    cr_assert_not_null(out, "%s", err);
    cr_assert(changed);
    const char *keys[] = {"user",    "password",        "port",   "dbname",
                          "sslmode", "channel_binding", "options"};
    const char *vals[] = {"alex", "s@cret", "6543", "neondb", "verify-full", "require", "-c x=y"};
    for (size_t i = 0; i < 7; i++) {
        char *v = db_url_get(out, keys[i]);
        cr_assert_str_eq(v, vals[i], "%s", keys[i]);
        free(v);
    }
    free(out);
}

Test(pooler, key_value_forms)
{
    rewrite("host=ep-a-1-pooler.us-east-2.aws.neon.tech dbname=neondb user=u password=p",
            "ep-a-1.us-east-2.aws.neon.tech", true);
    rewrite("host=ep-a-1-pooler.us-east-2.aws.neon.tech port=5432 dbname=neondb sslmode=require",
            "ep-a-1.us-east-2.aws.neon.tech", true);
    rewrite("host='ep-a-1-pooler.us-east-2.aws.neon.tech' hostaddr=127.0.0.1 port=5432",
            "ep-a-1.us-east-2.aws.neon.tech", true);
    rewrite("host=127.0.0.1 port=5432 dbname=x", "127.0.0.1", false);
    rewrite("host=ep-a-pooler.x.neon.tech,ep-b.x.neon.tech dbname=x",
            "ep-a.x.neon.tech,ep-b.x.neon.tech", true);
}

Test(pooler, no_host_and_bad_urls)
{
    bool changed;
    char err[256];
    char *out = mig_direct_url("dbname=x", &changed, NULL, NULL, err, sizeof err);
    cr_assert_not_null(out);
    cr_assert_not(changed);
    free(out);
    cr_assert_null(
        mig_direct_url("postgresql://u@h/db?nosuch=1", &changed, NULL, NULL, err, sizeof err));
    cr_assert(strstr(err, "nosuch"), "%s", err);
}

Test(pooler, unpooled_variable_wins)
{
    const char *src;
    setenv("DATABASE_URL", "postgresql://a@pooled/db", 1);
    unsetenv("DATABASE_URL_UNPOOLED");
    cr_assert_str_eq(mig_pick_url(NULL, &src), "postgresql://a@pooled/db");
    cr_assert_str_eq(src, "DATABASE_URL");
    setenv("DATABASE_URL_UNPOOLED", "postgresql://a@direct/db", 1);
    cr_assert_str_eq(mig_pick_url(NULL, &src), "postgresql://a@direct/db");
    cr_assert_str_eq(src, "DATABASE_URL_UNPOOLED");
    cr_assert_str_eq(mig_pick_url("postgresql://flag/db", &src), "postgresql://flag/db");
    cr_assert_str_eq(src, "--url");
}

static int parse(mig_opts *o, char *err, const char *line)
{
    static char buf[512]; /* o's strings point into it until the next call */
    char *argv[32];
    int argc = 0;
    snprintf(buf, sizeof buf, "migrate %s", line);
    for (char *t = strtok(buf, " "); t && argc < 31; t = strtok(NULL, " "))
        argv[argc++] = t;
    argv[argc] = NULL;
    return mig_cli_parse(argc, argv, o, err, 256);
}

Test(cli, commands_and_options)
{
    mig_opts o;
    char err[256] = "";
    cr_assert_eq(parse(&o, err, "up --to 0003 --dry-run --dir db/m"), 0, "%s", err);
    cr_assert_str_eq(o.command, "up");
    cr_assert_str_eq(o.to, "0003");
    cr_assert(o.dry_run);
    cr_assert_str_eq(o.dir, "db/m");
    cr_assert_eq(parse(&o, err, "-q down --steps 2"), 0, "%s", err);
    cr_assert(o.quiet);
    cr_assert_eq(o.steps, 2);
    cr_assert_eq(parse(&o, err, "wait --timeout 2.5"), 0, "%s", err);
    cr_assert_float_eq(o.timeout, 2.5, 1e-9);
    cr_assert_eq(parse(&o, err, "status --exit-code"), 0, "%s", err);
    cr_assert(o.exit_code);
    cr_assert_eq(parse(&o, err, "new add_users"), 0, "%s", err);
    cr_assert_str_eq(o.arg, "add_users");
    cr_assert_eq(parse(&o, err, "--help"), 0);
    cr_assert(o.help);
    cr_assert_eq(parse(&o, err, "--version"), 0);
    cr_assert(o.version);
    cr_assert_eq(parse(&o, err, "up"), 0);
    cr_assert_float_eq(o.lock_timeout, 60, 1e-9);
    cr_assert_str_eq(o.pg_lock_timeout, "5s");
    cr_assert_str_eq(o.dir, "migrations");
}

Test(cli, usage_errors_name_the_problem)
{
    mig_opts o;
    char err[256];
    struct {
        const char *line, *want;
    } cases[] = {
        {"", "no command"},
        {"fly", "unknown command \"fly\""},
        {"status --steps 2", "--steps is not an option of \"migrate status\""},
        {"up --exit-code", "--exit-code is not an option of \"migrate up\""},
        {"down --steps 2 --to 0001", "not both"},
        {"down --steps zero", "--steps must be"},
        {"up --to v3", "--to must be a version"},
        {"wait --timeout soon", "--timeout must be"},
        {"new", "needs an argument"},
        {"baseline x1", "baseline needs a version"},
        {"up extra", "unexpected argument \"extra\""},
        {"up --bogus", "unknown option --bogus"},
        {"up --url", "needs a value"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        err[0] = '\0';
        cr_assert_eq(parse(&o, err, cases[i].line), -1, "accepted: %s", cases[i].line);
        cr_assert(strstr(err, cases[i].want), "%s -> %s", cases[i].line, err);
    }
}

Test(diff, shows_changed_lines_under_their_statement)
{
    const char *a = "CREATE TABLE t (\n    a int,\n    b int\n);\n\nCREATE INDEX i ON t (a);\n";
    const char *b = "CREATE TABLE t (\n    a int,\n    b bigint\n);\n\nCREATE INDEX i ON t (a);\n";
    cr_assert_eq(mig_diff_lines(a, a, NULL), 0);
    char *out = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&out, &len);
    cr_assert_eq(mig_diff_lines(a, b, mem), 2);
    fclose(mem);
    cr_assert_str_eq(out, " CREATE TABLE t (\n-    b int\n+    b bigint\n");
    free(out);
    cr_assert_eq(mig_diff_lines("x\n", "x\ny\n", NULL), 1);
    cr_assert_eq(mig_diff_lines("", "", NULL), 0);
}

Test(file, crlf_line_endings)
{
    mig_file f =
        parse_ok("-- migrate:no-transaction\r\n-- migrate:up\r\nSELECT 1;\r\n-- migrate:down\r\n"
                 "SELECT 2;\r\n");
    cr_assert(f.no_transaction);
    cr_assert_str_eq(f.up, "SELECT 1;\r\n");
    cr_assert_str_eq(f.down, "SELECT 2;\r\n");
    cr_assert_eq(f.down_line, 5);
    mig_file_free(&f);
}
