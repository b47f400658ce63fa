/* ratelimit: RATE_LIMIT per token subject, as FastAPI users add it with slowapi: a fixed window
 * (slowapi's default strategy, the `limits` library's FixedWindowRateLimiter), each window
 * starting at a multiple of its length in Unix time, so every instance of the API agrees on when
 * a window ends (X-RateLimit-Reset). The counts are this process's: N replicas allow N times the
 * limit (slowapi with its default memory storage does the same; a shared store is the next step).
 *
 * Memory: one entry per subject seen in the current window; entries of past windows are dropped
 * as the table grows. A subject is a verified token's `sub`, so only a holder of valid tokens
 * makes entries.
 *
 * Thread: any; the table is split in shards, each behind its own mutex. */
#ifndef APP_RATELIMIT_H
#define APP_RATELIMIT_H

#include <stdbool.h>

typedef struct ratelimit_verdict {
    bool allowed;
    long limit;       /* X-RateLimit-Limit */
    long remaining;   /* X-RateLimit-Remaining */
    long reset;       /* X-RateLimit-Reset: Unix time the window ends */
    long retry_after; /* Retry-After: seconds until then, at least 1 */
} ratelimit_verdict;

/* `limit` requests per `window` seconds; limit 0 turns the limiter off. Returns 0, or -1 when out
 * of memory. Once, before any ratelimit_take. */
int ratelimit_init(long limit, long window);

/* True when a limit is set. */
bool ratelimit_on(void);

/* Counts one request of `subject` and says whether it is within the limit. Out of memory: the
 * request is allowed (a limiter that cannot count does not refuse). */
void ratelimit_take(const char *subject, ratelimit_verdict *v);

/* Frees the table (at exit). */
void ratelimit_free(void);

#endif
