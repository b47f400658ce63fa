/* log: see log.h. */
#include "core/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "core/env.h"

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
    snprintf(log_request_id, sizeof log_request_id, "%s", request_id ? request_id : "");
}

static void timestamp(char *buf, size_t len)
{
    struct timeval tv;
    struct tm tm;
    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    size_t n = strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf + n, len - n, ".%03dZ", (int)(tv.tv_usec / 1000));
}

static void write_line(const char *line, size_t len)
{
    /* one write per line keeps concurrent lines whole; a short write on a pipe is retried */
    while (len) {
        ssize_t n = write(STDERR_FILENO, line, len);
        if (n <= 0)
            return;
        line += n;
        len -= (size_t)n;
    }
}

static void emit(log_level level, json_t *fields, const char *fmt, va_list ap)
{
    char msg[2048], ts[40];
    vsnprintf(msg, sizeof msg, fmt, ap);
    timestamp(ts, sizeof ts);
    if (log_json) {
        json_t *o = json_object();
        json_object_set_new(o, "ts", json_string(ts));
        json_object_set_new(o, "level", json_string(level_names[level]));
        json_object_set_new(o, "msg", json_string(msg));
        if (log_request_id[0])
            json_object_set_new(o, "request_id", json_string(log_request_id));
        if (fields)
            json_object_update_missing(o, fields);
        char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
        if (s) {
            size_t n = strlen(s);
            s[n] = '\n'; /* json_dumps leaves room: replace NUL, write n+1 bytes */
            write_line(s, n + 1);
            free(s);
        }
        json_decref(o);
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
        write_line(line, (size_t)n);
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
