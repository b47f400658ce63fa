/* auth: bearer JWTs, HS256 only, with the shared secret of the frontend (Better Auth).
 *
 * The algorithm is pinned (libjwt 1.10 verifies with whatever `alg` the token names, so HS512 or
 * `none` would otherwise pass: algorithm confusion, libjwt#43), `exp` is required and checked with
 * AUTH_LEEWAY seconds of clock skew, `nbf` honoured when present, and `sub` is the user id.
 * Thread: auth_configure once at startup; auth_verify from any thread. */
#ifndef APP_AUTH_H
#define APP_AUTH_H

#include <stdbool.h>
#include <stddef.h>

#define AUTH_LEEWAY 10 /* seconds */
#define AUTH_SUB_MAX 256

/* Sets the secret (copied; the length policy is config.c's). Returns 0, or -1 out of memory. */
int auth_configure(const char *secret, size_t len);

/* Generates a random 32-byte secret for development (hex-encoded, copied in). Returns 0 or -1. */
int auth_generate_secret(char out_hex[65]);

/* A cache of verified tokens (same bytes -> same signature verdict; exp and nbf are rechecked on
 * every use). Not thread-safe: one per event loop. auth_cache_new returns NULL when out of memory;
 * auth_cache_free(NULL) is a no-op. */
typedef struct auth_cache auth_cache;
auth_cache *auth_cache_new(void);
void auth_cache_free(auth_cache *cache);

/* Verifies an Authorization header value, through `cache` (may be NULL). Returns 0 and copies
 * `sub` into sub_out, or -1 with a short reason in *why ("missing bearer token", "invalid token",
 * "token expired", ...). */
int auth_verify(auth_cache *cache, const char *authorization, char sub_out[AUTH_SUB_MAX],
                const char **why);

/* Signs an HS256 token for `sub` valid from nbf to exp (Unix seconds; nbf 0: none) with the
 * configured secret. Returns a malloc'd
 * string (caller frees) or NULL. */
char *auth_sign(const char *sub, long exp, long nbf);

#endif
