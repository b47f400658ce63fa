/* ops: health, readiness, metrics, the OpenAPI document, Swagger UI and ReDoc. */
#include "app/ops.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "app/docs_assets.h"
#include "app/metrics.h"
#include "app/openapi.h"
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

/* The database could not be asked. libpq's message names the host, port, role and database: it
 * goes to the log, and the public (a load balancer, anyone who can reach the port) gets a generic
 * reason (RFC 9110 section 17: what a response discloses is the server's choice). */
static int database_unavailable(http_response *res, const db_error *err)
{
    log_warn("/ready: database unavailable (%s): %s", db_errkind_name(err->kind), err->message);
    return not_ready(res, "database unavailable");
}

/* A round trip through the engine, then the schema version against the one this binary was built
 * for: an API whose migrations have not run answers 503 instead of 500s on every request. */
int ops_ready(const http_request *req, db_session *unused, http_response *res)
{
    (void)req, (void)unused;
    db_session *s;
    db_error err;
    if (db_session_open(app.engine, DB_READ_ONLY, &s, &err) < 0)
        return database_unavailable(res, &err);
    char version[64] = "";
    db_schema_status st = db_session_schema_version(s, version, sizeof version, &err);
    db_session_close(s);
    const char *want = db_schema_expected();
    char reason[256];
    if (st == DB_SCHEMA_ERROR)
        return database_unavailable(res, &err);
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

static char *openapi_text; /* NULL: out of memory when it was built */
static size_t openapi_len;
static pthread_once_t openapi_once = PTHREAD_ONCE_INIT;

static void build_openapi(void)
{
    json_t *doc = openapi_document();
    openapi_text = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
    openapi_len = openapi_text ? strlen(openapi_text) : 0;
    json_decref(doc);
}

void ops_openapi_build(void)
{
    pthread_once(&openapi_once, build_openapi);
}

int ops_openapi(const http_request *req, db_session *s, http_response *res)
{
    (void)req, (void)s;
    ops_openapi_build();
    if (!openapi_text)
        return http_reply_detail(res, 500, "Internal Server Error");
    return http_reply_raw(res, 200, "application/json", openapi_text, openapi_len);
}

/* ---- /docs and /redoc ----
 * Each page is one self-contained HTML document: the embedded Swagger UI / ReDoc files are inlined
 * (or, with DOCS_CDN_URL, linked from the CDN). Inlining needs no route per asset and no path to
 * find files at run time, and the page works behind any path prefix. The pages are built once. */

/* Appends a script inline. "</script" would end the element early (the HTML parser does not know
 * JavaScript), so it is written "<\/script": the same text in a JS string, regex or comment. */
static void put_script(FILE *f, const char *js, size_t len)
{
    fputs("<script>", f);
    for (size_t i = 0; i < len; i++) {
        if (js[i] == '<' && i + 8 <= len && js[i + 1] == '/' &&
            !strncasecmp(js + i + 2, "script", 6))
            fputs("<\\", f);
        else
            fputc(js[i], f);
    }
    fputs("</script>\n", f);
}

/* The document's own servers are kept, but "Try it out" goes to the origin that served the page,
 * whatever host, port or scheme the API is reached by. */
static const char swagger_init[] =
    "<script>\n"
    "fetch('/openapi.json').then(function (r) { return r.json(); }).then(function (spec) {\n"
    "  var here = window.location.origin;\n"
    "  spec.servers = [{url: here, description: 'this server'}].concat((spec.servers || [])\n"
    "    .filter(function (s) { return s.url !== here && s.url !== '/'; }));\n"
    "  document.title = spec.info.title + ' - Swagger UI';\n"
    "  window.ui = SwaggerUIBundle({spec: spec, dom_id: '#swagger-ui', layout: 'BaseLayout',\n"
    "    deepLinking: true, showExtensions: true, showCommonExtensions: true,\n"
    "    validatorUrl: null,\n"
    "    presets: [SwaggerUIBundle.presets.apis]});\n"
    "});\n"
    "</script>\n";

static const char redoc_init[] =
    "<script>\n"
    "fetch('/openapi.json').then(function (r) { return r.json(); }).then(function (spec) {\n"
    "  document.title = spec.info.title + ' - ReDoc';\n"
    "  Redoc.init(spec, {}, document.getElementById('redoc'));\n"
    "});\n"
    "</script>\n";

static const char page_head[] =
    "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
    "<meta name=\"viewport\" content=\"width=device-width, "
    "initial-scale=1\">\n";

typedef struct docs_page {
    char *html;
    size_t len;
    char csp[640]; /* Content-Security-Policy */
} docs_page;

/* With the embedded files the pages load nothing from another origin: the policy makes the browser
 * refuse what the bundles would fetch on their own (ReDoc's attribution logo from cdn.redoc.ly),
 * so an air-gapped network sees no attempt and nobody is told who reads the docs. The policy names
 * only what the pages load: "Try it out" calls this origin (connect-src 'self'; swagger_init puts
 * it first in the servers list). No site may frame the pages (frame-ancestors, and
 * X-Frame-Options for older browsers): a framed "Authorize" dialog is a clickjacking target. With
 * DOCS_CDN_URL the CDN's origin is added to script-src and style-src (cdn_csp). */
#define DOCS_CSP_COMMON                                                                            \
    "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; "    \
    "base-uri 'none'; form-action 'none'"
static const char swagger_csp[] = "default-src 'none'; script-src 'unsafe-inline'; "
                                  "style-src 'unsafe-inline'; " DOCS_CSP_COMMON;
static const char redoc_csp[] = "default-src 'none'; script-src 'unsafe-inline' blob:; "
                                "worker-src blob:; style-src 'unsafe-inline'; " DOCS_CSP_COMMON;

static docs_page swagger_page, redoc_page;

/* The policy of a page whose scripts and styles come from DOCS_CDN_URL: its origin (scheme, host,
 * port; config.c checked it is an http(s) URL) is the only other source named. */
static void cdn_csp(docs_page *p, const char *cdn, bool workers)
{
    const char *host = strstr(cdn, "://");
    int n = host ? (int)(host + 3 - cdn + (long)strcspn(host + 3, "/?#")) : (int)strlen(cdn);
    snprintf(p->csp, sizeof p->csp,
             "default-src 'none'; script-src 'unsafe-inline' %.*s%s; %sstyle-src 'unsafe-inline' "
             "%.*s; " DOCS_CSP_COMMON,
             n, cdn, workers ? " blob:" : "", workers ? "worker-src blob:; " : "", n, cdn);
}
static pthread_once_t pages_once = PTHREAD_ONCE_INIT;

static void build_swagger(const char *cdn, docs_page *p)
{
    FILE *f = open_memstream(&p->html, &p->len);
    if (!f)
        return;
    size_t n;
    const char *data;
    fputs(page_head, f);
    fputs("<title>Swagger UI</title>\n", f);
    if (cdn) {
        fprintf(f,
                "<link rel=\"stylesheet\" href=\"%s/swagger-ui-dist@" SWAGGER_UI_VERSION
                "/swagger-ui.css\">\n",
                cdn);
    } else {
        data = docs_asset(DOCS_SWAGGER_CSS, &n);
        fputs("<style>\n", f);
        fwrite(data, 1, n, f);
        fputs("\n</style>\n", f);
    }
    fputs("</head>\n<body>\n<div id=\"swagger-ui\"></div>\n", f);
    if (cdn) {
        fprintf(f,
                "<script src=\"%s/swagger-ui-dist@" SWAGGER_UI_VERSION
                "/swagger-ui-bundle.js\"></script>\n",
                cdn);
    } else {
        data = docs_asset(DOCS_SWAGGER_JS, &n);
        put_script(f, data, n);
    }
    fputs(swagger_init, f);
    fputs("</body>\n</html>\n", f);
    if (cdn)
        cdn_csp(p, cdn, false);
    else
        snprintf(p->csp, sizeof p->csp, "%s", swagger_csp);
    if (fclose(f) != 0) {
        free(p->html);
        p->html = NULL;
    }
}

static void build_redoc(const char *cdn, docs_page *p)
{
    FILE *f = open_memstream(&p->html, &p->len);
    if (!f)
        return;
    fputs(page_head, f);
    fputs("<title>ReDoc</title>\n<style>body { margin: 0; padding: 0; }</style>\n</head>\n<body>\n"
          "<div id=\"redoc\"></div>\n",
          f);
    if (cdn) {
        fprintf(
            f, "<script src=\"%s/redoc@" REDOC_VERSION "/bundles/redoc.standalone.js\"></script>\n",
            cdn);
    } else {
        size_t n;
        const char *data = docs_asset(DOCS_REDOC_JS, &n);
        put_script(f, data, n);
    }
    fputs(redoc_init, f);
    fputs("</body>\n</html>\n", f);
    if (cdn)
        cdn_csp(p, cdn, true);
    else
        snprintf(p->csp, sizeof p->csp, "%s", redoc_csp);
    if (fclose(f) != 0) {
        free(p->html);
        p->html = NULL;
    }
}

static void build_pages(void)
{
    const char *cdn = app.cfg ? app.cfg->docs_cdn_url : NULL;
    build_swagger(cdn, &swagger_page);
    build_redoc(cdn, &redoc_page);
}

static int reply_page(http_response *res, const docs_page *p)
{
    if (!p->html)
        return http_reply_detail(res, 500, "Internal Server Error");
    http_header_add(res, "Content-Security-Policy", "%s", p->csp);
    http_header_add(res, "X-Frame-Options", "DENY");
    return http_reply_raw(res, 200, "text/html; charset=utf-8", p->html, p->len);
}

/* FastAPI's /docs: Swagger UI, with "Authorize" for the bearer token and "Try it out". */
int ops_docs(const http_request *req, db_session *s, http_response *res)
{
    (void)req, (void)s;
    pthread_once(&pages_once, build_pages);
    return reply_page(res, &swagger_page);
}

/* FastAPI's /redoc: the same document rendered by ReDoc. */
int ops_redoc(const http_request *req, db_session *s, http_response *res)
{
    (void)req, (void)s;
    pthread_once(&pages_once, build_pages);
    return reply_page(res, &redoc_page);
}
