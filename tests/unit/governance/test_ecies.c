/*
 * test_ecies.c - key release encryption (governance/ecies.c): round trips of several sizes; the wrong
 * key, other aad and every flipped byte of ciphertext, tag, iv and ephemeral key fail with -EBADMSG and
 * release nothing; bad recipient keys are refused; and an envelope built here independently (EVP ECDH,
 * OpenSSL's own HKDF and AES-256-GCM, following the formula in gov_crypto.h) opens.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include "ccr/gov_crypto.h"

static struct ccr_gov_ephkey *k1, *k2;

static void setup(void)
{
    cr_assert_eq(ccr_gov_ephkey_generate(&k1), 0);
    cr_assert_eq(ccr_gov_ephkey_generate(&k2), 0);
}

static void teardown(void)
{
    ccr_gov_ephkey_destroy(k1);
    ccr_gov_ephkey_destroy(k2);
}

TestSuite(governance_ecies, .init = setup, .fini = teardown);

static const uint8_t AAD[] = "c1/kek-northwind";

static void seal(const struct ccr_gov_ephkey *k, const uint8_t *secret, size_t n, struct ccr_gov_sealed *s)
{
    size_t spki_len;
    const uint8_t *spki = ccr_gov_ephkey_spki(k, &spki_len);
    memset(s, 0, sizeof(*s));
    cr_assert_eq(ccr_gov_seal_to(spki, spki_len, AAD, sizeof(AAD) - 1, secret, n, s), 0);
}

static int open_with(const struct ccr_gov_ephkey *k, const uint8_t *aad, size_t aad_len,
                     const struct ccr_gov_sealed *s, uint8_t **out, size_t *out_len)
{
    *out = (uint8_t *)0x1;
    int rc = ccr_gov_open_sealed(k, aad, aad_len, s, out, out_len);
    if (rc < 0)
        cr_assert_eq(*out, (uint8_t *)0x1, "output written on failure");
    return rc;
}

Test(governance_ecies, round_trip_sizes)
{
    static uint8_t secret[70000];
    for (size_t i = 0; i < sizeof(secret); i++)
        secret[i] = (uint8_t)(i * 31 + 7);
    size_t sizes[] = {0, 1, 32, 65536, sizeof(secret)};
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        struct ccr_gov_sealed s;
        seal(k1, secret, sizes[i], &s);
        cr_assert_eq(s.ct_len, sizes[i] + 16);
        cr_assert_gt(s.epk_len, 100);
        if (sizes[i] >= 32)
            cr_assert_neq(memcmp(s.ct, secret, 32), 0, "ciphertext is not the plaintext");
        uint8_t *out = NULL;
        size_t out_len = 0;
        cr_assert_eq(open_with(k1, AAD, sizeof(AAD) - 1, &s, &out, &out_len), 0);
        cr_assert_eq(out_len, sizes[i]);
        cr_assert_eq(memcmp(out, secret, out_len), 0);
        free(out);
        ccr_gov_sealed_fini(&s);
        cr_assert_null(s.ct);
        cr_assert_null(s.epk);
    }
    /* Two seals of the same secret differ (fresh key and iv). */
    struct ccr_gov_sealed a, b;
    seal(k1, secret, 32, &a);
    seal(k1, secret, 32, &b);
    cr_assert(a.epk_len != b.epk_len || memcmp(a.epk, b.epk, a.epk_len) != 0);
    cr_assert_neq(memcmp(a.ct, b.ct, a.ct_len), 0);
    ccr_gov_sealed_fini(&a);
    ccr_gov_sealed_fini(&b);
    struct ccr_gov_sealed z;
    memset(&z, 0, sizeof(z));
    ccr_gov_sealed_fini(&z);
    ccr_gov_sealed_fini(NULL);
}

Test(governance_ecies, wrong_key_and_aad)
{
    const uint8_t secret[] = "the key encryption key";
    struct ccr_gov_sealed s;
    seal(k1, secret, sizeof(secret), &s);
    uint8_t *out;
    size_t out_len;
    cr_assert_eq(open_with(k2, AAD, sizeof(AAD) - 1, &s, &out, &out_len), -EBADMSG);
    cr_assert_eq(open_with(k1, (const uint8_t *)"c1/other", 8, &s, &out, &out_len), -EBADMSG);
    cr_assert_eq(open_with(k1, NULL, 0, &s, &out, &out_len), -EBADMSG);
    cr_assert_eq(open_with(k1, AAD, sizeof(AAD) - 2, &s, &out, &out_len), -EBADMSG);
    ccr_gov_sealed_fini(&s);
}

Test(governance_ecies, every_flipped_byte_fails)
{
    const uint8_t secret[40] = {1, 2, 3};
    struct ccr_gov_sealed s;
    seal(k1, secret, sizeof(secret), &s);
    uint8_t *out;
    size_t out_len;
    for (size_t i = 0; i < s.ct_len; i++) {
        s.ct[i] ^= 0x01;
        cr_assert_eq(open_with(k1, AAD, sizeof(AAD) - 1, &s, &out, &out_len), -EBADMSG, "ct byte %zu", i);
        s.ct[i] ^= 0x01;
    }
    for (size_t i = 0; i < sizeof(s.iv); i++) {
        s.iv[i] ^= 0x80;
        cr_assert_eq(open_with(k1, AAD, sizeof(AAD) - 1, &s, &out, &out_len), -EBADMSG, "iv byte %zu", i);
        s.iv[i] ^= 0x80;
    }
    for (size_t i = 0; i < s.epk_len; i++) {
        s.epk[i] ^= 0x01;
        cr_assert_eq(open_with(k1, AAD, sizeof(AAD) - 1, &s, &out, &out_len), -EBADMSG, "epk byte %zu", i);
        s.epk[i] ^= 0x01;
    }
    /* Truncated ciphertext, below the tag size, and a missing epk. */
    size_t ct_len = s.ct_len;
    s.ct_len = ct_len - 1;
    cr_assert_eq(open_with(k1, AAD, sizeof(AAD) - 1, &s, &out, &out_len), -EBADMSG);
    s.ct_len = 15;
    cr_assert_eq(open_with(k1, AAD, sizeof(AAD) - 1, &s, &out, &out_len), -EBADMSG);
    s.ct_len = ct_len;
    size_t epk_len = s.epk_len;
    s.epk_len = epk_len - 1;
    cr_assert_eq(open_with(k1, AAD, sizeof(AAD) - 1, &s, &out, &out_len), -EBADMSG);
    s.epk_len = epk_len;
    /* the untouched one still opens */
    cr_assert_eq(open_with(k1, AAD, sizeof(AAD) - 1, &s, &out, &out_len), 0);
    cr_assert_eq(memcmp(out, secret, sizeof(secret)), 0);
    free(out);
    ccr_gov_sealed_fini(&s);
}

Test(governance_ecies, bad_recipient_keys)
{
    struct ccr_gov_sealed s;
    memset(&s, 0, sizeof(s));
    const uint8_t secret[] = "x";
    cr_assert_eq(ccr_gov_seal_to((const uint8_t *)"junk", 4, NULL, 0, secret, 1, &s), -EINVAL);
    cr_assert_null(s.ct);
    /* a P-256 key */
    EVP_PKEY *p256 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    unsigned char *der = NULL;
    int n = i2d_PUBKEY(p256, &der);
    cr_assert_gt(n, 0);
    cr_assert_eq(ccr_gov_seal_to(der, (size_t)n, NULL, 0, secret, 1, &s), -EINVAL);
    OPENSSL_free(der);
    EVP_PKEY_free(p256);
    /* trailing bytes after a good SPKI */
    size_t spki_len;
    const uint8_t *spki = ccr_gov_ephkey_spki(k1, &spki_len);
    uint8_t longer[256];
    cr_assert_lt(spki_len + 1, sizeof(longer));
    memcpy(longer, spki, spki_len);
    longer[spki_len] = 0;
    cr_assert_eq(ccr_gov_seal_to(longer, spki_len + 1, NULL, 0, secret, 1, &s), -EINVAL);
    /* A non-canonical encoding of the same key: the BIT STRING claims one unused bit, which OpenSSL would
     * mask off the last byte. With that bit already clear it is the same key, yet not the same bytes. */
    cr_assert_eq(spki_len, 120);
    memcpy(longer, spki, spki_len);
    cr_assert_eq(longer[20], 0x03, "BIT STRING");
    cr_assert_eq(longer[22], 0x00, "no unused bits");
    longer[22] = 1;
    longer[spki_len - 1] &= 0xfe;
    cr_assert_eq(ccr_gov_seal_to(longer, spki_len, NULL, 0, secret, 1, &s), -EINVAL);
    cr_assert_null(s.ct);
}

/* ---- an independent sealer ---------------------------------------------------------------------------- */

static void independent_seal(const uint8_t *spki, size_t spki_len, const uint8_t *aad, size_t aad_len,
                             const uint8_t *pt, size_t n, struct ccr_gov_sealed *s)
{
    const unsigned char *p = spki;
    EVP_PKEY *peer = d2i_PUBKEY(NULL, &p, (long)spki_len);
    cr_assert_not_null(peer);
    EVP_PKEY *e = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
    cr_assert_not_null(e);
    unsigned char *epk = NULL;
    int epk_len = i2d_PUBKEY(e, &epk);
    cr_assert_gt(epk_len, 0);

    EVP_PKEY_CTX *dc = EVP_PKEY_CTX_new(e, NULL);
    uint8_t z[48];
    size_t zlen = sizeof(z);
    cr_assert_eq(EVP_PKEY_derive_init(dc), 1);
    cr_assert_eq(EVP_PKEY_derive_set_peer(dc, peer), 1);
    cr_assert_eq(EVP_PKEY_derive(dc, z, &zlen), 1);
    cr_assert_eq(zlen, 48);
    EVP_PKEY_CTX_free(dc);

    uint8_t info[22 + 32];
    memcpy(info, "ccr-gov key release v1", 22);
    unsigned hl = 0;
    cr_assert_eq(EVP_Digest(spki, spki_len, info + 22, &hl, EVP_sha256(), NULL), 1);
    EVP_KDF *kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
    EVP_KDF_CTX *kc = EVP_KDF_CTX_new(kdf);
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)"SHA256", 0),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, z, zlen),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, info, sizeof(info)),
        OSSL_PARAM_construct_end(),
    };
    uint8_t key[32];
    cr_assert_eq(EVP_KDF_derive(kc, key, sizeof(key), params), 1);
    EVP_KDF_CTX_free(kc);
    EVP_KDF_free(kdf);

    memset(s, 0, sizeof(*s));
    cr_assert_eq(RAND_bytes(s->iv, sizeof(s->iv)), 1);
    s->ct = malloc(n + 16);
    s->ct_len = n + 16;
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    int outl = 0;
    cr_assert_eq(EVP_EncryptInit_ex(c, EVP_aes_256_gcm(), NULL, key, s->iv), 1);
    cr_assert_eq(EVP_EncryptUpdate(c, NULL, &outl, aad, (int)aad_len), 1);
    cr_assert_eq(EVP_EncryptUpdate(c, s->ct, &outl, pt, (int)n), 1);
    cr_assert_eq(EVP_EncryptFinal_ex(c, s->ct + outl, &outl), 1);
    cr_assert_eq(EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, 16, s->ct + n), 1);
    EVP_CIPHER_CTX_free(c);
    s->epk = malloc((size_t)epk_len);
    memcpy(s->epk, epk, (size_t)epk_len);
    s->epk_len = (size_t)epk_len;
    OPENSSL_free(epk);
    EVP_PKEY_free(e);
    EVP_PKEY_free(peer);
}

Test(governance_ecies, opens_an_independently_built_envelope)
{
    size_t spki_len;
    const uint8_t *spki = ccr_gov_ephkey_spki(k1, &spki_len);
    const uint8_t secret[] = "independently sealed secret";
    struct ccr_gov_sealed s;
    independent_seal(spki, spki_len, AAD, sizeof(AAD) - 1, secret, sizeof(secret), &s);
    uint8_t *out = NULL;
    size_t out_len = 0;
    cr_assert_eq(open_with(k1, AAD, sizeof(AAD) - 1, &s, &out, &out_len), 0);
    cr_assert_eq(out_len, sizeof(secret));
    cr_assert_eq(memcmp(out, secret, out_len), 0);
    free(out);
    cr_assert_eq(open_with(k2, AAD, sizeof(AAD) - 1, &s, &out, &out_len), -EBADMSG);
    ccr_gov_sealed_fini(&s);
}
