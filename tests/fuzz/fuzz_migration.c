/* fuzz_migration: migration files (migrate/file.c: sections, directives, checksum) and the
 * statement splitter behind no-transaction migrations (mig_split, the public entry point whatever
 * lexer implements it). Input: a file name, a NUL, then the file's contents. */
#include "migrate/file.h"
#include "migrate/split.h"
#include "tests/fuzz/fuzz.h"

static void split(const char *sql, int line)
{
    mig_stmts list = {0};
    char err[512];
    (void)mig_split(sql, line, &list, err, sizeof err);
    for (size_t i = 0; i < list.count; i++)
        if (!list.items[i].sql || list.items[i].line < line)
            abort();
    mig_stmts_free(&list);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *owner;
    const char *name, *text;
    fuzz_split2(data, size, &owner, &name, &text);
    (void)mig_version_valid(name);
    mig_file f = {0};
    char err[MIG_ERR_LEN];
    err[0] = '\0';
    size_t len = size - (size_t)(text - owner);
    if (mig_file_parse(name, text, len, &f, err) == 0) {
        split(f.up, f.up_line);
        split(f.down, f.down_line);
    } else if (!err[0]) {
        abort();
    }
    mig_file_free(&f);
    split(text, 1);
    free(owner);
    return 0;
}
