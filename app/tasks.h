/* tasks: the Todo API's handlers, the only code that knows the tasks table. Each runs in a
 * coroutine with the session its route asks for (routes.c) and the request already authenticated
 * (user_id equals the token's sub) and validated. */
#ifndef APP_TASKS_H
#define APP_TASKS_H

#include <stdbool.h>
#include <stddef.h>

#include "app/http.h"
#include "db/engine.h"

int tasks_list(const http_request *req, db_session *s, http_response *res);
int tasks_create(const http_request *req, db_session *s, http_response *res);
int tasks_get(const http_request *req, db_session *s, http_response *res);
int tasks_update(const http_request *req, db_session *s, http_response *res);
int tasks_delete(const http_request *req, db_session *s, http_response *res);
int tasks_toggle(const http_request *req, db_session *s, http_response *res);

/* The list's statement for one combination of its query parameters, written into buf (size bytes,
 * 1024 hold any), as tasks_list sends it: $1 user_id, $2 the ILIKE pattern (search), $3 completed
 * (status), $4 limit, $5 offset. `sort` is one of the route's three literals. Returns what
 * snprintf returns (>= size: cut short). Exposed for the plan checks in tests/app. */
size_t tasks_list_sql(char *buf, size_t size, bool search, bool status, const char *sort,
                      bool ascending);

#endif
