/* fuzz_body: JSON request bodies against the route table's body specs (app/validate.c), and the
 * UTF-8 checks they rest on. Input: one byte choosing the route with a body, then the body. */
#include <jansson.h>

#include "app/router.h"
#include "tests/fuzz/fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const body_spec *specs[16];
    int n = 0;
    for (int i = 0; i < app_nroutes && n < 16; i++)
        if (app_routes[i].body)
            specs[n++] = app_routes[i].body;
    if (n == 0)
        return 0;
    const body_spec *spec = specs[data[0] % n];
    const char *body = (const char *)data + 1;
    size_t len = size - 1;
    if (utf8_valid(body, len))
        (void)utf8_chars(body, len);
    json_t *errors = json_array();
    json_t *obj = validate_body(spec, body, len, errors);
    if (obj && json_array_size(errors))
        abort(); /* a body is either accepted or refused with reasons, never both */
    if (!obj && !json_array_size(errors))
        abort();
    char *dump = json_dumps(errors, JSON_COMPACT);
    if (!dump)
        abort();
    free(dump);
    json_decref(obj);
    json_decref(errors);
    return 0;
}
