/* file: migration files on disk.
 *
 * A migration is `<version>_<name>.sql` in the migrations directory: the version is the leading run
 * of digits (a 4-digit sequence number such as 0001, or a UTC timestamp such as 20261126194000) and
 * versions sort numerically. The file holds two sections and optional directives:
 *
 *     -- migrate:up
 *     CREATE TABLE ...;
 *     -- migrate:down
 *     DROP TABLE ...;
 *
 *     -- migrate:no-transaction     statements run one at a time outside a transaction
 *     -- migrate:lock-timeout 30s   PostgreSQL lock_timeout for this file ("0" disables it)
 *     -- migrate:lint-ignore RULE REASON   accepts one `migrate lint` finding (lint.h)
 *
 * Directives may appear anywhere on their own line and apply to both sections. The checksum is the
 * SHA-256 (OpenSSL libcrypto) of the whole file, in hex. Not thread-safe: one caller per list. */
#ifndef MIGRATE_FILE_H
#define MIGRATE_FILE_H

#include "db/schema_version.h" /* db_schema_version_cmp: one version order for api and migrate */
#include <stdbool.h>
#include <stddef.h>

#define MIG_VERSION_MAX 32
#define MIG_ERR_LEN 1024

typedef struct mig_file {
    char version[MIG_VERSION_MAX];
    char *name;             /* the part after "<version>_", without ".sql" */
    char *path;             /* as found under the directory */
    char checksum[65];      /* sha256 of the file, lowercase hex */
    char *up, *down;        /* section bodies ("" when absent) */
    int up_line, down_line; /* line number of the first line of each body */
    bool no_transaction;
    char *lock_timeout; /* from the directive, or NULL */
} mig_file;

typedef struct mig_files {
    mig_file *items; /* sorted by version */
    size_t count;
} mig_files;

/* True when `v` is a valid version (1 to MIG_VERSION_MAX-1 digits). */
bool mig_version_valid(const char *v);

/* Parses one file. Returns 0, or -1 with err naming the file and the line. Free with mig_file_free.
 */
int mig_file_load(const char *path, mig_file *out, char err[MIG_ERR_LEN]);

/* Parses file contents already in memory (same rules; `path` is only used in messages). */
int mig_file_parse(const char *path, const char *text, size_t len, mig_file *out,
                   char err[MIG_ERR_LEN]);

void mig_file_free(mig_file *f);

/* Loads every *.sql file of `dir` except schema.sql, sorted by version. Names that do not match
 * <digits>_<name>.sql and two files with one version are errors naming the files. A missing
 * directory is an error. Free with mig_files_free (also after an error). */
int mig_files_load(const char *dir, mig_files *out, char err[MIG_ERR_LEN]);

void mig_files_free(mig_files *list);

/* The file with `version`, or NULL. */
const mig_file *mig_files_find(const mig_files *list, const char *version);

/* sha256 of data as lowercase hex into out[65]. Returns 0, -1 on a libcrypto failure. */
int mig_sha256_hex(const void *data, size_t len, char out[65]);

#define MIG_NAME_MAX 101

/* The file-name form of a migration name: letters lowered, '-' and ' ' become '_', then only
 * [a-z0-9_], 1 to 100 characters. Returns 0, or -1 with err. */
int mig_name_clean(const char *name, char out[MIG_NAME_MAX], char err[MIG_ERR_LEN]);

/* Creates `<dir>/<next>_<name>.sql` from the template, where next is one more than the highest
 * version present (4 digits, 0001 for an empty directory). `name` must be [a-z0-9_]+ (letters are
 * lowered, '-' and ' ' become '_'). Writes the new path into path_out. Returns 0, or -1 with err.
 */
int mig_file_create(const char *dir, const char *name, char *path_out, size_t path_len,
                    char err[MIG_ERR_LEN]);

/* The whole file as a malloc'd string, or NULL when it cannot be read. */
char *mig_text_read(const char *path);

/* Writes text to path through a temporary file and rename(), so a reader never sees half of it.
 * Returns 0, or -1 with errno. */
int mig_text_write(const char *path, const char *text);

#endif
