/* jwktest: JWKs and JWS tokens for the tests, from keys generated with OpenSSL (see jwktest.c). */
#ifndef TESTS_APP_JWKTEST_H
#define TESTS_APP_JWKTEST_H

#include <jansson.h>
#include <openssl/evp.h>
#include <stddef.h>

/* base64url without padding (malloc'd). */
char *jwktest_b64url(const unsigned char *p, size_t n);

/* The public JWK of k (Ed25519, P-256 or RSA) as providers publish it; kid and alg may be NULL. */
json_t *jwktest_jwk(EVP_PKEY *k, const char *kid, const char *alg);

/* {"keys":[...]} from a NULL-terminated list of JWKs (stolen), serialized (malloc'd). */
char *jwktest_jwks(json_t *first, ...);

/* header.payload.signature: k signs EdDSA/ES256/RS256/PS256, hkey (hlen bytes) HS256, "none" has
 * an empty signature. kid may be NULL. claims are stolen. */
char *jwktest_sign(const char *alg, EVP_PKEY *k, const void *hkey, size_t hlen, const char *kid,
                   json_t *claims);

#endif
