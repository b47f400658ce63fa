/* tasks: the Todo API's handlers, the only code that knows the tasks table. Each runs in a
 * coroutine with the session its route asks for (routes.c) and the request already authenticated
 * (user_id equals the token's sub) and validated. */
#ifndef APP_TASKS_H
#define APP_TASKS_H

#include "app/http.h"
#include "db/engine.h"

int tasks_list(const http_request *req, db_session *s, http_response *res);
int tasks_create(const http_request *req, db_session *s, http_response *res);
int tasks_get(const http_request *req, db_session *s, http_response *res);
int tasks_update(const http_request *req, db_session *s, http_response *res);
int tasks_delete(const http_request *req, db_session *s, http_response *res);
int tasks_toggle(const http_request *req, db_session *s, http_response *res);

#endif
