/* log: one small logger for every binary. One line per event on stderr, either JSON
 * (LOG_FORMAT=json, the default when stderr is not a terminal) or readable text (LOG_FORMAT=text).
 *
 *   {"ts":"2026-11-26T19:40:00.123Z","level":"info","msg":"listening","request_id":"...","port":8000}
 *
 * Thread-safe: each line is formatted in full and written with a single write(2), so lines from
 * different threads never interleave. Never pass a password or a token to it: mask connection
 * strings with db_url_mask() first. */
#ifndef CORE_LOG_H
#define CORE_LOG_H

#include <jansson.h>
#include <stdarg.h>
#include <stdbool.h>

typedef enum { LOG_LVL_DEBUG, LOG_LVL_INFO, LOG_LVL_WARN, LOG_LVL_ERROR } log_level;

/* Reads LOG_FORMAT (json|text) and LOG_LEVEL (debug|info|warning|error). Returns 0, or -1 with a
 * one-line message in err naming the variable. Call once at startup, before other threads exist. */
int log_configure_from_env(char *err, size_t errlen);

/* Overrides the configuration (tests, CLIs with -q). */
void log_configure(bool json, log_level min_level);

/* True when messages of `level` are written: lets callers skip building fields nobody will read. */
bool log_enabled(log_level level);

/* Sets the request id that this thread adds to each line (copied; NULL clears it). */
void log_set_request_id(const char *request_id);

/* This thread's current request id ("" when none); valid until the next log_set_request_id. */
const char *log_request_id_get(void);

void log_msg(log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Like log_msg with extra key/value fields; takes ownership of `fields` (a JSON object, may be
 * NULL). */
void log_fields(log_level level, json_t *fields, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Holds this thread's lines back and writes them together (on log_flush, when 16 KB pile up, when
 * a line comes in a later second than the oldest one held, or at once for a warning or an error),
 * so that an event loop writing one access-log line per request pays one write(2) per loop
 * iteration instead of one per line. Lines stay whole and in order. A thread that turns it on must
 * call log_flush() before it blocks (so that lines are never held while it sleeps) and turn it off
 * (which flushes and frees the buffer) before it exits. */
void log_buffer_lines(bool on);

/* Writes the lines this thread holds back, if any. */
void log_flush(void);

/* For a line any client can cause once per request (a failed authentication): at most
 * `per_second` such lines a second pass; the others are counted, and the count is given with the
 * next one that passes (*dropped), so that a flood writes a few lines a second, not one per
 * request. `rate` is the caller's, zeroed at first, used by one thread. */
typedef struct log_rate {
    long second;
    int used;
    long dropped;
} log_rate;
bool log_rate_pass(log_rate *rate, int per_second, long *dropped);

/* A typed field for log_kv: no JSON object to build, for lines written once per request. */
typedef struct log_kv_field {
    const char *key;
    enum { LOG_KV_STR, LOG_KV_INT, LOG_KV_REAL } type;
    const char *str; /* LOG_KV_STR (NULL writes null) */
    long long num;   /* LOG_KV_INT */
    double real;     /* LOG_KV_REAL, written with 3 decimals (%.17g from 1e15 on) */
} log_kv_field;

/* Like log_fields with `n` typed fields (the caller keeps them). Writes the same line shape. */
void log_kv(log_level level, const log_kv_field *fields, int n, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#define log_debug(...) log_msg(LOG_LVL_DEBUG, __VA_ARGS__)
#define log_info(...) log_msg(LOG_LVL_INFO, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_LVL_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_LVL_ERROR, __VA_ARGS__)

#endif
