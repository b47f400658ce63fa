/* ratelimit: see ratelimit.h. */
#include "app/ratelimit.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct entry {
    struct entry *next;
    long window; /* Unix time / window length */
    long count;
    char subject[];
} entry;

typedef struct shard {
    pthread_mutex_t mu;
    entry **buckets;
    size_t nbuckets, n;
} shard;

#define SHARDS 16

static struct {
    long limit, window;
    shard shards[SHARDS];
} R;

static unsigned long hash(const char *s)
{
    unsigned long h = 1469598103934665603UL; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211UL;
    return h;
}

int ratelimit_init(long limit, long window)
{
    R.limit = limit;
    R.window = window > 0 ? window : 1;
    for (int i = 0; i < SHARDS && limit > 0; i++) {
        shard *s = &R.shards[i];
        pthread_mutex_init(&s->mu, NULL);
        s->nbuckets = 64;
        if (!(s->buckets = calloc(s->nbuckets, sizeof(entry *))))
            return -1;
    }
    return 0;
}

bool ratelimit_on(void)
{
    return R.limit > 0;
}

/* Drops the entries of windows before `now`; doubles the buckets when still crowded. */
static void sweep(shard *s, long now)
{
    for (size_t b = 0; b < s->nbuckets; b++)
        for (entry **p = &s->buckets[b]; *p;) {
            entry *e = *p;
            if (e->window < now) {
                *p = e->next;
                free(e);
                s->n--;
            } else {
                p = &e->next;
            }
        }
    if (s->n < s->nbuckets)
        return;
    size_t nb = s->nbuckets * 2;
    entry **more = calloc(nb, sizeof(entry *));
    if (!more)
        return;
    for (size_t b = 0; b < s->nbuckets; b++)
        for (entry *e = s->buckets[b], *next; e; e = next) {
            next = e->next;
            size_t at = (hash(e->subject) / SHARDS) % nb;
            e->next = more[at];
            more[at] = e;
        }
    free(s->buckets);
    s->buckets = more;
    s->nbuckets = nb;
}

void ratelimit_take(const char *subject, ratelimit_verdict *v)
{
    long now = (long)time(NULL), window = now / R.window;
    *v = (ratelimit_verdict){.allowed = true,
                             .limit = R.limit,
                             .remaining = R.limit,
                             .reset = (window + 1) * R.window,
                             .retry_after = (window + 1) * R.window - now};
    if (R.limit <= 0)
        return;
    unsigned long h = hash(subject);
    shard *s = &R.shards[h % SHARDS];
    pthread_mutex_lock(&s->mu);
    entry **head = &s->buckets[(h / SHARDS) % s->nbuckets], *e = *head;
    while (e && strcmp(e->subject, subject))
        e = e->next;
    if (!e) {
        if (s->n >= 2 * s->nbuckets) {
            sweep(s, window);
            head = &s->buckets[(h / SHARDS) % s->nbuckets];
        }
        size_t len = strlen(subject) + 1;
        if ((e = malloc(sizeof *e + len))) {
            memcpy(e->subject, subject, len);
            e->window = window;
            e->count = 0;
            e->next = *head;
            *head = e;
            s->n++;
        }
    }
    if (e) {
        if (e->window != window) {
            e->window = window;
            e->count = 0;
        }
        if (e->count <= R.limit) /* stays put past the limit: no overflow */
            e->count++;
        v->allowed = e->count <= R.limit;
        v->remaining = v->allowed ? R.limit - e->count : 0;
    }
    pthread_mutex_unlock(&s->mu);
}

void ratelimit_free(void)
{
    for (int i = 0; i < SHARDS && R.limit > 0; i++) {
        shard *s = &R.shards[i];
        for (size_t b = 0; b < s->nbuckets; b++)
            for (entry *e = s->buckets[b], *next; e; e = next) {
                next = e->next;
                free(e);
            }
        free(s->buckets);
        s->buckets = NULL;
        pthread_mutex_destroy(&s->mu);
    }
    R.limit = 0;
}
