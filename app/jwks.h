/* jwks: the public keys of an identity provider (Better Auth, Clerk, Auth0, ...), fetched from
 * its JWKS URL by a background thread, cached, refreshed on a schedule and on demand.
 *
 * The JWK is read with jansson, the key built with OpenSSL 3, the set fetched with libcurl: no JOSE
 * library packaged in Debian 12 verifies EdDSA (why in docs/auth.md).
 *
 * Fetching never happens on an event loop thread and startup never waits for it: jwks_start
 * starts the fetcher thread and returns. Until a first fetch succeeded, jwks_acquire returns
 * NULL (the caller answers 503). A failed refresh keeps the last good set. Refreshes are rate
 * limited by min_refresh seconds, whoever asks.
 *
 * Threads: jwks_start/jwks_stop from the main thread; everything else from any thread. */
#ifndef APP_JWKS_H
#define APP_JWKS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include <openssl/evp.h>

/* The signature algorithms this API knows, as bits of a mask. */
enum {
    JWKS_ALG_HS256 = 1 << 0,
    JWKS_ALG_EDDSA = 1 << 1,
    JWKS_ALG_ES256 = 1 << 2,
    JWKS_ALG_RS256 = 1 << 3,
    JWKS_ALG_PS256 = 1 << 4,
};
#define JWKS_ALG_ALL 0x1f

/* "EdDSA" -> JWKS_ALG_EDDSA, ...; 0 for anything else ("none", "HS512", ...). */
int jwks_alg_from_name(const char *name);

typedef enum { JWKS_KTY_OKP, JWKS_KTY_EC, JWKS_KTY_RSA } jwks_kty;

typedef struct jwks_key {
    char *kid;            /* NULL: the JWK had none */
    jwks_kty kty;         /* OKP is Ed25519, EC is P-256, RSA at least 2048 bits */
    int algs;             /* the algorithms this key may verify (its type, narrowed by JWK alg) */
    EVP_PKEY *pkey;       /* owned by the set */
    unsigned long serial; /* stays the same across refreshes while the key is unchanged */
} jwks_key;

/* An immutable snapshot of the key set, reference counted. */
typedef struct jwks_set {
    int refs; /* atomic */
    int nkeys;
    jwks_key keys[];
} jwks_set;

/* Parses a JWKS document. Keys that are not for signatures, of an unsupported type or curve, or
 * malformed are skipped with a warning in the log. Returns a set (refs 1; jwks_release it), or
 * NULL with a one-line reason in err (not JSON, no "keys" array, keys but none usable; an empty
 * array is a set without keys: Better Auth makes its first key lazily). `prev` (may be
 * NULL) lends serials to unchanged keys. */
jwks_set *jwks_parse(const char *json, size_t len, const jwks_set *prev, char *err, size_t errlen);

void jwks_release(jwks_set *set);

/* The key for a token: by kid when the token names one (then the key must also fit alg), else
 * the only key that fits alg. NULL when none (or, without kid, more than one) fits. */
const jwks_key *jwks_find(const jwks_set *set, const char *kid, int alg);

typedef struct jwks_config {
    const char *url;    /* http(s) URL, copied */
    double ttl;         /* seconds between scheduled refreshes */
    double min_refresh; /* seconds at least between two fetches (rate limit) */
    double timeout;     /* seconds for one whole fetch */
    long max_bytes;     /* body size cap */
} jwks_config;

/* Starts the fetcher thread (first fetch at once). Returns 0, or -1 (thread or memory). */
int jwks_start(const jwks_config *cfg);

/* Stops the fetcher (an ongoing transfer is aborted) and drops the set. No-op when not started. */
void jwks_stop(void);

/* True between jwks_start and jwks_stop. */
bool jwks_enabled(void);

/* The current set with a reference (jwks_release it), or NULL while no fetch ever succeeded. */
jwks_set *jwks_acquire(void);

/* Changes whenever a new set is installed; cheap (one atomic load). */
unsigned long jwks_generation(void);

/* True when the current set still holds the key with this serial. */
bool jwks_serial_live(unsigned long serial);

/* Asks for a fetch now (a token named an unknown kid). Returns true when a fetch is running or
 * starts and the caller may jwks_wait for it, false when the rate limit says not yet (or 16
 * requests already wait). */
bool jwks_request_refresh(void);

/* Waits (parking the coroutine, or blocking a plain thread) until the fetch running or asked
 * for at the call has finished (at most the fetch timeout and a second). Returns at once when
 * 16 requests already wait. */
void jwks_wait(void);

/* Seconds until the next fetch attempt, at least 1 (for Retry-After). */
int jwks_retry_after(void);

/* Writes the jwks_* Prometheus lines (nothing when not started). */
void jwks_metrics(FILE *f);

/* base64url without padding (RFC 7515) into out (at most outcap bytes). Returns the length or
 * -1 (bad character, too long). */
long jwks_b64url_decode(const char *in, size_t len, unsigned char *out, size_t outcap);

#endif
