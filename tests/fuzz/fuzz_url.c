/* fuzz_url: connection URLs (db/url.c): the check with its one-line errors, masking the password,
 * reading and setting a parameter. Input: the URL, optionally a NUL and a parameter name. */
#include "db/url.h"
#include "tests/fuzz/fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *owner;
    const char *url, *key;
    fuzz_split2(data, size, &owner, &url, &key);
    if (!*key)
        key = "application_name";
    char err[512];
    err[0] = '\0';
    if (db_url_check(url, err, sizeof err) < 0 && !err[0])
        abort();
    char *masked = db_url_mask(url);
    free(masked);
    char *got = db_url_get(url, key);
    free(got);
    char *with = db_url_with(url, key, "fuzz value/&=%");
    if (with) {
        char *back = db_url_get(with, key);
        free(back);
    }
    free(with);
    free(owner);
    return 0;
}
