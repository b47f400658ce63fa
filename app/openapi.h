/* openapi: the OpenAPI 3.1 document, generated from the route table (routes.c) and the same
 * parameter, body and response specs that validation and the handlers use (ops.h builds the served
 * copy once and keeps it).
 * router.h lists the responses every operation documents. */
#ifndef APP_OPENAPI_H
#define APP_OPENAPI_H

#include <jansson.h>
#include <stddef.h>

#include "app/http.h"

struct route;

/* Returns the document as a new JSON object (caller owns it). Call after router_init. */
json_t *openapi_document(void);

/* Checks a reply of route `r` against what the document says its operation answers: the status
 * is listed, every required header is sent and every header sent is documented, the body (or
 * its absence), its Content-Type and, for JSON, its value against the schema (types, required
 * fields, no undeclared field, formats, bounds). Returns 0, or -1 with what differs in err.
 * Hidden routes pass. Builds its own copy of the document on first use (thread-safe); dispatch
 * calls it on every reply in debug builds (no NDEBUG), which is what the test suites run. */
int openapi_check_reply(const struct route *r, const http_response *res, char *err, size_t errlen);

#endif
