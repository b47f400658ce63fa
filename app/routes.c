/* routes: THE route table. Dispatch, 404/405 + Allow, CORS preflight, the 307 trailing-slash
 * redirect, validation, the response models and /openapi.json all read it; nothing else lists
 * routes or documents responses (router.h says what the framework documents by itself).
 *
 * Adding a resource: one block of entries here (its handlers declared on one line below, its
 * models and parameters next to the others), one handler file (like tasks.c), one migration,
 * one test file (tests/app/test_<name>.c). docs/template.md walks through it. */
#include "app/router.h"

/* ---- handlers: defined in their own files; declared here, so they need no header ---- */
http_handler_fn ops_health, ops_ready, ops_metrics, ops_openapi, ops_docs, ops_redoc;
http_handler_fn tasks_list, tasks_create, tasks_get, tasks_update, tasks_delete, tasks_toggle;

/* ---- tags: the groups of /docs ---- */
const route_tag app_tags[] = {
    {"tasks", "The user's tasks"},
    {"ops", "Health, readiness and metrics"},
    {NULL, NULL},
};

/* ---- parameters and bodies ---- */

static const char *const status_choices[] = {"all", "pending", "completed", NULL};
static const char *const sort_choices[] = {"created_at", "updated_at", "title", NULL};
static const char *const order_choices[] = {"asc", "desc", NULL};

#define USER_ID                                                                                    \
    {                                                                                              \
        .name = "user_id", .in = PARAM_PATH, .type = TYPE_STRING, .min_len = 1, .max_len = 255,    \
        .description = "The user's id: must equal the token's sub"                                 \
    }
#define TASK_ID                                                                                    \
    {                                                                                              \
        .name = "id", .in = PARAM_PATH, .type = TYPE_INT, .has_ge = true, .ge = 1,                 \
        .description = "The task's id"                                                             \
    }

static const param_spec user_params[] = {USER_ID, {0}};
static const param_spec task_params[] = {USER_ID, TASK_ID, {0}};
static const param_spec list_params[] = {
    USER_ID,
    {.name = "status",
     .in = PARAM_QUERY,
     .type = TYPE_STRING,
     .def = "all",
     .choices = status_choices,
     .description = "Filter by completion"},
    {.name = "search",
     .in = PARAM_QUERY,
     .type = TYPE_STRING,
     .max_len = 100,
     .description = "Case-insensitive text in title or description (% and _ are literal)"},
    {.name = "sort",
     .in = PARAM_QUERY,
     .type = TYPE_STRING,
     .def = "created_at",
     .choices = sort_choices,
     .description = "Sort key"},
    {.name = "order",
     .in = PARAM_QUERY,
     .type = TYPE_STRING,
     .def = "desc",
     .choices = order_choices,
     .description = "Sort direction"},
    {.name = "limit",
     .in = PARAM_QUERY,
     .type = TYPE_INT,
     .def = "20",
     .has_ge = true,
     .ge = 1,
     .has_le = true,
     .le = 100,
     .description = "Page size"},
    {.name = "offset",
     .in = PARAM_QUERY,
     .type = TYPE_INT,
     .def = "0",
     .has_ge = true,
     .ge = 0,
     .description = "Tasks to skip"},
    {0},
};

#define TITLE                                                                                      \
    {                                                                                              \
        .name = "title", .type = TYPE_STRING, .required = true, .min_len = 1, .max_len = 200,      \
        .not_blank = true, .description = "1 to 200 characters, not blank"                         \
    }
#define DESCRIPTION                                                                                \
    {                                                                                              \
        .name = "description", .type = TYPE_STRING, .nullable = true, .max_len = 1000,             \
        .def_json = "null", .description = "At most 1000 characters"                               \
    }
#define COMPLETED                                                                                  \
    {                                                                                              \
        .name = "completed", .type = TYPE_BOOL, .def_json = "false"                                \
    }

static const field_spec task_fields[] = {TITLE, DESCRIPTION, COMPLETED, {0}};
static const body_spec task_create = {"TaskCreate", task_fields};
static const body_spec task_update = {"TaskUpdate", task_fields};

/* ---- response models ---- */
static const field_spec task_out_fields[] = {
    {.name = "id", .type = TYPE_INT, .required = true},
    {.name = "user_id", .type = TYPE_STRING, .required = true},
    {.name = "title", .type = TYPE_STRING, .required = true},
    {.name = "description", .type = TYPE_STRING, .required = true, .nullable = true},
    {.name = "completed", .type = TYPE_BOOL, .required = true},
    {.name = "created_at", .type = TYPE_STRING, .required = true, .format = "date-time"},
    {.name = "updated_at", .type = TYPE_STRING, .required = true, .format = "date-time"},
    {0},
};
static const body_spec task = {"Task", task_out_fields};

static const field_spec health_fields[] = {
    {.name = "status", .type = TYPE_STRING, .required = true, .description = "ok or unavailable"},
    {.name = "schema_version", .type = TYPE_STRING, .description = "/ready: the database's"},
    {.name = "detail", .type = TYPE_STRING, .description = "Why it is not ready"},
    {0},
};
static const body_spec health = {"Health", health_fields};

static const header_spec list_headers[] = {
    {"X-Total-Count", TYPE_INT,
     "Number of tasks matching the filters, counted up to 10000: 10001 means more than 10000"},
    {0},
};

/* ---- the handlers' own error statuses (the framework's are documented by themselves) ---- */
static const route_error errs_ready[] = {
    {.status = 503,
     .description = "Not ready: the database is unreachable or its schema is behind",
     .model = &health},
    {0},
};
/* With .no_rows / .sqlstate the framework answers them from the statement's outcome (router.h,
 * resource.h): the handlers hold no status logic. */
#define TASK_NOT_FOUND                                                                             \
    {                                                                                              \
        .status = 404, .description = "Task not found (or owned by another user)",                 \
        .no_rows = true, .detail = "Task not found"                                                \
    }
#define TASK_CHECK                                                                                 \
    {                                                                                              \
        .status = 422, .description = "The task violates a database constraint",                   \
        .sqlstate = "23514"                                                                        \
    }
static const route_error errs_task[] = {TASK_NOT_FOUND, {0}};
static const route_error errs_task_write[] = {TASK_NOT_FOUND, TASK_CHECK, {0}};
static const route_error errs_create[] = {TASK_CHECK, {0}};

/* ---- the table ---- */
const route app_routes[] = {
    {"GET", "/health", ops_health, RUN_LOOP, .operation_id = "health", .summary = "Liveness",
     .tag = "ops", .status = 200, .response = &health, .description = "The process is up"},
    {"GET", "/ready", ops_ready, RUN_OWN_SESSION, .operation_id = "ready",
     .summary = "Readiness: database round trip and schema version", .tag = "ops", .status = 200,
     .response = &health, .description = "Ready to serve", .errors = errs_ready},
    {"GET", "/metrics", ops_metrics, RUN_LOOP, .operation_id = "metrics",
     .summary = "Prometheus metrics", .tag = "ops", .status = 200, .metrics_token = true,
     .description = "Prometheus text format"},
    {"GET", "/openapi.json", ops_openapi, RUN_LOOP, .operation_id = "openapi", .hidden = true},
    {"GET", "/docs", ops_docs, RUN_LOOP, .operation_id = "docs", .hidden = true},
    {"GET", "/redoc", ops_redoc, RUN_LOOP, .operation_id = "redoc", .hidden = true},

    {"GET", "/api/{user_id}/tasks", tasks_list, RUN_READ, .auth = true, .params = list_params,
     .operation_id = "list_tasks", .summary = "List the user's tasks", .tag = "tasks",
     .status = 200, .response = &task, .response_list = true, .headers = list_headers,
     .description = "The page of tasks; X-Total-Count has the number of matches"},
    {"POST", "/api/{user_id}/tasks", tasks_create, RUN_WRITE, .auth = true, .params = user_params,
     .body = &task_create, .idempotency_key = true, .operation_id = "create_task",
     .summary = "Create a task", .tag = "tasks", .status = 201, .response = &task, .location = true,
     .description = "The created task (Location has its URL)", .errors = errs_create},
    {"GET", "/api/{user_id}/tasks/{id}", tasks_get, RUN_READ, .auth = true, .params = task_params,
     .operation_id = "get_task", .summary = "Get a task", .tag = "tasks", .status = 200,
     .response = &task, .description = "The task", .errors = errs_task},
    {"PUT", "/api/{user_id}/tasks/{id}", tasks_update, RUN_WRITE, .auth = true,
     .params = task_params, .body = &task_update, .operation_id = "update_task",
     .summary = "Replace a task", .tag = "tasks", .status = 200, .response = &task,
     .description = "The updated task", .errors = errs_task_write},
    {"DELETE", "/api/{user_id}/tasks/{id}", tasks_delete, RUN_WRITE, .auth = true,
     .params = task_params, .operation_id = "delete_task", .summary = "Delete a task",
     .tag = "tasks", .status = 204, .description = "Deleted", .errors = errs_task},
    {"PATCH", "/api/{user_id}/tasks/{id}/complete", tasks_toggle, RUN_WRITE, .auth = true,
     .params = task_params, .operation_id = "toggle_task",
     .summary = "Toggle a task's completed flag", .tag = "tasks", .status = 200, .response = &task,
     .description = "The updated task", .errors = errs_task},
};
const int app_nroutes = sizeof app_routes / sizeof *app_routes;
