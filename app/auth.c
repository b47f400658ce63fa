/* auth: see auth.h. */
#include "app/auth.h"

#include <errno.h>
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

static int check_claims(jwt_t *jwt, char sub_out[AUTH_SUB_MAX], const char **why)
{
    if (jwt_get_alg(jwt) != JWT_ALG_HS256)
        return fail(why, "algorithm not allowed");
    long now = (long)time(NULL);
    errno = 0;
    long exp = jwt_get_grant_int(jwt, "exp");
    if (errno == ENOENT)
        return fail(why, "token has no exp");
    if (now > exp + AUTH_LEEWAY)
        return fail(why, "token expired");
    errno = 0;
    long nbf = jwt_get_grant_int(jwt, "nbf");
    if (errno != ENOENT && now + AUTH_LEEWAY < nbf)
        return fail(why, "token not yet valid");
    const char *sub = jwt_get_grant(jwt, "sub");
    if (!sub || !*sub || strlen(sub) >= AUTH_SUB_MAX)
        return fail(why, "token has no sub");
    memcpy(sub_out, sub, strlen(sub) + 1);
    return 0;
}

int auth_verify(const char *authorization, char sub_out[AUTH_SUB_MAX], const char **why)
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
    jwt_t *jwt = NULL;
    if (jwt_decode(&jwt, token, secret, (int)secret_len) != 0 || !jwt) {
        jwt_free(jwt);
        return fail(why, "invalid token");
    }
    int rc = check_claims(jwt, sub_out, why);
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
