/* fuzz_auth: the Authorization header: bearer scheme, JWT structure, base64url, header and claims
 * JSON, signature (app/auth.c), with and without the token cache. Input: the header value. The
 * seeds hold tokens signed with the secret below, so the fuzzer starts past the signature check. */
#include "app/auth.h"
#include "tests/fuzz/fuzz.h"

#define SECRET "fuzz-secret-fuzz-secret-fuzz-secret-0123"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    if (auth_configure(SECRET, strlen(SECRET)) < 0)
        abort();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *header = fuzz_cstr(data, size);
    char sub[AUTH_SUB_MAX];
    const char *why = NULL;
    int a = auth_verify(NULL, header, sub, &why);
    if (a < 0 && !why)
        abort(); /* every refusal has a reason */
    if (a == 0 && strlen(sub) >= AUTH_SUB_MAX)
        abort();
    auth_cache *cache = auth_cache_new();
    for (int i = 0; i < 2; i++) { /* a miss, then a hit: the same verdict */
        int b = auth_verify(cache, header, sub, &why);
        if ((a == 0) != (b == 0))
            abort();
    }
    auth_cache_free(cache);
    free(header);
    return 0;
}
