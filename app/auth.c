/* auth: see auth.h. */
#include "app/auth.h"

#include <errno.h>
#include <limits.h>
#include <jwt.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

static unsigned char *secret;
static size_t secret_len;

int auth_configure(const char *s, size_t len)
{
    free(secret);
    secret = malloc(len ? len : 1);
    if (!secret)
        return -1;
    memcpy(secret, s, len);
    secret_len = len;
    return 0;
}

int auth_generate_secret(char out_hex[65])
{
    unsigned char raw[32];
    if (RAND_bytes(raw, sizeof raw) != 1)
        return -1;
    for (size_t i = 0; i < sizeof raw; i++)
        snprintf(out_hex + 2 * i, 3, "%02x", raw[i]);
    return 0;
}

static int fail(const char **why, const char *reason)
{
    *why = reason;
    return -1;
}

/* A verified token's claims. A signature check is a pure function of the token's bytes (the
 * secret is fixed for the process), so a client that sends the same token again skips base64,
 * JSON parsing and the HMAC (~5 us); the time checks are redone on every use. Direct-mapped, one
 * cache per event loop (auth.h). */
#define CACHE_SLOTS 1024
typedef struct {
    char *token;   /* malloc'd; NULL: empty slot */
    char *sub;     /* malloc'd */
    long exp, nbf; /* nbf LONG_MIN: none */
} cached_claims;

struct auth_cache {
    cached_claims slot[CACHE_SLOTS];
};

auth_cache *auth_cache_new(void)
{
    return calloc(1, sizeof(auth_cache));
}

void auth_cache_free(auth_cache *c)
{
    for (int i = 0; c && i < CACHE_SLOTS; i++) {
        free(c->slot[i].token);
        free(c->slot[i].sub);
    }
    free(c);
}

static unsigned slot_of(const char *token, size_t len)
{
    unsigned h = 2166136261u; /* FNV-1a over the signature's tail: HMAC output, well spread */
    for (size_t i = len > 16 ? len - 16 : 0; i < len; i++)
        h = (h ^ (unsigned char)token[i]) * 16777619u;
    return h % CACHE_SLOTS;
}

static int check_times(long exp, long nbf, const char **why)
{
    long now = (long)time(NULL);
    if (now > exp + AUTH_LEEWAY)
        return fail(why, "token expired");
    if (nbf != LONG_MIN && now + AUTH_LEEWAY < nbf)
        return fail(why, "token not yet valid");
    return 0;
}

static void remember(auth_cache *cache, const char *token, size_t len, const char *sub, long exp,
                     long nbf)
{
    if (!cache)
        return;
    cached_claims *c = &cache->slot[slot_of(token, len)];
    char *t = strdup(token), *s = strdup(sub);
    if (!t || !s) {
        free(t);
        free(s);
        return;
    }
    free(c->token);
    free(c->sub);
    *c = (cached_claims){t, s, exp, nbf};
}

static int check_claims(jwt_t *jwt, auth_cache *cache, const char *token, size_t len,
                        char sub_out[AUTH_SUB_MAX], const char **why)
{
    if (jwt_get_alg(jwt) != JWT_ALG_HS256)
        return fail(why, "algorithm not allowed");
    errno = 0;
    long exp = jwt_get_grant_int(jwt, "exp");
    if (errno == ENOENT)
        return fail(why, "token has no exp");
    errno = 0;
    long nbf = jwt_get_grant_int(jwt, "nbf");
    if (errno == ENOENT)
        nbf = LONG_MIN;
    if (check_times(exp, nbf, why) < 0)
        return -1;
    const char *sub = jwt_get_grant(jwt, "sub");
    if (!sub || !*sub || strlen(sub) >= AUTH_SUB_MAX)
        return fail(why, "token has no sub");
    memcpy(sub_out, sub, strlen(sub) + 1);
    remember(cache, token, len, sub, exp, nbf);
    return 0;
}

int auth_verify(auth_cache *cache, const char *authorization, char sub_out[AUTH_SUB_MAX],
                const char **why)
{
    if (!authorization || !*authorization)
        return fail(why, "missing bearer token");
    if (strncasecmp(authorization, "Bearer ", 7) != 0)
        return fail(why, "authorization is not a bearer token");
    const char *token = authorization + 7;
    while (*token == ' ')
        token++;
    /* bounded: the header limit already caps it, this keeps libjwt away from absurd inputs */
    if (!*token || strlen(token) > 8192)
        return fail(why, "malformed token");
    size_t len = strlen(token);
    cached_claims *c = cache ? &cache->slot[slot_of(token, len)] : NULL;
    if (c && c->token && !strcmp(c->token, token)) {
        if (check_times(c->exp, c->nbf, why) < 0)
            return -1;
        memcpy(sub_out, c->sub, strlen(c->sub) + 1);
        return 0;
    }
    jwt_t *jwt = NULL;
    if (jwt_decode(&jwt, token, secret, (int)secret_len) != 0 || !jwt) {
        jwt_free(jwt);
        return fail(why, "invalid token");
    }
    int rc = check_claims(jwt, cache, token, len, sub_out, why);
    jwt_free(jwt);
    return rc;
}

char *auth_sign(const char *sub, long exp, long nbf)
{
    jwt_t *jwt = NULL;
    char *out = NULL;
    if (jwt_new(&jwt) != 0)
        return NULL;
    if (jwt_add_grant(jwt, "sub", sub) == 0 && jwt_add_grant_int(jwt, "exp", exp) == 0 &&
        jwt_add_grant_int(jwt, "iat", (long)time(NULL)) == 0 &&
        (nbf == 0 || jwt_add_grant_int(jwt, "nbf", nbf) == 0) &&
        jwt_set_alg(jwt, JWT_ALG_HS256, secret, (int)secret_len) == 0)
        out = jwt_encode_str(jwt);
    jwt_free(jwt);
    return out;
}
