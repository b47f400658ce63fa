/* jobs: periodic background work of the API, each run in a coroutine of the first event loop with a
 * read-write session of its own, like a handler (FastAPI's lifespan task with a repeat timer).
 * The table in jobs.c is the one place jobs are declared; today: deleting expired
 * Idempotency-Keys. A run never overlaps the previous one, a failed run is logged and retried at
 * the next interval, and no new run starts once the server drains (in-flight runs hold a session,
 * which the drain waits for like for a request). Loop thread only. */
#ifndef APP_JOBS_H
#define APP_JOBS_H

struct event_base;

/* Starts the timers on `base` (the first loop). Returns 0, or -1 (out of memory). */
int jobs_start(struct event_base *base);

/* Stops the timers (the drain's start, and again at exit: idempotent). */
void jobs_stop(void);

#endif
