/* coro: see coro.h. A coroutine's stack is started once with glibc's makecontext/swapcontext and
 * after that switched with sigsetjmp/siglongjmp without the signal mask (savemask 0), as QEMU's
 * coroutine-ucontext does: swapcontext (and libpcl, which switched with it) saves and restores
 * the signal mask with a system call on every switch, 4.5 of them per request, about 1.3 us each
 * on a virtual machine (docs/benchmarks.md); a jump that leaves the mask alone makes none.
 * Scheduling is libevent's: a suspended coroutine is an event (socket, timer,
 * or activated by another thread) whose callback switches back into it. Coroutines are always
 * resumed from the loop's own stack, never from another coroutine. */
/* glibc's fortified longjmp refuses a jump to another stack (it takes it for a corrupted frame);
 * jumping between stacks is what this file is for. Before any header includes <setjmp.h>. */
#undef _FORTIFY_SOURCE
#include "core/coro.h"

#include <errno.h>
#include <event2/event.h>
#include <math.h>
#include <poll.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#include "core/log.h"

#if defined(__SANITIZE_ADDRESS__)
#define CORO_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CORO_ASAN 1
#endif
#endif
#ifdef CORO_ASAN
#include <sanitizer/common_interface_defs.h>
#endif
/* ThreadSanitizer must be told of every stack switch too (a fiber per coroutine), or it takes the
 * loop and its coroutines for one thread whose stack jumps about (-DSANITIZE_THREAD=ON). */
#if defined(__SANITIZE_THREAD__)
#define CORO_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define CORO_TSAN 1
#endif
#endif
#ifdef CORO_TSAN
#include <sanitizer/tsan_interface.h>
#endif

/* Handlers, libpq and jansson need a few KiB; AddressSanitizer's frames several times more. Only
 * the pages a coroutine touches become resident. */
#define STACK_SIZE (256 * 1024)
/* Idle coroutines kept per thread for reuse. */
#define FREE_MAX 256
/* Helper threads for coro_offload, started as needed. */
#define OFFLOAD_MAX 8

struct coro {
    sigjmp_buf env; /* where it resumes: inside switch_to_loop, on its own stack */
    char *map;      /* mmap'd: a guard page, then the stack */
    size_t map_size;
    struct event *ev; /* what the coroutine is waiting for */
    short woke;       /* the event's flags when it fired */
    void (*fn)(void *);
    void (*done)(void *);
    void *arg;
    void *fake_stack; /* AddressSanitizer's bookkeeping while switched out */
    void *tsan_fiber; /* ThreadSanitizer's */
    coro *next;       /* free list */
};

typedef struct sched {
    struct event_base *base;
    sigjmp_buf loop_env; /* where the loop resumes: inside switch_in */
    coro *starting;      /* the coroutine coro_new is starting (trampoline's argument) */
    coro *current;
    coro *free;
    int nfree;
    const void *main_bottom; /* the thread's own stack, for AddressSanitizer */
    size_t main_size;
    void *main_fiber;      /* the loop's, for ThreadSanitizer */
    void *loop_fake_stack; /* AddressSanitizer's bookkeeping of the loop's stack, switched out */
} sched;

static _Thread_local sched *T;

double coro_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

bool coro_active(void)
{
    return T && T->current;
}

coro *coro_self(void)
{
    return T ? T->current : NULL;
}

static struct timeval until(double deadline)
{
    double left = deadline - coro_now();
    if (left < 0)
        left = 0;
    struct timeval tv = {(time_t)left, (suseconds_t)((left - floor(left)) * 1e6)};
    return tv;
}

/* Loop stack -> coroutine, until it waits again or finishes. `first`: the context coro_new made,
 * entered once so that the coroutine records co->env (it comes straight back). Not inlined: the
 * sigsetjmp stays in a frame of its own, and no caller's locals live across it. The sanitizers
 * are told of the switch after the sigsetjmp: ThreadSanitizer files a jump buffer under the fiber
 * current at sigsetjmp, and looks for it under the fiber current at siglongjmp. */
static __attribute__((noinline)) void switch_in(coro *co, ucontext_t *first)
{
    ucontext_t from;
    if (!sigsetjmp(T->loop_env, 0)) {
#ifdef CORO_TSAN
        if (!T->main_fiber)
            T->main_fiber = __tsan_get_current_fiber();
        __tsan_switch_to_fiber(co->tsan_fiber, 0);
#endif
#ifdef CORO_ASAN
        __sanitizer_start_switch_fiber(&T->loop_fake_stack, co->map + getpagesize(),
                                       co->map_size - (size_t)getpagesize());
#endif
        if (first)
            swapcontext(&from, first); /* never returns here: the coroutine jumps to loop_env */
        else
            siglongjmp(co->env, 1);
    }
#ifdef CORO_ASAN
    __sanitizer_finish_switch_fiber(T->loop_fake_stack, NULL, NULL);
#endif
}

/* Coroutine -> loop stack. Returns when resumed. Not inlined, as switch_in. */
static __attribute__((noinline)) void switch_to_loop(coro *co)
{
    if (!sigsetjmp(co->env, 0)) {
#ifdef CORO_TSAN
        __tsan_switch_to_fiber(T->main_fiber, 0);
#endif
#ifdef CORO_ASAN
        __sanitizer_start_switch_fiber(&co->fake_stack, T->main_bottom, T->main_size);
#endif
        siglongjmp(T->loop_env, 1);
    }
#ifdef CORO_ASAN
    __sanitizer_finish_switch_fiber(co->fake_stack, &T->main_bottom, &T->main_size);
#endif
}

/* A wait's switch_to_loop: the log request id is the coroutine's again when it resumes. */
static void switch_out(coro *co)
{
    char rid[80];
    snprintf(rid, sizeof rid, "%s", log_request_id_get());
    switch_to_loop(co);
    log_set_request_id(rid);
}

static void trampoline(void)
{
    coro *co = T->starting;
#ifdef CORO_ASAN
    __sanitizer_finish_switch_fiber(NULL, &T->main_bottom, &T->main_size);
#endif
    switch_to_loop(co); /* co->env is set: back to coro_new; the first resume comes back here */
    for (;;) {          /* a coroutine never returns: it runs one function after another */
        /* the analyzer cannot see that switch_to_loop comes back only once coro_spawn set fn */
        co->fn(co->arg); // NOLINT(clang-analyzer-core.CallAndMessage)
        co->fn = NULL;
        /* not switch_out: the next fn is another coroutine's and starts with its spawner's
         * request id, as on a new stack, not with the one this fn left behind */
        switch_to_loop(co);
    }
}

static void on_wake(evutil_socket_t fd, short what, void *arg);

static void coro_free(coro *co)
{
    if (co->ev)
        event_free(co->ev);
    if (co->map)
        munmap(co->map, co->map_size);
#ifdef CORO_TSAN
    if (co->tsan_fiber)
        __tsan_destroy_fiber(co->tsan_fiber);
#endif
    free(co);
}

/* Starts co's stack: trampoline runs on it until its first switch_to_loop, which records co->env.
 * Apart from coro_new: getcontext returns twice, and coro_new's locals must not live across it.
 * Returns 0 or -1. */
static __attribute__((noinline)) int start(coro *co)
{
    ucontext_t uc;
    if (getcontext(&uc) < 0)
        return -1;
#ifdef CORO_TSAN
    co->tsan_fiber = __tsan_create_fiber(0);
#endif
    size_t page = (size_t)getpagesize();
    uc.uc_stack.ss_sp = co->map + page;
    uc.uc_stack.ss_size = co->map_size - page;
    uc.uc_link = NULL; /* trampoline never returns */
    makecontext(&uc, trampoline, 0);
    T->starting = co;
    switch_in(co, &uc);
    return 0;
}

static coro *coro_new(void)
{
    coro *co = calloc(1, sizeof *co);
    if (!co)
        return NULL;
    size_t page = (size_t)getpagesize();
    co->map_size = STACK_SIZE + page;
    co->map = mmap(NULL, co->map_size, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK | MAP_NORESERVE, -1, 0);
    if (co->map == MAP_FAILED) {
        co->map = NULL;
        coro_free(co);
        return NULL;
    }
    mprotect(co->map, page, PROT_NONE); /* overflow faults instead of corrupting a neighbour */
    co->ev = event_new(T->base, -1, 0, on_wake, co);
    if (!co->ev || start(co) < 0) {
        coro_free(co);
        return NULL;
    }
    return co;
}

int coro_thread_init(struct event_base *base)
{
    if (T)
        return 0;
    T = calloc(1, sizeof *T);
    if (!T)
        return -1;
    T->base = base;
    return 0;
}

void coro_thread_free(void)
{
    if (!T)
        return;
    for (coro *co = T->free, *next; co; co = next) {
        next = co->next;
        coro_free(co);
    }
    free(T);
    T = NULL;
}

/* Switches into co (loop stack only); when it finished, recycles it and runs its `done`. */
static void resume(coro *co)
{
    T->current = co;
    switch_in(co, NULL);
    T->current = NULL;
    log_set_request_id(NULL);
    if (co->fn)
        return; /* suspended in a wait */
    void (*done)(void *) = co->done;
    void *arg = co->arg;
    if (T->nfree < FREE_MAX) {
        co->next = T->free;
        T->free = co;
        T->nfree++;
    } else {
        coro_free(co);
    }
    if (done)
        done(arg);
}

static void on_wake(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    coro *co = arg;
    co->woke = what;
    resume(co);
}

int coro_spawn(void (*fn)(void *), void (*done)(void *), void *arg)
{
    coro *co = T->free;
    if (co) {
        T->free = co->next;
        T->nfree--;
    } else if (!(co = coro_new())) {
        return -1;
    }
    co->fn = fn;
    co->done = done;
    co->arg = arg;
    resume(co);
    return 0;
}

typedef struct later {
    void (*fn)(void *);
    void (*done)(void *);
    void *arg;
} later;

static void on_later(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    later l = *(later *)arg;
    free(arg);
    if (coro_spawn(l.fn, l.done, l.arg) < 0) {
        log_error("out of memory for a coroutine's stack");
        abort(); /* the caller was promised fn would run; nothing sane is left to do */
    }
}

int coro_spawn_later(void (*fn)(void *), void (*done)(void *), void *arg)
{
    later *l = malloc(sizeof *l);
    if (!l)
        return -1;
    *l = (later){fn, done, arg};
    struct timeval zero = {0, 0};
    if (event_base_once(T->base, -1, EV_TIMEOUT, on_later, l, &zero) < 0) {
        free(l);
        return -1;
    }
    return 0;
}

/* Suspends the running coroutine until its event fires; returns the event's flags, or -1 when
 * the event could not be added (errno; an fd epoll refuses, say: nothing would ever wake it). */
static short wait_event(coro *co, double deadline)
{
    /* libevent measures a relative timeout from the time it cached when this loop iteration
     * began; coroutines that ran (or blocked on a mutex) since would make the wait end early */
    event_base_update_cache_time(T->base);
    struct timeval tv = until(deadline);
    if (event_add(co->ev, deadline > 0 ? &tv : NULL) < 0)
        return -1;
    co->woke = 0;
    switch_out(co);
    return co->woke;
}

int coro_wait_fd(int fd, bool write, double deadline)
{
    short want = write ? EV_WRITE : EV_READ;
    if (!coro_active()) {
        int ms = -1;
        if (deadline > 0) {
            double left = deadline - coro_now();
            ms = left > 0 ? (int)ceil(left * 1000) : 0;
        }
        struct pollfd p = {fd, write ? POLLOUT : POLLIN, 0};
        int r;
        while ((r = poll(&p, 1, ms)) < 0 && errno == EINTR)
            ;
        if (r > 0 && (p.revents & POLLNVAL)) { /* as in a coroutine, where epoll refuses it */
            errno = EBADF;
            return -1;
        }
        return r < 0 ? -1 : r > 0;
    }
    coro *co = T->current;
    event_assign(co->ev, T->base, fd, want, on_wake, co);
    short got = wait_event(co, deadline);
    if (got < 0)
        return -1;
    return (got & want) ? 1 : 0;
}

void coro_suspend(void)
{
    coro *co = T->current;
    event_assign(co->ev, T->base, -1, 0, on_wake, co);
    co->woke = 0;
    switch_out(co);
}

void coro_wake(coro *co)
{
    event_active(co->ev, EV_READ, 1);
}

void coro_parker_init(coro_parker *p)
{
    pthread_condattr_t a;
    pthread_condattr_init(&a);
    pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
    pthread_cond_init(&p->cond, &a);
    pthread_condattr_destroy(&a);
    p->co = NULL;
}

void coro_parker_destroy(coro_parker *p)
{
    pthread_cond_destroy(&p->cond);
}

int coro_park(coro_parker *p, pthread_mutex_t *mu, double deadline)
{
    if (!coro_active()) {
        if (deadline <= 0)
            return pthread_cond_wait(&p->cond, mu) == 0 ? 0 : 1;
        struct timespec ts = {(time_t)deadline, (long)((deadline - floor(deadline)) * 1e9)};
        return pthread_cond_timedwait(&p->cond, mu, &ts) == ETIMEDOUT;
    }
    coro *co = T->current;
    event_assign(co->ev, T->base, -1, 0, on_wake, co);
    p->co = co;
    pthread_mutex_unlock(mu);
    short got = wait_event(co, deadline);
    pthread_mutex_lock(mu);
    /* an unpark that raced with the timeout left the event active: drop it before reuse */
    event_del(co->ev);
    p->co = NULL;
    return got == EV_TIMEOUT;
}

void coro_unpark(coro_parker *p)
{
    if (p->co)
        event_active(p->co->ev, EV_READ, 1); /* thread-safe: evthread_use_pthreads() */
    else
        pthread_cond_signal(&p->cond);
}

/* coro_offload's helper threads. */
typedef struct job {
    void (*fn)(void *);
    void *arg;
    char request_id[80]; /* the caller's, for what fn logs */
    bool done;
    coro_parker parker;
    struct job *next;
} job;

static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    job *head, *tail;
    pthread_t threads[OFFLOAD_MAX];
    int nthreads, idle;
    int queued; /* jobs in the list, not yet taken by a thread */
    bool stop;
} O = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

static void *offload_main(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&O.mu);
    for (;;) {
        while (!O.head && !O.stop)
            pthread_cond_wait(&O.cv, &O.mu);
        job *j = O.head;
        if (!j)
            break;
        O.head = j->next;
        if (!O.head)
            O.tail = NULL;
        O.queued--;
        O.idle--;
        pthread_mutex_unlock(&O.mu);
        log_set_request_id(j->request_id);
        j->fn(j->arg);
        log_set_request_id(NULL);
        pthread_mutex_lock(&O.mu);
        O.idle++;
        j->done = true;
        coro_unpark(&j->parker);
    }
    pthread_mutex_unlock(&O.mu);
    return NULL;
}

void coro_offload(void (*fn)(void *), void *arg)
{
    if (!coro_active()) {
        fn(arg);
        return;
    }
    job j = {.fn = fn, .arg = arg};
    snprintf(j.request_id, sizeof j.request_id, "%s", log_request_id_get());
    coro_parker_init(&j.parker);
    pthread_mutex_lock(&O.mu);
    /* a thread counts as idle until it takes a job: one more is needed when the idle ones are
     * all promised to jobs queued before this one (else a burst of calls runs one by one) */
    if (O.idle <= O.queued && O.nthreads < OFFLOAD_MAX && !O.stop &&
        pthread_create(&O.threads[O.nthreads], NULL, offload_main, NULL) == 0) {
        O.nthreads++;
        O.idle++;
    }
    if (O.nthreads == 0 || O.stop) { /* no helper thread: block this loop rather than fail */
        pthread_mutex_unlock(&O.mu);
        coro_parker_destroy(&j.parker);
        fn(arg);
        return;
    }
    if (O.tail)
        O.tail->next = &j;
    else
        O.head = &j;
    O.tail = &j;
    O.queued++;
    pthread_cond_signal(&O.cv);
    while (!j.done)
        coro_park(&j.parker, &O.mu, 0);
    pthread_mutex_unlock(&O.mu);
    coro_parker_destroy(&j.parker);
}

void coro_offload_shutdown(void)
{
    pthread_mutex_lock(&O.mu);
    O.stop = true;
    pthread_cond_broadcast(&O.cv);
    int n = O.nthreads;
    pthread_mutex_unlock(&O.mu);
    for (int i = 0; i < n; i++)
        pthread_join(O.threads[i], NULL);
    pthread_mutex_lock(&O.mu);
    O.nthreads = O.idle = 0;
    O.stop = false;
    pthread_mutex_unlock(&O.mu);
}
