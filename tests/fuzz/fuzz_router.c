/* fuzz_router: route matching, path parameters and query validation (app/router.c, app/validate.c)
 * as dispatch does them. Input: one byte choosing the method, then the raw request target
 * ("/api/u1/items/7?limit=5"), percent-encoding and all. */
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>

#include "app/router.h"
#include "tests/fuzz/fuzz.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    char err[256];
    if (router_init(err, sizeof err) < 0)
        abort();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const methods[] = {"GET",    "POST",    "PUT",  "PATCH",
                                          "DELETE", "OPTIONS", "HEAD", NULL};
    if (size < 1)
        return 0;
    const char *method = methods[data[0] % 8];
    char *target = fuzz_cstr(data + 1, size - 1);
    char *query = strchr(target, '?');
    if (query)
        *query++ = '\0';
    route_match m;
    router_match(method, target, &m);
    if (m.kind == MATCH_FOUND) {
        struct evkeyvalq q;
        bool parsed = query && evhttp_parse_query_str(query, &q) == 0;
        json_t *errors = json_array();
        const param_spec *p = m.route->params;
        for (int i = 0; p && p[i].name; i++) {
            const char *raw = p[i].in == PARAM_PATH ? m.segments[i]
                              : parsed              ? evhttp_find_header(&q, p[i].name)
                                                    : NULL;
            http_value v;
            validate_param(&p[i], raw, &v, errors);
        }
        char *dump = json_dumps(errors, JSON_COMPACT); /* every error must serialise */
        if (!dump)
            abort();
        free(dump);
        json_decref(errors);
        if (parsed)
            evhttp_clear_headers(&q);
    }
    router_match_free(&m);
    free(target);
    return 0;
}
