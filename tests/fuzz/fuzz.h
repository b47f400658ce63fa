/* fuzz: what every harness shares. Each fuzz_<name>.c defines LLVMFuzzerTestOneInput (and may
 * define LLVMFuzzerInitialize); it is linked with libFuzzer in a fuzz build (-DFUZZ=ON, clang,
 * `make fuzz`) and with replay.c otherwise, which runs it once on every file of the seed corpora:
 * that is the ctest `make test` runs, with the suite's ASan+UBSan, under gcc or clang. */
#ifndef TESTS_FUZZ_H
#define TESTS_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* A NUL-terminated copy of the input (what the parsers of C strings get). Caller frees. */
static inline char *fuzz_cstr(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (!s)
        abort();
    memcpy(s, data, size);
    s[size] = '\0';
    return s;
}

/* Splits the input at its first NUL byte: a, then b (both NUL-terminated, b "" when there is no
 * NUL). Both point into one allocation returned in *owner. */
static inline void fuzz_split2(const uint8_t *data, size_t size, char **owner, const char **a,
                               const char **b)
{
    char *s = fuzz_cstr(data, size);
    size_t n = strlen(s);
    *owner = s;
    *a = s;
    *b = n < size ? s + n + 1 : s + n;
}

#endif
