/* The JWK rules without a server: which keys a JWKS yields (app/jwks.c), how a token's kid and alg
 * pick one, base64url. Keys are generated with OpenSSL per run. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

#include "app/jwks.h"
#include "tests/app/jwktest.h"

static EVP_PKEY *ed, *ed2, *ec, *rsa, *rsa1024;

static void keys(void)
{
    ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    ed2 = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    ec = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    rsa1024 = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
    cr_assert(ed && ed2 && ec && rsa && rsa1024);
}

static void nokeys(void)
{
    EVP_PKEY_free(ed), EVP_PKEY_free(ed2), EVP_PKEY_free(ec), EVP_PKEY_free(rsa);
    EVP_PKEY_free(rsa1024);
}

TestSuite(jwk, .init = keys, .fini = nokeys);

static jwks_set *parse(char *doc, const jwks_set *prev)
{
    char err[256] = "";
    jwks_set *s = jwks_parse(doc, strlen(doc), prev, err, sizeof err);
    free(doc);
    return s;
}

Test(jwk, base64url)
{
    unsigned char out[8];
    cr_expect_eq(jwks_b64url_decode("", 0, out, sizeof out), 0);
    cr_expect_eq(jwks_b64url_decode("QQ", 2, out, sizeof out), 1);
    cr_expect_eq(out[0], 'A');
    cr_expect_eq(jwks_b64url_decode("-_-_", 4, out, sizeof out), 3);
    cr_expect_eq(out[0], 0xfb);
    cr_expect_eq(jwks_b64url_decode("QQ==", 4, out, sizeof out), -1, "padding is not base64url");
    cr_expect_eq(jwks_b64url_decode("Q+", 2, out, sizeof out), -1);
    cr_expect_eq(jwks_b64url_decode("QUJDR", 5, out, sizeof out), -1, "impossible length");
    cr_expect_eq(jwks_b64url_decode("QUJDREVGR0hJ", 12, out, sizeof out), -1, "longer than out");
}

Test(jwk, usable_keys_and_their_algorithms)
{
    jwks_set *s =
        parse(jwktest_jwks(jwktest_jwk(ed, "ed", NULL), jwktest_jwk(ec, "ec", "ES256"),
                           jwktest_jwk(rsa, "rsa", NULL), jwktest_jwk(rsa, "rs", "RS256"), NULL),
              NULL);
    cr_assert_not_null(s);
    cr_assert_eq(s->nkeys, 4);
    cr_expect_eq(s->keys[0].algs, JWKS_ALG_EDDSA);
    cr_expect_eq(s->keys[1].algs, JWKS_ALG_ES256);
    cr_expect_eq(s->keys[2].algs, JWKS_ALG_RS256 | JWKS_ALG_PS256);
    cr_expect_eq(s->keys[3].algs, JWKS_ALG_RS256, "a JWK's alg narrows its key");
    /* kid picks the key, and the key must fit the alg */
    cr_expect_eq(jwks_find(s, "ed", JWKS_ALG_EDDSA), &s->keys[0]);
    cr_expect_null(jwks_find(s, "ed", JWKS_ALG_ES256));
    cr_expect_null(jwks_find(s, "ec", JWKS_ALG_HS256));
    cr_expect_null(jwks_find(s, "rs", JWKS_ALG_PS256));
    cr_expect_null(jwks_find(s, "nope", JWKS_ALG_EDDSA));
    /* no kid: the only key that fits; two fit: none */
    cr_expect_eq(jwks_find(s, NULL, JWKS_ALG_ES256), &s->keys[1]);
    cr_expect_null(jwks_find(s, NULL, JWKS_ALG_RS256));
    jwks_release(s);
}

Test(jwk, unusable_keys_are_skipped)
{
    json_t *wrong_crv = jwktest_jwk(ed, "a", NULL);
    json_object_set_new(wrong_crv, "crv", json_string("X25519"));
    json_t *enc = jwktest_jwk(ec, "b", NULL);
    json_object_set_new(enc, "use", json_string("enc"));
    json_t *off_curve = jwktest_jwk(ec, "c", NULL);
    json_object_set_new(off_curve, "y", json_object_get(off_curve, "x"));
    json_incref(json_object_get(off_curve, "x"));
    json_t *mismatch = jwktest_jwk(ed, "d", "RS256");
    json_t *kid_number = jwktest_jwk(ed, NULL, NULL);
    json_object_set_new(kid_number, "kid", json_integer(7));
    json_t *oct = json_pack("{ssssss}", "kty", "oct", "kid", "e", "k", "c2VjcmV0");
    jwks_set *s = parse(jwktest_jwks(wrong_crv, enc, off_curve, mismatch, kid_number,
                                     jwktest_jwk(rsa1024, "f", NULL), oct,
                                     jwktest_jwk(ed, "good", NULL), NULL),
                        NULL);
    cr_assert_not_null(s);
    cr_expect_eq(s->nkeys, 1, "only the good key: %d", s->nkeys);
    cr_expect_str_eq(s->keys[0].kid, "good");
    jwks_release(s);
}

Test(jwk, refused_documents)
{
    char err[256];
    const char *bad[] = {"",
                         "not json",
                         "[]",
                         "{\"keys\":{}}",
                         "{\"keys\":[{\"kty\":\"oct\"}]}",
                         "{\"keys\":[],\"keys\":[]}"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        err[0] = '\0';
        cr_expect_null(jwks_parse(bad[i], strlen(bad[i]), NULL, err, sizeof err), "%s", bad[i]);
        cr_expect(err[0], "a reason for %s", bad[i]);
    }
    jwks_set *empty = jwks_parse("{\"keys\":[]}", 11, NULL, err, sizeof err);
    cr_assert_not_null(empty, "an empty set is an answer (Better Auth's first key comes later)");
    cr_expect_eq(empty->nkeys, 0);
    jwks_release(empty);
}

/* Serials say "the same key" across refreshes: the verified-token cache relies on it. */
Test(jwk, serials_follow_unchanged_keys)
{
    jwks_set *a =
        parse(jwktest_jwks(jwktest_jwk(ed, "k1", NULL), jwktest_jwk(ec, "k2", NULL), NULL), NULL);
    jwks_set *b = parse(jwktest_jwks(jwktest_jwk(ec, "k2", NULL), jwktest_jwk(ed2, "k1", NULL),
                                     jwktest_jwk(ed, "k3", NULL), NULL),
                        a);
    cr_assert(a && b);
    cr_expect_eq(b->keys[0].serial, a->keys[1].serial, "unchanged key keeps its serial");
    cr_expect_neq(b->keys[1].serial, a->keys[0].serial, "same kid, other key: new serial");
    cr_expect_neq(b->keys[2].serial, a->keys[0].serial, "same key, other kid: new serial");
    jwks_release(a);
    jwks_release(b);
}
