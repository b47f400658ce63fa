/* coro: handlers that read like blocking code but wait on the event loop instead of a thread.
 *
 * A coroutine runs on the thread of a libevent loop (one stack each, recycled). When code inside it
 * waits (for a socket, a hand-off from another thread, a call moved to a helper thread), the
 * coroutine is suspended and the loop goes on serving other requests; the wait's event resumes it.
 * The same functions called outside a coroutine (the migrate CLI, tests, the engine's reaper
 * thread) simply block the calling thread, so db/ has one code path for both.
 *
 * Stacks are switched by sigsetjmp/siglongjmp (started once by makecontext; no system call per
 * switch) and scheduled by libevent: a suspended coroutine is an event whose callback switches
 * back into it. Stacks are 256 KB with a
 * guard page, recycled per thread, and announced to AddressSanitizer and ThreadSanitizer.
 *
 * Threads: coro_thread_init/coro_spawn/coro_thread_free on the loop's own thread only, and
 * coro_spawn/coro_suspend/coro_wait_fd need coro_thread_init to have succeeded there.
 * coro_unpark may be called from any thread. The log request id (core/log) follows the coroutine
 * across its waits. */
#ifndef CORE_CORO_H
#define CORE_CORO_H

#include <pthread.h>
#include <stdbool.h>

struct event_base;
typedef struct coro coro;

/* Makes `base` the calling thread's scheduler. Returns 0 or -1 (out of memory). A second call on
 * the same thread does nothing and returns 0. */
int coro_thread_init(struct event_base *base);

/* Frees the thread's idle coroutines (their stacks). Coroutines still suspended are the caller's
 * problem: call it only when none are. */
void coro_thread_free(void);

/* Runs fn(arg) in a coroutine of the calling (loop) thread: at once, until its first wait. When
 * fn has returned, done(arg) (may be NULL) runs on the loop's own stack, so that it may do what a
 * coroutine must not (start other coroutines, let libevent dispatch the next request). Call it
 * from the loop's stack, never from a coroutine. Returns 0, or -1 when no stack could be
 * allocated (neither ran). */
int coro_spawn(void (*fn)(void *arg), void (*done)(void *arg), void *arg);

/* Like coro_spawn, but from anywhere on the loop's thread (a coroutine included): fn starts at
 * the loop's next iteration, after what is already pending. Returns 0 or -1 (out of memory). */
int coro_spawn_later(void (*fn)(void *arg), void (*done)(void *arg), void *arg);

/* True when called from inside a coroutine. */
bool coro_active(void);

/* The running coroutine, or NULL. */
coro *coro_self(void);

/* Suspends the running coroutine until coro_wake(). For hand-offs between coroutines of one
 * thread; across threads use a parker. */
void coro_suspend(void);

/* Makes a coroutine suspended by coro_suspend() runnable again (same thread; it resumes when the
 * loop gets to it, not inside this call). */
void coro_wake(coro *co);

/* Monotonic clock in seconds (the deadlines below). */
double coro_now(void);

/* Waits until fd is readable (`write` false) or writable, or the deadline passes (0: none).
 * Returns 1 when ready, 0 on timeout, -1 on error (errno). Yields in a coroutine, poll()s
 * otherwise. */
int coro_wait_fd(int fd, bool write, double deadline);

/* Runs fn(arg) on a helper thread and waits for it (yielding in a coroutine; outside one fn runs
 * on the calling thread). For blocking library calls that have no asynchronous form: DNS and the
 * TLS/SCRAM handshake of a new connection, PQcancel. At most 8 helper threads, started as needed;
 * when none can be started (or after coro_offload_shutdown began), fn runs on the calling thread
 * and blocks its loop rather than fail. fn must not touch loop-owned objects; what it logs carries
 * the caller's request id. */
void coro_offload(void (*fn)(void *arg), void *arg);

/* Joins the helper threads (at exit, after the loops stopped). */
void coro_offload_shutdown(void);

/* A condition variable that also works for coroutines: the waiter is parked (suspended, or
 * blocked when not in a coroutine) until unparked or the deadline passes. Like a condition
 * variable it is used under the caller's mutex, and wake-ups may be spurious: re-check. */
typedef struct coro_parker {
    pthread_cond_t cond;
    coro *co; /* the parked coroutine, or NULL (a thread, or nobody) */
} coro_parker;

void coro_parker_init(coro_parker *p);
void coro_parker_destroy(coro_parker *p);

/* With mu locked: releases it, waits, re-locks it. deadline: coro_now() seconds, 0 = none.
 * Returns 0 when woken, 1 when the deadline passed. */
int coro_park(coro_parker *p, pthread_mutex_t *mu, double deadline);

/* With the same mu locked: wakes the parker's waiter, if any. Any thread. */
void coro_unpark(coro_parker *p);

#endif
