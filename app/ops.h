/* ops: the operational endpoints (health, readiness, metrics, OpenAPI, Swagger UI, ReDoc).
 * Handlers with the signature of router.h; ops_ready runs in a coroutine and opens a session of
 * its own (RUN_OWN_SESSION: it talks to the database), the rest are RUN_LOOP routes. */
#ifndef APP_OPS_H
#define APP_OPS_H

#include "app/http.h"
#include "db/engine.h"

int ops_health(const http_request *req, db_session *s, http_response *res);
int ops_ready(const http_request *req, db_session *s, http_response *res);
int ops_metrics(const http_request *req, db_session *s, http_response *res);
int ops_openapi(const http_request *req, db_session *s, http_response *res);
int ops_docs(const http_request *req, db_session *s, http_response *res);
int ops_redoc(const http_request *req, db_session *s, http_response *res);

/* Builds the served OpenAPI document (JSON text, kept for the process's life) if not built yet;
 * thread-safe. ops_openapi builds it on first use; main calls this off the startup path, so
 * that neither the listening socket nor the first /openapi.json waits for it. Call after
 * router_init. */
void ops_openapi_build(void);

#endif
