/* auth: bearer JWTs, from two kinds of issuer, either or both configured:
 *  - HS256 with a shared secret (JWT_SECRET; `make run`'s development token);
 *  - EdDSA (Ed25519), ES256, RS256, PS256 with the public keys of a JWKS (AUTH_JWKS_URL: Better
 *    Auth's JWT plugin, Clerk, Auth0, ...; app/jwks.h fetches them).
 *
 * The algorithm is bound to the key, never chosen by the token: HS256 only with the secret, the
 * others only with a JWKS key of the matching type (OKP/Ed25519, EC/P-256, RSA), found by the
 * token's `kid` (without `kid`: the only key that fits). `alg: none`, HS512, an HS256 token
 * "signed" with a public key: invalid. `exp` is required; `exp`, `nbf` and `iat` are checked with
 * a few seconds of leeway; `iss` and `aud` when configured; `sub` (a string) is the user id.
 * Thread: auth_setup (or auth_configure) once at startup; auth_verify from any thread. */
#ifndef APP_AUTH_H
#define APP_AUTH_H

#include <stdbool.h>
#include <stddef.h>

#define AUTH_LEEWAY 10 /* seconds, the default */
#define AUTH_SUB_MAX 256

/* auth_verify's results besides 0. */
#define AUTH_INVALID (-1)     /* 401 */
#define AUTH_UNAVAILABLE (-2) /* 503: the token needs the JWKS and none was ever fetched */
#define AUTH_REFRESHING (-3)  /* unknown kid, a JWKS fetch runs: jwks_wait(), verify again */

typedef struct auth_settings {
    const char *secret; /* HS256 secret (copied); NULL: HS256 tokens are refused */
    size_t secret_len;
    const char *issuer;   /* copied; NULL: iss not checked */
    const char *audience; /* copied; NULL: aud not checked */
    int algs;             /* JWKS_ALG_* mask of the accepted algorithms (app/jwks.h) */
    int leeway;           /* seconds of clock skew allowed on exp, nbf, iat */
} auth_settings;

/* Sets what auth_verify accepts. Returns 0, or -1 out of memory. */
int auth_setup(const auth_settings *s);

/* auth_setup with the secret alone (every algorithm, default leeway, no iss/aud). len 0 frees. */
int auth_configure(const char *secret, size_t len);

/* Generates a random 32-byte secret for development (hex-encoded, copied in). Returns 0 or -1. */
int auth_generate_secret(char out_hex[65]);

/* A cache of verified tokens (same bytes -> same signature verdict, as long as the key that
 * verified it is in the key set; exp and nbf are rechecked on every use). Not thread-safe: one per
 * event loop. auth_cache_new returns NULL when out of memory; auth_cache_free(NULL) is a no-op. */
typedef struct auth_cache auth_cache;
auth_cache *auth_cache_new(void);
void auth_cache_free(auth_cache *cache);

/* Verifies an Authorization header value, through `cache` (may be NULL). Returns 0 and copies
 * `sub` into sub_out, or AUTH_INVALID / AUTH_UNAVAILABLE / AUTH_REFRESHING with a short reason in
 * *why ("missing bearer token", "invalid signature", "token expired", "unknown kid", ...). */
int auth_verify(auth_cache *cache, const char *authorization, char sub_out[AUTH_SUB_MAX],
                const char **why);

/* Signs an HS256 token for `sub` valid from nbf to exp (Unix seconds; nbf 0: none) with the
 * configured secret, with the configured iss and aud. Returns a malloc'd string (caller frees) or
 * NULL. */
char *auth_sign(const char *sub, long exp, long nbf);

#endif
