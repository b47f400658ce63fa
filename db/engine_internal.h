/* engine_internal: the engine's insides, shared by engine.c and session.c only. */
#ifndef DB_ENGINE_INTERNAL_H
#define DB_ENGINE_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>

#include "db/engine.h"
#include "db/pool.h"

struct db_engine {
    db_config cfg; /* copy; its URL pointers are cleared (each pool owns its URL) */
    char *appname; /* owned copy of cfg.application_name */
    db_pool rw, ro;
    bool has_ro;
    pthread_t reaper;
    bool reaper_running, reaper_stop;
    pthread_mutex_t reaper_mu;
    pthread_cond_t reaper_cond;
};

struct db_session {
    db_engine *engine;
    db_pool *pool;
    db_conn *conn; /* NULL after a failed reconnect: every call then fails with TRANSIENT */
    db_access access;
    bool pipelined;     /* in a coroutine, read-only or DB_PIPELINE_WRITES: no connection of its own
                         * until it needs one */
    bool broken;        /* the connection must not go back to the pool */
    db_query_hook hook; /* db_session_set_query_hook */
    void *hook_ctx;
    bool in_hook; /* the hook's own db_query calls run the statement */
};

#endif
