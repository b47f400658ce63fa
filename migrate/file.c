/* file: see file.h. */
#include "migrate/file.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "migrate/split.h"

bool mig_version_valid(const char *v)
{
    size_t n = strlen(v);
    if (n == 0 || n >= MIG_VERSION_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isdigit((unsigned char)v[i]))
            return false;
    return true;
}

int mig_sha256_hex(const void *data, size_t len, char out[65])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    if (!EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL) || mdlen != 32)
        return -1;
    for (unsigned i = 0; i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
    return 0;
}

void mig_file_free(mig_file *f)
{
    free(f->name);
    free(f->path);
    free(f->up);
    free(f->down);
    free(f->lock_timeout);
    memset(f, 0, sizeof *f);
}

/* Splits "<digits>_<name>.sql" into version and name. */
static int parse_name(const char *base, mig_file *f)
{
    size_t n = strlen(base), d = strspn(base, "0123456789");
    if (n < 5 || strcmp(base + n - 4, ".sql") || d == 0 || d >= MIG_VERSION_MAX || base[d] != '_' ||
        d + 1 >= n - 4)
        return -1;
    memcpy(f->version, base, d);
    f->version[d] = '\0';
    f->name = strndup(base + d + 1, n - 4 - d - 1);
    return f->name ? 0 : -1;
}

typedef enum { SEC_NONE, SEC_UP, SEC_DOWN } section;

/* Handles one "-- migrate:..." line. Returns the section it opens (or the current one), -1 on
 * error. */
static int directive(const char *path, int lineno, const char *line, size_t len, section cur,
                     int *seen, mig_file *f, char err[MIG_ERR_LEN])
{
    char word[64] = "", arg[64] = "";
    char buf[256];
    snprintf(buf, sizeof buf, "%.*s", (int)(len < 255 ? len : 255), line);
    int got = sscanf(buf, "-- migrate:%63s %63s", word, arg);
    if (got < 1)
        got = 0;
    if (!strcmp(word, "up") || !strcmp(word, "down")) {
        section s = word[0] == 'u' ? SEC_UP : SEC_DOWN;
        if (seen[s]) {
            snprintf(err, MIG_ERR_LEN, "%s:%d: a second \"-- migrate:%s\" section", path, lineno,
                     word);
            return -1;
        }
        seen[s] = 1;
        return s;
    }
    if (!strcmp(word, "no-transaction")) {
        f->no_transaction = true;
        return cur;
    }
    if (!strcmp(word, "lint-ignore")) /* read by migrate lint (lint.h) */
        return cur;
    if (!strcmp(word, "lock-timeout") && got == 2) {
        free(f->lock_timeout);
        f->lock_timeout = strdup(arg);
        return cur;
    }
    snprintf(err, MIG_ERR_LEN,
             "%s:%d: unknown directive \"%s\" (known: -- migrate:up, -- migrate:down, "
             "-- migrate:no-transaction, -- migrate:lock-timeout <duration>, "
             "-- migrate:lint-ignore <rule> <reason>)",
             path, lineno, buf);
    return -1;
}

/* Copies text[from, to) into *dst. */
static int set_body(char **dst, const char *text, size_t from, size_t to)
{
    free(*dst);
    *dst = strndup(text + from, to > from ? to - from : 0);
    return *dst ? 0 : -1;
}

static int check_preamble(const char *path, const char *text, size_t len, char err[MIG_ERR_LEN])
{
    char *pre = strndup(text, len), e[256];
    mig_stmts st = {0};
    int bad = !pre || mig_split(pre, 1, &st, e, sizeof e) < 0 || st.count > 0;
    if (bad)
        snprintf(err, MIG_ERR_LEN, "%s:%d: SQL before \"-- migrate:up\" (put it in a section)",
                 path, st.count ? st.items[0].line : 1);
    mig_stmts_free(&st);
    free(pre);
    return bad ? -1 : 0;
}

int mig_file_parse(const char *path, const char *text, size_t len, mig_file *f,
                   char err[MIG_ERR_LEN])
{
    if (memchr(text, '\0', len)) {
        snprintf(err, MIG_ERR_LEN, "%s: contains a NUL byte (not a text file)", path);
        return -1;
    }
    if (mig_sha256_hex(text, len, f->checksum) < 0) {
        snprintf(err, MIG_ERR_LEN, "%s: sha256 failed", path);
        return -1;
    }
    section cur = SEC_NONE;
    int seen[3] = {0};
    size_t body_start = 0, first_directive = len;
    int lineno = 0, body_line = 1;
    for (size_t pos = 0; pos < len;) {
        const char *nl = memchr(text + pos, '\n', len - pos);
        size_t end = nl ? (size_t)(nl - text) : len, next = nl ? end + 1 : len;
        lineno++;
        if (end - pos >= 11 && !strncmp(text + pos, "-- migrate:", 11)) {
            int s = directive(path, lineno, text + pos, end - pos, cur, seen, f, err);
            if (s < 0)
                return -1;
            if (s != (int)cur) {
                if (cur == SEC_UP && set_body(&f->up, text, body_start, pos) < 0)
                    return -1;
                if (cur == SEC_DOWN && set_body(&f->down, text, body_start, pos) < 0)
                    return -1;
                if (first_directive == len)
                    first_directive = pos;
                cur = s;
                body_start = next;
                body_line = lineno + 1;
                if (s == SEC_UP)
                    f->up_line = body_line;
                else
                    f->down_line = body_line;
            } else if (first_directive == len) {
                first_directive = pos;
            }
        }
        pos = next;
    }
    if (cur == SEC_UP && set_body(&f->up, text, body_start, len) < 0)
        return -1;
    if (cur == SEC_DOWN && set_body(&f->down, text, body_start, len) < 0)
        return -1;
    if (!seen[SEC_UP]) {
        snprintf(err, MIG_ERR_LEN, "%s: has no \"-- migrate:up\" line", path);
        return -1;
    }
    if (!f->down && !(f->down = strdup("")))
        return -1;
    return check_preamble(path, text, first_directive, err);
}

static int read_all(const char *path, char **out, size_t *len, char err[MIG_ERR_LEN])
{
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        snprintf(err, MIG_ERR_LEN, "cannot open %s: %s", path, strerror(errno));
        return -1;
    }
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    size_t r;
    while (buf && (r = fread(buf + n, 1, cap - n - 1, fp)) > 0) {
        n += r;
        if (cap - n - 1 == 0) {
            char *b = realloc(buf, cap *= 2);
            if (!b) {
                free(buf);
                buf = NULL;
            }
            buf = b;
        }
    }
    int bad = ferror(fp) || !buf;
    fclose(fp);
    if (bad) {
        free(buf);
        snprintf(err, MIG_ERR_LEN, "cannot read %s", path);
        return -1;
    }
    buf[n] = '\0';
    *out = buf;
    *len = n;
    return 0;
}

int mig_file_load(const char *path, mig_file *f, char err[MIG_ERR_LEN])
{
    memset(f, 0, sizeof *f);
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    if (parse_name(base, f) < 0) {
        snprintf(
            err, MIG_ERR_LEN,
            "%s: the name must be <version>_<name>.sql with a numeric version (0001_create_x.sql)",
            path);
        return -1;
    }
    if (!(f->path = strdup(path)))
        return -1;
    char *text;
    size_t len;
    if (read_all(path, &text, &len, err) < 0)
        return -1;
    int rc = mig_file_parse(path, text, len, f, err);
    free(text);
    return rc;
}

static int by_version(const void *a, const void *b)
{
    return db_schema_version_cmp(((const mig_file *)a)->version, ((const mig_file *)b)->version);
}

void mig_files_free(mig_files *list)
{
    for (size_t i = 0; i < list->count; i++)
        mig_file_free(&list->items[i]);
    free(list->items);
    list->items = NULL;
    list->count = 0;
}

static bool wanted(const char *name)
{
    size_t n = strlen(name);
    return n > 4 && !strcmp(name + n - 4, ".sql") && strcmp(name, "schema.sql") && name[0] != '.';
}

int mig_files_load(const char *dir, mig_files *out, char err[MIG_ERR_LEN])
{
    out->items = NULL;
    out->count = 0;
    DIR *d = opendir(dir);
    if (!d) {
        snprintf(err, MIG_ERR_LEN, "cannot open the migrations directory %s: %s", dir,
                 strerror(errno));
        return -1;
    }
    struct dirent *e;
    int rc = 0;
    while (rc == 0 && (e = readdir(d))) {
        if (!wanted(e->d_name))
            continue;
        mig_file *items = realloc(out->items, (out->count + 1) * sizeof *items);
        if (!items) {
            rc = -1;
            break;
        }
        out->items = items;
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        rc = mig_file_load(path, &items[out->count], err);
        out->count++;
    }
    closedir(d);
    if (rc < 0)
        return -1;
    if (out->count > 1)
        qsort(out->items, out->count, sizeof *out->items, by_version);
    for (size_t i = 1; i < out->count; i++)
        if (!db_schema_version_cmp(out->items[i - 1].version, out->items[i].version)) {
            snprintf(err, MIG_ERR_LEN, "%s and %s have the same version %s: renumber one of them",
                     out->items[i - 1].path, out->items[i].path, out->items[i].version);
            return -1;
        }
    return 0;
}

const mig_file *mig_files_find(const mig_files *list, const char *version)
{
    for (size_t i = 0; i < list->count; i++)
        if (!db_schema_version_cmp(list->items[i].version, version))
            return &list->items[i];
    return NULL;
}

static const char template_text[] =
    "-- %s: describe what this migration changes and why.\n"
    "-- Add \"-- migrate:no-transaction\" for CREATE INDEX CONCURRENTLY (one statement at a "
    "time),\n"
    "-- \"-- migrate:lock-timeout 30s\" to wait longer than the default for table locks.\n"
    "\n"
    "-- migrate:up\n"
    "\n"
    "\n"
    "-- migrate:down\n"
    "\n";

int mig_name_clean(const char *name, char out[MIG_NAME_MAX], char err[MIG_ERR_LEN])
{
    size_t n = 0;
    for (const char *p = name; *p; p++) {
        char c = (char)tolower((unsigned char)*p);
        if (c == '-' || c == ' ')
            c = '_';
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_') ||
            n + 1 >= MIG_NAME_MAX) {
            snprintf(err, MIG_ERR_LEN,
                     "invalid migration name \"%s\": use letters, digits and _ (up to 100)", name);
            return -1;
        }
        out[n++] = c;
    }
    out[n] = '\0';
    if (n == 0) {
        snprintf(err, MIG_ERR_LEN, "the migration name is empty");
        return -1;
    }
    return 0;
}

int mig_file_create(const char *dir, const char *name, char *path_out, size_t path_len,
                    char err[MIG_ERR_LEN])
{
    char clean[MIG_NAME_MAX];
    if (mig_name_clean(name, clean, err) < 0)
        return -1;
    mig_files files;
    if (mig_files_load(dir, &files, err) < 0) {
        mig_files_free(&files);
        return -1;
    }
    unsigned long long next = 1;
    if (files.count) {
        const char *last = files.items[files.count - 1].version;
        next = strtoull(last, NULL, 10) + 1;
    }
    mig_files_free(&files);
    snprintf(path_out, path_len, "%s/%04llu_%s.sql", dir, next, clean);
    int fd = open(path_out, O_WRONLY | O_CREAT | O_EXCL, 0644);
    if (fd < 0) {
        snprintf(err, MIG_ERR_LEN, "cannot create %s: %s", path_out, strerror(errno));
        return -1;
    }
    char body[1024];
    int len = snprintf(body, sizeof body, template_text, clean);
    int ok = write(fd, body, (size_t)len) == len;
    ok = (close(fd) == 0) && ok;
    if (!ok) {
        snprintf(err, MIG_ERR_LEN, "cannot write %s: %s", path_out, strerror(errno));
        return -1;
    }
    return 0;
}

char *mig_text_read(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *out = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&out, &len);
    char chunk[8192];
    size_t n;
    while (mem && (n = fread(chunk, 1, sizeof chunk, f)) > 0)
        fwrite(chunk, 1, n, mem);
    if (mem)
        fclose(mem);
    fclose(f);
    return out;
}

/* Writes text to path through a temporary file, so a reader never sees half a schema. */
int mig_text_write(const char *path, const char *text)
{
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid());
    FILE *f = fopen(tmp, "wb");
    if (!f)
        return -1;
    size_t n = strlen(text);
    int ok = fwrite(text, 1, n, f) == n;
    ok = (fclose(f) == 0) && ok;
    if (!ok || rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        errno = e;
        return -1;
    }
    return 0;
}
