/* http: response helpers shared by every handler. See http.h. */
#include "app/http.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/router.h"
#include "core/log.h"

const http_value *http_param(const http_request *req, const char *name)
{
    const param_spec *p = req->route->params;
    for (int i = 0; p && p[i].name; i++)
        if (!strcmp(p[i].name, name))
            return &req->values[i];
    log_error("route %s %s has no parameter \"%s\"", req->route->method, req->route->path, name);
    abort();
}

static void set_body(http_response *res, int status, char *body, size_t len)
{
    free(res->body);
    res->status = status;
    res->body = body;
    res->body_len = len;
}

/* A reply helper was handed nothing to send: the handler's bug (a json_pack format that does not
 * match its arguments, say) or an allocation that failed. Never a success with a `null` body. */
static int reply_broken(http_response *res, int status, const char *what)
{
    log_error("%s for a %d reply: answering 500 instead", what, status);
    char *text = strdup("{\"detail\":\"Internal Server Error\"}");
    set_body(res, 500, text, text ? strlen(text) : 0);
    res->content_type = "application/json";
    return 0;
}

int http_reply_json(http_response *res, int status, json_t *body)
{
    if (!body)
        return reply_broken(res, status, "NULL JSON body (a json_pack error or no memory)");
    char *text = json_dumps(body, JSON_COMPACT | JSON_ENCODE_ANY);
    json_decref(body);
    if (!text)
        return reply_broken(res, status, "the JSON body could not be serialized");
    set_body(res, status, text, strlen(text));
    res->content_type = "application/json";
    return 0;
}

int http_reply_json_text(http_response *res, int status, char *text, size_t len)
{
    if (!text)
        return reply_broken(res, status, "NULL JSON text (no memory)");
    set_body(res, status, text, len);
    res->content_type = "application/json";
    return 0;
}

int http_reply_detail(http_response *res, int status, const char *detail)
{
    if (!detail)
        return reply_broken(res, status, "NULL detail");
    return http_reply_json(res, status, json_pack("{ss}", "detail", detail));
}

int http_reply_empty(http_response *res, int status)
{
    set_body(res, status, NULL, 0);
    return 0;
}

int http_reply_raw(http_response *res, int status, const char *content_type, const char *body,
                   size_t len)
{
    if (!body)
        return reply_broken(res, status, "NULL raw body");
    char *copy = malloc(len + 1);
    if (!copy)
        return reply_broken(res, status, "no memory for the body");
    memcpy(copy, body, len);
    copy[len] = '\0';
    set_body(res, status, copy, len);
    res->content_type = content_type;
    return 0;
}

void http_header_add(http_response *res, const char *name, const char *fmt, ...)
{
    if (res->nheaders >= HTTP_MAX_HEADERS) {
        log_error("too many response headers, dropped %s", name);
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    char *value = NULL;
    if (vasprintf(&value, fmt, ap) < 0)
        value = NULL;
    va_end(ap);
    if (!value)
        return;
    res->headers[res->nheaders].name = name;
    res->headers[res->nheaders].value = value;
    res->nheaders++;
}

int http_reply_db_error(http_response *res, const http_request *req, const db_error *err)
{
    switch (err->kind) {
    case DB_ERR_TRANSIENT:
    case DB_ERR_POOL_TIMEOUT:
    case DB_ERR_CLOSED:
    case DB_ERR_STATEMENT_TIMEOUT:
        log_warn("database unavailable (%s): %s", db_errkind_name(err->kind), err->message);
        http_reply_detail(res, 503,
                          "Service Unavailable: the database is not reachable, retry later");
        http_header_add(res, "Retry-After", "1");
        return 0;
    default:
        if (!strcmp(err->sqlstate, "IK001")) { /* app/idempotency.c answers instead: not an error */
            log_info("Idempotency-Key: %s", err->message);
            return http_reply_detail(res, 409,
                                     "A request with this Idempotency-Key is in progress");
        }
        log_error("database error (%s, sqlstate %s): %s", db_errkind_name(err->kind),
                  err->sqlstate[0] ? err->sqlstate : "none", err->message);
        return http_reply_json(res, 500,
                               json_pack("{ss ss}", "detail", "Internal Server Error", "request_id",
                                         req->request_id ? req->request_id : ""));
    }
}

void http_response_reset(http_response *res)
{
    free(res->body);
    for (int i = 0; i < res->nheaders; i++)
        free(res->headers[i].value);
    memset(res, 0, sizeof *res);
}

/* RFC 9110's reason phrases (and 429, 431 of RFC 6585): a handler or a route's declared error may
 * answer any of them; a status missing here is sent with "Unknown". */
static const struct {
    int status;
    const char *reason;
} reasons[] = {
    {200, "OK"},
    {201, "Created"},
    {202, "Accepted"},
    {204, "No Content"},
    {301, "Moved Permanently"},
    {302, "Found"},
    {303, "See Other"},
    {304, "Not Modified"},
    {307, "Temporary Redirect"},
    {308, "Permanent Redirect"},
    {400, "Bad Request"},
    {401, "Unauthorized"},
    {402, "Payment Required"},
    {403, "Forbidden"},
    {404, "Not Found"},
    {405, "Method Not Allowed"},
    {406, "Not Acceptable"},
    {408, "Request Timeout"},
    {409, "Conflict"},
    {410, "Gone"},
    {411, "Length Required"},
    {412, "Precondition Failed"},
    {413, "Content Too Large"},
    {414, "URI Too Long"},
    {415, "Unsupported Media Type"},
    {416, "Range Not Satisfiable"},
    {417, "Expectation Failed"},
    {421, "Misdirected Request"},
    {422, "Unprocessable Content"},
    {423, "Locked"},
    {424, "Failed Dependency"},
    {425, "Too Early"},
    {426, "Upgrade Required"},
    {428, "Precondition Required"},
    {429, "Too Many Requests"},
    {431, "Request Header Fields Too Large"},
    {451, "Unavailable For Legal Reasons"},
    {500, "Internal Server Error"},
    {501, "Not Implemented"},
    {502, "Bad Gateway"},
    {503, "Service Unavailable"},
    {504, "Gateway Timeout"},
    {507, "Insufficient Storage"},
};

const char *http_reason(int status)
{
    for (size_t i = 0; i < sizeof reasons / sizeof *reasons; i++)
        if (reasons[i].status == status)
            return reasons[i].reason;
    return "Unknown";
}
