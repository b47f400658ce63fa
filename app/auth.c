/* auth: see auth.h.
 *
 * Tokens are parsed and verified here rather than by libjwt, which signs the development token:
 * libjwt 1.10 knows neither JWKs nor EdDSA and verifies with whatever `alg` the token names
 * (libjwt#43), and none of Debian 12's JOSE libraries does EdDSA (docs/auth.md). The signature is
 * OpenSSL 3's EVP, the JSON jansson. */
#include "app/auth.h"

#include <jansson.h>
#include <jwt.h>
#include <limits.h>
#include <math.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "app/jwks.h"

static struct {
    unsigned char *secret; /* NULL: no HS256 */
    size_t secret_len;
    char *issuer, *audience;
    int algs;
    int leeway;
} S = {.algs = JWKS_ALG_ALL, .leeway = AUTH_LEEWAY};

int auth_setup(const auth_settings *s)
{
    free(S.secret);
    free(S.issuer);
    free(S.audience);
    memset(&S, 0, sizeof S);
    S.algs = s->algs;
    S.leeway = s->leeway;
    if (s->secret && s->secret_len) {
        S.secret = malloc(s->secret_len);
        if (!S.secret)
            return -1;
        memcpy(S.secret, s->secret, s->secret_len);
        S.secret_len = s->secret_len;
    }
    if ((s->issuer && !(S.issuer = strdup(s->issuer))) ||
        (s->audience && !(S.audience = strdup(s->audience))))
        return -1;
    return 0;
}

int auth_configure(const char *secret, size_t len)
{
    auth_settings s = {
        .secret = secret, .secret_len = len, .algs = JWKS_ALG_ALL, .leeway = AUTH_LEEWAY};
    return auth_setup(&s);
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
    return AUTH_INVALID;
}

/* A verified token's claims. A signature check is a pure function of the token's bytes and the
 * key, so a client that sends the same token again skips base64, JSON parsing and the signature
 * (~5 us for HS256, ~50 us for EdDSA); the time checks are redone on every use, and the key must
 * still be in the key set (a key removed from the JWKS stops its tokens at once, cached or not).
 * Direct-mapped, one cache per event loop (auth.h). */
#define CACHE_SLOTS 1024
typedef struct {
    char *token;          /* malloc'd; NULL: empty slot */
    char *sub;            /* malloc'd */
    long exp, nbf;        /* nbf LONG_MIN: none */
    unsigned long serial; /* the JWKS key that verified it; 0: the HS256 secret */
    unsigned long gen;    /* jwks_generation() when the key was last seen in the set */
} cached_claims;

struct auth_cache {
    cached_claims slot[CACHE_SLOTS];
};

auth_cache *auth_cache_new(void)
{
    return calloc(1, sizeof(auth_cache));
}

static void evict(cached_claims *c)
{
    free(c->token);
    free(c->sub);
    memset(c, 0, sizeof *c);
}

void auth_cache_free(auth_cache *c)
{
    for (int i = 0; c && i < CACHE_SLOTS; i++)
        evict(&c->slot[i]);
    free(c);
}

static unsigned slot_of(const char *token, size_t len)
{
    unsigned h = 2166136261u; /* FNV-1a over the signature's tail: well spread */
    for (size_t i = len > 16 ? len - 16 : 0; i < len; i++)
        h = (h ^ (unsigned char)token[i]) * 16777619u;
    return h % CACHE_SLOTS;
}

static int check_times(long exp, long nbf, const char **why)
{
    long now = (long)time(NULL);
    if (now > exp + S.leeway)
        return fail(why, "token expired");
    if (nbf != LONG_MIN && now + S.leeway < nbf)
        return fail(why, "token not yet valid");
    return 0;
}

static void remember(auth_cache *cache, const char *token, size_t len, const char *sub, long exp,
                     long nbf, unsigned long serial)
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
    evict(c);
    *c = (cached_claims){t, s, exp, nbf, serial, jwks_generation()};
}

/* A base64url part into a JSON object (NULL when it is not one). */
static json_t *json_part(const char *p, size_t len)
{
    unsigned char buf[8192];
    long n = jwks_b64url_decode(p, len, buf, sizeof buf);
    json_t *obj =
        n < 0 ? NULL : json_loadb((const char *)buf, (size_t)n, JSON_REJECT_DUPLICATES, NULL);
    if (obj && !json_is_object(obj)) {
        json_decref(obj);
        obj = NULL;
    }
    return obj;
}

static bool hs256_ok(const char *input, size_t len, const unsigned char *sig, long siglen)
{
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned maclen = 0;
    if (!S.secret || siglen != 32 ||
        !HMAC(EVP_sha256(), S.secret, (int)S.secret_len, (const unsigned char *)input, len, mac,
              &maclen))
        return false;
    return maclen == 32 && CRYPTO_memcmp(mac, sig, 32) == 0;
}

/* JWS ES256 signatures are r || s (32 bytes each); OpenSSL verifies DER. Returns its length. */
static int es256_der(const unsigned char *sig, long siglen, unsigned char *der, size_t cap)
{
    if (siglen != 64)
        return -1;
    ECDSA_SIG *es = ECDSA_SIG_new();
    BIGNUM *r = BN_bin2bn(sig, 32, NULL), *s = BN_bin2bn(sig + 32, 32, NULL);
    int n = -1;
    if (es && r && s && ECDSA_SIG_set0(es, r, s) == 1) {
        r = s = NULL; /* owned by es now */
        if (i2d_ECDSA_SIG(es, NULL) <= (int)cap)
            n = i2d_ECDSA_SIG(es, &der);
    }
    BN_free(r);
    BN_free(s);
    ECDSA_SIG_free(es);
    return n;
}

static bool signature_ok(const jwks_key *k, int alg, const char *input, size_t len,
                         const unsigned char *sig, long siglen)
{
    unsigned char der[80];
    const EVP_MD *md = alg == JWKS_ALG_EDDSA ? NULL : EVP_sha256();
    if (alg == JWKS_ALG_EDDSA && siglen != 64)
        return false;
    if (alg == JWKS_ALG_ES256) {
        int n = es256_der(sig, siglen, der, sizeof der);
        if (n < 0)
            return false;
        sig = der;
        siglen = n;
    }
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    bool ok = ctx && EVP_DigestVerifyInit(ctx, &pctx, md, NULL, k->pkey) == 1;
    if (ok && alg == JWKS_ALG_PS256) /* RFC 7518 3.5: MGF1 with SHA-256, salt of the hash size */
        ok = EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) == 1 &&
             EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) == 1;
    ok = ok && EVP_DigestVerify(ctx, sig, (size_t)siglen, (const unsigned char *)input, len) == 1;
    EVP_MD_CTX_free(ctx);
    return ok;
}

/* Checks the signature with the secret or the JWKS key the header names. On success *serial is
 * the key's (0 for HS256). */
static int check_signature(json_t *header, const char *token, size_t input_len, const char *sig_b64,
                           size_t sig_len, unsigned long *serial, const char **why)
{
    int alg = jwks_alg_from_name(json_string_value(json_object_get(header, "alg")));
    json_t *kidj = json_object_get(header, "kid");
    if (!alg || !(alg & S.algs))
        return fail(why, "algorithm not allowed");
    if (json_object_get(header, "crit"))
        return fail(why, "critical header extensions are not supported");
    if (kidj && !json_is_string(kidj))
        return fail(why, "kid is not a string");
    unsigned char sig[1024];
    long siglen = jwks_b64url_decode(sig_b64, sig_len, sig, sizeof sig);
    if (siglen < 0)
        return fail(why, "malformed signature");
    if (alg == JWKS_ALG_HS256) {
        *serial = 0;
        if (!S.secret)
            return fail(why, "HS256 tokens are not accepted (no JWT_SECRET)");
        return hs256_ok(token, input_len, sig, siglen) ? 0 : fail(why, "invalid signature");
    }
    if (!jwks_enabled())
        return fail(why, "no JWKS configured (AUTH_JWKS_URL) for this algorithm");
    jwks_set *set = jwks_acquire();
    if (!set) {
        jwks_request_refresh();
        *why = "no key set fetched yet";
        return AUTH_UNAVAILABLE;
    }
    const char *kid = json_string_value(kidj);
    const jwks_key *k = jwks_find(set, kid, alg);
    int rc = 0;
    if (!k) {
        bool known = false;
        for (int i = 0; kid && i < set->nkeys; i++)
            known |= set->keys[i].kid && !strcmp(set->keys[i].kid, kid);
        if (kid && !known && jwks_request_refresh()) { /* maybe a rotated key: fetch, then retry */
            *why = "unknown kid, refreshing the key set";
            rc = AUTH_REFRESHING;
        } else {
            rc = fail(why, known ? "algorithm does not fit the key"
                           : kid ? "unknown kid"
                                 : "no single key fits a token without kid");
        }
    } else if (!signature_ok(k, alg, token, input_len, sig, siglen)) {
        rc = fail(why, "invalid signature");
    } else {
        *serial = k->serial;
    }
    jwks_release(set);
    return rc;
}

static bool number_claim(json_t *claims, const char *name, long *out)
{
    json_t *v = json_object_get(claims, name);
    double d = json_number_value(v);
    if (!json_is_number(v) || !isfinite(d) || d > 1e15 || d < -1e15)
        return false;
    *out = (long)d;
    return true;
}

static bool audience_ok(json_t *aud)
{
    if (json_is_string(aud))
        return !strcmp(json_string_value(aud), S.audience);
    size_t i;
    json_t *v;
    json_array_foreach(aud, i, v)
    {
        if (json_is_string(v) && !strcmp(json_string_value(v), S.audience))
            return true;
    }
    return false;
}

static int check_claims(json_t *claims, long *exp, long *nbf, const char **why)
{
    long iat;
    if (json_object_get(claims, "exp") && !number_claim(claims, "exp", exp))
        return fail(why, "exp is not a number");
    if (!json_object_get(claims, "exp"))
        return fail(why, "token has no exp");
    if (!number_claim(claims, "nbf", nbf)) {
        if (json_object_get(claims, "nbf"))
            return fail(why, "nbf is not a number");
        *nbf = LONG_MIN;
    }
    if (check_times(*exp, *nbf, why) < 0)
        return AUTH_INVALID;
    if (number_claim(claims, "iat", &iat) && iat > (long)time(NULL) + S.leeway)
        return fail(why, "token issued in the future");
    const char *iss = json_string_value(json_object_get(claims, "iss"));
    if (S.issuer && (!iss || strcmp(iss, S.issuer)))
        return fail(why, "wrong issuer");
    if (S.audience && !audience_ok(json_object_get(claims, "aud")))
        return fail(why, "wrong audience");
    json_t *sub = json_object_get(claims, "sub");
    if (!json_is_string(sub) || !json_string_length(sub) ||
        json_string_length(sub) >= AUTH_SUB_MAX ||
        strlen(json_string_value(sub)) != json_string_length(sub))
        return fail(why, "token has no sub (a string)");
    return 0;
}

static int verify_token(auth_cache *cache, const char *token, size_t len,
                        char sub_out[AUTH_SUB_MAX], const char **why)
{
    const char *dot1 = memchr(token, '.', len);
    const char *dot2 = dot1 ? memchr(dot1 + 1, '.', len - (size_t)(dot1 + 1 - token)) : NULL;
    if (!dot2 || memchr(dot2 + 1, '.', len - (size_t)(dot2 + 1 - token)))
        return fail(why, "malformed token");
    json_t *header = json_part(token, (size_t)(dot1 - token));
    if (!header)
        return fail(why, "malformed token header");
    unsigned long serial = 0;
    int rc = check_signature(header, token, (size_t)(dot2 - token), dot2 + 1,
                             len - (size_t)(dot2 + 1 - token), &serial, why);
    json_decref(header);
    if (rc < 0)
        return rc;
    json_t *claims = json_part(dot1 + 1, (size_t)(dot2 - dot1 - 1));
    if (!claims)
        return fail(why, "malformed token payload");
    long exp = 0, nbf = LONG_MIN; /* (set by check_claims; initialized for -Wmaybe-uninitialized) */
    rc = check_claims(claims, &exp, &nbf, why);
    if (rc == 0) {
        const char *sub = json_string_value(json_object_get(claims, "sub"));
        memcpy(sub_out, sub, strlen(sub) + 1);
        remember(cache, token, len, sub, exp, nbf, serial);
    }
    json_decref(claims);
    return rc;
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
    /* bounded: the header limit already caps it, this keeps the decoders' buffers fixed */
    size_t len = strlen(token);
    if (!len || len > 8192)
        return fail(why, "malformed token");
    cached_claims *c = cache ? &cache->slot[slot_of(token, len)] : NULL;
    if (c && c->token && !strcmp(c->token, token)) {
        unsigned long gen = jwks_generation();
        if (c->serial && c->gen != gen) { /* the key set changed: is its key still there? */
            if (jwks_serial_live(c->serial))
                c->gen = gen;
            else
                evict(c);
        }
        if (c->token) {
            if (check_times(c->exp, c->nbf, why) < 0)
                return AUTH_INVALID;
            memcpy(sub_out, c->sub, strlen(c->sub) + 1);
            return 0;
        }
    }
    return verify_token(cache, token, len, sub_out, why);
}

char *auth_sign(const char *sub, long exp, long nbf)
{
    jwt_t *jwt = NULL;
    char *out = NULL;
    if (!S.secret || jwt_new(&jwt) != 0)
        return NULL;
    if (jwt_add_grant(jwt, "sub", sub) == 0 && jwt_add_grant_int(jwt, "exp", exp) == 0 &&
        jwt_add_grant_int(jwt, "iat", (long)time(NULL)) == 0 &&
        (nbf == 0 || jwt_add_grant_int(jwt, "nbf", nbf) == 0) &&
        (!S.issuer || jwt_add_grant(jwt, "iss", S.issuer) == 0) &&
        (!S.audience || jwt_add_grant(jwt, "aud", S.audience) == 0) &&
        jwt_set_alg(jwt, JWT_ALG_HS256, S.secret, (int)S.secret_len) == 0)
        out = jwt_encode_str(jwt);
    jwt_free(jwt);
    return out;
}
