/* log: see log.h. */
#include "core/log.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "core/env.h"
#include "core/jsonw.h"

static bool log_json = true;
static log_level log_min = LOG_LVL_INFO;
static _Thread_local char log_request_id[72];

static const char *const level_names[] = {"debug", "info", "warning", "error"};

void log_configure(bool json, log_level min_level)
{
    log_json = json;
    log_min = min_level;
}

int log_configure_from_env(char *err, size_t errlen)
{
    static const char *const formats[] = {"json", "text", NULL};
    static const char *const levels[] = {"debug", "info", "warning", "error", NULL};
    char e[ENV_ERR_LEN];
    int fmt, lvl;
    if (env_choice("LOG_FORMAT", isatty(STDERR_FILENO) ? "text" : "json", formats, &fmt, e) < 0 ||
        env_choice("LOG_LEVEL", "info", levels, &lvl, e) < 0) {
        snprintf(err, errlen, "%s", e);
        return -1;
    }
    log_configure(fmt == 0, (log_level)lvl);
    return 0;
}

bool log_enabled(log_level level)
{
    return level >= log_min;
}

void log_set_request_id(const char *request_id)
{
    size_t n = request_id ? strnlen(request_id, sizeof log_request_id - 1) : 0;
    memcpy(log_request_id, request_id ? request_id : "", n);
    log_request_id[n] = '\0';
}

const char *log_request_id_get(void)
{
    return log_request_id;
}

static void write_all(const char *line, size_t len)
{
    /* one write per line (or per batch of whole lines) keeps concurrent lines whole; a short
     * write on a pipe is retried */
    while (len) {
        ssize_t n = write(STDERR_FILENO, line, len);
        if (n <= 0)
            return;
        line += n;
        len -= (size_t)n;
    }
}

/* Lines held back by a thread that asked for it (log_buffer_lines): flushed as one write when
 * LOG_BATCH_MAX bytes pile up, on a warning or error, or on log_flush(). */
#define LOG_BATCH_MAX 16384
static _Thread_local char *batch;
static _Thread_local size_t batch_len;
static _Thread_local time_t batch_sec;       /* second of the oldest line held back */
static _Thread_local time_t cached_sec = -1; /* second of this thread's latest line */

bool log_rate_pass(log_rate *rate, int per_second, long *dropped)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    if (ts.tv_sec != rate->second) {
        rate->second = ts.tv_sec;
        rate->used = 0;
    }
    if (rate->used >= per_second) {
        rate->dropped++;
        return false;
    }
    rate->used++;
    *dropped = rate->dropped;
    rate->dropped = 0;
    return true;
}

void log_flush(void)
{
    if (batch && batch_len) {
        write_all(batch, batch_len);
        batch_len = 0;
    }
}

void log_buffer_lines(bool on)
{
    log_flush();
    if (on && !batch) {
        batch = malloc(LOG_BATCH_MAX);
    } else if (!on) {
        free(batch);
        batch = NULL;
    }
}

static void write_line(const char *line, size_t len, log_level level)
{
    if (!batch || len > LOG_BATCH_MAX) {
        log_flush();
        write_all(line, len);
        return;
    }
    if (batch_len + len > LOG_BATCH_MAX || (batch_len && batch_sec != cached_sec))
        log_flush(); /* full, or held since the previous second: never late by more than ~1 s */
    if (!batch_len)
        batch_sec = cached_sec;
    memcpy(batch + batch_len, line, len);
    batch_len += len;
    if (level >= LOG_LVL_WARN)
        log_flush();
}

/* The date and time are formatted once per second per thread: strftime per line was a visible
 * share of the access log's cost. */
static void timestamp(char *buf, size_t len)
{
    static _Thread_local char cached[32];
    static _Thread_local size_t cached_len;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    if (ts.tv_sec != cached_sec) {
        struct tm tm;
        gmtime_r(&ts.tv_sec, &tm);
        cached_len = strftime(cached, sizeof cached, "%Y-%m-%dT%H:%M:%S", &tm);
        cached_sec = ts.tv_sec;
    }
    int ms = (int)(ts.tv_nsec / 1000000);
    if (len < cached_len + 6) {
        buf[0] = '\0';
        return;
    }
    memcpy(buf, cached, cached_len);
    char *p = buf + cached_len;
    *p++ = '.';
    *p++ = (char)('0' + ms / 100);
    *p++ = (char)('0' + ms / 10 % 10);
    *p++ = (char)('0' + ms % 10);
    *p++ = 'Z';
    *p = '\0';
}

/* A field's value as jansson would write it. */
static void put_value(jsonw *b, json_t *v)
{
    char num[64];
    switch (json_typeof(v)) {
    case JSON_STRING:
        jsonw_str(b, json_string_value(v));
        return;
    case JSON_INTEGER:
        jsonw_raw(
            b, num,
            (size_t)snprintf(num, sizeof num, "%" JSON_INTEGER_FORMAT, json_integer_value(v)));
        return;
    case JSON_REAL: { /* as jansson: %.17g, and ".0" when that reads as an integer */
        int n = snprintf(num, sizeof num, "%.17g", json_real_value(v));
        if (n > 0 && n < (int)sizeof num - 2 && !strpbrk(num, ".eEn")) {
            num[n++] = '.';
            num[n++] = '0';
        }
        jsonw_raw(b, num, n > 0 ? (size_t)n : 0);
        return;
    }
    case JSON_TRUE:
        jsonw_lit(b, "true");
        return;
    case JSON_FALSE:
        jsonw_lit(b, "false");
        return;
    case JSON_NULL:
        jsonw_lit(b, "null");
        return;
    default: { /* objects and arrays: rare in log lines, jansson's own text */
        char *t = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY | JSON_PRESERVE_ORDER);
        jsonw_lit(b, t ? t : "null");
        free(t);
    }
    }
}

static bool reserved_key(const char *k)
{
    return !strcmp(k, "ts") || !strcmp(k, "level") || !strcmp(k, "msg") ||
           (log_request_id[0] && !strcmp(k, "request_id"));
}

static void put_kv(jsonw *b, const log_kv_field *f)
{
    char num[64];
    int n = 0;
    switch (f->type) {
    case LOG_KV_STR:
        if (f->str)
            jsonw_str(b, f->str);
        else
            jsonw_lit(b, "null");
        return;
    case LOG_KV_INT:
        jsonw_int(b, f->num);
        return;
    case LOG_KV_REAL:
        /* milliseconds to three decimals by hand: the access log writes one per request, and
         * printf's %.3f cost as much as the rest of the line */
        if (isfinite(f->real) && fabs(f->real) < 1e15) {
            long long m = llround(f->real * 1000.0);
            unsigned long long a = m < 0 ? 0ULL - (unsigned long long)m : (unsigned long long)m;
            if (m < 0)
                jsonw_raw(b, "-", 1);
            jsonw_int(b, (long long)(a / 1000));
            char frac[4] = {'.', (char)('0' + a / 100 % 10), (char)('0' + a / 10 % 10),
                            (char)('0' + a % 10)};
            jsonw_raw(b, frac, sizeof frac);
            return;
        }
        /* %.3f of 1e300 is 305 characters, past num: %.17g always fits */
        n = isfinite(f->real) ? snprintf(num, sizeof num, "%.17g", f->real) : 0;
        if (n <= 0) {
            jsonw_lit(b, "null");
            return;
        }
        break;
    }
    jsonw_raw(b, num, n > 0 ? (size_t)n : 0);
}

/* {"ts":...,"level":...,"msg":...,"request_id":...,<fields not already there>}\n */
static void emit_json(const char *ts, log_level level, const char *msg, json_t *fields,
                      const log_kv_field *kv, int nkv)
{
    char stack[1024];
    jsonw b;
    jsonw_init(&b, stack, sizeof stack);
    jsonw_lit(&b, "{\"ts\":\"");
    jsonw_lit(&b, ts);
    jsonw_lit(&b, "\",\"level\":\"");
    jsonw_lit(&b, level_names[level]);
    jsonw_lit(&b, "\",\"msg\":");
    jsonw_str(&b, msg);
    if (log_request_id[0]) {
        jsonw_lit(&b, ",\"request_id\":");
        jsonw_str(&b, log_request_id);
    }
    const char *key;
    json_t *value;
    if (json_is_object(fields)) {
        json_object_foreach(fields, key, value)
        {
            if (reserved_key(key))
                continue;
            jsonw_raw(&b, ",", 1);
            jsonw_str(&b, key);
            jsonw_raw(&b, ":", 1);
            put_value(&b, value);
        }
    }
    for (int i = 0; i < nkv; i++) {
        if (reserved_key(kv[i].key))
            continue;
        jsonw_raw(&b, ",", 1);
        jsonw_str(&b, kv[i].key);
        jsonw_raw(&b, ":", 1);
        put_kv(&b, &kv[i]);
    }
    jsonw_raw(&b, "}\n", 2);
    size_t len;
    const char *line = jsonw_data(&b, &len);
    if (line)
        write_line(line, len, level);
    jsonw_free(&b);
}

static void emit(log_level level, json_t *fields, const char *fmt, va_list ap)
{
    char msg[2048], ts[40];
    vsnprintf(msg, sizeof msg, fmt, ap);
    timestamp(ts, sizeof ts);
    if (log_json) {
        emit_json(ts, level, msg, fields, NULL, 0);
    } else {
        char line[4096];
        int n = snprintf(line, sizeof line, "%s %-7s %s", ts, level_names[level], msg);
        if (log_request_id[0] && n < (int)sizeof line)
            n += snprintf(line + n, sizeof line - (size_t)n, " request_id=%s", log_request_id);
        const char *key;
        json_t *value;
        if (fields) {
            json_object_foreach(fields, key, value)
            {
                if (n >= (int)sizeof line)
                    break;
                char *v = json_is_string(value) ? NULL : json_dumps(value, JSON_ENCODE_ANY);
                n += snprintf(line + n, sizeof line - (size_t)n, " %s=%s", key,
                              v ? v : json_string_value(value));
                free(v);
            }
        }
        if (n >= (int)sizeof line - 1)
            n = (int)sizeof line - 2;
        line[n++] = '\n';
        write_line(line, (size_t)n, level);
    }
    json_decref(fields);
}

void log_msg(log_level level, const char *fmt, ...)
{
    if (level < log_min)
        return;
    va_list ap;
    va_start(ap, fmt);
    emit(level, NULL, fmt, ap);
    va_end(ap);
}

void log_kv(log_level level, const log_kv_field *fields, int n, const char *fmt, ...)
{
    if (level < log_min)
        return;
    va_list ap;
    va_start(ap, fmt);
    if (log_json) {
        char msg[2048], ts[40];
        const char *text = fmt; /* "request": nothing to format, once per request */
        if (strchr(fmt, '%')) {
            vsnprintf(msg, sizeof msg, fmt, ap);
            text = msg;
        }
        timestamp(ts, sizeof ts);
        emit_json(ts, level, text, NULL, fields, n);
    } else { /* text lines are for people at a terminal: the general path is fine */
        json_t *o = json_object();
        for (int i = 0; i < n; i++)
            json_object_set_new(o, fields[i].key,
                                fields[i].type == LOG_KV_INT    ? json_integer(fields[i].num)
                                : fields[i].type == LOG_KV_REAL ? json_real(fields[i].real)
                                : fields[i].str                 ? json_string(fields[i].str)
                                                                : json_null());
        emit(level, o, fmt, ap);
    }
    va_end(ap);
}

void log_fields(log_level level, json_t *fields, const char *fmt, ...)
{
    if (level < log_min) {
        json_decref(fields);
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    emit(level, fields, fmt, ap);
    va_end(ap);
}
