/* replay: a main() for the harnesses without libFuzzer (gcc, or the sanitized suite build). Runs
 * LLVMFuzzerTestOneInput once on every file named, or on every file of every directory named, and
 * says how many it ran: the seed corpora and the regression inputs of past findings, in `make
 * test`. A crash is the sanitizers' report and a non-zero exit, as under libFuzzer. */
#include <dirent.h>
#include <stdio.h>
#include <sys/stat.h>

#include "tests/fuzz/fuzz.h"

__attribute__((weak)) int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    return 0;
}

static int run_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        perror(path);
        return -1;
    }
    uint8_t *buf = NULL;
    size_t len = 0, cap = 0, n;
    uint8_t chunk[4096];
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
        if (len + n > cap) {
            cap = (len + n) * 2;
            buf = realloc(buf, cap);
            if (!buf)
                abort();
        }
        memcpy(buf + len, chunk, n);
        len += n;
    }
    fclose(f);
    /* an exact-size copy, so that ASan catches a read one past the input as libFuzzer does */
    uint8_t *exact = malloc(len ? len : 1);
    if (!exact)
        abort();
    if (len)
        memcpy(exact, buf, len);
    free(buf);
    LLVMFuzzerTestOneInput(exact, len);
    free(exact);
    return 0;
}

static int cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int main(int argc, char **argv)
{
    LLVMFuzzerInitialize(&argc, &argv);
    int runs = 0;
    for (int i = 1; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) < 0) {
            perror(argv[i]);
            return 1;
        }
        if (!S_ISDIR(st.st_mode)) {
            if (run_file(argv[i]) < 0)
                return 1;
            runs++;
            continue;
        }
        struct dirent **names;
        int n = scandir(argv[i], &names, NULL, NULL);
        if (n < 0) {
            perror(argv[i]);
            return 1;
        }
        char **paths = calloc((size_t)n, sizeof *paths);
        int np = 0;
        for (int k = 0; k < n; k++) {
            if (names[k]->d_name[0] != '.' &&
                asprintf(&paths[np], "%s/%s", argv[i], names[k]->d_name) >= 0)
                np++;
            free(names[k]);
        }
        free(names);
        qsort(paths, (size_t)np, sizeof *paths, cmp); /* the same order every run */
        for (int k = 0; k < np; k++) {
            if (run_file(paths[k]) < 0)
                return 1;
            runs++;
            free(paths[k]);
        }
        free(paths);
    }
    if (runs == 0) {
        fprintf(stderr, "replay: no inputs (give corpus directories or files)\n");
        return 1;
    }
    printf("replay: %d input(s), no crash\n", runs);
    return 0;
}
