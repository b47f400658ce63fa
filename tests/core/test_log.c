/* core/log: a JSON line per call, whatever the values; the access log's numbers are written by
 * hand (log_kv), so they are checked against what printf and jansson would write. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"

/* Logs f three ways with stderr going to a temporary file: a message formatted from an argument,
 * the same without one, and one with a %% (formatted); returns the first line, parsed. */
static json_t *logged(const log_kv_field *f, int n)
{
    FILE *tmp = tmpfile();
    cr_assert(tmp);
    fflush(stderr);
    int saved = dup(STDERR_FILENO);
    dup2(fileno(tmp), STDERR_FILENO);
    log_configure(true, LOG_LVL_INFO);
    log_kv(LOG_LVL_INFO, f, n, "%s", "request");
    log_kv(LOG_LVL_INFO, f, n, "request");
    log_kv(LOG_LVL_INFO, f, n, "100%%");
    log_flush();
    dup2(saved, STDERR_FILENO);
    close(saved);
    char text[4096] = {0};
    rewind(tmp);
    size_t len = fread(text, 1, sizeof text - 1, tmp);
    fclose(tmp);
    cr_assert(len > 0 && strchr(text, '\n'), "nothing logged");
    json_t *first = NULL;
    const char *want[] = {"request", "request", "100%"};
    char *p = text;
    for (int i = 0; i < 3; i++) {
        char *end = strchr(p, '\n');
        cr_assert(end, "line %d missing: %s", i + 1, text);
        json_error_t err;
        json_t *line = json_loadb(p, (size_t)(end - p), 0, &err);
        cr_assert(line, "not JSON: %.*s (%s)", (int)(end - p), p, err.text);
        cr_assert_str_eq(json_string_value(json_object_get(line, "msg")), want[i]);
        if (i)
            json_decref(line);
        else
            first = line;
        p = end + 1;
    }
    return first;
}

Test(log, numbers_in_a_json_line_are_what_printf_would_write)
{
    const double reals[] = {0, 0.0004, 0.0005, 1.2345, 3.14159, 12.5, 999.9995, 123456.789, -2.5};
    for (size_t i = 0; i < sizeof reals / sizeof *reals; i++) {
        log_kv_field f[] = {
            {.key = "duration_ms", .type = LOG_KV_REAL, .real = reals[i]},
            {.key = "min", .type = LOG_KV_INT, .num = LLONG_MIN},
            {.key = "max", .type = LOG_KV_INT, .num = LLONG_MAX},
            {.key = "status", .type = LOG_KV_INT, .num = 201},
        };
        json_t *line = logged(f, 4);
        char want[64];
        snprintf(want, sizeof want, "%.3f", reals[i]);
        double got = json_number_value(json_object_get(line, "duration_ms"));
        cr_expect(fabs(got - strtod(want, NULL)) < 0.0011, "%g logged as %g, printf says %s",
                  reals[i], got, want);
        cr_expect_eq(json_integer_value(json_object_get(line, "min")), LLONG_MIN);
        cr_expect_eq(json_integer_value(json_object_get(line, "max")), LLONG_MAX);
        cr_expect_eq(json_integer_value(json_object_get(line, "status")), 201);
        json_decref(line);
    }
    log_kv_field odd[] = {{.key = "x", .type = LOG_KV_REAL, .real = NAN},
                          {.key = "y", .type = LOG_KV_REAL, .real = 1e300}};
    json_t *line = logged(odd, 2);
    cr_expect(json_is_null(json_object_get(line, "x")), "NaN is null");
    cr_expect(json_is_number(json_object_get(line, "y")), "1e300 is a number");
    json_decref(line);
}
