/* openapi: the OpenAPI 3.1 document, generated from the route table (routes.c) and the same
 * parameter and body specs that validation enforces. Built once at startup. */
#ifndef APP_OPENAPI_H
#define APP_OPENAPI_H

#include <jansson.h>

/* Returns the document as a new JSON object (caller owns it). Call after router_init. */
json_t *openapi_document(void);

#endif
