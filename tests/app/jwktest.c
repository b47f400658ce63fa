/* jwktest: what the JWKS suites share: JWKs of OpenSSL keys, key sets, and JWS tokens signed the
 * way identity providers sign them (EdDSA, ES256 as r||s, RS256, PS256, HS256, none). Failures
 * abort the current test. Strings returned are malloc'd, owned by the caller. */
#include "tests/app/jwktest.h"

#include <criterion/criterion.h>
#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <openssl/hmac.h>
#include <openssl/rsa.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char *jwktest_b64url(const unsigned char *p, size_t n)
{
    char *out = malloc(4 * ((n + 2) / 3) + 1);
    int len = EVP_EncodeBlock((unsigned char *)out, p, (int)n);
    for (int i = 0; i < len; i++)
        out[i] = out[i] == '+' ? '-' : out[i] == '/' ? '_' : out[i];
    while (len && out[len - 1] == '=')
        out[--len] = '\0';
    return out;
}

static char *bn_member(EVP_PKEY *k, const char *param, int pad)
{
    BIGNUM *bn = NULL;
    cr_assert(EVP_PKEY_get_bn_param(k, param, &bn) == 1);
    unsigned char buf[1024];
    int n = pad ? BN_bn2binpad(bn, buf, pad) : BN_bn2bin(bn, buf);
    BN_free(bn);
    return jwktest_b64url(buf, (size_t)n);
}

/* Sets j[key] to the malloc'd string v, freeing it. */
static void set_owned(json_t *j, const char *key, char *v)
{
    json_object_set_new(j, key, json_string(v));
    free(v);
}

/* The public JWK of k, as Better Auth / Clerk / Auth0 publish it. alg may be NULL. */
json_t *jwktest_jwk(EVP_PKEY *k, const char *kid, const char *alg)
{
    json_t *j = json_object();
    if (EVP_PKEY_is_a(k, "ED25519")) {
        unsigned char x[32];
        size_t n = sizeof x;
        cr_assert(EVP_PKEY_get_raw_public_key(k, x, &n) == 1);
        json_object_set_new(j, "kty", json_string("OKP"));
        json_object_set_new(j, "crv", json_string("Ed25519"));
        set_owned(j, "x", jwktest_b64url(x, n));
    } else if (EVP_PKEY_is_a(k, "EC")) {
        json_object_set_new(j, "kty", json_string("EC"));
        json_object_set_new(j, "crv", json_string("P-256"));
        set_owned(j, "x", bn_member(k, OSSL_PKEY_PARAM_EC_PUB_X, 32));
        set_owned(j, "y", bn_member(k, OSSL_PKEY_PARAM_EC_PUB_Y, 32));
    } else {
        json_object_set_new(j, "kty", json_string("RSA"));
        set_owned(j, "n", bn_member(k, OSSL_PKEY_PARAM_RSA_N, 0));
        set_owned(j, "e", bn_member(k, OSSL_PKEY_PARAM_RSA_E, 0));
    }
    if (kid)
        json_object_set_new(j, "kid", json_string(kid));
    if (alg)
        json_object_set_new(j, "alg", json_string(alg));
    return j;
}

/* {"keys":[...]} from NULL-terminated JWKs (stolen). */
char *jwktest_jwks(json_t *first, ...)
{
    json_t *keys = json_array();
    va_list ap;
    va_start(ap, first);
    for (json_t *k = first; k; k = va_arg(ap, json_t *))
        json_array_append_new(keys, k);
    va_end(ap);
    json_t *doc = json_pack("{so}", "keys", keys);
    char *s = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    return s;
}

char *jwktest_sign(const char *alg, EVP_PKEY *k, const void *hkey, size_t hlen, const char *kid,
                   json_t *claims)
{
    json_t *h = json_pack("{ss}", "alg", alg);
    if (kid)
        json_object_set_new(h, "kid", json_string(kid));
    char *hs = json_dumps(h, JSON_COMPACT), *cs = json_dumps(claims, JSON_COMPACT);
    json_decref(h);
    json_decref(claims);
    char *hb = jwktest_b64url((unsigned char *)hs, strlen(hs)),
         *cb = jwktest_b64url((unsigned char *)cs, strlen(cs));
    char *input = malloc(strlen(hb) + strlen(cb) + 2);
    sprintf(input, "%s.%s", hb, cb);
    unsigned char sig[1024];
    size_t siglen = 0;
    if (!strcmp(alg, "HS256")) {
        unsigned n = 0;
        HMAC(EVP_sha256(), hkey, (int)hlen, (unsigned char *)input, strlen(input), sig, &n);
        siglen = n;
    } else if (strcmp(alg, "none")) {
        EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        EVP_PKEY_CTX *pctx = NULL;
        cr_assert(EVP_DigestSignInit(ctx, &pctx, strcmp(alg, "EdDSA") ? EVP_sha256() : NULL, NULL,
                                     k) == 1);
        if (!strcmp(alg, "PS256")) {
            EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING);
            EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST);
        }
        siglen = sizeof sig;
        cr_assert(EVP_DigestSign(ctx, sig, &siglen, (unsigned char *)input, strlen(input)) == 1);
        EVP_MD_CTX_free(ctx);
        if (!strcmp(alg, "ES256")) { /* DER -> r || s, as JWS wants */
            const unsigned char *p = sig;
            ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long)siglen);
            cr_assert(es);
            BN_bn2binpad(ECDSA_SIG_get0_r(es), sig, 32);
            BN_bn2binpad(ECDSA_SIG_get0_s(es), sig + 32, 32);
            ECDSA_SIG_free(es);
            siglen = 64;
        }
    }
    char *sb = jwktest_b64url(sig, siglen);
    char *out = malloc(strlen(input) + strlen(sb) + 2);
    sprintf(out, "%s.%s", input, sb);
    free(hs), free(cs), free(hb), free(cb), free(input), free(sb);
    return out;
}
