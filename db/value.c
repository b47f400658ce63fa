/* value: see value.h. libpq gives binary values as they came off the wire; it has no decoders
 * for them (libpqtypes would, but Debian does not package it), so the three types the API reads
 * are decoded here, following PostgreSQL's own send functions (int8send, boolsend,
 * timestamp_send) and its EncodeDateTime for the text it would have written. */
#include "db/value.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t be64(const char *p)
{
    const unsigned char *u = (const unsigned char *)p;
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | u[i];
    return v;
}

static bool binary(const PGresult *r, int row, int col, int len)
{
    return PQfformat(r, col) == 1 && PQgetlength(r, row, col) == len;
}

int64_t db_value_int8(const PGresult *r, int row, int col)
{
    if (binary(r, row, col, 8))
        return (int64_t)be64(PQgetvalue(r, row, col));
    return strtoll(PQgetvalue(r, row, col), NULL, 10);
}

char *db_value_int8_text(const PGresult *r, int row, int col, char out[24])
{
    if (PQfformat(r, col) == 1)
        snprintf(out, 24, "%lld", (long long)db_value_int8(r, row, col));
    else
        snprintf(out, 24, "%s", PQgetvalue(r, row, col));
    return out;
}

bool db_value_bool(const PGresult *r, int row, int col)
{
    if (binary(r, row, col, 1))
        return PQgetvalue(r, row, col)[0] != 0;
    return PQgetvalue(r, row, col)[0] == 't';
}

/* Days since 1970-01-01 -> civil date (Howard Hinnant's days_from_civil, inverted), proleptic
 * Gregorian as PostgreSQL's j2date. */
static void civil(int64_t z, long long *y, unsigned *m, unsigned *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (long long)yoe + era * 400 + (*m <= 2);
}

/* "00" to "99": two digits a step */
static const char pairs[201] =
    "00010203040506070809101112131415161718192021222324252627282930313233"
    "34353637383940414243444546474849505152535455565758596061626364656667"
    "6869707172737475767778798081828384858687888990919293949596979899";

/* v as exactly `width` decimal digits, zero-padded (v < 10^width; width even). */
static void put_digits(char *o, unsigned v, int width)
{
    for (int i = width - 2; i >= 0; i -= 2) {
        memcpy(o + i, pairs + 2 * (v % 100), 2);
        v /= 100;
    }
}

#define USECS_PER_DAY 86400000000LL
#define EPOCH_2000_DAYS 10957 /* 1970-01-01 to 2000-01-01, PostgreSQL's timestamp epoch */

static size_t iso_time(int64_t us, char out[DB_ISO_TIME_MAX]);

size_t db_value_iso_time(const PGresult *r, int row, int col, char out[DB_ISO_TIME_MAX])
{
    if (!binary(r, row, col, 8)) { /* "2026-11-26 19:40:00.12" -> "2026-11-26T19:40:00.12Z" */
        int n = snprintf(out, DB_ISO_TIME_MAX, "%sZ", PQgetvalue(r, row, col));
        char *space = strchr(out, ' ');
        if (space)
            *space = 'T';
        return n < 0 ? 0 : n >= DB_ISO_TIME_MAX ? DB_ISO_TIME_MAX - 1 : (size_t)n;
    }
    int64_t us = (int64_t)be64(PQgetvalue(r, row, col));
    if (us == INT64_MAX || us == INT64_MIN) /* as the text path writes 'infinity' */
        return (size_t)snprintf(out, DB_ISO_TIME_MAX, "%sinfinityZ", us == INT64_MIN ? "-" : "");
    /* the thread's last value: a task never updated has updated_at = created_at, written twice */
    static _Thread_local struct {
        int64_t us;
        size_t n;
        char text[DB_ISO_TIME_MAX];
    } last;
    if (last.n && last.us == us) {
        memcpy(out, last.text, last.n + 1);
        return last.n;
    }
    size_t n = iso_time(us, out);
    last.us = us;
    last.n = n;
    memcpy(last.text, out, n + 1);
    return n;
}

/* us (microseconds since 2000-01-01, neither infinity) as ISO 8601 in UTC with a Z. */
static size_t iso_time(int64_t us, char out[DB_ISO_TIME_MAX])
{
    int64_t days = us / USECS_PER_DAY, t = us % USECS_PER_DAY;
    if (t < 0) {
        t += USECS_PER_DAY;
        days--;
    }
    /* the date of the thread's last day: a page of tasks is mostly a few days */
    static _Thread_local struct {
        int64_t days;
        bool set, bc;
        size_t n;
        char text[32];
    } day;
    if (!day.set || day.days != days) {
        long long y;
        unsigned mo, d;
        civil(days + EPOCH_2000_DAYS, &y, &mo, &d);
        day.bc = y <= 0; /* year 0 is 1 BC */
        if (day.bc)
            y = 1 - y;
        /* digits by hand, not snprintf: a page of tasks has 40 of these, on the loop's thread */
        char *o = day.text;
        if (y > 9999) {
            o += snprintf(o, 24, "%lld", y);
        } else {
            put_digits(o, (unsigned)y, 4);
            o += 4;
        }
        *o++ = '-';
        put_digits(o, mo, 2);
        o[2] = '-';
        put_digits(o + 3, d, 2);
        day.n = (size_t)(o + 5 - day.text);
        day.days = days;
        day.set = true;
    }
    unsigned frac = (unsigned)(t % 1000000), secs = (unsigned)(t / 1000000);
    memcpy(out, day.text, day.n);
    char *o = out + day.n;
    unsigned parts[3] = {secs / 3600, secs / 60 % 60, secs % 60};
    const char seps[3] = {'T', ':', ':'};
    for (int i = 0; i < 3; i++) {
        *o++ = seps[i];
        put_digits(o, parts[i], 2);
        o += 2;
    }
    if (frac) { /* PostgreSQL's AppendSeconds: six digits, trailing zeros dropped */
        *o++ = '.';
        put_digits(o, frac, 6);
        int fl = 6;
        while (o[fl - 1] == '0')
            fl--;
        o += fl;
    }
    if (day.bc) {
        memcpy(o, " BC", 3);
        o += 3;
    }
    *o++ = 'Z';
    *o = '\0';
    size_t n = (size_t)(o - out);
    return n;
}
