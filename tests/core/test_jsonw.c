/* core/jsonw: the hand-written JSON must be the very text jansson writes, whatever the storage. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "core/jsonw.h"

static void same_as_jansson(const char *s)
{
    jsonw w = {0};
    jsonw_str(&w, s);
    size_t len;
    char *mine = jsonw_take(&w, &len);
    json_t *j = json_string(s);
    cr_assert_not_null(j, "jansson refused %s", s);
    char *theirs = json_dumps(j, JSON_ENCODE_ANY);
    cr_assert_str_eq(mine, theirs);
    cr_assert_eq(len, strlen(theirs));
    free(mine), free(theirs), json_decref(j);
}

Test(jsonw, strings_are_escaped_exactly_like_jansson)
{
    const char *cases[] = {"",
                           "plain",
                           "quote \" and backslash \\",
                           "tab\tnew\nline\rcr",
                           "\x01\x02\x1f bell\x07 bs\b ff\f",
                           "'; DROP TABLE tasks; --",
                           "\xc3\xa9\xe4\xb8\xad\xf0\x9f\x98\x80 emoji and CJK",
                           "100% _literal_",
                           "slash / stays"};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        same_as_jansson(cases[i]);
}

/* jsonw_str scans plain ASCII 8 bytes at a time: every byte that needs care, at every offset of
 * a word and across word ends, in strings shorter and longer than a word. */
Test(jsonw, each_special_byte_at_each_offset_is_escaped_like_jansson)
{
    const char *specials[] = {
        "\"",          "\\", "\n", "\x01", "\x1f", "\x7f", " ", "\xc3\xa9", "\xf0\x9f\x98\x80",
        "\xe4\xb8\xad"};
    const char base[] = "abcdefghijklmnopqrstuvwxyz0123";
    for (size_t len = 0; len < sizeof base; len += len < 10 ? 1 : 7)
        for (size_t at = 0; at <= len; at++)
            for (size_t k = 0; k < sizeof specials / sizeof *specials; k++) {
                char s[64];
                snprintf(s, sizeof s, "%.*s%s%.*s", (int)at, base, specials[k], (int)(len - at),
                         base + at);
                same_as_jansson(s);
            }
}

Test(jsonw, invalid_utf8_becomes_replacement_character)
{
    /* a lone continuation byte, an overlong form, a surrogate, a byte that never starts a sequence
     */
    const char *bad[] = {"a\x80z", "\xc0\xaf", "\xed\xa0\x80", "\xf5\x80\x80\x80"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        jsonw w = {0};
        jsonw_str(&w, bad[i]);
        size_t len;
        char *out = jsonw_take(&w, &len);
        cr_assert(strstr(out, "\\uFFFD"), "%s", out);
        json_error_t e;
        json_t *back = json_loads(out, JSON_DECODE_ANY, &e);
        cr_assert_not_null(back, "not valid JSON: %s (%s)", out, e.text);
        json_decref(back);
        free(out);
    }
}

Test(jsonw, caller_storage_then_heap)
{
    char small[8];
    jsonw w;
    jsonw_init(&w, small, sizeof small);
    jsonw_lit(&w, "[1]");
    size_t len;
    cr_assert_eq(jsonw_data(&w, &len), small, "short text stays in the caller's storage");
    cr_assert_eq(len, 3);
    jsonw_lit(&w, "[2,3,4,5,6,7,8,9,10]");
    const char *d = jsonw_data(&w, &len);
    cr_assert_neq(d, small, "long text moved to the heap");
    cr_assert_eq(len, 23);
    cr_assert_eq(memcmp(d, "[1][2,3,4,5,6,7,8,9,10]", len), 0);
    jsonw_free(&w);

    jsonw_init(&w, small, sizeof small);
    jsonw_lit(&w, "{}");
    char *taken = jsonw_take(&w, &len);
    cr_assert_neq(taken, small, "take hands out heap memory even from caller storage");
    cr_assert_str_eq(taken, "{}");
    free(taken);
}

Test(jsonw, integers_are_written_like_jansson)
{
    const long long cases[] = {0,
                               7,
                               -1,
                               10,
                               -10,
                               2147483647,
                               -2147483648LL,
                               1000000000000LL,
                               9223372036854775807LL,
                               -9223372036854775807LL - 1};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char storage[4]; /* grows past the caller's storage on the way */
        jsonw w;
        jsonw_init(&w, storage, sizeof storage);
        jsonw_int(&w, cases[i]);
        size_t len;
        char *mine = jsonw_take(&w, &len);
        json_t *j = json_integer(cases[i]);
        char *theirs = json_dumps(j, JSON_ENCODE_ANY);
        cr_assert_str_eq(mine, theirs);
        cr_assert_eq(len, strlen(theirs));
        free(mine), free(theirs), json_decref(j);
    }
}
