/* fuzz_env: .env files (core/env.c): quoting, escapes, `export`, comments, line errors; and the
 * duration syntax of every *_TIMEOUT setting. Input: the file's bytes. */
#include <stdio.h>
#include <unistd.h>

#include "core/env.h"
#include "tests/fuzz/fuzz.h"

static char path[64];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    snprintf(path, sizeof path, "/tmp/fuzz-env.%d", (int)getpid());
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        abort();
    fwrite(data, 1, size, f);
    fclose(f);
    char err[ENV_ERR_LEN];
    err[0] = '\0';
    int rc = env_load_file(path, err);
    if (rc < 0 && !err[0])
        abort(); /* a refused file is always named with its line */
    unlink(path);
    clearenv(); /* the next input starts from an empty environment */
    char *text = fuzz_cstr(data, size);
    double secs;
    (void)env_parse_seconds(text, &secs);
    free(text);
    return 0;
}
