/* ops: health, readiness, metrics, the OpenAPI document and Swagger UI. */
#include "app/ops.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/metrics.h"
#include "app/server.h"
#include "core/log.h"
#include "db/schema_version.h"

int ops_health(const http_request *req, db_session *s, http_response *res)
{
    (void)req, (void)s;
    return http_reply_raw(res, 200, "application/json", "{\"status\":\"ok\"}", 15);
}

static int not_ready(http_response *res, const char *reason)
{
    http_header_add(res, "Retry-After", "1");
    return http_reply_json(res, 503,
                           json_pack("{ss ss}", "status", "unavailable", "detail", reason));
}

/* A round trip through the engine, then the schema version against the one this binary was built
 * for: an API whose migrations have not run answers 503 instead of 500s on every request. */
int ops_ready(const http_request *req, db_session *unused, http_response *res)
{
    (void)req, (void)unused;
    db_session *s;
    db_error err;
    if (db_session_open(app.engine, DB_READ_ONLY, &s, &err) < 0)
        return not_ready(res, err.message);
    char version[64] = "";
    db_schema_status st = db_session_schema_version(s, version, sizeof version, &err);
    db_session_close(s);
    const char *want = db_schema_expected();
    char reason[256];
    if (st == DB_SCHEMA_ERROR)
        return not_ready(res, err.message);
    if (st == DB_SCHEMA_NONE && *want) {
        snprintf(reason, sizeof reason,
                 "schema not migrated: expected version %s, none applied; "
                 "run `migrate up`",
                 want);
        return not_ready(res, reason);
    }
    if (db_schema_version_cmp(version, want) < 0) {
        snprintf(reason, sizeof reason,
                 "schema behind: expected version %s, database at %s; "
                 "run `migrate up`",
                 want, version);
        return not_ready(res, reason);
    }
    return http_reply_json(res, 200,
                           json_pack("{ss ss}", "status", "ok", "schema_version", version));
}

int ops_metrics(const http_request *req, db_session *s, http_response *res)
{
    (void)req, (void)s;
    char *text = metrics_render(app.engine);
    if (!text)
        return http_reply_detail(res, 500, "Internal Server Error");
    http_reply_raw(res, 200, "text/plain; version=0.0.4; charset=utf-8", text, strlen(text));
    free(text);
    return 0;
}

int ops_openapi(const http_request *req, db_session *s, http_response *res)
{
    (void)req, (void)s;
    return http_reply_raw(res, 200, "application/json", app.openapi_json, app.openapi_len);
}

/* FastAPI's get_swagger_ui_html: the page loads Swagger UI from the jsdelivr CDN. */
int ops_docs(const http_request *req, db_session *s, http_response *res)
{
    (void)req, (void)s;
    static const char page[] =
        "<!DOCTYPE html>\n<html>\n<head>\n"
        "<link type=\"text/css\" rel=\"stylesheet\" "
        "href=\"https://cdn.jsdelivr.net/npm/swagger-ui-dist@5/swagger-ui.css\">\n"
        "<title>Todo API - Swagger UI</title>\n</head>\n<body>\n<div id=\"swagger-ui\"></div>\n"
        "<script src=\"https://cdn.jsdelivr.net/npm/swagger-ui-dist@5/swagger-ui-bundle.js\">"
        "</script>\n<script>\nconst ui = SwaggerUIBundle({url: '/openapi.json', "
        "dom_id: '#swagger-ui', layout: 'BaseLayout', deepLinking: true, "
        "showExtensions: true, showCommonExtensions: true, persistAuthorization: true, "
        "presets: [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset]})\n"
        "</script>\n</body>\n</html>\n";
    return http_reply_raw(res, 200, "text/html; charset=utf-8", page, sizeof page - 1);
}
